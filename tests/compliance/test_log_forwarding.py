"""TOM-LOG-03: every server hands its logs to the separate log server, anonymised, over
TLS with both names checked; the raw attack lines go to the server's separate attack store."""

from __future__ import annotations

import datetime as dt
import secrets
import shlex

import pytest

from .conftest import get_host
from .test_log_privacy import run_scanner, wait_for

ROLE = "log_forwarding"


@pytest.fixture(scope="module")
def log_server(inventory):
    names = inventory.hosts_with_role("log_server")
    if not names:
        pytest.skip("no host carries log_server")
    return get_host(inventory, names[0])


@pytest.fixture(scope="module")
def store_dir(host):
    return f"/var/log/remote/{host.check_output('hostname -s')}"


def today() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")


@pytest.mark.tom("TOM-LOG-03")
def test_canary_line_arrives_anonymised_on_the_log_server(host, log_server, store_dir, evidence):
    token = secrets.token_hex(4)
    host.check_output(
        f"logger -t tomwerk-canary -- 'forward {token} from 203.0.113.{int(token[:2], 16)}"
        f" [2001:db8:99::{token[:4]}]:25 to=<fwd-{token}@example.org>'"
    )
    path = f"{store_dir}/{today()}.log"
    line = wait_for(lambda: log_server.run(f"grep -h 'forward {token}' {path}").stdout.strip(), timeout=30)
    evidence("line on the log server", line)
    assert line, f"the canary line did not reach {path} on the log server"
    assert line.endswith(f"forward {token} from 0 [0]:25 to=<x@x>")


@pytest.mark.tom("TOM-LOG-03")
def test_store_of_the_host_holds_no_address(host, log_server, store_dir, evidence):
    report = run_scanner(log_server, f"files {store_dir}")
    evidence("files scanned on the log server", report["scanned"])
    assert report["scanned"] > 0
    assert report["leaks"] == {}, {p: v["findings"] for p, v in report["leaks"].items()}


@pytest.mark.tom("TOM-LOG-03")
def test_attack_lines_reach_the_separate_attack_store(host, log_server, address, peer, evidence):
    _, peer_host, peer_address = peer
    user = f"fwdcanary{secrets.token_hex(3)}"
    peer_host.run(
        "ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        f"-o ConnectTimeout=5 -l {user} {address} true"
    )
    name = host.check_output("hostname -s")
    path = f"/var/log/remote-attack/{name}/{today()}.log"
    line = wait_for(lambda: log_server.run(f"grep -h {user} {path}").stdout.strip(), timeout=30)
    evidence("attack line on the log server", line)
    assert line and peer_address in line
    # and not in the anonymised per-host store
    assert log_server.run(f"grep -h {user} /var/log/remote/{name}/{today()}.log").stdout.count(peer_address) == 0


@pytest.mark.tom("TOM-LOG-03")
def test_tls_to_the_log_server_checks_both_names(host, role_vars, evidence):
    """With the host's certificate the log server's name verifies; without one it refuses."""
    server, port = role_vars["log_forwarding_server"], int(role_vars["log_forwarding_port"])
    pki = "/etc/tomwerk/pki"
    base = f"openssl s_client -connect {server}:{port} -CAfile {pki}/ca.crt -verify_hostname {server} -brief"
    good = host.run(f"sh -c {shlex.quote(f'echo | timeout 10 {base} -cert {pki}/host.crt -key {pki}/host.key 2>&1')}")
    evidence("handshake with the host certificate", good.stdout.strip()[:300])
    assert "Verification: OK" in good.stdout
    bad = host.run(f"sh -c {shlex.quote(f'sleep 1 | timeout 10 {base} 2>&1')}")
    evidence("handshake without a client certificate", bad.stdout.strip()[:300])
    assert "alert" in bad.stdout.lower() or "error" in bad.stdout.lower() or bad.rc != 0
