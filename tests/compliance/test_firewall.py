"""TOM-FW-01: inbound traffic is dropped unless one of the host's roles needs it.

The expected allow-list is computed from the same variables the roles used:
SSH from the admin networks, each carried role's <role>_firewall_allow, and
the inventory's firewall_allow. The live ruleset (nft -j) must match it, and
a socket probe from another host must find exactly those ports answering.
"""

from __future__ import annotations

import json

import pytest

from tests.compliance.conftest import in_networks

ROLE = "firewall"
# Probed on every host besides the allowed and listening ports: common
# services an attacker would try. They must all be filtered.
EXTRA_PROBE_PORTS = [21, 23, 25, 80, 111, 443, 3306, 5432, 6379, 8080, 9090, 9100]
# A listener the test starts itself, so a closed port is proven to be the
# firewall's doing and not just "nothing listens".
CANARY_PORT = 18081

PROBE = r"""
import json, socket, sys, concurrent.futures as cf
addr, ports = sys.argv[1], [int(p) for p in sys.argv[2].split(",")]
def probe(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(1.5)
    try:
        rc = s.connect_ex((addr, port))
    except socket.timeout:
        return port, "filtered"
    finally:
        s.close()
    return port, {0: "open", 111: "refused", 11: "filtered", 110: "filtered"}.get(rc, "error-%d" % rc)
with cf.ThreadPoolExecutor(32) as ex:
    print(json.dumps(dict(ex.map(probe, ports))))
"""


def expected_allow(inventory, hostname) -> list[dict]:
    """Allow entries the roles on this host asked for, as they asked."""
    fw = inventory.role_vars(hostname, "firewall")
    entries = [{"port": int(fw["firewall_ssh_port"]), "proto": "tcp", "sources": list(fw["firewall_ssh_sources"])}]
    entries += [dict(e) for e in fw["firewall_allow"]]
    for role in inventory.roles_by_host[hostname]:
        entries += [dict(e) for e in inventory.role_vars(hostname, role).get(f"{role}_firewall_allow", [])]
    for e in entries:
        e["port"], e["proto"], e["sources"] = int(e["port"]), e.get("proto", "tcp"), list(e.get("sources", []))
    return entries


@pytest.fixture(scope="module")
def ruleset(host):
    return json.loads(host.check_output("nft -j list table inet tomwerk"))["nftables"]


def accepted_ports(ruleset) -> set[tuple[str, int]]:
    """(proto, port) pairs that some rule of the input chain accepts."""
    found = set()
    for item in ruleset:
        rule = item.get("rule")
        if not rule or rule["chain"] != "input":
            continue
        if not any("accept" in stmt for stmt in rule["expr"]):
            continue
        for stmt in rule["expr"]:
            match = stmt.get("match", {})
            left = match.get("left", {}).get("payload", {})
            if left.get("field") == "dport":
                ports = match["right"]
                ports = ports.get("set", [ports]) if isinstance(ports, dict) else [ports]
                found |= {(left["protocol"], int(p)) for p in ports}
    return found


@pytest.mark.tom("TOM-FW-01")
def test_inbound_default_is_drop(ruleset, host, evidence):
    """The input chain drops by default, and the ruleset is loaded at boot."""
    chains = {i["chain"]["name"]: i["chain"] for i in ruleset if "chain" in i}
    evidence("input policy", chains["input"].get("policy"))
    assert chains["input"]["hook"] == "input"
    assert chains["input"]["policy"] == "drop"
    assert chains["forward"]["policy"] == "drop"
    assert host.service("nftables").is_enabled


@pytest.mark.tom("TOM-FW-01")
def test_ruleset_opens_exactly_what_the_roles_need(ruleset, inventory, hostname, evidence):
    """Every accepted port comes from a role of this host, and every port a role needs is accepted."""
    wanted = {(e["proto"], e["port"]) for e in expected_allow(inventory, hostname)}
    live = accepted_ports(ruleset)
    evidence("accepted ports", sorted(f"{p}/{n}" for p, n in live))
    assert live == wanted


@pytest.mark.tom("TOM-FW-01")
def test_only_allowed_ports_answer_from_another_host(host, hostname, address, inventory, peer, evidence):
    """From another host, exactly the ports allowed for that host's address answer."""
    peer_name, peer_host, peer_address = peer
    allowed = {
        e["port"] for e in expected_allow(inventory, hostname)
        if e["proto"] == "tcp" and (not e["sources"] or in_networks(peer_address, e["sources"]))
    }  # fmt: skip
    listening = _listening_tcp_ports(host)
    canary = host.run(
        f"systemd-run --unit=tw-canary-{CANARY_PORT} --collect python3 -m http.server {CANARY_PORT} --bind 0.0.0.0"
    )
    assert canary.rc == 0, canary.stderr
    try:
        host.run(f"for i in $(seq 50); do ss -ltn | grep -q ':{CANARY_PORT} ' && break; sleep 0.1; done")
        ports = sorted(allowed | _listening_tcp_ports(host) | set(EXTRA_PROBE_PORTS) | {CANARY_PORT})
        out = peer_host.check_output(f"python3 -c '{PROBE}' {address} {','.join(map(str, ports))}")
    finally:
        host.run(f"systemctl stop tw-canary-{CANARY_PORT}")
    states = {int(p): s for p, s in json.loads(out).items()}
    evidence(f"probe from {peer_name}", states)
    answering = {p for p, s in states.items() if s in ("open", "refused")}
    assert answering == allowed & set(ports)
    assert states[CANARY_PORT] == "filtered"
    assert listening - allowed <= {p for p, s in states.items() if s == "filtered"}


def _listening_tcp_ports(host) -> set[int]:
    out = host.check_output("ss -Hltn")
    return {int(line.split()[3].rsplit(":", 1)[1]) for line in out.splitlines() if line.strip()}
