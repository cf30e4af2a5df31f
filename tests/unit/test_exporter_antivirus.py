"""The antivirus collector (TOM-AV-01 scans, TOM-AV-02 virus and spam milters) on a recorded host.

Fixtures in tests/unit/fixtures/exporter/antivirus: the state files the roles
antivirus and spam_filter write for a mail host (freshclam, milter on), the scan result file
tomwerk-antivirus-scan writes, and a daily.cvd header (CVD layout of ClamAV
1.4; build time 1795326360). The scan script itself is tested at the end.
"""

from __future__ import annotations

import importlib
import json

import pytest

from tests.unit.exporter_helpers import FIXTURES, STATE_DIR, DictHost, assert_outcome, run_alone

antivirus = importlib.import_module("tomwerk_host.exporter.collectors.antivirus")

AV = FIXTURES / "antivirus"
STATE = f"{STATE_DIR}/antivirus.json"
SPAM_STATE = f"{STATE_DIR}/spam_filter.json"
RESULT = "/var/lib/tomwerk/antivirus/scan.json"
DAILY_BUILT = 1_795_326_360.0
SCANNED = 1_795_330_000.2
NOW = SCANNED + 600
PING = ("clamdscan", "--ping", "1")
MILTER_ACTIVE = ("systemctl", "is-active", "clamav-milter")
POSTCONF = ("postconf", "-h", "smtpd_milters", "non_smtpd_milters")
SPAMD_PING = ("spamc", "-d", "127.0.0.1", "-K")
SPAM_MILTER_ACTIVE = ("systemctl", "is-active", "spamass-milter")


class AvHost(DictHost):
    def __init__(self):
        files = {
            STATE: (AV / "antivirus.json").read_text(),
            SPAM_STATE: (AV / "spam_filter.json").read_text(),
            RESULT: (AV / "scan.json").read_text(),
            "/var/lib/clamav/daily.cvd": (AV / "daily.cvd.header").read_text(),
            "/var/lib/clamav/freshclam.dat": "x",
        }
        outputs = {
            PING: (0, "PONG\n", ""),
            MILTER_ACTIVE: (0, "active\n", ""),
            POSTCONF: (0, "inet:127.0.0.1:7357 inet:127.0.0.1:7358\ninet:127.0.0.1:7357\n", ""),
            SPAMD_PING: (0, "", ""),
            SPAM_MILTER_ACTIVE: (0, "active\n", ""),
        }
        super().__init__(files, outputs)
        self.mtimes["/var/lib/clamav/daily.cvd"] = NOW - 60

    def set_result(self, **changes):
        data = json.loads(self.files[RESULT])
        data.update(changes)
        self.files[RESULT] = json.dumps(data)


def run(host: AvHost, now: float = NOW):
    outcome = run_alone(antivirus.AntivirusCollector(now=lambda: now), host, now)
    return outcome, {(s.name, s.labels): s.value for s in outcome.samples}


def test_compliant_mail_host():
    outcome, samples = run(AvHost())
    assert outcome.error is None
    assert outcome.toms == {"TOM-AV-01": True, "TOM-AV-02": True}
    assert samples[("tomwerk_antivirus_signature_timestamp_seconds", ())] == DAILY_BUILT  # header, not mtime
    assert samples[("tomwerk_antivirus_last_scan_timestamp_seconds", ())] == SCANNED
    assert samples[("tomwerk_antivirus_infected_files", ())] == 0
    assert samples[("tomwerk_antivirus_scanned_files", ())] == 3
    assert samples[("tomwerk_antivirus_clamd_up", ())] == 1
    assert samples[("tomwerk_antivirus_milter_up", ())] == 1
    assert samples[("tomwerk_spam_spamd_up", ())] == 1
    assert samples[("tomwerk_spam_milter_up", ())] == 1
    assert samples[("tomwerk_antivirus_signature_max_age_seconds", ())] == 2 * 86400
    assert samples[("tomwerk_antivirus_scan_max_age_seconds", ())] == 26 * 3600


def _local_db(h):
    del h.files["/var/lib/clamav/daily.cvd"]
    h.files["/var/lib/clamav/tomwerk.hdb"] = "abc:68:Tomwerk.Test.EICAR\n"
    h.mtimes["/var/lib/clamav/tomwerk.hdb"] = NOW - 3 * 86400


def _finding(h):
    h.set_result(infected_files=1, infected=[{"root": "/var/mail", "signature": "Eicar", "path_id": "0" * 16}])


def _milter_removed(h):
    h.outputs[POSTCONF] = (0, "\ninet:127.0.0.1:7357\n", "")


def _spam_milter_removed(h):
    h.outputs[POSTCONF] = (0, "inet:127.0.0.1:7357\ninet:127.0.0.1:7357\n", "")


def _virus_half_only(h):
    """The antivirus role with its milter, but no spam_filter role."""
    del h.files[SPAM_STATE]


def _spam_half_only(h):
    """spam_filter on a host whose antivirus role does not scan mail."""
    state = json.loads(h.files[STATE])
    state["toms"] = ["TOM-AV-01"]
    h.files[STATE] = json.dumps(state)


# id: (drift, TOM-AV-01, TOM-AV-02, expected samples)
DRIFTS = {
    "signatures 3 days old (cvd header)": (
        lambda h: h.files.update(
            {
                "/var/lib/clamav/daily.cvd": (AV / "daily.cvd.header")
                .read_text()
                .replace("1795326360", str(int(NOW - 3 * 86400)))
            }
        ),
        False,
        True,
        {("tomwerk_antivirus_signature_timestamp_seconds", ()): float(int(NOW - 3 * 86400))},
    ),
    "local database 3 days old (mtime)": (
        _local_db,
        False,
        True,
        {("tomwerk_antivirus_signature_timestamp_seconds", ()): NOW - 3 * 86400},
    ),
    "no database": (
        lambda h: h.files.pop("/var/lib/clamav/daily.cvd"),
        False,
        True,
        {("tomwerk_antivirus_signature_databases", ()): 0},
    ),
    "scan missed": (
        lambda h: h.set_result(last_completed_timestamp=NOW - 27 * 3600),
        False,
        True,
        {("tomwerk_antivirus_last_scan_timestamp_seconds", ()): NOW - 27 * 3600},
    ),
    "never scanned": (lambda h: h.files.pop(RESULT), False, True, {}),
    "finding": (_finding, False, True, {("tomwerk_antivirus_infected_files", ()): 1}),
    "clamd down": (
        lambda h: h.outputs.update({PING: (2, "", "ERROR: Could not connect to clamd")}),
        False,
        True,
        {("tomwerk_antivirus_clamd_up", ()): 0},
    ),
    "milter stopped": (
        lambda h: h.outputs.update({MILTER_ACTIVE: (3, "inactive\n", "")}),
        True,
        False,
        {("tomwerk_antivirus_milter_up", ()): 0},
    ),
    "milter not in smtpd_milters": (_milter_removed, True, False, {("tomwerk_antivirus_milter_up", ()): 0}),
    "spamd down": (
        lambda h: h.outputs.update({SPAMD_PING: (1, "", "connection refused")}),
        True,
        False,
        {("tomwerk_spam_spamd_up", ()): 0, ("tomwerk_spam_milter_up", ()): 1},
    ),
    "spamass-milter stopped": (
        lambda h: h.outputs.update({SPAM_MILTER_ACTIVE: (3, "inactive\n", "")}),
        True,
        False,
        {("tomwerk_spam_milter_up", ()): 0, ("tomwerk_spam_spamd_up", ()): 1},
    ),
    "spamass-milter not in smtpd_milters": (_spam_milter_removed, True, False, {("tomwerk_spam_milter_up", ()): 0}),
    "no spam check (virus half only)": (_virus_half_only, True, False, {("tomwerk_antivirus_milter_up", ()): 1}),
    "no virus check (spam half only)": (_spam_half_only, True, False, {("tomwerk_spam_milter_up", ()): 1}),
}


@pytest.mark.parametrize("drift", DRIFTS, ids=list(DRIFTS))
def test_drift(drift):
    change, av_ok, mail_ok, expected = DRIFTS[drift]
    host = AvHost()
    change(host)
    outcome, _ = run(host)
    assert_outcome(outcome, {"TOM-AV-01": av_ok, "TOM-AV-02": mail_ok}, expected)


def test_web_host_has_no_mail_tom():
    host = AvHost()
    state = json.loads(host.files[STATE])
    state["toms"] = ["TOM-AV-01"]
    host.files[STATE] = json.dumps(state)
    del host.files[SPAM_STATE]
    for asked_on_mail_hosts_only in (POSTCONF, SPAMD_PING, SPAM_MILTER_ACTIVE):
        del host.outputs[asked_on_mail_hosts_only]
    outcome, samples = run(host)
    assert outcome.toms == {"TOM-AV-01": True}
    assert ("tomwerk_antivirus_milter_up", ()) not in samples
    assert ("tomwerk_spam_milter_up", ()) not in samples


def test_broken_result_file_is_a_failed_check():
    host = AvHost()
    host.files[RESULT] = "{not json"
    outcome, _ = run(host)
    assert outcome.error and RESULT in outcome.error
    assert outcome.toms == {"TOM-AV-01": False, "TOM-AV-02": False}


def test_cvd_header_parsing():
    header = (AV / "daily.cvd.header").read_text()
    assert antivirus.cvd_build_time(header) == DAILY_BUILT
    assert antivirus.cvd_build_time("garbage") is None
    assert antivirus.cvd_build_time("ClamAV-VDB:a:b") is None


# --------------------------------------------------------------------- the scan script


@pytest.fixture
def scan_module():
    return importlib.import_module("tomwerk_host.antivirus_scan")


def test_scan_records_findings_without_paths(tmp_path, monkeypatch, scan_module):
    root = tmp_path / "www"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("hello")
    bad = root / "sub" / "kunde-mueller.com"
    bad.write_text("x")
    (root / "link").symlink_to("/etc/passwd")
    result_file = tmp_path / "state" / "scan.json"

    class Proc:
        returncode = 1
        stdout = f"{bad}: Tomwerk.Test.EICAR FOUND\n"
        stderr = ""

    calls = []
    monkeypatch.setattr(scan_module.subprocess, "run", lambda argv, **kw: calls.append(argv) or Proc())
    monkeypatch.setattr(scan_module.syslog, "syslog", lambda *a: None)
    assert scan_module.main(["--result", str(result_file), str(root), str(tmp_path / "missing")]) == 0
    data = json.loads(result_file.read_text())
    assert data["files_scanned"] == 2  # the symlink is not followed
    assert data["infected_files"] == 1
    assert data["infected"] == [
        {"root": str(root), "signature": "Tomwerk.Test.EICAR", "path_id": scan_module.path_id(str(bad))}
    ]
    assert "mueller" not in result_file.read_text()
    assert data["missing_paths"] == [str(tmp_path / "missing")]
    assert "--fdpass" in calls[0]


def test_failed_scan_keeps_the_last_completed(tmp_path, monkeypatch, scan_module):
    root = tmp_path / "www"
    root.mkdir()
    (root / "a").write_text("a")
    result_file = tmp_path / "scan.json"
    result_file.write_text(json.dumps({"last_completed_timestamp": 5.0, "infected_files": 0}))

    class Proc:
        returncode = 2
        stdout = ""
        stderr = "ERROR: Could not connect to clamd on LocalSocket /run/clamav/clamd.ctl: No such file or directory"

    monkeypatch.setattr(scan_module.subprocess, "run", lambda argv, **kw: Proc())
    monkeypatch.setattr(scan_module.syslog, "syslog", lambda *a: None)
    assert scan_module.main(["--result", str(result_file), str(root)]) == 1
    data = json.loads(result_file.read_text())
    assert data["last_completed_timestamp"] == 5.0
    assert "Could not connect" in data["last_failure"]
