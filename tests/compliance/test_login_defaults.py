"""TOM-OS-01: an admin's real SSH session gets the umask and a TMPDIR of its own.

The probe (test_probes.py) reads login.defs, the PAM session stack and the
aging in /etc/shadow; this check logs in as an admin would and looks at what
the session really gets, which only PAM decides.
"""

from __future__ import annotations

import pytest

from tests.compliance import sshclient

ROLE = "login_defaults"


@pytest.mark.tom("TOM-OS-01")
def test_an_admin_session_gets_the_umask_and_a_tmpdir_of_its_own(
    inventory, hostname, address, admin_key, role_vars, evidence
):
    """An admin's SSH session runs with umask 027 (or stricter) and a TMPDIR only that user can enter."""
    excused = role_vars.get("tomwerk_exceptions") or {}
    user, key = admin_key
    port = int(inventory.role_vars(hostname, "ssh_access")["ssh_access_port"])
    result = sshclient.login_with_key(address, port, user, key, 'umask; echo "$TMPDIR"; stat -c %a "$TMPDIR"')
    evidence(f"session of {user}", result.stdout or result.stderr)
    assert result.ok, result.stderr
    umask, tmpdir, mode = [*result.stdout.splitlines(), "", "", ""][:3]
    wanted = int(str(role_vars["login_defaults_umask"]), 8)
    if "TOM-OS-01:umask" not in excused:
        assert int(umask, 8) & wanted == wanted, f"session umask {umask}, wanted {role_vars['login_defaults_umask']}"
    if "TOM-OS-01:pam-tmpdir" not in excused:
        private = "/tmp/user/"  # noqa: S108 (pam_tmpdir's directory, read, not made)
        assert tmpdir.startswith(private), f"TMPDIR is {tmpdir!r}, not a private {private}<uid>"
        assert mode == "700", f"{tmpdir} has mode {mode}"
