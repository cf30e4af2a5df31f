"""tomwerk-log-privacy (tomwerk_host/log_privacy.py): attack-log retention, log-server day files,
login-record scrubbing and the one-time anonymisation of old logs."""

from __future__ import annotations

import datetime as dt
import gzip
import importlib.util
import os
import sqlite3
import struct
import threading
import time

import pytest

from tomwerk import ROOT
from tomwerk_host.anonymize import anonymize

SCRIPT = ROOT / "tomwerk_host" / "log_privacy.py"
DAY = 86400
NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC).timestamp()


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("tomwerk_log_privacy_tool", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def no_hup(tool, monkeypatch):
    calls = []
    monkeypatch.setattr(tool, "hup_rsyslog", lambda: calls.append(1))
    monkeypatch.setattr(tool.time, "sleep", lambda _s: None)
    return calls


def line(at: float, text: str = "web1 sshd[1]: Invalid user eve from 192.0.2.7 port 4242") -> str:
    stamp = dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="microseconds")
    return f"{stamp} {text}\n"


def test_fresh_attack_log_stays(tool, tmp_path, no_hup):
    live = tmp_path / "attack.log"
    live.write_text(line(NOW - 3600) + line(NOW - 60))
    assert tool.attack_cleanup([str(live)], 7, 3600, NOW) == []
    assert live.read_text().count("\n") == 2
    assert not no_hup


def test_yesterdays_entries_are_rotated_and_kept(tool, tmp_path, no_hup):
    live = tmp_path / "attack.log"
    live.write_text(line(NOW - DAY) + line(NOW - 60))
    live.chmod(0o640)
    done = tool.attack_cleanup([str(live)], 7, 3600, NOW)
    # an empty live file in its place at once: fail2ban drops a file that stays missing
    assert live.read_text() == "" and (live.stat().st_mode & 0o777) == 0o640
    rotated = list(tmp_path.glob("attack.log.*"))
    assert len(rotated) == 1 and rotated[0].name == "attack.log.20261120T120000"
    assert done == [f"rotated {live} -> {rotated[0]}"]
    assert no_hup == [1]


@pytest.mark.parametrize("retention", [1, 7])
def test_an_entry_past_the_retention_is_deleted(tool, tmp_path, retention):
    live = tmp_path / "attack.log"
    old = tmp_path / "attack.log.20261101T000000"
    old.write_text(line(NOW - retention * DAY - 10))
    young = tmp_path / "attack.log.20261120T000000"
    young.write_text(line(NOW - retention * DAY + 2 * 3600))
    live.write_text(line(NOW - 100) + line(NOW - retention * DAY - 5))  # an aged line appended
    tool.attack_cleanup([str(live)], retention, 3600, NOW)
    remaining = sorted(p.name for p in tmp_path.iterdir())
    assert remaining == ["attack.log", "attack.log.20261120T000000"]
    assert live.read_text() == ""  # the live file was rotated and deleted; a fresh one waits for rsyslog


def test_the_margin_deletes_before_the_limit(tool, tmp_path):
    rotated = tmp_path / "attack.log.20261114T130000"
    rotated.write_text(line(NOW - 7 * DAY + 1800))  # 30 minutes before the limit, timer runs hourly
    tool.attack_cleanup([str(tmp_path / "attack.log")], 7, 3600, NOW)
    assert not rotated.exists()


def test_retention_over_seven_days_is_refused(tool, tmp_path):
    with pytest.raises(SystemExit):
        tool.attack_cleanup([str(tmp_path / "attack.log")], 8, 3600, NOW)


def test_lines_without_time_count_by_mtime(tool, tmp_path):
    rotated = tmp_path / "attack.log.20261101T000000"
    rotated.write_text("garbage without a timestamp\n")
    os.utime(rotated, (NOW - 8 * DAY, NOW - 8 * DAY))
    tool.attack_cleanup([str(tmp_path / "attack.log")], 7, 3600, NOW)
    assert not rotated.exists()


def test_other_files_next_to_the_attack_log_stay(tool, tmp_path):
    other = tmp_path / "attack.log.bak"
    other.write_text(line(NOW - 30 * DAY))
    tool.attack_cleanup([str(tmp_path / "attack.log")], 7, 3600, NOW)
    assert other.exists()


def test_day_files_past_the_retention_are_deleted(tool, tmp_path):
    host = tmp_path / "web1"
    host.mkdir()
    for name in ("2026-11-13.log", "2026-11-14.log", "2026-11-15.log", "2026-11-21.log", "notes.txt"):
        (host / name).write_text("x\n")
    done = tool.dayfiles_cleanup([str(tmp_path)], 7, 3600, NOW)
    # 2026-11-14 00:00 is 7 days 12 hours old; 2026-11-15 is 6.5 days old
    assert sorted(p.name for p in host.iterdir()) == ["2026-11-15.log", "2026-11-21.log", "notes.txt"]
    assert len(done) == 2


def utmp_record(host: bytes, addr: bytes, user: bytes = b"alice") -> bytes:
    record = bytearray(384)
    struct.pack_into("<hxxi", record, 0, 7, 4242)
    record[8:13] = b"pts/0"
    record[44 : 44 + len(user)] = user
    record[76 : 76 + len(host)] = host
    record[348 : 348 + len(addr)] = addr
    return bytes(record)


def test_login_records_lose_their_addresses(tool, tmp_path):
    wtmp = tmp_path / "wtmp"
    records = [
        utmp_record(b"192.0.2.7", bytes([192, 0, 2, 7])),
        utmp_record(b"2001:db8::7", bytes.fromhex("20010db8000000000000000000000007")),
        utmp_record(b"", b""),  # a local login: nothing to do
        utmp_record(b"192.0.2.8", b"", user=b"eve@example.org"),  # a failed login with a mail as name
    ]
    wtmp.write_bytes(b"".join(records))
    lastlog = tmp_path / "lastlog"
    entry = bytearray(292)
    entry[36:45] = b"192.0.2.7"
    lastlog.write_bytes(bytes(292 * 1000) + bytes(entry))
    files = ((str(wtmp), 384, ((44, 76), (76, 332)), (348, 364)), (str(lastlog), 292, ((36, 292),), None))
    done = tool.scrub_logins(anonymize, files)
    assert done == [f"scrubbed 3 record(s) in {wtmp}", f"scrubbed 1 record(s) in {lastlog}"]
    data = wtmp.read_bytes()
    assert len(data) == 4 * 384
    assert data[3 * 384 + 44 : 3 * 384 + 76].rstrip(b"\0") == b"x@x"
    for at in range(0, len(data), 384):
        record = data[at : at + 384]
        assert record[348:364] == bytes(16)
        assert record[76:332].rstrip(b"\0") in (b"0", b"")
        assert record[44:49] in (b"alice", b"x@x\0\0") and record[8:13] == b"pts/0"
    assert lastlog.read_bytes()[292 * 1000 + 36 :].rstrip(b"\0") == b"0"
    assert tool.scrub_logins(anonymize, files) == []  # nothing left: nothing written


def test_old_text_logs_are_anonymised_once(tool, tmp_path):
    (tmp_path / "auth.log").write_bytes(b"sshd: Accepted key for alice from 192.0.2.7 port 22\n")
    with gzip.open(tmp_path / "mail.log.2.gz", "wb") as handle:
        handle.write(b"postfix: to=<bob@example.org>, relay=[2001:db8::1]:25\n")
    (tmp_path / "tomwerk").mkdir()
    (tmp_path / "tomwerk" / "attack.log").write_bytes(b"Invalid user eve from 192.0.2.7\n")
    (tmp_path / "wtmp").write_bytes(b"192.0.2.7\0\0")
    done = tool.scrub_files(anonymize, str(tmp_path), [str(tmp_path / "tomwerk")])
    assert sorted(done) == sorted([f"anonymised {tmp_path / 'auth.log'}", f"anonymised {tmp_path / 'mail.log.2.gz'}"])
    assert (tmp_path / "auth.log").read_bytes() == b"sshd: Accepted key for alice from 0 port 22\n"
    assert gzip.decompress((tmp_path / "mail.log.2.gz").read_bytes()) == b"postfix: to=<x@x>, relay=[0]:25\n"
    assert b"192.0.2.7" in (tmp_path / "tomwerk" / "attack.log").read_bytes()
    assert b"192.0.2.7" in (tmp_path / "wtmp").read_bytes()


def test_a_login_written_during_a_scrub_is_scrubbed_too(tool, tmp_path):
    """systemd ignores the path unit's events while the scrub runs: the scrub itself
    must catch a failed login written to btmp while it was busy with a later file
    (seen in the lab: an address stayed in backup-berlin's btmp under a parallel verify)."""
    btmp, lastlog = tmp_path / "btmp", tmp_path / "lastlog"
    btmp.write_bytes(utmp_record(b"192.0.2.7", bytes([192, 0, 2, 7])))
    entry = bytearray(292)
    entry[36:46] = b"192.0.2.77"
    lastlog.write_bytes(bytes(entry))
    files = ((str(btmp), 384, ((44, 76), (76, 332)), (348, 364)), (str(lastlog), 292, ((36, 292),), None))

    def anonymize_while_sshd_writes(text: bytes) -> bytes:
        if text == b"192.0.2.77" and btmp.stat().st_size == 384:
            with open(btmp, "ab") as handle:  # btmp is done; sshd logs another failed login
                handle.write(utmp_record(b"192.0.2.9", bytes([192, 0, 2, 9]), user=b"mallory"))
        return anonymize(text)

    done = tool.scrub_logins(anonymize_while_sshd_writes, files)
    data = btmp.read_bytes()
    assert len(data) == 2 * 384, "the concurrent write was not simulated"
    assert [data[at + 348 : at + 364] for at in (0, 384)] == [bytes(16)] * 2
    assert [data[at + 76 : at + 332].rstrip(b"\0") for at in (0, 384)] == [b"0", b"0"]
    assert done == [f"scrubbed 2 record(s) in {btmp}", f"scrubbed 1 record(s) in {lastlog}"]


def test_a_login_just_after_a_sweep_is_caught_in_the_quiet_period(tool, tmp_path):
    """The lab case: sshd wrote the next failed login 0.4 s after the first, just as the
    scrub ended; systemd had dropped the event, and the address stayed in btmp."""
    btmp = tmp_path / "btmp"
    btmp.write_bytes(utmp_record(b"192.0.2.7", bytes([192, 0, 2, 7])))
    files = ((str(btmp), 384, ((44, 76), (76, 332)), (348, 364)),)

    def next_attempt():
        time.sleep(0.4)
        with open(btmp, "ab") as handle:
            handle.write(utmp_record(b"192.0.2.9", bytes([192, 0, 2, 9]), user=b"mallory"))

    writer = threading.Thread(target=next_attempt)
    writer.start()
    done = tool.scrub_logins(anonymize, files, quiet=1.5)
    writer.join()
    data = btmp.read_bytes()
    assert len(data) == 2 * 384
    assert [data[at + 348 : at + 364] for at in (0, 384)] == [bytes(16)] * 2
    assert done == [f"scrubbed 2 record(s) in {btmp}"]


# wtmpdb 0.73's table, as Debian 13's sshd (linked with libwtmpdb) fills it.
WTMPDB_SCHEMA = (
    "CREATE TABLE wtmp(ID INTEGER PRIMARY KEY, Type INTEGER, User TEXT NOT NULL, Login INTEGER,"
    " Logout INTEGER, TTY TEXT, RemoteHost TEXT, Service TEXT)"
)


def test_wtmpdb_logins_lose_their_addresses(tool, tmp_path):
    db_path = tmp_path / "wtmp.db"
    with sqlite3.connect(db_path) as db:
        db.execute(WTMPDB_SCHEMA)
        db.executemany(
            "INSERT INTO wtmp(Type, User, Login, Logout, TTY, RemoteHost, Service) VALUES (3, ?, ?, NULL, ?, ?, ?)",
            [
                ("alice", 1796368165000000, "ssh:notty", "192.0.2.7", "sshd"),
                ("bob", 1796368166000000, "pts/0", "2001:db8::7", "sshd"),
                ("root", 1796368167000000, "tty1", None, "login"),  # a console login: nothing to do
            ],
        )
    done = tool.scrub_logins(anonymize, files=(), databases=[str(db_path)])
    assert done == [f"scrubbed 2 record(s) in {db_path}"]
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT User, TTY, RemoteHost, Service FROM wtmp ORDER BY ID").fetchall()
    assert rows == [("alice", "ssh:notty", "0", "sshd"), ("bob", "pts/0", "0", "sshd"), ("root", "tty1", None, "login")]
    assert tool.scrub_logins(anonymize, files=(), databases=[str(db_path)]) == []


def test_an_empty_wtmpdb_file_is_left_alone(tool, tmp_path):
    """The role makes wtmp.db before the first login (an empty file is an empty database)."""
    db_path = tmp_path / "wtmp.db"
    db_path.write_bytes(b"")
    assert tool.scrub_logins(anonymize, files=(), databases=[str(db_path)]) == []
    assert db_path.read_bytes() == b""
