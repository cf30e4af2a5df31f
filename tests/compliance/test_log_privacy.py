"""TOM-LOG-01 (logs anonymised at write time) and TOM-LOG-02 (attack log with IPs, kept 7
days at most, fail2ban on it): real traffic first, then the real files are scanned.

The traffic: a logger line with canary IPv4, IPv6 and mail addresses; a failed SSH login
from another lab host with a canary user name (and one whose name is a canary mail
address); on web servers a request with the canaries in URL and Referer; on mail servers
an SMTP transaction from another lab host with the canary as sender and recipient.
The scan: every text log below /var/log (except the attack log), the journal,
`last -i` and `lastb -i`, with a detector that shares no code with the anonymiser
(tests/compliance/pii_scan.py).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import shlex
import time
from pathlib import Path

import pytest

from tests.compliance import sshclient

ROLE = "log_privacy"
SCANNER = (Path(__file__).parent / "pii_scan.py").read_text()


def run_scanner(host, args: str, stdin_command: str | None = None) -> dict:
    code = base64.b64encode(SCANNER.encode()).decode()
    script = f'python3 -c "$(echo {code} | base64 -d)" {args}'
    command = f"{stdin_command} | {script}" if stdin_command else script
    return json.loads(host.check_output(f"sh -c {shlex.quote(command)}"))


def wait_for(check, timeout: float = 20.0, step: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


class Canary:
    def __init__(self):
        self.token = secrets.token_hex(4)
        n = int(self.token[:2], 16)
        self.ipv4 = f"198.51.100.{n}"
        self.ipv6 = f"2001:db8:77::{self.token[:4]}"
        self.mail = f"canary-{self.token}@example.org"
        self.user = f"canary{self.token}"


@pytest.fixture(scope="module")
def traffic(host, address, peer):
    """Canary log line on the host, failed SSH logins from a peer; waits until they are written."""
    canary = Canary()
    host.check_output(
        f"logger -t tomwerk-canary -- 'canary {canary.token} client {canary.ipv4} [{canary.ipv6}]:443"
        f" from=<{canary.mail}> ipv6 {canary.ipv6.upper()}'"
    )
    _, peer_host, peer_address = peer
    for user in (canary.user, canary.mail):
        peer_host.run(
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
            f"-o ConnectTimeout=5 -l {shlex.quote(user)} {address} true"
        )
    if host.exists("nginx"):
        # a web request with the canaries in URL and Referer, from the peer
        url = f"http://{address}/tomwerk-canary?from={canary.mail}&ip={canary.ipv4}"
        fetch = (
            "import urllib.request as u\ntry:\n"
            f"    u.urlopen(u.Request({url!r}, headers={{'Referer': 'http://[{canary.ipv6}]/'}}), timeout=5)\n"
            "except Exception:\n    pass\n"
        )
        peer_host.run(f"python3 -c {shlex.quote(fetch)}")
    smtp = host.exists("postfix")
    if smtp:
        # a mail with the canary as sender and recipient (relaying is refused, postfix logs both)
        send = (
            "import smtplib\ntry:\n"
            f"    s = smtplib.SMTP({address!r}, 25, local_hostname='canary{canary.token}.example.net', timeout=10)\n"
            f"    s.ehlo(); s.mail({canary.mail!r}); s.rcpt({canary.mail!r}); s.quit()\n"
            "except Exception:\n    pass\n"
        )
        peer_host.run(f"python3 -c {shlex.quote(send)}")
    wait_for(lambda: host.run(f"grep -qs 'canary {canary.token}' /var/log/syslog").rc == 0)
    if smtp:
        wait_for(lambda: host.run(f"grep -qs 'canary{canary.token}.example.net' /var/log/syslog").rc == 0)
    wait_for(lambda: host.run(f"grep -qs {canary.user} /var/log/auth.log").rc == 0)
    return canary, peer_address


def raw_leaks(report: dict) -> dict:
    return {path: {k: v for k, v in found.items() if k != "examples"} for path, found in report["leaks"].items()}


@pytest.mark.tom("TOM-LOG-01")
def test_canary_line_is_written_anonymised(host, traffic, evidence):
    """The canary logger line is in /var/log/syslog with 0 and x@x instead of the addresses."""
    canary, _ = traffic
    line = host.run(f"grep -h 'canary {canary.token}' /var/log/syslog").stdout.strip()
    evidence("syslog line", line)
    assert line, "the canary line never reached /var/log/syslog"
    assert canary.ipv4 not in line and canary.ipv6 not in line.lower() and canary.mail not in line
    assert "client 0 [0]:443 from=<x@x> ipv6 0" in line
    if host.exists("postfix"):
        # postfix logged the canary SMTP transaction: client address 0, sender and recipient x@x
        smtp = host.run(f"grep -h 'canary{canary.token}.example.net' /var/log/syslog").stdout.strip()
        evidence("postfix line", smtp)
        assert smtp, "postfix never logged the canary SMTP transaction"
        assert canary.mail not in smtp and "from=<x@x>" in smtp and "to=<x@x>" in smtp
        assert "[0]" in smtp


@pytest.mark.tom("TOM-LOG-01")
def test_no_address_in_any_log_file(host, role_vars, traffic, evidence):
    """No text log below /var/log holds an IP or mail address, the attack log excepted."""
    attack_dir = str(Path(role_vars["log_privacy_attack_log"]).parent)
    report = run_scanner(host, f"files /var/log --skip {attack_dir} --skip /var/log/remote-attack")
    evidence("files scanned", report["scanned"])
    evidence("files with addresses", raw_leaks(report))
    assert report["scanned"] > 0
    assert report["leaks"] == {}


@pytest.mark.tom("TOM-LOG-01")
def test_journal_keeps_no_raw_copy(host, role_vars, traffic, evidence):
    """journald stores nothing persistently and its output holds no address."""
    storage = host.run("systemd-analyze cat-config systemd/journald.conf | grep -E '^Storage='").stdout.split()
    evidence("journald Storage", storage[-1:] or "default")
    assert storage and storage[-1] == f"Storage={role_vars['log_privacy_journal_storage']}"
    # (in containers /var/log/journal is a mount point: it may exist, but hold no journal file)
    files = host.run("find /var/log/journal /run/log/journal -name '*.journal*' 2>/dev/null").stdout.split()
    evidence("journal files", files if role_vars["log_privacy_journal_storage"] == "volatile" else len(files))
    assert not [f for f in files if f.startswith("/var/log/journal")]
    if role_vars["log_privacy_journal_storage"] == "none":
        assert not files
    report = run_scanner(host, "stdin", "journalctl --no-pager -q -o short 2>/dev/null")
    evidence("journal lines", report["scanned"])
    assert report["leaks"] == {}, raw_leaks(report)


@pytest.mark.tom("TOM-LOG-01")
def test_rsyslog_listens_on_the_dev_log_senders_use(host, evidence):
    """rsyslog's /dev/log is the socket sshd, sudo and fail2ban write to.

    Debian 13's rsyslog unit has PrivateDevices=yes: the socket would be made in a
    private /dev that no sender sees (seen in the lab without the drop-in: logger
    found no /dev/log, no line arrived). The socket senders see must be the one in
    rsyslog's own view of /dev; the canary line of the checks above proves lines
    really arrive through it."""
    private = host.check_output("systemctl show -P PrivateDevices rsyslog.service")
    pid = host.check_output("systemctl show -P MainPID rsyslog.service")
    assert pid.isdigit() and pid != "0", "rsyslog is not running"
    seen = host.check_output("stat -L -c %d:%i /dev/log")
    rsyslog = host.check_output(f"stat -L -c %d:%i /proc/{pid}/root/dev/log")
    evidence("rsyslog PrivateDevices", private)
    evidence("/dev/log as senders see it / as rsyslog sees it", f"{seen} / {rsyslog}")
    assert private == "no"
    assert seen == rsyslog


@pytest.mark.tom("TOM-LOG-01")
def test_login_records_hold_no_address(host, traffic, address, admin_key, ssh_port, evidence):
    """wtmp, btmp, utmp, lastlog and, on Debian 13, wtmpdb's database hold no address.

    The records are read by the detector's own parsers, not by `last`: Debian 13
    has no `last`, and its sshd writes logins with the address to wtmp.db."""
    user, key = admin_key
    login = sshclient.login_with_key(address, ssh_port, user, key, "true", tty=True)
    assert login.ok, f"the admin login that writes fresh login records failed: {login.stderr}"

    def clean():
        report = run_scanner(host, "logins")
        return None if report["leaks"] else report

    # the path unit scrubs right after each write; give it a moment after the logins
    report = wait_for(clean, timeout=10) or run_scanner(host, "logins")
    evidence("login records read (records per file)", report["scanned"])
    evidence("login records with addresses", raw_leaks(report) or "none")
    assert report["scanned"], "no login record file found on the host"
    if host.file("/usr/sbin/sshd").exists and "libwtmpdb" in host.run("ldd /usr/sbin/sshd").stdout:
        assert "/var/lib/wtmpdb/wtmp.db" in report["scanned"], "sshd writes wtmpdb, but its database was not read"
    assert not report["leaks"], raw_leaks(report)


@pytest.mark.tom("TOM-LOG-02")
def test_attack_log_keeps_the_failed_login_raw(host, role_vars, traffic, evidence):
    """The failed logins are in the attack log with the peer's address; root:adm 0640."""
    canary, peer_address = traffic
    path = role_vars["log_privacy_attack_log"]
    lines = wait_for(lambda: host.run(f"grep -h -e {canary.user} -e {canary.mail} {path}").stdout.splitlines())
    attack = host.file(path)
    evidence("attack log lines of the canary logins", len(lines))
    evidence("attack log owner/mode", f"{attack.user}:{attack.group} {oct(attack.mode)}")
    assert lines and all(peer_address in line for line in lines), lines
    assert any(canary.mail in line for line in lines), "the mail-shaped user name is kept raw in the attack log"
    assert (attack.user, attack.group, attack.mode) == ("root", "adm", 0o640)
    assert host.run(f"grep -c {peer_address} /var/log/auth.log").stdout.strip() in ("", "0")


@pytest.mark.tom("TOM-LOG-02")
def test_attack_entry_past_the_retention_is_deleted(host, role_vars, evidence):
    """An attack-log entry aged past the limit goes at the next cleanup; none older remains."""
    path = role_vars["log_privacy_attack_log"]
    days = int(role_vars["log_privacy_attack_retention_days"])
    aged = dt.datetime.now(dt.UTC) - dt.timedelta(days=days, minutes=5)
    rotated = f"{path}.{aged:%Y%m%dT%H%M%S}"
    stamp = aged.isoformat(timespec="microseconds")
    host.check_output(
        f"sh -c {shlex.quote(f'echo {stamp} test sshd[1]: Invalid user aged from 192.0.2.99 > {rotated}')}"
    )
    host.check_output("systemctl start tomwerk-attack-cleanup.service")
    evidence("aged entry", f"{stamp} in {rotated}")
    assert not host.file(rotated).exists
    # and nothing in the attack logs is older than the limit
    oldest = host.run(f"sh -c 'cat {path} {path}.* 2>/dev/null | cut -c1-32 | sort | head -1'").stdout.strip()
    evidence("oldest attack-log entry", oldest or "none")
    if oldest:
        age = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(oldest)
        assert age <= dt.timedelta(days=days)


@pytest.mark.tom("TOM-LOG-02")
def test_fail2ban_bans_from_the_attack_log(host, role_vars, traffic, evidence):
    """The sshd jail reads the attack log only, its filter finds the failed logins there, and a
    ban is logged raw in the attack log but anonymised in syslog."""
    path = role_vars["log_privacy_attack_log"]
    status = host.check_output("fail2ban-client status sshd")
    evidence("fail2ban status sshd", status)
    files = status.split("File list:", 1)[1].split("\n", 1)[0].split()
    assert files == [path]
    regex = host.run(f"fail2ban-regex {path} sshd")
    assert regex.rc == 0 and "Lines: " in regex.stdout
    matched = int(regex.stdout.split("Failregex: ", 1)[1].split()[0])
    evidence("fail2ban-regex matched lines", matched)
    assert matched > 0
    banned = f"192.0.2.{int(traffic[0].token[2:4], 16)}"
    host.check_output(f"fail2ban-client set sshd banip {banned}")
    try:
        assert wait_for(lambda: host.run(f"grep -q 'Ban {banned}' {path}").rc == 0, timeout=15)
    finally:
        host.run(f"fail2ban-client set sshd unbanip {banned}")
    assert host.run(f"grep -c 'Ban {banned}' /var/log/syslog").stdout.strip() in ("", "0")


@pytest.mark.tom("TOM-LOG-02")
def test_daily_rotation_keeps_fail2ban_on_the_attack_log(host, role_vars, evidence):
    """When the cleanup rotates the attack log, an empty live file with the same owner and mode takes its place
    and fail2ban goes on reading it (a file that stays missing is dropped by fail2ban for good)."""
    path = role_vars["log_privacy_attack_log"]
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat(timespec="microseconds")
    entry = f"{yesterday} test sshd[1]: Invalid user rotated from 192.0.2.98 port 22"
    host.check_output(f"sh -c {shlex.quote(f'echo {entry} >> {path}')}")
    host.check_output("systemctl start tomwerk-attack-cleanup.service")
    rotated = host.run(f"sh -c 'grep -l \"Invalid user rotated\" {path}.*'").stdout.split()
    evidence("rotated files", rotated)
    assert rotated, "the cleanup did not rotate a live file holding yesterday's entry"
    live = host.file(path)
    evidence("live attack log after the rotation", f"{live.user}:{live.group} {oct(live.mode)} {live.size} bytes")
    assert live.exists and (live.user, live.group, live.mode) == ("root", "adm", 0o640)
    time.sleep(3)  # a few polls of fail2ban's backend
    status = host.check_output("fail2ban-client status sshd")
    files = status.split("File list:", 1)[1].split("\n", 1)[0].split()
    evidence("fail2ban sshd jail reads", files)
    assert files == [path]
