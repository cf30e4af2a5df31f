"""TOM-MON-01 on every host: the TOM exporter reports each TOM of the host's roles,
they hold, and only the monitoring hosts can scrape it. TOM-TLS-04: both exporters
speak only HTTPS with client certificates of the internal CA."""

from __future__ import annotations

import base64
import json
import re
import shlex
import time

import pytest

from tests.compliance.conftest import get_host, host_toms, probe_result
from tests.compliance.promql import EXPORTER_STATE, fetch_exporter, samples
from tomwerk import ROOT

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
    return fetch_exporter(
        scraper_host, f"https://{role_vars['tom_exporter_listen_address']}:{role_vars['tom_exporter_port']}/metrics"
    )


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


def probe_reasons(host, command: str, toms: list[str]) -> dict[str, list[str]]:
    """Why these TOMs fail, measured now by the host's probe: the exporter's collectors, run once."""
    measured = probe_result(host, command, fresh=True)["toms"]
    return {tom: measured[tom]["reasons"] if tom in measured else ["the probe does not measure it"] for tom in toms}


def exported_state(exposition: str) -> tuple[dict[str, float], dict[str, float]]:
    """tomwerk_tom_compliant and tomwerk_tom_check_timestamp_seconds, by TOM."""
    found = samples(exposition)
    compliant = {labels["tom"]: value for name, labels, value in found if name == "tomwerk_tom_compliant"}
    checked = {labels["tom"]: value for name, labels, value in found if name == "tomwerk_tom_check_timestamp_seconds"}
    return compliant, checked


@pytest.mark.tom("TOM-MON-01")
def test_every_tom_of_the_host_is_exported_and_holds(
    exposition, scraper, host, inventory, hostname, role_vars, evidence
):
    """A scrape from the monitoring host shows every TOM of this host's roles, each compliant and freshly checked.

    Other checks drift a host on purpose for a moment (an empty password, a stopped service) and undo it; the
    exporter keeps a result for one check interval. A TOM that fails is judged again on a result checked after
    this test began: a real failure stays, a moment's drift does not count."""
    started = time.time()
    compliant, checked = exported_state(exposition)
    evidence("tomwerk_tom_compliant", compliant)
    assert sorted(compliant) == host_toms(inventory, hostname)
    failing = sorted(tom for tom, value in compliant.items() if value != 1)
    if failing:
        url = f"https://{role_vars['tom_exporter_listen_address']}:{role_vars['tom_exporter_port']}/metrics"
        deadline = started + int(role_vars["tom_exporter_min_interval_seconds"]) + 30
        while time.time() < deadline and any(checked.get(tom, 0) < started for tom in failing):
            time.sleep(2)
            compliant, checked = exported_state(fetch_exporter(scraper[1], url))
        evidence("tomwerk_tom_compliant, checked again", {tom: compliant.get(tom) for tom in failing})
        failing = sorted(tom for tom, value in compliant.items() if value != 1)
    # The message names the failing TOMs first: CI shows only its first line.
    assert not failing, (
        f"not compliant: {failing}; {probe_reasons(host, role_vars['tom_exporter_probe_command'], failing)}"
    )
    # Fresh: checked within three check intervals (plus slack for a slow host).
    max_age = 3 * int(role_vars["tom_exporter_min_interval_seconds"]) + 30
    assert all(time.time() - ts < max_age for ts in checked.values()), checked


def collector_errors(exposition: str) -> dict[str, float]:
    return {labels["collector"]: v for n, labels, v in samples(exposition) if n == "tomwerk_collector_errors_total"}


@pytest.mark.tom("TOM-MON-01")
def test_no_collector_errors_and_no_personal_data_in_labels(exposition, scraper, role_vars, evidence):
    """The checks run without errors through a whole check interval, and no label value is an IP or mail address.

    The error counter counts since the exporter started: an error from a busy moment before (a check command
    timing out while a converge held apt) shows as evidence, but only new errors fail the check."""
    before = collector_errors(exposition)
    time.sleep(int(role_vars["tom_exporter_min_interval_seconds"]) + 2)  # every collector runs again
    url = f"https://{role_vars['tom_exporter_listen_address']}:{role_vars['tom_exporter_port']}/metrics"
    after = collector_errors(fetch_exporter(scraper[1], url))
    evidence("collector errors since the exporter started", after)
    assert before and set(after) == set(before)
    new = {c: after[c] - before[c] for c in after if after[c] != before[c]}
    assert new == {}, f"collectors failing now: {new}"
    found = samples(exposition)
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


# Runs on the scraper. Shares no code with the exporter's own probe (collectors/internal_tls.py).
# argv: the scraper's tom_exporter.json, address, port, [cert key]: one line of JSON per client kind.
TLS_PROBE = r"""
import json, socket, ssl, sys
state, address, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
tls = json.load(open(state))["vars"]
cert, key = tls["tom_exporter_tls_cert_file"], tls["tom_exporter_tls_key_file"]
if len(sys.argv) > 5:
    cert, key = sys.argv[4], sys.argv[5]

def ask(wrap):
    try:
        with socket.create_connection((address, port), timeout=5) as raw:
            sock = wrap(raw)
            sock.sendall(b"GET /metrics HTTP/1.0\r\nHost: probe\r\n\r\n")
            line = sock.recv(128).split(b"\r\n")[0].decode(errors="replace")
            extra = {}
            # Python 3.13: after a TLS 1.3 server refused the client's certificate the
            # read is empty and the session unusable (getpeercert: "handshake not done").
            if isinstance(sock, ssl.SSLSocket) and line:
                peer = sock.getpeercert()
                extra = {"version": sock.version(), "issuer": dict(x[0] for x in peer["issuer"]),
                         "san": [v for _, v in peer.get("subjectAltName", ())]}
            return {"status": line, **extra}
    except (OSError, ssl.SSLError) as exc:
        return {"status": "", "error": str(exc) or type(exc).__name__}

anonymous = ssl.create_default_context(cafile=tls["tom_exporter_tls_ca_file"])
anonymous.check_hostname = False
mutual = ssl.create_default_context(cafile=tls["tom_exporter_tls_ca_file"])
mutual.load_cert_chain(cert, key)
print(json.dumps({
    "plaintext": ask(lambda s: s),
    "anonymous": ask(lambda s: anonymous.wrap_socket(s)),
    "mutual": ask(lambda s: mutual.wrap_socket(s, server_hostname=address)),
}))
"""


def probe_tls(scraper_host, address, port, client=()) -> dict:
    args = " ".join([EXPORTER_STATE, str(address), str(port), *client])
    return json.loads(scraper_host.check_output(f"python3 -c {shlex.quote(TLS_PROBE)} {args}"))


def served(result: dict) -> bool:
    return result["status"].split(" ")[1:2] == ["200"]


@pytest.mark.tom("TOM-TLS-04")
def test_both_exporters_speak_only_mutual_tls(scraper, role_vars, evidence):
    """From a scraper (the firewall lets it in), neither exporter serves plain HTTP or a TLS client without a
    certificate; the scraper's internal certificate is served over TLS 1.2+, by an endpoint whose certificate the
    internal CA issued for the address it listens on."""
    scraper_name, scraper_host = scraper
    address = role_vars["tom_exporter_listen_address"]
    ports = {"tomwerk_exporter": role_vars["tom_exporter_port"]}
    if role_vars["tom_exporter_node_exporter"]:
        ports["node_exporter"] = role_vars["tom_exporter_node_exporter_port"]
    for service, port in ports.items():
        found = probe_tls(scraper_host, address, port)
        evidence(f"{service} from {scraper_name}", {k: v.get("status") or v.get("error") for k, v in found.items()})
        assert not served(found["plaintext"]), (service, found["plaintext"])
        assert not served(found["anonymous"]), (service, found["anonymous"])
        assert served(found["mutual"]), (service, found["mutual"])
        assert found["mutual"]["version"] in ("TLSv1.2", "TLSv1.3")
        assert str(address) in found["mutual"]["san"]
        evidence(f"{service} TLS", {"version": found["mutual"]["version"], "issuer": found["mutual"]["issuer"]})


@pytest.mark.tom("TOM-TLS-04")
def test_a_certificate_of_another_own_host_may_not_scrape(inventory, hostname, role_vars, scraper, evidence):
    """The TOM exporter checks who scrapes, not only which CA signed: from the scraper's address (the firewall
    lets it in), a valid internal certificate of a host that is no scraper is refused."""
    scraper_name, scraper_host = scraper
    ca_dir = inventory.var(hostname, "internal_pki_ca_dir")
    allowed = set(role_vars["tom_exporter_tls_clients"])
    outsiders = [h for h in inventory.hosts() if h not in allowed]
    if not ca_dir or not outsiders or not (ROOT / ca_dir / "hosts" / f"{outsiders[0]}.key").exists():
        pytest.skip("this check needs the internal CA's host keys (on the controller) and a host that is no scraper")
    outsider = outsiders[0]
    scratch = scraper_host.check_output("mktemp -d").strip()
    copies = [f"{scratch}/client.{kind}" for kind in ("crt", "key")]
    try:
        for kind, path in zip(("crt", "key"), copies, strict=True):
            content = base64.b64encode((ROOT / ca_dir / "hosts" / f"{outsider}.{kind}").read_bytes()).decode()
            scraper_host.run_test(f"echo {content} | base64 -d > {path}")
        address, port = role_vars["tom_exporter_listen_address"], role_vars["tom_exporter_port"]
        found = probe_tls(scraper_host, address, port, copies)
    finally:
        scraper_host.run(f"rm -rf {scratch}")
    said = found["mutual"].get("status") or found["mutual"].get("error") or "closed without an answer"
    evidence(f"{outsider}'s certificate from {scraper_name}", said)
    assert not served(found["mutual"]), found["mutual"]
