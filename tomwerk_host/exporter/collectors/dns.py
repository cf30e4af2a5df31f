"""TOM-DNS-01: customer zones are signed with DNSSEC, and the signatures validate.

The role dnssec runs Knot DNS with automatic signing for dnssec_zones. Per
zone, this module reads the signed zone from knot (kdig AXFR from
the host itself, which the role allows) and finds
the earliest RRSIG expiration, and asks the validating resolver
(dnssec_validating_resolver, if set) for the zone's SOA with DNSSEC: the
answer must be NOERROR with the AD flag. blackbox_exporter cannot do either.

TOM-DNS-01 holds iff every zone has signatures, none expires within
dnssec_rrsig_min_remaining_days (knot renews them well before), and the
resolver validates every zone. The resolver's answer is kept for
VALIDATION_CACHE_SECONDS (at most one query per zone and 25 seconds).
"""

from __future__ import annotations

import calendar
import re
import time

from ..core import CheckError, Collector, Host, Report, State

TOM = "TOM-DNS-01"
DAY = 86400
VALIDATION_CACHE_SECONDS = 25.0
ZONE_NAME = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$")
RESOLVER = re.compile(r"^[0-9A-Fa-f:.]+$")
STAMP = re.compile(r"^\d{14}$")


def rrsig_expirations(text: str) -> list[float]:
    """Expiration times (Unix seconds) of the RRSIG records in kdig/knotc zone text."""
    found = []
    for line in text.splitlines():
        tokens = line.split()
        # The record type RRSIG follows the class or the TTL; elsewhere (an NSEC bitmap) it is no record.
        types = [
            i
            for i, t in enumerate(tokens)
            if t == "RRSIG" and i > 0 and (tokens[i - 1] == "IN" or tokens[i - 1].isdigit())
        ]
        if not types:
            continue
        i = types[0]
        # RRSIG <type covered> <algorithm> <labels> <original TTL> <expiration> <inception> <key tag> <signer> <sig>
        if len(tokens) > i + 5:
            stamp = tokens[i + 5]
            if STAMP.match(stamp):
                found.append(float(calendar.timegm(time.strptime(stamp, "%Y%m%d%H%M%S"))))
            elif stamp.isdigit():
                found.append(float(stamp))
    return found


def validated(text: str) -> tuple[bool, str]:
    """(NOERROR with AD set, a short reason) from kdig's output."""
    status = re.search(r"status: ([A-Z]+)", text)
    flags = re.search(r";; Flags: ([a-z ]*);", text)
    if not status or not flags:
        return False, "no answer from the resolver"
    ad = "ad" in flags.group(1).split()
    if status.group(1) != "NOERROR":
        return False, f"the resolver answered {status.group(1)}"
    return ad, "the resolver answered without the AD flag" if not ad else "validated"


class DnsCollector(Collector):
    name = "dns"
    role = "dnssec"
    toms = (TOM,)

    def __init__(self, now=time.time, clock=time.monotonic, cache_seconds: float = VALIDATION_CACHE_SECONDS):
        self._now = now
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._validation: dict[tuple[str, str], tuple[float, bool, str]] = {}

    def check(self, state: State, host: Host) -> Report:
        zones = state.texts("dnssec_zones") if state.value("dnssec_zones") else []
        nsec3 = set(state.texts("dnssec_nsec3_zones")) if state.value("dnssec_nsec3_zones") else set()
        min_days = state.integer("dnssec_rrsig_min_remaining_days", 1, 365)
        resolver = state.value("dnssec_validating_resolver")
        if not isinstance(resolver, str) or (resolver and not RESOLVER.match(resolver)):
            raise CheckError(f"{state.role}.json: vars.dnssec_validating_resolver is not an IP address or empty")
        for zone in zones:
            if not ZONE_NAME.match(zone):
                raise CheckError(f"{state.role}.json: vars.dnssec_zones holds a bad zone name")
        now = self._now()
        report = Report()
        report.gauge(
            "tomwerk_dns_rrsig_min_remaining_seconds",
            "Time the earliest signature of a zone must stay valid (TOM-DNS-01), from dnssec_rrsig_min_remaining_days.",
            min_days * DAY,
        )
        for zone in zones:
            self._signatures(report, host, zone, zone in nsec3, min_days, now)
            if resolver:
                self._validation_report(report, host, resolver, zone)
        return report

    def _signatures(self, report: Report, host: Host, zone: str, nsec3: bool, min_days: int, now: float) -> None:
        text = host.output(("kdig", "@127.0.0.1", "+noall", "+answer", "+time=2", "+retry=1", "AXFR", zone))
        expirations = rrsig_expirations(text)
        report.gauge(
            "tomwerk_dns_rrsig_records", "RRSIG records in the signed zone (TOM-DNS-01).", len(expirations), zone=zone
        )
        if not expirations:
            report.require(TOM, False, f"zone {zone} has no signatures (or knot refused the transfer)")
            return
        earliest = min(expirations)
        report.require(
            TOM,
            earliest - now > min_days * DAY,
            f"a signature of zone {zone} expires in {(earliest - now) / DAY:.1f} days, less than {min_days}",
        )
        report.gauge(
            "tomwerk_dns_rrsig_earliest_expiry_timestamp_seconds",
            "Expiration time of the zone's earliest-expiring RRSIG (TOM-DNS-01).",
            earliest,
            zone=zone,
        )
        has_nsec3 = any("NSEC3" in line.split() for line in text.splitlines())
        report.gauge("tomwerk_dns_nsec3", "1 if the signed zone uses NSEC3, else 0.", 1 if has_nsec3 else 0, zone=zone)
        report.require(TOM, has_nsec3 == nsec3, f"zone {zone} is signed with {'NSEC3' if has_nsec3 else 'NSEC'}")

    def _validation_report(self, report: Report, host: Host, resolver: str, zone: str) -> None:
        key = (resolver, zone)
        cached = self._validation.get(key)
        now = self._clock()
        if cached and now - cached[0] < self._cache_seconds:
            ok, reason = cached[1], cached[2]
        else:
            try:
                out = host.output(("kdig", f"@{resolver}", "+dnssec", "+adflag", "+time=2", "+retry=1", "SOA", zone))
                ok, reason = validated(out)
            except CheckError as exc:
                ok, reason = False, str(exc)
            self._validation[key] = (now, ok, reason)
        report.require_and_gauge(
            TOM,
            ok,
            f"zone {zone} does not validate: {reason}",
            "tomwerk_dns_validation_ok",
            "1 if the validating resolver answers the zone's SOA with NOERROR and the AD flag, else 0 (TOM-DNS-01).",
            zone=zone,
        )
