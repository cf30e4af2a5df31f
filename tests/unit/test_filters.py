"""The filter plugins the roles' input checks rely on."""

from __future__ import annotations

import base64
import os
import struct
import subprocess
import sys

import pytest
from ansible.errors import AnsibleFilterError

from tests.unit.loaders import filter_plugin
from tomwerk import ROOT

filters = filter_plugin()


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _rsa_key(bits: int) -> str:
    modulus = (1 << (bits - 1)) | 1
    blob = (
        _ssh_string(b"ssh-rsa")
        + _ssh_string(b"\x01\x00\x01")
        + _ssh_string(b"\x00" + modulus.to_bytes(bits // 8, "big"))
    )
    return "ssh-rsa " + base64.b64encode(blob).decode() + " someone"


def test_rsa_key_length_is_read_from_the_modulus():
    assert filters.ssh_pubkey_info(_rsa_key(2048)) == {"type": "ssh-rsa", "bits": 2048, "valid": True}
    assert filters.ssh_pubkey_info(_rsa_key(4096))["bits"] == 4096


def test_ed25519_and_garbage():
    blob = _ssh_string(b"ssh-ed25519") + _ssh_string(b"\x11" * 32)
    assert filters.ssh_pubkey_info("ssh-ed25519 " + base64.b64encode(blob).decode())["valid"]
    assert not filters.ssh_pubkey_info("ssh-ed25519 AAAA!!")["valid"]
    # outer type says ed25519, inner blob says rsa: not valid
    assert not filters.ssh_pubkey_info("ssh-ed25519 " + _rsa_key(2048).split()[1])["valid"]
    assert not filters.ssh_pubkey_info("")["valid"]


def test_networks_and_ports():
    assert filters.is_network("10.0.0.0/8") and filters.is_network("2001:db8::/32") and filters.is_network("192.0.2.1")
    assert not filters.is_network("office-lan")
    assert filters.ip_in_networks("10.1.2.3", ["192.0.2.0/24", "10.0.0.0/8"])
    assert not filters.ip_in_networks("203.0.113.5", ["10.0.0.0/8", "bogus"])
    assert not filters.ip_in_networks("", ["10.0.0.0/8"])
    assert filters.ip_family("2001:db8::/32") == "ip6" and filters.ip_family("10.0.0.0/8") == "ip"
    assert filters.is_port(443) and filters.is_port("8443")
    assert not any(filters.is_port(p) for p in (0, 65536, "http", True, -1, "4.5"))


def test_ip_range():
    assert filters.ip_range("10.0.0.0/8") == "10.0.0.0-10.255.255.255"
    assert filters.ip_range("fe80::/10") == "fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff"


def test_domain_of():
    assert filters.domain_of("turn.meet.example.com", ["example.com"]) == "example.com"
    assert filters.domain_of("example.com.", ["Example.com"]) == "example.com"
    assert filters.domain_of("meet.jit.si", ["example.com"]) == ""
    assert filters.domain_of("badexample.com", ["example.com"]) == ""


def test_postfix_list_with_appends_only_what_is_missing():
    assert filters.postfix_list_with("", "inet:127.0.0.1:7357") == "inet:127.0.0.1:7357"
    assert filters.postfix_list_with("a, b", "c") == "a b c"
    assert filters.postfix_list_with("a b", "a") == "a b"


def test_postfix_list_with_keeps_the_order_under_every_string_hash_seed():
    # The idempotence failure on mail1: a set-based union put the two milters
    # in the order of that run's string hashes. Each seed is a fresh process.
    script = (
        "import importlib.util,sys;"
        f"s=importlib.util.spec_from_file_location('f', {str(ROOT / 'plugins' / 'filter' / 'tomwerk.py')!r});"
        "m=importlib.util.module_from_spec(s);s.loader.exec_module(m);"
        "print(m.postfix_list_with('inet:127.0.0.1:7357 inet:127.0.0.1:7358', 'inet:127.0.0.1:7357'))"
    )
    results = {
        seed: subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in range(12)
    }
    assert set(results.values()) == {"inet:127.0.0.1:7357 inet:127.0.0.1:7358"}, results


def test_release_vars_reads_the_release_file_of_the_role():
    for major, kex in (("12", "sntrup761x25519-sha512"), ("13", "mlkem768x25519-sha256")):
        release = filters.release_vars(ROOT / "roles" / "ssh_access", major)
        assert release["kex_algorithms"][0] == kex
    # A neighbour role's file, as backup_target reads ssh_access's.
    via = filters.release_vars(f"{ROOT}/roles/backup_target/../ssh_access", "13")
    assert via == filters.release_vars(ROOT / "roles" / "ssh_access", "13")


def test_release_vars_refuses_a_release_without_a_file_and_names_the_known_ones():
    refused = r"role ssh_access has no settings for Debian 11 .*supports Debian 12, 13"
    with pytest.raises(AnsibleFilterError, match=refused):
        filters.release_vars(ROOT / "roles" / "ssh_access", "11")


def test_release_aware_roles_read_their_file_through_the_one_filter():
    users = []
    for vars_main in sorted((ROOT / "roles").glob("*/vars/main.yml")):
        text = vars_main.read_text()
        assert "/vars/Debian-" not in text, f"{vars_main}: use tomwerk.toms.release_vars, not a file lookup"
        if "tomwerk.toms.release_vars" in text:
            users.append(vars_main.parent.parent.name)
    assert users == ["jitsi", "log_privacy", "ssh_access", "web_tls"]
