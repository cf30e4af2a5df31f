"""Benchmark the TOM exporter on a lab host: scrape time (p50/p99) and memory (RSS).

Scrapes run from the monitoring host, as Prometheus would, over the lab
network, for a while longer than the exporter's check interval, so both
cached scrapes and scrapes that run the checks are in the figures.

    .venv/bin/python bench/exporter_bench.py [--host web1] [--scraper monitor1] [--seconds 45]

Then a burst: 200 scrapes opened at the same moment, each with its own
mutual-TLS handshake, as several Prometheus servers or a restart would.

Targets (issue 15): p99 under 30 ms, RSS under 60 MiB, and every scrape of the
burst answered within 5 s. Exits 1 when one is missed. Baseline, in the same
run and from the same scraper: the host's node_exporter (Debian's Go
exporter), so a slow lab shows in both columns.

--library adds a third column: the same collectors served by the maintained
library's own HTTPS server (prometheus_client.start_http_server with
certfile, keyfile, client_cafile and client_auth_required; Debian 13's
python3-prometheus-client, Debian 12's 0.16 has no TLS). It runs for the
measurement on the exporter's port in place of tomwerk-exporter, which is
restarted afterwards. What it lacks is printed as well: it accepts any client
certificate of the CA, where tomwerk's server admits only the named scrapers.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess

from tomwerk import ROOT
from tomwerk.inventory import Inventory

# Scrapes as Prometheus does: HTTPS with the scraper's internal client certificate (TOM-TLS-04),
# a new connection per scrape, so each figure includes the TLS handshake.
SCRAPER = r"""
import json, ssl, sys, time, urllib.request
url, seconds = sys.argv[1], float(sys.argv[2])
tls = json.load(open("/etc/tomwerk/state/tom_exporter.json"))["vars"]
context = ssl.create_default_context(cafile=tls["tom_exporter_tls_ca_file"])
context.load_cert_chain(tls["tom_exporter_tls_cert_file"], tls["tom_exporter_tls_key_file"])
times, runs, end = [], set(), time.monotonic() + seconds
while time.monotonic() < end:
    start = time.perf_counter()
    body = urllib.request.urlopen(url, timeout=10, context=context).read().decode()
    times.append(time.perf_counter() - start)
    runs.update(l for l in body.splitlines() if l.startswith("tomwerk_collector_last_run_timestamp_seconds"))
    time.sleep(0.05)
print(json.dumps({"times": times, "check_runs": len(runs), "bytes": len(body)}))
"""


# N scrapes released together by a barrier; each its own connection and handshake.
BURST = r"""
import json, ssl, sys, threading, time, urllib.request
url, n = sys.argv[1], int(sys.argv[2])
tls = json.load(open("/etc/tomwerk/state/tom_exporter.json"))["vars"]
context = ssl.create_default_context(cafile=tls["tom_exporter_tls_ca_file"])
context.load_cert_chain(tls["tom_exporter_tls_cert_file"], tls["tom_exporter_tls_key_file"])
gate, times, failed = threading.Barrier(n), [], []
def one():
    gate.wait()
    start = time.perf_counter()
    try:
        urllib.request.urlopen(url, timeout=60, context=context).read()
        times.append(time.perf_counter() - start)
    except Exception as exc:
        failed.append(type(exc).__name__)
threads = [threading.Thread(target=one) for _ in range(n)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"times": times, "failed": failed}))
"""
# The same exporter, served by prometheus_client's own server (mutual TLS from its arguments).
LIBRARY_SERVER = r"""
import json, sys, time
sys.path.insert(0, "/usr/local/lib/tomwerk/tomwerk-host.pyz")
from prometheus_client import CollectorRegistry, start_http_server
from tomwerk_host.exporter.collectors import all_collectors
from tomwerk_host.exporter.core import TomExporter
tls = json.load(open("/etc/tomwerk/state/tom_exporter.json"))["vars"]
registry = CollectorRegistry(auto_describe=False)
registry.register(TomExporter(all_collectors()))
start_http_server(int(sys.argv[2]), addr=sys.argv[1], registry=registry, certfile=tls["tom_exporter_tls_cert_file"],
                  keyfile=tls["tom_exporter_tls_key_file"], client_cafile=tls["tom_exporter_tls_ca_file"],
                  client_auth_required=True)
while True:
    time.sleep(3600)
"""
LIBRARY_UNIT = "tomwerk-exporter-library"
BURST_SIZE = 200
BURST_LIMIT_S = 5.0


def podman(host: str, command: str) -> str:
    return subprocess.run(["podman", "exec", host, "sh", "-c", command], check=True, capture_output=True,
                          text=True).stdout  # fmt: skip


def scrape(scraper: str, url: str, seconds: float) -> dict:
    result = json.loads(podman(scraper, f"python3 -c {shlex.quote(SCRAPER)} {url} {seconds}"))
    ms = sorted(t * 1000 for t in result["times"])
    return {
        "n": len(ms),
        "bytes": result["bytes"],
        "p50": statistics.median(ms),
        "p99": ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))],
        "max": ms[-1],
    }


def burst(scraper: str, url: str, n: int = BURST_SIZE) -> dict:
    result = json.loads(podman(scraper, f"python3 -c {shlex.quote(BURST)} {url} {n}"))
    times = sorted(result["times"])
    return {
        "within": sum(1 for t in times if t <= BURST_LIMIT_S),
        "failed": len(result["failed"]),
        "slowest": times[-1] if times else float("nan"),
    }


def library_figures(args, address: str, port: int) -> dict:
    """Scrape, burst and RSS of prometheus_client's own server in place of tomwerk-exporter."""
    version = podman(args.host, "dpkg-query -W -f '${Version}' python3-prometheus-client").strip()
    podman(args.host, "systemctl stop tomwerk-exporter")
    try:
        podman(args.host, f"systemd-run --unit={LIBRARY_UNIT} --collect python3 -c {shlex.quote(LIBRARY_SERVER)} "
                          f"{address} {port}")  # fmt: skip
        podman(args.host, f"for i in $(seq 50); do ss -ltn | grep -q ':{port} ' && exit 0; sleep 0.2; done; exit 1")
        url = f"https://{address}:{port}/metrics"
        figures = {**scrape(args.scraper, url, args.seconds), **burst(args.scraper, url)}
        figures["rss"] = rss_mib(args.host, LIBRARY_UNIT)
    finally:
        podman(args.host, f"systemctl stop {LIBRARY_UNIT} || true; systemctl start tomwerk-exporter")
    figures["version"] = version
    return figures


def rss_mib(host: str, unit: str) -> float:
    pid = podman(host, f"systemctl show -p MainPID --value {unit}").strip()
    return int(podman(host, f"ps -o rss= -p {pid}").strip()) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="web1")
    parser.add_argument("--scraper", default="monitor1")
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--library", action="store_true", help="also measure prometheus_client's own TLS server")
    args = parser.parse_args()

    lab = Inventory(ROOT / "inventories" / "lab")
    address, port = lab.var(args.host, "tomwerk_address"), lab.role_vars(args.host, "tom_exporter")["tom_exporter_port"]
    node_port = lab.role_vars(args.host, "tom_exporter")["tom_exporter_node_exporter_port"]
    ours = scrape(args.scraper, f"https://{address}:{port}/metrics", args.seconds)
    base = scrape(args.scraper, f"https://{address}:{node_port}/metrics", args.seconds)
    burst_ours = burst(args.scraper, f"https://{address}:{port}/metrics")
    burst_base = burst(args.scraper, f"https://{address}:{node_port}/metrics")
    rss_ours = rss_mib(args.host, "tomwerk-exporter")
    rss_base = rss_mib(args.host, "prometheus-node-exporter")
    p99 = ours["p99"]
    if args.library:
        lib = library_figures(args, address, port)
        print(f"prometheus_client {lib['version']} on {args.host}, its own server, same collectors and scraper:")
        print(f"  scrapes {lib['n']}, p50 {lib['p50']:.1f} ms, p99 {lib['p99']:.1f} ms, max {lib['max']:.1f} ms, "
              f"RSS {lib['rss']:.1f} MiB, burst of {BURST_SIZE}: {lib['within']} within 5 s, {lib['failed']} failed, "
              f"slowest {lib['slowest']:.2f} s")  # fmt: skip
        print("  admits any client certificate of the CA (no allow-list of scraper names)")

    print(f"Exporters on {args.host}, each scraped over mutual TLS from {args.scraper} for {args.seconds:.0f} s")
    print(f"  {'':18} {'tomwerk-exporter':>18} {'node_exporter (baseline)':>26}")
    print(f"  {'scrapes':18} {ours['n']:>18} {base['n']:>26}")
    print(f"  {'bytes per scrape':18} {ours['bytes']:>18} {base['bytes']:>26}")
    for key in ("p50", "p99", "max"):
        print(f"  {'scrape time ' + key + ' ms':18} {ours[key]:>18.1f} {base[key]:>26.1f}")
    print(f"  {'RSS MiB':18} {rss_ours:>18.1f} {rss_base:>26.1f}")
    label = f"burst of {BURST_SIZE}"
    print(f"  {label + ' <= 5 s':18} {burst_ours['within']:>18} {burst_base['within']:>26}")
    print(f"  {label + ' failed':18} {burst_ours['failed']:>18} {burst_base['failed']:>26}")
    print(f"  {label + ' slowest s':18} {burst_ours['slowest']:>18.2f} {burst_base['slowest']:>26.2f}")
    print(f"  targets           p99 < 30 ms, RSS < 60 MiB, all {BURST_SIZE} of the burst within 5 s")
    ok = p99 < 30 and rss_ours < 60 and burst_ours["within"] == BURST_SIZE
    print("  result            " + ("within targets" if ok else "TARGET MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
