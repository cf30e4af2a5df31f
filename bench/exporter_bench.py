"""Benchmark the TOM exporter on a lab host: scrape time (p50/p99) and memory (RSS).

Scrapes run from the monitoring host, as Prometheus would, over the lab
network, for a while longer than the exporter's check interval, so both
cached scrapes and scrapes that run the checks are in the figures.

    .venv/bin/python bench/exporter_bench.py [--host web1] [--scraper monitor1] [--seconds 45]

Targets (issue 3): p99 under 100 ms, RSS under 60 MiB. Exits 1 when missed.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess

from tomwerk import ROOT
from tomwerk.inventory import Inventory

SCRAPER = r"""
import json, sys, time, urllib.request
url, seconds = sys.argv[1], float(sys.argv[2])
times, runs, end = [], set(), time.monotonic() + seconds
while time.monotonic() < end:
    start = time.perf_counter()
    body = urllib.request.urlopen(url, timeout=10).read().decode()
    times.append(time.perf_counter() - start)
    runs.update(l for l in body.splitlines() if l.startswith("tomwerk_collector_last_run_timestamp_seconds"))
    time.sleep(0.05)
print(json.dumps({"times": times, "check_runs": len(runs), "bytes": len(body)}))
"""


def podman(host: str, command: str) -> str:
    return subprocess.run(["podman", "exec", host, "sh", "-c", command], check=True, capture_output=True,
                          text=True).stdout  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="web1")
    parser.add_argument("--scraper", default="monitor1")
    parser.add_argument("--seconds", type=float, default=45.0)
    args = parser.parse_args()

    lab = Inventory(ROOT / "inventories" / "lab")
    address, port = lab.var(args.host, "tomwerk_address"), lab.role_vars(args.host, "tom_exporter")["tom_exporter_port"]
    url = f"http://{address}:{port}/metrics"
    out = podman(args.scraper, f"python3 -c {shlex.quote(SCRAPER)} {url} {args.seconds}")
    result = json.loads(out)
    ms = sorted(t * 1000 for t in result["times"])
    p50 = statistics.median(ms)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    pid = podman(args.host, "systemctl show -p MainPID --value tomwerk-exporter").strip()
    rss_mib = int(podman(args.host, f"ps -o rss= -p {pid}").strip()) / 1024

    print(f"TOM exporter on {args.host}, scraped from {args.scraper} for {args.seconds:.0f} s")
    print(f"  scrapes           {len(ms)} ({result['bytes']} bytes each)")
    print(f"  scrape time p50   {p50:7.1f} ms")
    print(f"  scrape time p99   {p99:7.1f} ms   (target < 100 ms)")
    print(f"  scrape time max   {ms[-1]:7.1f} ms")
    print(f"  RSS               {rss_mib:7.1f} MiB  (target < 60 MiB)")
    ok = p99 < 100 and rss_mib < 60
    print("  result            " + ("within targets" if ok else "TARGET MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
