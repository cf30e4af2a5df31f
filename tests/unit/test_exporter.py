"""The tomwerk exporter (tomwerk_host/exporter): framework, caching, failures, HTTP, packaging.

The checks of each TOM are in test_exporter_collectors.py. These tests run
with the venv's prometheus-client; the exporter itself keeps to the 0.16 API
of Debian 12 (test_only_stdlib_and_prometheus_client_016_api).
"""

from __future__ import annotations

import ast
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from tests.unit.exporter_helpers import (
    ALL_TOMS,
    FIXTURES,
    HOST_PACKAGE,
    ROOT,
    STATE_DIR,
    FakeClock,
    RecordedHost,
    Scrape,
    assert_names_in_source,
    convention_violations,
    findings_logged,
    make_exporter,
    no_errors,
    personal_label_values,
    scrape,
    the_error_logged,
)
from tomwerk_host.exporter import core
from tomwerk_host.exporter.collectors import COLLECTORS, all_collectors
from tomwerk_host.exporter.collectors.firewall import NFT_LIST
from tomwerk_host.exporter.collectors.ssh import SSHD_T

# Defined here before exporter_helpers.py; other modules still import them from here.
__all__ = ["ALL_TOMS", "STATE_DIR", "RecordedHost", "make_exporter", "scrape"]


# --------------------------------------------------------------------- framework


def test_absent_state_file_makes_the_collector_inactive():
    host = RecordedHost()
    del host.files[f"{STATE_DIR}/ssh_access.json"]
    s = scrape(make_exporter(host))
    assert s.toms() == {"TOM-FW-01": 1, "TOM-PWD-01": 1}
    assert s.value("tomwerk_collector_active", collector="ssh") == 0
    assert s.value("tomwerk_collector_active", collector="firewall") == 1
    assert s.errors() == no_errors()
    assert s.series("tomwerk_ssh_password_auth_enabled") == {}
    assert host.calls[SSHD_T] == 0


@pytest.mark.parametrize(
    ("content", "failing"),
    [
        ("{not json", ["TOM-SSH-01", "TOM-SSH-02", "TOM-SSH-03"]),
        ("[]", ["TOM-SSH-01", "TOM-SSH-02", "TOM-SSH-03"]),
        ('{"role": "firewall", "toms": ["TOM-SSH-02"], "vars": {}}', ["TOM-SSH-02"]),
        ('{"role": "ssh_access", "toms": ["TOM-SSH-01"], "vars": {}}', ["TOM-SSH-01"]),
        ('{"role": "ssh_access", "toms": ["TOM-SSH-01", "TOM-SSH-02"], "vars": {"ssh_access_admins": "alice"}}', None),
        (PermissionError(13, "Permission denied"), ["TOM-SSH-01", "TOM-SSH-02", "TOM-SSH-03"]),
    ],
    ids=["not-json", "not-an-object", "wrong-role", "vars-missing", "admins-not-a-list", "unreadable"],
)
def test_broken_state_file_fails_its_toms(content, failing):
    host = RecordedHost()
    host.files[f"{STATE_DIR}/ssh_access.json"] = content
    s = scrape(make_exporter(host))
    failing = failing or ["TOM-SSH-01", "TOM-SSH-02"]
    assert s.toms() == {"TOM-FW-01": 1, "TOM-PWD-01": 1, **dict.fromkeys(failing, 0)}
    assert s.errors() == {**no_errors(), "ssh": 1}


@pytest.mark.parametrize(
    ("argv_or_path", "failure", "reason"),
    [
        (SSHD_T, FileNotFoundError(2, "No such file or directory"), "/usr/sbin/sshd not found"),
        (SSHD_T, (255, "", "sshd: no hostkeys available -- exiting.\n"), "exited with 255: sshd: no hostkeys"),
        (SSHD_T, (0, "", ""), "sshd -T printed no configuration"),
        (SSHD_T, subprocess.TimeoutExpired("sshd", 5), "did not finish"),
        (NFT_LIST, (1, "", "Error: Operation not permitted\n"), "exited with 1: Error: Operation not permitted"),
        (NFT_LIST, (0, "table inet tomwerk {\n", ""), "no nftables JSON"),
        (NFT_LIST, (0, '{"nftables": [{"chain": {"name": "input"}}]}', ""), "without family"),
        ("/etc/shadow", PermissionError(13, "Permission denied"), "cannot read /etc/shadow: Permission denied"),
        ("/etc/pam.d/common-auth", None, "cannot read /etc/pam.d/common-auth"),
        ("/etc/passwd", "root:x:0\n", "malformed line"),
    ],
    ids=[
        "sshd-missing",
        "sshd-fails",
        "sshd-empty",
        "sshd-hangs",
        "nft-denied",
        "nft-not-json",
        "nft-odd-json",
        "shadow-denied",
        "pam-missing",
        "passwd-garbled",
    ],
)
def test_failing_check_counts_as_not_compliant(argv_or_path, failure, reason, caplog):
    host = RecordedHost()
    if isinstance(argv_or_path, tuple):
        host.outputs[argv_or_path] = failure
    elif failure is None:
        del host.files[argv_or_path]
    else:
        host.files[argv_or_path] = failure
    collector = {SSHD_T: "ssh", NFT_LIST: "firewall", "/etc/passwd": "ssh"}.get(argv_or_path, "password")
    with caplog.at_level(logging.INFO, logger="tomwerk_exporter"):
        s = scrape(make_exporter(host))
    own = {c.name: c.toms for c in all_collectors()}[collector]
    assert s.toms() == {tom: 0 if tom in own else 1 for tom in ALL_TOMS}
    assert s.errors() == {c.name: 1 if c.name == collector else 0 for c in all_collectors()}
    the_error_logged(caplog, reason)
    # The figures of a failed check are unknown, so they are not exported.
    prefix = {"ssh": "tomwerk_ssh_", "firewall": "tomwerk_firewall_", "password": "tomwerk_password_"}[collector]
    assert not [k for k in s.samples if k[0].startswith(prefix)]


def test_a_bug_in_a_check_is_contained(monkeypatch, caplog):
    from tomwerk_host.exporter.collectors import firewall

    monkeypatch.setattr(firewall.FirewallCollector, "check", lambda self, state, host: 1 / 0)
    with caplog.at_level(logging.ERROR, logger="tomwerk_exporter"):
        s = scrape(make_exporter())
    assert s.toms()["TOM-FW-01"] == 0 and s.toms()["TOM-SSH-01"] == 1
    assert s.errors()["firewall"] == 1
    assert "internal error ZeroDivisionError" in caplog.text and "test_exporter.py" in caplog.text


def test_a_state_file_that_vanishes_is_an_error():
    host, clock = RecordedHost(), FakeClock()
    exporter = make_exporter(host, clock=clock)
    assert scrape(exporter).toms()["TOM-PWD-01"] == 1
    del host.files[f"{STATE_DIR}/password_policy.json"]
    clock.now += 60
    s = scrape(exporter)
    assert s.toms()["TOM-PWD-01"] == 0
    assert s.errors()["password"] == 1


def test_unknown_toms_in_a_state_file_are_skipped_with_a_warning(caplog):
    host = RecordedHost()
    host.edit(f"{STATE_DIR}/firewall.json", '["TOM-FW-01"]', '["TOM-FW-01", "TOM-FW-09"]')
    with caplog.at_level(logging.WARNING, logger="tomwerk_exporter"):
        s = scrape(make_exporter(host))
    assert s.toms()["TOM-FW-01"] == 1 and "TOM-FW-09" not in s.toms()
    assert "TOM-FW-09, which this exporter does not check" in caplog.text


def test_results_are_cached_for_min_interval():
    host, clock = RecordedHost(), FakeClock()
    exporter = make_exporter(host, clock=clock, min_interval=30)
    first = scrape(exporter)
    clock.now += 29.9
    second = scrape(exporter)
    assert host.calls == {SSHD_T: 1, NFT_LIST: 1}
    assert first.samples == second.samples
    clock.now += 0.1
    scrape(exporter)
    assert host.calls == {SSHD_T: 2, NFT_LIST: 2}


def test_concurrent_scrapes_run_a_check_once():
    host = RecordedHost()
    recorded = host.outputs[SSHD_T]

    def slow_sshd():
        time.sleep(0.3)
        return recorded

    host.outputs[SSHD_T] = slow_sshd
    exporter = make_exporter(host)
    results = []
    threads = [threading.Thread(target=lambda: results.append(scrape(exporter))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert host.calls[SSHD_T] == 1
    assert all(r.toms()["TOM-SSH-01"] == 1 for r in results) and len(results) == 4


def test_errors_are_counted_per_run_but_logged_once(caplog):
    host, clock = RecordedHost(), FakeClock()
    host.outputs[SSHD_T] = FileNotFoundError(2, "No such file or directory")
    exporter = make_exporter(host, clock=clock, min_interval=0, log_every=3600)
    with caplog.at_level(logging.INFO, logger="tomwerk_exporter"):
        for _ in range(5):
            s = scrape(exporter)
            clock.now += 15
        assert s.errors()["ssh"] == 5
        assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1
        clock.now += 3600  # still broken an hour later: one reminder
        scrape(exporter)
        assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 2
        host.outputs[SSHD_T] = (0, (FIXTURES / "compliant" / "commands" / "sshd-T.txt").read_text(), "")
        scrape(exporter)
        scrape(exporter)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == ["ssh: check works again"]


def test_findings_are_logged_when_they_change(caplog):
    assert findings_logged(
        caplog,
        RecordedHost(),
        make_exporter,
        lambda h: h.edit_output(SSHD_T, "passwordauthentication no", "passwordauthentication yes"),
        lambda h: h.edit_output(SSHD_T, "passwordauthentication yes", "passwordauthentication no"),
    ) == [
        "TOM-SSH-01 not compliant: passwordauthentication is yes, not no",
        "TOM-SSH-01 compliant again",
    ]


def test_timestamps_and_durations():
    wall = FakeClock(1_700_000_123.5)
    s = scrape(make_exporter(wall=wall))
    for tom in ALL_TOMS:
        assert s.value("tomwerk_tom_check_timestamp_seconds", tom=tom) == 1_700_000_123.5
    for c in ("ssh", "firewall", "password"):
        assert s.value("tomwerk_collector_last_run_timestamp_seconds", collector=c) == 1_700_000_123.5
        assert 0 <= s.value("tomwerk_collector_duration_seconds", collector=c) < 5


def test_label_guard_refuses_personal_data():
    report = core.Report()
    for value in ("10.231.0.11", "2001:db8::1", "alice@example.org", "from 192.0.2.7:22"):
        with pytest.raises(ValueError):
            report.gauge("tomwerk_x", "x", 1, where=value)
    report.gauge("tomwerk_x", "x", 1, tom="TOM-SSH-01", type="yescrypt", policy="drop")
    assert report.samples[-1].labels == (("policy", "drop"), ("type", "yescrypt"))  # the TOM is no label
    with pytest.raises(ValueError):
        report.gauge("tomwerk_x_total", "a gauge is no counter", 1)
    with pytest.raises(ValueError):
        report.gauge("tomwerk_x", "x", 1, tom="ssh-01")


def test_collector_names_must_be_unique():
    with pytest.raises(ValueError):
        core.TomExporter([*all_collectors(), all_collectors()[0]])


def test_collector_registry_matches_the_catalogue():
    """Every collector TOM is in toms.yml, of the collector's family; state files have distinct roles."""
    families = dict(
        re.findall(r"- id: (TOM-[A-Z]+-\d{2})\n(?:    .*\n)*?    family: (\S+)", (ROOT / "toms.yml").read_text())
    )
    collectors = all_collectors()
    assert len({c.role for c in collectors}) == len(collectors) == len(COLLECTORS)
    for c in collectors:
        assert c.name and c.role and c.toms
        for tom in c.toms:
            assert families.get(tom) == c.name, f"{tom} is not of family {c.name} in toms.yml"


def test_a_probing_collector_declares_its_probe_and_caches_only_successes():
    with pytest.raises(TypeError):

        class Undeclared(core.ProbingCollector):  # no probe, no cache time
            pass

    class Probe:
        def ask(self, target):
            return answers[target]

    class Probing(core.ProbingCollector, probe=Probe, cache_seconds=60.0):
        def ask_all(self, targets):
            return self.probe_each(tuple(targets), targets, self._probe.ask, bool)

    clock, answers = FakeClock(), {"a": True, "b": False}
    collector = Probing(clock=clock)
    assert isinstance(collector._probe, Probe)
    assert collector.ask_all(["a", "b"]) == {"a": True, "b": False}
    answers["b"] = True
    assert collector.ask_all(["a", "b"]) == {"a": True, "b": True}  # a failure is asked again
    answers["b"] = False
    assert collector.ask_all(["a", "b"])["b"] is True  # successes are kept ...
    clock.now += 60
    assert collector.ask_all(["a", "b"])["b"] is False  # ... for cache_seconds
    answers["a"] = False
    assert collector.ask_all(["a"]) == {"a": False}  # other targets: probed anew


# --------------------------------------------------------------------- conventions


@pytest.mark.parametrize("case", ["compliant", "broken", "inactive"])
def test_metric_names_follow_the_conventions(case):
    host = RecordedHost()
    if case == "broken":
        host.outputs = {}
    elif case == "inactive":
        host.files = {}
    s = scrape(make_exporter(host))
    assert convention_violations(s) == []
    assert personal_label_values(s) == []
    assert_names_in_source(s)


def test_only_stdlib_and_prometheus_client_016_api():
    """The hosts have Python 3.11's stdlib and python3-prometheus-client 0.16, nothing else (the
    whole host package: the exporter is one of its tools)."""
    allowed_prometheus = {
        "prometheus_client": {"CollectorRegistry", "generate_latest", "make_wsgi_app", "start_http_server"},
        "prometheus_client.core": {"CounterMetricFamily", "GaugeMetricFamily", "InfoMetricFamily"},
    }
    for path in HOST_PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] in sys.stdlib_module_names, f"{path.name}: import {alias.name}"
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                top = node.module.split(".")[0]
                if top == "prometheus_client":
                    names = {a.name for a in node.names}
                    assert names <= allowed_prometheus.get(node.module, set()), f"{path.name}: {node.module} {names}"
                else:
                    allowed = {*sys.stdlib_module_names, "__future__", "tomwerk_host"}
                    assert top in allowed, f"{path}: from {node.module}"


@pytest.mark.skipif(not shutil.which("python3.11"), reason="no Python 3.11 interpreter on this machine")
def test_package_compiles_with_python_311(tmp_path):
    files = sorted(str(p) for p in HOST_PACKAGE.rglob("*.py"))
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(tmp_path)}  # keep .pyc files out of the tree
    proc = subprocess.run(["python3.11", "-m", "py_compile", *files], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------- HTTP and CLI


def _get(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (a local http URL)
        return response.status, response.headers.get("Content-Type", ""), response.read().decode()


def test_http_scrape_of_the_running_server():
    host = RecordedHost()
    host.outputs[NFT_LIST] = PermissionError(13, "Permission denied")  # one broken check: still 200
    registry = CollectorRegistry()
    registry.register(make_exporter(host))
    server = core.make_http_server(registry, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        status, content_type, body = _get(f"http://127.0.0.1:{port}/metrics")
        again = _get(f"http://127.0.0.1:{port}/")
    finally:
        server.shutdown()
        server.server_close()
    assert status == 200 and again[0] == 200
    assert content_type.startswith("text/plain")
    s = Scrape(body)
    assert s.toms() == {"TOM-FW-01": 0, "TOM-PWD-01": 1, "TOM-SSH-01": 1, "TOM-SSH-02": 1, "TOM-SSH-03": 1}
    assert convention_violations(s) == [] and personal_label_values(s) == []


def test_a_burst_of_connections_is_queued_not_dropped():
    """socketserver's default backlog of 5 drops the SYNs of a burst; the client retries seconds later.

    The server listens but accepts nothing yet (a busy accept loop): every one of 64
    connections must still complete at once, queued by the kernel."""
    import socket

    server = core.make_http_server(CollectorRegistry(), "127.0.0.1", 0)
    clients = []
    try:
        for _ in range(64):
            clients.append(socket.create_connection(server.server_address, timeout=0.5))
    except TimeoutError:
        pass
    finally:
        for client in clients:
            client.close()
        server.server_close()
    assert len(clients) == 64, f"only {len(clients)} connections were queued"


def test_http_answers_200_even_if_rendering_fails():
    class Broken:
        def collect(self):
            raise RuntimeError("boom")

    registry = CollectorRegistry()
    registry.register(Broken())
    started = []

    def start_response(status, headers, exc_info=None):
        started.append(status)

    body = core.make_app(registry)({"PATH_INFO": "/metrics", "QUERY_STRING": ""}, start_response)
    assert started == ["200 OK"] and b"see the journal" in b"".join(body)


def _cli(*args: str, **kwargs) -> subprocess.Popen:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "tomwerk_host", "exporter", *args], env=env, text=True, stderr=subprocess.PIPE, **kwargs
    )


def test_cli_serves_on_a_random_port(tmp_path):
    """The real CLI on this machine's real commands and files (read only): whatever fails, the scrape is 200."""
    shutil.copytree(FIXTURES / "compliant" / "etc" / "tomwerk" / "state", tmp_path / "state")
    proc = _cli("--listen-address", "127.0.0.1", "--port", "0", "--state-dir", str(tmp_path / "state"))
    try:
        line = proc.stderr.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert match, line
        status, _, body = _get(f"http://127.0.0.1:{match.group(1)}/metrics")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0
    assert status == 200
    s = Scrape(body)
    assert set(s.toms()) == set(ALL_TOMS)
    assert convention_violations(s) == [] and personal_label_values(s) == []


def test_cli_once_prints_the_metrics(tmp_path):
    (tmp_path / "firewall.json").write_text("{broken")
    proc = _cli("--once", "--state-dir", str(tmp_path), stdout=subprocess.PIPE)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    s = Scrape(out)
    assert s.toms() == {"TOM-FW-01": 0}
    assert s.errors() == {**no_errors(), "firewall": 1}
    assert "firewall.json is not valid JSON" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [["--port", "70000"], ["--min-interval", "-1"]])
def test_cli_refuses_bad_arguments(args):
    from tomwerk_host.exporter.__main__ import parse_args

    with pytest.raises(SystemExit):
        parse_args(args)
