"""TOM-TLS-04: transfers between our own systems are encrypted; here, the scrape endpoints.

The role tom_exporter serves this host's TOM exporter and node_exporter only
over HTTPS with client certificates of the internal CA (internal_pki), and
records the endpoints in tom_exporter.json. This collector probes each
endpoint on the host's own address as three clients would:

- a plain-HTTP client must not be served;
- a TLS client without a certificate must not be served;
- a TLS client with this host's certificate must be served over TLS 1.2 or
  newer, after verifying the endpoint's certificate against the internal CA
  for the address it listens on.

"Served" means an HTTP 200. The probes ask for pages that carry no metrics
(the TOM exporter's /favicon.ico, node_exporter's landing page), so probing
the own exporter runs no checks and cannot wait on itself. Results are
cached while every probe succeeds (core.SuccessCache).

Log forwarding (TOM-LOG-03, RELP over TLS) and backups (SFTP) carry their
own checks; Prometheus' side of the scrapes is checked on the monitoring host
(tests/compliance/test_monitoring.py).
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from typing import NamedTuple

from ..core import Host, ProbingCollector, Report, State, tls_strong_enough

TOM = "TOM-TLS-04"
PROBE_CACHE_SECONDS = 300.0
PROBE_TIMEOUT = 5.0
# Pages without metrics, each answered with 200 by its exporter.
PROBE_PATHS = {"tomwerk_exporter": "/favicon.ico", "node_exporter": "/"}
STATUS = re.compile(rb"^HTTP/1\.[01] (\d{3})")


class Probed(NamedTuple):
    """What the three clients found at one endpoint."""

    plaintext_served: bool
    anonymous_served: bool
    version: str  # TLS version of the authenticated session, "" if none was served
    not_after: float  # expiry of the endpoint's certificate (Unix time), 0 if unknown
    error: str  # why the authenticated client was not served

    @property
    def ok(self) -> bool:
        return not self.plaintext_served and not self.anonymous_served and tls_strong_enough(self.version)


class EndpointProbe:
    """The host's scrape endpoints as clients see them; tests pass a recorded one instead."""

    def __init__(self, timeout: float = PROBE_TIMEOUT):
        self.timeout = timeout

    def _request(self, sock, path: str) -> int:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: tomwerk-exporter\r\n\r\n".encode())
        head = sock.recv(64)
        found = STATUS.match(head)
        return int(found.group(1)) if found else 0

    def plaintext(self, address: str, port: int, path: str) -> bool:
        try:
            with socket.create_connection((address, port), timeout=self.timeout) as sock:
                return self._request(sock, path) == 200
        except OSError:
            return False

    def anonymous(self, address: str, port: int, path: str, ca_file: str) -> bool:
        context = ssl.create_default_context(cafile=ca_file)
        context.check_hostname = False  # the server is judged by the authenticated probe
        try:
            with socket.create_connection((address, port), timeout=self.timeout) as raw:
                tls = context.wrap_socket(raw)
                with tls:
                    return self._request(tls, path) == 200
        except (OSError, ssl.SSLError):
            return False

    def authenticated(
        self, address: str, port: int, path: str, ca_file: str, cert_file: str, key_file: str
    ) -> tuple[str, float]:
        """(TLS version, certificate expiry) of a served mutual-TLS request; OSError if not served."""
        context = ssl.create_default_context(cafile=ca_file)
        context.load_cert_chain(cert_file, key_file)
        # server_hostname is the address: the certificate must name it (IP subjectAltName).
        with (
            socket.create_connection((address, port), timeout=self.timeout) as raw,
            context.wrap_socket(raw, server_hostname=address) as tls,
        ):
            status = self._request(tls, path)
            if status != 200:
                raise OSError(f"answered HTTP {status or 'nothing'} to a client with a valid certificate")
            return tls.version() or "", ssl.cert_time_to_seconds(tls.getpeercert()["notAfter"])


class InternalTlsCollector(ProbingCollector, probe=EndpointProbe, cache_seconds=PROBE_CACHE_SECONDS):
    name = "internal_tls"
    role = "tom_exporter"
    toms = (TOM,)

    def __init__(self, probe=None, clock=time.monotonic, wall=time.time, cache_seconds: float | None = None):
        super().__init__(probe, clock, cache_seconds)
        self._wall = wall

    def check(self, state: State, host: Host) -> Report:
        address = state.text("tom_exporter_listen_address")
        files = {
            "ca": state.text("tom_exporter_tls_ca_file"),
            "cert": state.text("tom_exporter_tls_cert_file"),
            "key": state.text("tom_exporter_tls_key_file"),
        }
        endpoints = {"tomwerk_exporter": state.integer("tom_exporter_port", 1, 65535)}
        if state.value("tom_exporter_node_exporter") is True:
            endpoints["node_exporter"] = state.integer("tom_exporter_node_exporter_port", 1, 65535)
        key = (address, tuple(sorted(endpoints.items())), tuple(sorted(files.items())))
        found = self.probe_each(
            key, endpoints, lambda service: self._probed(address, service, endpoints[service], files), lambda p: p.ok
        )
        now = self._wall()
        report = Report()
        for service, port in endpoints.items():
            p = found[service]
            where = f"{service} (port {port})"
            report.require(TOM, not p.plaintext_served, f"{where} serves plain HTTP")
            report.require(TOM, not p.anonymous_served, f"{where} serves a TLS client without a certificate")
            report.require(TOM, tls_strong_enough(p.version), f"{where}: no mutual-TLS session of TLS 1.2+: {p.error}")
            if p.not_after:
                report.require(TOM, p.not_after > now, f"{where}: its certificate has expired")
            report.gauge(
                "tomwerk_internal_tls_plaintext_served",
                "1 if the scrape endpoint serves a plain-HTTP request, else 0 (TOM-TLS-04); must be 0.",
                1 if p.plaintext_served else 0,
                service=service,
            )
            report.gauge(
                "tomwerk_internal_tls_anonymous_served",
                "1 if the scrape endpoint serves a TLS client that shows no certificate, else 0 (TOM-TLS-04); "
                "must be 0.",
                1 if p.anonymous_served else 0,
                service=service,
            )
            report.gauge(
                "tomwerk_internal_tls_handshake_ok",
                "1 if a client with this host's internal certificate is served over TLS 1.2 or newer and the "
                "endpoint's certificate verifies against the internal CA for its address, else 0 (TOM-TLS-04).",
                1 if tls_strong_enough(p.version) else 0,
                service=service,
            )
            if p.not_after:
                report.gauge(
                    "tomwerk_internal_tls_certificate_expiry_timestamp_seconds",
                    "When the certificate the scrape endpoint presents expires (Unix time; TOM-TLS-04).",
                    p.not_after,
                    service=service,
                )
        return report

    def _probed(self, address: str, service: str, port: int, files: dict[str, str]) -> Probed:
        path = PROBE_PATHS[service]
        plaintext = self._probe.plaintext(address, port, path)
        anonymous = self._probe.anonymous(address, port, path, files["ca"])
        try:
            version, not_after = self._probe.authenticated(
                address, port, path, files["ca"], files["cert"], files["key"]
            )
            error = ""
        except (OSError, ssl.SSLError) as exc:
            version, not_after, error = "", 0.0, str(exc) or type(exc).__name__
        return Probed(plaintext, anonymous, version, not_after, error)
