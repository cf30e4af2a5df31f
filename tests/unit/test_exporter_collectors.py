"""The exporter's TOM checks on recorded hosts: compliant, and each drift flips exactly the right TOM and figure.

The recorded host is tests/unit/fixtures/exporter/compliant (see the README
there); each drift edits it the way a person or a package upgrade would.
"""

from __future__ import annotations

import json

import pytest

from tests.unit.exporter_helpers import (
    ALL_TOMS,
    FIXTURES,
    STATE_DIR,
    CollectorTests,
    RecordedHost,
    make_exporter,
    no_errors,
    personal_label_values,
    scrape,
)
from tomwerk_host.exporter import core
from tomwerk_host.exporter.collectors import firewall, password, ssh
from tomwerk_host.exporter.collectors.firewall import NFT_LIST
from tomwerk_host.exporter.collectors.ssh import SSHD_T

NFT = FIXTURES / "nft"
KEYS = "/etc/ssh/authorized_keys"
MALLORY_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE5mYWtlLWtleS1vZi1hLW5vbi1hZG1pbi1vbmx5 mallory\n"
MD5_HASH = "$1$iJ3a01Xs$DDrrw9wOwmQpi9SbI8VPY."
SHA512_HASH = (
    "$6$rounds=65536$8yDDgAO9veS1kU/e$"
    "wddIJbKvPT48fg9/pTd9NVb7nUnvgGV2iAQNVd9POPj7V.uovBdOnRjXN9MD.9vrMnWqlYtfJeWmkXoxfW4u0/"
)

# The figures of the compliant recording (series -> value); every drift states what changes.
COMPLIANT_FIGURES = {
    ("tomwerk_ssh_login_allowed_accounts", ()): 2,
    ("tomwerk_ssh_password_auth_enabled", ()): 0,
    ("tomwerk_ssh_unexpected_key_files", ()): 0,
    ("tomwerk_ssh_weak_algorithms_offered", ()): 0,
    ("tomwerk_firewall_default_inbound_policy", (("policy", "drop"),)): 1,
    ("tomwerk_firewall_default_inbound_policy", (("policy", "accept"),)): 0,
    ("tomwerk_firewall_default_inbound_policy", (("policy", "none"),)): 0,
    ("tomwerk_firewall_open_ports", ()): 4,
    ("tomwerk_firewall_unexpected_open_ports", ()): 0,
    ("tomwerk_firewall_missing_open_ports", ()): 0,
    ("tomwerk_password_weakest_hash_strength", ()): 6,
    ("tomwerk_password_weakest_hash_info", (("type", "yescrypt"),)): 1,
    ("tomwerk_password_empty_accounts", ()): 0,
    ("tomwerk_password_weak_hash_accounts", ()): 0,
}


def policy(live: str) -> dict:
    return {
        ("tomwerk_firewall_default_inbound_policy", (("policy", p),)): 1 if p == live else 0
        for p in ("drop", "accept", "none")
    }


def weakest(kind: str, strength: int) -> dict:
    return {
        ("tomwerk_password_weakest_hash_strength", ()): strength,
        ("tomwerk_password_weakest_hash_info", (("type", "yescrypt"),)): None,
        ("tomwerk_password_weakest_hash_info", (("type", kind),)): 1,
    }


# --------------------------------------------------------------------- drifts


def _sshd(old, new):
    return lambda h: h.edit_output(SSHD_T, old, new)


def _add_user(h, name="mallory", allow=True, account=True, key_file=True):
    if account:
        h.files["/etc/passwd"] += f"{name}:x:1002:1002:Mallory:/home/{name}:/bin/bash\n"
    if allow:
        h.edit_output(SSHD_T, "allowusers bob\n", f"allowusers bob\nallowusers {name}\n")
    if key_file:
        h.files[f"{KEYS}/{name}"] = MALLORY_KEY


def _nft(name):
    return lambda h: h.set_output(NFT_LIST, NFT / f"{name}.json")


def _shadow_line(name, field):
    def apply(h):
        h.files["/etc/shadow"] += f"{name}:{field}:20413:0:99999:7:::\n"

    return apply


def _group_writable_key(h):
    h.modes[f"{KEYS}/bob"] = (0, 0o100664)


def _role_needs_smtp(h):
    h.files[f"{STATE_DIR}/firewall-allow/mail.json"] = json.dumps(
        {"owner": "mail", "entries": [{"port": 25, "proto": "tcp", "sources": []}]}
    )


# id: (drift, failing TOMs, figures that change from COMPLIANT_FIGURES; None: the series disappears)
DRIFTS = {
    "PasswordAuthentication yes": (
        _sshd("passwordauthentication no", "passwordauthentication yes"),
        {"TOM-SSH-01"},
        {("tomwerk_ssh_password_auth_enabled", ()): 1},
    ),
    "KbdInteractiveAuthentication yes": (
        _sshd("kbdinteractiveauthentication no", "kbdinteractiveauthentication yes"),
        {"TOM-SSH-01"},
        {("tomwerk_ssh_password_auth_enabled", ()): 1},
    ),
    "AuthenticationMethods any": (
        _sshd("authenticationmethods publickey", "authenticationmethods any"),
        {"TOM-SSH-01"},
        {},
    ),
    "PermitRootLogin yes": (_sshd("permitrootlogin no", "permitrootlogin yes"), {"TOM-SSH-01"}, {}),
    "PermitEmptyPasswords yes": (_sshd("permitemptypasswords no", "permitemptypasswords yes"), {"TOM-SSH-01"}, {}),
    "extra AllowUsers with account and key": (
        _add_user,
        {"TOM-SSH-02"},
        {("tomwerk_ssh_login_allowed_accounts", ()): 3, ("tomwerk_ssh_unexpected_key_files", ()): 1},
    ),
    "extra AllowUsers without account": (
        lambda h: _add_user(h, "ghost", account=False, key_file=False),
        {"TOM-SSH-02"},
        {},
    ),
    "AllowUsers missing an admin": (
        _sshd("allowusers bob\n", ""),
        {"TOM-SSH-02"},
        {("tomwerk_ssh_login_allowed_accounts", ()): 1},
    ),
    "AllowGroups set": (
        _sshd("allowusers alice\n", "allowusers alice\nallowgroups tomwerk-admins\n"),
        {"TOM-SSH-02"},
        {},
    ),
    "stray key file of a non-admin": (
        lambda h: _add_user(h, allow=False),
        {"TOM-SSH-02"},
        {("tomwerk_ssh_unexpected_key_files", ()): 1},
    ),
    "key file writable by its group": (_group_writable_key, {"TOM-SSH-02"}, {}),
    "admin key file gone": (
        lambda h: h.files.pop(f"{KEYS}/bob"),
        {"TOM-SSH-02"},
        {("tomwerk_ssh_login_allowed_accounts", ()): 1},
    ),
    "AuthorizedKeysFile in home": (
        _sshd("authorizedkeysfile /etc/ssh/authorized_keys/%u", "authorizedkeysfile .ssh/authorized_keys"),
        {"TOM-SSH-02"},
        {("tomwerk_ssh_login_allowed_accounts", ()): 0},
    ),
    "weak cipher": (
        _sshd(",aes128-ctr\n", ",aes128-ctr,aes128-cbc\n"),
        {"TOM-SSH-03"},
        {("tomwerk_ssh_weak_algorithms_offered", ()): 1},
    ),
    "weak MAC and kex": (
        lambda h: (
            h.edit_output(SSHD_T, "umac-128-etm@openssh.com\n", "umac-128-etm@openssh.com,hmac-sha1\n"),
            h.edit_output(SSHD_T, "group-exchange-sha256\n", "group-exchange-sha256,diffie-hellman-group14-sha1\n"),
        ),
        {"TOM-SSH-03"},
        {("tomwerk_ssh_weak_algorithms_offered", ()): 2},
    ),
    "strong algorithms in another order": (
        _sshd(
            "ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com",
            "ciphers aes256-gcm@openssh.com,chacha20-poly1305@openssh.com",
        ),
        {"TOM-SSH-03"},
        {},
    ),
    "input policy accept": (_nft("policy_accept"), {"TOM-FW-01"}, policy("accept")),
    "extra open port": (
        _nft("extra_port"),
        {"TOM-FW-01"},
        {("tomwerk_firewall_unexpected_open_ports", ()): 1, ("tomwerk_firewall_open_ports", ()): 5},
    ),
    "missing open port": (
        _nft("missing_port"),
        {"TOM-FW-01"},
        {("tomwerk_firewall_missing_open_ports", ()): 1, ("tomwerk_firewall_open_ports", ()): 3},
    ),
    "table tomwerk gone": (
        _nft("no_table"),
        {"TOM-FW-01"},
        {
            **policy("accept"),  # fail2ban's own input chain accepts by default
            ("tomwerk_firewall_missing_open_ports", ()): 4,
            ("tomwerk_firewall_open_ports", ()): 0,
        },
    ),
    "a role opened a port the firewall lacks": (
        _role_needs_smtp,
        {"TOM-FW-01"},
        {("tomwerk_firewall_missing_open_ports", ()): 1},
    ),
    "md5 hash present": (
        _shadow_line("legacy", MD5_HASH),
        {"TOM-PWD-01"},
        {**weakest("md5", 2), ("tomwerk_password_weak_hash_accounts", ()): 1},
    ),
    "empty password": (
        _shadow_line("tw-empty", ""),
        {"TOM-PWD-01"},
        {**weakest("empty", 0), ("tomwerk_password_empty_accounts", ()): 1},
    ),
    "nullok back": (
        lambda h: h.edit("/etc/pam.d/common-auth", "pam_unix.so\n", "pam_unix.so nullok\n"),
        {"TOM-PWD-01"},
        {},
    ),
    "rounds changed": (lambda h: h.edit("/etc/pam.d/common-password", "rounds=5", "rounds=4"), {"TOM-PWD-01"}, {}),
    "PAM hash changed": (
        lambda h: h.edit("/etc/pam.d/common-password", "obscure yescrypt", "obscure sha512"),
        {"TOM-PWD-01"},
        {},
    ),
    # Not drifts: still compliant, with other figures.
    "sha512 hash stored (allowed)": (_shadow_line("legacy", SHA512_HASH), set(), weakest("sha512", 5)),
    "locked weak hash ignored": (_shadow_line("legacy", "!" + MD5_HASH), set(), {}),
    "no stored password at all": (
        lambda h: h.edit("/etc/shadow", "root:$y$", "root:!$y$"),
        set(),
        {
            ("tomwerk_password_weakest_hash_strength", ()): None,
            ("tomwerk_password_weakest_hash_info", (("type", "yescrypt"),)): None,
        },
    ),
}


# The collectors of every host (ssh, firewall, password); their own series, not the TOM and collector bookkeeping.
BASE = CollectorTests(
    name="",
    toms=ALL_TOMS,
    prefixes=("tomwerk_ssh_", "tomwerk_firewall_", "tomwerk_password_"),
    compliant=COMPLIANT_FIGURES,
    drifts=DRIFTS,
    host=RecordedHost,
    exporter=make_exporter,
)


def test_compliant_host():
    s = BASE.scrape()
    assert s.toms() == BASE.verdicts()
    assert s.errors() == no_errors()
    assert BASE.figures(s) == COMPLIANT_FIGURES


@pytest.mark.parametrize("name", DRIFTS)
def test_drift_flips_exactly_the_right_tom_and_figure(name):
    BASE.assert_drift(*DRIFTS[name])


def test_root_key_login_when_the_role_allows_it():
    host = RecordedHost()
    host.edit(
        f"{STATE_DIR}/ssh_access.json",
        '"ssh_access_permit_root_login": "no"',
        '"ssh_access_permit_root_login": "prohibit-password"',
    )
    host.edit(f"{STATE_DIR}/ssh_access.json", '["alice", "bob"]', '["alice", "bob", "root"]')
    host.edit_output(SSHD_T, "permitrootlogin no", "permitrootlogin without-password")
    host.edit_output(SSHD_T, "allowusers bob\n", "allowusers bob\nallowusers root\n")
    host.files[f"{KEYS}/root"] = MALLORY_KEY.replace("mallory", "root")
    s = scrape(make_exporter(host))
    assert s.toms() == dict.fromkeys(ALL_TOMS, 1)
    assert s.value("tomwerk_ssh_login_allowed_accounts") == 3


def test_every_recording_keeps_personal_data_out_of_labels():
    """All nft recordings (their rulesets name admin networks and a banned address) and all drifts."""
    for recording in sorted(NFT.glob("*.json")):
        host = RecordedHost()
        host.set_output(NFT_LIST, recording)
        assert personal_label_values(scrape(make_exporter(host))) == [], recording.name


# --------------------------------------------------------------------- ssh details


def _sshd_config(**changes) -> ssh.SshdConfig:
    text = (FIXTURES / "compliant" / "commands" / "sshd-T.txt").read_text()
    for old, new in changes.values():
        assert old in text
        text = text.replace(old, new)
    return ssh.SshdConfig(text)


def test_sshd_config_reads_repeated_and_joined_keywords():
    config = _sshd_config(users=("allowusers alice\nallowusers bob\n", "allowusers alice bob\nallowusers carol\n"))
    assert config.words("allowusers") == ["alice", "bob", "carol"]
    assert config.words("hostkey") == ["/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key"]
    assert config.get("port") == "22"


def test_kex_strict_marker_is_not_an_algorithm():
    config = _sshd_config(kex=("group-exchange-sha256\n", "group-exchange-sha256,kex-strict-s-v00@openssh.com\n"))
    assert "kex-strict-s-v00@openssh.com" not in config.algorithms("kexalgorithms")


def test_older_sshd_spells_kbdinteractive_challengeresponse():
    host = RecordedHost()
    host.edit_output(SSHD_T, "kbdinteractiveauthentication no", "challengeresponseauthentication yes")
    s = scrape(make_exporter(host))
    assert s.toms()["TOM-SSH-01"] == 0
    assert s.value("tomwerk_ssh_password_auth_enabled") == 1


ADMINS_ALLOWED = "allowusers alice\nallowusers bob\n"
KEYS_IN_HOME = ("authorizedkeysfile /etc/ssh/authorized_keys/%u", "authorizedkeysfile .ssh/authorized_keys %h/.ssh/k2")


@pytest.mark.parametrize(
    ("sshd_changes", "extra_files", "expected"),
    [
        pytest.param({}, {}, 2, id="recorded"),
        # No AllowUsers: every account with a login shell and a key may log in (carol's shell is /bin/sh).
        pytest.param(
            {"users": (ADMINS_ALLOWED, "")},
            {f"{KEYS}/www-data": MALLORY_KEY, f"{KEYS}/carol": MALLORY_KEY},
            3,
            id="no-allowusers",
        ),
        pytest.param({"users": (ADMINS_ALLOWED, "allowusers ?o* alice@10.231.0.0/24\n")}, {}, 2, id="patterns"),
        pytest.param({"deny": ("allowusers bob\n", "allowusers bob\ndenyusers bob\n")}, {}, 1, id="denyusers"),
        pytest.param(
            {"deny": ("allowusers bob\n", "allowusers bob\ndenyusers bob@192.0.2.1\n")}, {}, 2, id="denyusers-from-host"
        ),
        pytest.param({"groups": ("allowusers bob\n", "allowusers bob\nallowgroups bob\n")}, {}, 1, id="allowgroups"),
        pytest.param(
            {"groups": ("allowusers bob\n", "allowusers bob\ndenygroups tomwerk-admins\n")}, {}, 0, id="denygroups"
        ),
        pytest.param(
            {"cmd": ("authorizedkeyscommand none", "authorizedkeyscommand /usr/bin/ldap-keys %u")},
            {f"{KEYS}/bob": None},
            2,
            id="keys-command",
        ),
        pytest.param(
            {"keys": KEYS_IN_HOME},
            {"/home/alice/.ssh/k2": "# only a comment\n", "/home/bob/.ssh/authorized_keys": MALLORY_KEY},
            1,
            id="keys-in-home",
        ),
        # A FIFO in a home (here: alice's) is never read: reading it would hang the check.
        pytest.param(
            {"keys": KEYS_IN_HOME},
            {"/home/alice/.ssh/k2": FileExistsError("must not be read"), "/home/bob/.ssh/k2": MALLORY_KEY},
            1,
            id="keys-file-is-a-fifo",
        ),
    ],
)
def test_login_allowed_accounts(sshd_changes, extra_files, expected):
    host = RecordedHost()
    host.modes["/home/alice/.ssh/k2"] = (1000, 0o010644)  # S_IFIFO; only used where that file exists
    host.files["/etc/passwd"] += "carol:x:1003:1003::/home/carol:\n"  # empty shell field: /bin/sh
    for path, content in extra_files.items():
        if content is None:
            host.files.pop(path)
        else:
            host.files[path] = content
    assert ssh._login_allowed_accounts(_sshd_config(**sshd_changes), host) == expected


# --------------------------------------------------------------------- firewall details


def _ruleset(path) -> firewall.Ruleset:
    return firewall.Ruleset(path.read_text())


def test_nft_shapes_recorded_from_nft_106():
    """Sets, ranges, th dport with l4proto, a named set, ip6 saddr, a jump; a drop rule does not open."""
    live = _ruleset(NFT / "shapes.json").accepted_ports("inet", "tomwerk", "input")
    expected = {("tcp", 22), ("tcp", 25), ("tcp", 465), ("tcp", 587), ("udp", 3478), ("tcp", 53), ("udp", 53)}
    expected |= {("udp", p) for p in range(60000, 60011)} | {("udp", p) for p in range(49152, 49156)}
    expected |= {("tcp", 10050), ("tcp", 10051), ("tcp", 5666)}
    assert live == expected


def _rules(*exprs, policy="drop") -> str:
    chain = {"family": "inet", "table": "tomwerk", "name": "input", "type": "filter", "hook": "input", "policy": policy}
    items = [{"table": {"family": "inet", "name": "tomwerk", "handle": 1}}, {"chain": chain}]
    items += [
        {"rule": {"family": "inet", "table": "tomwerk", "chain": "input", "handle": i, "expr": e}}
        for i, e in enumerate(exprs)
    ]
    return json.dumps({"nftables": items})


def _dport(right, op="==", proto="tcp"):
    return {"match": {"op": op, "left": {"payload": {"protocol": proto, "field": "dport"}}, "right": right}}


ACCEPT = {"accept": None}


TCP_DPORT = {"payload": {"protocol": "tcp", "field": "dport"}}
VMAP = {"vmap": {"key": TCP_DPORT, "data": {"set": [[22, ACCEPT], [23, {"drop": None}]]}}}
CT_STATE = {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}
SET_ELEM = {"set": [{"elem": {"val": 443, "counter": {"packets": 0, "bytes": 0}}}]}


@pytest.mark.parametrize(
    ("exprs", "expected"),
    [
        pytest.param([[_dport(22), ACCEPT]], {("tcp", 22)}, id="int"),
        pytest.param([[_dport("22"), ACCEPT]], {("tcp", 22)}, id="digits"),
        pytest.param([[_dport(22, "!="), ACCEPT]], {("tcp", p) for p in range(1, 65536) if p != 22}, id="not-equal"),
        pytest.param([[_dport(1024, "<"), ACCEPT]], {("tcp", p) for p in range(1, 1024)}, id="less-than"),
        pytest.param([[_dport(SET_ELEM), ACCEPT]], {("tcp", 443)}, id="set-elem"),
        pytest.param([[_dport(53, proto="th"), ACCEPT]], {("tcp", 53), ("udp", 53)}, id="th-without-l4proto"),
        pytest.param([[VMAP]], {("tcp", 22)}, id="vmap"),
        pytest.param([[_dport(22), {"counter": {"packets": 1, "bytes": 2}}, {"drop": None}]], set(), id="drop"),
        pytest.param([[CT_STATE, ACCEPT]], set(), id="ct-state"),
    ],
)
def test_nft_dport_forms(exprs, expected):
    assert firewall.Ruleset(_rules(*exprs)).accepted_ports("inet", "tomwerk", "input") == expected


@pytest.mark.parametrize("right", [True, "@no_such_set", "ssh-ish", {"concat": [1, 2]}])
def test_unreadable_dport_is_a_check_error(right):
    with pytest.raises(core.CheckError):
        firewall.Ruleset(_rules([_dport(right), ACCEPT])).accepted_ports("inet", "tomwerk", "input")


def test_inbound_policy_needs_both_ip_versions_dropped():
    def chain(family, policy, name="in"):
        return {
            "chain": {"family": family, "table": "t", "name": name, "type": "filter", "hook": "input", "policy": policy}
        }

    def live(*chains):
        return firewall.Ruleset(json.dumps({"nftables": list(chains)})).inbound_policy()

    assert live() == "none"
    assert live(chain("ip", "drop")) == "accept"  # IPv6 is not filtered at all
    assert live(chain("ip", "drop"), chain("ip6", "drop")) == "drop"
    assert live(chain("inet", "drop"), chain("inet", "accept", "other")) == "drop"
    assert live(chain("inet", "accept")) == "accept"


def test_broken_allow_fragment_is_a_state_error():
    host = RecordedHost()
    host.files[f"{STATE_DIR}/firewall-allow/mail.json"] = '{"owner": "mail", "entries": [{"port": "smtp"}]}'
    s = scrape(make_exporter(host))
    assert s.toms()["TOM-FW-01"] == 0 and s.errors()["firewall"] == 1


def test_port_as_digit_string_in_state():
    host = RecordedHost()
    host.edit(f"{STATE_DIR}/firewall.json", '"firewall_ssh_port": 22', '"firewall_ssh_port": "22"')
    assert scrape(make_exporter(host)).toms()["TOM-FW-01"] == 1


# --------------------------------------------------------------------- password details


@pytest.mark.parametrize(
    ("field", "kind"),
    [
        ("", "empty"),
        ("!", "locked"),
        ("*", "locked"),
        ("!" + MD5_HASH, "locked"),
        (MD5_HASH, "md5"),
        (SHA512_HASH, "sha512"),
        ("$5$abc$def", "sha256"),
        ("$2b$12$abc", "bcrypt"),
        ("$gy$j9T$abc$def", "gost-yescrypt"),
        ("$7$abc", "scrypt"),
        ("abJnggxhB/yWI", "des"),
        ("$3$$8846f7eaee8fb117ad06bdd830b7586c", "des"),
    ],
)
def test_hash_types(field, kind):
    assert password.hash_type(field) == kind


def test_pam_lines_with_full_path_optional_module_and_continuation():
    text = (
        "# password [success=1] pam_unix.so md5\n"
        "-password [success=1 default=ignore] /lib/x86_64-linux-gnu/security/pam_unix.so obscure \\\n"
        "    sha512 rounds=65536 # trailing comment\n"
        "password requisite pam_deny.so\n"
    )
    assert password.pam_unix_args(text, "password") == [["obscure", "sha512", "rounds=65536"]]


def test_sha512_policy():
    host = RecordedHost()
    host.edit(
        f"{STATE_DIR}/password_policy.json", '"password_policy_hash": "yescrypt"', '"password_policy_hash": "sha512"'
    )
    host.edit("/etc/pam.d/common-password", "obscure yescrypt rounds=5", "obscure yescrypt sha512 rounds=65536")
    assert scrape(make_exporter(host)).toms()["TOM-PWD-01"] == 1
    host.edit("/etc/pam.d/common-password", "sha512 rounds=65536", "sha512 rounds=65536 yescrypt")
    assert scrape(make_exporter(host)).toms()["TOM-PWD-01"] == 0  # the last hash option wins


def test_nullok_secure_counts_as_nullok():
    host = RecordedHost()
    host.edit("/etc/pam.d/common-auth", "pam_unix.so\n", "pam_unix.so nullok_secure\n")
    assert scrape(make_exporter(host)).toms()["TOM-PWD-01"] == 0
