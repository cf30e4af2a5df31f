"""TOM-LOG-03 in the lab: with log1's rsyslog and its socket stopped (the RELP port
closed), 10,000 lines are written on web1; once log1 is back, every one of them
arrives, anonymised, once, none lost."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import shlex
import time

import pytest

from tests.compliance.test_log_privacy import wait_for
from tests.lab.conftest import lab_host

LINES = 10_000
LOG_SERVER = "log1.lab.tomwerk.test"
RELP_PORT = 6514


@pytest.mark.tom("TOM-LOG-03")
def test_an_outage_of_the_log_server_loses_nothing():
    web1 = lab_host("web1")
    log1 = lab_host("log1")
    token = secrets.token_hex(4)
    day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    path = f"/var/log/remote/web1/{day}.log"
    # rsyslog.service alone comes straight back: syslog.socket starts it again at
    # the next journal message. Both go down, and the RELP port must be closed.
    log1.check_output("systemctl stop syslog.socket rsyslog.service")
    try:
        assert log1.check_output("systemctl is-active rsyslog.service syslog.socket || true").split() == [
            "inactive",
            "inactive",
        ]
        time.sleep(3)  # long enough for socket activation to have brought it back
        probe = web1.run(f"timeout 5 bash -c 'exec 3<>/dev/tcp/{LOG_SERVER}/{RELP_PORT}'")
        assert probe.rc != 0, f"port {RELP_PORT} on log1 still accepts connections during the outage"
        assert log1.check_output(f"ss -Htln 'sport = :{RELP_PORT}'") == "", "log1 still listens on the RELP port"
        # each line with an address of its own: 192.0.<n/256>.<n%256>
        awk = f'{{print "outage {token} " $1 " from 192.0." int($1/256)%256 "." $1%256}}'
        web1.check_output(f"sh -c {shlex.quote(f'seq {LINES} | awk {shlex.quote(awk)} | logger -t tomwerk-e2e')}")
        # every line is anonymised and waits in web1's queue
        written = wait_for(
            lambda: int(web1.check_output(f"grep -c 'outage {token} ' /var/log/syslog || true") or 0) >= LINES,
            timeout=60,
            step=1.0,
        )
        assert written, "web1 did not write all lines itself"
    finally:
        log1.check_output("systemctl start syslog.socket rsyslog.service")

    def arrived() -> set[int]:
        out = log1.run(f"grep -h 'outage {token} ' {path}").stdout
        return {int(m) for m in re.findall(rf"outage {token} (\d+) from 0$", out, re.MULTILINE)}

    got = wait_for(lambda: len(arrived()) >= LINES, timeout=90, step=1.0)
    seen = arrived()
    assert got, f"{LINES - len(seen)} of {LINES} lines did not arrive on log1"
    assert seen == set(range(1, LINES + 1))
    total = int(log1.check_output(f"grep -c 'outage {token} ' {path}"))
    assert total == LINES, f"{total - LINES} lines arrived twice"
    assert log1.run(f"grep -c 'outage {token} .*192\\.0\\.' {path}").stdout.strip() == "0"


@pytest.mark.tom("TOM-LOG-03")
def test_a_restart_does_not_hang_while_the_log_server_is_silent(evidence):
    """rsyslog restarts in seconds while the log server drops packets mid-session (no 90 s stop hang)."""
    web1 = lab_host("web1")
    log1 = lab_host("log1")
    web1.check_output("logger -t tomwerk-e2e session-up")  # an established RELP session
    time.sleep(2)
    log1.check_output(f"nft insert rule inet tomwerk input tcp dport {RELP_PORT} drop comment '\"tomwerk-e2e-silent\"'")
    try:
        web1.check_output("logger -t tomwerk-e2e waits-for-an-ack")
        time.sleep(2)
        started = time.monotonic()
        web1.check_output("systemctl restart rsyslog.service")
        took = time.monotonic() - started
    finally:
        handles = log1.check_output("nft -a list chain inet tomwerk input | grep tomwerk-e2e-silent || true")
        for handle in re.findall(r"# handle (\d+)", handles):
            log1.check_output(f"nft delete rule inet tomwerk input handle {handle}")
    evidence("restart seconds", round(took, 1))
    assert took < 30, f"restarting rsyslog took {took:.0f} s while the log server was silent"
