"""Bad input is refused before any change, with a message that names the variable.

All cases of bad_input_cases.yml run in one ansible-playbook run: one fake
host per case (connection local), each including its role's `validate` entry
point (argument_specs plus the role's asserts). No host is touched; the
roles import the same validate.yml first thing in main.yml
(test_roles.py::test_main_validates_first proves that order).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tomwerk import ROOT, check_inventory

# Runs ansible-playbook over every case: heavy (`make test`, not `make unit`).
pytestmark = pytest.mark.heavy

CASES = yaml.safe_load((Path(__file__).parent / "bad_input_cases.yml").read_text())["cases"]

PLAYBOOK = """
- name: Validate one role input per fake host
  hosts: all
  gather_facts: false
  tasks:
    # The facts release-aware roles read (vars/Debian-<major>.yml), without
    # gathering them from sixty fake hosts.
    - name: The case's Debian release
      ansible.builtin.set_fact:
        distribution_major_version: "{{ case_release }}"
        cacheable: true
    - name: Run the role's checks only
      ansible.builtin.include_role:
        name: "tomwerk.toms.{{ case_role }}"
        tasks_from: "{{ case_entry }}"
"""


def _keygen(tmp: Path, kind: str, bits: int | None = None) -> str:
    key = tmp / f"{kind}{bits or ''}"
    args = ["ssh-keygen", "-q", "-N", "", "-t", kind, "-f", str(key), "-C", "case@test"]
    if bits:
        args += ["-b", str(bits)]
    subprocess.run(args, check=True)
    return key.with_suffix(".pub").read_text().strip()


def _substitute(value, keys: dict[str, str]):
    if isinstance(value, str):
        return keys.get(value, value)
    if isinstance(value, list):
        return [_substitute(v, keys) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, keys) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict]:
    tmp = tmp_path_factory.mktemp("badinput")
    keys = {"@ED25519@": _keygen(tmp, "ed25519"), "@RSA2048@": _keygen(tmp, "rsa", 2048)}
    baseline = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "tomwerk_domain": "example.test",
        "tomwerk_admin_networks": ["10.0.0.0/8"],
        "ssh_access_admins": [{"name": "alice", "keys": [keys["@ED25519@"]]}],
        "internal_pki_ca_dir": str(tmp / "ca"),
    }
    hosts = {
        case["id"]: {
            "case_role": case["role"],
            "case_entry": case.get("entry", "validate"),
            "case_release": str(case.get("release", 13)),
            **_substitute(case["vars"], keys),
        }
        for case in CASES
    }
    inventory = tmp / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"vars": baseline, "hosts": hosts}}))
    playbook = tmp / "validate.yml"
    playbook.write_text(PLAYBOOK)
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
    }
    proc = subprocess.run(
        [Path(sys.executable).parent / "ansible-playbook", "-i", str(inventory), str(playbook)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )  # fmt: skip
    report = json.loads(proc.stdout)
    outcome = {host: {"failed": False, "msg": ""} for host in hosts}
    for problem in check_inventory.problems(report):
        outcome[problem.host] = {"failed": True, "msg": f"{outcome[problem.host]['msg']}\n{problem.message}"}
    for host, stats in report["stats"].items():
        if stats.get("failures") or stats.get("unreachable"):
            outcome[host]["failed"] = True
    return outcome


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(results, case):
    outcome = results[case["id"]]
    if case["expect"] is None:
        assert not outcome["failed"], outcome["msg"]
    else:
        assert outcome["failed"], f"{case['id']} was accepted"
        assert case["expect"] in outcome["msg"], outcome["msg"]


def test_cases_run_check_only_entry_points():
    """The cases run on the controller itself (connection local): only entry points that
    change nothing may run there, never one that writes files or reloads a service."""
    assert all(c.get("entry", "validate").startswith("validate") for c in CASES)


def test_enough_bad_cases_per_role():
    bad = [c for c in CASES if c["expect"]]
    assert len(bad) >= 10
    roles = {c["role"] for c in CASES}
    assert all(any(c["role"] == r and c["expect"] for c in CASES) for r in roles)
