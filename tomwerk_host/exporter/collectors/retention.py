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

The timestamp formats and their parser (tomwerk_host/logtime.py) are those of the
role's sweep command (tomwerk_host/retention.py): RFC 3339 (rsyslog), "YYYY-MM-DD HH:MM:SS",
traditional syslog (year guessed), nginx access and error logs, ClamAV. Times without a
zone are UTC.

TOM-RET-01 holds iff in every class the oldest entry is not older than the limit.
Only class names, counts and ages leave this module.
"""

from __future__ import annotations

import os
import re
import time

from ...logtime import HEAD_BYTES, head_bytes, oldest_in_head
from ..core import CheckError, Collector, Host, Report, State, StateError, expand

TOM = "TOM-RET-01"
DAY = 86400
MAX_FILES_PER_CLASS = 1000
_CLASS = re.compile(r"^[a-z][a-z0-9_]*$")


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
