"""Small helpers to read Prometheus, Alertmanager and exporters from a lab or real host.

Requests run on a host of the inventory (python3 and urllib are on every
Debian server), so they work wherever the checks can reach the hosts.
"""

from __future__ import annotations

import json
import shlex

FETCH = r"""
import sys, urllib.request
req = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode() if len(sys.argv) > 2 else None,
                             headers={"Content-Type": "application/json"})
sys.stdout.write(urllib.request.urlopen(req, timeout=10).read().decode())
"""


# The exporters want a client certificate of the internal CA (TOM-TLS-04). The host
# shows its own, as its role tom_exporter recorded the files, and without a URL
# reads its own TOM exporter.
EXPORTER_STATE = "/etc/tomwerk/state/tom_exporter.json"
EXPORTER_FETCH = r"""
import json, ssl, sys, urllib.request
tls = json.load(open(sys.argv[1]))["vars"]
context = ssl.create_default_context(cafile=tls["tom_exporter_tls_ca_file"])
context.load_cert_chain(tls["tom_exporter_tls_cert_file"], tls["tom_exporter_tls_key_file"])
if len(sys.argv) > 2:
    url = sys.argv[2]
else:
    address = tls["tom_exporter_listen_address"]
    url = "https://%s:%s/metrics" % ("[%s]" % address if ":" in address else address, tls["tom_exporter_port"])
sys.stdout.write(urllib.request.urlopen(url, context=context, timeout=20).read().decode())
"""


def fetch_exporter(host, url: str | None = None) -> str:
    """An exporter's exposition, fetched on host with host's internal client certificate;
    without url, host's own TOM exporter."""
    args = " ".join(shlex.quote(a) for a in [EXPORTER_STATE] + ([url] if url else []))
    return host.check_output(f"python3 -c {shlex.quote(EXPORTER_FETCH)} {args}")


def fetch(host, url: str, post: str | None = None) -> str:
    args = " ".join(shlex.quote(a) for a in [url] + ([post] if post is not None else []))
    return host.check_output(f"python3 -c {shlex.quote(FETCH)} {args}")


def query(host, prometheus: str, expr: str) -> list[dict]:
    """Instant query; returns the result vector."""
    from urllib.parse import quote

    data = json.loads(fetch(host, f"{prometheus}/api/v1/query?query={quote(expr)}"))
    assert data["status"] == "success", data
    return data["data"]["result"]


def samples(text: str) -> list[tuple[str, dict, float]]:
    """(name, labels, value) of every sample in a Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    return [(s.name, dict(s.labels), s.value) for fam in text_string_to_metric_families(text) for s in fam.samples]
