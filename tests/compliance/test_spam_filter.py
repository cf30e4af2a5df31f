"""TOM-AV-02, spam half: mail received over SMTP is checked for spam, spam is refused,
and nothing of the content is kept or learnt from.

Detection is real: GTUBE, SpamAssassin's standard test string, sent from another
host to port 25, must be refused in the SMTP dialogue by the running spamd.
"""

from __future__ import annotations

import base64
import time

import pytest

from tests.compliance.conftest import address_of, exporter_not_compliant, exporter_sample, get_host

ROLE = "spam_filter"
# GTUBE (spamassassin.apache.org/gtube), base64 so that no filter flags this file.
GTUBE = base64.b64decode(
    "WEpTKkM0SkRCUUFETjEuTlNCTjMqMklETkVOKkdUVUJFLVNUQU5EQVJELUFOVEktVUJFLVRFU1QtRU1BSUwqQy4zNFg="
).decode()
# Where a kept copy or learnt tokens of a mail would end up.
PLACES = "/home /root /var/mail /var/spool/postfix /var/lib/spamassassin /var/lib/spamass-milter /tmp /var/tmp"
# SpamAssassin's stores that learn from content or senders (Bayes, AWL, TxRep).
STORES = (
    r"\( -name 'bayes_toks*' -o -name 'bayes_seen*' -o -name 'bayes_journal*' -o -name 'auto-whitelist*'"
    r" -o -name 'tx-reputation*' -o -name 'user_prefs' \)"
)

SEND = r"""
import smtplib, sys
from email.message import EmailMessage
to, server, marker, body = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
msg = EmailMessage()
msg["From"] = "tomwerk-check@example.test"
msg["To"] = to
msg["Subject"] = "tomwerk spam check " + marker
msg.set_content("Hello,\n\nthis is the tomwerk spam check " + marker + ".\n\n" + body + "\n")
try:
    with smtplib.SMTP(server, 25, timeout=60) as smtp:
        smtp.send_message(msg)
    print(250, "queued")
except smtplib.SMTPResponseException as exc:
    print(exc.smtp_code, exc.smtp_error.decode(errors="replace"))
except smtplib.SMTPRecipientsRefused as exc:
    code, text = list(exc.recipients.values())[0]
    print(code, text.decode(errors="replace"))
"""


def send(sender, to: str, server: str, marker: str, body: str) -> tuple[int, str]:
    script = SEND.replace("'", "'\"'\"'")
    out = sender.check_output(f"python3 -c '{script}' {to} {server} {marker} '{body}'")
    code, _, text = out.partition(" ")
    return int(code), text


@pytest.fixture(scope="module")
def mail(inventory, hostname):
    """What a sender needs: a peer host, the server's address and a mailbox on it."""
    host = get_host(inventory, hostname)
    sender = get_host(inventory, next(h for h in inventory.hosts() if h != hostname))
    domain = host.check_output("postconf -h mydomain")
    user = (inventory.role_vars(hostname, "mail_tls").get("mail_tls_mailboxes") or ["postmaster"])[0]
    home = host.run(f"getent passwd {user} | cut -d: -f6").stdout.strip()
    assert home, f"mailbox user {user} does not exist on {hostname}"
    return sender, address_of(inventory, hostname), f"{user}@{domain}", home


def delivered(host, home: str, marker: str, timeout: float = 90) -> list[str]:
    """Files in the mailbox (the user's home: Maildir) or mail spool that hold marker."""
    deadline = time.time() + timeout
    while not (found := host.run(f"grep -rls {marker} {home} /var/mail").stdout.split()) and time.time() < deadline:
        time.sleep(1)  # fmt: skip
    return found


@pytest.mark.tom("TOM-AV-02")
def test_spam_is_refused_and_ham_delivered_checked(host, mail, evidence):
    """GTUBE from another host is refused with 5xx and kept nowhere; an ordinary mail is delivered and carries
    SpamAssassin's verdict, so it went through spamd."""
    sender, server, mailbox, home = mail
    stamp = int(time.time())
    spam, ham = f"tomwerk-spam-{stamp}-spam", f"tomwerk-spam-{stamp}-ham"
    code, text = send(sender, mailbox, server, spam, GTUBE)
    evidence("SMTP reply to the GTUBE mail", f"{code} {text}")
    assert 500 <= code < 600, text
    code, text = send(sender, mailbox, server, ham, "Best regards")
    evidence("SMTP reply to the ordinary mail", f"{code} {text}")
    assert code == 250, text
    found = delivered(host, home, ham)
    # Once seen in CI: queued but not in the mailbox after 30 s. Say where it is.
    assert found, (
        "the ordinary mail was not delivered: the search for the spam would prove nothing. Queue: "
        + host.run("postqueue -p | tail -n 8").stdout.strip()
        + " | mail log: "
        + host.run("tail -n 12 /var/log/mail.log").stdout.strip()
    )
    try:
        headers = host.file(found[0]).content_string.split("\n\n", 1)[0]
        verdict = [line for line in headers.splitlines() if line.startswith(("X-Spam-Status", "X-Spam-Checker"))]
        evidence("SpamAssassin headers on the delivered mail", verdict)
        assert any(line.startswith("X-Spam-Checker-Version: SpamAssassin") for line in verdict)
        assert any(line.startswith("X-Spam-Status: No") for line in verdict)
        kept = host.run(f"grep -rls {spam} {PLACES} {home}").stdout.split()
        evidence("files holding the refused mail", kept)
        assert kept == []
    finally:
        host.run("rm -f " + " ".join(f for f in found if "/Maildir/" in f))


@pytest.mark.tom("TOM-AV-02")
def test_spamd_learns_nothing_and_asks_no_third_party(host, role_vars, evidence):
    """The running spamd reads no per-user settings, answers on 127.0.0.1 only and, unless
    spam_filter_network_tests, runs local tests only; after checking a mail no Bayes, AWL or TxRep store
    exists anywhere on the host."""
    pid = host.check_output("systemctl show -p MainPID --value spamd")
    assert pid != "0", "spamd is not running"
    args = host.file(f"/proc/{pid}/cmdline").content_string.split("\0")
    evidence("spamd command line", " ".join(args))
    assert "--nouser-config" in args
    assert "--listen=127.0.0.1" in args
    assert ("--local" in args) is (not role_vars["spam_filter_network_tests"])
    lint = host.run("spamassassin --lint")
    assert lint.rc == 0, lint.stderr
    marker = f"tomwerk-spam-{int(time.time())}-local"
    checked = host.run(f"printf 'Subject: {marker}\\n\\n{marker} {GTUBE}\\n' | spamc -d 127.0.0.1 -c")
    evidence("spamc verdict on a local message", checked.stdout.strip())
    score = float(checked.stdout.strip().split("/")[0] or 0)
    assert score >= role_vars["spam_filter_reject_score"], "spamd did not score GTUBE as spam"
    stores = host.run(f"find / -xdev {STORES} -print").stdout.split()
    evidence("learning stores on the host", stores)
    assert stores == []
    kept = host.run(f"grep -rls {marker} {PLACES}").stdout.split()
    assert kept == []


@pytest.mark.tom("TOM-AV-02")
def test_mail_waits_while_spamd_is_down(host, mail, evidence):
    """With spamd stopped, incoming mail is deferred (4xx), not delivered unchecked (spamass-milter alone would pass
    it on), and the exporter reports the spam check down."""
    sender, server, mailbox, home = mail
    marker = f"tomwerk-spam-{int(time.time())}-spamd-down"
    host.run_test("systemctl stop spamd")
    try:
        code, text = send(sender, mailbox, server, marker, "Best regards")
        evidence("SMTP reply while spamd is down", f"{code} {text}")
        assert 400 <= code < 500, text
        deadline = time.time() + 70
        while (up := exporter_sample(host, "tomwerk_spam_spamd_up")) != 0 and time.time() < deadline:
            time.sleep(5)  # fmt: skip
        evidence("tomwerk_spam_spamd_up while spamd is down", up)
        assert up == 0
    finally:
        host.run("systemctl start spamd")
        deadline = time.time() + 120
        while host.run("spamc -d 127.0.0.1 -K").rc != 0 and time.time() < deadline:
            time.sleep(2)  # fmt: skip
        # Later checks read the exporter: wait until its verdicts have caught up. Not only TOM-AV-02's:
        # while the milter was down postfix tempfailed every SMTP command, the TLS probe too (TOM-TLS-03).
        deadline = time.time() + 120
        while (failing := exporter_not_compliant(host)) and time.time() < deadline:
            time.sleep(5)  # fmt: skip
        evidence("TOMs not holding after spamd is back", failing)
    assert delivered(host, home, marker, timeout=1) == [], "mail was delivered although spamd could not check it"
    assert failing == [], "the host did not recover once spamd was back"
