"""TOM-FW-01: the live nftables ruleset (nft -j) against what the roles opened.

Mirrors tests/compliance/test_firewall.py: table inet tomwerk drops inbound
by default, and the (proto, port) pairs its input chain accepts are exactly
SSH, firewall_allow and every role's allow entries. The expected set comes
from firewall.json plus one firewall-allow/<role>.json per role that opened
ports.
"""

from __future__ import annotations

import json
import os

from ..core import CheckError, Collector, Host, Report, State, StateError, one_line, to_int

NFT_LIST = ("/usr/sbin/nft", "-j", "list", "ruleset")
TOM = "TOM-FW-01"
TABLE = ("inet", "tomwerk")
INPUT_CHAIN = "input"
PROTOCOLS = ("tcp", "udp")
ALL_PORTS = range(1, 65536)
POLICIES = ("drop", "accept", "none")
# Base chains in these families see inbound IPv4 / IPv6 packets.
INPUT_FAMILIES = {"ipv4": ("inet", "ip"), "ipv6": ("inet", "ip6")}

Port = tuple[str, int]


class FirewallCollector(Collector):
    name = "firewall"
    role = "firewall"
    toms = (TOM,)

    def check(self, state: State, host: Host) -> Report:
        expected = expected_ports(state, host)
        ruleset = Ruleset(host.output(NFT_LIST))
        report = Report()
        input_chain = ruleset.chains.get((*TABLE, INPUT_CHAIN))
        forward_chain = ruleset.chains.get((*TABLE, "forward"))
        report.require(TOM, TABLE in ruleset.tables, "table inet tomwerk is not loaded")
        report.require(
            TOM,
            bool(input_chain) and input_chain.get("hook") == "input" and input_chain.get("policy") == "drop",
            "the input chain of table inet tomwerk does not drop by default",
        )
        report.require(
            TOM,
            bool(forward_chain) and forward_chain.get("policy") == "drop",
            "the forward chain of table inet tomwerk does not drop by default",
        )
        live = ruleset.accepted_ports(*TABLE, INPUT_CHAIN) if input_chain else set()
        unexpected, missing = live - expected, expected - live
        report.require(TOM, not unexpected, f"{len(unexpected)} ports open that no role needs: {_show(unexpected)}")
        report.require(TOM, not missing, f"{len(missing)} ports a role needs are not open: {_show(missing)}")

        policy = ruleset.inbound_policy()
        for name in POLICIES:
            report.gauge(
                "tomwerk_firewall_default_inbound_policy",
                "Default for inbound packets no rule accepts (TOM-FW-01), one series per policy, 1 for the live one: "
                "drop if every input-hook path (IPv4 and IPv6) drops, none if no input-hook chain exists, "
                "else accept.",
                1 if name == policy else 0,
                policy=name,
            )
        report.gauge(
            "tomwerk_firewall_open_ports",
            "(protocol, port) pairs the input chain of table inet tomwerk accepts (TOM-FW-01).",
            len(live),
        )
        report.gauge(
            "tomwerk_firewall_unexpected_open_ports",
            "Accepted (protocol, port) pairs that no role on this host asked for (TOM-FW-01).",
            len(unexpected),
        )
        report.gauge(
            "tomwerk_firewall_missing_open_ports",
            "(protocol, port) pairs a role on this host needs that the firewall does not accept (TOM-FW-01).",
            len(missing),
        )
        return report


def _show(ports: set[Port], limit: int = 8) -> str:
    shown = [f"{proto}/{port}" for proto, port in sorted(ports)[:limit]]
    return ", ".join(shown) + (", ..." if len(ports) > limit else "")


# --------------------------------------------------------------------- expected


def expected_ports(state: State, host: Host) -> set[Port]:
    """SSH, firewall_allow and every firewall-allow/<role>.json entry, as (proto, port)."""
    port = to_int(state.value("firewall_ssh_port"))
    if port is None or port not in ALL_PORTS:
        raise StateError("firewall.json: vars.firewall_ssh_port is not a port number", state.toms)
    expected = {("tcp", port)}
    expected |= _entries(state.value("firewall_allow"), "firewall.json: vars.firewall_allow", state.toms)
    allow_dir = os.path.join(state.directory, "firewall-allow")
    for name in host.list_optional(allow_dir) or []:
        if not name.endswith(".json"):
            continue
        where = f"firewall-allow/{name}"
        try:
            data = json.loads(host.read(os.path.join(allow_dir, name)))
        except ValueError as exc:
            raise StateError(f"{where} is not valid JSON: {one_line(str(exc), 120)}", state.toms) from None
        if not isinstance(data, dict) or not isinstance(data.get("owner"), str):
            raise StateError(f"{where} has no owner", state.toms)
        expected |= _entries(data.get("entries"), f"{where}: entries", state.toms)
    return expected


def _entries(entries: object, where: str, toms: tuple[str, ...]) -> set[Port]:
    if not isinstance(entries, list):
        raise StateError(f"{where} is not a list", toms)
    found = set()
    for entry in entries:
        port = to_int(entry.get("port")) if isinstance(entry, dict) else None
        proto = entry.get("proto", "tcp") if isinstance(entry, dict) else None
        if port is None or port not in ALL_PORTS or proto not in PROTOCOLS:
            raise StateError(f"{where} has an entry without a valid port and proto", toms)
        found.add((proto, port))
    return found


# --------------------------------------------------------------------- live


class Ruleset:
    """nft -j list ruleset, indexed by (family, table[, name])."""

    def __init__(self, text: str):
        try:
            items = json.loads(text)["nftables"]
        except (ValueError, KeyError, TypeError):
            raise CheckError("nft -j list ruleset printed no nftables JSON") from None
        self.tables: set[tuple[str, str]] = set()
        self.chains: dict[tuple[str, str, str], dict] = {}
        self.sets: dict[tuple[str, str, str], list] = {}
        self.rules: dict[tuple[str, str, str], list[list]] = {}
        try:
            for item in items:
                if "table" in item:
                    self.tables.add((item["table"]["family"], item["table"]["name"]))
                elif "chain" in item:
                    c = item["chain"]
                    self.chains[(c["family"], c["table"], c["name"])] = c
                elif "set" in item:
                    s = item["set"]
                    self.sets[(s["family"], s["table"], s["name"])] = s.get("elem", [])
                elif "rule" in item:
                    r = item["rule"]
                    self.rules.setdefault((r["family"], r["table"], r["chain"]), []).append(list(r.get("expr", [])))
        except (KeyError, TypeError):
            raise CheckError("nft -j list ruleset printed an item without family, table or name") from None

    def inbound_policy(self) -> str:
        """drop, accept or none: what happens to inbound packets that no rule accepts."""
        per_version = []
        for families in INPUT_FAMILIES.values():
            chains = [
                c
                for c in self.chains.values()
                if c.get("hook") == "input" and c.get("type") == "filter" and c["family"] in families
            ]
            # A packet must pass every base chain of the hook: one dropping chain drops it.
            if any(c.get("policy") == "drop" for c in chains):
                per_version.append("drop")
            else:
                per_version.append("accept" if chains else "none")
        if per_version == ["drop", "drop"]:
            return "drop"
        return "none" if per_version == ["none", "none"] else "accept"

    def accepted_ports(self, family: str, table: str, chain: str, seen: frozenset = frozenset()) -> set[Port]:
        """(proto, port) pairs that an accepting rule of the chain, or of a chain it jumps to, matches.

        Like the lab's parser this reads only the dport of accepting rules
        (source restrictions do not count). The matches before a jump are
        ignored, which can only overstate what is open.
        """
        found: set[Port] = set()
        for expr in self.rules.get((family, table, chain), []):
            for stmt in expr:
                for verdict in ("jump", "goto"):
                    target = stmt.get(verdict, {}).get("target") if isinstance(stmt, dict) else None
                    if target and target not in seen:
                        found |= self.accepted_ports(family, table, target, seen | {chain})
            found |= self._rule_ports(family, table, expr)
        return found

    def _rule_ports(self, family: str, table: str, expr: list) -> set[Port]:
        stmts = [s for s in expr if isinstance(s, dict)]
        found: set[Port] = set()
        for stmt in stmts:
            # tcp dport vmap { 22 : accept, 25 : drop }
            vmap = stmt.get("vmap")
            if isinstance(vmap, dict) and _dport(vmap.get("key")):
                protos = self._protocols(_dport(vmap["key"]), stmts)
                pairs = vmap.get("data", {}).get("set", []) if isinstance(vmap.get("data"), dict) else []
                for key, verdict in (p for p in pairs if isinstance(p, list) and len(p) == 2):
                    if isinstance(verdict, dict) and "accept" in verdict:
                        found |= {(p, n) for p in protos for n in self._ports(family, table, key)}
        if not any("accept" in s for s in stmts):
            return found
        for stmt in stmts:
            match = stmt.get("match")
            proto = _dport(match.get("left")) if isinstance(match, dict) else None
            if not proto:
                continue
            ports = self._ports(family, table, match.get("right"))
            op = match.get("op", "==")
            if op == "!=":
                ports = set(ALL_PORTS) - ports
            elif op in ("<", ">", "<=", ">="):
                ports = _compare(op, ports)
            elif op not in ("==", "in"):
                raise CheckError(f"cannot read a dport match with operator {op}")
            found |= {(p, n) for p in self._protocols(proto, stmts) for n in ports}
        return found

    def _protocols(self, proto: str, stmts: list[dict]) -> tuple[str, ...]:
        if proto != "th":
            return (proto,)
        # th dport: the transport protocols come from a meta l4proto match, if any.
        for stmt in stmts:
            match = stmt.get("match")
            if isinstance(match, dict) and match.get("left") == {"meta": {"key": "l4proto"}}:
                right = match.get("right")
                names = right.get("set", []) if isinstance(right, dict) else [right]
                return tuple(p for p in PROTOCOLS if p in names)
        return PROTOCOLS

    def _ports(self, family: str, table: str, right: object) -> set[int]:
        """Ports of a match's right side: a number, a set, a range, or a named set (@name)."""
        if isinstance(right, bool):
            raise CheckError(f"cannot read dport {right!r}")
        if isinstance(right, int):
            return {right}
        if isinstance(right, str):
            if right.isdigit():
                return {int(right)}
            if right.startswith("@") and (family, table, right[1:]) in self.sets:
                return self._ports(family, table, self.sets[(family, table, right[1:])])
            raise CheckError(f"cannot read dport {one_line(right, 40)}")
        if isinstance(right, list):
            return {p for r in right for p in self._ports(family, table, r)}
        if isinstance(right, dict):
            if "set" in right:
                return self._ports(family, table, right["set"])
            if "range" in right and isinstance(right["range"], list) and len(right["range"]) == 2:
                low, high = (next(iter(self._ports(family, table, r))) for r in right["range"])
                return set(range(low, high + 1))
            if "elem" in right:  # set elements with timeouts or counters
                return self._ports(family, table, right["elem"].get("val"))
        raise CheckError(f"cannot read dport {one_line(json.dumps(right), 60)}")


def _dport(left: object) -> str | None:
    """The protocol (tcp, udp, th, ...) if left is a dport payload, else None."""
    payload = left.get("payload") if isinstance(left, dict) else None
    if isinstance(payload, dict) and payload.get("field") == "dport":
        return payload.get("protocol")
    return None


def _compare(op: str, ports: set[int]) -> set[int]:
    if len(ports) != 1:
        raise CheckError(f"cannot read a dport {op} match against several ports")
    (bound,) = ports
    tests = {"<": bound.__gt__, ">": bound.__lt__, "<=": bound.__ge__, ">=": bound.__le__}
    return {p for p in ALL_PORTS if tests[op](p)}
