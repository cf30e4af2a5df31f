"""TOM-MEET-01: video conferences run on our own Jitsi Meet with our own STUN/TURN.

The browser configuration is fetched over HTTPS from another lab host and
parsed with node (as a browser would evaluate it): no host in it lies outside
the own domains, and third-party features are off. Real STUN and TURN
messages (RFC 5389/5766, built with the standard library) from a peer host
prove coturn answers, hands out nothing without credentials and refuses to
relay into internal networks. A real XMPP session asks prosody for its
external services (XEP-0215): only our coturn, with time-limited credentials.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess

import pytest

from tomwerk import ROOT

ROLE = "jitsi"
PUBLIC_PEER = "1.1.1.1"

_spec = importlib.util.spec_from_file_location("tomwerk_filters", ROOT / "plugins" / "filter" / "tomwerk.py")
filters = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(filters)

# Evaluates config.js like a browser (a script defining `var config`) and prints it as JSON.
NODE_EVAL = r"""
const fs = require('fs'), vm = require('vm');
const ctx = {};
vm.createContext(ctx);
vm.runInContext(fs.readFileSync(0, 'utf8'), ctx, {timeout: 2000});
process.stdout.write(JSON.stringify(ctx.config === undefined ? null : ctx.config));
"""

FETCH = r"""
import ssl, sys, urllib.request
ctx = ssl.create_default_context()
print(urllib.request.urlopen(sys.argv[1], context=ctx, timeout=10).read().decode())
"""

# STUN/TURN client (RFC 5389 / RFC 5766) with the standard library; runs on the peer.
# argv: mode server port [peer-ip]; the TURN secret (mode "denied") comes on stdin.
STUN = r"""
import base64, hashlib, hmac, json, os, socket, struct, sys, time
COOKIE = 0x2112A442
mode, server, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
def attr(t, v):
    return struct.pack("!HH", t, len(v)) + v + b"\0" * ((4 - len(v) % 4) % 4)
def message(mtype, attrs, key=None):
    tid = os.urandom(12)
    body = b"".join(attrs)
    if key:
        head = struct.pack("!HHI", mtype, len(body) + 24, COOKIE) + tid
        body += attr(0x0008, hmac.new(key, head + body, hashlib.sha1).digest())
    return struct.pack("!HHI", mtype, len(body), COOKIE) + tid + body, tid
def parse(data):
    mtype, length, cookie = struct.unpack("!HHI", data[:8])
    attrs, i = {}, 20
    while i < 20 + length:
        t, n = struct.unpack("!HH", data[i:i + 4])
        attrs.setdefault(t, data[i + 4:i + 4 + n])
        i += 4 + n + (4 - n % 4) % 4
    return mtype, cookie, data[8:20], attrs
def xor_address(v, tid):
    port = struct.unpack("!H", v[2:4])[0] ^ (COOKIE >> 16)
    if v[1] == 1:
        return socket.inet_ntoa(struct.pack("!I", struct.unpack("!I", v[4:8])[0] ^ COOKIE)), port
    mask = struct.pack("!I", COOKIE) + tid
    return socket.inet_ntop(socket.AF_INET6, bytes(a ^ b for a, b in zip(v[4:20], mask))), port
def xor_peer(ip, port):
    raw = struct.pack("!I", struct.unpack("!I", socket.inet_aton(ip))[0] ^ COOKIE)
    return attr(0x0012, struct.pack("!BBH", 0, 1, port ^ (COOKIE >> 16)) + raw)
def error(attrs):
    v = attrs.get(0x0009)
    return None if v is None else (v[2] & 7) * 100 + v[3]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(1.0)
sock.connect((server, port))
def ask(data, tid):
    for _ in range(4):
        sock.send(data)
        try:
            while True:
                reply = parse(sock.recv(2048))
                if reply[2] == tid:
                    return reply
        except socket.timeout:
            continue
    raise SystemExit(json.dumps({"error": "no answer from %s:%d" % (server, port)}))
out = {"local": list(sock.getsockname())}
transport = attr(0x0019, b"\x11\0\0\0")
if mode == "binding":
    data, tid = message(0x0001, [])
    mtype, cookie, _, attrs = ask(data, tid)
    out.update(type=mtype, cookie=cookie)
    if 0x0020 in attrs:
        out["mapped"] = list(xor_address(attrs[0x0020], tid))
elif mode in ("allocate", "denied"):
    data, tid = message(0x0003, [transport])
    mtype, _, _, attrs = ask(data, tid)
    realm, nonce = attrs.get(0x0014, b""), attrs.get(0x0015, b"")
    out.update(type=mtype, error=error(attrs), realm=realm.decode(errors="replace"), nonce=bool(nonce))
    if mode == "denied":
        secret = sys.stdin.read().strip().encode()
        user = ("%d:tomwerk-probe" % (time.time() + 600)).encode()
        password = base64.b64encode(hmac.new(secret, user, hashlib.sha1).digest())
        key = hashlib.md5(user + b":" + realm + b":" + password).digest()
        auth = [attr(0x0006, user), attr(0x0014, realm), attr(0x0015, nonce)]
        data, tid = message(0x0003, [transport] + auth, key)
        mtype, _, _, attrs = ask(data, tid)
        out["allocate"] = {"type": mtype, "error": error(attrs), "relayed": 0x0016 in attrs}
        out["permissions"] = {}
        for peer in sys.argv[4].split(","):
            data, tid = message(0x0008, [xor_peer(peer, 9)] + auth, key)
            mtype, _, _, attrs = ask(data, tid)
            out["permissions"][peer] = {"type": mtype, "error": error(attrs)}
        data, tid = message(0x0004, [attr(0x000D, b"\0\0\0\0")] + auth, key)
        ask(data, tid)
print(json.dumps(out))
"""

# A real XMPP client session (RFC 6120) against prosody on the host itself:
# STARTTLS with certificate check, SASL ANONYMOUS, bind, then XEP-0215.
XMPP = r"""
import json, re, socket, ssl, sys
domain = sys.argv[1]
def read(sock, pattern):
    buf = ""
    while not re.search(pattern, buf):
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit(json.dumps({"error": "stream closed", "last": buf[-300:]}))
        buf += chunk.decode()
    return buf
def open_stream(sock):
    sock.sendall(("<?xml version='1.0'?><stream:stream to='%s' xmlns='jabber:client' "
                  "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>" % domain).encode())
    return read(sock, "</stream:features>")
raw = socket.create_connection(("127.0.0.1", 5222), timeout=10)
open_stream(raw)
raw.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
read(raw, "<proceed")
sock = ssl.create_default_context().wrap_socket(raw, server_hostname=domain)
features = open_stream(sock)
sock.sendall(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>")
read(sock, "<success|<failure")
open_stream(sock)
sock.sendall(b"<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
read(sock, "</iq>")
sock.sendall(("<iq type='get' id='s1' to='%s'><services xmlns='urn:xmpp:extdisco:2'/></iq>" % domain).encode())
reply = read(sock, "id=['\"]s1['\"][^>]*/>|</iq>\\s*$|</services>")
services = [dict(re.findall(r"([\w-]+)=['\"]([^'\"]*)['\"]", s)) for s in re.findall(r"<service\b([^>]*)/?>", reply)]
print(json.dumps({"tls": sock.version(), "services": services}))
"""


def outside(hosts, own_domains) -> list[str]:
    return sorted(h for h in set(hosts) if not filters.domain_of(h, own_domains))


def hosts_in(value) -> list[str]:
    """Every host named by a string anywhere in a parsed config (URLs, stun:/turn: URIs, host:port, bare names)."""
    found = []
    if isinstance(value, dict):
        for v in value.values():
            found += hosts_in(v)
    elif isinstance(value, list):
        for v in value:
            found += hosts_in(v)
    elif isinstance(value, str):
        for m in re.finditer(r"(?:[a-z][a-z0-9+.-]*:)?//([^/:?#\s'\"]+)", value, re.IGNORECASE):
            found.append(m.group(1))
        for m in re.finditer(r"\b(?:stuns?|turns?):([^:?/\s'\"]+)", value, re.IGNORECASE):
            found.append(m.group(1))
        if re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}(:\d+)?", value, re.IGNORECASE):
            found.append(value.split(":")[0])
    return found


def run_on(peer_host, script: str, *args: str, stdin: str | None = None) -> dict:
    cmd = f"python3 -c {shlex.quote(script)} " + " ".join(shlex.quote(a) for a in args)
    if stdin is not None:
        cmd = f"printf %s {shlex.quote(stdin)} | {cmd}"
    result = peer_host.run(cmd)
    assert result.stdout.strip(), result.stderr[-500:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def served_config(peer, role_vars):
    """config.js as a browser on another host gets it over HTTPS, evaluated by node."""
    _name, peer_host, _addr = peer
    url = f"https://{role_vars['jitsi_domain']}/config.js"
    text = peer_host.check_output(f"python3 -c {shlex.quote(FETCH)} {shlex.quote(url)}")
    node = subprocess.run(["node", "-e", NODE_EVAL], input=text, capture_output=True, text=True, timeout=30)
    assert node.returncode == 0, node.stderr
    return text, json.loads(node.stdout)


@pytest.mark.tom("TOM-MEET-01")
def test_config_js_names_no_host_outside_the_own_domains(served_config, role_vars, evidence):
    """config.js, fetched over HTTPS from another host and run by node, names only hosts in jitsi_own_domains."""
    _text, config = served_config
    hosts = sorted(set(hosts_in(config)))
    evidence("hosts in config.js", hosts)
    assert config is not None
    assert hosts, "config.js names no host at all; the parser found nothing to check"
    assert outside(hosts, role_vars["jitsi_own_domains"]) == []


@pytest.mark.tom("TOM-MEET-01")
def test_p2p_uses_only_our_stun_and_third_parties_are_off(served_config, role_vars, evidence):
    """p2p.stunServers are exactly ours; third-party requests, analytics, gravatar, callstats, rtcstats are off."""
    _text, config = served_config
    stun = [s["urls"] for s in config["p2p"]["stunServers"]]
    switches = {
        "disableThirdPartyRequests": config.get("disableThirdPartyRequests"),
        "analytics.disabled": config.get("analytics", {}).get("disabled"),
        "analytics.scriptURLs": config.get("analytics", {}).get("scriptURLs", []),
        "gravatar.disabled": config.get("gravatar", {}).get("disabled"),
        "callStatsID": config.get("callStatsID", ""),
        "rtcstats.enabled": config.get("rtcstats", {}).get("enabled", False),
    }
    evidence("p2p.stunServers", stun)
    evidence("third-party switches", switches)
    assert stun == [f"stun:{s}" for s in role_vars["jitsi_stun_servers"]]
    assert switches == {
        "disableThirdPartyRequests": True,
        "analytics.disabled": True,
        "analytics.scriptURLs": [],
        "gravatar.disabled": True,
        "callStatsID": "",
        "rtcstats.enabled": False,
    }


@pytest.mark.tom("TOM-MEET-01")
def test_stun_binding_from_another_host_returns_its_address(peer, address, role_vars, evidence):
    """A STUN Binding request from a peer host gets a success whose XOR-MAPPED-ADDRESS is the peer's address."""
    peer_name, peer_host, peer_addr = peer
    result = run_on(peer_host, STUN, "binding", address, str(role_vars["jitsi_turn_port"]))
    evidence(f"binding from {peer_name}", result)
    assert result.get("type") == 0x0101, result
    assert result["cookie"] == 0x2112A442
    assert result.get("mapped") == [peer_addr, result["local"][1]]


@pytest.mark.tom("TOM-MEET-01")
def test_turn_allocate_without_credentials_is_rejected(peer, address, role_vars, evidence):
    """A TURN Allocate without credentials gets 401 with our realm and a nonce: no relay for strangers."""
    _name, peer_host, _addr = peer
    result = run_on(peer_host, STUN, "allocate", address, str(role_vars["jitsi_turn_port"]))
    evidence("unauthenticated allocate", result)
    assert result["type"] == 0x0113 and result["error"] == 401, result
    assert result["realm"] == role_vars["jitsi_turn_realm"] and result["nonce"]


@pytest.mark.tom("TOM-MEET-01")
def test_turn_refuses_to_relay_into_internal_networks(inventory, hostname, peer, address, role_vars, evidence):
    """With valid time-limited credentials an allocation works; internal peers get 403, a public one not."""
    _name, peer_host, _addr = peer
    internal = [inventory.var(h, "tomwerk_address") for h in inventory.hosts() if h != hostname][:1]
    # 1.1.1.1 is the control: a public peer gets its permission (no packet is sent to it).
    targets = ",".join([*internal, "127.0.0.1", PUBLIC_PEER])
    result = run_on(
        peer_host,
        STUN,
        "denied",
        address,
        str(role_vars["jitsi_turn_port"]),
        targets,
        stdin=role_vars["jitsi_turn_secret"],
    )
    evidence("authenticated allocate", result.get("allocate"))
    evidence("permissions", result.get("permissions"))
    assert result["allocate"] == {"type": 0x0103, "error": None, "relayed": True}, result
    permissions = dict(result["permissions"])
    assert permissions.pop(PUBLIC_PEER) == {"type": 0x0108, "error": None}, result
    for peer_ip, answer in permissions.items():
        assert answer == {"type": 0x0118, "error": 403}, (peer_ip, answer)


@pytest.mark.tom("TOM-MEET-01")
def test_prosody_announces_only_our_turn_server(host, role_vars, evidence):
    """A real XMPP session (STARTTLS, anonymous) gets XEP-0215 services: only our coturn, TURN with credentials."""
    result = run_on(host, XMPP, role_vars["jitsi_domain"])
    services = result.get("services", [])
    evidence("XEP-0215 services", [{k: v for k, v in s.items() if k != "password"} for s in services])
    assert result.get("tls") in ("TLSv1.2", "TLSv1.3"), result
    assert {s.get("type") for s in services} >= {"stun", "turn"}, result
    assert outside([s.get("host", "") for s in services], role_vars["jitsi_own_domains"]) == []
    for s in services:
        if s.get("type", "").startswith("turn"):
            assert s.get("username") and s.get("password") and s.get("expires"), s


@pytest.mark.tom("TOM-MEET-01")
def test_videobridge_and_coturn_configuration_stay_inside(host, role_vars, evidence):
    """The videobridge's STUN harvester names our servers; coturn uses shared-secret auth, denies internal peers."""
    props = host.file(role_vars["jitsi_videobridge_properties"]).content_string
    harvester = re.findall(r"^org\.ice4j\.ice\.harvest\.STUN_MAPPING_HARVESTER_ADDRESSES=(.*)$", props, re.MULTILINE)
    turn = host.file(role_vars["jitsi_coturn_config"]).content_string.splitlines()
    denied = [line.split("=", 1)[1] for line in turn if line.startswith("denied-peer-ip=")]
    evidence("STUN mapping harvester", harvester)
    evidence("denied-peer-ip", denied)
    assert harvester
    harvester_hosts = [a.rsplit(":", 1)[0] for a in harvester[0].split(",")]
    assert outside(harvester_hosts, role_vars["jitsi_own_domains"]) == []
    assert "use-auth-secret" in turn and "no-multicast-peers" in turn
    for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10"):
        assert filters.ip_range(net) in denied, net
    assert host.service("coturn").is_running and host.service("prosody").is_running
