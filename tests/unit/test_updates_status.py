"""tomwerk-updates-status (tomwerk_host/updates_status.py) on recorded logs and apt output.

The recordings are in tests/unit/fixtures/updates (see the README there). The
log's times are local times; the tests run in Europe/Berlin, where they were
recorded. systemd's part ($SERVICE_RESULT and friends) is passed as env.
"""

from __future__ import annotations

import ast
import errno
import gzip
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tomwerk_host" / "updates_status.py"
FIXTURES = Path(__file__).parent / "fixtures" / "updates"

_spec = importlib.util.spec_from_file_location("tomwerk_updates_status", SCRIPT)
us = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(us)

DAILY = (FIXTURES / "unattended-upgrades.log").read_text()
INTERRUPTED = (FIXTURES / "interrupted.log").read_text()
BROKEN_CACHE = (FIXTURES / "broken-cache.log").read_text()
LOCK_TAKEN = (FIXTURES / "lock-taken.log").read_text()
SIMULATION = (FIXTURES / "apt-get-s-dist-upgrade.txt").read_text()

# Starts of the recorded runs (Europe/Berlin, UTC+1 in November).
DOWNLOAD_ONLY = 1_795_281_623.120  # 2026-11-21 18:20:23,120
INSTALL = 1_795_281_764.704  # 2026-11-21 18:22:44,704: 138 packages
NOTHING = 1_795_281_992.247  # 2026-11-21 18:26:32,247: nothing to upgrade
KILLED = 1_795_280_950.343  # interrupted.log
BROKEN = 1_795_281_598.854  # broken-cache.log
NOW = 1_795_300_000.0  # 2026-11-21 23:26:40 local
PLANNED = next(line for line in DAILY.splitlines() if "Packages that will be upgraded:" in line).split(": ", 1)[1]


# The recordings' local times are Berlin's (conftest.py).
pytestmark = pytest.mark.usefixtures("berlin")


@pytest.fixture
def paths(tmp_path):
    """(status file, log file) in a fresh tree; the log starts with the recorded day."""
    log = tmp_path / "log" / "unattended-upgrades.log"
    log.parent.mkdir()
    log.write_text(DAILY)
    return tmp_path / "lib" / "updates" / "status.json", log


def status_of(path: Path) -> dict:
    return json.loads(path.read_text())


def record(paths, env=None, now=NOW, running=False) -> str:
    status, log = paths
    return us.record(str(status), str(log), env or {}, now, running=lambda: running)


def append(log: Path, text: str) -> None:
    with log.open("a") as f:
        f.write(text)


def shifted(text: str, hours: int) -> str:
    """The recorded lines, as if written `hours` later (same format)."""
    out = []
    for line in text.splitlines(keepends=True):
        m = us.LINE.match(line.rstrip("\n"))
        if m:
            at = time.mktime(time.strptime(m[1], "%Y-%m-%d %H:%M:%S")) + hours * 3600
            line = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) + line[19:]
        out.append(line)
    return "".join(out)


def simulation(*inst_lines: str, not_upgraded: int = 0) -> str:
    """apt-get -s output around the given Inst lines, as apt prints it."""
    n = len(inst_lines)
    head = (
        "Reading package lists...\nBuilding dependency tree...\nReading state information...\nCalculating upgrade...\n"
    )
    summary = f"{n} upgraded, 0 newly installed, 0 to remove and {not_upgraded} not upgraded.\n"
    return head + summary + "".join(line + "\n" for line in inst_lines)


def runner_for(text: str, rc: int = 0, err: str = ""):
    """apt-get printing text; run.fingerprint stands for apt's inputs, which differ with the output."""
    calls = []

    def run(argv):
        calls.append(argv)
        return rc, text, err

    run.calls = calls
    run.fingerprint = lambda: hashlib.sha256(text.encode()).hexdigest()
    return run


def pend(status: Path, run, now: float, **kwargs) -> dict:
    kwargs.setdefault("reboot_file", str(status.parent / "reboot-required-not-here"))
    kwargs.setdefault("booted", 0)
    return us.pending(str(status), run, now, fingerprint=run.fingerprint, **kwargs)


# --------------------------------------------------------------------- the log


def test_the_recorded_day_splits_into_its_three_runs():
    runs = us.split_runs(us.parse_entries(DAILY))
    assert [r.start for r in runs] == [DOWNLOAD_ONLY, INSTALL, NOTHING]
    assert [us.outcome(r, install_expected=False) for r in runs] == [
        None,  # download-only (apt-daily.service): installs nothing by design
        us.Outcome(INSTALL, True, tuple(PLANNED.split()), None),
        us.Outcome(NOTHING, True, (), None),
    ]
    assert len(PLANNED.split()) == 138


def test_a_run_that_stops_before_deciding_fails_when_it_was_meant_to_install():
    download_only = us.split_runs(us.parse_entries(DAILY))[0]
    assert us.outcome(download_only, install_expected=True) == us.Outcome(
        DOWNLOAD_ONLY, False, (), "unattended-upgrade ended before it decided what to upgrade"
    )


@pytest.mark.parametrize(
    ("text", "start", "error"),
    [
        (INTERRUPTED, KILLED, "SIGTERM received, will stop"),
        (BROKEN_CACHE, BROKEN, "Cache has broken packages, exiting"),
    ],
    ids=["sigterm-while-installing", "broken-cache"],
)
def test_recorded_failures(text, start, error):
    (run,) = us.split_runs(us.parse_entries(text))
    assert us.outcome(run, install_expected=False) == us.Outcome(start, False, (), error)


def test_a_second_process_that_finds_the_lock_taken_is_its_own_failed_invocation():
    runs = us.split_runs(us.parse_entries(LOCK_TAKEN))
    assert [(r.started, len(r.entries)) for r in runs] == [(True, 5), (False, 1)]
    assert us.outcome(runs[0], install_expected=False) is None  # the download-only run is unharmed
    assert us.outcome(runs[1], install_expected=False).error == (
        "unattended-upgrade did not start: Lock file is already taken, exiting"
    )


def test_lines_of_a_run_written_after_a_lock_failure_stay_with_the_run():
    text = LOCK_TAKEN + (
        "2026-11-21 18:27:40,001 INFO Packages that will be upgraded: jq libjq1\n"
        "2026-11-21 18:27:40,002 INFO Writing dpkg log to /var/log/unattended-upgrades/unattended-upgrades-dpkg.log\n"
        "2026-11-21 18:27:45,500 INFO All upgrades installed\n"
    )
    runs = us.split_runs(us.parse_entries(text))
    assert us.outcome(runs[0], install_expected=False).packages == ("jq", "libjq1")
    assert len(runs[1].entries) == 1


# Constructed from the messages in /usr/bin/unattended-upgrade 2.9.1+nmu3 (the role sets SyslogEnable).
SYSLOG = "2026-11-22 06:12:01,100 INFO Enabled logging to syslog via daemon facility \n"
HEADER = (
    "2026-11-22 06:12:01,102 INFO Checking if system is running on battery is skipped. Please install "
    "powermgmt-base package to check power status and skip installing updates when the system is running on battery.\n"
    "2026-11-22 06:12:01,104 INFO Starting unattended upgrades script\n"
    "2026-11-22 06:12:01,104 INFO Allowed origins are: origin=Debian,codename=bookworm,label=Debian, "
    "origin=Debian,codename=bookworm-updates,label=Debian, "
    "origin=Debian,codename=bookworm-security,label=Debian-Security\n"
    "2026-11-22 06:12:01,104 INFO Initial blacklist: \n"
    "2026-11-22 06:12:01,104 INFO Initial whitelist (not strict): \n"
)
RUN_START = 1_795_324_321.104  # 2026-11-22 06:12:01,104
PLAN = "2026-11-22 06:12:04,300 INFO Packages that will be upgraded: libexpat1 openssl\n"
DPKG_LOG = (
    "2026-11-22 06:12:04,300 INFO Writing dpkg log to /var/log/unattended-upgrades/unattended-upgrades-dpkg.log\n"
)
DONE = "2026-11-22 06:12:20,811 INFO All upgrades installed\n"

CONSTRUCTED = {
    "syslog enabled, success": (SYSLOG + HEADER + PLAN + DPKG_LOG + DONE, True, 2, None),
    "conffile prompt": (
        HEADER
        + "2026-11-22 06:12:04,001 WARNING Package nginx-common has conffile prompt and needs to be upgraded manually\n"
        + "2026-11-22 06:12:04,002 INFO package nginx-common not upgraded\n"
        + PLAN
        + DPKG_LOG
        + DONE,
        False,
        0,
        "Package nginx-common has conffile prompt and needs to be upgraded manually",
    ),
    "dpkg fails": (
        HEADER
        + PLAN
        + DPKG_LOG
        + "2026-11-22 06:12:09,000 ERROR Installing the upgrades failed!\n"
        + "2026-11-22 06:12:09,000 ERROR error message: installArchives() failed\n"
        + "2026-11-22 06:12:09,000 ERROR dpkg returned a error! See "
        + "/var/log/unattended-upgrades/unattended-upgrades-dpkg.log for details\n",
        False,
        0,
        "Installing the upgrades failed!",
    ),
    "crash with traceback": (
        HEADER
        + "2026-11-22 06:12:02,000 ERROR An error occurred: 'NoneType' object has no attribute 'version'\n"
        + "Traceback (most recent call last):\n"
        + '  File "/usr/bin/unattended-upgrade", line 2011, in main\n'
        + "AttributeError: 'NoneType' object has no attribute 'version'\n",
        False,
        0,
        "An error occurred: 'NoneType' object has no attribute 'version'",
    ),
    "download fails": (
        HEADER
        + "2026-11-22 06:12:03,000 ERROR An error occurred: 404  Not Found [IP: 151.101.2.132 80]\n"
        + "2026-11-22 06:12:03,000 ERROR The URI http://deb.debian.org/debian-security/pool/updates/main/o/openssl/"
        + "libssl3_3.0.15-1~deb12u1_amd64.deb failed to download, aborting\n",
        False,
        0,
        "An error occurred: 404 Not Found [IP: 151.101.2.132 80]",
    ),
    "only auto-removals": (HEADER + "2026-11-22 06:12:04,300 INFO Packages that will be upgraded: \n", True, 0, None),
    "mail cannot be sent": (
        HEADER
        + PLAN
        + DPKG_LOG
        + DONE
        + "2026-11-22 06:12:21,000 ERROR No /usr/bin/mail or /usr/sbin/sendmail, can not send mail. "
        + "You probably want to install the mailx package.\n",
        False,
        0,
        "No /usr/bin/mail or /usr/sbin/sendmail, can not send mail. You probably want to install the mailx package.",
    ),
    "reboot issued": (
        HEADER
        + PLAN
        + DPKG_LOG
        + DONE
        + "2026-11-22 06:12:21,000 WARNING Found /var/run/reboot-required, rebooting\n"
        + "2026-11-22 06:12:21,100 WARNING Shutdown msg: b'Reboot scheduled for Sun 2026-11-22 03:30:00 CET'\n",
        True,
        2,
        None,
    ),
}


@pytest.mark.parametrize("name", CONSTRUCTED)
def test_constructed_runs(name):
    text, success, packages, error = CONSTRUCTED[name]
    (run,) = [r for r in us.split_runs(us.parse_entries(text)) if r.started]
    assert run.start == RUN_START
    o = us.outcome(run, install_expected=False)
    assert (o.success, len(o.packages), o.error) == (success, packages, error)


def test_a_dry_run_is_no_run():
    """unattended-upgrade --dry-run (as the compliance checks run it) logs like a run but installs nothing."""
    dry = (
        HEADER
        + ("2026-11-22 06:12:04,299 INFO Option --dry-run given, *not* performing real actions\n")
        + PLAN
        + DPKG_LOG
        + DONE
    )
    (run,) = [r for r in us.split_runs(us.parse_entries(dry)) if r.started]
    assert us.outcome(run, install_expected=False) is None


def test_lines_before_the_first_start_are_the_tail_of_a_rotated_run():
    tail = (
        "2026-11-01 06:12:20,811 INFO All upgrades installed\n2026-11-01 06:12:21,000 ERROR Failed to issue shutdown\n"
    )
    runs = us.split_runs(us.parse_entries(tail + DAILY))
    assert runs[0].orphan and us.outcome(runs[0], install_expected=True) is None
    assert [r.start for r in runs[1:]] == [DOWNLOAD_ONLY, INSTALL, NOTHING]


# --------------------------------------------------------------------- record by hand


def test_first_record_takes_the_newest_run_and_the_newest_success(paths):
    assert record(paths) == "run of 2026-11-21 18:26:32 succeeded, 0 package(s) upgraded"
    assert status_of(paths[0]) == {
        "last_run_timestamp": NOTHING,
        "last_run_success": True,
        "last_success_timestamp": NOTHING,
        "packages_upgraded": 0,
        "error": None,
        "recorded_timestamp": NOW,
    }


def test_a_second_record_without_a_new_run_changes_nothing_but_the_time(paths):
    record(paths)
    before = status_of(paths[0])
    assert record(paths, now=NOW + 60) == "no new unattended-upgrades run since the last record"
    assert status_of(paths[0]) == {**before, "recorded_timestamp": NOW + 60}


def test_a_failed_run_keeps_the_last_success(paths):
    status, log = paths
    record(paths)
    append(log, shifted(INTERRUPTED, 24))  # the next evening's run is stopped
    assert record(paths, now=NOW + 86400) == "run of 2026-11-22 18:09:10 failed: SIGTERM received, will stop"
    s = status_of(status)
    assert (s["last_run_timestamp"], s["last_run_success"], s["error"]) == (KILLED + 86400, False, s["error"])
    assert s["last_success_timestamp"] == NOTHING
    assert s["packages_upgraded"] == 0 and s["error"] == "SIGTERM received, will stop"


def test_runs_since_the_last_record_all_count_for_the_last_success(paths):
    """A manual run that succeeded between two records is not lost when the newest failed."""
    status, log = paths
    log.write_text(DAILY.split("2026-11-21 18:26:32,246")[0])  # download-only and install runs
    record(paths)
    assert status_of(status)["last_success_timestamp"] == INSTALL
    append(log, shifted(DAILY, 24) + shifted(BROKEN_CACHE, 48))
    record(paths, now=NOW + 2 * 86400)
    s = status_of(status)
    assert (s["last_run_timestamp"], s["last_run_success"]) == (BROKEN + 2 * 86400, False)
    assert s["last_success_timestamp"] == NOTHING + 86400
    assert s["error"] == "Cache has broken packages, exiting"


def test_a_run_in_progress_is_left_for_the_next_record(paths):
    status, log = paths
    log.write_text(DAILY.split("2026-11-21 18:25:12")[0])  # the install run has not finished
    record(paths, running=True)
    assert "last_run_timestamp" not in status_of(status)  # only the download-only run is complete
    log.write_text(DAILY)
    record(paths)
    assert status_of(status)["last_run_timestamp"] == NOTHING


def test_a_finished_run_counts_while_the_next_process_holds_the_lock(paths):
    """apt-daily.service's unattended-upgrade may hold the lock before it writes a line."""
    status, _ = paths
    record(paths, running=True)
    assert status_of(status)["last_run_timestamp"] == NOTHING


def test_the_rotated_log_is_read_when_the_current_one_has_no_run(paths):
    status, log = paths
    with gzip.open(str(log) + ".1.gz", "wt") as f:
        f.write(DAILY)
    log.write_text("")  # logrotate (monthly, compress) left an empty log
    record(paths)
    assert status_of(status)["last_success_timestamp"] == NOTHING


def test_no_log_at_all_records_nothing(paths):
    status, log = paths
    log.unlink()
    assert record(paths) == "no new unattended-upgrades run since the last record"
    assert status_of(status) == {"recorded_timestamp": NOW}


def test_a_broken_status_file_is_kept_aside(paths, capsys):
    status, _ = paths
    status.parent.mkdir(parents=True)
    status.write_text('{"last_run_timestamp": 17')
    record(paths)
    assert status_of(status)["last_success_timestamp"] == NOTHING
    assert (status.parent / "status.json.broken").read_text() == '{"last_run_timestamp": 17'
    assert "starting afresh" in capsys.readouterr().err


def test_the_status_file_is_replaced_atomically_and_readable(paths):
    status, _ = paths
    record(paths)
    assert sorted(p.name for p in status.parent.iterdir()) == ["status.json", "status.json.lock"]
    assert status.stat().st_mode & 0o777 == 0o644
    assert status.read_text().endswith("}\n")


# --------------------------------------------------------------------- record as ExecStopPost=

SUCCESS = {"SERVICE_RESULT": "success", "EXIT_CODE": "exited", "EXIT_STATUS": "0"}


def service_run(paths, log_text: str, env: dict, begin_at: float, now: float) -> str:
    """begin (ExecStartPre=), the service writes log_text, record (ExecStopPost=)."""
    status, log = paths
    us.begin(str(status), begin_at)
    append(log, log_text)
    return record(paths, env=env, now=now)


def test_service_run_that_installs(paths):
    status, log = paths
    log.write_text("")
    message = service_run(paths, DAILY.split("2026-11-21 18:26:32,246")[0], SUCCESS, INSTALL - 60, INSTALL + 300)
    assert message == "run of 2026-11-21 18:22:44 succeeded, 138 package(s) upgraded"
    s = status_of(status)
    assert (s["last_run_timestamp"], s["last_success_timestamp"], s["packages_upgraded"]) == (INSTALL, INSTALL, 138)
    assert "service_started_timestamp" not in s


def test_service_run_whose_unattended_upgrade_stops_before_deciding(paths):
    """Killed while computing the upgrade (e.g. OOM): the service succeeds, the log ends after the header."""
    status, log = paths
    log.write_text("")
    header_only = DAILY.split("2026-11-21 18:22:44,703")[0]
    service_run(paths, header_only, SUCCESS, DOWNLOAD_ONLY - 5, DOWNLOAD_ONLY + 600)
    s = status_of(status)
    assert (s["last_run_success"], s["error"]) == (False, "unattended-upgrade ended before it decided what to upgrade")


def test_service_run_without_an_unattended_upgrade_run_changes_nothing(paths):
    """apt.systemd.daily skips unattended-upgrade when its interval has not passed."""
    status, _ = paths
    record(paths)
    before = status_of(status)
    assert service_run(paths, "", SUCCESS, NOW + 10, NOW + 20) == "no new unattended-upgrades run since the last record"
    assert status_of(status) == {**before, "recorded_timestamp": NOW + 20}


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        (
            {"SERVICE_RESULT": "exit-code", "EXIT_CODE": "exited", "EXIT_STATUS": "1"},
            "apt-daily-upgrade.service failed: exit-code (exited 1)",
        ),
        (
            {"SERVICE_RESULT": "signal", "EXIT_CODE": "killed", "EXIT_STATUS": "KILL"},
            "apt-daily-upgrade.service failed: signal (killed KILL)",
        ),
        ({"SERVICE_RESULT": "timeout"}, "apt-daily-upgrade.service failed: timeout (unknown unknown)"),
    ],
    ids=["daily-lock-not-acquired", "killed", "timeout"],
)
def test_failed_service_without_a_run_is_a_failed_run(paths, env, reason):
    status, _ = paths
    record(paths)
    service_run(paths, "", env, NOW + 10, NOW + 3610)
    s = status_of(status)
    assert (s["last_run_timestamp"], s["last_run_success"], s["error"]) == (NOW + 10, False, reason)
    assert s["last_success_timestamp"] == NOTHING


def test_failed_service_with_a_run_keeps_the_runs_own_error(paths):
    status, _ = paths
    record(paths)
    env = {"SERVICE_RESULT": "signal", "EXIT_CODE": "killed", "EXIT_STATUS": "TERM"}
    service_run(paths, shifted(INTERRUPTED, 24), env, KILLED + 86400 - 30, KILLED + 86400 + 900)
    s = status_of(status)
    assert (s["last_run_timestamp"], s["error"]) == (KILLED + 86400, "SIGTERM received, will stop")


def test_failed_service_whose_run_looked_fine_still_fails(paths):
    status, log = paths
    log.write_text(DAILY.split("2026-11-21 18:22:44,703")[0])  # apt-daily.service's download-only run
    record(paths)
    env = {"SERVICE_RESULT": "timeout", "EXIT_CODE": "killed", "EXIT_STATUS": "TERM"}
    install_run = DAILY.split("2026-11-21 18:26:32,246")[0][len(log.read_text()) :]
    service_run(paths, install_run, env, INSTALL - 60, NOW)
    s = status_of(status)
    assert (s["last_run_timestamp"], s["last_run_success"]) == (INSTALL, False)
    assert s["error"] == "apt-daily-upgrade.service failed: timeout (killed TERM)"
    assert s["last_success_timestamp"] is None


def test_download_only_run_right_after_the_service_run_is_not_blamed(paths):
    """apt-daily.service waits for the same lock; its run may start before ExecStopPost= reads the log."""
    status, log = paths
    log.write_text("")
    download_only, rest = DAILY.split("2026-11-21 18:22:44,703")
    install_run = "2026-11-21 18:22:44,703" + rest.split("2026-11-21 18:26:32,246")[0]
    service_run(paths, install_run + shifted(download_only, 1), SUCCESS, INSTALL - 60, NOW)
    s = status_of(status)
    assert (s["last_run_timestamp"], s["last_run_success"], s["last_success_timestamp"]) == (INSTALL, True, INSTALL)


def test_a_manual_run_before_the_service_counts_but_is_not_blamed(paths):
    status, log = paths
    log.write_text(DAILY.split("2026-11-21 18:26:32,246")[0])  # an admin's runs, not recorded
    env = {"SERVICE_RESULT": "exit-code", "EXIT_CODE": "exited", "EXIT_STATUS": "1"}
    service_run(paths, "", env, NOW, NOW + 5)
    s = status_of(status)
    assert (s["last_run_timestamp"], s["error"]) == (NOW, "apt-daily-upgrade.service failed: exit-code (exited 1)")
    assert s["last_success_timestamp"] == INSTALL


def test_record_forgets_first_sightings_of_what_it_upgraded(paths):
    status, log = paths
    status.parent.mkdir(parents=True)
    status.write_text(json.dumps({"pending_security_first_seen": {"libssl3": 1.0, "openssl": 2.0, "nginx": 3.0}}))
    log.write_text(DAILY.split("2026-11-21 18:26:32,246")[0])
    record(paths)
    assert status_of(status)["pending_security_first_seen"] == {"nginx": 3.0}


# --------------------------------------------------------------------- pending

SECURITY_INST = sum(1 for line in SIMULATION.splitlines() if line.startswith("Inst ") and "-security" in line)
ALL_INST = sum(1 for line in SIMULATION.splitlines() if line.startswith("Inst "))


def test_pending_on_the_recorded_simulation(paths):
    status, _ = paths
    run = runner_for(SIMULATION)
    result = pend(status, run, NOW)
    assert run.calls == [("apt-get", "-s", "-o", "Debug::NoLocking=1", "dist-upgrade")]
    assert (result["security"], result["other"]) == (SECURITY_INST, ALL_INST - SECURITY_INST) == (85, 53)
    assert "libssl3" in result["security_packages"] and "libgcrypt20" in result["security_packages"]
    assert "base-files" in result["other_packages"] and "libssl3" not in result["other_packages"]
    assert result["oldest_security_first_seen_timestamp"] == NOW
    assert (result["reboot_required"], result["reboot_required_since_timestamp"]) == (False, None)
    assert (result["not_upgraded"], result["checked_timestamp"], result["first_seen_saved"]) == (0, NOW, True)
    assert status_of(status)["pending_security_first_seen"] == dict.fromkeys(result["security_packages"], NOW)


def test_first_seen_survives_calls_and_resets_when_resolved(paths):
    status, _ = paths
    libssl = "Inst libssl3 [3.0.17-1~deb12u2] (3.0.17-1~deb12u3 Debian-Security:12/stable-security [amd64])"
    openssl = "Inst openssl [3.0.17-1~deb12u2] (3.0.17-1~deb12u3 Debian-Security:12/stable-security [amd64])"
    curl = "Inst curl [7.88.1-10+deb12u12] (7.88.1-10+deb12u14 Debian-Security:12/stable-security [amd64])"
    tzdata = "Inst tzdata [2025a-0+deb12u1] (2025b-0+deb12u1 Debian:12.12/stable-updates [all])"
    pend(status, runner_for(simulation(libssl, openssl, tzdata)), 1000.0)
    second = pend(status, runner_for(simulation(openssl, curl, tzdata)), 5000.0)
    assert second["oldest_security_first_seen_timestamp"] == 1000.0
    assert status_of(status)["pending_security_first_seen"] == {"openssl": 1000.0, "curl": 5000.0}
    assert (second["security"], second["other"]) == (2, 1)
    third = pend(status, runner_for(simulation(tzdata)), 9000.0)
    assert (third["security"], third["oldest_security_first_seen_timestamp"]) == (0, None)
    assert status_of(status)["pending_security_first_seen"] == {}


def test_pending_read_only_still_answers(paths, monkeypatch):
    """Under the exporter's ProtectSystem=strict /var/lib is read-only: known first sightings, nothing saved."""
    status, _ = paths
    status.parent.mkdir(parents=True)
    status.write_text(json.dumps({"pending_security_first_seen": {"libssl3": 1000.0}}))
    before = status.read_text()
    real_open = os.open

    def read_only_open(path, flags, *args):
        if str(path).endswith(".lock"):
            raise OSError(errno.EROFS, "Read-only file system", path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(us.os, "open", read_only_open)
    result = pend(status, runner_for(SIMULATION), NOW)
    assert (result["first_seen_saved"], result["oldest_security_first_seen_timestamp"]) == (False, 1000.0)
    assert status.read_text() == before


def test_the_apt_result_is_reused_while_apts_inputs_are_unchanged(paths):
    status, _ = paths
    run = runner_for(SIMULATION)
    pend(status, run, NOW)
    again = pend(status, run, NOW + 3600)
    assert len(run.calls) == 1
    assert (again["security"], again["other"], again["checked_timestamp"]) == (85, 53, NOW)
    pend(status, run, NOW + us.SNAPSHOT_MAX_AGE)  # too old: pins and apt.conf are not in the fingerprint
    assert len(run.calls) == 2
    changed = runner_for(simulation())  # a list update or an installation changes the fingerprint
    assert pend(status, changed, NOW + us.SNAPSHOT_MAX_AGE + 1)["security"] == 0
    assert len(changed.calls) == 1


def test_the_exporter_reuses_what_a_writer_stored(paths, monkeypatch):
    """Read-only (the exporter): the result stored after the last list update is used without apt-get."""
    status, _ = paths
    run = runner_for(SIMULATION)
    pend(status, run, NOW)  # e.g. ExecStopPost= of apt-daily.service
    monkeypatch.setattr(us, "update_status", lambda path, change: (change(us.load_status(path, False)), False))
    result = pend(status, run, NOW + 600)
    assert len(run.calls) == 1
    assert (result["security"], result["first_seen_saved"]) == (85, False)


def test_apt_fingerprint_follows_dpkg_status_and_lists(tmp_path):
    dpkg, lists = tmp_path / "status", tmp_path / "lists"
    dpkg.write_text("Package: libssl3\nVersion: 3.0.17-1~deb12u2\n")
    lists.mkdir()
    (lists / "deb.debian.org_debian_dists_bookworm_InRelease").write_text("Date: Sat, 15 Nov 2026 09:00:00 UTC\n")
    (lists / "partial").mkdir()

    def fp():
        return us.apt_fingerprint(str(dpkg), str(lists))

    first = fp()
    assert fp() == first
    (lists / "partial" / "in-flight").write_text("x")  # downloads in progress do not count
    assert fp() == first
    (lists / "deb.debian.org_debian-security_dists_bookworm-security_InRelease").write_text("Date: today\n")
    second = fp()
    assert second != first
    dpkg.write_text("Package: libssl3\nVersion: 3.0.17-1~deb12u3\n")
    assert fp() != second
    assert us.apt_fingerprint(str(tmp_path / "none"), str(tmp_path / "none")) == us.apt_fingerprint("/x", "/y")


def test_record_refreshes_pending_and_survives_its_failure(paths):
    status, _ = paths
    run = runner_for("", 100, "E: Could not open lock file\n")

    def refresh():
        return pend(status, run, NOW)

    message = us.record(str(status), str(paths[1]), {}, NOW, running=lambda: False, refresh=refresh)
    assert message.startswith("run of 2026-11-21 18:26:32 succeeded")
    assert message.endswith("pending upgrades not refreshed: apt-get -s -o Debug::NoLocking=1 dist-upgrade "
                            "exited with 100: E: Could not open lock file")  # fmt: skip
    assert status_of(status)["last_success_timestamp"] == NOTHING
    assert us.record(str(status), str(paths[1]), {}, NOW, running=lambda: False, refresh=refresh).startswith("no new")
    assert len(run.calls) == 1  # nothing new, nothing to refresh


def test_reboot_required_since_the_first_sighting_since_boot(paths):
    status, _ = paths
    flag = status.parent.parent / "reboot-required"
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.write_text("*** System restart required ***\n")
    os.utime(flag, (5000.0, 5000.0))
    run = runner_for(simulation())
    first = pend(status, run, 6000.0, reboot_file=str(flag), booted=100.0)
    assert (first["reboot_required"], first["reboot_required_since_timestamp"]) == (True, 5000.0)
    os.utime(flag, (7000.0, 7000.0))  # a later package touches it again
    assert pend(status, run, 8000.0, reboot_file=str(flag), booted=100.0)["reboot_required_since_timestamp"] == 5000.0
    # After a reboot (/run is emptied) a new flag starts its own clock, even if nobody saw the old one go.
    os.utime(flag, (20000.0, 20000.0))
    assert (
        pend(status, run, 21000.0, reboot_file=str(flag), booted=19000.0)["reboot_required_since_timestamp"] == 20000.0
    )
    flag.unlink()
    gone = pend(status, run, 22000.0, reboot_file=str(flag), booted=19000.0)
    assert (gone["reboot_required"], gone["reboot_required_since_timestamp"]) == (False, None)
    assert status_of(status)["reboot_required_first_seen"] is None


@pytest.mark.parametrize(
    ("rc", "out", "err", "reason"),
    [
        (100, "", "E: Unable to locate package lists\n", "exited with 100: E: Unable to locate package lists"),
        (
            100,
            "Reading package lists...\n",
            "E: Unmet dependencies. Try 'apt --fix-broken install' with no packages (or specify a solution).\n",
            "exited with 100: E: Unmet dependencies.",
        ),
        (0, "Paketlisten werden gelesen...\n1 aktualisiert, 0 neu installiert\n", "", "printed no summary line"),
        (0, "", "", "printed no summary line"),
    ],
    ids=["apt-fails", "broken-dependencies", "other-language", "empty"],
)
def test_pending_fails_loudly(paths, rc, out, err, reason, capsys):
    status, log = paths
    argv = ["--status-file", str(status), "--log-file", str(log), "pending"]
    run = runner_for(out, rc, err)
    assert us.main(argv, runner=run, fingerprint=run.fingerprint) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and reason in captured.err
    assert len(captured.err.strip().splitlines()) == 1


def test_simulation_lines_of_every_shape():
    text = (
        simulation(
            "Inst base-files [12.4+deb12u11] (12.4+deb12u12 Debian:12.12/stable [amd64])",
            "Inst libc6 [2.36-9+deb12u10] (2.36-9+deb12u13 Debian:12.12/stable, Debian-Security:12/stable-security"
            " [amd64]) []",
            "Inst perl [5.36.0-7+deb12u2] (5.36.0-7+deb12u3 Debian-Security:12/stable-security [amd64]) [perl:amd64 ]",
            "Inst linux-image-6.1.0-41-amd64 (6.1.158-1 Debian-Security:12/stable-security [amd64])",
            "Inst openssh-server:amd64 [1:9.2p1-2+deb12u6] (1:9.2p1-2+deb12u7 Debian:12.12/stable [amd64])",
            "Inst steam-libs-i386:i386 [1:1.0.0.78] (1:1.0.0.79 Steam launcher:repo.steampowered.com [i386])",
            "Inst local-tool [1.0] (1.1 [all])",
            "Inst tzdata [2025a-0+deb12u1] (2025b-0+deb12u1 Debian:12-updates/stable-updates [all])",
            "Inst mirror-pkg [1] (2 Debian-Security:bookworm-security/bookworm-security [amd64])",
            "Inst old-pkg [1] (2 Debian-Security:12/oldstable-security [amd64])",
            not_upgraded=2,
        )
        + "Conf base-files (12.4+deb12u12 Debian:12.12/stable [amd64])\nRemv old-kernel [6.1.0-37]\n"
    )
    upgrades, not_upgraded = us.parse_simulation(text)
    assert not_upgraded == 2
    assert [(u.name, u.old, u.new, u.security) for u in upgrades] == [
        ("base-files", "12.4+deb12u11", "12.4+deb12u12", False),
        ("libc6", "2.36-9+deb12u10", "2.36-9+deb12u13", True),
        ("perl", "5.36.0-7+deb12u2", "5.36.0-7+deb12u3", True),
        ("linux-image-6.1.0-41-amd64", None, "6.1.158-1", True),
        ("openssh-server:amd64", "1:9.2p1-2+deb12u6", "1:9.2p1-2+deb12u7", False),
        ("steam-libs-i386:i386", "1:1.0.0.78", "1:1.0.0.79", False),
        ("local-tool", "1.0", "1.1", False),
        ("tzdata", "2025a-0+deb12u1", "2025b-0+deb12u1", False),
        ("mirror-pkg", "1", "2", True),
        ("old-pkg", "1", "2", True),
    ]
    assert upgrades[5].origins == ("Steam launcher:repo.steampowered.com",)
    assert upgrades[1].origins == ("Debian:12.12/stable", "Debian-Security:12/stable-security")


@pytest.mark.parametrize(
    ("origin", "security"),
    [
        ("Debian-Security:12/stable-security", True),
        ("Debian-Security:12/oldstable-security", True),
        ("Debian:12/bookworm-security", True),
        ("Debian:12.12/stable", False),
        ("Debian:12-updates/stable-updates", False),
        ("Debian-Security:12/stable", False),  # the label alone proves nothing
        ("security.example:1/security-tools", False),
        ("", False),
    ],
)
def test_is_security(origin, security):
    assert us.is_security(origin) is security


def test_the_summary_with_downgrades():
    text = "0 upgraded, 0 newly installed, 1 downgraded, 0 to remove and 3 not upgraded.\n"
    assert us.parse_simulation(text) == ([], 3)


# --------------------------------------------------------------------- command line


def test_cli_pending_prints_json(paths, capsys):
    status, log = paths
    argv = ["--status-file", str(status), "--log-file", str(log), "pending"]
    run = runner_for(SIMULATION)
    assert (
        us.main(argv, runner=run, fingerprint=run.fingerprint, now=lambda: NOW, reboot_file=str(log.parent / "no")) == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert (printed["security"], printed["other"], printed["reboot_required"]) == (85, 53, False)


def test_cli_begin_record_show(paths, capsys):
    status, log = paths
    base = ["--status-file", str(status), "--log-file", str(log)]
    log.write_text("")
    assert us.main([*base, "begin"], now=lambda: DOWNLOAD_ONLY - 5) == 0
    append(log, DAILY)
    run = runner_for(SIMULATION)
    assert us.main([*base, "record"], env=SUCCESS, now=lambda: NOW, running=lambda: False, runner=run) == 0
    assert len(run.calls) == 1  # the new run refreshed the pending upgrades
    assert (
        capsys.readouterr().out
        == "tomwerk-updates-status: run of 2026-11-21 18:26:32 succeeded, 0 package(s) upgraded\n"
    )
    assert us.main([*base, "show"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["last_success_timestamp"], shown["last_run_success"]) == (NOTHING, True)


def test_show_without_a_status_file_creates_nothing(paths, capsys):
    status, _ = paths
    assert us.main(["--status-file", str(status), "show"]) == 0
    assert json.loads(capsys.readouterr().out) == {}
    assert not status.parent.exists()


def test_unattended_upgrade_running_reads_the_lock(tmp_path):
    lock = tmp_path / "unattended-upgrades.lock"
    assert us.unattended_upgrade_running(str(lock)) is False  # never ran since boot
    lock.touch()
    assert us.unattended_upgrade_running(str(lock)) is False
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl,sys,time;f=open(sys.argv[1],'r+');fcntl.lockf(f,fcntl.LOCK_EX);"
         "print('locked',flush=True);time.sleep(30)", str(lock)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert us.unattended_upgrade_running(str(lock)) is True
    finally:
        holder.kill()
        holder.wait()


def test_only_the_standard_library():
    for node in ast.walk(ast.parse(SCRIPT.read_text())):
        if isinstance(node, ast.Import):
            assert all(a.name.split(".")[0] in sys.stdlib_module_names for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.module == "__future__" or node.module.split(".")[0] in sys.stdlib_module_names


@pytest.mark.skipif(not shutil.which("python3.11"), reason="no Python 3.11 interpreter on this machine")
def test_runs_as_installed_with_python_311(paths, tmp_path):
    """As the role installs it: the file alone, executed by Debian 12's Python (apt-get is a stand-in)."""
    status, log = paths
    installed = tmp_path / "tomwerk-updates-status"
    shutil.copyfile(SCRIPT, installed)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "apt-get").write_text(f"#!/bin/sh\nexec cat {FIXTURES / 'apt-get-s-dist-upgrade.txt'}\n")
    (bin_dir / "apt-get").chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "TZ": "Europe/Berlin", "PYTHONDONTWRITEBYTECODE": "1"}
    base = ["python3.11", str(installed), "--status-file", str(status), "--log-file", str(log)]
    proc = subprocess.run([*base, "record"], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "tomwerk-updates-status: run of 2026-11-21 18:26:32 succeeded, 0 package(s) upgraded\n"
    assert status_of(status)["last_success_timestamp"] == NOTHING
    proc = subprocess.run([*base, "pending"], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (json.loads(proc.stdout)["security"], json.loads(proc.stdout)["other"]) == (85, 53)
