"""TOM-DNS-01 on the validating resolver's own host (role dns_resolver).

test_dnssec.py proves the signed zones from the signer's side; this proves
the resolver: every zone it was given as a stub zone validates there (the AD
flag), with the trust anchor it read from the zone's signer at converge.
"""

from __future__ import annotations

import pytest

from tests.compliance.test_dnssec import kdig

ROLE = "dns_resolver"


@pytest.mark.tom("TOM-DNS-01")
def test_resolver_validates_every_stub_zone(host, role_vars, evidence):
    """On the resolver host, each stub zone's SOA comes back NOERROR with the AD flag (DNSSEC-validated)."""
    zones = role_vars["dns_resolver_stub_zones"]
    assert zones, "dns_resolver_stub_zones is empty: the resolver has no signed zone to validate"
    listen = role_vars["dns_resolver_listen_addresses"][0]
    for zone in zones:
        status, flags, out = kdig(host, f"@{listen}", "+dnssec", "SOA", zone["name"])
        evidence(zone["name"], {"status": status, "flags": flags, "signer": zone["signer"]})
        assert status == "NOERROR" and "ad" in flags, out
