"""The dns collector (TOM-DNS-01 DNSSEC) on a recorded host.

Fixtures in tests/unit/fixtures/exporter/dns: the state file the role dnssec
writes, the AXFR (kdig +noall +answer) of a signed NSEC3 zone captured in the lab
(all RRSIGs expire 2026-12-05 19:09:01Z) and kdig answers of the validating
resolver (validated, captured; SERVFAIL, derived). See the README there.
"""

from __future__ import annotations

import calendar
import importlib
import json
import re

import pytest

from tests.unit.exporter_helpers import FIXTURES, STATE_DIR, DictHost, assert_outcome, run_alone

dns = importlib.import_module("tomwerk_host.exporter.collectors.dns")

DNS = FIXTURES / "dns"
STATE = f"{STATE_DIR}/dnssec.json"
ZONE = "tomwerk-kunde.test"
EARLIEST = float(calendar.timegm((2026, 12, 5, 19, 9, 1)))
NOW = EARLIEST - 10 * 86400
READ = ("kdig", "@127.0.0.1", "+noall", "+answer", "+time=2", "+retry=1", "AXFR", ZONE)
KDIG = ("kdig", "@10.231.0.15", "+dnssec", "+adflag", "+time=2", "+retry=1", "SOA", ZONE)
DAY = 86400


class DnsHost(DictHost):
    def __init__(self):
        outputs = {
            READ: (0, (DNS / "kdig-axfr.txt").read_text(), ""),
            KDIG: (0, (DNS / "kdig-validated.txt").read_text(), ""),
        }
        super().__init__({STATE: (DNS / "dnssec.json").read_text()}, outputs)

    def set_vars(self, **changes):
        data = json.loads(self.files[STATE])
        data["vars"].update(changes)
        self.files[STATE] = json.dumps(data)


def run(host, now: float = NOW, collector=None):
    outcome = run_alone(collector or dns.DnsCollector(now=lambda: now), host, now)
    return outcome, {(s.name, s.labels): s.value for s in outcome.samples}


Z = (("zone", ZONE),)


def test_compliant_zone():
    outcome, samples = run(DnsHost())
    assert outcome.error is None
    assert outcome.toms == {"TOM-DNS-01": True}
    assert samples[("tomwerk_dns_rrsig_earliest_expiry_timestamp_seconds", Z)] == EARLIEST
    assert samples[("tomwerk_dns_validation_ok", Z)] == 1
    assert samples[("tomwerk_dns_nsec3", Z)] == 1
    assert samples[("tomwerk_dns_rrsig_records", Z)] == 16
    assert samples[("tomwerk_dns_rrsig_min_remaining_seconds", ())] == 3 * DAY


DRIFTS = {
    "signatures expire in 2 days": (lambda h: None, EARLIEST - 2 * DAY, False, {}),
    "resolver answers SERVFAIL": (
        lambda h: h.outputs.update({KDIG: (0, (DNS / "kdig-servfail.txt").read_text(), "")}),
        NOW,
        False,
        {("tomwerk_dns_validation_ok", Z): 0},
    ),
    "resolver unreachable": (
        lambda h: h.outputs.update({KDIG: (9, ";; WARNING: failed to query server 10.231.0.15@53(UDP)\n", "")}),
        NOW,
        False,
        {("tomwerk_dns_validation_ok", Z): 0},
    ),
    "answer without AD": (
        lambda h: h.outputs.update(
            {KDIG: (0, (DNS / "kdig-validated.txt").read_text().replace("qr rd ra ad;", "qr rd ra;"), "")}
        ),
        NOW,
        False,
        {("tomwerk_dns_validation_ok", Z): 0},
    ),
    "zone not signed": (
        lambda h: h.outputs.update(
            {
                READ: (
                    0,
                    "".join(
                        line for line in (DNS / "kdig-axfr.txt").read_text().splitlines(True) if "RRSIG" not in line
                    ),
                    "",
                )
            }
        ),
        NOW,
        False,
        {("tomwerk_dns_rrsig_records", Z): 0},
    ),
    "NSEC where NSEC3 is configured": (
        lambda h: h.outputs.update({READ: (0, re.sub(r"\bNSEC3\b", "NSEC", (DNS / "kdig-axfr.txt").read_text()), "")}),
        NOW,
        False,
        {("tomwerk_dns_nsec3", Z): 0},
    ),
    "no resolver configured": (lambda h: h.set_vars(dnssec_validating_resolver=""), NOW, True, {}),
}


@pytest.mark.parametrize("drift", DRIFTS, ids=list(DRIFTS))
def test_drift(drift):
    change, now, compliant, expected = DRIFTS[drift]
    host = DnsHost()
    change(host)
    outcome, _ = run(host, now)
    assert_outcome(outcome, {"TOM-DNS-01": compliant}, expected)


def test_knot_down_is_a_failed_check():
    host = DnsHost()
    host.outputs[READ] = (9, ";; ERROR: failed to query server 127.0.0.1@53(TCP)\n", "")
    outcome, _ = run(host)
    assert outcome.error and "kdig" in outcome.error
    assert outcome.toms == {"TOM-DNS-01": False}


def test_validation_is_cached():
    host = DnsHost()
    clock = [0.0]
    collector = dns.DnsCollector(now=lambda: NOW, clock=lambda: clock[0], cache_seconds=60)
    run(host, collector=collector)
    clock[0] = 30.0
    run(host, collector=collector)
    assert host.calls[KDIG] == 1
    clock[0] = 61.0
    run(host, collector=collector)
    assert host.calls[KDIG] == 2


def test_bad_state_is_refused():
    host = DnsHost()
    host.set_vars(dnssec_validating_resolver="resolver.example; rm -rf /")
    outcome, _ = run(host)
    assert outcome.error and "dnssec_validating_resolver" in outcome.error
