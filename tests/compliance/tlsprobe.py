"""Real TLS and HTTP probes for the web TLS checks (test_web_tls.py, test_acme.py).

Requests from another lab host run Python's http.client/ssl there (the peer
has python3, not curl); the sslyze scan and certificate checks run on the
controller against the host's address, with the site's name as SNI.
"""

from __future__ import annotations

import json
import shlex
import tempfile
from functools import cache
from pathlib import Path

_PEER_REQUEST = r"""
import http.client, json, ssl, sys
address, port, name, path, use_tls = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5] == "1"
out = {}
if use_tls:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    class Conn(http.client.HTTPSConnection):
        def connect(self):
            http.client.HTTPConnection.connect(self)
            self.sock = self._context.wrap_socket(self.sock, server_hostname=name)
            out["tls_version"] = self.sock.version()
            out["cipher"] = self.sock.cipher()[0]
    conn = Conn(address, port, timeout=5, context=ctx)
else:
    conn = http.client.HTTPConnection(address, port, timeout=5)
conn.request("GET", path, headers={"Host": name, "User-Agent": "tomwerk-check"})
resp = conn.getresponse()
body = resp.read(200000).decode("utf-8", "replace")
out.update(status=resp.status, headers=resp.getheaders(), body=body)
print(json.dumps(out))
"""


def peer_get(peer_host, address: str, port: int, server_name: str, path: str = "/", tls: bool = False) -> dict:
    """A real HTTP(S) request from the peer: status, headers [(name, value)], body, and for TLS version and cipher."""
    args = " ".join(shlex.quote(a) for a in (address, str(port), server_name, path, "1" if tls else "0"))
    result = peer_host.run(f"python3 -c {shlex.quote(_PEER_REQUEST)} {args}")
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def header(answer: dict, name: str) -> str | None:
    for key, value in answer["headers"]:
        if key.lower() == name.lower():
            return value
    return None


def cookie_names(answer: dict) -> list[str]:
    return [v.split("=", 1)[0].strip() for k, v in answer["headers"] if k.lower() == "set-cookie"]


def acme_root_pem(acme_host, roots_url: str) -> str:
    """The ACME CA's current root as the ACME client host fetches it (it trusts the server and resolves its name)."""
    script = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())"
    result = acme_host.run(f"python3 -c {shlex.quote(script)} {shlex.quote(roots_url)}")
    assert result.rc == 0, f"cannot fetch the ACME CA root from {roots_url}: {result.stderr}"
    assert "BEGIN CERTIFICATE" in result.stdout
    return result.stdout


@cache
def sslyze_scan(address: str, port: int, server_name: str, root_pem: str | None):
    """One sslyze scan of address:port with the commands Mozilla's checker needs (cached: it takes seconds)."""
    from sslyze import (
        ScanCommandsExtraArguments,
        Scanner,
        ServerNetworkLocation,
        ServerScanRequest,
    )
    from sslyze.mozilla_tls_profile.tls_config_checker import SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER
    from sslyze.plugins.certificate_info.implementation import CertificateInfoExtraArgument

    extra = ScanCommandsExtraArguments()
    if root_pem:
        ca_file = Path(tempfile.mkdtemp(prefix="tomwerk-acme-root-")) / "root.pem"
        ca_file.write_text(root_pem)
        extra = ScanCommandsExtraArguments(certificate_info=CertificateInfoExtraArgument(custom_ca_file=ca_file))
    request = ServerScanRequest(
        server_location=ServerNetworkLocation(hostname=server_name, port=port, ip_address=address),
        scan_commands=SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER,
        scan_commands_extra_arguments=extra,
    )
    scanner = Scanner()
    scanner.queue_scans([request])
    (result,) = list(scanner.get_results())
    return result
