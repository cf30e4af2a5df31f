"""TOM-RET-01: every log class keeps its entries no longer than its limit (web access
logs 7 days, other logs 7..30 days, attack logs log_privacy's 7 days).

The classes, their files (globs) and limits are those the role recorded in
/etc/tomwerk/state/retention.json. The ages are read from the files' first lines here,
with the exporter's parser (tomwerk_host.exporter.collectors.retention), not with the
host's own sweep command.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import shlex
from pathlib import Path

import pytest

from tomwerk_host.exporter.collectors import retention as parser

ROLE = "retention"
DAY = 86400
STATE = "/etc/tomwerk/state/retention.json"

# One program run on the host: per class, each file's size, mtime and head (base64).
HEADS = r"""
import base64, glob, json, os, sys
state = json.load(open(sys.argv[1]))
out = {}
for c in state["vars"]["retention_classes"]:
    files = {}
    for pattern in c["paths"]:
        for p in glob.glob(pattern):
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    files[p] = [os.path.getmtime(p), base64.b64encode(f.read(65536)).decode()]
    out[c["name"]] = {"limit_days": c["limit_days"], "files": files}
print(json.dumps(out))
"""


def classes(host) -> list[dict]:
    return json.loads(host.file(STATE).content_string)["vars"]["retention_classes"]


def line_for(klass: str, at: float) -> str:
    """An entry in the format the class's files have."""
    stamp = dt.datetime.fromtimestamp(at, dt.UTC)
    if klass == "web_access":
        return f'0.0.0.0 - - [{stamp:%d/%b/%Y:%H:%M:%S} +0000] "GET /retention-test HTTP/1.1" 200 1 "-" "-"'
    if klass == "logs":
        return f"{stamp:%b} {stamp.day:2d} {stamp:%H:%M:%S} retention-test tag: aged entry"
    return f"{stamp.isoformat()} retention-test tag: aged entry"


def plant(host, path: str, line: str, mtime: float, gz: bool) -> None:
    write = f"gzip -c > {shlex.quote(path)}" if gz else f"cat > {shlex.quote(path)}"
    host.check_output(f"printf '%s\\n' {shlex.quote(line)} | {write} && touch -d @{int(mtime)} {shlex.quote(path)}")


@pytest.mark.tom("TOM-RET-01")
def test_logrotate_has_one_entry_per_file_within_the_limit(host, evidence):
    """logrotate -d: no duplicate or error; the rsyslog files and nginx's access log rotate daily with
    at most limit-1 copies (a file rotated k days ago holds entries up to k+1 days old)."""
    state = json.loads(host.file(STATE).content_string)["vars"]
    result = host.run("logrotate --debug --state /dev/null /etc/logrotate.conf")
    # logrotate 3.22 (Debian 13) puts "empty log files are not rotated, " before the count.
    patterns = re.findall(
        r"^rotating pattern: (.+?)\s+after (\S+) days?\b[^(\n]*\((\d+) rotations\)", result.stderr, re.M
    )
    seen: dict[str, list[tuple[str, int]]] = {}
    for files, period, count in patterns:
        for name in files.split():
            seen.setdefault(name, []).append((period, int(count)))
    wanted = {
        "/var/log/syslog": state["retention_logs_days"],
        "/var/log/auth.log": state["retention_logs_days"],
        "/var/log/mail.log": state["retention_logs_days"],
        "/var/log/nginx/access.log": state["retention_web_access_days"],
    }
    evidence("logrotate entries", {name: seen.get(name) for name in wanted})
    assert result.rc == 0, result.stderr[-500:]
    assert not re.search(r"(?i)duplicate|^error:", result.stderr, re.M)
    for name, limit in wanted.items():
        assert len(seen.get(name, [])) == 1, f"{name}: {seen.get(name)}"
        period, count = seen[name][0]
        assert period == "1" and count <= limit - 1, f"{name}: every {period} days, {count} copies"


@pytest.mark.tom("TOM-RET-01")
def test_entries_beyond_the_limit_are_gone_after_the_sweep(host, evidence):
    """Per class, a rotated file whose entry and mtime are older than the limit (plus a young one):
    after tomwerk-retention.service the old one is gone, the young one kept."""
    now = dt.datetime.now(dt.UTC).timestamp()
    planted = []
    for item in classes(host):
        for pattern in item["expire"][:1]:
            if not host.file(str(Path(pattern).parent)).is_directory:
                continue
            limit = int(item["limit_days"])
            old = pattern.replace("*", f"{limit + 3}.gz")
            young = pattern.replace("*", f"{limit + 4}")
            plant(host, old, line_for(item["name"], now - (limit + 3) * DAY), now - (limit + 3) * DAY, gz=True)
            plant(host, young, line_for(item["name"], now - DAY), now - DAY, gz=False)
            planted.append((item["name"], old, young))
    assert planted, "no class has a rotated-file pattern in an existing directory"
    try:
        host.check_output("systemctl start tomwerk-retention.service")
        after = {name: (host.file(old).exists, host.file(young).exists) for name, old, young in planted}
        evidence("class: (aged file still there, young file still there)", after)
        for name, (old_there, young_there) in after.items():
            assert not old_there, f"{name}: the aged rotated file is still there"
            assert young_there, f"{name}: the sweep deleted a file within the limit"
    finally:
        host.run("rm -f " + " ".join(shlex.quote(p) for _, old, young in planted for p in (old, young)))


@pytest.mark.tom("TOM-RET-01")
def test_log_server_store_keeps_no_longer_than_the_class(host, evidence):
    """On the log server, log_server's retention keeps within the class limits: a day file older than
    the class limit is gone after tomwerk-log-server-retention.service."""
    if not host.file("/etc/tomwerk/state/log_server.json").exists:
        pytest.skip("no log server on this host")
    server = json.loads(host.file("/etc/tomwerk/state/log_server.json").content_string)["vars"]
    limits = {c["name"]: int(c["limit_days"]) for c in classes(host)}
    evidence("log_server retention vs class", {
        "store": [server["log_server_retention_days"], limits["logs"]],
        "attack store": [server["log_server_attack_retention_days"], limits["attack"]],
    })  # fmt: skip
    assert int(server["log_server_retention_days"]) <= limits["logs"]
    assert int(server["log_server_attack_retention_days"]) <= limits["attack"]
    now = dt.datetime.now(dt.UTC)
    aged = []
    for store, klass in ((server["log_server_store"], "logs"), (server["log_server_attack_store"], "attack")):
        day = now - dt.timedelta(days=limits[klass] + 1)
        path = f"{store}/retention-class-test/{day:%Y-%m-%d}.log"
        host.check_output(f"mkdir -p {shlex.quote(str(Path(path).parent))}")
        plant(host, path, line_for("attack", day.timestamp()), day.timestamp(), gz=False)
        aged.append(path)
    try:
        host.check_output("systemctl start tomwerk-log-server-retention.service")
        evidence("aged day files still there", {p: host.file(p).exists for p in aged})
        assert not any(host.file(p).exists for p in aged)
    finally:
        host.run("rm -rf " + " ".join(shlex.quote(str(Path(p).parent)) for p in aged))


@pytest.mark.tom("TOM-RET-01")
def test_oldest_entry_of_each_class_is_within_its_limit(host, evidence):
    """The first line's timestamp of every file of every class (mtime only where none parses)."""
    out = host.check_output(f"python3 -c {shlex.quote(HEADS)} {STATE}")
    now = dt.datetime.now(dt.UTC).timestamp()
    ages = {}
    for name, item in json.loads(out).items():
        times = []
        for path, (mtime, head64) in item["files"].items():
            raw = base64.b64decode(head64)
            if not raw:
                continue
            gz = path.endswith(".gz")
            at, any_line = parser.oldest_in_head(parser.head_bytes(raw, gz), now)
            if at is None and (any_line or gz):
                at = mtime
            if at is not None:
                times.append((at, path))
        oldest = min(times) if times else None
        ages[name] = {
            "files": len(item["files"]),
            "oldest_days": round((now - oldest[0]) / DAY, 3) if oldest else None,
            "oldest_file": oldest[1] if oldest else None,
            "limit_days": item["limit_days"],
        }
    evidence("oldest entry per class", ages)
    for name, age in ages.items():
        assert age["oldest_days"] is None or age["oldest_days"] <= age["limit_days"], f"{name}: {age}"


@pytest.mark.tom("TOM-RET-01")
def test_journal_keeps_nothing_or_at_most_the_limit(host, evidence):
    """journald: with Storage=none no journal file exists; otherwise MaxRetentionSec is within the limit."""
    state = json.loads(host.file(STATE).content_string)["vars"]
    config = host.check_output("systemd-analyze cat-config systemd/journald.conf")
    settings = dict(re.findall(r"^(Storage|MaxRetentionSec)=(\S*)", config, re.M))  # the last one wins
    files = host.run("find /var/log/journal /run/log/journal -name '*.journal*' 2>/dev/null").stdout.split()
    evidence("journald", {"settings": settings, "journal files": len(files)})
    assert settings.get("MaxRetentionSec") == f"{state['retention_logs_days']}day"
    if settings.get("Storage") == "none":
        assert state["retention_journal_kept"] is False
        assert files == []
