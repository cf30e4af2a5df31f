"""TOM-OS-06: whoever connects over SSH reads the legal notice before authenticating.

The probe (test_probes.py) compares /etc/issue and /etc/issue.net with the
inventory's text and asks sshd -T for its banner. This check connects from
the controller without any key and reads what sshd sends first.
"""

from __future__ import annotations

import pytest

from tests.compliance import sshclient

ROLE = "legal_banner"


@pytest.mark.tom("TOM-OS-06")
def test_an_ssh_client_reads_the_notice_before_authenticating(inventory, hostname, address, role_vars, evidence):
    """An SSH connection that offers no credentials gets the notice, and nothing of the OS version in it."""
    if "TOM-OS-06:network" in (role_vars.get("tomwerk_exceptions") or {}):
        pytest.skip("the SSH notice is excused on this host (see the exceptions in the report)")
    port = int(inventory.role_vars(hostname, "ssh_access")["ssh_access_port"])
    # ssh shows a banner only at LogLevel INFO or above.
    pairs = zip(sshclient.BASE_OPTIONS[::2], sshclient.BASE_OPTIONS[1::2], strict=True)
    options = [word for flag, value in pairs if not value.startswith("LogLevel=") for word in (flag, value)]
    result = sshclient.run([
        "ssh", *options, "-o", "LogLevel=INFO",
        "-o", "BatchMode=yes", "-o", "PreferredAuthentications=none", "-p", str(port), f"nobody@{address}", "true",
    ])  # fmt: skip
    evidence("sent before authentication", result.stderr[:600])
    first_line = role_vars["legal_banner_text"].strip().splitlines()[0].strip()
    assert first_line in result.stderr, f"the notice's first line {first_line!r} was not sent"
    assert "Debian" not in result.stderr
