"""The retention collector (TOM-RET-01) on a recorded host, and the role's sweep command.

Fixtures in tests/unit/fixtures/exporter/retention: the state file the role wrote on the
lab's log server (classes web_access, logs, attack, journal) and log lines in every
format the parsers know, each with the Unix time it must give (heads.txt).
"""

from __future__ import annotations

import gzip
import importlib
import importlib.machinery
import importlib.util
import os
import struct
import subprocess
from pathlib import Path

import pytest

from tests.unit import hostpkg
from tests.unit.exporter_helpers import FIXTURES, STATE_DIR, DictHost, run_alone

retention = importlib.import_module("tomwerk_host.exporter.collectors.retention")
logtime = importlib.import_module("tomwerk_host.logtime")

RET = FIXTURES / "retention"
STATE = f"{STATE_DIR}/retention.json"
NOW = 1_795_330_000.0
DAY = 86400


sweep = importlib.import_module("tomwerk_host.retention")


def heads() -> list[tuple[bytes, float | None]]:
    cases = []
    for line in (RET / "heads.txt").read_text().splitlines():
        if line.startswith("#"):
            continue
        text, expected = line.rsplit("\t", 1)
        cases.append((text.encode(), None if expected == "-" else float(expected)))
    return cases


def line_at(at: float, host: str = "web1") -> bytes:
    import datetime as dt

    stamp = dt.datetime.fromtimestamp(at, dt.UTC).isoformat()
    return f"{stamp} {host} tag: message\n".encode()


def journal_header(head_usec: int) -> bytes:
    header = bytearray(256)
    header[:8] = b"LPKSHHRH"
    struct.pack_into("<Q", header, 184, head_usec)
    return bytes(header)


class RetHost(DictHost):
    """Files as bytes with mtimes; counts the head reads."""

    def __init__(self):
        super().__init__({STATE: (RET / "retention.json").read_bytes()})
        self.inodes: dict[str, int] = {}
        self.reads: list[str] = []
        self.denied: set[str] = set()
        self.add("/var/log/syslog", line_at(NOW - 3600))
        self.add("/var/log/syslog.1", line_at(NOW - 1.5 * DAY))
        self.add("/var/log/syslog.2.gz", gzip.compress(line_at(NOW - 2.5 * DAY) + line_at(NOW - 2 * DAY)))
        self.add("/var/log/auth.log", b"")
        self.add(
            "/var/log/nginx/access.log", b'0.0.0.0 - - [22/Nov/2026:06:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"\n'
        )
        self.add("/var/log/tomwerk/attack.log", line_at(NOW - 600))
        self.add("/var/log/remote/web1/2026-11-20.log", line_at(NOW - 2 * DAY))

    def add(self, path: str, content: bytes, mtime: float | None = None) -> None:
        self.files[path] = content
        self.mtimes[path] = NOW - 60 if mtime is None else mtime
        self.inodes[path] = len(self.inodes) + 100

    def read_text(self, path):
        if path not in self.files:
            raise FileNotFoundError(2, "No such file", path)
        return self.files[path].decode()

    def read_bytes(self, path, offset, limit):
        if path not in self.files:
            raise FileNotFoundError(2, "No such file", path)
        if path in self.denied:
            raise PermissionError(13, "Permission denied", path)
        self.reads.append(path)
        return self.files[path][offset : offset + limit]

    def stat(self, path):
        if path in self.files:
            mtime = self.mtimes.get(path, 0)
            size = len(self.files[path])
            return os.stat_result((0o100640, self.inodes.get(path, 1), 0, 1, 0, 0, size, mtime, mtime, mtime))
        if any(p.startswith(path.rstrip("/") + "/") for p in self.files):
            return os.stat_result((0o40755, 2, 0, 1, 0, 0, 4096, 0, 0, 0))
        raise FileNotFoundError(2, "No such file", path)


def run(host: RetHost, collector=None, now: float = NOW):
    outcome = run_alone(collector or retention.RetentionCollector(now=lambda: now), host, now)
    samples = {(s.name, dict(s.labels).get("class")): s.value for s in outcome.samples}
    return outcome, samples


# --------------------------------------------------------------------- parsing


@pytest.mark.parametrize(("line", "expected"), heads(), ids=lambda v: v[:30].decode() if isinstance(v, bytes) else "")
def test_timestamp_formats(line, expected):
    assert logtime.entry_time(line, NOW) == expected


def test_sweep_and_collector_share_one_parser():
    """The limit that deletes (the sweep) and the figure that proves (the collector) read
    every line with the same code: tomwerk_host.logtime."""
    for name in ("head_bytes", "oldest_in_head"):
        assert getattr(retention, name) is getattr(logtime, name), name
        assert getattr(sweep, name) is getattr(logtime, name), name


def test_gzip_head_and_journal_header():
    assert logtime.oldest_in_head(logtime.head_bytes(gzip.compress(line_at(NOW - DAY)), True), NOW) == (
        NOW - DAY,
        True,
    )
    assert logtime.head_bytes(b"not gzip", True) == b""
    assert logtime.oldest_in_head(journal_header(int((NOW - 5 * DAY) * 1e6)), NOW) == (NOW - 5 * DAY, True)
    assert logtime.oldest_in_head(b"\n\n", NOW) == (None, False)


# --------------------------------------------------------------------- the collector


def test_compliant_log_server():
    outcome, samples = run(RetHost())
    assert outcome.error is None
    assert outcome.toms == {"TOM-RET-01": True}
    assert samples[("tomwerk_retention_oldest_entry_age_seconds", "logs")] == pytest.approx(2.5 * DAY)
    assert samples[("tomwerk_retention_oldest_entry_age_seconds", "web_access")] == pytest.approx(NOW - 1795327200)
    assert samples[("tomwerk_retention_oldest_entry_age_seconds", "attack")] == pytest.approx(600)
    assert samples[("tomwerk_retention_oldest_entry_age_seconds", "journal")] == 0  # Storage=none: no files
    assert samples[("tomwerk_retention_files", "journal")] == 0
    assert samples[("tomwerk_retention_files", "logs")] == 5  # syslog, .1, .2.gz, auth.log (empty), remote day file
    assert samples[("tomwerk_retention_limit_seconds", "web_access")] == 7 * DAY
    assert samples[("tomwerk_retention_limit_seconds", "logs")] == 14 * DAY
    assert samples[("tomwerk_retention_limit_seconds", "attack")] == 7 * DAY


def _old_access(h):
    h.add("/var/log/nginx/access.log.3.gz", gzip.compress(b"x\n"), mtime=NOW - 10 * DAY)  # no stamp: mtime
    h.add("/var/log/nginx/access.log.2.gz", gzip.compress(b'0.0.0.0 - - [12/Nov/2026:06:46:40 +0000] "GET /"\n'))


# id: (drift, class, expected age)
DRIFTS = {
    "web access log 10 days old (nginx format, and mtime)": (_old_access, "web_access", 10 * DAY),
    "rotated syslog 20 days old (traditional format)": (
        lambda h: h.add("/var/log/syslog.13.gz", gzip.compress(b"Nov  2 06:46:40 web1 CRON[1]: x\n")),
        "logs",
        20 * DAY,
    ),
    "remote day file 15 days old": (
        lambda h: h.add("/var/log/remote/mail1/2026-11-07.log", line_at(NOW - 15 * DAY)),
        "logs",
        15 * DAY,
    ),
    "attack log entry 8 days old": (
        lambda h: h.add("/var/log/tomwerk/attack.log.20261114T064640", line_at(NOW - 8 * DAY)),
        "attack",
        8 * DAY,
    ),
    "persistent journal 20 days old": (
        lambda h: h.add("/var/log/journal/abc/system@x.journal", journal_header(int((NOW - 20 * DAY) * 1e6))),
        "journal",
        20 * DAY,
    ),
}


@pytest.mark.parametrize("case", list(DRIFTS))
def test_an_entry_beyond_its_class_limit_fails(case):
    drift, klass, age = DRIFTS[case]
    host = RetHost()
    drift(host)
    outcome, samples = run(host)
    assert outcome.error is None
    assert outcome.toms == {"TOM-RET-01": False}
    assert samples[("tomwerk_retention_oldest_entry_age_seconds", klass)] == pytest.approx(age)


def test_heads_are_cached_by_inode_size_and_mtime():
    host = RetHost()
    collector = retention.RetentionCollector(now=lambda: NOW)
    run(host, collector)
    first = len(host.reads)
    assert first == 7  # every non-state file once
    run(host, collector)
    assert len(host.reads) == first  # nothing changed: no file read again
    host.files["/var/log/syslog"] += line_at(NOW)  # appended: read that one again
    run(host, collector)
    assert host.reads[first:] == ["/var/log/syslog"]


def test_a_vanished_file_is_no_error():
    host = RetHost()
    collector = retention.RetentionCollector(now=lambda: NOW)
    run(host, collector)
    del host.files["/var/log/syslog.1"]
    outcome, _ = run(host, collector)
    assert outcome.error is None and outcome.toms == {"TOM-RET-01": True}
    assert "/var/log/syslog.1" not in collector._cache


def test_an_unreadable_file_counts_by_its_mtime():
    host = RetHost()
    host.add("/var/log/clamav/freshclam.log", line_at(NOW - DAY), mtime=NOW - 16 * DAY)
    host.denied.add("/var/log/clamav/freshclam.log")
    outcome, samples = run(host)
    assert outcome.error is None and outcome.toms == {"TOM-RET-01": False}
    assert samples[("tomwerk_retention_oldest_entry_age_seconds", "logs")] == pytest.approx(16 * DAY)
    assert samples[("tomwerk_retention_unreadable_files", "logs")] == 1
    assert samples[("tomwerk_retention_unreadable_files", "web_access")] == 0


@pytest.mark.parametrize(
    "classes",
    [
        [],
        [{"name": "logs", "limit_days": "14", "paths": ["/var/log/syslog*"]}],
        [{"name": "logs", "limit_days": True, "paths": ["/var/log/syslog*"]}],
        [{"name": "Logs!", "limit_days": 14, "paths": ["/var/log/syslog*"]}],
        [{"name": "logs", "limit_days": 14, "paths": ["var/log/syslog*"]}],
    ],
)
def test_a_broken_state_file_is_an_error_not_a_crash(classes):
    import json

    host = RetHost()
    data = json.loads(host.files[STATE])
    data["vars"]["retention_classes"] = classes
    host.files[STATE] = json.dumps(data).encode()
    outcome, _ = run(host)
    assert outcome.error and "retention_classes" in outcome.error
    assert outcome.toms == {"TOM-RET-01": False}


# --------------------------------------------------------------------- the sweep command


def test_sweep_deletes_rotated_files_beyond_the_limit(tmp_path: Path):
    logs = tmp_path / "log"
    logs.mkdir()
    (logs / "syslog").write_bytes(line_at(NOW - 20 * DAY))  # live: never deleted by the sweep
    (logs / "syslog.1").write_bytes(line_at(NOW - 1.5 * DAY))
    (logs / "syslog.13.gz").write_bytes(gzip.compress(line_at(NOW - 13.99 * DAY)))  # within the hour's margin
    (logs / "syslog.12.gz").write_bytes(gzip.compress(line_at(NOW - 12 * DAY)))
    (logs / "syslog.20").write_bytes(b"no stamp\n")
    os.utime(logs / "syslog.20", (NOW - 20 * DAY, NOW - 20 * DAY))
    state = tmp_path / "retention.json"
    state.write_text(
        '{"role": "retention", "toms": ["TOM-RET-01"], "vars": {"retention_sweep_margin_seconds": 3600,'
        f' "retention_classes": [{{"name": "logs", "limit_days": 14, "paths": ["{logs}/syslog*"],'
        f' "expire": ["{logs}/syslog.*"]}}]}}}}'
    )
    result = subprocess.run(
        [*hostpkg.command("retention"), "enforce", "--state", str(state), "--now", str(NOW)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert sorted(p.name for p in logs.iterdir()) == ["syslog", "syslog.1", "syslog.12.gz"]
    assert result.stdout.count("deleted") == 2
    oldest = subprocess.run(
        [*hostpkg.command("retention"), "oldest", "--state", str(state), "--now", str(NOW)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"oldest_entry_age_seconds": 1728000.0' in oldest.stdout  # the live file's 20 days
