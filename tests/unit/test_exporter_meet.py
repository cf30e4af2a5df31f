"""The meet collector (TOM-MEET-01 self-hosted Jitsi Meet with own STUN/TURN).

The fixtures in tests/unit/fixtures/exporter/meet are the files the role jitsi
rendered on the lab's meet1 (config.js, the videobridge properties, the
prosody site, turnserver.conf), copied from there with the TURN secret
replaced by RECORDED-SECRET-REPLACED. The STUN server is
a fake probe; the Binding answer parser is checked with a hand-built reply.
"""

from __future__ import annotations

import importlib
import os
import struct

import pytest

from tests.unit.exporter_helpers import FIXTURES, DictHost
from tomwerk_host.exporter import core

meet = importlib.import_module("tomwerk_host.exporter.collectors.meet")

MEET = FIXTURES / "meet"
DOMAIN = "meet1.lab.tomwerk.test"
PATHS = {
    "jitsi_config_js": f"/etc/jitsi/meet/{DOMAIN}-config.js",
    "jitsi_videobridge_properties": "/etc/jitsi/videobridge/sip-communicator.properties",
    "jitsi_prosody_config": f"/etc/prosody/conf.avail/{DOMAIN}.cfg.lua",
    "jitsi_coturn_config": "/etc/turnserver.conf",
}
SOURCES = {
    "jitsi_config_js": "config.js",
    "jitsi_videobridge_properties": "sip-communicator.properties",
    "jitsi_prosody_config": "prosody.cfg.lua",
    "jitsi_coturn_config": "turnserver.conf",
}
TOM = "TOM-MEET-01"


class FakeStun:
    def __init__(self, up=True):
        self.up = up
        self.calls = 0

    def binding(self, server, port):
        self.calls += 1
        if isinstance(self.up, BaseException):
            raise self.up
        return self.up


def state(**changes):
    variables = {
        "jitsi_domain": DOMAIN,
        "jitsi_own_domains": ["lab.tomwerk.test"],
        "jitsi_stun_servers": [f"{DOMAIN}:3478"],
        **PATHS,
        **changes,
    }
    return core.State("jitsi", (TOM,), variables, "/etc/tomwerk/state")


def recorded_files():
    return {PATHS[var]: (MEET / name).read_text() for var, name in SOURCES.items()}


def run(files=None, probe=None, **changes):
    collector = meet.MeetCollector(probe or FakeStun())
    report = collector.check(state(**changes), DictHost(files if files is not None else recorded_files()))
    figures = {(s.name, s.labels): s.value for s in report.samples}
    return report.failures.get(TOM, []), figures


def test_the_recorded_host_is_compliant():
    failures, figures = run()
    assert failures == []
    for config in ("config_js", "videobridge", "prosody", "coturn"):
        assert figures[("tomwerk_meet_third_party_endpoints", (("config", config),))] == 0
    assert figures[("tomwerk_meet_third_party_requests_disabled", ())] == 1
    assert figures[("tomwerk_meet_stun_up", (("server", f"{DOMAIN}:3478"),))] == 1


def test_the_recorded_config_js_names_our_hosts():
    hosts = meet.config_js_hosts((MEET / "config.js").read_text())
    assert DOMAIN in hosts and f"conference.{DOMAIN}" in hosts


@pytest.mark.parametrize(
    "edit",
    [
        ("{ urls: 'stun:" + DOMAIN + ":3478' }", "{ urls: 'stun:meet-jit-si-turnrelay.jitsi.net:443' }"),
        ("scriptURLs: []", "scriptURLs: ['https://www.googletagmanager.com/gtag/js']"),
        ("bosh: 'https://" + DOMAIN + "/http-bind'", 'bosh: "https://meet.jit.si/http-bind"'),
        (
            "callStatsID: ''",
            "callStatsID: 'x', callStatsCustomScriptUrl: `https://api.callstats.io/static/callstats.js`",
        ),
    ],
)
def test_a_third_party_host_edited_into_config_js_is_counted(edit):
    files = recorded_files()
    path = PATHS["jitsi_config_js"]
    assert edit[0] in files[path]
    files[path] = files[path].replace(edit[0], edit[1])
    failures, figures = run(files)
    assert figures[("tomwerk_meet_third_party_endpoints", (("config", "config_js"),))] == 1
    assert any("outside the own domains" in f for f in failures)


def test_hosts_in_comments_are_not_endpoints():
    files = recorded_files()
    path = PATHS["jitsi_config_js"]
    files[path] = "// was: stun:stun.l.google.com:19302, it's gone\n/* meet.jit.si */\n" + files[path]
    failures, figures = run(files)
    assert failures == [] and figures[("tomwerk_meet_third_party_endpoints", (("config", "config_js"),))] == 0


def test_third_party_requests_switched_back_on():
    files = recorded_files()
    path = PATHS["jitsi_config_js"]
    files[path] = files[path].replace("disableThirdPartyRequests: true", "disableThirdPartyRequests: false")
    failures, figures = run(files)
    assert figures[("tomwerk_meet_third_party_requests_disabled", ())] == 0
    assert failures


def test_foreign_hosts_in_videobridge_prosody_and_coturn():
    files = recorded_files()
    vb = PATHS["jitsi_videobridge_properties"]
    files[vb] = files[vb].replace(f"={DOMAIN}:3478", "=meet-jit-si-turnrelay.jitsi.net:443")
    pr = PATHS["jitsi_prosody_config"]
    files[pr] += '\n-- added\nexternal_services = { { type = "stun", host = "stun.l.google.com", port = 19302 } }\n'
    tc = PATHS["jitsi_coturn_config"]
    files[tc] += "alternate-server=turn.example.com:3478\n"
    failures, figures = run(files)
    for config in ("videobridge", "prosody", "coturn"):
        assert figures[("tomwerk_meet_third_party_endpoints", (("config", config),))] == 1, config
    assert len(failures) == 3


def test_missing_config_js_is_a_finding():
    files = recorded_files()
    del files[PATHS["jitsi_config_js"]]
    failures, _ = run(files)
    assert any("missing" in f for f in failures)


@pytest.mark.parametrize("up", [False, OSError("Name or service not known")])
def test_a_silent_stun_server_is_a_finding(up):
    failures, figures = run(probe=FakeStun(up))
    assert figures[("tomwerk_meet_stun_up", (("server", f"{DOMAIN}:3478"),))] == 0
    assert any("STUN server" in f for f in failures)


def test_stun_probe_is_cached():
    probe = FakeStun()
    now = [0.0]
    collector = meet.MeetCollector(probe, clock=lambda: now[0], cache_seconds=60)
    host = DictHost(recorded_files())
    collector.check(state(), host)
    now[0] = 30
    collector.check(state(), host)
    assert probe.calls == 1
    now[0] = 61
    collector.check(state(), host)
    assert probe.calls == 2


def test_a_stun_server_that_did_not_answer_is_asked_again_at_the_next_check():
    probe = FakeStun(up=False)
    now = [0.0]
    collector = meet.MeetCollector(probe, clock=lambda: now[0], cache_seconds=60)
    host = DictHost(recorded_files())
    assert any(collector.check(state(), host).failures.values())
    probe.up = True
    now[0] = 30
    assert not any(collector.check(state(), host).failures.values())
    assert probe.calls == 2


def test_bad_stun_server_in_state_fails_the_check():
    with pytest.raises(core.CheckError):
        run(jitsi_stun_servers=["no-port"])


def _reply(tid, mtype=0x0101, with_address=True):
    attrs = b""
    if with_address:
        value = struct.pack("!BBH", 0, 1, 40000 ^ 0x2112) + struct.pack("!I", 0x0AE7000B ^ 0x2112A442)
        attrs = struct.pack("!HH", 0x8022, 4) + b"test" + struct.pack("!HH", 0x0020, len(value)) + value
    return struct.pack("!HHI", mtype, len(attrs), 0x2112A442) + tid + attrs


def test_binding_answer_parser():
    tid = os.urandom(12)
    assert meet.binding_ok(_reply(tid), tid)
    assert not meet.binding_ok(_reply(tid), os.urandom(12))
    assert not meet.binding_ok(_reply(tid, mtype=0x0111), tid)
    assert not meet.binding_ok(_reply(tid, with_address=False), tid)
    assert not meet.binding_ok(b"\x01\x01", tid)


def test_js_strings_skip_comments_and_keep_escapes():
    text = "var a = 'it\\'s'; // 'not this'\n/* \"nor this\" */ var b = \"x//y\"; var c = `t`;"
    assert meet.js_strings(text) == ["it's", "x//y", "t"]
