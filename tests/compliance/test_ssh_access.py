"""TOM-SSH-01..03: SSH is keys only, for the named admins, with modern crypto.

The checks ask sshd what it really does (sshd -T), run ssh-audit against the
live port, and try real logins from the controller.
"""

from __future__ import annotations

import secrets
import subprocess
import sys

import pytest

from tests.compliance import sshclient

ROLE = "ssh_access"


@pytest.fixture(scope="module")
def sshd(host):
    """The effective sshd configuration, as sshd itself reports it."""
    return _sshd_t(host)


def _sshd_t(host) -> dict[str, str]:
    config: dict[str, str] = {}
    for line in host.check_output("sshd -T").splitlines():
        key, _, value = line.partition(" ")
        # Repeated keywords (allowusers, hostkey, ...) come one value per line.
        config[key] = f"{config[key]} {value}" if key in config else value
    return config


@pytest.fixture(scope="module")
def port(role_vars) -> int:
    return int(role_vars["ssh_access_port"])


@pytest.mark.tom("TOM-SSH-01")
def test_sshd_allows_keys_only(sshd, role_vars, evidence):
    """sshd -T: public keys are the only way in; no password, no keyboard-interactive."""
    observed = {k: sshd.get(k) for k in (
        "passwordauthentication", "kbdinteractiveauthentication", "permitemptypasswords",
        "authenticationmethods", "pubkeyauthentication", "permitrootlogin",
        "hostbasedauthentication", "gssapiauthentication",
    )}  # fmt: skip
    evidence("sshd -T", observed)
    assert observed["passwordauthentication"] == "no"
    assert observed["kbdinteractiveauthentication"] == "no"
    assert observed["permitemptypasswords"] == "no"
    assert observed["authenticationmethods"] == "publickey"
    assert observed["pubkeyauthentication"] == "yes"
    assert observed["hostbasedauthentication"] == "no"
    assert observed["gssapiauthentication"] == "no"
    # "prohibit-password" shows as "without-password" in sshd -T.
    expected_root = {"no": "no", "prohibit-password": "without-password"}[role_vars["ssh_access_permit_root_login"]]
    assert observed["permitrootlogin"] == expected_root


@pytest.mark.tom("TOM-SSH-01")
def test_password_login_is_refused(host, address, port, role_vars, evidence):
    """An admin with a correct, freshly set password still cannot log in with it."""
    user = role_vars["ssh_access_admins"][0]["name"]
    password = "Tw-" + secrets.token_urlsafe(12)
    before = host.check_output(f"getent shadow {user}").split(":")[1]
    host.check_output(f"echo '{user}:{password}' | chpasswd")
    try:
        result = sshclient.login_with_password(address, port, user, password)
    finally:
        host.check_output(f"usermod -p '{before}' {user}")
    evidence("password login", result.stderr or result.stdout)
    assert not result.ok
    assert "Permission denied (publickey)" in result.stderr


@pytest.mark.tom("TOM-SSH-02")
def test_sshd_allows_only_the_named_admins(sshd, role_vars, evidence):
    """sshd -T: AllowUsers is exactly the admin list; no groups, no other users."""
    expected = sorted(a["name"] for a in role_vars["ssh_access_admins"])
    allowed = sorted(sshd.get("allowusers", "").split())
    evidence("allowusers", allowed)
    assert allowed == expected
    assert "allowgroups" not in sshd


@pytest.mark.tom("TOM-SSH-02")
def test_named_admin_logs_in_with_key(address, port, admin_key, evidence):
    """A named admin with their key gets in (the role locks nobody out)."""
    user, key = admin_key
    result = sshclient.login_with_key(address, port, user, key)
    evidence(f"key login as {user}", result.stdout or result.stderr)
    assert result.ok, result.stderr
    assert result.stdout == user


@pytest.mark.tom("TOM-SSH-02")
def test_valid_key_of_non_admin_is_refused(host, address, port, role_vars, tmp_path, evidence):
    """Someone with an account and a valid key, who is not on the admin list, cannot log in."""
    user = "tw-outsider"
    assert user not in [a["name"] for a in role_vars["ssh_access_admins"]]
    key = sshclient.new_key_pair(tmp_path, user)
    keyfile = f"/etc/ssh/authorized_keys/{user}"
    public = key.with_suffix(".pub").read_text().strip()
    host.check_output(f"useradd --create-home --shell /bin/bash {user}")
    try:
        host.check_output(f"echo '{public}' > {keyfile} && chmod 0644 {keyfile}")
        result = sshclient.login_with_key(address, port, user, key)
    finally:
        host.run(f"rm -f {keyfile}; userdel --remove {user}")
    evidence(f"key login as {user}", result.stderr or result.stdout)
    assert not result.ok
    assert "Permission denied" in result.stderr


@pytest.mark.tom("TOM-SSH-02")
def test_only_admin_key_files_exist(host, role_vars, evidence):
    """Keys live root-owned in /etc/ssh/authorized_keys, one file per named admin."""
    keys_dir = role_vars["ssh_access_keys_dir"]
    files = sorted(host.check_output(f"ls -1 {keys_dir}").split())
    evidence("key files", files)
    assert files == sorted(a["name"] for a in role_vars["ssh_access_admins"])
    for name in files:
        f = host.file(f"{keys_dir}/{name}")
        assert f.user == "root" and not f.mode & 0o022


@pytest.mark.tom("TOM-SSH-03")
def test_ssh_audit_policy_passes(address, port, role_vars, evidence):
    """ssh-audit against the live port passes the built-in hardened policy of the host's release."""
    policy = role_vars["ssh_access_audit_policy"]
    evidence("policy", policy)
    proc = subprocess.run(
        [sys.executable, "-m", "ssh_audit", "-n", "-P", policy, "-p", str(port), address],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    evidence("ssh-audit", proc.stdout.strip().splitlines()[-12:])
    assert proc.returncode == 0, proc.stdout
    assert "Passed" in proc.stdout


@pytest.mark.tom("TOM-SSH-03")
def test_sshd_offers_only_configured_algorithms(sshd, role_vars, evidence):
    """sshd -T lists exactly the role's algorithm lists, which are all strong."""
    for key, var, strong in (
        ("kexalgorithms", "ssh_access_kex_algorithms", "ssh_access_strong_kex"),
        ("ciphers", "ssh_access_ciphers", "ssh_access_strong_ciphers"),
        ("macs", "ssh_access_macs", "ssh_access_strong_macs"),
        ("hostkeyalgorithms", "ssh_access_host_key_algorithms", "ssh_access_strong_host_key_algorithms"),
    ):
        offered = sshd[key].split(",")
        evidence(key, offered)
        assert offered == list(role_vars[var])
        assert set(offered) <= set(role_vars[strong])


@pytest.mark.tom("TOM-SSH-03")
def test_host_keys_are_strong(host, role_vars, evidence):
    """Only Ed25519 and RSA host keys, RSA with the required size."""
    keys = host.check_output("for k in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -l -f $k; done").splitlines()
    evidence("host keys", keys)
    kinds = {line.rsplit("(", 1)[1].rstrip(")"): int(line.split()[0]) for line in keys}
    assert set(kinds) == {"ED25519", "RSA"}
    assert kinds["RSA"] >= int(role_vars["ssh_access_rsa_host_key_bits"])
    min_bits = int(role_vars["ssh_access_moduli_min_bits"])
    small = host.check_output(f"awk '$1 !~ /^#/ && NF >= 7 && $5 + 1 < {min_bits}' /etc/ssh/moduli | wc -l")
    evidence("moduli below minimum", int(small))
    assert int(small) == 0
