"""TOM-TLS-02: certificates are free, obtained by ACME and renewed automatically.

The served certificate is checked on the wire (from the controller, with the
site's name as SNI) against the ACME CA's root: in the lab pebble's current
root, fetched the way the ACME client host reaches the server."""

from __future__ import annotations

import re
import subprocess

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from tests.compliance.tlsprobe import acme_root_pem

ROLE = "acme"


def certificates(inventory, hostname, role_vars) -> list[dict]:
    """acme_certificates as the role saw them (its default comes from web_tls_sites)."""
    certs = role_vars["acme_certificates"]
    if not certs and "web_tls" in inventory.roles_by_host.get(hostname, []):
        web = inventory.role_vars(hostname, "web_tls")["web_tls_sites"]
        certs = [{"name": s["name"], "domains": s["server_names"]} for s in web]
    return certs


def served_chain(address: str, port: int, server_name: str) -> list[x509.Certificate]:
    """The certificates the server sends for server_name (SNI), leaf first: a real handshake with openssl s_client."""
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"{address}:{port}", "-servername", server_name, "-showcerts"],
        input="",
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    pems = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", result.stdout, re.DOTALL)
    assert pems, f"no certificate from {address}:{port} for {server_name}: {result.stderr[-300:]}"
    return [x509.load_pem_x509_certificate(p.encode()) for p in pems]


@pytest.mark.tom("TOM-TLS-02")
def test_served_certificate_is_issued_by_the_acme_ca(host, hostname, inventory, address, role_vars, evidence):
    """The certificate served for each name is certbot's, not self-signed, covers the name, chains to the ACME CA."""
    roots_url = role_vars.get("acme_ca_roots_url")
    root = x509.load_pem_x509_certificate(acme_root_pem(host, roots_url).encode()) if roots_url else None
    for cert in certificates(inventory, hostname, role_vars):
        held = x509.load_pem_x509_certificate(host.file(f"/etc/letsencrypt/live/{cert['name']}/cert.pem").content)
        for domain in cert["domains"]:
            chain = served_chain(address, 443, domain)
            leaf = chain[0]
            names = leaf.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
            evidence(
                f"certificate for {domain}",
                {
                    "issuer": leaf.issuer.rfc4514_string(),
                    "serial": format(leaf.serial_number, "x"),
                    "not_after": leaf.not_valid_after_utc.isoformat(),
                    "names": names.get_values_for_type(x509.DNSName),
                },
            )
            assert leaf == held, "the served certificate is not the one certbot obtained"
            assert leaf.issuer != leaf.subject, "self-signed"
            assert domain in names.get_values_for_type(x509.DNSName)
            # Each certificate of the chain is signed by the next, the last by the ACME CA's root.
            for child, parent in zip(chain, chain[1:] + ([root] if root else []), strict=False):
                child.verify_directly_issued_by(parent)
            if root:
                assert chain[-1].issuer == root.subject


@pytest.mark.tom("TOM-TLS-02")
def test_certbot_renews_automatically(host, inventory, hostname, role_vars, evidence):
    """certbot.timer is active; each renewal configuration names the ACME server and the deploy hook."""
    timer = host.service("certbot.timer")
    next_run = host.check_output("systemctl show certbot.timer -p NextElapseUSecRealtime --value")
    evidence("certbot.timer next run", next_run)
    assert timer.is_enabled and timer.is_running
    for cert in certificates(inventory, hostname, role_vars):
        conf = host.file(f"/etc/letsencrypt/renewal/{cert['name']}.conf").content_string
        server = re.search(r"^server = (\S+)$", conf, re.MULTILINE)
        hook = re.search(r"^renew_hook = (\S+)$", conf, re.MULTILINE)
        evidence(f"renewal of {cert['name']}", {"server": server and server.group(1), "hook": hook and hook.group(1)})
        assert server and server.group(1) == role_vars["acme_directory_url"]
        assert hook and host.file(hook.group(1)).is_file


@pytest.mark.tom("TOM-TLS-02")
def test_certificate_is_fresh_enough(host, inventory, hostname, role_vars, evidence):
    """certbot's certificates are valid for more than acme_min_valid_days and were issued for at most 397 days."""
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    for cert in certificates(inventory, hostname, role_vars):
        held = x509.load_pem_x509_certificate(host.file(f"/etc/letsencrypt/live/{cert['name']}/cert.pem").content)
        left = held.not_valid_after_utc - now
        lifetime = held.not_valid_after_utc - held.not_valid_before_utc
        evidence(f"validity of {cert['name']}", {"days_left": left.days, "lifetime_days": lifetime.days})
        assert left.days > int(role_vars["acme_min_valid_days"])
        assert lifetime.days <= 397
