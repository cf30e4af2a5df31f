"""TOM-MEET-01: video conferences run on our own Jitsi Meet with our own STUN/TURN.

The role jitsi renders the Jitsi configuration and records its paths and the
own domains in jitsi.json. This collector reads the live files and counts the
endpoints in them that lie outside the own domains:

- config.js (the browser configuration): every host named in a string literal
  (URLs, stun:/turn: URIs, bare host names);
- the videobridge's STUN mapping harvester addresses;
- prosody's external services (XEP-0215) and coturn's own names.

It also sends a STUN Binding request (RFC 5389) to each of our STUN servers
and checks the answer carries a XOR-MAPPED-ADDRESS (cached for
PROBE_CACHE_SECONDS).

TOM-MEET-01 holds iff no third-party endpoint is found, config.js disables
third-party requests, and every STUN server answers.
"""

from __future__ import annotations

import os
import re
import socket
import struct

from ..core import CheckError, Host, ProbingCollector, Report, State

TOM = "TOM-MEET-01"
PROBE_CACHE_SECONDS = 60.0
PROBE_TIMEOUT = 1.0
COOKIE = 0x2112A442

_URL = re.compile(r"(?:[a-z][a-z0-9+.-]*:)?//([^/:?#\s'\"`]+)", re.IGNORECASE)
_STUN_URI = re.compile(r"\b(?:stuns?|turns?):([^:?/\s'\"`]+)", re.IGNORECASE)
_HOSTNAME = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}(?::\d+)?", re.IGNORECASE)


class StunProbe:
    """Our STUN servers as a client sees them; tests pass a recorded one instead."""

    def __init__(self, timeout: float = PROBE_TIMEOUT, attempts: int = 3):
        self.timeout = timeout
        self.attempts = attempts

    def binding(self, server: str, port: int) -> bool:
        """True if a Binding request gets a success response with a XOR-MAPPED-ADDRESS."""
        tid = os.urandom(12)
        request = struct.pack("!HHI", 0x0001, 0, COOKIE) + tid
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(self.timeout)
            sock.connect((server, port))
            for _ in range(self.attempts):
                sock.send(request)
                try:
                    reply = sock.recv(2048)
                except socket.timeout:
                    continue
                return binding_ok(reply, tid)
        return False


def binding_ok(reply: bytes, tid: bytes) -> bool:
    if len(reply) < 20:
        return False
    mtype, length, cookie = struct.unpack("!HHI", reply[:8])
    if mtype != 0x0101 or cookie != COOKIE or reply[8:20] != tid:
        return False
    i = 20
    while i + 4 <= min(len(reply), 20 + length):
        kind, size = struct.unpack("!HH", reply[i : i + 4])
        if kind == 0x0020 and size >= 8:
            return True
        i += 4 + size + (4 - size % 4) % 4
    return False


def js_strings(text: str) -> list[str]:
    """The string literals of a JavaScript source (comments skipped)."""
    found, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif c in "'\"`":
            j, buf = i + 1, []
            while j < n and text[j] != c:
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(text[j])
                j += 1
            found.append("".join(buf))
            i = j + 1
        else:
            i += 1
    return found


def hosts_in(value: str) -> list[str]:
    """Hosts a string names: URLs, stun:/turn: URIs, or the string itself when it is a host name."""
    hosts = [m.group(1) for m in _URL.finditer(value)] + [m.group(1) for m in _STUN_URI.finditer(value)]
    if _HOSTNAME.fullmatch(value.strip()):
        hosts.append(value.strip().split(":")[0])
    return hosts


def domain_of(host: str, own_domains: list[str]) -> str:
    name = host.rstrip(".").lower()
    for domain in own_domains:
        dom = domain.rstrip(".").lower()
        if name == dom or name.endswith("." + dom):
            return dom
    return ""


def config_js_hosts(text: str) -> list[str]:
    return [h for s in js_strings(text) for h in hosts_in(s)]


def videobridge_hosts(text: str) -> list[str]:
    hosts = []
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip().endswith("STUN_MAPPING_HARVESTER_ADDRESSES"):
            hosts += [a.strip().rsplit(":", 1)[0] for a in value.split(",") if a.strip()]
    return hosts


def prosody_hosts(text: str) -> list[str]:
    return re.findall(r"\bhost\s*=\s*[\"']([^\"']+)[\"']", text)


def coturn_hosts(text: str) -> list[str]:
    hosts = []
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key in ("server-name", "realm", "alternate-server", "tls-alternate-server"):
            hosts.append(value.strip().rsplit(":", 1)[0] if key.endswith("alternate-server") else value.strip())
    return hosts


FILES = (
    ("config_js", "jitsi_config_js", config_js_hosts),
    ("videobridge", "jitsi_videobridge_properties", videobridge_hosts),
    ("prosody", "jitsi_prosody_config", prosody_hosts),
    ("coturn", "jitsi_coturn_config", coturn_hosts),
)


class MeetCollector(ProbingCollector, probe=StunProbe, cache_seconds=PROBE_CACHE_SECONDS):
    name = "meet"
    role = "jitsi"
    toms = (TOM,)

    def check(self, state: State, host: Host) -> Report:
        own = state.texts("jitsi_own_domains")
        servers = state.texts("jitsi_stun_servers")
        for server in servers:
            if not re.fullmatch(r"[A-Za-z0-9.-]+:\d{1,5}", server):
                raise CheckError(f"{state.role}.json: vars.jitsi_stun_servers entry {server!r} is not host:port")
        report = Report()
        for label, var, extract in FILES:
            path = state.text(var)
            text = host.read_optional(path)
            if text is None:
                if label == "config_js":
                    report.require(TOM, False, f"{path} is missing")
                continue
            foreign = sorted({h for h in extract(text) if not domain_of(h, own)})
            report.require(TOM, not foreign, f"{path} names {len(foreign)} host(s) outside the own domains")
            report.gauge(
                "tomwerk_meet_third_party_endpoints",
                "Hosts outside the own domains (jitsi_own_domains) named in a Jitsi or TURN configuration file, by "
                "file (TOM-MEET-01); must be 0.",
                len(foreign),
                config=label,
            )
            if label == "config_js":
                off = bool(re.search(r"\bdisableThirdPartyRequests\s*:\s*true\b", text))
                report.require_and_gauge(
                    TOM,
                    off,
                    f"{path} does not set disableThirdPartyRequests: true",
                    "tomwerk_meet_third_party_requests_disabled",
                    "1 if config.js sets disableThirdPartyRequests: true (no gravatar, fonts or other third-party "
                    "requests from the browsers), else 0 (TOM-MEET-01).",
                )
        # Only answers are cached: a server that failed is asked again at the next check.
        for server, up in self.probe_each(tuple(servers), servers, self._binding, bool).items():
            report.require_and_gauge(
                TOM,
                up,
                f"STUN server {server} does not answer a Binding request",
                "tomwerk_meet_stun_up",
                "1 if our STUN server answered a Binding request with a XOR-MAPPED-ADDRESS, else 0 (TOM-MEET-01).",
                server=server,
            )
        return report

    def _binding(self, server: str) -> bool:
        name, _, port = server.rpartition(":")
        try:
            return self._probe.binding(name, int(port))
        except OSError:
            return False
