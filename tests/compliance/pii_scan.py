"""Find IP and mail addresses in logs: a detector that shares no code with tomwerk_host/anonymize.py.

Run on a host by the log-privacy checks (python3, standard library only):

    python3 pii_scan.py files ROOT [--skip DIR]...   every text log below ROOT (.gz too)
    python3 pii_scan.py stdin                        lines on stdin (journalctl)
    python3 pii_scan.py logins                       the login records, read here (see below)

It prints one JSON object: {source: {"lines": n, "findings": n, "examples": [...]}} for the
sources that hold personal data (examples: at most three, the address and its line cut to
160 characters). It cuts lines into tokens at characters that never occur in an address
and asks `ipaddress` about every plausible cut (a port, a zone id, a label before a colon
removed); mail is local@domain. 0.0.0.0 and :: name nobody and do not count, and neither
do x@x and systemd template units (getty@tty1.service).
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import os
import re
import string
import sys

_TOKEN_SPLIT = re.compile(r"[\s\[\](){}<>\"'`,;=|/\\*!?&^~$#]+")
# A domain is letters, digits, dots and hyphens (IDNs included via \w): a query string
# like "from=x@x&ip=0" ends the address at "&".
# A backslash ends the local part: rsyslog writes control characters as "\r\n", and the
# anonymiser takes the "n" of "\nalice@example.org" with the address ("\r\x@x").
_MAIL = re.compile(r"[^\s@<>\[\](),;:\"'=/\\]+@[\w.-]+")
# A unit and its drop-in and dependency directories (user@0.service.d, as dpkg names it).
_UNIT_SUFFIXES = tuple(
    "." + s + extra
    for s in ["service", "socket", "timer", "mount", "automount", "path", "slice", "scope", "swap", "device", "target"]
    for extra in ("", ".d", ".wants", ".requires")
)
SKIP_NAMES = ("wtmp", "btmp", "lastlog", "faillog")


def _is_personal_ip(text: str) -> bool:
    if not ((text.count(".") == 3 and text[:1].isdigit()) or "::" in text or text.count(":") >= 6):
        return False
    parts = text.split(".")
    if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 for p in parts):
        text = ".".join(str(int(p)) for p in parts)
    try:
        return not ipaddress.ip_address(text).is_unspecified
    except ValueError:
        return False


def _cuts(token: str) -> set[str]:
    stripped = token.strip(".:")
    cuts = {token, stripped}
    if ":" in stripped:
        cuts.add(stripped.partition(":")[2])
        cuts.add(stripped.rpartition(":")[0])
        cuts.add(stripped.rpartition(".")[2])
    unglued = stripped.lstrip(string.ascii_letters + "_-")
    if unglued[:1].isdigit() and "." in unglued and ":" not in unglued:
        cuts.add(unglued)
    return cuts | {c.split("%", 1)[0] for c in cuts}


def find(line: str) -> list[str]:
    found = []
    for token in _TOKEN_SPLIT.split(line):
        if "." in token or "::" in token or token.count(":") >= 6:
            found.extend(c for c in _cuts(token) if _is_personal_ip(c))
    if "@" in line:
        for mail in _MAIL.findall(line):
            mail = mail.strip(".")
            local, _, domain = mail.partition("@")
            if not any(ch.isalnum() for ch in local) or not domain[:1].isalnum():
                continue  # "sshd@.service.wants" (a systemd path) names no mailbox
            if mail == "x@x" or domain.endswith(_UNIT_SUFFIXES):
                continue
            found.append(mail)
    return found


def scan_lines(lines) -> dict:
    result = {"lines": 0, "findings": 0, "examples": []}
    for line in lines:
        result["lines"] += 1
        hits = find(line)
        if hits:
            result["findings"] += 1
            if len(result["examples"]) < 3:
                result["examples"].append([sorted(set(hits)), line.rstrip("\n")[:160]])
    return result


def text_logs(root: str, skip: list[str]):
    skip_real = {os.path.realpath(s) for s in skip}
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(s for s in subdirs if os.path.realpath(os.path.join(directory, s)) not in skip_real)
        for name in sorted(names):
            path = os.path.join(directory, name)
            if name.startswith(SKIP_NAMES) or name.endswith((".journal", ".journal~", ".xz")):
                continue
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            yield path


def scan_file(path: str) -> dict | None:
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None  # binary
    return scan_lines(data.decode("utf-8", "replace").splitlines())


# Login records, read by this file's own parsers: Debian 13 ships no `last`,
# `lastb` or `lastlog`, and a check that pipes a missing tool's empty output
# would pass. A record file that exists but cannot be read fails the scan.
# struct utmp (x86_64 glibc): ut_user 44..76, ut_host 76..332, ut_addr_v6 348..364.
UTMP = (384, (44, 76), (76, 332), (348, 364))
LASTLOG = (292, (36, 292))  # struct lastlog: ll_time, ll_line[32], ll_host[256]
UTMP_FILES = ("/var/log/wtmp", "/var/log/btmp", "/run/utmp")
LASTLOG_FILE = "/var/log/lastlog"
WTMPDB_FILE = "/var/lib/wtmpdb/wtmp.db"  # Debian 13: sshd itself writes here (libwtmpdb)


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def utmp_lines(path: str):
    size, user, host, addr = UTMP
    with open(path, "rb") as handle:
        data = handle.read()
    for at in range(0, len(data) - size + 1, size):
        rec = data[at : at + size]
        raw = rec[addr[0] : addr[1]]
        ip = ""
        if any(raw):
            packed = raw[:4] if not any(raw[4:]) else raw
            ip = str(ipaddress.ip_address(packed))
        yield f"{_text(rec[user[0] : user[1]])} {_text(rec[host[0] : host[1]])} {ip}"


def lastlog_lines(path: str):
    size, host = LASTLOG
    with open(path, "rb") as handle:
        while chunk := handle.read(size * 1024):
            if chunk.count(0) == len(chunk):
                continue
            for at in range(0, len(chunk) - size + 1, size):
                text = _text(chunk[at + host[0] : at + host[1]])
                if text:
                    yield text


def wtmpdb_lines(path: str):
    import sqlite3  # only where the database exists: an ImportError then fails the scan

    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
        # The role makes an empty file (an empty database) before the first login.
        if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'wtmp'").fetchone():
            return
        for row in db.execute("SELECT * FROM wtmp"):
            yield " ".join("" if v is None else str(v) for v in row)


def login_sources() -> dict:
    sources = {path: utmp_lines for path in UTMP_FILES}
    sources[LASTLOG_FILE] = lastlog_lines
    sources[WTMPDB_FILE] = wtmpdb_lines
    return {path: reader for path, reader in sources.items() if os.path.exists(path)}


def main(argv: list[str]) -> int:
    report = {}
    if argv[:1] == ["files"]:
        root, skip, rest = argv[1], [], argv[2:]
        while rest[:1] == ["--skip"]:
            skip.append(rest[1])
            rest = rest[2:]
        scanned = 0
        for path in text_logs(root, skip):
            result = scan_file(path)
            if result is None:
                continue
            scanned += 1
            if result["findings"]:
                report[path] = result
        print(json.dumps({"scanned": scanned, "leaks": report}))
    elif argv[:1] == ["logins"]:
        read = {}
        for path, reader in login_sources().items():
            result = scan_lines(list(reader(path)))  # an unreadable file raises: rc 1
            read[path] = result["lines"]
            if result["findings"]:
                report[path] = result
        print(json.dumps({"scanned": read, "leaks": report}))
    else:
        result = scan_lines(sys.stdin)
        print(json.dumps({"scanned": result["lines"], "leaks": {"stdin": result} if result["findings"] else {}}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
