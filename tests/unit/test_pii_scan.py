"""The log scanner behind TOM-LOG-01's checks (tests/compliance/pii_scan.py): it must find
what the anonymiser missed, and not flag what the anonymiser wrote."""

from __future__ import annotations

import pytest

from tests.compliance import pii_scan


def test_login_records_are_read_by_the_scanners_own_parsers(tmp_path):
    """Debian 13 has no `last`: the scanner reads wtmp and wtmpdb itself, and an unreadable file fails."""
    import sqlite3
    import struct

    record = bytearray(384)
    struct.pack_into("<h", record, 0, 7)
    record[44:49] = b"alice"
    record[76:85] = b"192.0.2.7"
    record[348:352] = bytes([192, 0, 2, 7])
    wtmp = tmp_path / "wtmp"
    wtmp.write_bytes(bytes(record))
    assert list(pii_scan.utmp_lines(str(wtmp))) == ["alice 192.0.2.7 192.0.2.7"]
    db = tmp_path / "wtmp.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE wtmp(ID INTEGER PRIMARY KEY, User TEXT, RemoteHost TEXT)")
        con.execute("INSERT INTO wtmp(User, RemoteHost) VALUES ('alice', '0'), ('bob', '2001:db8::7')")
    lines = list(pii_scan.wtmpdb_lines(str(db)))
    assert lines == ["1 alice 0", "2 bob 2001:db8::7"]
    assert pii_scan.scan_lines(lines)["findings"] == 1
    (tmp_path / "empty.db").write_bytes(b"")  # made by the role before the first login
    assert list(pii_scan.wtmpdb_lines(str(tmp_path / "empty.db"))) == []
    (tmp_path / "broken.db").write_bytes(b"not a database")
    with pytest.raises(sqlite3.DatabaseError):
        list(pii_scan.wtmpdb_lines(str(tmp_path / "broken.db")))


@pytest.mark.parametrize(
    ("line", "found"),
    [
        ("Accepted publickey for alice from 192.0.2.7 port 22", ["192.0.2.7"]),
        ("to=<bob@example.org>, relay=x@x", ["bob@example.org"]),
        (r"tomwerk-verify: hosts.\r\nalice@example.org", ["nalice@example.org"]),  # escaped newline, raw mail
        ("COMMAND=/bin/echo X5O!x@x[4", ["X5O!x@x"]),  # part of a local part kept: a leak
        (r"tomwerk-verify: hosts.\r\x@x done", []),  # the anonymiser took the "n" with the address
        ("from 0 port 22, user x@x", []),
        ("Started getty@tty1.service", []),
        (
            "dpkg: warning: unable to delete old directory '/lib/systemd/system/user@0.service.d': Directory not empty",
            [],
        ),
        ("alice@mail.d", ["alice@mail.d"]),
        # Debian 13's apt term.log: a systemd template path, not a mailbox
        ("Created symlink '/etc/systemd/system/sshd@.service.wants/sshd-keygen.service'", []),
        ("mail from alice@-bad and bob@mail.example", ["bob@mail.example"]),
    ],
)
def test_the_scanner_finds_leaks_and_not_anonymised_text(line, found):
    assert pii_scan.find(line) == found
