"""TOM-OS-02: a login session and a freshly started service both have a hard core limit of 0.

The probe (test_probes.py) reads the limits files, systemd's default and the
systemd-coredump settings; these checks start a real session and a real
service and ask each for its limit.
"""

from __future__ import annotations

import pytest

from tests.compliance import sshclient

ROLE = "core_dumps"


@pytest.mark.tom("TOM-OS-02")
def test_an_admin_session_cannot_dump_core(inventory, hostname, address, admin_key, evidence):
    """An admin's SSH session (pam_limits) has a hard core limit of 0."""
    user, key = admin_key
    port = int(inventory.role_vars(hostname, "ssh_access")["ssh_access_port"])
    result = sshclient.login_with_key(address, port, user, key, "ulimit -H -c")
    evidence(f"ulimit -H -c in a session of {user}", result.stdout or result.stderr)
    assert result.ok, result.stderr
    assert result.stdout == "0"


@pytest.mark.tom("TOM-OS-02")
def test_a_new_service_cannot_dump_core(host, evidence):
    """A service systemd starts now (a transient unit) has a hard core limit of 0."""
    run = host.run("systemd-run --quiet --wait --pipe --collect sh -c 'ulimit -H -c'")
    evidence("ulimit -H -c in a transient service", run.stdout.strip() or run.stderr.strip())
    assert run.rc == 0, run.stderr
    assert run.stdout.strip() == "0"
