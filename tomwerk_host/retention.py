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
import sys
import time

from tomwerk_host.logtime import HEAD_BYTES, head_bytes, oldest_in_head

DAY = 86400
STATE = "/etc/tomwerk/state/retention.json"


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
