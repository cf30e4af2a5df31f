"""The log scanner behind TOM-LOG-01's checks (tests/compliance/pii_scan.py): it must find
what the anonymiser missed, and not flag what the anonymiser wrote."""

from __future__ import annotations

import pytest

from tests.compliance import pii_scan


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
    ],
)
def test_the_scanner_finds_leaks_and_not_anonymised_text(line, found):
    assert pii_scan.find(line) == found
