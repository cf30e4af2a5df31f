"""TOM-RET-01: every log class keeps its entries no longer than its limit.

roles/retention records in retention.json the log classes (web_access, logs, attack,
journal), per class its limit in days and the globs of all files that hold its entries
(live and rotated; on the log server its store). This collector finds, per class, the
oldest entry actually present: per file it reads only the head (HEAD_BYTES, decompressed
for .gz) and takes the first line's timestamp (the files are appended to); a file without
any parsable timestamp counts by its mtime, a journal file by its header's head entry
time. The result per file is cached by (inode, size, mtime), so a scrape re-reads only
files that changed. A file the exporter may not read (root without DAC override in a
container, not group adm) counts by its mtime and is counted in
tomwerk_retention_unreadable_files.

The timestamp formats and their parser are those of the role's sweep command
(roles/retention/files/tomwerk_retention.py; tests/unit/test_exporter_retention.py
checks that both read the same lines alike): RFC 3339 (rsyslog), "YYYY-MM-DD HH:MM:SS",
traditional syslog (year guessed), nginx access and error logs, ClamAV. Times without a
zone are UTC.

TOM-RET-01 holds iff in every class the oldest entry is not older than the limit.
Only class names, counts and ages leave this module.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
import re
import struct
import time
import zlib

from ..core import CheckError, Collector, Host, Report, State, StateError

TOM = "TOM-RET-01"
DAY = 86400
HEAD_BYTES = 65536
MAX_FILES_PER_CLASS = 1000
_CLASS = re.compile(r"^[a-z][a-z0-9_]*$")
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


def expand(host: Host, pattern: str) -> list[str]:
    """Glob on the host through its primitives (no hidden files)."""
    paths = ["/"]
    for part in pattern.strip("/").split("/"):
        found = []
        for base in paths:
            if not any(ch in part for ch in "*?["):
                found.append(os.path.join(base, part))
                continue
            try:
                names = host.list_optional(base) or []
            except CheckError:  # a file where the pattern expects a directory
                continue
            found += [os.path.join(base, n) for n in names if not n.startswith(".") and fnmatch.fnmatch(n, part)]
        paths = found
    return paths


def classes_of(state: State) -> list[tuple[str, int, list[str]]]:
    """(name, limit in days, path globs) per class, checked."""
    value = state.value("retention_classes")
    if not isinstance(value, list) or not value:
        raise StateError(f"{state.role}.json: vars.retention_classes is not a non-empty list", state.toms)
    result = []
    for item in value:
        name = item.get("name") if isinstance(item, dict) else None
        limit = item.get("limit_days") if isinstance(item, dict) else None
        paths = item.get("paths") if isinstance(item, dict) else None
        if (
            not isinstance(name, str)
            or not _CLASS.match(name)
            or isinstance(limit, bool)
            or not isinstance(limit, int)
            or not 1 <= limit <= 366
            or not isinstance(paths, list)
            or not all(isinstance(p, str) and p.startswith("/") for p in paths)
        ):
            raise StateError(f"{state.role}.json: vars.retention_classes has a bad class {name!r}", state.toms)
        result.append((name, limit, paths))
    return result


class RetentionCollector(Collector):
    name = "retention"
    role = "retention"
    toms = (TOM,)

    def __init__(self, now=time.time) -> None:
        self._now = now
        # path -> ((inode, size, mtime), oldest entry or None)
        self._cache: dict[str, tuple[tuple[int, int, float], float | None]] = {}
        self.unreadable: set[str] = set()  # files of the last check that could not be read

    def _oldest(self, host: Host, path: str, now: float, seen: set[str]) -> float | None:
        try:
            st = host.stat(path)
        except FileNotFoundError:  # rotated away between listing and stat
            return None
        except OSError as exc:
            raise CheckError(f"cannot stat {path}: {exc.strerror or exc}") from None
        if not os.path.stat.S_ISREG(st.st_mode):
            return None
        seen.add(path)
        key = (st.st_ino, st.st_size, st.st_mtime)
        cached = self._cache.get(path)
        if cached and cached[0] == key:
            return cached[1]
        try:
            raw = host.read_bytes(path, 0, HEAD_BYTES)
        except FileNotFoundError:
            return None
        except PermissionError:  # not readable by root without DAC override nor adm: counts by its mtime
            self.unreadable.add(path)
            return st.st_mtime if st.st_size else None
        except OSError as exc:
            raise CheckError(f"cannot read {path}: {exc.strerror or exc}") from None
        oldest = None
        if raw:
            gzipped = path.endswith(".gz")
            oldest, any_line = oldest_in_head(head_bytes(raw, gzipped), now)
            if oldest is None and (any_line or gzipped):
                oldest = st.st_mtime
        self._cache[path] = (key, oldest)
        return oldest

    def check(self, state: State, host: Host) -> Report:
        classes = classes_of(state)
        now = self._now()
        report = Report()
        seen: set[str] = set()
        self.unreadable = set()
        for name, limit_days, patterns in classes:
            paths = sorted({p for pattern in patterns for p in expand(host, pattern)})[:MAX_FILES_PER_CLASS]
            times = [t for t in (self._oldest(host, p, now, seen) for p in paths) if t is not None]
            age = max(0.0, now - min(times)) if times else 0.0
            limit = limit_days * DAY
            report.require(
                TOM,
                age <= limit,
                f"class {name}: the oldest entry is {age / DAY:.1f} days old, the limit is {limit_days} days",
            )
            report.gauge(
                "tomwerk_retention_oldest_entry_age_seconds",
                "Age of the oldest entry present in a log class (first timestamped line of its oldest file; "
                "0 when no file holds an entry) (TOM-RET-01).",
                age,
                **{"class": name},
            )
            report.gauge(
                "tomwerk_retention_limit_seconds",
                "Maximum age of an entry of the log class (TOM-RET-01), from the retention role.",
                limit,
                **{"class": name},
            )
            report.gauge(
                "tomwerk_retention_files",
                "Files that hold entries of the log class (live and rotated).",
                len(paths),
                **{"class": name},
            )
            report.gauge(
                "tomwerk_retention_unreadable_files",
                "Files of the log class the exporter may not read (root without DAC override, group adm); "
                "they count by their mtime.",
                len(self.unreadable & set(paths)),
                **{"class": name},
            )
        for path in set(self._cache) - seen:  # forget deleted files
            del self._cache[path]
        return report
