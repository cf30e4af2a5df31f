"""TOM-AV-01: servers holding customer data are scanned for malware at least daily;
TOM-AV-02: incoming mail is scanned and infected mail rejected, its content not kept.

Detection is real: the EICAR test file is dropped into a scanned path and the
scheduled scan service (clamdscan against the running clamd) must find it.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import itertools
import json
import re
import time

import pytest

from tests.compliance.conftest import exporter_sample, get_host

ROLE = "antivirus"
SCAN_SERVICE = "tomwerk-antivirus-scan.service"
SCAN_TIMER = "tomwerk-antivirus-scan.timer"
# The EICAR anti-virus test file (eicar.org), harmless by design; base64 so no scanner flags this file.
EICAR = base64.b64decode(
    "WDVPIVAlQEFQWzRcUFpYNTQoUF4pN0NDKTd9JEVJQ0FSLVNUQU5EQVJELUFOVElWSVJVUy1URVNULUZJTEUhJEgrSCo="
).decode()


def run_scan(host) -> dict:
    """Run the scheduled scan now (systemctl start waits for the oneshot) and read its result."""
    result = host.run(f"systemctl start {SCAN_SERVICE}")
    assert result.rc == 0, result.stderr
    return json.loads(host.file("/var/lib/tomwerk/antivirus/scan.json").content_string)


def scanned_dir(host, role_vars) -> str:
    """The first scanned path that is a directory (created for the test if none exists yet)."""
    for path in role_vars["antivirus_scan_paths"]:
        if host.file(path).is_directory:
            return path
    path = role_vars["antivirus_scan_paths"][0]
    host.run_test(f"install -d -m 0755 {path}")
    return path


@pytest.mark.tom("TOM-AV-01")
def test_clamd_runs_with_the_configured_database(host, role_vars, evidence):
    """clamd answers PING, loads the databases of its DatabaseDirectory, and detects the EICAR file in a stream."""
    assert host.service("clamav-daemon").is_running
    assert host.run("clamdscan --ping 1").stdout.strip() == "PONG"
    databases = host.check_output("ls -1 /var/lib/clamav").split()
    evidence("databases", databases)
    if role_vars["antivirus_signature_source"] == "local":
        assert "tomwerk.hdb" in databases
        assert not [d for d in databases if d.endswith((".cvd", ".cld"))], databases
    else:
        assert [d for d in databases if d.startswith(("main.", "daily."))], databases
    # The stream goes through clamd: the signature loaded there decides.
    out = host.run(f"printf '%s' '{EICAR}' | clamdscan --no-summary -").stdout.strip()
    evidence("clamdscan of the EICAR stream", out)
    assert out.endswith(" FOUND"), out


@pytest.mark.tom("TOM-AV-01")
def test_scan_timer_runs_at_least_daily(host, role_vars, evidence):
    """The scan timer is active, and its next two runs are at most 24 hours apart."""
    timer = host.service(SCAN_TIMER)
    assert timer.is_enabled and timer.is_running
    timers = host.check_output(f"systemctl show -P TimersCalendar {SCAN_TIMER}")
    spec = timers.split("OnCalendar=", 1)[1].split(" ;", 1)[0].strip()
    out = host.check_output(f"TZ=UTC systemd-analyze calendar --iterations=3 '{spec}'")
    # "    Next elapse: Sun 2026-11-22 02:30:00 UTC", then "       Iter. #2: Mon ..." (systemd 252,
    # Debian 12) or "   Iteration #2: Mon ..." (systemd 257, Debian 13).
    stamps = re.findall(r"(?:Next elapse|Iter(?:\.|ation) #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", out)
    seconds = [calendar.timegm(time.strptime(s, "%Y-%m-%d %H:%M:%S")) for s in stamps]
    gaps = [b - a for a, b in itertools.pairwise(seconds)]
    evidence("OnCalendar", spec)
    evidence("hours between runs", [g / 3600 for g in gaps])
    assert len(gaps) == 2 and max(gaps) <= 86400, out
    assert max(gaps) == role_vars["antivirus_scan_interval_hours"] * 3600


@pytest.mark.tom("TOM-AV-01")
def test_eicar_in_a_scanned_path_is_found_logged_and_counted(host, role_vars, address, evidence):
    """EICAR dropped into a scanned path is found by the scan service, logged to syslog and shown by the metric; after
    removal the next scan is clean again."""
    directory = scanned_dir(host, role_vars)
    path = f"{directory}/tomwerk-eicar-{int(time.time())}.com"
    path_id = hashlib.sha256(path.encode()).hexdigest()[:16]
    host.run_test(f"printf '%s' '{EICAR}' > {path}")
    try:
        result = run_scan(host)
        evidence("scan with EICAR", {k: result[k] for k in ("files_scanned", "infected_files", "infected")})
        assert result["infected_files"] >= 1
        assert any(f["path_id"] == path_id and f["root"] == directory for f in result["infected"]), result
        assert path not in json.dumps(result)  # no file names in the result
        # journald hands everything to rsyslog (log privacy pipeline); its local files hold the line.
        logged = host.run(
            f"grep -hs 'tomwerk-antivirus.*path_id={path_id}' /var/log/syslog /var/log/messages /var/log/daemon.log"
        )
        evidence("syslog", logged.stdout.strip().splitlines()[-1:])
        assert f"path_id={path_id}" in logged.stdout
        # The exporter caches a collector's check for --min-interval seconds.
        deadline = time.time() + 60
        while (value := exporter_sample(host, "tomwerk_antivirus_infected_files")) in (
            None,
            0.0,
        ) and time.time() < deadline:
            time.sleep(5)  # fmt: skip
        evidence("tomwerk_antivirus_infected_files with EICAR", value)
        assert value is not None and value >= 1
    finally:
        host.run(f"rm -f {path}")
    result = run_scan(host)
    evidence("scan after removal", {k: result[k] for k in ("files_scanned", "infected_files")})
    assert result["infected_files"] == 0
    assert time.time() - result["last_completed_timestamp"] < 120


@pytest.mark.tom("TOM-AV-01")
def test_last_scan_is_recent_and_clean(host, role_vars, evidence):
    """The last completed scan is younger than antivirus_scan_max_age_hours and found nothing."""
    result = json.loads(host.file("/var/lib/tomwerk/antivirus/scan.json").content_string)
    age = time.time() - result["last_completed_timestamp"]
    evidence("last scan (age in hours)", round(age / 3600, 2))
    evidence("files scanned", result["files_scanned"])
    assert age < role_vars["antivirus_scan_max_age_hours"] * 3600
    assert result["infected_files"] == 0


@pytest.mark.tom("TOM-AV-01")
def test_stale_signatures_flip_the_metric(host, role_vars, address, evidence):
    """Signatures aged beyond antivirus_signature_max_age_days make the exporter report the TOM as not compliant."""
    if role_vars["antivirus_signature_source"] != "local":
        pytest.skip("only with the local database: freshclam's databases carry their own build time")
    database = "/var/lib/clamav/tomwerk.hdb"
    mtime = host.check_output(f"stat -c %Y {database}")
    old = int(time.time()) - (role_vars["antivirus_signature_max_age_days"] + 1) * 86400
    host.run_test(f"touch -d @{old} {database}")
    try:
        deadline = time.time() + 60
        while (
            value := exporter_sample(host, "tomwerk_antivirus_signature_timestamp_seconds")
        ) != old and time.time() < deadline:
            time.sleep(5)  # fmt: skip
        evidence("signature timestamp", value)
        assert value == old
        compliant = exporter_sample(host, 'tomwerk_tom_compliant{tom="TOM-AV-01"}')
        evidence("compliant", compliant)
        assert compliant == 0
    finally:
        host.run(f"touch -d @{mtime} {database}")


# ---------------------------------------------------------------- TOM-AV-02: incoming mail

SEND = r"""
import smtplib, sys
from email.message import EmailMessage
to, server, marker, attachment = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].encode()
msg = EmailMessage()
msg["From"] = "tomwerk-check@example.test"
msg["To"] = to
msg["Subject"] = marker
msg.set_content("tomwerk antivirus check " + marker)
msg.add_attachment(attachment, maintype="application", subtype="octet-stream", filename="eicar.com")
try:
    with smtplib.SMTP(server, 25, timeout=30) as smtp:
        smtp.send_message(msg)
    print(250)
except smtplib.SMTPResponseException as exc:
    print(exc.smtp_code, exc.smtp_error.decode(errors="replace"))
except smtplib.SMTPRecipientsRefused as exc:
    print(list(exc.recipients.values())[0][0])
"""


def pytest_generate_tests(metafunc):
    # The mail check runs on every host that carries the antivirus role with the milter;
    # an inventory without such a host (no mail role) has nothing to check.
    if "mail_hostname" in metafunc.fixturenames:
        from tests.compliance.conftest import _inventory

        inv = _inventory(metafunc.config)
        hosts = [h for h in inv.hosts_with_role(ROLE) if inv.role_vars(h, ROLE).get("antivirus_mail_milter")]
        wanted = metafunc.config.getoption("hosts", None)
        if wanted:
            hosts = [h for h in hosts if h in wanted.split(",")]
        metafunc.parametrize("mail_hostname", hosts, scope="module")


def send(sender_host, to: str, server: str, marker: str, attachment: str) -> int:
    script = SEND.replace("'", "'\"'\"'")
    out = sender_host.check_output(f"python3 -c '{script}' {to} {server} {marker} '{attachment}'")
    return int(out.split()[0])


@pytest.mark.tom("TOM-AV-02")
def test_infected_mail_is_rejected_and_not_kept(inventory, mail_hostname, evidence):
    """Mail with the EICAR file attached, sent to port 25 from another host, is rejected with 5xx and is found in no
    mailbox, queue or quarantine; the same mail without the virus is accepted."""
    from tests.compliance.conftest import address_of

    mail = get_host(inventory, mail_hostname)
    sender_name = next(h for h in inventory.hosts() if h != mail_hostname)
    sender = get_host(inventory, sender_name)
    server = address_of(inventory, mail_hostname)
    domain = mail.check_output("postconf -h mydomain")
    user = (inventory.role_vars(mail_hostname, "mail_tls").get("mail_tls_mailboxes") or ["postmaster"])[0]
    mailbox = f"{user}@{domain}"
    home = mail.run(f"getent passwd {user} | cut -d: -f6").stdout.strip()
    infected, clean = f"tomwerk-av-{int(time.time())}-infected", f"tomwerk-av-{int(time.time())}-clean"
    code = send(sender, mailbox, server, infected, EICAR)
    evidence("SMTP reply to the infected mail", code)
    assert 500 <= code < 600
    code_clean = send(sender, mailbox, server, clean, "harmless attachment")
    evidence("SMTP reply to the clean mail", code_clean)
    assert code_clean == 250
    places = f"/home /var/mail /var/spool/postfix /var/lib/clamav /tmp /var/tmp {home}".strip()
    deadline = time.time() + 20
    while not (found := mail.run(f"grep -rls {clean} {places}").stdout.split()) and time.time() < deadline:
        time.sleep(1)  # fmt: skip
    kept = mail.run(f"grep -rls {infected} {places}").stdout.split()
    evidence("files holding the infected mail", kept)
    assert found, "the clean mail was not delivered: the search would prove nothing"
    assert kept == []
    mail.run("rm -f " + " ".join(f for f in found if "/Maildir/" in f))
