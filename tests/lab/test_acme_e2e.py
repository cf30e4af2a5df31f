"""Certificates by ACME proven end to end in the lab (TOM-TLS-02): a forced
renewal against the lab's pebble gets a new certificate, the deploy hook puts
it in place, nginx serves it within seconds, and the exporter reports its expiry."""

from __future__ import annotations

import re
import time

import pytest
from cryptography import x509

from tests.compliance.promql import fetch_exporter, samples
from tests.compliance.test_acme import served_chain
from tests.lab.conftest import lab_host

HOST = "web1"
ADDRESS = "10.231.0.11"
NAME = "www"
DOMAIN = "web1.lab.tomwerk.test"
# `systemctl reload nginx` returns once the master has the signal; old workers
# finish their connections while new ones start, longer on a busy host.
RELOAD_SECONDS = 20


def exporter_expiry(monitor) -> float | None:
    for name, labels, value in samples(fetch_exporter(monitor, f"https://{ADDRESS}:9840/metrics")):
        if name == "tomwerk_tls_certificate_expiry_timestamp_seconds" and labels.get("name") == NAME:
            return value
    return None


@pytest.mark.tom("TOM-TLS-02")
def test_forced_renewal_is_served_within_seconds():
    host = lab_host(HOST)
    monitor = lab_host("monitor1")
    before = served_chain(ADDRESS, 443, DOMAIN)[0]
    started = time.time()
    result = host.run(f"certbot renew --non-interactive --no-random-sleep-on-renew --force-renewal --cert-name {NAME}")
    assert result.rc == 0, result.stdout + result.stderr
    assert re.search(r"fullchain.pem \(success\)", result.stdout), result.stdout
    renewed = time.time()
    after = served_chain(ADDRESS, 443, DOMAIN)[0]
    while after.serial_number == before.serial_number and time.time() < renewed + RELOAD_SECONDS:
        time.sleep(1)
        after = served_chain(ADDRESS, 443, DOMAIN)[0]
    assert after.serial_number != before.serial_number, (
        f"nginx still serves the old certificate {RELOAD_SECONDS} s after the renewal"
    )
    held = x509.load_pem_x509_certificate(host.file(f"/etc/letsencrypt/live/{NAME}/cert.pem").content)
    assert after == held, "nginx does not serve the renewed certificate"
    # The exporter caches for its min-interval (30 s); it must report the new certificate after that.
    deadline = started + 90
    expected = after.not_valid_after_utc.timestamp()
    while exporter_expiry(monitor) != expected and time.time() < deadline:
        time.sleep(5)
    assert exporter_expiry(monitor) == expected
