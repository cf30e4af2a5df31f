"""`tomwerk verify` without the lab: a tiny suite on local hosts, and recorded JUnit files.

The tiny suite is written to a temporary directory (not under tests/, where
the catalogue's marker index would see it) and uses the real conftest
machinery: the TOM marker, the evidence fixture and the per-host
parametrisation from tests/conftest.py and tests/compliance/conftest.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from tomwerk import ROOT, catalogue, cli, verify
from tomwerk.inventory import Inventory

FIXTURES = Path(__file__).parent / "fixtures" / "report"
TOMS = catalogue.load()
# Each Inventory() re-initialises Ansible's plugin loader (tomwerk/inventory.py); harmless here.
pytestmark = pytest.mark.filterwarnings("ignore:AnsibleCollectionFinder has already been configured")

CONFTEST = f"""
import sys

sys.path.insert(0, {str(ROOT)!r})

from tests.compliance.conftest import host, inventory, pytest_generate_tests, role_vars  # noqa: E402,F401
from tests.conftest import evidence, pytest_addoption, pytest_collection_modifyitems  # noqa: E402,F401


def pytest_configure(config):
    config.addinivalue_line("markers", "tom(id): the TOM a check proves")
"""

CHECKS = '''
import time
from pathlib import Path

import pytest

ROLE = "ssh_access"


@pytest.mark.tom("TOM-SSH-01")
def test_kernel_answers(host, evidence):
    """The host runs a Linux kernel.

    A second paragraph that the report does not show."""
    evidence("uname -s", host.check_output("uname -s"))
    evidence("shells", ["bash", "sh"])


@pytest.mark.tom("TOM-SSH-02")
def test_only_alpha_is_allowed(hostname, evidence):
    """Only alpha passes this check."""
    evidence("hostname", hostname)
    assert hostname == "alpha", f"{hostname} is not alpha"


@pytest.fixture
def slow_teardown(hostname):
    yield
    Path(__file__).with_name(f"teardown-{hostname}").write_text("ran")


@pytest.mark.tom("TOM-SSH-02")
def test_takes_its_time(hostname, slow_teardown):
    """Slow enough to see progress stream before the run ends."""
    time.sleep(float(__import__("os").environ.get("TW_SLEEP", "0.8")))
'''

INVENTORY = """\
all:
  vars:
    ansible_connection: local
    tomwerk_org_reviews:
      - date: 2026-03-02
        reviewer: "{{ 'Alice' | upper }}"
  hosts:
    alpha:
    beta:
"""


@pytest.fixture
def suite(tmp_path) -> Path:
    path = tmp_path / "suite"
    path.mkdir()
    (path / "conftest.py").write_text(CONFTEST)
    (path / "test_tiny.py").write_text(CHECKS)
    return path


@pytest.fixture
def local_inventory(tmp_path) -> Path:
    path = tmp_path / "hosts.yml"
    path.write_text(INVENTORY)
    return path


class Lines:
    """Collects streamed lines with the time each arrived."""

    def __init__(self):
        self.lines: list[tuple[float, str]] = []

    def __call__(self, line: str) -> None:
        self.lines.append((time.monotonic(), line))

    @property
    def text(self) -> list[str]:
        return [line for _, line in self.lines]


# ----------------------------------------------------------------- end to end


def test_verify_runs_the_suite_writes_results_and_streams_progress(suite, local_inventory, tmp_path):
    out, lines = tmp_path / "results", Lines()
    run = verify.verify(local_inventory, out=out, suite=suite, on_line=lines)

    assert run.exit_code == 1  # beta fails one check
    run_dir = run.run_dir
    assert run_dir.parent == out and len(run_dir.name) == len("20261121T153000Z")
    assert (run_dir / "junit.xml").exists() and (run_dir / "pytest.log").exists()
    assert (out / "latest").is_symlink() and (out / "latest").resolve() == run_dir.resolve()

    result = json.loads((out / "latest" / "result.json").read_text())
    assert result == run.result
    assert result["schema"] == "tomwerk-verify/1"
    assert result["inventory"] == str(local_inventory.resolve()) and result["hosts_filter"] is None
    assert set(result["hosts"]) == {"alpha", "beta"}
    assert result["hosts"]["alpha"]["roles"] == Inventory(local_inventory).roles_by_host["alpha"]
    alpha, beta = result["hosts"]["alpha"]["toms"], result["hosts"]["beta"]["toms"]
    assert list(alpha) == ["TOM-SSH-01", "TOM-SSH-02"]  # catalogue order
    assert (alpha["TOM-SSH-01"]["status"], alpha["TOM-SSH-02"]["status"]) == ("pass", "pass")
    assert (beta["TOM-SSH-01"]["status"], beta["TOM-SSH-02"]["status"]) == ("pass", "fail")

    kernel = alpha["TOM-SSH-01"]["checks"][0]
    assert kernel["id"].endswith("test_tiny.py::test_kernel_answers[alpha]")
    assert kernel["check"] == "The host runs a Linux kernel."
    assert kernel["outcome"] == "pass" and kernel["message"] == ""
    assert kernel["observed"] == {"uname -s": "Linux", "shells": ["bash", "sh"]}
    started, finished = verify.parse_time(result["started"]), verify.parse_time(result["finished"])
    assert started <= verify.parse_time(kernel["timestamp"]) <= finished
    failed = next(c for c in beta["TOM-SSH-02"]["checks"] if c["outcome"] == "fail")
    assert failed["message"].startswith("AssertionError: beta is not alpha")
    assert result["summary"] == {
        "hosts": 2,
        "checks": {"pass": 5, "fail": 1, "error": 0, "skipped": 0},
        "toms": {"pass": 1, "fail": 1, "skipped": 0},
        "tom_hosts": {"pass": 3, "fail": 1, "skipped": 0},
    }
    assert result["organisational"]["tomwerk_org_reviews"] == [{"date": "2026-03-02", "reviewer": "ALICE"}]
    assert result["organisational"]["tomwerk_org_trainings"] is None

    # Progress came line by line while pytest ran, not all at the end.
    results = [(t, line) for t, line in lines.lines if " PASSED" in line or " FAILED" in line]
    assert results[0][1].endswith("test_tiny.py::test_kernel_answers[alpha] PASSED [ 16%]")
    assert any("test_only_alpha_is_allowed[beta] FAILED" in line for _, line in results)
    assert results[-1][0] - results[0][0] > 0.6  # two slow checks ran in between
    assert "collected 6 items" in (run_dir / "pytest.log").read_text()


SPANNING = '''
import pytest


@pytest.mark.tom("TOM-FW-01")
def test_across_hosts(evidence):
    """Spans hosts: no host parameter."""
    evidence("hosts", ["alpha", "beta"])
'''

# A role no host of the local inventory has: what a job sees of the groups in other jobs' shares.
NO_HOSTS = '''
import pytest

ROLE = "mail_tls"


@pytest.mark.tom("TOM-TLS-03")
def test_on_mail_hosts(hostname):
    """Runs on the mail hosts."""
'''


def test_hosts_in_parallel_give_the_same_result_and_run_the_rest_after(suite, local_inventory, tmp_path):
    """--jobs 2: each host's checks in a pytest of their own, at the same time, then the checks across hosts."""
    (suite / "test_spanning.py").write_text(SPANNING)
    (suite / "test_no_hosts.py").write_text(NO_HOSTS)
    serial = verify.verify(local_inventory, out=tmp_path / "one", suite=suite, on_line=Lines())
    lines = Lines()
    parallel = verify.verify(local_inventory, out=tmp_path / "two", suite=suite, on_line=lines, jobs=2)

    assert parallel.exit_code == serial.exit_code == 1
    assert parallel.result["summary"] == serial.result["summary"]

    def checks(result):
        return {
            c["id"]: c["outcome"] for h in result["hosts"].values() for t in h["toms"].values() for c in t["checks"]
        }

    assert checks(parallel.result) == checks(serial.result)
    for result in (serial.result, parallel.result):
        assert set(result["hosts"]) == {"alpha", "beta", ""}, "a skipped stand-in for no host became a host"
    assert any(line.startswith("[alpha] ") for line in lines.text)  # each share streams with its hosts' names
    assert any(line.startswith("[beta] ") for line in lines.text)
    timestamps = {c: v for c, v in _timestamps(parallel.result).items()}
    spanning = timestamps.pop(next(c for c in timestamps if c.endswith("test_across_hosts")))
    assert spanning >= max(timestamps.values())  # the rest runs when the hosts are done
    junit = (parallel.run_dir / "junit.xml").read_text()
    assert junit.count("<testsuite ") == 3  # alpha, beta, the rest


def _timestamps(result) -> dict[str, str]:
    return {c["id"]: c["timestamp"] for h in result["hosts"].values() for t in h["toms"].values() for c in t["checks"]}


def test_a_passing_run_exits_0_and_moves_latest(suite, local_inventory, tmp_path):
    out = tmp_path / "results"
    first = verify.verify(local_inventory, out=out, suite=suite, on_line=Lines())
    second = verify.verify(
        local_inventory,
        hosts=["alpha"],
        out=out,
        suite=suite,
        pytest_args=["-k", "not takes_its_time"],
        on_line=Lines(),
    )
    assert (first.exit_code, second.exit_code) == (1, 0)
    assert first.run_dir != second.run_dir  # same second: a suffix keeps both
    assert (out / "latest").resolve() == second.run_dir.resolve()
    assert second.result["hosts_filter"] == ["alpha"] and list(second.result["hosts"]) == ["alpha"]
    assert sorted(p.name for p in out.iterdir() if p.name != "latest") == sorted(
        [first.run_dir.name, second.run_dir.name]
    )


def test_broken_runs_exit_2_and_leave_latest_alone(suite, local_inventory, tmp_path):
    out, lines = tmp_path / "results", Lines()
    good = verify.verify(local_inventory, out=out, suite=suite, on_line=Lines())

    assert verify.verify(local_inventory, hosts=["gamma"], out=out, suite=suite, on_line=lines).exit_code == 2
    assert "not in the inventory: gamma" in lines.text[-1]
    assert verify.verify(tmp_path / "missing.yml", out=out, suite=suite, on_line=lines).exit_code == 2

    nothing_ran = verify.verify(local_inventory, out=out, suite=suite, pytest_args=["--collect-only"], on_line=lines)
    assert nothing_ran.exit_code == 2 and "no check ran" in lines.text[-1]

    (suite / "test_broken.py").write_text("this is not python\n")
    broken = verify.verify(local_inventory, out=out, suite=suite, on_line=lines)
    assert broken.exit_code == 2 and not (broken.run_dir / "result.json").exists()
    assert "did not complete" in lines.text[-1]
    assert (out / "latest").resolve() == good.run_dir.resolve()


def test_ctrl_c_stops_pytest_gently(suite, local_inventory, tmp_path, monkeypatch):
    """First Ctrl-C: pytest is interrupted, its teardowns still run, and the run counts as broken."""
    monkeypatch.setenv("TW_SLEEP", "20")
    sent: list[bool] = []

    def press_ctrl_c_once_checks_run(line: str) -> None:
        if "PASSED" in line and not sent:
            sent.append(True)
            threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()

    started = time.monotonic()
    run = verify.verify(local_inventory, out=tmp_path / "results", suite=suite, on_line=press_ctrl_c_once_checks_run)
    assert run.exit_code == 2
    assert time.monotonic() - started < 15
    assert (suite / "teardown-alpha").read_text() == "ran"
    assert not (tmp_path / "results" / "latest").exists()


def test_cli_passes_extra_pytest_arguments():
    args = cli.build_parser().parse_args(["verify", "--inventory", "inv", "--hosts", "web1", "--", "-k", "ssh", "-x"])
    assert (args.inventory, args.hosts, args.pytest_args) == ("inv", "web1", ["-k", "ssh", "-x"])
    assert args.out == "results" and args.suite is None  # cmd_verify then runs tests/compliance
    two = cli.build_parser().parse_args(["verify", "--inventory", "i", "--suite", "a", "--suite", "b"])
    assert two.suite == ["a", "b"]


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.yml", "", "names no hosts"),
        ("hosts.yml", "all:\n  hosts:\n    web1: [\n", "failed to parse"),
        ("hosts.ini", "this is not: [an inventory\n", "failed to parse"),
        ("missing", None, "no inventory at"),
    ],
)
def test_an_inventory_that_names_no_host_is_refused(tmp_path, capsys, name, content, reason):
    """A run that would check nothing is refused with exit 2 and one line, before pytest starts."""
    source = tmp_path / name
    if content is not None:
        source.write_text(content)
    rc = cli.main(["verify", "--inventory", str(source), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 2
    assert len(out) == 1 and out[0].startswith("tomwerk verify: ") and reason in out[0], out
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_summary_has_a_line_per_host_and_the_total():
    check = {"id": "t::a[web1]", "outcome": "pass"}
    result = {
        "hosts": {
            "web1": {"toms": {"TOM-A": {"checks": [check, {"id": "t::b[web1]", "outcome": "fail", "message": "m"}]}}},
            "": {"toms": {"TOM-B": {"checks": [{"id": "lab::e2e", "outcome": "skipped"}]}}},
        },
        "summary": {"checks": {"pass": 1, "fail": 1, "error": 0, "skipped": 1}},
    }
    assert verify.summary_lines(result) == [
        "tomwerk verify:   web1          1 passed, 1 failed, 0 errors, 0 skipped",
        "tomwerk verify:   across hosts  0 passed, 0 failed, 0 errors, 1 skipped",
        "tomwerk verify:   FAIL TOM-A t::b[web1]: m",
        "tomwerk verify: 1 passed, 1 failed, 0 errors, 1 skipped (all hosts)",
    ]


# ----------------------------------------------------------------- JUnit parsing


def test_parses_a_recorded_junit_file():
    checks = verify.parse_junit(FIXTURES / "junit.xml")
    assert len(checks) == 120
    outcomes = [c["outcome"] for c in checks]
    assert {o: outcomes.count(o) for o in verify.OUTCOMES} == {"pass": 114, "fail": 4, "error": 1, "skipped": 1}

    keys_only = next(
        c for c in checks if c["id"] == "tests/compliance/test_ssh_access.py::test_sshd_allows_keys_only[web1]"
    )
    assert keys_only["toms"] == ["TOM-SSH-01"] and keys_only["host"] == "web1"
    assert keys_only["check"] == "sshd -T: public keys are the only way in; no password, no keyboard-interactive."
    assert keys_only["observed"]["sshd -T"]["passwordauthentication"] == "no"  # JSON decoded again
    assert keys_only["timestamp"] == "2026-11-21T09:00:43Z"  # the plugin's "started"

    audit = next(c for c in checks if c["id"].endswith("test_ssh_audit_policy_passes[mail1]"))
    assert audit["outcome"] == "fail" and "\n" not in audit["message"]
    assert audit["message"].startswith("AssertionError: Host:   10.231.0.12 Port:   22 Policy:")
    assert audit["message"].endswith("returncode=3).returncode")
    error = next(c for c in checks if c["outcome"] == "error")
    assert error["host"] == "backup-frankfurt" and error["message"].startswith("failed on setup with")
    skipped = next(c for c in checks if c["outcome"] == "skipped")
    assert skipped["message"].startswith("no private key of a named admin")


def test_fixture_result_is_what_verify_builds_from_the_recorded_run():
    """The report fixture stays honest: result.json is exactly the verify output for junit.xml."""
    expected = json.loads((FIXTURES / "result.json").read_text())
    inv = Inventory(FIXTURES / "inventory")
    built = verify.build_result(
        FIXTURES / "junit.xml",
        inv,
        TOMS,
        inv.roles_by_host,
        started=verify.parse_time(expected["started"]),
        finished=verify.parse_time(expected["finished"]),
        pytest_exit_code=1,
    )
    for key in ("schema", "started", "finished", "hosts", "unassigned_checks", "organisational", "summary"):
        assert built[key] == expected[key], key


JUNIT_WITHOUT_PLUGIN = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" timestamp="2026-11-21T10:00:00.000000+01:00">
  <testcase classname="tests.compliance.test_x" name="test_a[web1]" file="tests/compliance/test_x.py" time="1.500">
    <properties><property name="tom" value="TOM-FW-01"/><property name="tom" value="TOM-SSH-01"/></properties>
  </testcase>
  <testcase classname="tests.compliance.test_x.TestGroup" name="test_b[mail-1]" file="tests/compliance/test_x.py"
            time="2.000">
    <properties><property name="tom" value="TOM-FW-01"/><property name="observed:ports" value="[22, 80]"/></properties>
    <failure message="AssertionError: assert 2 == 1&#10;&#10;   more detail">trace</failure>
  </testcase>
  <testcase classname="tests.compliance.test_x.TestGroup" name="test_b[mail-1]" file="tests/compliance/test_x.py"
            time="0.250">
    <error message="failed on teardown with &quot;OSError&quot;">trace</error>
  </testcase>
  <testcase classname="tests.unit.test_y" name="test_c" time="0.100">
    <skipped type="pytest.skip" message="not today">skip</skipped>
  </testcase>
</testsuite></testsuites>
"""


def test_junit_without_the_plugin_still_parses(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT_WITHOUT_PLUGIN)
    first, second, third = verify.parse_junit(path)

    # Suite start (local time, here +01:00) plus the durations before each check.
    assert (first["timestamp"], second["timestamp"], third["timestamp"]) == (
        "2026-11-21T09:00:00Z",
        "2026-11-21T09:00:01Z",
        "2026-11-21T09:00:03Z",
    )
    assert first["id"] == "tests/compliance/test_x.py::test_a[web1]" and first["host"] == "web1"
    assert first["toms"] == ["TOM-FW-01", "TOM-SSH-01"] and first["check"] == "test_a"
    # A failed call and an erroring teardown are one check that failed.
    assert second["id"] == "tests/compliance/test_x.py::TestGroup::test_b[mail-1]" and second["host"] == "mail-1"
    assert second["outcome"] == "fail" and second["duration_seconds"] == 2.25
    assert second["message"] == 'AssertionError: assert 2 == 1 more detail / failed on teardown with "OSError"'
    assert second["observed"] == {"ports": [22, 80]}
    assert third["id"] == "tests/unit/test_y.py::test_c" and third["host"] is None and third["toms"] == []

    hosts, unassigned = verify.aggregate([first, second, third], {"web1": ["firewall"]}, TOMS)
    assert list(hosts["web1"]["toms"]) == ["TOM-SSH-01", "TOM-FW-01"]  # catalogue order
    assert hosts["mail-1"]["roles"] == [] and hosts["mail-1"]["toms"]["TOM-FW-01"]["status"] == "fail"
    assert [c["id"] for c in unassigned] == [third["id"]]
    assert "release" not in hosts["web1"]  # no check observed it
    first["observed"] = {verify.RELEASE_EVIDENCE: "Debian 13.8 (trixie)"}
    hosts, unassigned = verify.aggregate([first, second, third], {"web1": ["firewall"]}, TOMS)
    assert hosts["web1"]["release"] == "Debian 13.8 (trixie)" and "release" not in hosts["mail-1"]
    summary = verify.summarise(hosts, unassigned)
    # test_a proves two TOMs but is one check.
    assert summary["checks"] == {"pass": 1, "fail": 1, "error": 0, "skipped": 1}
    assert summary["toms"] == {"pass": 1, "fail": 1, "skipped": 0}
    assert summary["tom_hosts"] == {"pass": 2, "fail": 1, "skipped": 0}


@pytest.mark.parametrize(
    ("outcomes", "status"),
    [
        (["pass", "pass"], "pass"),
        (["pass", "fail"], "fail"),
        (["pass", "error"], "fail"),
        (["skipped", "error"], "fail"),
        (["pass", "skipped"], "pass"),
        (["skipped", "skipped"], "skipped"),
    ],
)
def test_tom_status_on_a_host(outcomes, status):
    assert verify.tom_status(outcomes) == status


@pytest.mark.parametrize(
    ("statuses", "status"),
    [
        (["pass", "pass"], "pass"),
        (["pass", "fail"], "fail"),
        (["pass", "skipped"], "skipped"),
        (["skipped"], "skipped"),
    ],
)
def test_tom_status_over_hosts(statuses, status):
    assert verify.tom_status_over_hosts(statuses) == status


def test_organisational_evidence_is_plain_json(local_inventory):
    found = verify.organisational_evidence(Inventory(local_inventory), TOMS)
    organisational = [t for t in TOMS.values() if not t.technical]
    assert list(found) == [t.evidence["where"] for t in organisational]
    assert found["tomwerk_org_reviews"] == [{"date": "2026-03-02", "reviewer": "ALICE"}]
    assert found["/var/lib/tomwerk/access-journal.jsonl"] is None  # no journal on this machine
    assert all(v is None for k, v in found.items() if k != "tomwerk_org_reviews")
    json.dumps(found)


def test_the_access_journal_is_evidence_where_it_is_readable(tmp_path):
    from tomwerk_host import access_journal

    path = str(tmp_path / "journal.jsonl")
    assert verify.journal_evidence(path) is None
    at = access_journal.utc_now() - dt.timedelta(hours=60)
    access_journal.append(path, "access", at, "alice", purpose="restore", persons="one mailbox", customer="ACME")
    access_journal.append(path, "access", at, "bob", purpose="debug", persons="web logs", customer="ACME")
    access_journal.append(path, "notified", at + dt.timedelta(hours=1), "alice", ref=1)
    found = verify.journal_evidence(path)
    assert found == {"intact": True, "problem": "", "entries": 3, "accesses": 2, "notification_open": 1,
                     "notification_overdue": 1, "notify_within_hours": 48}  # fmt: skip
    assert "ACME" not in json.dumps(found) and "alice" not in json.dumps(found)
    # A tampered entry shows as a broken journal, not as a clean record.
    lines = Path(path).read_text().splitlines()
    Path(path).write_text("\n".join([lines[0].replace("restore", "nothing"), *lines[1:]]) + "\n")
    assert verify.journal_evidence(path)["intact"] is False


def test_plain_turns_ansible_values_into_json_types():
    value = {"when": dt.date(2026, 1, 2), "n": 3, "ok": True, "pair": ("a", 1.5), 4: None}
    assert verify.plain(value) == {"when": "2026-01-02", "n": 3, "ok": True, "pair": ["a", 1.5], "4": None}


def test_long_messages_are_cut():
    message = verify.trim_message("AssertionError: " + "x" * 1000 + "\n\n  tail")
    assert len(message) == verify.MESSAGE_LIMIT and message.endswith("…")


def test_progress_lines_are_compact():
    padded = "tests/x.py::test_a[web1] PASSED" + " " * 60 + "[ 12%]"
    assert verify.progress_line(padded) == "tests/x.py::test_a[web1] PASSED [ 12%]"
    assert verify.progress_line("collecting ... \rcollected 3 items   ") == "collected 3 items"
    assert verify.progress_line("E     assert  1 == 2") == "E     assert  1 == 2"
