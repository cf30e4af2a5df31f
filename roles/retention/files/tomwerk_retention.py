#!/usr/bin/python3 -I
"""Log retention per class (role retention, TOM-RET-01). Standard library only.

tomwerk-retention enforce [--state FILE] [--now EPOCH]
    For every class in the state file (vars.retention_classes: name, limit_days, paths,
    expire), deletes each file matched by an `expire` glob whose oldest entry is older
    than the limit minus vars.retention_sweep_margin_seconds (the timer's period), so no
    entry outlives its limit. Prints one line per deleted file.
tomwerk-retention oldest [--state FILE]
    Prints JSON: per class the limit, the number of files and the age in seconds of the
    oldest entry present (null when no file holds an entry).

The oldest entry of a file is the timestamp of its first line that has one (logs are
appended to, so the first entry is the oldest): RFC 3339 (rsyslog), "YYYY-MM-DD HH:MM:SS"
(fail2ban), traditional syslog ("Nov 21 18:57:45", the year guessed as the latest that is
not in the future), nginx access ("[21/Nov/2026:18:57:45 +0000]") and error
("2026/11/21 18:57:45") logs, ClamAV ("Sat Nov 21 18:57:45 2026"); times without a zone
are UTC (the servers' zone). Only the first HEAD_BYTES (decompressed for .gz) are read.
A file without any parsable timestamp counts by its mtime; systemd journal files by
the head entry time in their header.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import re
import struct
import sys
import time
import zlib

DAY = 86400
HEAD_BYTES = 65536
STATE = "/etc/tomwerk/state/retention.json"
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}
_ISO = re.compile(rb"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,]\d+)?(Z|[+-]\d{2}:?\d{2})?")
_SLASHED = re.compile(rb"^(\d{4})/(\d{2})/(\d{2}) (\d{2}):(\d{2}):(\d{2})")
_CLAMAV = re.compile(rb"^[A-Z][a-z]{2} ([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{4})")
_SYSLOG = re.compile(rb"^([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2})\s")
_NGINX = re.compile(rb"\[(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})\]")
_JOURNAL_MAGIC = b"LPKSHHRH"
_JOURNAL_HEAD_REALTIME = 184  # offset of head_entry_realtime (usec, little endian) in the header


def _stamp(year, month, day, hour, minute, second, offset: int = 0) -> float | None:
    try:
        at = dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=dt.UTC)
    except (ValueError, OverflowError):
        return None
    return at.timestamp() - offset


def _zone(text: bytes | None) -> int:
    if not text or text == b"Z":
        return 0
    sign = -1 if text[:1] == b"-" else 1
    digits = text[1:].replace(b":", b"")
    return sign * (int(digits[:2]) * 3600 + int(digits[2:4]) * 60)


def entry_time(line: bytes, now: float) -> float | None:
    """Unix time of a log line's timestamp, or None when it has none we know."""
    if m := _ISO.match(line):
        return _stamp(*m.groups()[:6], offset=_zone(m.group(7)))
    if m := _SLASHED.match(line):
        return _stamp(*m.groups())
    if m := _CLAMAV.match(line):
        month = MONTHS.get(m.group(1).decode())
        return _stamp(m.group(6), month, *m.groups()[1:5]) if month else None
    if m := _SYSLOG.match(line):
        month = MONTHS.get(m.group(1).decode())
        if not month:
            return None
        year = dt.datetime.fromtimestamp(now, dt.UTC).year
        at = _stamp(year, month, *m.groups()[1:])
        if at is not None and at > now + DAY:  # "Dec 31" read in January
            at = _stamp(year - 1, month, *m.groups()[1:])
        return at
    if m := _NGINX.search(line[:512]):
        month = MONTHS.get(m.group(2).decode())
        offset = (1 if m.group(7) == b"+" else -1) * (int(m.group(8)) * 3600 + int(m.group(9)) * 60)
        return _stamp(m.group(3), month, m.group(1), *m.groups()[3:6], offset=offset) if month else None
    return None


def head_bytes(raw: bytes, gzipped: bool) -> bytes:
    """The first HEAD_BYTES of the content (decompressed if gzipped; b'' when that fails)."""
    if not gzipped:
        return raw[:HEAD_BYTES]
    try:
        return zlib.decompressobj(wbits=47).decompress(raw, HEAD_BYTES)
    except zlib.error:
        return b""


def oldest_in_head(head: bytes, now: float) -> tuple[float | None, bool]:
    """(time of the first timestamped line, whether the head holds any line)."""
    if head.startswith(_JOURNAL_MAGIC) and len(head) >= _JOURNAL_HEAD_REALTIME + 8:
        (usec,) = struct.unpack_from("<Q", head, _JOURNAL_HEAD_REALTIME)
        return (usec / 1e6 if usec else None), usec != 0
    lines = head.split(b"\n")
    if len(head) >= HEAD_BYTES:
        lines = lines[:-1]  # the last one may be cut off
    for line in lines:
        at = entry_time(line, now)
        if at is not None:
            return at, True
    return None, any(line.strip() for line in lines)


def oldest_entry(path: str, now: float) -> float | None:
    """Time of the file's oldest entry (mtime when none parses); None when it holds none."""
    with open(path, "rb") as handle:
        raw = handle.read(HEAD_BYTES)
        st = os.fstat(handle.fileno())
    if not raw:
        return None
    at, any_line = oldest_in_head(head_bytes(raw, path.endswith(".gz")), now)
    if at is not None:
        return at
    return st.st_mtime if any_line or path.endswith(".gz") else None


def files_of(patterns: list[str]) -> list[str]:
    found = set()
    for pattern in patterns:
        for path in glob.glob(pattern):
            if os.path.isfile(path) and not os.path.islink(path):
                found.add(path)
    return sorted(found)


def load_classes(path: str) -> tuple[list[dict], float]:
    with open(path, encoding="utf-8") as handle:
        state = json.load(handle)
    variables = state["vars"]
    classes = variables["retention_classes"]
    for item in classes:
        if not (isinstance(item.get("name"), str) and int(item["limit_days"]) >= 1):
            raise SystemExit(f"{path}: bad class {item!r}")
    return classes, float(variables.get("retention_sweep_margin_seconds", 3600))


def enforce(classes: list[dict], margin: float, now: float) -> list[str]:
    done = []
    for item in classes:
        cutoff = now - int(item["limit_days"]) * DAY + margin
        for path in files_of(item.get("expire", [])):
            try:
                oldest = oldest_entry(path, now)
                if oldest is None:
                    oldest = os.stat(path).st_mtime
                if oldest < cutoff:
                    os.unlink(path)
                    stamp = dt.datetime.fromtimestamp(oldest, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                    done.append(f"{item['name']}: deleted {path} (oldest entry {stamp})")
            except OSError as exc:
                print(f"{item['name']}: cannot check {path}: {exc}", file=sys.stderr)
    return done


def oldest(classes: list[dict], now: float) -> dict:
    result = {}
    for item in classes:
        times = []
        paths = files_of(item.get("paths", []))
        for path in paths:
            try:
                at = oldest_entry(path, now)
            except OSError:
                continue
            if at is not None:
                times.append(at)
        result[item["name"]] = {
            "limit_seconds": int(item["limit_days"]) * DAY,
            "files": len(paths),
            "oldest_entry_age_seconds": round(now - min(times), 3) if times else None,
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tomwerk-retention")
    parser.add_argument("command", choices=["enforce", "oldest"])
    parser.add_argument("--state", default=STATE)
    parser.add_argument("--now", type=float, default=None)
    args = parser.parse_args(argv)
    now = args.now if args.now is not None else time.time()
    classes, margin = load_classes(args.state)
    if args.command == "enforce":
        for line in enforce(classes, margin, now):
            print(line)
    else:
        print(json.dumps(oldest(classes, now), indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
