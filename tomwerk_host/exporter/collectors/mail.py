"""TOM-TLS-03: mail servers offer TLS and use it whenever the peer can.

The role mail_tls configures postfix and records its settings in
mail_tls.json. This collector compares postfix's effective configuration
(postconf) with them, and talks SMTP to the local postfix as a peer would:
port 25 must offer STARTTLS and negotiate TLS 1.2 or newer, submission (587)
must do the same, smtps (465) must speak TLS from the first byte. The SMTP
probes are cached for PROBE_CACHE_SECONDS (each one costs a TLS handshake
and a line in the mail log) while they all succeed; a failing probe is
repeated at the next check, so a repaired server shows as compliant again
within --min-interval, not minutes later.

TOM-TLS-03 holds iff the effective configuration matches the recorded one
(levels, TLS floors in and out, submission and smtps) and every probe
negotiates TLS 1.2 or newer.
"""

from __future__ import annotations

import smtplib
import socket

from ..core import (
    TLS_VERSIONS,
    CheckError,
    Host,
    ProbingCollector,
    Report,
    State,
    tls_strong_enough,
    unverified_tls_context,
)

TOM = "TOM-TLS-03"
POSTCONF = "/usr/sbin/postconf"
PROBE_CACHE_SECONDS = 300.0
PROBE_TIMEOUT = 5.0
MAIN_SETTINGS = (
    "smtpd_tls_security_level",
    "smtp_tls_security_level",
    "smtpd_tls_protocols",
    "smtpd_tls_mandatory_protocols",
    "smtp_tls_protocols",
    "smtp_tls_mandatory_protocols",
)
SERVICE_SETTINGS = ("submission/inet/smtpd_tls_security_level", "smtps/inet/smtpd_tls_wrappermode")


class SmtpProbe:
    """The local postfix as a peer sees it; tests pass a recorded one instead.

    Each method returns the negotiated TLS version ("TLSv1.3") or "" when the
    server offers no STARTTLS; it raises OSError when the conversation fails.
    """

    def __init__(self, address: str = "127.0.0.1", timeout: float = PROBE_TIMEOUT):
        self.address = address
        self.timeout = timeout

    def starttls(self, port: int) -> str:
        try:
            with smtplib.SMTP(self.address, port, timeout=self.timeout, local_hostname="tomwerk-exporter") as smtp:
                smtp.ehlo()
                if not smtp.has_extn("starttls"):
                    return ""
                smtp.starttls(context=unverified_tls_context())  # encryption is judged, not the certificate
                return smtp.sock.version() or ""
        except smtplib.SMTPException as exc:
            raise OSError(str(exc)) from None

    def wrapped(self, port: int) -> str:
        raw = socket.create_connection((self.address, port), timeout=self.timeout)
        with raw, unverified_tls_context().wrap_socket(raw) as tls:
            banner = tls.recv(512)
            tls.sendall(b"QUIT\r\n")
            if not banner.startswith(b"220"):
                raise OSError("no SMTP greeting after the TLS handshake")
            return tls.version() or ""


def parse_postconf(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        name, sep, value = line.partition(" = ")
        if sep:
            values[name.strip()] = value.strip()
        elif line.strip().endswith("="):
            values[line.strip().rstrip("= ")] = ""
    return values


class MailCollector(ProbingCollector, probe=SmtpProbe, cache_seconds=PROBE_CACHE_SECONDS):
    name = "mail"
    role = "mail_tls"
    toms = (TOM,)

    def check(self, state: State, host: Host) -> Report:
        choices = tuple(TLS_VERSIONS)[2:]
        smtpd_min = state.text("mail_tls_smtpd_min_protocol", choices)
        smtp_min = state.text("mail_tls_smtp_min_protocol", choices)
        smtpd_level = state.text("mail_tls_smtpd_security_level")
        smtp_level = state.text("mail_tls_smtp_security_level")
        ports = {
            "smtp": state.integer("mail_tls_smtp_port", 1, 65535),
            "submission": state.integer("mail_tls_submission_port", 1, 65535),
            "smtps": state.integer("mail_tls_smtps_port", 1, 65535),
        }
        live = parse_postconf(host.output((POSTCONF, *MAIN_SETTINGS)))
        live.update(parse_postconf(host.output((POSTCONF, "-P", *SERVICE_SETTINGS))))
        missing = [n for n in (*MAIN_SETTINGS, *SERVICE_SETTINGS) if n not in live]
        if missing:
            raise CheckError(f"postconf printed no {', '.join(missing)}")
        expected = {
            "smtpd_tls_security_level": smtpd_level,
            "smtp_tls_security_level": smtp_level,
            "smtpd_tls_protocols": ">=" + smtpd_min,
            "smtpd_tls_mandatory_protocols": ">=" + smtpd_min,
            "smtp_tls_protocols": ">=" + smtp_min,
            "smtp_tls_mandatory_protocols": ">=" + smtp_min,
            "submission/inet/smtpd_tls_security_level": "encrypt",
            "smtps/inet/smtpd_tls_wrappermode": "yes",
        }
        drift = sorted(n for n, v in expected.items() if live.get(n) != v)
        report = Report()
        report.require(TOM, not drift, f"postfix's effective {', '.join(drift)} differ from the role's settings")
        report.gauge(
            "tomwerk_mail_tls_config_drift",
            "postfix TLS settings whose effective value (postconf) differs from what mail_tls applied (TOM-TLS-03).",
            len(drift),
        )
        for direction, name in (("inbound", "smtpd_tls_protocols"), ("outbound", "smtp_tls_protocols")):
            report.gauge(
                "tomwerk_mail_tls_min_version",
                "Lowest TLS version postfix allows, from postconf (1.2 = TLSv1.2; 0 = not restricted), by direction.",
                min_version(live[name]),
                direction=direction,
            )
        handshakes = self.probe_each(
            tuple(sorted(ports.items())),
            ports,
            lambda service: self._handshake(service, ports[service]),
            lambda handshake: tls_strong_enough(handshake[0]),
        )
        for service, (version, error) in handshakes.items():
            ok = tls_strong_enough(version)
            reason = error or ("offers no STARTTLS" if not version else f"negotiated {version}")
            report.require_and_gauge(
                TOM,
                ok,
                f"{service} (port {ports[service]}): {reason}",
                "tomwerk_mail_tls_handshake_ok",
                "1 if a local SMTP probe of the service negotiated TLS 1.2 or newer (STARTTLS on smtp and submission, "
                "TLS first on smtps), else 0 (TOM-TLS-03).",
                service=service,
            )
        return report

    def _handshake(self, service: str, port: int) -> tuple[str, str]:
        """(negotiated TLS version, why there is none)."""
        try:
            return self._probe.wrapped(port) if service == "smtps" else self._probe.starttls(port), ""
        except OSError as exc:  # ssl.SSLError too
            return "", f"no TLS session: {exc}"


def min_version(value: str) -> float:
    """The floor of a postfix protocol list: ">=TLSv1.2" -> 1.2, "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1" -> 1.2."""
    words = value.replace(",", " ").replace(":", " ").split()
    for word in words:
        if word.startswith(">="):
            return TLS_VERSIONS.get(word[2:], 0.0)
    excluded = {w[1:] for w in words if w.startswith("!")}
    for name, number in TLS_VERSIONS.items():
        if name not in excluded:
            return number
    return 0.0
