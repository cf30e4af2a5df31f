"""TOM-PWD-01: passwords are stored only as strong hashes; empty ones never work.

Checks the effect: a password set through PAM comes out with the configured
hash, an empty password does not authenticate, and /etc/shadow holds no
weak or empty hash.
"""

from __future__ import annotations

import secrets

import pytest

ROLE = "password_policy"
PROBE_USER = "tw-pwprobe"
ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# crypt(5) prefixes, strongest first.
HASH_TYPES = [
    ("$y$", "yescrypt"),
    ("$gy$", "gost-yescrypt"),
    ("$7$", "scrypt"),
    ("$6$", "sha512"),
    ("$5$", "sha256"),
    ("$2b$", "bcrypt"),
    ("$2y$", "bcrypt"),
    ("$2a$", "bcrypt"),
    ("$1$", "md5"),
]


def hash_type(field: str) -> str:
    """Name the hash in a shadow password field ('locked' for !/* fields, 'empty' for none)."""
    if field == "":
        return "empty"
    if field[0] in "!*":
        return "locked"
    for prefix, name in HASH_TYPES:
        if field.startswith(prefix):
            return name
    return "des"


@pytest.fixture(scope="module")
def shadow(host) -> dict[str, str]:
    content = host.file("/etc/shadow").content_string
    return {line.split(":")[0]: line.split(":")[1] for line in content.splitlines() if line}


@pytest.fixture
def probe_user(host):
    host.run(f"userdel --remove {PROBE_USER}")
    host.check_output(f"useradd --create-home {PROBE_USER}")
    yield PROBE_USER
    host.run(f"userdel --remove {PROBE_USER}")


@pytest.mark.tom("TOM-PWD-01")
def test_stored_hashes_are_strong(shadow, role_vars, evidence):
    """No account in /etc/shadow has an empty password or a hash weaker than allowed."""
    types = {user: hash_type(field) for user, field in shadow.items()}
    present = sorted({t for t in types.values() if t != "locked"})
    evidence("hash types present", present)
    assert "empty" not in present, [u for u, t in types.items() if t == "empty"]
    weak = {u: t for u, t in types.items() if t not in ("locked", *role_vars["password_policy_allowed_hashes"])}
    assert weak == {}


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
