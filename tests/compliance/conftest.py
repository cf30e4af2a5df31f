"""Compliance checks run against any inventory: the lab or a real one.

A test module names the role it checks (ROLE = "ssh_access"); it then runs on
every host that playbooks/site.yml gives that role, with that host's
variables as the role saw them. `--hosts=web1,mail1` narrows the run.
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path

import pytest
import testinfra

from tests.compliance.promql import fetch_exporter, samples
from tomwerk.inventory import Inventory


@pytest.fixture(scope="session")
def inventory(request) -> Inventory:
    return _inventory(request.config)


def _inventory(config) -> Inventory:
    if not hasattr(config, "_tomwerk_inventory"):
        config._tomwerk_inventory = Inventory(config.getoption("inventory"))
    return config._tomwerk_inventory


def pytest_generate_tests(metafunc):
    if "hostname" not in metafunc.fixturenames:
        return
    role = getattr(metafunc.module, "ROLE", None)
    if role is None:
        raise pytest.UsageError(f"{metafunc.module.__name__} uses 'hostname' but names no ROLE")
    inv = _inventory(metafunc.config)
    hosts = inv.hosts_with_role(role)
    wanted = metafunc.config.getoption("hosts", None)
    if wanted:
        hosts = [h for h in hosts if h in wanted.split(",")]
    if "tom" in metafunc.fixturenames:
        # One check per host and TOM it carries, marked with that TOM for the report.
        pairs = [pytest.param(h, t, marks=pytest.mark.tom(t), id=f"{h}-{t}") for h in hosts for t in host_toms(inv, h)]
        metafunc.parametrize(("hostname", "tom"), pairs, scope="module")
        return
    metafunc.parametrize("hostname", hosts, scope="module")


def host_toms(inv: Inventory, hostname: str) -> list[str]:
    """The TOMs the roles on this host record in their state files (<role>_state.toms)."""
    toms = set()
    for role in inv.roles_by_host[hostname]:
        toms |= set(inv.state_toms(hostname, role))
    return sorted(toms)


_HOSTS: dict[str, testinfra.host.Host] = {}
# Where each role records the settings it applied (its <role>_state variable).
STATE_DIR = "/etc/tomwerk/state"


def get_host(inv: Inventory, name: str):
    if name not in _HOSTS:
        _HOSTS[name] = testinfra.get_host(inv.testinfra_spec(name))
    return _HOSTS[name]


@pytest.fixture(scope="module")
def host(inventory, hostname):
    """The testinfra host under test."""
    return get_host(inventory, hostname)


@pytest.fixture(scope="module")
def role_vars(inventory, hostname, host, request):
    """The variables of the module's ROLE as the role saw them on this host.

    The inventory gives most of them. Those that depend on the host's facts (the
    per-release lists of vars/Debian-<major>.yml) cannot be known on the
    controller: they come from what the role recorded it applied
    (/etc/tomwerk/state/<role>.json)."""
    role = request.module.ROLE
    found = inventory.role_vars(hostname, role)
    state = host.file(f"{STATE_DIR}/{role}.json")
    if state.exists:
        for name, value in json.loads(state.content_string).get("vars", {}).items():
            found.setdefault(name, value)
    return found


def address_of(inv: Inventory, name: str) -> str:
    """The address other machines use to reach the host (tomwerk_address, else ansible_host)."""
    hostvars = inv.raw_vars(name)
    for var in ("tomwerk_address", "ansible_host"):
        if var in hostvars:
            return str(inv.var(name, var))
    return name


@pytest.fixture(scope="module")
def address(inventory, hostname) -> str:
    return address_of(inventory, hostname)


@pytest.fixture(scope="module")
def peer(inventory, hostname):
    """Another host of the inventory, to probe this one from the network."""
    others = [h for h in inventory.hosts() if h != hostname]
    if not others:
        pytest.skip("the inventory has no second host to probe from")
    name = others[0]
    return name, get_host(inventory, name), address_of(inventory, name)


@pytest.fixture(scope="module")
def admin_key(inventory, hostname) -> tuple[str, Path]:
    """A private key of a named admin of the host (ssh_access): TOMWERK_ADMIN_KEY=user:path
    (the admin host's verification key), else one of the lab's."""
    admins = inventory.role_vars(hostname, "ssh_access")["ssh_access_admins"]
    names = [a["name"] for a in admins]
    user, _, path = os.environ.get("TOMWERK_ADMIN_KEY", "").partition(":")
    if user in names and Path(path).exists():
        return user, Path(path)
    lab_keys = Path(os.environ.get("TOMWERK_LAB_DIR", ".lab")) / "keys"
    for name in names:
        key = lab_keys / name
        if key.exists():
            return name, key
    pytest.skip("no private key of a named admin on this controller (the lab keeps them in .lab/keys)")


@pytest.fixture(scope="module")
def ssh_port(inventory, hostname) -> int:
    return int(inventory.role_vars(hostname, "ssh_access")["ssh_access_port"])


def in_networks(address: str, networks) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(str(n), strict=False) for n in networks)


_PROBED: dict[str, dict] = {}


def probe_result(host, command: str, fresh: bool = False) -> dict:
    """The host's own measurement of its TOMs: `tomwerk-probe` run there, once per host and run
    (fresh=True measures again). The exporter renders the same measurement as metrics."""
    key = host.backend.get_pytest_id()
    if fresh or key not in _PROBED:
        run = host.run(command)
        assert run.rc in (0, 1), f"{command} failed (exit {run.rc}): {run.stderr.strip()[-500:]}"
        _PROBED[key] = json.loads(run.stdout)
    return _PROBED[key]


def exporter_metrics(host) -> str:
    """The host's tomwerk exporter exposition, fetched on the host itself (its firewall admits scrapers only)."""
    return fetch_exporter(host)


def exporter_not_compliant(host) -> list[str]:
    """The TOMs the host's exporter reports as not holding (tomwerk_tom_compliant 0)."""
    found = samples(exporter_metrics(host))
    return sorted(labels["tom"] for name, labels, value in found if name == "tomwerk_tom_compliant" and value != 1)


def exporter_sample(host, name: str) -> float | None:
    """The first sample called name (with its labels, if name spells them out) the host's exporter shows."""
    for line in exporter_metrics(host).splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None
