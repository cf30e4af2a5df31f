"""TOM-PWD-01: passwords are stored only as strong hashes; empty ones never work.

Checks the effect: a password set through PAM comes out with the configured
hash, and an empty password does not authenticate. That /etc/shadow holds no
weak or empty hash is the host's own measurement (test_probes.py), the one
its exporter shows.
"""

from __future__ import annotations

import secrets

import pytest

from tomwerk_host.exporter.collectors.password import hash_type

ROLE = "password_policy"
PROBE_USER = "tw-pwprobe"
ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@pytest.fixture
def probe_user(host):
    host.run(f"userdel --remove {PROBE_USER}")
    host.check_output(f"useradd --create-home {PROBE_USER}")
    yield PROBE_USER
    host.run(f"userdel --remove {PROBE_USER}")


@pytest.mark.tom("TOM-PWD-01")
def test_new_password_gets_configured_hash(host, probe_user, role_vars, evidence):
    """A password set through PAM (chpasswd) is stored with the configured hash and cost."""
    host.check_output(f"echo '{probe_user}:{secrets.token_urlsafe(16)}' | chpasswd")
    field = host.check_output(f"getent shadow {probe_user}").split(":")[1]
    evidence("new hash", field.split("$")[1:3])
    assert hash_type(field) == role_vars["password_policy_hash"]
    if role_vars["password_policy_hash"] == "yescrypt":  # noqa: S105 (a hash name, not a password)
        # libxcrypt writes yescrypt parameters as "j" + N + "T": N is the
        # crypt base-64 digit of (cost factor + 6), e.g. cost 5 -> "$y$j9T$".
        cost = int(role_vars["password_policy_yescrypt_cost"])
        assert field.startswith(f"$y$j{ITOA64[cost + 6]}T$")
    else:
        assert f"rounds={role_vars['password_policy_sha512_rounds']}" in field


@pytest.mark.tom("TOM-PWD-01")
def test_empty_password_does_not_authenticate(host, probe_user, evidence):
    """An account with an empty password field cannot be entered without a password (no nullok)."""
    host.check_output(f"passwd --delete {probe_user}")
    result = host.run(f"runuser -u nobody -- su -s /bin/true {probe_user} < /dev/null")
    evidence("su into empty-password account", (result.stderr or result.stdout).strip())
    assert result.rc != 0
