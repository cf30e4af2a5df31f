"""Journal of accesses to data held for a customer (TOM-ORG-02).

When an admin has to touch data kept for a customer (on instruction or in an
emergency), the access is recorded here: date and time, purpose, persons
concerned and customer. The customer must be told within 48 hours; the
notification is recorded too, so overdue ones show up as a metric and alert.

The journal is an append-only file of JSON lines forming a hash chain: each
entry carries the SHA-256 of the previous entry's line and its own hash, so
an edited, removed or reordered entry is detected by `verify`. (Cutting
entries off the end is only detectable against an outside copy of the head:
each append also logs the new head hash to syslog, which the log server keeps.)

Standard library only: it runs on the admin host with Debian's Python.

    tomwerk-access-log record --customer "ACME GmbH" --purpose "restore mailbox on request" --persons "J. Doe"
    tomwerk-access-log notified 1 --how "mail to dpo@acme.example"
    tomwerk-access-log list [--open]
    tomwerk-access-log init            # the role does this once
    tomwerk-access-log verify
    tomwerk-access-log status          # JSON for the exporter
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import getpass
import hashlib
import json
import os
import subprocess
import sys

DEFAULT_JOURNAL = "/var/lib/tomwerk/access-journal.jsonl"
GENESIS = "0" * 64
NOTIFY_WITHIN_HOURS = 48
FIELDS = {"access": ("customer", "purpose", "persons"), "notified": ("ref", "how")}


class JournalError(Exception):
    pass


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def parse_time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise JournalError(f"time {text!r} needs a zone, e.g. 2026-11-21T14:30:00+01:00")
    return value.astimezone(dt.UTC)


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def entry_hash(entry: dict) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def read(path: str) -> list[dict]:
    """All entries, verified: raises JournalError naming the first broken line.

    A missing journal is an error too: the role creates it, so a journal that
    is gone was removed.
    """
    entries: list[dict] = []
    prev = GENESIS
    try:
        with open(path, "rb") as journal:
            lines = journal.read().split(b"\n")
    except FileNotFoundError:
        raise JournalError(f"{path} is missing (the journal was removed)") from None
    if lines and lines[-1] == b"":
        lines.pop()
    for number, raw in enumerate(lines, start=1):
        try:
            entry = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise JournalError(f"line {number}: not JSON ({exc.__class__.__name__})") from None
        if not isinstance(entry, dict):
            raise JournalError(f"line {number}: not a journal entry")
        if entry.get("seq") != number:
            raise JournalError(f"line {number}: out of sequence (entry removed or moved)")
        if entry.get("prev") != prev:
            raise JournalError(f"line {number}: does not follow line {number - 1} (chain broken)")
        if entry.get("hash") != entry_hash(entry):
            raise JournalError(f"line {number}: content does not match its hash (entry edited)")
        try:
            parse_time(str(entry.get("at", "")))
        except (JournalError, ValueError):
            raise JournalError(f"line {number}: no valid time") from None
        prev = entry["hash"]
        entries.append(entry)
    return entries


def create(path: str) -> bool:
    """Create an empty journal (root only); False when it already exists."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640))
    except FileExistsError:
        return False
    return True


def append(path: str, kind: str, at: dt.datetime, by: str, **fields) -> dict:
    create(path)  # the very first record may come before `init`
    entries = read(path)  # never extend a broken journal
    if kind == "notified":
        ref = fields["ref"]
        if not any(e["type"] == "access" and e["seq"] == ref for e in entries):
            raise JournalError(f"no access entry {ref} to mark as notified")
    entry = {
        "seq": len(entries) + 1,
        "type": kind,
        "at": iso(at),
        "recorded_at": iso(utc_now()),
        "by": by,
        **fields,
        "prev": entries[-1]["hash"] if entries else GENESIS,
    }
    entry["hash"] = entry_hash(entry)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    # O_APPEND: writers never overwrite; the file is created private.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    with os.fdopen(fd, "a", encoding="utf-8") as journal:
        journal.write(json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n")
    _anchor(entry)
    return entry


def _anchor(entry: dict) -> None:
    # The head hash leaves the host through syslog (and the log server).
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            ["logger", "-t", "tomwerk-access-journal", f"seq={entry['seq']} hash={entry['hash']}"],
            check=False, timeout=5, capture_output=True,
        )  # fmt: skip


def status(path: str, now: dt.datetime | None = None, notify_hours: int = NOTIFY_WITHIN_HOURS) -> dict:
    """Counts for the exporter; never raises for a broken journal (intact=False)."""
    now = now or utc_now()
    result = {"journal": path, "intact": True, "problem": "", "entries": 0, "accesses": 0, "open": 0, "overdue": 0,
              "oldest_open_access_timestamp": None, "notify_within_hours": notify_hours}  # fmt: skip
    try:
        entries = read(path)
    except (JournalError, OSError) as exc:
        result.update(intact=False, problem=str(exc))
        return result
    notified = {e["ref"] for e in entries if e["type"] == "notified"}
    accesses = [e for e in entries if e["type"] == "access"]
    pending = [e for e in accesses if e["seq"] not in notified]
    deadline = dt.timedelta(hours=notify_hours)
    result.update(
        entries=len(entries),
        accesses=len(accesses),
        open=len(pending),
        overdue=sum(1 for e in pending if now - parse_time(e["at"]) > deadline),
        oldest_open_access_timestamp=min((parse_time(e["at"]).timestamp() for e in pending), default=None),
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tomwerk-access-log", description="Journal of accesses to customer data.")
    parser.add_argument("--journal", default=os.environ.get("TOMWERK_ACCESS_JOURNAL", DEFAULT_JOURNAL))
    sub = parser.add_subparsers(dest="action", required=True)
    rec = sub.add_parser("record", help="record an access to customer data")
    rec.add_argument("--customer", required=True)
    rec.add_argument("--purpose", required=True)
    rec.add_argument("--persons", required=True, help="persons whose data was concerned")
    rec.add_argument("--at", help="when the access happened (ISO 8601 with zone; default: now)")
    rec.add_argument("--by", default=None, help="who accessed (default: the calling user)")
    note = sub.add_parser("notified", help="record that the customer was told about access ID")
    note.add_argument("ref", type=int)
    note.add_argument("--how", required=True, help="how the customer was told, e.g. 'mail to dpo@…'")
    note.add_argument("--at", help="when (default: now)")
    note.add_argument("--by", default=None)
    lst = sub.add_parser("list", help="show the journal")
    lst.add_argument("--open", action="store_true", help="only accesses the customer was not told about yet")
    sub.add_parser("init", help="create an empty journal if there is none (the role does this)")
    sub.add_parser("verify", help="check the hash chain; exit 1 if the journal was tampered with")
    st = sub.add_parser("status", help="counts as JSON (used by the exporter)")
    st.add_argument("--notify-hours", type=int, default=NOTIFY_WITHIN_HOURS)
    args = parser.parse_args(argv)

    by = getattr(args, "by", None) or os.environ.get("SUDO_USER") or getpass.getuser()
    try:
        if args.action == "record":
            at = parse_time(args.at) if args.at else utc_now()
            entry = append(args.journal, "access", at, by, customer=args.customer, purpose=args.purpose,
                           persons=args.persons)  # fmt: skip
            deadline = iso(at + dt.timedelta(hours=NOTIFY_WITHIN_HOURS))
            print(f"recorded access {entry['seq']}; tell the customer by {deadline}")
        elif args.action == "notified":
            at = parse_time(args.at) if args.at else utc_now()
            entry = append(args.journal, "notified", at, by, ref=args.ref, how=args.how)
            print(f"recorded notification {entry['seq']} for access {args.ref}")
        elif args.action == "list":
            entries = read(args.journal)
            done = {e["ref"] for e in entries if e["type"] == "notified"}
            for e in entries:
                if e["type"] == "access" and (not args.open or e["seq"] not in done):
                    state = "notified" if e["seq"] in done else "OPEN"
                    who = f"{e['persons']}; by {e['by']}"
                    print(f"{e['seq']:>4} {e['at']} {state:8} {e['customer']}: {e['purpose']} ({who})")
        elif args.action == "init":
            print(("created " if create(args.journal) else "exists: ") + args.journal)
        elif args.action == "verify":
            entries = read(args.journal)
            print(f"journal intact: {len(entries)} entries")
        elif args.action == "status":
            print(json.dumps(status(args.journal, notify_hours=args.notify_hours), sort_keys=True))
    except JournalError as exc:
        print(f"tomwerk-access-log: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
