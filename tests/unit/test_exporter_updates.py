"""The updates collector (TOM-UPD-01 weekly updates) on a recorded host.

The host is the compliant web host recording plus tests/unit/fixtures/exporter/updates
(the state file the role writes, the status file and the `pending` output; see the
README there). The status file and the output are what tomwerk-updates-status
makes of the recordings in tests/unit/fixtures/updates;
test_fixtures_are_what_the_recorder_makes re-checks that contract.
"""

from __future__ import annotations

import json
import logging
import subprocess

import pytest

from tests.unit.exporter_helpers import (
    FIXTURES,
    STATE_DIR,
    CollectorTests,
    FakeClock,
    RecordedHost,
    edit_json,
    exporter_with,
    scrape,
)
from tests.unit.test_updates_status import FIXTURES as RECORDINGS
from tests.unit.test_updates_status import us
from tomwerk_host.exporter import core
from tomwerk_host.exporter.collectors import all_collectors, updates
from tomwerk_host.exporter.collectors.ssh import SSHD_T

UPD = FIXTURES / "updates"
STATE = f"{STATE_DIR}/updates.json"
STATUS_FILE = "/var/lib/tomwerk/updates/status.json"
PENDING = ("/usr/local/sbin/tomwerk-updates-status", "pending")
UPD_TOMS = ["TOM-UPD-01"]

DAY = 86400
INSTALL = 1_795_281_764.704  # 2026-11-21 17:22:44Z: the recorded run upgraded 138 packages
RECORDED = 1_795_282_400.0  # when ExecStopPost= recorded it
FIRST_SEEN = 1_795_300_000.0  # libssl3 and openssl first seen pending (2026-11-21 22:26:40Z)
CHECKED = 1_795_330_000.0  # the recorded `pending` output (2026-11-22 06:46:40Z)
NOW = CHECKED + 60
PACKAGE_NAMES = ("libssl3", "openssl", "base-files")

COMPLIANT_FIGURES = {
    ("tomwerk_updates_last_success_timestamp_seconds", ()): INSTALL,
    ("tomwerk_updates_last_run_timestamp_seconds", ()): INSTALL,
    ("tomwerk_updates_last_run_success", ()): 1,
    ("tomwerk_updates_last_run_packages_upgraded", ()): 138,
    ("tomwerk_updates_max_age_seconds", ()): 7 * DAY,
    ("tomwerk_updates_pending", (("kind", "security"),)): 2,
    ("tomwerk_updates_pending", (("kind", "other"),)): 1,
    ("tomwerk_updates_oldest_pending_security_timestamp_seconds", ()): FIRST_SEEN,
    ("tomwerk_updates_security_max_pending_seconds", ()): 2 * DAY,
    ("tomwerk_updates_reboot_required", ()): 0,
}
# What a status file without a recorded run leaves out: the figures of the last run.
RUN_FIGURES = {key: None for key in COMPLIANT_FIGURES if key[0].startswith("tomwerk_updates_last_")}


# --------------------------------------------------------------------- helpers


def updates_host() -> RecordedHost:
    return RecordedHost().overlay(UPD, {PENDING: "tomwerk-updates-status-pending.json"})


def make_updates_exporter(host: core.Host | None = None, now: float = NOW, **kwargs) -> core.TomExporter:
    """All registered collectors; the updates collector's wall clock is set to now and its cache clock shared."""
    clock = kwargs.setdefault("clock", FakeClock())
    collector = updates.UpdatesCollector(now=FakeClock(now), clock=clock)
    return exporter_with(collector, host or updates_host(), now, **kwargs)


def set_vars(host: RecordedHost, **changes) -> None:
    host.files[STATE] = edit_json(host.files[STATE], changes, "vars", indent=2)


def set_status(host: RecordedHost, **changes) -> None:
    host.files[STATUS_FILE] = edit_json(host.files[STATUS_FILE], changes, indent=2, sort_keys=True)


def set_pending(host: RecordedHost, **changes) -> None:
    host.outputs[PENDING] = (0, edit_json(host.outputs[PENDING][1], changes, indent=2, sort_keys=True) + "\n", "")


def _failed_run(h):
    set_status(
        h,
        last_run_timestamp=INSTALL + DAY,
        last_run_success=False,
        packages_upgraded=0,
        error="Cache has broken packages, exiting",
    )


# --------------------------------------------------------------------- drifts

# id: (drift, failing TOMs, figures that change from COMPLIANT_FIGURES; None: the series disappears)
DRIFTS = {
    "last success 8 days old": (
        lambda h: set_status(h, last_success_timestamp=NOW - 8 * DAY, last_run_timestamp=NOW - 8 * DAY),
        UPD_TOMS,
        {
            ("tomwerk_updates_last_success_timestamp_seconds", ()): NOW - 8 * DAY,
            ("tomwerk_updates_last_run_timestamp_seconds", ()): NOW - 8 * DAY,
        },
    ),
    "no run recorded yet": (
        lambda h: h.files.pop(STATUS_FILE),
        UPD_TOMS,
        RUN_FIGURES,
    ),
    "status file without any run": (
        lambda h: h.files.update({STATUS_FILE: '{"pending_security_first_seen": {}}'}),
        UPD_TOMS,
        RUN_FIGURES,
    ),
    "never succeeded": (
        lambda h: (_failed_run(h), set_status(h, last_success_timestamp=None)),
        UPD_TOMS,
        {
            **RUN_FIGURES,
            ("tomwerk_updates_last_run_timestamp_seconds", ()): INSTALL + DAY,
            ("tomwerk_updates_last_run_success", ()): 0,
            ("tomwerk_updates_last_run_packages_upgraded", ()): 0,
        },
    ),
    "security update pending for 3 days": (
        lambda h: set_pending(h, oldest_security_first_seen_timestamp=NOW - 3 * DAY),
        UPD_TOMS,
        {("tomwerk_updates_oldest_pending_security_timestamp_seconds", ()): NOW - 3 * DAY},
    ),
    "both broken": (
        lambda h: (
            set_status(h, last_success_timestamp=NOW - 30 * DAY),
            set_pending(h, oldest_security_first_seen_timestamp=NOW - 9 * DAY),
        ),
        UPD_TOMS,
        {
            ("tomwerk_updates_last_success_timestamp_seconds", ()): NOW - 30 * DAY,
            ("tomwerk_updates_oldest_pending_security_timestamp_seconds", ()): NOW - 9 * DAY,
        },
    ),
    "stricter limit for security updates": (
        lambda h: set_vars(h, updates_security_max_pending_days=1, updates_max_age_days=1),
        [],  # the run is 13 hours old, the security updates 8
        {
            ("tomwerk_updates_max_age_seconds", ()): DAY,
            ("tomwerk_updates_security_max_pending_seconds", ()): DAY,
        },
    ),
    # Not findings: TOM-UPD-01 still holds.
    "the last run failed, the one before succeeded": (
        _failed_run,
        [],
        {
            ("tomwerk_updates_last_run_timestamp_seconds", ()): INSTALL + DAY,
            ("tomwerk_updates_last_run_success", ()): 0,
            ("tomwerk_updates_last_run_packages_upgraded", ()): 0,
        },
    ),
    "nothing pending": (
        lambda h: set_pending(h, security=0, other=0, oldest_security_first_seen_timestamp=None),
        [],
        {
            ("tomwerk_updates_pending", (("kind", "security"),)): 0,
            ("tomwerk_updates_pending", (("kind", "other"),)): 0,
            ("tomwerk_updates_oldest_pending_security_timestamp_seconds", ()): None,
        },
    ),
    "reboot required": (
        lambda h: set_pending(h, reboot_required=True, reboot_required_since_timestamp=NOW - 4 * DAY),
        [],
        {
            ("tomwerk_updates_reboot_required", ()): 1,
            ("tomwerk_updates_reboot_required_since_timestamp_seconds", ()): NOW - 4 * DAY,
        },
    ),
    "many updates pending, only other ones": (
        lambda h: set_pending(h, security=0, other=41, oldest_security_first_seen_timestamp=None),
        [],
        {
            ("tomwerk_updates_pending", (("kind", "security"),)): 0,
            ("tomwerk_updates_pending", (("kind", "other"),)): 41,
            ("tomwerk_updates_oldest_pending_security_timestamp_seconds", ()): None,
        },
    ),
}


# --------------------------------------------------------------------- check errors

# The cases every collector's command fails with (missing, hangs, ...): test_exporter_contract.py.
# id: (output of `pending`, reason logged)
COMMAND_ERRORS = {
    "apt-fails": (
        (1, "", "tomwerk-updates-status: error: apt-get -s -o Debug::NoLocking=1 dist-upgrade exited with 100: E: x\n"),
        "exited with 1: tomwerk-updates-status: error: apt-get",
    ),
    "not-json": ((0, "3 upgraded\n", ""), "printed no JSON object"),
    "oldest-missing": (
        (0, '{"security": 1, "other": 0, "reboot_required": false}', ""),
        "no oldest_security_first_seen_timestamp",
    ),
    "count-as-string": ((0, '{"security": "2", "other": 0}', ""), "no count security"),
    "negative-count": ((0, '{"security": 0, "other": -1}', ""), "no count other"),
    "reboot-not-bool": ((0, '{"security": 0, "other": 0, "reboot_required": "no"}', ""), "no reboot_required"),
    "count-without-time": (
        (
            0,
            '{"security": 2, "other": 0, "reboot_required": false, "oldest_security_first_seen_timestamp": null,'
            ' "reboot_required_since_timestamp": null}',
            "",
        ),
        "security updates without first-seen time",
    ),
}

# id: (path, content, reason logged)
FILE_ERRORS = {
    "broken-json": (STATUS_FILE, '{"last_run_timestamp": 17', "status.json is not a JSON object"),
    "not-an-object": (STATUS_FILE, "[]", "status.json is not a JSON object"),
    "time-as-text": (STATUS_FILE, '{"last_run_timestamp": "yesterday"}', "last_run_timestamp is not a number"),
    "time-as-bool": (STATUS_FILE, '{"last_success_timestamp": true}', "last_success_timestamp is not a number"),
    "success-as-int": (
        STATUS_FILE,
        '{"last_run_timestamp": 1.0, "last_run_success": 1, "packages_upgraded": 0}',
        "last_run_success is not",
    ),
    "negative-count": (
        STATUS_FILE,
        '{"last_run_timestamp": 1.0, "last_run_success": true, "packages_upgraded": -3}',
        "packages_upgraded is not",
    ),
    "denied": (STATUS_FILE, PermissionError(13, "Permission denied"), f"cannot read {STATUS_FILE}"),
}

# id: (changes to the vars of the state file, reason logged)
STATE_ERRORS = {
    "interval-zero": ({"updates_interval_days": 0}, "updates_interval_days is not an integer in range"),
    "interval-over-a-week": ({"updates_interval_days": 8}, "updates_interval_days is not an integer in range"),
    "max-age-over-a-week": ({"updates_max_age_days": 14}, "updates_max_age_days is not an integer in range"),
    "max-age-below-interval": (
        {"updates_interval_days": 7, "updates_max_age_days": 3},
        "updates_max_age_days is shorter than the interval",
    ),
    "pending-over-max-age": (
        {"updates_security_max_pending_days": 5, "updates_max_age_days": 3},
        "longer than updates_max_age_days",
    ),
    "pending-bool": (
        {"updates_security_max_pending_days": True},
        "updates_security_max_pending_days is not an integer",
    ),
    "relative-status-file": ({"updates_status_file": "status.json"}, "must be absolute paths"),
    "relative-command": ({"updates_status_command": ["tomwerk-updates-status", "pending"]}, "must be absolute paths"),
    "empty-command": ({"updates_status_command": []}, "must be absolute paths"),
    "command-as-string": (
        {"updates_status_command": "/usr/local/sbin/tomwerk-updates-status pending"},
        "is not a list of strings",
    ),
}


# Compliant host, drifts, a host without the role, conventions, check errors: test_exporter_contract.py.
UPDATES_TESTS = CollectorTests(
    name="updates",
    toms=UPD_TOMS,
    prefixes=("tomwerk_updates_",),
    compliant=COMPLIANT_FIGURES,
    drifts=DRIFTS,
    host=updates_host,
    exporter=make_updates_exporter,
    state=STATE,
    commands=(PENDING,),
    required="updates_security_max_pending_days",
    state_errors=STATE_ERRORS,
    file_errors=FILE_ERRORS,
    command_errors=COMMAND_ERRORS,
)


@pytest.mark.parametrize(
    ("field", "limit_days"),
    [("last_success_timestamp", 7), ("oldest_security_first_seen_timestamp", 2)],
    ids=["last-success", "oldest-security-update"],
)
@pytest.mark.parametrize(("extra", "compliant"), [(0, 1), (1, 0)], ids=["exactly-the-limit", "a-second-more"])
def test_limits_are_inclusive(field, limit_days, extra, compliant):
    """A run (or pending update) may be the limit old to the second, as the alerts compare it."""
    host = updates_host()
    at = NOW - limit_days * DAY - extra
    if field == "last_success_timestamp":
        set_status(host, last_success_timestamp=at)
    else:
        set_pending(host, oldest_security_first_seen_timestamp=at)
    assert scrape(make_updates_exporter(host)).toms()["TOM-UPD-01"] == compliant


def test_the_command_and_file_of_the_state_are_used():
    host = updates_host()
    argv = ("/opt/tomwerk/bin/updates-status", "--status-file", "/srv/updates.json", "pending")
    set_vars(host, updates_status_file="/srv/updates.json", updates_status_command=list(argv))
    host.outputs[argv] = host.outputs.pop(PENDING)
    host.files["/srv/updates.json"] = host.files.pop(STATUS_FILE)
    s = scrape(make_updates_exporter(host))
    assert s.toms()["TOM-UPD-01"] == 1
    assert host.calls[argv] == 1


def test_numbers_as_ansible_may_write_them():
    host = updates_host()
    set_vars(host, updates_interval_days="1", updates_max_age_days="7", updates_security_max_pending_days="2")
    assert scrape(make_updates_exporter(host)).toms() == UPDATES_TESTS.verdicts()


# --------------------------------------------------------------------- caching of `pending`


def test_pending_is_cached_longer_than_the_min_interval():
    host, clock = updates_host(), FakeClock()
    exporter = make_updates_exporter(host, clock=clock, min_interval=30)
    for _ in range(10):  # 0 .. 270 s
        scrape(exporter)
        clock.now += 30
    assert host.calls[PENDING] == 1 and host.calls[SSHD_T] == 10
    clock.now += 30  # 300 s after the first run
    scrape(exporter)
    assert host.calls[PENDING] == 2


@pytest.mark.parametrize(
    ("later", "success", "pending_runs"),
    [(30, 0, 2), (29, 1, 1)],
    ids=["next-check-reads-the-new-run-and-refreshes-pending", "within-the-framework-min-interval-nothing-is-read"],
)
def test_the_status_file_is_read_on_every_check_but_not_within_the_min_interval(later, success, pending_runs):
    """A check reads the status file, and a new run it records refreshes pending (it changes what is pending)."""
    host, clock = updates_host(), FakeClock()
    exporter = make_updates_exporter(host, clock=clock, min_interval=30)
    scrape(exporter)
    _failed_run(host)
    clock.now += later
    s = scrape(exporter)
    assert s.value("tomwerk_updates_last_run_success") == success
    assert host.calls[PENDING] == pending_runs


def test_a_failing_pending_command_is_not_cached(caplog):
    host, clock = updates_host(), FakeClock()
    recorded = host.outputs[PENDING]
    host.outputs[PENDING] = subprocess.TimeoutExpired("tomwerk-updates-status", 5)
    exporter = make_updates_exporter(host, clock=clock, min_interval=30)
    with caplog.at_level(logging.ERROR, logger="tomwerk_exporter"):
        s = scrape(exporter)
    assert s.toms()["TOM-UPD-01"] == 0 and s.errors()["updates"] == 1
    host.outputs[PENDING] = recorded
    clock.now += 30
    s = scrape(exporter)
    assert s.toms()["TOM-UPD-01"] == 1 and host.calls[PENDING] == 2


# --------------------------------------------------------------------- findings, names, conventions


def test_findings_are_logged_once_and_name_no_package(caplog):
    assert UPDATES_TESTS.findings_logged(
        caplog,
        lambda h: set_status(h, last_success_timestamp=NOW - 8 * DAY),
        lambda h: set_status(h, last_success_timestamp=INSTALL),
    ) == [
        "TOM-UPD-01 not compliant: the last successful unattended-upgrades run (2026-11-14 06:47 UTC) "
        "is older than 7 days",
        "TOM-UPD-01 compliant again",
    ]


def test_every_finding_at_once(caplog):
    host = updates_host()
    host.files.pop(STATUS_FILE)
    set_pending(host, oldest_security_first_seen_timestamp=NOW - 3 * DAY)
    with caplog.at_level(logging.WARNING, logger="tomwerk_exporter"):
        scrape(make_updates_exporter(host))
    assert [r.getMessage() for r in caplog.records] == [
        "TOM-UPD-01 not compliant: no unattended-upgrades run has been recorded yet "
        "(/var/lib/tomwerk/updates/status.json is missing); 2 security update(s) pending, "
        "the oldest since 2026-11-19 06:47 UTC, longer than 2 days"
    ]


def test_no_package_names_in_metrics_or_logs(caplog):
    with caplog.at_level(logging.INFO, logger="tomwerk_exporter"):
        for s in UPDATES_TESTS.scrapes(drift for drift, _, _ in DRIFTS.values()):
            assert [p for p in PACKAGE_NAMES if p in s.text] == []
    assert [p for p in PACKAGE_NAMES if p in caplog.text] == []
    assert "libssl3" in updates_host().outputs[PENDING][1]  # the names are there to be left out


def test_the_updates_collector_is_registered():
    assert [c for c in all_collectors() if isinstance(c, updates.UpdatesCollector)]


# --------------------------------------------------------------------- the recorder's contract


def recorder_files(tmp_path) -> tuple[str, str]:
    """status.json and the `pending` output as tomwerk-updates-status makes them from the recordings."""
    daily = (RECORDINGS / "unattended-upgrades.log").read_text()
    log = tmp_path / "unattended-upgrades.log"
    log.write_text(daily.split("2026-11-21 18:26:32,246")[0])  # the download-only and the install run
    status = tmp_path / "status.json"
    assert us.record(str(status), str(log), {}, RECORDED, running=lambda: False).endswith("138 package(s) upgraded")
    simulation = (RECORDINGS / "apt-get-s-dist-upgrade.three.txt").read_text()

    # Stand-ins for the fingerprint of apt's inputs: the lists were updated in between.
    fingerprint = iter(["test: apt inputs of 2026-11-21 22:26", "test: apt inputs of 2026-11-22 06:46"]).__next__
    calls = []

    def runner(argv):
        calls.append(argv)
        return 0, simulation, ""

    missing = str(tmp_path / "reboot-required")
    us.pending(str(status), runner, FIRST_SEEN, reboot_file=missing, booted=0, fingerprint=fingerprint)
    output = us.pending(str(status), runner, CHECKED, reboot_file=missing, booted=0, fingerprint=fingerprint)
    assert len(calls) == 2
    return status.read_text(), json.dumps(output, indent=2, sort_keys=True) + "\n"


def test_fixtures_are_what_the_recorder_makes(tmp_path, berlin):
    status, output = recorder_files(tmp_path)
    assert status == (UPD / "var" / "lib" / "tomwerk" / "updates" / "status.json").read_text()
    assert output == (UPD / "commands" / "tomwerk-updates-status-pending.json").read_text()


def test_the_recorder_and_the_collector_agree_on_a_failed_run(tmp_path, berlin):
    """A run recorded as failed (the real recorder on a recorded log) is read as such."""
    log = tmp_path / "unattended-upgrades.log"
    log.write_text((RECORDINGS / "broken-cache.log").read_text())
    status = tmp_path / "status.json"
    us.record(str(status), str(log), {}, RECORDED, running=lambda: False)
    host = updates_host()
    host.files[STATUS_FILE] = status.read_text()
    s = scrape(make_updates_exporter(host))
    assert s.toms()["TOM-UPD-01"] == 0  # and there never was a successful run
    assert s.value("tomwerk_updates_last_run_success") == 0
    assert s.value("tomwerk_updates_last_success_timestamp_seconds") is None
