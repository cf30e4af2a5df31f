"""TOM-ORG-02: the access journal records, counts overdue notifications, and detects tampering."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest

from tomwerk_host import access_journal as aj

T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def journal(tmp_path):
    path = str(tmp_path / "journal.jsonl")
    aj.append(path, "access", T0, "alice", customer="ACME GmbH", purpose="restore a mailbox", persons="J. Doe")
    aj.append(
        path, "access", T0 + dt.timedelta(hours=30), "bob", customer="Beta AG", purpose="emergency", persons="all"
    )
    aj.append(path, "notified", T0 + dt.timedelta(hours=5), "alice", ref=1, how="mail to dpo@acme.example")
    return path


@pytest.mark.tom("TOM-ORG-02")
def test_open_and_overdue_notifications(journal):
    # Access 1 was notified; access 2 (at T0+30h) is open and due at T0+78h.
    before = aj.status(journal, now=T0 + dt.timedelta(hours=77))
    after = aj.status(journal, now=T0 + dt.timedelta(hours=79))
    assert before["intact"] and before["entries"] == 3 and before["accesses"] == 2
    assert (before["open"], before["overdue"]) == (1, 0)
    assert (after["open"], after["overdue"]) == (1, 1)
    assert after["oldest_open_access_timestamp"] == (T0 + dt.timedelta(hours=30)).timestamp()


@pytest.mark.tom("TOM-ORG-02")
@pytest.mark.parametrize(
    "tamper",
    ["edit a field", "remove a middle entry", "swap two entries", "rewrite a hash", "garbage line"],
)
def test_tampering_is_detected(journal, tamper):
    with open(journal, encoding="utf-8") as f:
        lines = f.readlines()
    if tamper == "edit a field":
        entry = json.loads(lines[0])
        entry["purpose"] = "nothing to see"
        lines[0] = json.dumps(entry, sort_keys=True) + "\n"
    elif tamper == "remove a middle entry":
        del lines[1]
    elif tamper == "swap two entries":
        lines[0], lines[1] = lines[1], lines[0]
    elif tamper == "rewrite a hash":
        entry = json.loads(lines[1])
        entry["customer"] = "Gamma KG"
        entry["hash"] = aj.entry_hash(entry)  # consistent in itself, but line 3 no longer follows
        lines[1] = json.dumps(entry, sort_keys=True) + "\n"
    else:
        lines.insert(2, "not json\n")
    with open(journal, "w", encoding="utf-8") as f:
        f.writelines(lines)
    with pytest.raises(aj.JournalError):
        aj.read(journal)
    result = aj.status(journal)
    assert result["intact"] is False and result["problem"]


def test_broken_journal_is_never_extended(journal):
    with open(journal, "a", encoding="utf-8") as f:
        f.write("{}\n")
    with pytest.raises(aj.JournalError):
        aj.append(journal, "access", T0, "alice", customer="x", purpose="y", persons="z")


def test_notification_needs_an_access(tmp_path):
    path = str(tmp_path / "j.jsonl")
    with pytest.raises(aj.JournalError):
        aj.append(path, "notified", T0, "alice", ref=7, how="phone")


def test_times_need_a_zone():
    with pytest.raises(aj.JournalError):
        aj.parse_time("2026-11-21T10:00:00")
    assert aj.parse_time("2026-11-21T10:00:00+01:00") == dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)


def test_command_line_round_trip(tmp_path):
    path = str(tmp_path / "cli.jsonl")

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "tomwerk_host", "access-log", "--journal", path, *args],
            capture_output=True, text=True,
        )  # fmt: skip

    rec = run("record", "--customer", "ACME", "--purpose", "fix", "--persons", "J. Doe", "--at", "2026-11-01T10:00:00Z")
    assert rec.returncode == 0 and "recorded access 1" in rec.stdout and "2026-11-03T10:00:00Z" in rec.stdout
    assert "OPEN" in run("list", "--open").stdout
    assert run("notified", "1", "--how", "mail").returncode == 0
    assert run("list", "--open").stdout == ""
    status = json.loads(run("status").stdout)
    assert status["intact"] and status["open"] == 0
    assert run("verify").returncode == 0
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"seq": 3}\n')
    assert run("verify").returncode == 1


@pytest.mark.tom("TOM-ORG-02")
@pytest.mark.parametrize("garbage", [b"\xff\xfe not utf-8\n", b"[1, 2]\n", b'"text"\n'])
def test_garbage_is_a_finding_not_a_crash(journal, garbage):
    with open(journal, "ab") as f:
        f.write(garbage)
    assert aj.status(journal)["intact"] is False


@pytest.mark.tom("TOM-ORG-02")
def test_a_removed_journal_is_detected(journal):
    import os

    os.remove(journal)
    result = aj.status(journal)
    assert result["intact"] is False and "missing" in result["problem"]
