"""TOM-DNS-01: customer zones are signed with DNSSEC, and a real validating resolver accepts them.

Queries go over the lab network from the validating resolver's host (role
dns_resolver), to the authoritative server and to the resolver. The broken
signature is real: the signed zone is exported from knot, one record's data
is changed with its RRSIG left as it was, and knot serves that copy unsigned
until the test restores the configuration.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.compliance.conftest import address_of, exporter_metrics, get_host

ROLE = "dnssec"
KNOT_CONF = "/etc/knot/knot.conf"


@pytest.fixture(scope="module")
def resolver(inventory, role_vars):
    """(testinfra host of the resolver, its address): the queries run there. The resolver is
    dnssec_validating_resolver, the one the exporter asks, among the hosts with role dns_resolver."""
    wanted = role_vars["dnssec_validating_resolver"]
    if not wanted:
        pytest.fail("TOM-DNS-01 needs a validating resolver: set dnssec_validating_resolver, role dns_resolver")
    names = [n for n in inventory.hosts_with_role("dns_resolver") if address_of(inventory, n) == wanted]
    if not names:
        pytest.fail(f"dnssec_validating_resolver {wanted} is no inventory host with role dns_resolver")
    return get_host(inventory, names[0]), wanted


def kdig(host, *args: str) -> tuple[str, list[str], str]:
    """(status, header flags, full output) of kdig on host."""
    out = host.check_output("kdig +time=2 +retry=1 " + " ".join(args))
    status = re.search(r"status: ([A-Z]+)", out)
    flags = re.search(r";; Flags: ([a-z ]*);", out)
    return (status.group(1) if status else "?"), (flags.group(1).split() if flags else []), out


def a_name(zone: dict) -> str:
    """An owner name with an A record in the zone (from the inventory)."""
    for record in zone["records"]:
        if record["type"].upper() == "A":
            name = record["name"]
            return (
                zone["name"] if name == "@" else (name.rstrip(".") if name.endswith(".") else f"{name}.{zone['name']}")
            )
    pytest.fail(f"zone {zone['name']} has no A record to query")


@pytest.mark.tom("TOM-DNS-01")
def test_authoritative_serves_signed_zones(role_vars, address, resolver, evidence):
    """The authoritative server answers each zone's SOA with RRSIGs and publishes DNSKEYs."""
    peer, _ = resolver
    for zone in role_vars["dnssec_zones"]:
        status, flags, out = kdig(peer, f"@{address}", "+dnssec", "+norec", "SOA", zone["name"])
        rrsigs = re.findall(r"\sRRSIG\s+SOA\s", out)
        _, _, keys = kdig(peer, f"@{address}", "+dnssec", "+norec", "DNSKEY", zone["name"])
        evidence(f"{zone['name']} SOA", {"status": status, "flags": flags, "rrsig": len(rrsigs)})
        assert status == "NOERROR" and "aa" in flags, out
        assert rrsigs, out
        assert re.search(r"\sDNSKEY\s+257\s", keys), keys  # a KSK


@pytest.mark.tom("TOM-DNS-01")
def test_denial_of_existence_uses_nsec3_when_configured(role_vars, address, resolver, evidence):
    """A name that does not exist is denied with NSEC3 records where the zone asks for NSEC3, else with NSEC."""
    peer, _ = resolver
    for zone in role_vars["dnssec_zones"]:
        nsec3 = bool(zone.get("nsec3", role_vars["dnssec_nsec3"]))
        status, _, out = kdig(
            peer, f"@{address}", "+dnssec", "+norec", "A", f"tomwerk-nx-{int(time.time())}.{zone['name']}"
        )
        kinds = sorted(set(re.findall(r"\s(NSEC3?)\s", out)))
        evidence(f"{zone['name']} denial", {"status": status, "records": kinds, "nsec3 configured": nsec3})
        assert status == "NXDOMAIN", out
        assert kinds == (["NSEC3"] if nsec3 else ["NSEC"]), out


@pytest.mark.tom("TOM-DNS-01")
def test_resolver_validates_signed_names(role_vars, resolver, evidence):
    """The validating resolver answers a signed name of each zone with NOERROR and the AD flag."""
    peer, resolver_address = resolver
    for zone in role_vars["dnssec_zones"]:
        name = a_name(zone)
        status, flags, out = kdig(peer, f"@{resolver_address}", "+dnssec", "A", name)
        evidence(name, {"status": status, "flags": flags})
        assert status == "NOERROR" and "ad" in flags, out


def exported_metric(host, name: str, zone: str) -> float | None:
    match = re.search(rf'^{name}{{zone="{re.escape(zone)}"}} (\S+)$', exporter_metrics(host), re.MULTILINE)
    return float(match.group(1)) if match else None


@pytest.mark.tom("TOM-DNS-01")
@pytest.mark.serial  # breaks the zone that the resolver host's own checks query
def test_broken_signature_is_servfail(host, role_vars, address, resolver, evidence):
    """A record whose data no longer matches its RRSIG makes the resolver answer SERVFAIL and the metric flip;
    restored, the zone validates again."""
    peer, resolver_address = resolver
    zone = role_vars["dnssec_zones"][-1]  # the last zone: the others stay untouched
    name = a_name(zone)
    signed = host.check_output(f"knotc zone-read {zone['name']}")  # as root: the control socket is knot's
    lines = [re.sub(r"^\[[^\]]*\]\s+", "", line) for line in signed.splitlines() if line.strip()]
    target = re.compile(rf"^{re.escape(name)}\.\s+\d+\s+A\s+(\S+)$")
    hits = [i for i, line in enumerate(lines) if target.match(line)]
    assert hits, signed
    original = target.match(lines[hits[0]]).group(1)
    forged = "192.0.2.66" if original != "192.0.2.66" else "192.0.2.67"
    lines[hits[0]] = lines[hits[0]].replace(original, forged)  # its RRSIG stays as it was
    # The SOA too (its minimum TTL), as the exporter asks for the SOA.
    soa = [i for i, line in enumerate(lines) if re.match(rf"^{re.escape(zone['name'])}\.\s+\d+\s+SOA\s", line)]
    assert soa, signed
    head, minimum = lines[soa[0]].rsplit(None, 1)
    lines[soa[0]] = f"{head} {int(minimum) + 1}"
    tampered = f"/var/lib/knot/tomwerk-tamper-{zone['name']}.zone"
    host.run_test(f"cp -p {KNOT_CONF} {KNOT_CONF}.tomwerk-test")
    try:
        host.run_test(f"cat > {tampered} <<'EOF'\n" + "\n".join(lines) + "\nEOF\nchown knot:knot " + tampered)
        override = (
            f'    file: "{tampered}"\\n    dnssec-signing: off\\n    zonefile-load: whole\\n'
            "    journal-content: none\\n    semantic-checks: off"
        )
        host.run_test(f"""sed -i '/^  - domain: "{zone["name"]}"$/a\\{override}' {KNOT_CONF}""")
        host.run_test("knotc conf-check && knotc reload && sleep 1 && knotc zone-reload " + zone["name"])
        served = kdig(peer, f"@{address}", "+norec", "A", name)[2]
        assert forged in served, served  # knot serves the forged data
        peer.run_test(f"unbound-control flush_zone {zone['name']} && unbound-control flush_bogus")
        status, flags, out = kdig(peer, f"@{resolver_address}", "+dnssec", "A", name)
        soa_status = kdig(peer, f"@{resolver_address}", "+dnssec", "SOA", zone["name"])[0]
        evidence("resolver answer with the forged records", {"A": status, "flags": flags, "SOA": soa_status})
        assert status == "SERVFAIL", out
        assert soa_status == "SERVFAIL"
        deadline = time.time() + 90
        while (ok := exported_metric(host, "tomwerk_dns_validation_ok", zone["name"])) != 0 and time.time() < deadline:
            time.sleep(5)  # fmt: skip
        evidence("tomwerk_dns_validation_ok while broken", ok)
        assert ok == 0
    finally:
        host.run(
            f"mv {KNOT_CONF}.tomwerk-test {KNOT_CONF} && knotc reload && sleep 1 && knotc zone-reload {zone['name']}"
        )
        host.run(f"rm -f {tampered}")
        peer.run(f"unbound-control flush_zone {zone['name']}; unbound-control flush_bogus")
    deadline = time.time() + 30
    while (answer := kdig(peer, f"@{resolver_address}", "+dnssec", "A", name))[
        0
    ] != "NOERROR" and time.time() < deadline:
        time.sleep(2)  # fmt: skip
        peer.run(f"unbound-control flush_zone {zone['name']}; unbound-control flush_bogus")
    evidence("resolver answer after restore", {"status": answer[0], "flags": answer[1]})
    assert answer[0] == "NOERROR" and "ad" in answer[1], answer[2]


@pytest.mark.tom("TOM-DNS-01")
def test_signatures_are_far_from_expiry(host, role_vars, address, evidence):
    """The earliest RRSIG of each zone (as the exporter reports it) expires after dnssec_rrsig_min_remaining_days."""
    for zone in role_vars["dnssec_zones"]:
        expiry = exported_metric(host, "tomwerk_dns_rrsig_earliest_expiry_timestamp_seconds", zone["name"])
        evidence(
            f"{zone['name']} earliest RRSIG expiry (days from now)", expiry and round((expiry - time.time()) / 86400, 1)
        )
        assert expiry and expiry - time.time() > role_vars["dnssec_rrsig_min_remaining_days"] * 86400
