"""The log-privacy collector (TOM-LOG-01, TOM-LOG-02) on files made in a temporary directory:
incremental scans (only new bytes, rotation, truncation, a line cut in two), the age of the
oldest attack-log entry, and the verdicts."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os

import pytest

from tomwerk import ROOT
from tomwerk_host.exporter import core

logs = importlib.import_module("tomwerk_host.exporter.collectors.logs")

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC).timestamp()
DAY = 86400


class CountingHost(core.Host):
    def __init__(self):
        self.read = []

    def read_bytes(self, path, offset, limit):
        data = super().read_bytes(path, offset, limit)
        self.read.append((path, offset, len(data)))
        return data


@pytest.fixture
def setup(tmp_path):
    (tmp_path / "log" / "tomwerk").mkdir(parents=True)
    (tmp_path / "log" / "remote" / "web1").mkdir(parents=True)
    variables = {
        "log_privacy_attack_log": str(tmp_path / "log" / "tomwerk" / "attack.log"),
        "log_privacy_attack_retention_days": 7,
        "log_privacy_anonymizer": str(ROOT / "tomwerk_host" / "anonymize.py"),
        "log_privacy_scanned_logs": [
            str(tmp_path / "log" / "*.log"),
            str(tmp_path / "log" / "*" / "*.log"),
            str(tmp_path / "log" / "remote" / "*" / "*.log"),
        ],
        "log_privacy_scan_excluded": [str(tmp_path / "log" / "dpkg.log*")],
    }
    state = core.State("log_privacy", ("TOM-LOG-01", "TOM-LOG-02"), variables, str(tmp_path))
    return tmp_path / "log", state


def stamp(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="microseconds")


def figures(report) -> dict:
    return {(s.name, s.labels): s.value for s in report.samples}


def test_excluded_files_are_not_scanned(setup):
    """A package version like 8.17.1.9-2 looks like an address; the package logs are left out."""
    log, state = setup
    line = "2026-11-21 19:18:13 install libmilter1.0.1:amd64 <none> 8.17.1.9-2+deb12u2\n"
    (log / "dpkg.log").write_text(line)
    report = logs.LogsCollector(now=lambda: NOW).check(state, core.Host())
    assert not report.failures.get("TOM-LOG-01")
    (log / "other.log").write_text(line)
    report = logs.LogsCollector(now=lambda: NOW).check(state, core.Host())
    assert report.failures.get("TOM-LOG-01")


def test_clean_logs_are_compliant(setup):
    log, state = setup
    (log / "auth.log").write_text("sshd: Accepted publickey for alice from 0 port 0\n")
    (log / "README").write_text("a file where */*.log looks for directories\n")
    (log / "remote" / "web1" / "2026-11-21.log").write_text("postfix: to=<x@x>, relay=[0]:25\n")
    (log / "tomwerk" / "attack.log").write_text(f"{stamp(NOW - 3600)} web1 sshd[1]: Invalid user eve from 192.0.2.7\n")
    os.chmod(log / "tomwerk" / "attack.log", 0o640)
    report = logs.LogsCollector(now=lambda: NOW).check(state, core.Host())
    assert all(not reasons for reasons in report.failures.values()), report.failures
    got = figures(report)
    assert got[("tomwerk_log_pii_lines", (("file", str(log / "auth.log")),))] == 0
    assert got[("tomwerk_log_scanned_files", ())] == 2  # the attack log is not scanned
    assert got[("tomwerk_log_attack_oldest_entry_timestamp_seconds", ())] == pytest.approx(NOW - 3600)
    assert got[("tomwerk_log_attack_retention_seconds", ())] == 7 * DAY


def test_scan_is_incremental_and_follows_rotation(setup):
    log, state = setup
    path = log / "syslog.log"
    path.write_bytes(b"clean line\nleak from 192.0.2.1\n")
    host = CountingHost()
    collector = logs.LogsCollector(now=lambda: NOW)
    key = ("tomwerk_log_pii_lines", (("file", str(path)),))
    assert figures(collector.check(state, host))[key] == 1
    # nothing new: nothing read
    host.read.clear()
    collector.check(state, host)
    assert [r for r in host.read if r[0] == str(path)] == []
    # appended: only the new bytes, and a line cut in two counts once, when complete
    with open(path, "ab") as f:
        f.write(b"to=<bob@exa")
    assert figures(collector.check(state, host))[key] == 1
    with open(path, "ab") as f:
        f.write(b"mple.org>\nclean\n")
    host.read.clear()
    report = collector.check(state, host)
    assert figures(report)[key] == 2
    assert [r[1:] for r in host.read if r[0] == str(path)] == [(42, 16)]
    assert report.failures["TOM-LOG-01"] and str(path) in report.failures["TOM-LOG-01"][0]
    assert "192.0.2.1" not in json.dumps(report.failures)
    # rotated: a new inode starts over
    os.rename(path, log / "syslog.log.1")
    path.write_bytes(b"clean again\n")
    report = collector.check(state, host)
    assert figures(report)[key] == 0
    assert not report.failures["TOM-LOG-01"]


def test_truncated_file_starts_over(setup):
    log, state = setup
    path = log / "mail.log"
    path.write_bytes(b"from=<alice@example.org>\n" * 3)
    collector = logs.LogsCollector(now=lambda: NOW)
    key = ("tomwerk_log_pii_lines", (("file", str(path)),))
    assert figures(collector.check(state, core.Host()))[key] == 3
    with open(path, "r+b") as f:
        f.truncate(0)
    path.write_bytes(b"ok\n")
    assert figures(collector.check(state, core.Host()))[key] == 0


def test_large_backlog_is_read_in_bounded_steps(setup):
    log, state = setup
    path = log / "big.log"
    path.write_bytes(b"x" * 99 + b"\n" + b"from 192.0.2.1\n")
    host = CountingHost()
    collector = logs.LogsCollector(now=lambda: NOW, max_bytes=50)
    key = ("tomwerk_log_pii_lines", (("file", str(path)),))
    counts = [figures(collector.check(state, host))[key] for _ in range(4)]
    assert counts == [0, 0, 1, 1]
    assert all(r[2] <= 50 for r in host.read)


def test_cleanup_and_collector_read_the_attack_log_alike():
    """The cleanup that deletes (tomwerk-log-privacy) and the figure that proves date entries
    and find rotated files with the same code."""
    from tomwerk_host import log_privacy

    assert logs.entry_time is log_privacy.entry_time
    assert logs.ROTATED_SUFFIX_RE is log_privacy.ROTATED_SUFFIX_RE


def test_old_attack_entry_is_a_finding(setup):
    log, state = setup
    live = log / "tomwerk" / "attack.log"
    live.write_text(f"{stamp(NOW - 60)} web1 sshd[1]: Invalid user eve from 192.0.2.7\n")
    os.chmod(live, 0o640)
    rotated = log / "tomwerk" / "attack.log.20261113T110000"
    rotated.write_text(f"{stamp(NOW - 8 * DAY)} web1 sshd[1]: Invalid user eve from 192.0.2.7\n")
    report = logs.LogsCollector(now=lambda: NOW).check(state, core.Host())
    assert report.failures["TOM-LOG-02"] == ["the attack log holds an entry older than 7 days"]
    assert figures(report)[("tomwerk_log_attack_oldest_entry_timestamp_seconds", ())] == pytest.approx(NOW - 8 * DAY)


def test_world_readable_attack_log_is_a_finding(setup):
    log, state = setup
    live = log / "tomwerk" / "attack.log"
    live.write_text("")
    os.chmod(live, 0o644)
    report = logs.LogsCollector(now=lambda: NOW).check(state, core.Host())
    assert any("readable" in r for r in report.failures["TOM-LOG-02"])
    assert ("tomwerk_log_attack_oldest_entry_timestamp_seconds", ()) not in figures(report)


def test_broken_state_is_refused(setup):
    _, state = setup
    state.vars["log_privacy_attack_retention_days"] = 30
    with pytest.raises(core.StateError):
        logs.LogsCollector(now=lambda: NOW).check(state, core.Host())


def test_unreadable_file_is_a_finding_not_a_crash(setup, monkeypatch):
    log, state = setup
    (log / "auth.log").write_text("clean\n")
    (log / "nginx.log").write_text("clean\n")

    class Host(core.Host):
        def read_bytes(self, path, offset, limit):
            if path.endswith("nginx.log"):
                raise PermissionError(13, "Permission denied")
            return super().read_bytes(path, offset, limit)

    report = logs.LogsCollector(now=lambda: NOW).check(state, Host())
    assert report.failures["TOM-LOG-01"] == [f"cannot read {log / 'nginx.log'} (Permission denied)"]
    assert not report.failures["TOM-LOG-02"]


PROC_NET_TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0B00E70A:87C6 0E00E70A:1972 01 00000000:00000000 00:00000000 00000000     0        0 1 1 0
   1: 0B00E70A:EAFE 0E00E70A:1972 08 00000000:00000000 00:00000000 00000000     0        0 2 1 0
"""


@pytest.mark.parametrize(("state_code", "connected"), [("01", 1), ("08", 0)])
def test_forwarding_figures(setup, tmp_path, state_code, connected):
    _, state = setup
    (tmp_path / "log_forwarding.json").write_text(
        json.dumps(
            {
                "role": "log_forwarding",
                "toms": ["TOM-LOG-03"],
                "vars": {
                    "log_forwarding_port": "6514",
                    "log_forwarding_queue_dir": str(tmp_path / "spool"),
                    "log_forwarding_queue_files": ["tomwerk_fwd", "tomwerk_fwd_attack"],
                },
            }
        )
    )
    (tmp_path / "spool").mkdir()
    (tmp_path / "spool" / "tomwerk_fwd.00000001").write_bytes(b"x" * 100)
    (tmp_path / "spool" / "tomwerk_fwd_attack.qi").write_bytes(b"x" * 20)
    (tmp_path / "spool" / "imfile-state:1").write_bytes(b"x" * 7)
    table = PROC_NET_TCP.replace(" 01 ", f" {state_code} ", 1)

    class Host(core.Host):
        def read_text(self, path):
            return table if path == "/proc/net/tcp" else "" if path == "/proc/net/tcp6" else super().read_text(path)

    report = logs.LogsCollector(now=lambda: NOW).check(state, Host())
    got = figures(report)
    assert got[("tomwerk_log_forwarding_connected", ())] == connected
    assert got[("tomwerk_log_forwarding_queue_bytes", ())] == 120
    # TOM-LOG-03 holds while the connection to the log server is up.
    assert bool(report.failures.get("TOM-LOG-03")) == (not connected)


PROC_NET_TCP_LISTEN = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  inode
   0: 0E00E70A:1972 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0
   1: 0E00E70A:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0
"""


@pytest.mark.parametrize(("port", "listening"), [(6514, 1), (6515, 0)])
def test_log_server_listening(setup, tmp_path, port, listening):
    _, state = setup
    server_state = {"role": "log_server", "toms": ["TOM-LOG-03"], "vars": {"log_server_port": port}}
    (tmp_path / "log_server.json").write_text(json.dumps(server_state))

    class Host(core.Host):
        def read_text(self, path):
            if path == "/proc/net/tcp":
                return PROC_NET_TCP_LISTEN
            return "" if path == "/proc/net/tcp6" else super().read_text(path)

    report = logs.LogsCollector(now=lambda: NOW).check(state, Host())
    assert figures(report)[("tomwerk_log_server_listening", ())] == listening
    assert bool(report.failures.get("TOM-LOG-03")) == (not listening)


def test_no_forwarding_figures_without_the_role(setup):
    _, state = setup
    got = figures(logs.LogsCollector(now=lambda: NOW).check(state, core.Host()))
    assert ("tomwerk_log_forwarding_connected", ()) not in got
