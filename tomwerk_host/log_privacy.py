"""Housekeeping for the log-privacy pipeline (role log_privacy, TOM-LOG-01/02). Standard library only.

tomwerk-log-privacy attack-cleanup --retention-days 7 FILE...
    FILE is a live attack log that rsyslog appends to. A live file that holds an entry
    from an earlier UTC day is rotated (renamed to FILE.<time of its oldest entry>, an empty
    FILE with the same owner and mode takes its place, and rsyslog reopens it on SIGHUP).
    A rotated file is deleted as soon as its oldest entry is older than the retention
    minus --margin-seconds (the timer's period), so no entry ever outlives the retention.
    A file without a parsable timestamp counts by its mtime.
tomwerk-log-privacy dayfiles-cleanup --retention-days N DIR...
    Day files DIR/*/YYYY-MM-DD.log (as the log server writes them) are deleted once the
    day they start with is older than the retention minus --margin-seconds.
tomwerk-log-privacy scrub-logins [--quiet SECONDS]
    wtmp, btmp, utmp, lastlog and wtmpdb's database (Debian 13: sshd writes logins with
    the address there) keep who logged in when, but not from where: the host and user
    fields are anonymised (tomwerk-anonymize) and the binary address zeroed, in place.
    Only changed records are written. A systemd path unit runs this after every write; it
    ends only after the files stayed unchanged for --quiet seconds (default 2).
tomwerk-log-privacy scrub-files [--root DIR] [--skip-dir DIR]
    Anonymises the text logs below /var/log that existed before the pipeline (plain and
    .gz), once; the attack logs, the journal and the binary login records are left out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import os
import re
import subprocess
import sys
import tempfile
import time

from tomwerk_host.anonymize import anonymize

DAY = 86400
# RSYSLOG_FileFormat: 2026-11-21T18:57:45.123456+00:00 host tag: msg
_STAMP_RE = re.compile(rb"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2}))\s")
_DAYFILE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})\.log$")
ROTATED_SUFFIX_RE = re.compile(r"\.\d{8}T\d{6}(?:-\d+)?$")


# --- attack log ------------------------------------------------------------------------


def entry_time(line: bytes) -> float | None:
    match = _STAMP_RE.match(line)
    if not match:
        return None
    try:
        stamp = dt.datetime.fromisoformat(match.group(1).decode().replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp.timestamp()


def oldest_entry(path: str) -> float | None:
    """Time of the oldest entry; the mtime when no line has a timestamp; None when empty."""
    oldest = None
    with open(path, "rb") as handle:
        empty = True
        for line in handle:
            empty = False
            at = entry_time(line)
            if at is not None and (oldest is None or at < oldest):
                oldest = at
    if oldest is None and not empty:
        oldest = os.stat(path).st_mtime
    return oldest


def hup_rsyslog() -> None:
    subprocess.run(
        ["systemctl", "kill", "--signal=HUP", "--kill-whom=main", "rsyslog.service"],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def recreate_empty(path: str, like: os.stat_result) -> None:
    """An empty live file in place of the rotated one, with its owner and mode. fail2ban
    reads the live file: if it stays missing until the next attack line, fail2ban gives up
    on it ("Too many errors. Remove file ... from monitoring") and bans nobody any more."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if os.geteuid() == 0:
            os.fchown(fd, like.st_uid, like.st_gid)
        os.fchmod(fd, like.st_mode & 0o7777)
    finally:
        os.close(fd)


def attack_cleanup(files: list[str], retention_days: int, margin: float, now: float) -> list[str]:
    """Rotate and delete; returns what it did, one line each."""
    if not 1 <= retention_days <= 7:
        raise SystemExit("attack-cleanup: --retention-days must be 1..7")
    cutoff = now - retention_days * DAY + margin
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    done: list[str] = []
    rotated_now = False
    for live in files:
        if os.path.isfile(live):
            oldest = oldest_entry(live)
            if oldest is not None and dt.datetime.fromtimestamp(oldest, dt.UTC).date() < today:
                stamp = dt.datetime.fromtimestamp(oldest, dt.UTC).strftime("%Y%m%dT%H%M%S")
                target = f"{live}.{stamp}"
                if os.path.exists(target):
                    target = f"{target}-{int(now)}"
                os.rename(live, target)
                recreate_empty(live, os.stat(target))
                rotated_now = True
                done.append(f"rotated {live} -> {target}")
    if rotated_now:
        hup_rsyslog()
        time.sleep(1)  # rsyslog finishes the lines it had begun in the renamed file
    for live in files:
        directory, base = os.path.split(live)
        if not os.path.isdir(directory):
            continue
        for name in sorted(os.listdir(directory)):
            if not (name.startswith(base + ".") and ROTATED_SUFFIX_RE.search(name)):
                continue
            path = os.path.join(directory, name)
            oldest = oldest_entry(path)
            if oldest is None or oldest < cutoff:
                os.unlink(path)
                done.append(f"deleted {path}")
    return done


def dayfiles_cleanup(directories: list[str], retention_days: int, margin: float, now: float) -> list[str]:
    cutoff = now - retention_days * DAY + margin
    done = []
    for top in directories:
        if not os.path.isdir(top):
            continue
        for sub in sorted(os.listdir(top)):
            folder = os.path.join(top, sub)
            if not os.path.isdir(folder) or os.path.islink(folder):
                continue
            for name in sorted(os.listdir(folder)):
                match = _DAYFILE_RE.match(name)
                if not match:
                    continue
                start = dt.datetime(*map(int, match.groups()), tzinfo=dt.UTC).timestamp()
                if start < cutoff:
                    os.unlink(os.path.join(folder, name))
                    done.append(f"deleted {os.path.join(folder, name)}")
    return done


# --- login records ---------------------------------------------------------------------

# struct utmp (x86_64 glibc): ut_user at 44..76, ut_host 76..332, ut_addr_v6 348..364.
# A failed login's user name may itself be a mail address: it is anonymised too.
UTMP_SIZE, UTMP_TEXT, UTMP_ADDR = 384, ((44, 76), (76, 332)), (348, 364)
# struct lastlog: ll_time, ll_line[32], ll_host[256]
LASTLOG_SIZE, LASTLOG_TEXT = 292, ((36, 292),)
LOGIN_FILES = (
    ("/var/log/wtmp", UTMP_SIZE, UTMP_TEXT, UTMP_ADDR),
    ("/var/log/btmp", UTMP_SIZE, UTMP_TEXT, UTMP_ADDR),
    ("/run/utmp", UTMP_SIZE, UTMP_TEXT, UTMP_ADDR),
    ("/var/log/lastlog", LASTLOG_SIZE, LASTLOG_TEXT, None),
)
# Debian 13's sshd writes each login (user, remote host) to wtmpdb's SQLite database.
LOGIN_DATABASES = ("/var/lib/wtmpdb/wtmp.db",)


def scrub_record(record: bytes, texts, addr: tuple[int, int] | None, anonymize) -> bytes:
    new = bytearray(record)
    for start, end in texts:
        text = record[start:end].split(b"\0", 1)[0]
        if text:
            clean = anonymize(text)
            if clean != text:
                new[start:end] = clean[: end - start].ljust(end - start, b"\0")
    if addr is not None:
        new[addr[0] : addr[1]] = bytes(addr[1] - addr[0])
    return bytes(new)


def scrub_login_file(path: str, size: int, texts, addr, anonymize) -> int:
    """Rewrites the records that still hold an address; returns how many."""
    changed = 0
    if not os.path.isfile(path):
        return 0
    with open(path, "r+b") as handle:
        offset = 0
        while True:
            chunk = handle.read(size * 1024)
            if not chunk:
                break
            if chunk.count(0) == len(chunk):  # lastlog is mostly holes
                offset += len(chunk)
                continue
            for at in range(0, len(chunk) - size + 1, size):
                record = chunk[at : at + size]
                clean = scrub_record(record, texts, addr, anonymize)
                if clean != record:
                    os.pwrite(handle.fileno(), clean, offset + at)
                    changed += 1
            offset += len(chunk)
            handle.seek(offset)
    return changed


def scrub_login_database(path: str, anonymize) -> int:
    """Anonymises every text column of wtmpdb's table in place; returns the rows changed."""
    if not os.path.isfile(path):
        return 0
    import sqlite3  # only where the database exists (Debian 13)

    changed = 0
    with sqlite3.connect(path, timeout=10) as db:
        # Every text column, whatever a later wtmpdb adds; names come from the schema, quoted.
        columns = [
            '"' + row[1].replace('"', '""') + '"'
            for row in db.execute("PRAGMA table_info(wtmp)")
            if row[2].upper() == "TEXT"
        ]
        if not columns:
            return 0
        select = f"SELECT rowid, {', '.join(columns)} FROM wtmp"  # noqa: S608 (schema names, quoted)
        update = f"UPDATE wtmp SET {', '.join(f'{c} = ?' for c in columns)} WHERE rowid = ?"  # noqa: S608
        for key, *values in db.execute(select).fetchall():
            clean = [v if v is None else anonymize(v.encode()).decode("utf-8", "replace") for v in values]
            if clean != values:
                db.execute(update, (*clean, key))
                changed += 1
    return changed


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return info.st_size, info.st_mtime_ns


def _stamps(paths) -> list[tuple[int, int] | None]:
    return [_stamp(path) for path in paths]


def _unchanged_for(paths, before, seconds: float) -> bool:
    """True when no login file changed from `before` for `seconds`."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        time.sleep(min(0.2, seconds))
        if _stamps(paths) != before:
            return False
    return True


def scrub_logins(
    anonymize, files=LOGIN_FILES, quiet: float = 0.0, longest: float = 30.0, databases=LOGIN_DATABASES
) -> list[str]:
    """Sweeps all login files until a sweep finds nothing and no file changed for `quiet` seconds.

    systemd ignores a path unit's events while its service runs. Failed logins come
    in bursts (sshd writes btmp, then the next attempt 0.4 s later): without the
    quiet period a record written as the service ends keeps its address until the
    timer's next run. `longest` caps the wait under a steady stream of logins."""
    paths = [*(path for path, *_ in files), *databases]
    counts = dict.fromkeys(paths, 0)
    deadline = time.monotonic() + longest
    while True:
        before = _stamps(paths)
        found = 0
        for path, size, texts, addr in files:
            count = scrub_login_file(path, size, texts, addr, anonymize)
            counts[path] += count
            found += count
        for path in databases:
            count = scrub_login_database(path, anonymize)
            counts[path] += count
            found += count
        if time.monotonic() > deadline:
            break
        if not found and _stamps(paths) == before and _unchanged_for(paths, before, quiet):
            break
    return [f"scrubbed {count} record(s) in {path}" for path, count in counts.items() if count]


# --- existing text logs ----------------------------------------------------------------

SKIP_NAMES = {"wtmp", "btmp", "lastlog", "faillog"}


def text_logs(root: str, skip_dirs: list[str]):
    skip = {os.path.realpath(d) for d in skip_dirs}
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = [s for s in subdirs if os.path.realpath(os.path.join(directory, s)) not in skip]
        for name in names:
            path = os.path.join(directory, name)
            if name.split(".", 1)[0] in SKIP_NAMES or name.endswith((".journal", ".journal~", ".xz")):
                continue
            if "attack.log" in name or os.path.islink(path) or not os.path.isfile(path):
                continue
            yield path


def scrub_file(path: str, anonymize) -> bool:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if b"\0" in data[:8192] and not path.endswith(".gz"):
        return False  # binary
    clean = anonymize(data)
    if clean == data:
        return False
    stat = os.stat(path)
    fd, temp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".scrub-")
    try:
        with os.fdopen(fd, "wb") as raw:
            if path.endswith(".gz"):
                with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
                    out.write(clean)
            else:
                raw.write(clean)
        os.chown(temp, stat.st_uid, stat.st_gid)
        os.chmod(temp, stat.st_mode & 0o7777)
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise
    return True


def scrub_files(anonymize, root: str, skip_dirs: list[str]) -> list[str]:
    return [f"anonymised {path}" for path in text_logs(root, skip_dirs) if scrub_file(path, anonymize)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tomwerk-log-privacy", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    attack = sub.add_parser("attack-cleanup")
    attack.add_argument("--retention-days", type=int, required=True)
    attack.add_argument("--margin-seconds", type=float, default=3600)
    attack.add_argument("files", nargs="+")
    days = sub.add_parser("dayfiles-cleanup")
    days.add_argument("--retention-days", type=int, required=True)
    days.add_argument("--margin-seconds", type=float, default=3600)
    days.add_argument("directories", nargs="+")
    logins = sub.add_parser("scrub-logins")
    logins.add_argument("--quiet", type=float, default=2.0, help="seconds without a new login record before it ends")
    files = sub.add_parser("scrub-files")
    files.add_argument("--root", default="/var/log")
    files.add_argument("--skip-dir", action="append", default=[])
    args = parser.parse_args(argv)
    now = time.time()
    if args.command == "attack-cleanup":
        done = attack_cleanup(args.files, args.retention_days, args.margin_seconds, now)
    elif args.command == "dayfiles-cleanup":
        done = dayfiles_cleanup(args.directories, args.retention_days, args.margin_seconds, now)
    elif args.command == "scrub-logins":
        done = scrub_logins(anonymize, quiet=args.quiet)
    else:
        done = scrub_files(anonymize, args.root, args.skip_dir)
    for line in done:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
