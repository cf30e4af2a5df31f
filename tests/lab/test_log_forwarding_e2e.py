"""TOM-LOG-03 in the lab: with rsyslog stopped on log1, 10,000 lines are written on web1;
once log1 is back, every one of them arrives, anonymised, none lost."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import shlex
import time

import pytest
import testinfra

LINES = 10_000


def wait_for(check, timeout: float, step: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


@pytest.mark.tom("TOM-LOG-03")
def test_an_outage_of_the_log_server_loses_nothing():
    web1 = testinfra.get_host("nsenter://web1")
    log1 = testinfra.get_host("nsenter://log1")
    token = secrets.token_hex(4)
    day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    path = f"/var/log/remote/web1/{day}.log"
    log1.check_output("systemctl stop rsyslog.service")
    try:
        # each line with an address of its own: 192.0.<n/256>.<n%256>
        awk = f'{{print "outage {token} " $1 " from 192.0." int($1/256)%256 "." $1%256}}'
        web1.check_output(f"sh -c {shlex.quote(f'seq {LINES} | awk {shlex.quote(awk)} | logger -t tomwerk-e2e')}")
        # every line is anonymised and waits in web1's queue
        written = wait_for(
            lambda: int(web1.check_output(f"grep -c 'outage {token} ' /var/log/syslog || true") or 0) >= LINES,
            timeout=60,
        )
        assert written, "web1 did not write all lines itself"
    finally:
        log1.check_output("systemctl start rsyslog.service")

    def arrived() -> set[int]:
        out = log1.run(f"grep -h 'outage {token} ' {path}").stdout
        return {int(m) for m in re.findall(rf"outage {token} (\d+) from 0$", out, re.MULTILINE)}

    got = wait_for(lambda: len(arrived()) >= LINES, timeout=90)
    seen = arrived()
    assert got, f"{LINES - len(seen)} of {LINES} lines did not arrive on log1"
    assert seen == set(range(1, LINES + 1))
    assert log1.run(f"grep -c 'outage {token} .*192\\.0\\.' {path}").stdout.strip() == "0"
