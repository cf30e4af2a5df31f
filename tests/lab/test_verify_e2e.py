"""Scheduled verification on the admin host (TOM-MON-01): the installed unit
runs the compliance suite from monitor1 over SSH against a server, writes
JUnit, result.json and the evidence report into a new run directory, moves
`latest`, and a failing check shows as a failing TOM in the result.

The run is narrowed to one host and one family with a runtime drop-in
(TOMWERK_VERIFY_SCOPE), so it costs seconds, not the whole suite.
"""

from __future__ import annotations

import json
import shlex

import pytest

from tests.lab.conftest import lab_host

ADMIN = "monitor1"
TARGET = "backup-berlin"
RESULTS = "/var/lib/tomwerk/verify"
DROPIN = "/run/systemd/system/tomwerk-verify.service.d/test-scope.conf"


@pytest.fixture(scope="module")
def admin():
    return lab_host(ADMIN)


def scheduled_run(admin, scope: str) -> dict:
    """Start the real unit with a narrowed scope; return the newest result."""
    before = admin.run(f"readlink {RESULTS}/latest").stdout.strip()
    admin.check_output(
        f"mkdir -p {DROPIN.rsplit('/', 1)[0]} && printf '%s\\n' '[Service]' "
        f"{shlex.quote('Environment=' + shlex.quote('TOMWERK_VERIFY_SCOPE=' + scope))} > {DROPIN}"
    )
    try:
        admin.check_output("systemctl daemon-reload")
        # A oneshot: `start` returns when the run is over; exit 1 (checks failed) counts as success.
        started = admin.run("systemctl start tomwerk-verify.service")
        # The journal keeps nothing (log_privacy); the unit's output is in syslog.
        assert started.rc == 0, admin.run("grep tomwerk-verify /var/log/syslog | tail -n 40").stdout
    finally:
        admin.run(f"rm -f {DROPIN} && systemctl daemon-reload")
    latest = admin.check_output(f"readlink {RESULTS}/latest")
    assert latest and latest != before, "the run did not move `latest`"
    return json.loads(admin.file(f"{RESULTS}/latest/result.json").content_string)


@pytest.mark.tom("TOM-MON-01")
def test_the_timer_is_scheduled(admin):
    timer = admin.check_output("systemctl show tomwerk-verify.timer -p ActiveState -p NextElapseUSecRealtime")
    assert "ActiveState=active" in timer
    assert "NextElapseUSecRealtime=" in timer and not timer.endswith("NextElapseUSecRealtime=")


@pytest.mark.tom("TOM-MON-01")
def test_a_scheduled_run_leaves_junit_result_and_report(admin):
    result = scheduled_run(admin, f"--hosts={TARGET} -- -k test_sshd_allows_keys_only")
    assert list(result["hosts"]) == [TARGET]
    checks = result["hosts"][TARGET]["toms"]["TOM-SSH-01"]["checks"]
    assert checks and all(c["outcome"] == "pass" for c in checks), checks
    assert checks[0]["observed"], "the check recorded no evidence"
    for name in ("junit.xml", "result.json", "report.de.html", "report.de.md"):
        assert admin.file(f"{RESULTS}/latest/{name}").size > 0, name
    assert "TOM-SSH-01" in admin.file(f"{RESULTS}/latest/report.de.md").content_string
    # On the admin host the run reads the access journal (counts only) as organisational evidence.
    journal = result["organisational"]["/var/lib/tomwerk/access-journal.jsonl"]
    assert journal is not None and journal["intact"] is True, journal


@pytest.mark.tom("TOM-MON-01")
def test_drift_on_a_server_fails_the_scheduled_run(admin):
    """Password login switched on behind Ansible's back: the next run reports TOM-SSH-01 as failed."""
    target = lab_host(TARGET)
    # The role's sshd_config includes no drop-ins; sshd takes the first value it reads.
    config, saved = "/etc/ssh/sshd_config", "/root/sshd_config.before-drift"
    target.check_output(f"cp -p {config} {saved} && sed -i '1i PasswordAuthentication yes' {config}")
    try:
        target.check_output("sshd -t && systemctl reload ssh")
        result = scheduled_run(admin, f"--hosts={TARGET} -- -k test_sshd_allows_keys_only")
    finally:
        target.check_output(f"mv {saved} {config} && sshd -t && systemctl reload ssh")
    assert result["pytest_exit_code"] == 1
    tom = result["hosts"][TARGET]["toms"]["TOM-SSH-01"]
    assert tom["status"] == "fail"
    # Failed because of the drift, seen on the host, not because the run broke.
    assert [c["outcome"] for c in tom["checks"]] == ["fail"]
    assert tom["checks"][0]["observed"]["sshd -T"]["passwordauthentication"] == "yes"
