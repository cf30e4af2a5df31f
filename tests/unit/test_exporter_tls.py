"""The TLS collectors: web_tls (TOM-TLS-01 HTTPS only, TOM-WEB-01 no tracking cookies) and acme (TOM-TLS-02).

The host is a fake with the state files the roles write and the certificates in
tests/unit/fixtures/exporter/tls (made with the cryptography library: an
ACME-like leaf under a "Pebble Intermediate CA", valid 2026-11-21..2027-02-19,
and a self-signed certificate); the web server is a recorded probe whose answers
each test edits.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.unit.exporter_helpers import FIXTURES, STATE_DIR, DictHost, FakeClock, convention_violations, scrape
from tomwerk_host.exporter import core

tls = importlib.import_module("tomwerk_host.exporter.collectors.tls")

TLS = FIXTURES / "tls"
ACME_CERT = (TLS / "acme-cert.pem").read_text()
FULLCHAIN = (TLS / "acme-fullchain.pem").read_text()
SELF_SIGNED = (TLS / "self-signed.pem").read_text()
NOT_AFTER = dt.datetime(2027, 2, 19, 18, 0, tzinfo=dt.UTC).timestamp()
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC).timestamp()
DAY = 86400
NAME = "web1.lab.tomwerk.test"

WEB_STATE = {
    "role": "web_tls",
    "toms": ["TOM-TLS-01", "TOM-WEB-01"],
    "vars": {
        "web_tls_sites": [{"name": "www", "server_names": [NAME]}],
        "web_tls_profile": "intermediate",
        "web_tls_protocols": ["TLSv1.2", "TLSv1.3"],
        "web_tls_hsts_max_age": "63072000",
        "web_tls_allowed_cookies": [],
        "web_tls_http_port": "80",
        "web_tls_https_port": "443",
        "web_tls_cert_dir": "/etc/tomwerk/tls",
    },
}
ACME_STATE = {
    "role": "acme",
    "toms": ["TOM-TLS-02"],
    "vars": {
        "acme_directory_url": "https://monitor1.lab.tomwerk.test:14000/dir",
        "acme_min_valid_days": "14",
        "acme_timer": "certbot.timer",
        "acme_live_dir": "/etc/letsencrypt/live",
        "acme_deploy_dir": "/etc/tomwerk/tls",
        "acme_certificates": [{"name": "www", "domains": [NAME]}],
    },
}


class FakeHost(DictHost):
    def __init__(self):
        files = {
            f"{STATE_DIR}/web_tls.json": json.dumps(WEB_STATE),
            f"{STATE_DIR}/acme.json": json.dumps(ACME_STATE),
            "/etc/letsencrypt/live/www/cert.pem": ACME_CERT,
            "/etc/tomwerk/tls/www/fullchain.pem": FULLCHAIN,
        }
        super().__init__(files, {("systemctl", "is-active", "certbot.timer"): (0, "active\n", "")})


class RecordedProbe:
    """nginx as web_tls configures it: 301 on port 80, HSTS on 443, the ACME certificate."""

    def __init__(self):
        self.answers = {
            False: tls.Answer(301, [("Server", "nginx"), ("Location", f"https://{NAME}/tomwerk-probe?check=1")]),
            True: tls.Answer(200, [("Strict-Transport-Security", "max-age=63072000"), ("Content-Type", "text/html")]),
        }
        self.cert: object = x509.load_pem_x509_certificate(ACME_CERT.encode()).public_bytes(Encoding.DER)
        self.calls: list[tuple] = []

    def get(self, port, server_name, path, tls):
        self.calls.append((port, server_name, path, tls))
        answer = self.answers[tls]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def certificate(self, port, server_name):
        self.calls.append((port, server_name))
        if isinstance(self.cert, BaseException):
            raise self.cert
        return self.cert


def site_value(s, metric: str, site: str = "www") -> float | None:
    """The value of a per-site series (Scrape.value cannot take a label called name)."""
    return s.samples.get((metric, (("name", site),)))


def run(host=None, probe=None, now=NOW):
    host = host or FakeHost()
    probe = probe or RecordedProbe()
    collectors = [tls.WebTlsCollector(probe=probe, now=lambda: now), tls.AcmeCollector(now=lambda: now)]
    exporter = core.TomExporter(collectors, host=host, state_dir=STATE_DIR, wall=FakeClock(now))
    return scrape(exporter)


# --------------------------------------------------------------------- certificates


@pytest.mark.parametrize("name", ["acme-cert.pem", "self-signed.pem"])
def test_parser_agrees_with_cryptography(name):
    text = (TLS / name).read_text()
    ref = x509.load_pem_x509_certificate(text.encode())
    cert = tls.parse_der(tls.pem_certificates(text)[0])
    assert cert.not_after == ref.not_valid_after_utc.timestamp()
    assert cert.not_before == ref.not_valid_before_utc.timestamp()
    assert cert.self_issued == (ref.issuer == ref.subject)


def test_fullchain_gives_leaf_first():
    ders = tls.pem_certificates(FULLCHAIN)
    assert len(ders) == 2 and tls.pem_certificates(ACME_CERT) == ders[:1]


@pytest.mark.parametrize("der", [b"", b"\x30\x03\x02\x01\x01", b"\x30\x82\xff\xff", b"not a certificate"])
def test_garbage_is_a_check_error(der):
    with pytest.raises(core.CheckError):
        tls.parse_der(der)


@pytest.mark.parametrize(
    ("header", "age"),
    [
        ("max-age=63072000", 63072000),
        ('max-age="300"; includeSubDomains', 300),
        ("includeSubDomains", None),
        (None, None),
    ],
)
def test_hsts_max_age(header, age):
    assert tls.hsts_max_age(header) == age


# --------------------------------------------------------------------- web_tls


def test_compliant_site():
    s = run()
    assert s.toms() == {"TOM-TLS-01": 1.0, "TOM-WEB-01": 1.0, "TOM-TLS-02": 1.0}
    assert site_value(s, "tomwerk_tls_http_redirect") == 1
    assert site_value(s, "tomwerk_tls_hsts_max_age_seconds") == 63072000
    assert site_value(s, "tomwerk_tls_certificate_expiry_timestamp_seconds") == NOT_AFTER
    assert site_value(s, "tomwerk_web_unexpected_cookies") == 0
    assert s.errors() == {"web": 0, "tls": 0}
    assert convention_violations(s) == []


def test_probes_use_the_server_name():
    probe = RecordedProbe()
    run(probe=probe)
    assert (80, NAME, "/tomwerk-probe?check=1", False) in probe.calls
    assert (443, NAME, "/", True) in probe.calls
    assert (443, NAME) in probe.calls


@pytest.mark.parametrize(
    "answer",
    [
        tls.Answer(200, [("Content-Type", "text/html")]),
        tls.Answer(302, [("Location", f"https://{NAME}/")]),
        tls.Answer(301, [("Location", f"http://{NAME}/")]),
        tls.Answer(301, [("Location", "https://elsewhere.example/")]),
    ],
)
def test_no_redirect_to_https_is_a_finding(answer):
    probe = RecordedProbe()
    probe.answers[False] = answer
    s = run(probe=probe)
    assert s.toms()["TOM-TLS-01"] == 0
    assert site_value(s, "tomwerk_tls_http_redirect") == 0


def test_port_80_closed_is_a_finding_not_an_error():
    probe = RecordedProbe()
    probe.answers[False] = ConnectionRefusedError(111, "Connection refused")
    s = run(probe=probe)
    assert s.toms()["TOM-TLS-01"] == 0
    assert site_value(s, "tomwerk_tls_http_redirect") == 0
    assert s.errors()["web"] == 0


@pytest.mark.parametrize("header", [None, "max-age=31536000", "max-age=0"])
def test_short_or_missing_hsts_is_a_finding(header):
    probe = RecordedProbe()
    probe.answers[True] = tls.Answer(200, [("Strict-Transport-Security", header)] if header else [])
    s = run(probe=probe)
    assert s.toms()["TOM-TLS-01"] == 0
    assert site_value(s, "tomwerk_tls_hsts_max_age_seconds") == (tls.hsts_max_age(header) or 0)


def test_expired_certificate_is_a_finding():
    s = run(now=NOT_AFTER + 1)
    assert s.toms()["TOM-TLS-01"] == 0
    assert site_value(s, "tomwerk_tls_certificate_expiry_timestamp_seconds") == NOT_AFTER


def test_failed_handshake_is_a_finding():
    probe = RecordedProbe()
    probe.cert = ConnectionResetError(104, "Connection reset by peer")
    s = run(probe=probe)
    assert s.toms()["TOM-TLS-01"] == 0
    assert site_value(s, "tomwerk_tls_certificate_expiry_timestamp_seconds") is None


def test_tracking_cookie_is_a_finding_and_allowed_ones_are_not():
    probe = RecordedProbe()
    probe.answers[True].headers += [("Set-Cookie", "_ga=GA1.2.3; Max-Age=63072000"), ("Set-Cookie", "session=x")]
    assert site_value(run(probe=probe), "tomwerk_web_unexpected_cookies") == 2
    host = FakeHost()
    state = json.loads(host.files[f"{STATE_DIR}/web_tls.json"])
    state["vars"]["web_tls_allowed_cookies"] = ["session"]
    host.files[f"{STATE_DIR}/web_tls.json"] = json.dumps(state)
    s = run(host=host, probe=probe)
    assert s.toms()["TOM-WEB-01"] == 0
    assert site_value(s, "tomwerk_web_unexpected_cookies") == 1


def test_broken_state_fails_the_toms_without_crashing():
    host = FakeHost()
    state = json.loads(host.files[f"{STATE_DIR}/web_tls.json"])
    state["vars"]["web_tls_sites"] = [{"name": "www"}]
    host.files[f"{STATE_DIR}/web_tls.json"] = json.dumps(state)
    s = run(host=host)
    assert s.toms()["TOM-TLS-01"] == 0 and s.toms()["TOM-WEB-01"] == 0
    assert s.errors()["web"] == 1


# --------------------------------------------------------------------- acme


def test_acme_figures():
    s = run()
    assert site_value(s, "tomwerk_acme_certificate_expiry_timestamp_seconds") == NOT_AFTER
    assert s.value("tomwerk_acme_renewal_timer_active") == 1
    assert site_value(s, "tomwerk_acme_certificate_deployed") == 1
    assert s.value("tomwerk_acme_min_valid_seconds") == 14 * DAY


def test_self_signed_certificate_is_a_finding():
    host = FakeHost()
    host.files["/etc/letsencrypt/live/www/cert.pem"] = SELF_SIGNED
    host.files["/etc/tomwerk/tls/www/fullchain.pem"] = SELF_SIGNED
    assert run(host=host).toms()["TOM-TLS-02"] == 0


def test_certificate_close_to_expiry_is_a_finding():
    assert run(now=NOT_AFTER - 15 * DAY).toms()["TOM-TLS-02"] == 1
    assert run(now=NOT_AFTER - 13 * DAY).toms()["TOM-TLS-02"] == 0


def test_inactive_timer_is_a_finding():
    host = FakeHost()
    host.outputs[("systemctl", "is-active", "certbot.timer")] = (3, "inactive\n", "")
    s = run(host=host)
    assert s.toms()["TOM-TLS-02"] == 0
    assert s.value("tomwerk_acme_renewal_timer_active") == 0


def test_no_certificate_yet_is_a_finding():
    host = FakeHost()
    del host.files["/etc/letsencrypt/live/www/cert.pem"]
    s = run(host=host)
    assert s.toms()["TOM-TLS-02"] == 0
    assert s.errors()["tls"] == 0


def test_placeholder_still_linked_is_a_finding():
    host = FakeHost()
    host.files["/etc/tomwerk/tls/www/fullchain.pem"] = SELF_SIGNED
    s = run(host=host)
    assert s.toms()["TOM-TLS-02"] == 0
    assert site_value(s, "tomwerk_acme_certificate_deployed") == 0


def test_parse_is_cached():
    collector = tls.AcmeCollector(now=lambda: NOW)
    der = tls.pem_certificates(ACME_CERT)[0]
    assert collector._parse(der) is collector._parse(der)
