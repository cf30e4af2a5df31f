"""TOM-MON-01 on every host: the TOM exporter reports each TOM of the host's roles,
they hold, and only the monitoring hosts can scrape it."""

from __future__ import annotations

import re
import time

import pytest

from tests.compliance.conftest import get_host
from tests.compliance.promql import fetch, samples

ROLE = "tom_exporter"
ADDRESS_LIKE = re.compile(r"\b\d{1,3}(\.\d{1,3}){3}\b|[0-9a-f]*:[0-9a-f]*:[0-9a-f:]*|@")


@pytest.fixture(scope="module")
def scraper(inventory, role_vars):
    """A host the exporter allows to scrape (a monitoring host)."""
    for name in inventory.hosts():
        if str(inventory.raw_vars(name).get("tomwerk_address")) in map(str, role_vars["tom_exporter_scrapers"]):
            return name, get_host(inventory, name)
    pytest.skip("no inventory host is among tom_exporter_scrapers")


@pytest.fixture(scope="module")
def exposition(scraper, role_vars) -> str:
    _, scraper_host = scraper
    return fetch(
        scraper_host, f"http://{role_vars['tom_exporter_listen_address']}:{role_vars['tom_exporter_port']}/metrics"
    )


def expected_toms(inventory, hostname) -> set[str]:
    """The TOMs the roles on this host record for the exporter (<role>_state.toms)."""
    toms = set()
    for role in inventory.roles_by_host[hostname]:
        toms |= set(inventory.state_toms(hostname, role))
    return toms


@pytest.mark.tom("TOM-MON-01")
def test_exporters_bind_to_the_host_address_only(host, role_vars, evidence):
    """The TOM exporter and node_exporter listen on the host's own address, not on all."""
    listening = {}
    for line in host.check_output("ss -Hltn").splitlines():
        local = line.split()[3]
        addr, _, port = local.rpartition(":")
        listening.setdefault(int(port), set()).add(addr.strip("[]"))
    ports = [int(role_vars["tom_exporter_port"])]
    if role_vars["tom_exporter_node_exporter"]:
        ports.append(int(role_vars["tom_exporter_node_exporter_port"]))
    evidence("listening", {p: sorted(listening.get(p, [])) for p in ports})
    for port in ports:
        assert listening.get(port) == {str(role_vars["tom_exporter_listen_address"])}, port


def exporter_reasons(host, toms) -> list[str]:
    """The exporter's own log lines on why these TOMs fail (it logs each finding once)."""
    pattern = "|".join(re.escape(t) for t in toms)
    wanted = f"tomwerk-exporter.*(({pattern}) not compliant|check failed)"
    found = host.run(f"grep -hE '{wanted}' /var/log/syslog | tail -n 5")
    return [line.split("]: ", 1)[-1] for line in found.stdout.splitlines()]


@pytest.mark.tom("TOM-MON-01")
def test_every_tom_of_the_host_is_exported_and_holds(exposition, host, inventory, hostname, role_vars, evidence):
    """A scrape from the monitoring host shows every TOM of this host's roles, each compliant and freshly checked."""
    found = samples(exposition)
    compliant = {labels["tom"]: value for name, labels, value in found if name == "tomwerk_tom_compliant"}
    checked = {labels["tom"]: value for name, labels, value in found if name == "tomwerk_tom_check_timestamp_seconds"}
    evidence("tomwerk_tom_compliant", compliant)
    assert set(compliant) == expected_toms(inventory, hostname)
    failing = sorted(tom for tom, value in compliant.items() if value != 1)
    # The message names the failing TOMs first: CI shows only its first line.
    assert not failing, f"not compliant: {failing}; exporter log: {exporter_reasons(host, failing)}"
    # Fresh: checked within three check intervals (plus slack for a slow host).
    max_age = 3 * int(role_vars["tom_exporter_min_interval_seconds"]) + 30
    assert all(time.time() - ts < max_age for ts in checked.values()), checked


@pytest.mark.tom("TOM-MON-01")
def test_no_collector_errors_and_no_personal_data_in_labels(exposition, evidence):
    """The checks run without errors, and no label value is an IP or mail address."""
    found = samples(exposition)
    errors = {labels["collector"]: value for name, labels, value in found if name == "tomwerk_collector_errors_total"}
    evidence("collector errors", errors)
    assert errors and all(v == 0 for v in errors.values()), errors
    leaking = [(name, labels) for name, labels, _ in found if any(ADDRESS_LIKE.search(str(v)) for v in labels.values())]
    assert leaking == []


@pytest.mark.tom("TOM-MON-01")
def test_others_cannot_scrape(inventory, hostname, role_vars, scraper, evidence):
    """From a host that is not a scraper, the exporter ports do not answer."""
    scrapers = {str(a) for a in role_vars["tom_exporter_scrapers"]}
    others = [
        h for h in inventory.hosts()
        if h != hostname and str(inventory.raw_vars(h).get("tomwerk_address")) not in scrapers
    ]  # fmt: skip
    if not others:
        pytest.skip("every other host is a scraper")
    outsider = get_host(inventory, others[0])
    address, port = role_vars["tom_exporter_listen_address"], int(role_vars["tom_exporter_port"])
    probe = outsider.run(
        f"python3 -c 'import socket; s=socket.socket(); s.settimeout(2); print(s.connect_ex((\"{address}\", {port})))'"
    )
    evidence(f"connect from {others[0]}", probe.stdout.strip() or probe.stderr.strip())
    assert probe.rc != 0 or probe.stdout.strip() != "0"
