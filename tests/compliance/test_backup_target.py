"""TOM-BAK-02 on each backup target: one chrooted SFTP-only account and key per
server, a separate sshd offering nothing else, reachable from the servers only."""

from __future__ import annotations

import pytest

from tests.compliance.conftest import get_host

ROLE = "backup_target"


@pytest.fixture(scope="module")
def backup_sshd(host, role_vars) -> dict[str, str]:
    config: dict[str, str] = {}
    for line in host.check_output(f"sshd -T -f {role_vars['backup_target_sshd_config']}").splitlines():
        key, _, value = line.partition(" ")
        config[key] = f"{config[key]} {value}" if key in config else value
    return config


@pytest.mark.tom("TOM-BAK-02")
def test_backup_sshd_offers_chrooted_sftp_only(host, backup_sshd, role_vars, evidence):
    """sshd -T of the backup sshd: keys only, the backup group only, chrooted internal-sftp, no forwarding."""
    keys = ("port", "passwordauthentication", "authenticationmethods", "allowgroups", "chrootdirectory",
            "forcecommand", "allowtcpforwarding", "permittty", "permitrootlogin", "usepam")  # fmt: skip
    observed = {k: backup_sshd.get(k) for k in keys}
    evidence("sshd -T", observed)
    assert observed == {
        "port": str(role_vars["backup_target_port"]), "passwordauthentication": "no",
        "authenticationmethods": "publickey", "allowgroups": role_vars["backup_target_group"],
        "chrootdirectory": f"{role_vars['backup_target_root']}/%u", "forcecommand": "internal-sftp",
        "allowtcpforwarding": "no", "permittty": "no", "permitrootlogin": "no", "usepam": "no",
    }  # fmt: skip
    assert host.service("tomwerk-backup-sshd").is_running


@pytest.mark.tom("TOM-BAK-02")
def test_one_account_and_key_per_server(host, role_vars, inventory, evidence):
    """Each backup client has its own account whose only key is that server's backup key."""
    keys = {}
    for client in role_vars["backup_target_clients"]:
        account = f"bk-{client}"
        installed = host.file(f"{role_vars['backup_target_keys_dir']}/{account}").content_string.split()[:2]
        actual = get_host(inventory, client).file("/etc/tomwerk/backup/id_ed25519.pub").content_string.split()[:2]
        keys[account] = installed[1][-12:] if len(installed) == 2 else None
        assert installed == actual, account
        assert host.user(account).shell == "/usr/sbin/nologin"
        repo = host.file(f"{role_vars['backup_target_root']}/{account}/repo")
        assert repo.user == account and repo.mode == 0o700
    evidence("key per account (tail)", keys)
    assert len(set(keys.values())) == len(keys)


@pytest.mark.tom("TOM-BAK-02")
def test_a_shell_is_refused_even_with_the_right_key(host, role_vars, inventory, address, evidence):
    """A server logging in with its own backup key gets SFTP, never a shell."""
    client = role_vars["backup_target_clients"][0]
    result = get_host(inventory, client).run(
        f"timeout 30 ssh -v -p {role_vars['backup_target_port']} -i /etc/tomwerk/backup/id_ed25519 -o BatchMode=yes "
        f"-o ConnectTimeout=10 -o UserKnownHostsFile=/etc/tomwerk/backup/known_hosts bk-{client}@{address} id"
        " < /dev/null"
    )
    said = (result.stdout + result.stderr).strip()
    # -v: if the login ever stalls, the failure shows the step it stalled at.
    evidence("shell attempt", [line for line in said.splitlines() if not line.startswith(("debug", "OpenSSH"))][-3:])
    assert "uid=" not in result.stdout
    assert "sftp connections only" in said, f"ssh exited {result.rc} (124 = timed out) saying {said[-300:]!r}"
