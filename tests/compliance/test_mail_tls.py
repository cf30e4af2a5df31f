"""TOM-TLS-03: mail servers offer TLS and use it whenever the peer can.

The primary proof is a real SMTP conversation from another lab host: STARTTLS
on port 25 negotiates TLS 1.2 or newer, TLS 1.1 is refused, submission wants
STARTTLS before anything else, smtps speaks TLS from the first byte, and a
mail sent over TLS lands in the test mailbox with postfix's TLS Received
header. postconf's effective values are a second check against the role's
variables.
"""

from __future__ import annotations

import json
import re
import shlex
import time
import uuid

import pytest

ROLE = "mail_tls"

# Runs on the peer host (Python standard library only). argv: mode, server, port, [extra].
SMTP_PROBE = r"""
import json, smtplib, socket, ssl, sys
mode, server, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
extra = sys.argv[4] if len(sys.argv) > 4 else ""
out = {}
def ctx(maximum=None):
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    if maximum:
        c.set_ciphers("DEFAULT:@SECLEVEL=0")
        c.minimum_version = ssl.TLSVersion.TLSv1
        c.maximum_version = maximum
    return c
def reply(answer):
    return [answer[0], answer[1].decode(errors="replace")]
def tls_info(sock):
    out["version"] = sock.version()
    out["cipher"] = sock.cipher()[0]
try:
    if mode == "starttls":
        s = smtplib.SMTP(server, port, timeout=10)
        s.ehlo("probe.lab")
        out["features_before"] = sorted(s.esmtp_features)
        code, msg = s.starttls(context=ctx())
        out["starttls"] = code
        tls_info(s.sock)
        s.ehlo("probe.lab")
        out["features_after"] = sorted(s.esmtp_features)
        s.quit()
    elif mode == "old-tls":
        if port == 465:
            raw = socket.create_connection((server, port), timeout=10)
            sock = ctx(ssl.TLSVersion.TLSv1_1).wrap_socket(raw)
            tls_info(sock)
        else:
            s = smtplib.SMTP(server, port, timeout=10)
            s.ehlo("probe.lab")
            s.starttls(context=ctx(ssl.TLSVersion.TLSv1_1))
            tls_info(s.sock)
        out["accepted"] = True
    elif mode == "plain-submission":
        s = smtplib.SMTP(server, port, timeout=10)
        s.ehlo("probe.lab")
        out["features_before"] = sorted(s.esmtp_features)
        out["mail_from"] = reply(s.docmd("MAIL FROM:<probe@" + extra + ">"))
        out["auth"] = reply(s.docmd("AUTH PLAIN AHByb2JlAHByb2Jl"))
        s.close()
    elif mode == "smtps":
        raw = socket.create_connection((server, port), timeout=10)
        sock = ctx().wrap_socket(raw)
        tls_info(sock)
        out["banner"] = sock.recv(512).decode(errors="replace").strip()
        sock.close()
    elif mode == "relay":
        s = smtplib.SMTP(server, port, timeout=10)
        s.ehlo("probe.lab")
        s.starttls(context=ctx())
        s.ehlo("probe.lab")
        s.mail("probe@example.net")
        out["rcpt"] = reply(s.rcpt(extra))
        s.quit()
    elif mode == "send":
        rcpt, token = extra.split(" ")
        s = smtplib.SMTP(server, port, timeout=10)
        s.ehlo("probe.lab")
        s.starttls(context=ctx())
        tls_info(s.sock)
        s.ehlo("probe.lab")
        msg = ("From: probe@example.net\r\nTo: " + rcpt + "\r\nSubject: tomwerk tls probe " + token
               + "\r\n\r\n" + token + "\r\n")
        out["refused"] = s.sendmail("probe@example.net", [rcpt], msg)
        s.quit()
except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
    out["error"] = type(exc).__name__ + ": " + str(exc)
print(json.dumps(out))
"""


def probe(peer, mode: str, server: str, port: int, extra: str = "") -> dict:
    _name, peer_host, _addr = peer
    cmd = f"python3 -c {shlex.quote(SMTP_PROBE)} {mode} {server} {port} {shlex.quote(extra)}"
    return json.loads(peer_host.check_output(cmd))


def postconf(host, *names: str) -> dict[str, str]:
    out = host.check_output("postconf " + " ".join(names))
    return dict(line.split(" = ", 1) if " = " in line else (line.rstrip(" ="), "") for line in out.splitlines())


@pytest.mark.tom("TOM-TLS-03")
def test_starttls_on_port_25_negotiates_tls_1_2_or_newer(peer, address, evidence):
    """A peer host's STARTTLS on port 25 succeeds with TLS 1.2 or newer."""
    result = probe(peer, "starttls", address, 25)
    evidence("starttls from " + peer[0], result)
    assert "error" not in result, result
    assert "starttls" in result["features_before"]
    assert result["starttls"] == 220
    assert result["version"] in ("TLSv1.2", "TLSv1.3")


@pytest.mark.tom("TOM-TLS-03")
@pytest.mark.parametrize("port", [25, 465])
def test_tls_below_1_2_is_refused(peer, address, port, evidence):
    """A client that offers at most TLS 1.1 gets no TLS session (server alert: protocol version)."""
    result = probe(peer, "old-tls", address, port)
    evidence(f"TLS 1.1 on port {port}", result)
    assert not result.get("accepted"), result
    assert re.search(r"PROTOCOL_VERSION|protocol version|UNSUPPORTED_PROTOCOL", result.get("error", "")), result


@pytest.mark.tom("TOM-TLS-03")
def test_submission_requires_starttls(peer, address, role_vars, evidence):
    """Port 587 refuses MAIL and AUTH before STARTTLS, and offers STARTTLS with TLS 1.2 or newer."""
    plain = probe(peer, "plain-submission", address, 587, role_vars["mail_tls_hostname"])
    evidence("submission before STARTTLS", plain)
    assert "error" not in plain, plain
    assert "starttls" in plain["features_before"]
    assert "auth" not in plain["features_before"]
    assert plain["mail_from"][0] == 530, plain
    assert plain["auth"][0] >= 500, plain
    tls = probe(peer, "starttls", address, 587)
    evidence("submission STARTTLS", tls)
    assert tls.get("version") in ("TLSv1.2", "TLSv1.3"), tls


@pytest.mark.tom("TOM-TLS-03")
def test_smtps_speaks_tls_from_the_first_byte(peer, address, evidence):
    """Port 465 completes a TLS 1.2+ handshake first, then greets with 220."""
    result = probe(peer, "smtps", address, 465)
    evidence("smtps", result)
    assert "error" not in result, result
    assert result["version"] in ("TLSv1.2", "TLSv1.3")
    assert result["banner"].startswith("220 ")


@pytest.mark.tom("TOM-TLS-03")
def test_no_open_relay(peer, address, evidence):
    """A peer that is not in mynetworks cannot relay to a foreign domain, even over TLS."""
    result = probe(peer, "relay", address, 25, "victim@example.org")
    evidence("RCPT to a foreign domain", result)
    assert "error" not in result, result
    assert result["rcpt"][0] >= 400 and "Relay access denied" in result["rcpt"][1], result


@pytest.mark.tom("TOM-TLS-03")
def test_a_mail_between_lab_hosts_is_delivered_over_tls(host, peer, address, role_vars, evidence):
    """A mail sent from a peer host over STARTTLS lands in the test mailbox; its Received header names TLS."""
    if not role_vars["mail_tls_mailboxes"]:
        pytest.skip("no test mailbox configured (mail_tls_mailboxes)")
    user = role_vars["mail_tls_mailboxes"][0]
    token = uuid.uuid4().hex
    rcpt = f"{user}@{role_vars['mail_tls_hostname']}"
    sent = probe(peer, "send", address, 25, f"{rcpt} {token}")
    assert "error" not in sent and sent["refused"] == {}, sent
    home = host.user(user).home
    found = ""
    for _ in range(30):
        found = host.run(f"grep -rl {token} {home}/Maildir/new").stdout.strip()
        if found:
            break
        time.sleep(0.5)
    assert found, f"the mail did not arrive in {home}/Maildir/new"
    mail = host.file(found.splitlines()[0]).content_string
    received = re.findall(r"^Received: .*?(?=^\S)", mail, re.MULTILINE | re.DOTALL)
    evidence("TLS of the sender", sent.get("version"))
    evidence("Received header", " ".join(received[0].split()) if received else None)
    assert received and re.search(r"\(using TLSv1\.[23] with cipher", received[0]), received
    host.run(f"rm -f {found.splitlines()[0]}")


@pytest.mark.tom("TOM-TLS-03")
def test_relay_networks_are_the_roles(host, role_vars, evidence):
    """postconf's effective relay networks are the role's (localhost only).

    The TLS levels and floors in and out are the host's own measurement (test_probes.py, the exporter's)."""
    values = postconf(host, "mynetworks")
    evidence("postconf", values)
    assert values["mynetworks"].split() == list(role_vars["mail_tls_mynetworks"])
