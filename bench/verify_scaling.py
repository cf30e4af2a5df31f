"""How `tomwerk verify` scales with the number of hosts: the compliance suite on the 8-host lab,
then on 16 hosts, side by side, timed with the same command an admin runs.

The 8 extra hosts are light copies: inventory names (web1-b, ...) for the same containers, in
the same groups and with the same variables, so every check runs twice as often against the
same 8 machines. That doubles the load on the hosts, which real extra servers would not; the
figure is an upper bound for the controller side. Checks whose expectations name the host
(Prometheus's instance label, certificate names) fail on the copies; the figures count them.

    .venv/bin/python bench/verify_scaling.py [--jobs 4] [--jobs-16 8]

Target (issue 15): the 8-host compliance verify in at most 2 minutes, nearly flat with hosts.
Needs the lab up (make demo).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tomwerk import ROOT

LAB = ROOT / "inventories" / "lab"


def light_copies(target: Path) -> Path:
    """The lab inventory with each host once more as <host>-b, the same container and variables."""
    shutil.copytree(LAB, target)
    hosts_file = target / "hosts.yml"
    data = yaml.safe_load(hosts_file.read_text(encoding="utf-8"))

    def double(group: dict) -> None:
        for name, hostvars in list((group.get("hosts") or {}).items()):
            group["hosts"][f"{name}-b"] = {**(hostvars or {}), "ansible_host": name}
        for child in (group.get("children") or {}).values():
            if child:
                double(child)

    double(data["all"])
    hosts_file.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    for host_vars in (target / "host_vars").glob("*.yml"):
        shutil.copy(host_vars, host_vars.with_name(f"{host_vars.stem}-b.yml"))
    return target


def run(inventory: Path, jobs: int, out: Path) -> dict:
    started = time.monotonic()
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "tomwerk"), "verify", "--inventory", str(inventory), "--jobs", str(jobs),
         "--out", str(out)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - started
    results = sorted(out.glob("*/result.json"))
    if not results:
        raise SystemExit(f"verify did not complete: {proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    summary = json.loads(results[-1].read_text())["summary"]
    return {"seconds": seconds, "hosts": summary["hosts"], **summary["checks"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=4, help="jobs for 8 hosts (default: %(default)s)")
    parser.add_argument("--jobs-16", type=int, default=8, help="jobs for 16 hosts (default: %(default)s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tomwerk-scaling-") as tmp:
        eight = run(LAB, args.jobs, Path(tmp) / "out8")
        sixteen = run(light_copies(Path(tmp) / "inventory16"), args.jobs_16, Path(tmp) / "out16")
    print("tomwerk verify, compliance suite (tests/compliance), the lab's containers")
    print(f"  {'':22} {'8 hosts':>12} {'16 hosts (8 light copies)':>27}")
    print(f"  {'jobs':22} {args.jobs:>12} {args.jobs_16:>27}")
    for key in ("pass", "fail", "error", "skipped"):
        print(f"  {'checks ' + key:22} {eight[key]:>12} {sixteen[key]:>27}")
    print(f"  {'wall time':22} {eight['seconds']:>11.0f}s {sixteen['seconds']:>26.0f}s")
    per = sixteen["seconds"] / eight["seconds"]
    print(f"  16 hosts took {per:.2f}x the time of 8; target: 8 hosts within 120 s")
    return 0 if eight["seconds"] <= 120 else 1


if __name__ == "__main__":
    raise SystemExit(main())
