"""The mail collector (TOM-TLS-03 TLS between mail servers).

postconf output in tests/unit/fixtures/exporter/mail was captured on the lab's
mail1 after the role mail_tls ran; the SMTP probe is a fake.
"""

from __future__ import annotations

import importlib
import ssl

import pytest

from tests.unit.exporter_helpers import FIXTURES, DictHost
from tomwerk_host.exporter import core

mail = importlib.import_module("tomwerk_host.exporter.collectors.mail")

MAIL = FIXTURES / "mail"
TOM = "TOM-TLS-03"
MAIN = (mail.POSTCONF, *mail.MAIN_SETTINGS)
SERVICES = (mail.POSTCONF, "-P", *mail.SERVICE_SETTINGS)


def mail_host() -> DictHost:
    """mail1 as recorded: postconf's answers."""
    return DictHost(
        outputs={
            MAIN: (0, (MAIL / "postconf.txt").read_text(), ""),
            SERVICES: (0, (MAIL / "postconf-P.txt").read_text(), ""),
        }
    )


class FakeSmtp:
    def __init__(self, versions=None):
        self.versions = {25: "TLSv1.3", 587: "TLSv1.3", 465: "TLSv1.3", **(versions or {})}
        self.calls = 0

    def _answer(self, port):
        self.calls += 1
        value = self.versions[port]
        if isinstance(value, BaseException):
            raise value
        return value

    def starttls(self, port):
        return self._answer(port)

    def wrapped(self, port):
        return self._answer(port)


def state(**changes):
    variables = {
        "mail_tls_hostname": "mail1.lab.tomwerk.test",
        "mail_tls_smtpd_min_protocol": "TLSv1.2",
        "mail_tls_smtp_min_protocol": "TLSv1.2",
        "mail_tls_smtpd_security_level": "may",
        "mail_tls_smtp_security_level": "may",
        "mail_tls_mynetworks": ["127.0.0.0/8", "[::1]/128"],
        "mail_tls_smtp_port": 25,
        "mail_tls_submission_port": 587,
        "mail_tls_smtps_port": 465,
        **changes,
    }
    return core.State("mail_tls", (TOM,), variables, "/etc/tomwerk/state")


def run(host=None, probe=None, **changes):
    report = mail.MailCollector(probe or FakeSmtp()).check(state(**changes), host or mail_host())
    return report.failures.get(TOM, []), {(s.name, s.labels): s.value for s in report.samples}


def test_the_recorded_host_is_compliant():
    failures, figures = run()
    assert failures == []
    assert figures[("tomwerk_mail_tls_config_drift", ())] == 0
    assert figures[("tomwerk_mail_tls_min_version", (("direction", "inbound"),))] == 1.2
    assert figures[("tomwerk_mail_tls_min_version", (("direction", "outbound"),))] == 1.2
    for service in ("smtp", "submission", "smtps"):
        assert figures[("tomwerk_mail_tls_handshake_ok", (("service", service),))] == 1


def test_a_lowered_tls_floor_is_drift():
    host = mail_host()
    text = (
        (MAIL / "postconf.txt").read_text().replace("smtpd_tls_protocols = >=TLSv1.2", "smtpd_tls_protocols = >=TLSv1")
    )
    host.outputs[MAIN] = (0, text, "")
    failures, figures = run(host)
    assert figures[("tomwerk_mail_tls_config_drift", ())] == 1
    assert figures[("tomwerk_mail_tls_min_version", (("direction", "inbound"),))] == 1.0
    assert any("smtpd_tls_protocols" in f for f in failures)


def test_submission_without_required_tls_is_drift():
    host = mail_host()
    host.outputs[SERVICES] = (0, (MAIL / "postconf-P.txt").read_text().replace("= encrypt", "= may"), "")
    failures, _ = run(host)
    assert any("submission/inet/smtpd_tls_security_level" in f for f in failures)


@pytest.mark.parametrize(
    "versions, service",
    [
        ({25: ""}, "smtp"),
        ({587: "TLSv1.1"}, "submission"),
        ({465: ssl.SSLError("wrong version number")}, "smtps"),
        ({25: ConnectionRefusedError(111, "Connection refused")}, "smtp"),
    ],
)
def test_a_failing_probe_is_a_finding(versions, service):
    failures, figures = run(probe=FakeSmtp(versions))
    assert figures[("tomwerk_mail_tls_handshake_ok", (("service", service),))] == 0
    assert any(f.startswith(service) for f in failures)


def test_probes_are_cached():
    probe = FakeSmtp()
    now = [0.0]
    collector = mail.MailCollector(probe, clock=lambda: now[0], cache_seconds=300)
    collector.check(state(), mail_host())
    now[0] = 100
    collector.check(state(), mail_host())
    assert probe.calls == 3
    now[0] = 301
    collector.check(state(), mail_host())
    assert probe.calls == 6


def test_a_failed_probe_is_repeated_at_the_next_check():
    # A tempfail (e.g. while a milter restarts) must not pin TOM-TLS-03 at 0 for the cache's lifetime.
    probe = FakeSmtp({25: ConnectionRefusedError(111, "Connection refused")})
    now = [0.0]
    collector = mail.MailCollector(probe, clock=lambda: now[0], cache_seconds=300)
    first = collector.check(state(), mail_host())
    assert any(first.failures.values())
    probe.versions = FakeSmtp().versions
    now[0] = 30
    second = collector.check(state(), mail_host())
    assert probe.calls == 6
    assert not any(second.failures.values())


def test_postconf_missing_is_a_check_error():
    host = mail_host()
    host.outputs = {}
    with pytest.raises(core.CheckError):
        run(host)


def test_weak_floor_in_state_is_a_state_error():
    with pytest.raises(core.StateError):
        run(mail_tls_smtpd_min_protocol="TLSv1")


@pytest.mark.parametrize(
    "value, floor",
    [
        (">=TLSv1.2", 1.2),
        (">=TLSv1.3", 1.3),
        ("!SSLv2, !SSLv3, !TLSv1, !TLSv1.1", 1.2),
        ("", 1.0),
        ("!SSLv2 !SSLv3", 1.0),
    ],
)
def test_min_version(value, floor):
    assert mail.min_version(value) == floor
