"""The org collector (TOM-ORG-01 yearly review, TOM-ORG-02 access journal) on a recorded admin host.

The admin host is the compliant web host recording plus tests/unit/fixtures/exporter/org
(tom_records.json and the output of tomwerk-access-log status; see the README there).
Each drift edits it the way a forgotten review, a tampered journal or a late
notification would; the end-to-end tests run the real tomwerk_host/access_journal.py.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import time

import pytest

from tests.unit import hostpkg
from tests.unit.exporter_helpers import (
    FIXTURES,
    STATE_DIR,
    CollectorTests,
    FakeClock,
    RecordedHost,
    edit_json,
    exporter_with,
    personal_label_values,
    scrape,
)
from tomwerk_host import access_journal as aj
from tomwerk_host.exporter import core
from tomwerk_host.exporter.collectors import all_collectors, org

ORG = FIXTURES / "org"
STATE = f"{STATE_DIR}/tom_records.json"
JOURNAL_PATH = "/var/lib/tomwerk/access-journal.jsonl"
STATUS = (org.ACCESS_LOG, "--journal", JOURNAL_PATH, "status", "--notify-hours", "48")
ORG_TOMS = ["TOM-ORG-01", "TOM-ORG-02"]

DAY = 86400
NOW = 1_793_754_000.0  # 2026-11-04T01:00:00Z, the time the recorded status output was made
NEWEST_REVIEW = 1_772_409_600.0  # 2026-03-02T00:00:00Z
OLDEST_OPEN = 1_793_718_000.0  # 2026-11-03T15:00:00Z
# Personal and customer data in the recording (state file and the journal behind the status output).
PERSONAL = ("Alice Admin", "measures adequate", "all TOMs in toms.yml", "ACME", "Beta AG", "J. Doe", "dpo@", "mailbox")

COMPLIANT_FIGURES = {
    ("tomwerk_org_last_review_timestamp_seconds", ()): NEWEST_REVIEW,
    ("tomwerk_org_reviews_recorded", ()): 2,
    ("tomwerk_org_review_max_age_seconds", ()): 365 * DAY,
    ("tomwerk_access_journal_intact", ()): 1,
    ("tomwerk_access_journal_entries", ()): 3,
    ("tomwerk_access_journal_open_notifications", ()): 1,
    ("tomwerk_access_journal_overdue_notifications", ()): 0,
    ("tomwerk_access_journal_oldest_open_access_timestamp_seconds", ()): OLDEST_OPEN,
}
# What a journal that does not verify leaves out: everything counted in it.
JOURNAL_COUNTS = {
    key: None
    for key in COMPLIANT_FIGURES
    if key[0].startswith("tomwerk_access_journal_") and key[0] != "tomwerk_access_journal_intact"
}


# --------------------------------------------------------------------- helpers


def admin_host() -> RecordedHost:
    return RecordedHost().overlay(ORG, {STATUS: "tomwerk-access-log-status.json"})


def make_org_exporter(host: core.Host | None = None, now: float = NOW, **kwargs) -> core.TomExporter:
    """All registered collectors; the org collector's clock (age of the newest review) is set to now."""
    return exporter_with(org.OrgCollector(now=FakeClock(now)), host or admin_host(), now, **kwargs)


def set_vars(host: RecordedHost, **changes) -> None:
    host.files[STATE] = edit_json(host.files[STATE], changes, "vars", indent=2)


def set_status(host: RecordedHost, **changes) -> None:
    host.outputs[STATUS] = (0, edit_json(host.outputs[STATUS][1], changes, sort_keys=True) + "\n", "")


def _newest_review(date):
    return lambda h: h.edit(STATE, '"2026-03-02"', f'"{date}"')


def _tampered(problem="line 2: content does not match its hash (entry edited)"):
    # What status() prints for a journal whose chain does not verify: the counts are zero, not counted.
    return lambda h: set_status(
        h, intact=False, problem=problem, entries=0, accesses=0, open=0, overdue=0, oldest_open_access_timestamp=None
    )


# --------------------------------------------------------------------- drifts

# id: (drift, failing TOMs, figures that change from COMPLIANT_FIGURES; None: the series disappears)
DRIFTS = {
    "newest review 366 days old": (
        _newest_review("2025-11-03"),
        {"TOM-ORG-01"},
        {("tomwerk_org_last_review_timestamp_seconds", ()): NOW - 366 * DAY - 3600},
    ),
    "no review recorded": (
        lambda h: set_vars(h, tom_records_reviews=[]),
        {"TOM-ORG-01"},
        {("tomwerk_org_last_review_timestamp_seconds", ()): None, ("tomwerk_org_reviews_recorded", ()): 0},
    ),
    "newest review dated in the future (mistyped year)": (
        _newest_review("2062-03-02"),
        {"TOM-ORG-01"},
        {("tomwerk_org_last_review_timestamp_seconds", ()): 2_908_483_200.0},
    ),
    "stricter review limit": (
        lambda h: set_vars(h, tom_records_review_max_age_days=200),  # the newest review is 247 days old
        {"TOM-ORG-01"},
        {("tomwerk_org_review_max_age_seconds", ()): 200 * DAY},
    ),
    "journal tampered": (
        _tampered(),
        {"TOM-ORG-02"},
        {("tomwerk_access_journal_intact", ()): 0, **JOURNAL_COUNTS},
    ),
    "journal unreadable for the command": (
        _tampered("[Errno 13] Permission denied: '/var/lib/tomwerk/access-journal.jsonl'"),
        {"TOM-ORG-02"},
        {("tomwerk_access_journal_intact", ()): 0, **JOURNAL_COUNTS},
    ),
    "notification overdue": (
        lambda h: set_status(h, overdue=1),
        {"TOM-ORG-02"},
        {("tomwerk_access_journal_overdue_notifications", ()): 1},
    ),
    "both TOMs broken": (
        lambda h: (set_vars(h, tom_records_reviews=[]), set_status(h, open=3, overdue=2)),
        {"TOM-ORG-01", "TOM-ORG-02"},
        {
            ("tomwerk_org_last_review_timestamp_seconds", ()): None,
            ("tomwerk_org_reviews_recorded", ()): 0,
            ("tomwerk_access_journal_open_notifications", ()): 3,
            ("tomwerk_access_journal_overdue_notifications", ()): 2,
        },
    ),
    # Not drifts: still compliant, with other figures.
    "one review, 364 days old": (
        lambda h: set_vars(h, tom_records_reviews=[{"date": "2025-11-05", "reviewer": "Alice Admin"}]),
        set(),
        {
            ("tomwerk_org_last_review_timestamp_seconds", ()): NOW - 364 * DAY - 3600,
            ("tomwerk_org_reviews_recorded", ()): 1,
        },
    ),
    "every access notified": (
        lambda h: set_status(h, entries=4, open=0, oldest_open_access_timestamp=None),
        set(),
        {
            ("tomwerk_access_journal_entries", ()): 4,
            ("tomwerk_access_journal_open_notifications", ()): 0,
            ("tomwerk_access_journal_oldest_open_access_timestamp_seconds", ()): None,
        },
    ),
    "journal still empty": (
        lambda h: set_status(h, entries=0, accesses=0, open=0, oldest_open_access_timestamp=None),
        set(),
        {
            ("tomwerk_access_journal_entries", ()): 0,
            ("tomwerk_access_journal_open_notifications", ()): 0,
            ("tomwerk_access_journal_oldest_open_access_timestamp_seconds", ()): None,
        },
    ),
}


# --------------------------------------------------------------------- check errors

# The cases every collector's command fails with (missing, hangs, ...): test_exporter_contract.py.
# One collector, one verdict: the review figures are lost with the journal's.
# id: (output of tomwerk-access-log status, reason logged)
COMMAND_ERRORS = {
    "not-executable": (OSError(8, "Exec format error"), f"cannot run {org.ACCESS_LOG}: Exec format error"),
    "crashes": (
        (1, "", "Traceback (most recent call last):\nUnicodeDecodeError: 'utf-8' codec can't decode byte 0xff\n"),
        "exited with 1: Traceback",
    ),
    "older-command": (
        (2, "", "tomwerk-access-log: error: unrecognized arguments: --notify-hours\n"),
        "exited with 2",
    ),
    "not-json": ((0, "journal intact: 3 entries\n", ""), "printed no JSON object"),
    "intact-not-bool": ((0, '{"intact": "yes", "problem": ""}', ""), "no intact or problem field"),
    "overdue-missing": ((0, '{"intact": true, "problem": "", "entries": 3, "open": 1}', ""), "no count overdue"),
    "negative-count": (
        (0, '{"intact": true, "problem": "", "entries": 3, "open": -1, "overdue": 0}', ""),
        "no count open",
    ),
    "oldest-missing": (
        (0, '{"intact": true, "problem": "", "entries": 1, "open": 1, "overdue": 0}', ""),
        "no oldest_open_access_timestamp",
    ),
}

# id: (changes to the vars of the state file, reason logged)
STATE_ERRORS = {
    "reviews-not-a-list": ({"tom_records_reviews": {"date": "2026-03-02"}}, "vars.tom_records_reviews is not a list"),
    "review-not-an-object": ({"tom_records_reviews": ["2026-03-02"]}, "review 1 has no date in the form YYYY-MM-DD"),
    "review-without-date": ({"tom_records_reviews": [{"reviewer": "Alice Admin"}]}, "review 1 has no date"),
    "german-date": (
        {"tom_records_reviews": [{"date": "02.03.2026", "reviewer": "Alice Admin"}]},
        "in the form YYYY-MM-DD",
    ),
    "compact-date": ({"tom_records_reviews": [{"date": "20260302"}]}, "in the form YYYY-MM-DD"),
    "impossible-date": (
        {"tom_records_reviews": [{"date": "2026-03-02"}, {"date": "2026-02-30"}]},
        "review 2 has no valid date",
    ),
    "max-age-too-long": (
        {"tom_records_review_max_age_days": 400},
        "tom_records_review_max_age_days is not an integer in range",
    ),
    "max-age-bool": (
        {"tom_records_review_max_age_days": True},
        "tom_records_review_max_age_days is not an integer in range",
    ),
    "notify-too-late": (
        {"tom_records_notify_within_hours": 72},
        "tom_records_notify_within_hours is not an integer in range",
    ),
    "relative-journal": ({"tom_records_access_journal": "access-journal.jsonl"}, "is not an absolute path"),
    "empty-journal-path": (
        {"tom_records_access_journal": ""},
        "tom_records_access_journal is not a non-empty string",
    ),
}


# Compliant admin host, drifts, a web host (no tom_records.json), conventions, check errors:
# test_exporter_contract.py.
ORG_TESTS = CollectorTests(
    name="org",
    toms=ORG_TOMS,
    prefixes=("tomwerk_org_", "tomwerk_access_journal_"),
    compliant=COMPLIANT_FIGURES,
    drifts=DRIFTS,
    host=admin_host,
    exporter=make_org_exporter,
    state=STATE,
    commands=(STATUS,),
    required="tom_records_notify_within_hours",
    state_errors=STATE_ERRORS,
    unquoted=("Alice",),
    command_errors=COMMAND_ERRORS,
)


@pytest.mark.parametrize(
    ("age", "compliant"),
    [(0, 1), (365 * DAY, 1), (365 * DAY + 1, 0), (-DAY, 1), (-DAY - 1, 0)],
    ids=["same-day", "exactly-max-age", "a-second-more", "dated-tomorrow-east-of-utc", "further-ahead"],
)
def test_review_age_limit_is_inclusive_and_in_utc(age, compliant):
    """The newest review may be max-age old to the second (as the alert compares it), or a day ahead (zones)."""
    s = scrape(make_org_exporter(now=NEWEST_REVIEW + age))
    assert s.toms()["TOM-ORG-01"] == compliant


def test_the_command_gets_the_journal_and_limit_of_the_state():
    host = admin_host()
    set_vars(host, tom_records_access_journal="/srv/records/journal.jsonl", tom_records_notify_within_hours=24)
    argv = (org.ACCESS_LOG, "--journal", "/srv/records/journal.jsonl", "status", "--notify-hours", "24")
    host.outputs[argv] = host.outputs.pop(STATUS)
    s = scrape(make_org_exporter(host))
    assert s.toms()["TOM-ORG-02"] == 1
    assert host.calls[argv] == 1


def test_numbers_as_ansible_may_write_them():
    host = admin_host()
    set_vars(host, tom_records_review_max_age_days="365", tom_records_notify_within_hours="48")
    s = scrape(make_org_exporter(host))
    assert s.toms() == ORG_TESTS.verdicts()


def test_results_are_cached_for_min_interval():
    host, clock = admin_host(), FakeClock()
    exporter = make_org_exporter(host, clock=clock, min_interval=30)
    scrape(exporter)
    clock.now += 29.9
    scrape(exporter)
    assert host.calls[STATUS] == 1
    clock.now += 0.1
    scrape(exporter)
    assert host.calls[STATUS] == 2


# --------------------------------------------------------------------- logging and personal data


def test_a_broken_journal_is_a_finding_logged_once(caplog):
    assert ORG_TESTS.findings_logged(
        caplog,
        _tampered(),
        lambda h: h.outputs.update({STATUS: admin_host().outputs[STATUS]}),
    ) == [
        "TOM-ORG-02 not compliant: the access journal is not intact: "
        "line 2: content does not match its hash (entry edited)",
        "TOM-ORG-02 compliant again",
    ]


def test_findings_name_no_reviewer_and_quote_nothing_from_the_journal(caplog):
    host = admin_host()
    set_vars(host, tom_records_reviews=[{"date": "2024-01-15", "reviewer": "Alice Admin", "scope": "all"}])
    # A tampered entry whose seq holds a name: status() quotes it, the exporter does not.
    _tampered("line 4: sequence Beta AG / J. Doe out of order (entry removed or moved)")(host)
    with caplog.at_level(logging.INFO, logger="tomwerk_exporter"):
        scrape(make_org_exporter(host))
    assert sorted(r.getMessage() for r in caplog.records) == [
        "TOM-ORG-01 not compliant: the newest review (2024-01-15) is older than 365 days",
        "TOM-ORG-02 not compliant: the access journal is not intact: "
        "line 4: sequence out of order (entry removed or moved)",
    ]


def test_no_personal_data_in_metrics_or_logs(caplog):
    """Labels, HELP texts, values and log lines of every case: no reviewer, customer, purpose or person."""
    cases = [lambda h: None, *(drift for drift, _, _ in DRIFTS.values())]
    with caplog.at_level(logging.INFO, logger="tomwerk_exporter"):
        for s in ORG_TESTS.scrapes(cases):
            assert personal_label_values(s) == []
            assert [p for p in PERSONAL if p in s.text] == []
            assert {labels for _, labels in ORG_TESTS.figures(s)} <= {()}  # the org figures have no labels
    assert [p for p in PERSONAL if p in caplog.text] == []


def test_the_org_collector_is_registered():
    assert [c for c in all_collectors() if isinstance(c, org.OrgCollector)]


# --------------------------------------------------------------------- the real command


class JournalHost(RecordedHost):
    """The admin host, but tomwerk-access-log is the real tomwerk_host/access_journal.py, run by this interpreter."""

    def execute(self, argv):
        if argv[0] == org.ACCESS_LOG:
            self.calls[tuple(argv)] += 1
            return core.Host.execute(self, (sys.executable, "-m", "tomwerk_host", "access-log", *argv[1:]))
        return super().execute(argv)


@pytest.fixture
def journal_host(tmp_path, monkeypatch):
    monkeypatch.setattr(aj, "_anchor", lambda entry: None)  # no lines in this machine's syslog
    path = tmp_path / "access-journal.jsonl"
    host = JournalHost()
    host.files[STATE] = (ORG / "etc" / "tomwerk" / "state" / "tom_records.json").read_text()
    today = dt.datetime.now(dt.UTC).date().isoformat()
    set_vars(host, tom_records_access_journal=str(path), tom_records_reviews=[{"date": today, "reviewer": "A. B."}])
    return host, str(path)


def _ago(hours: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=hours)


def test_real_command_counts_what_the_exporter_reads(journal_host):
    host, path = journal_host
    aj.append(path, "access", _ago(72), "alice", customer="ACME GmbH", purpose="restore a mailbox", persons="J. Doe")
    aj.append(path, "notified", _ago(70), "alice", ref=1, how="mail to dpo@acme.example")
    late = _ago(50)
    aj.append(path, "access", late, "bob", customer="Beta AG", purpose="emergency", persons="all")
    aj.append(path, "access", _ago(1), "bob", customer="Beta AG", purpose="disk full", persons="J. Doe")
    exporter = make_org_exporter(host, now=time.time(), min_interval=0)

    s = scrape(exporter)
    assert s.errors()["org"] == 0
    assert s.toms()["TOM-ORG-01"] == 1 and s.toms()["TOM-ORG-02"] == 0
    assert s.value("tomwerk_access_journal_intact") == 1
    assert s.value("tomwerk_access_journal_entries") == 4
    assert s.value("tomwerk_access_journal_open_notifications") == 2
    assert s.value("tomwerk_access_journal_overdue_notifications") == 1
    assert s.value("tomwerk_access_journal_oldest_open_access_timestamp_seconds") == late.timestamp()

    aj.append(path, "notified", _ago(0), "bob", ref=3, how="phone")
    s = scrape(exporter)
    assert s.toms()["TOM-ORG-02"] == 1
    assert s.value("tomwerk_access_journal_overdue_notifications") == 0
    assert s.value("tomwerk_access_journal_open_notifications") == 1
    assert not [p for p in PERSONAL if p in s.text]


def test_real_command_on_a_tampered_journal(journal_host, caplog):
    host, path = journal_host
    aj.append(path, "access", _ago(3), "alice", customer="ACME GmbH", purpose="restore a mailbox", persons="J. Doe")
    aj.append(path, "notified", _ago(2), "alice", ref=1, how="mail to dpo@acme.example")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    with open(path, "w", encoding="utf-8") as f:
        f.write(text.replace("restore a mailbox", "look around"))
    with caplog.at_level(logging.INFO, logger="tomwerk_exporter"):
        s = scrape(make_org_exporter(host, now=time.time()))
    assert s.errors()["org"] == 0
    assert s.toms()["TOM-ORG-02"] == 0 and s.toms()["TOM-ORG-01"] == 1
    assert s.value("tomwerk_access_journal_intact") == 0
    assert s.value("tomwerk_access_journal_overdue_notifications") is None
    assert "line 1: content does not match its hash (entry edited)" in caplog.text
    assert not [p for p in PERSONAL if p in caplog.text]


def test_real_command_with_a_removed_journal(journal_host):
    """The role creates the journal; one that is gone counts as tampered with."""
    host, _ = journal_host
    s = scrape(make_org_exporter(host, now=time.time()))
    assert s.toms()["TOM-ORG-02"] == 0
    assert s.value("tomwerk_access_journal_intact") == 0


def test_the_installed_command_can_be_executed(tmp_path):
    """As roles/tom_records installs it: a link to the host package's zipapp, run by its path, as the exporter does."""
    artifact = tmp_path / "tomwerk-host.pyz"  # mode 0755, as the role copies it
    artifact.write_bytes(hostpkg.zipapp().read_bytes())
    artifact.chmod(0o755)
    installed = tmp_path / "tomwerk-access-log"
    installed.symlink_to(artifact)
    argv = (str(installed), "--journal", str(tmp_path / "journal.jsonl"), "status", "--notify-hours", "48")
    (tmp_path / "journal.jsonl").touch()  # tom_records creates the (empty) journal
    assert json.loads(core.Host().output(argv))["intact"] is True
