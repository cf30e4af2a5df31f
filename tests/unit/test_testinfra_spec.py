"""How the checks reach a host (Inventory.testinfra_spec), and that the lab's way stays in the lab."""

from __future__ import annotations

import re

import pytest

from tomwerk import ROOT
from tomwerk.inventory import Inventory
from tomwerk.snapshot import snapshot


def inventory(tmp_path, hostvars: str) -> Inventory:
    (tmp_path / "hosts.yml").write_text(f"all:\n  hosts:\n    srv1:\n{hostvars}")
    return Inventory(str(tmp_path / "hosts.yml"))


@pytest.mark.parametrize(
    ("hostvars", "spec"),
    [
        ("      ansible_host: 192.0.2.7\n", "ansible://srv1?ansible_inventory={inv}"),
        ("      ansible_connection: containers.podman.podman\n      ansible_host: c1\n", "podman://c1"),
        ("      ansible_connection: local\n", "local://"),
        ("      tomwerk_testinfra_spec: 'ssh://admin@{{ inventory_hostname }}'\n", "ssh://admin@srv1"),
    ],
)
def test_the_spec_follows_the_inventory(tmp_path, hostvars, spec):
    inv = inventory(tmp_path, hostvars)
    assert inv.testinfra_spec("srv1") == spec.format(inv=inv.source)


def test_the_lab_reaches_its_containers_by_nsenter_but_the_package_does_not_know_it():
    lab = Inventory(str(ROOT / "inventories" / "lab"))
    assert lab.testinfra_spec("web1") == "nsenter://web1"
    assert not (ROOT / "tomwerk" / "nsenter.py").exists()
    for path in (ROOT / "tomwerk").rglob("*.py"):
        assert not re.search(r"^\s*(from|import)\s+\S*nsenter", path.read_text(), re.MULTILINE), path


def test_the_admin_hosts_inventory_does_not_inherit_the_controllers_way_in(tmp_path):
    inv = inventory(tmp_path, "      tomwerk_testinfra_spec: nsenter://srv1\n      tomwerk_address: 192.0.2.7\n")
    rendered = snapshot(inv, {"ansible_connection": "ssh"})["all"]["hosts"]["srv1"]
    assert "tomwerk_testinfra_spec" not in rendered and rendered["tomwerk_address"] == "192.0.2.7"
