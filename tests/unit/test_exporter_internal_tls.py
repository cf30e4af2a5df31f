"""TOM-TLS-04 on the scrape endpoints: the exporter's mutual-TLS server and the
internal_tls collector that probes it.

The first tests drive the collector with a fake probe. The rest start the real
server on loopback with certificates made here (an own CA, a server
certificate for 127.0.0.1, client certificates for a scraper and an outsider)
and probe it with the real EndpointProbe, so the collector is shown to tell
mutual TLS from plain HTTP and from TLS that lets anyone in.
"""

from __future__ import annotations

import datetime
import importlib
import ipaddress
import ssl
import threading
import urllib.request

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

from tomwerk_host.exporter import core

internal_tls = importlib.import_module("tomwerk_host.exporter.collectors.internal_tls")

TOM = "TOM-TLS-04"
NOW = 1_800_000_000.0


def state(**changes):
    variables = {
        "tom_exporter_listen_address": "10.231.0.11",
        "tom_exporter_port": 9840,
        "tom_exporter_node_exporter": True,
        "tom_exporter_node_exporter_port": 9100,
        "tom_exporter_tls_cert_file": "/etc/tomwerk/pki/host.crt",
        "tom_exporter_tls_key_file": "/etc/tomwerk/pki/host.key",
        "tom_exporter_tls_ca_file": "/etc/tomwerk/pki/ca.crt",
        **changes,
    }
    return core.State("tom_exporter", (TOM,), variables, "/etc/tomwerk/state")


class FakeProbe:
    """Every endpoint does mutual TLS right unless told otherwise per port."""

    def __init__(self, plaintext=(), anonymous=(), broken=None, not_after=NOW + 86400 * 300):
        self.plaintext_ports, self.anonymous_ports = set(plaintext), set(anonymous)
        self.broken = dict(broken or {})
        self.not_after = not_after
        self.calls = []

    def plaintext(self, address, port, path):
        self.calls.append(("plaintext", port, path))
        return port in self.plaintext_ports

    def anonymous(self, address, port, path, ca_file):
        self.calls.append(("anonymous", port, path))
        return port in self.anonymous_ports

    def authenticated(self, address, port, path, ca_file, cert_file, key_file):
        self.calls.append(("authenticated", port, path))
        if port in self.broken:
            raise self.broken[port]
        return "TLSv1.3", self.not_after


def run(probe=None, **changes):
    collector = internal_tls.InternalTlsCollector(probe or FakeProbe(), wall=lambda: NOW)
    report = collector.check(state(**changes), core.Host())
    return report.failures.get(TOM, []), {(s.name, s.labels): s.value for s in report.samples}


def figure(figures, name, service):
    return figures[(name, (("service", service),))]


def test_mutual_tls_on_both_endpoints_is_compliant():
    failures, figures = run()
    assert failures == []
    for service in ("tomwerk_exporter", "node_exporter"):
        assert figure(figures, "tomwerk_internal_tls_handshake_ok", service) == 1
        assert figure(figures, "tomwerk_internal_tls_plaintext_served", service) == 0
        assert figure(figures, "tomwerk_internal_tls_anonymous_served", service) == 0
        assert figure(figures, "tomwerk_internal_tls_certificate_expiry_timestamp_seconds", service) > NOW


def test_the_probes_ask_for_pages_without_metrics():
    probe = FakeProbe()
    run(probe)
    assert {path for _, port, path in probe.calls if port == 9840} == {"/favicon.ico"}
    assert {path for _, port, path in probe.calls if port == 9100} == {"/"}


@pytest.mark.parametrize(
    "probe, service, finding",
    [
        (FakeProbe(plaintext=[9100]), "node_exporter", "serves plain HTTP"),
        (FakeProbe(anonymous=[9840]), "tomwerk_exporter", "without a certificate"),
        (FakeProbe(broken={9840: ssl.SSLError("certificate verify failed")}), "tomwerk_exporter", "no mutual-TLS"),
        (FakeProbe(broken={9100: ConnectionRefusedError(111, "refused")}), "node_exporter", "no mutual-TLS"),
        (FakeProbe(not_after=NOW - 1), "tomwerk_exporter", "has expired"),
    ],
)
def test_each_weakness_is_a_finding(probe, service, finding):
    failures, _ = run(probe)
    assert any(f.startswith(service) and finding in f for f in failures), failures


def test_without_node_exporter_only_the_tom_exporter_is_probed():
    probe = FakeProbe()
    failures, figures = run(probe, tom_exporter_node_exporter=False)
    assert failures == []
    assert {port for _, port, _ in probe.calls} == {9840}
    assert not any(labels == (("service", "node_exporter"),) for _, labels in figures)


def test_successes_are_cached_and_failures_probed_again():
    now = [0.0]
    probe = FakeProbe(broken={9100: ConnectionRefusedError(111, "refused")})
    collector = internal_tls.InternalTlsCollector(probe, clock=lambda: now[0], wall=lambda: NOW, cache_seconds=300)
    assert collector.check(state(), core.Host()).failures[TOM]
    now[0] = 30
    probe.broken = {}
    assert collector.check(state(), core.Host()).failures[TOM] == []
    calls = len(probe.calls)
    now[0] = 60
    collector.check(state(), core.Host())
    assert len(probe.calls) == calls  # served from the cache


def test_state_without_the_certificate_files_is_a_state_error():
    with pytest.raises(core.StateError):
        run(tom_exporter_tls_key_file="")


# --------------------------------------------------------------------- the real server


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(ca_key, ca_name, common_name, tmp, *, ip=None, ca=False, days=30):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_name or _name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        names = [x509.DNSName(common_name)] + ([x509.IPAddress(ipaddress.ip_address(ip))] if ip else [])
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    cert = builder.sign(ca_key or key, hashes.SHA256())
    cert_file, key_file = tmp / f"{common_name}.crt", tmp / f"{common_name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return key, cert_file, key_file


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pki")
    ca_key, ca_file, _ = _issue(None, None, "test CA", tmp, ca=True)
    ca_name = _name("test CA")
    files = {"ca": ca_file}
    for name, ip in (("web1", "127.0.0.1"), ("monitor1", None), ("mallory", None)):
        _, files[f"{name}.crt"], files[f"{name}.key"] = _issue(ca_key, ca_name, name, tmp, ip=ip)
    files["ca_key"], files["ca_name"] = ca_key, ca_name
    return files


class _OneGauge:
    def collect(self):
        yield GaugeMetricFamily("tomwerk_test_up", "A metric to scrape.", value=1)


@pytest.fixture
def serve(pki):
    """Start the exporter's server on loopback, with mutual TLS or (tls=False) plain HTTP."""
    servers = []

    def start(tls=True):
        registry = CollectorRegistry()
        registry.register(_OneGauge())
        settings = None
        if tls:
            settings = core.TlsSettings(
                str(pki["web1.crt"]), str(pki["web1.key"]), str(pki["ca"]), frozenset({"monitor1", "web1"})
            )
        server = core.make_http_server(registry, "127.0.0.1", 0, settings)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_the_server_serves_only_allowed_client_certificates(pki, serve):
    port = serve()
    probe = internal_tls.EndpointProbe(timeout=3)
    assert probe.plaintext("127.0.0.1", port, "/favicon.ico") is False
    assert probe.anonymous("127.0.0.1", port, "/favicon.ico", str(pki["ca"])) is False
    version, not_after = probe.authenticated(
        "127.0.0.1", port, "/favicon.ico", str(pki["ca"]), str(pki["monitor1.crt"]), str(pki["monitor1.key"])
    )
    assert version in ("TLSv1.2", "TLSv1.3") and not_after > 0
    with pytest.raises(OSError):  # a valid certificate of the CA, but not a scraper's
        probe.authenticated(
            "127.0.0.1", port, "/favicon.ico", str(pki["ca"]), str(pki["mallory.crt"]), str(pki["mallory.key"])
        )


def test_a_scraper_gets_the_metrics_over_https(pki, serve):
    port = serve()
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    context.load_cert_chain(str(pki["monitor1.crt"]), str(pki["monitor1.key"]))
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/metrics", context=context, timeout=5) as response:
        assert b"tomwerk_test_up 1.0" in response.read()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_below_1_2_is_refused(pki, serve):
    port = serve()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(pki["ca"]))
    context.load_cert_chain(str(pki["monitor1.crt"]), str(pki["monitor1.key"]))
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.1 at all
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, OSError)):
        urllib.request.urlopen(f"https://127.0.0.1:{port}/metrics", context=context, timeout=5)


def _collector_on(pki, port):
    collector = internal_tls.InternalTlsCollector(internal_tls.EndpointProbe(timeout=3), cache_seconds=0)
    endpoint = state(
        tom_exporter_listen_address="127.0.0.1",
        tom_exporter_port=port,
        tom_exporter_node_exporter=False,
        tom_exporter_tls_cert_file=str(pki["web1.crt"]),
        tom_exporter_tls_key_file=str(pki["web1.key"]),
        tom_exporter_tls_ca_file=str(pki["ca"]),
    )
    return collector.check(endpoint, core.Host()).failures[TOM]


def test_the_collector_passes_the_real_mutual_tls_server(pki, serve):
    assert _collector_on(pki, serve()) == []


def test_the_collector_flags_a_real_plain_http_server(pki, serve):
    failures = _collector_on(pki, serve(tls=False))
    assert any("serves plain HTTP" in f for f in failures), failures
    assert any("no mutual-TLS session" in f for f in failures), failures


def test_a_renewed_certificate_is_served_without_a_restart(pki, serve, tmp_path):
    # The server's own copy of its files, so the module's certificates stay as they are.
    cert, key = tmp_path / "web1.crt", tmp_path / "web1.key"
    cert.write_bytes(pki["web1.crt"].read_bytes())
    key.write_bytes(pki["web1.key"].read_bytes())
    registry = CollectorRegistry()
    registry.register(_OneGauge())
    settings = core.TlsSettings(str(cert), str(key), str(pki["ca"]), frozenset({"monitor1"}))
    server = core.make_http_server(registry, "127.0.0.1", 0, settings)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    probe = internal_tls.EndpointProbe(timeout=3)
    args = ("/favicon.ico", str(pki["ca"]), str(pki["monitor1.crt"]), str(pki["monitor1.key"]))
    try:
        port = server.server_address[1]
        _, before = probe.authenticated("127.0.0.1", port, *args)
        renewed = tmp_path / "renewed"
        renewed.mkdir()
        _, new_cert, new_key = _issue(pki["ca_key"], pki["ca_name"], "web1", renewed, ip="127.0.0.1", days=300)
        key.write_bytes(new_key.read_bytes())
        cert.write_bytes(new_cert.read_bytes())
        _, after = probe.authenticated("127.0.0.1", port, *args)
    finally:
        server.shutdown()
        server.server_close()
    assert after - before > 200 * 86400
