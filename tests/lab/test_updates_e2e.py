"""Updates proven by their outcome in the lab (TOM-UPD-01): a host given an
outdated package is upgraded by the scheduled job; the last-upgrade metric
moves and the pending count drops."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.compliance.promql import fetch_exporter, samples
from tests.lab.conftest import lab_host

HOST = "mail1"
CANDIDATES = ["tzdata", "libexpat1", "libssl3", "openssl", "curl"]


def exporter_values(monitor, address: str) -> dict:
    found = samples(fetch_exporter(monitor, f"https://{address}:9840/metrics"))
    values = {name: value for name, labels, value in found if not labels}
    values["pending"] = sum(v for n, _, v in found if n == "tomwerk_updates_pending")
    return values


def pick_outdatable(host) -> tuple[str, str, str]:
    """An installed package with an older version in the archives: (name, installed, older)."""
    for name in CANDIDATES:
        installed = host.run(f"dpkg-query -W -f='${{Version}}' {name}").stdout.strip()
        if not installed:
            continue
        versions = re.findall(r"^\s*\S+ \| (\S+) \|", host.check_output(f"apt-cache madison {name}"), re.MULTILINE)
        older = [v for v in versions if host.run(f"dpkg --compare-versions {v} lt {installed}").rc == 0]
        if older:
            return name, installed, older[0]
    pytest.fail(f"none of {CANDIDATES} has an older version in the archives")


@pytest.mark.tom("TOM-UPD-01")
def test_an_outdated_package_is_upgraded_by_the_scheduled_job():
    host = lab_host(HOST)
    monitor = lab_host("monitor1")
    address = "10.231.0.12"
    package, newest, older = pick_outdatable(host)
    host.check_output(f"DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --allow-downgrades {package}={older}")
    host.check_output("/usr/local/sbin/tomwerk-updates-status pending")
    dry = host.check_output("unattended-upgrade --dry-run --debug 2>&1")
    assert re.search(rf"Packages that will be upgraded:.*\b{re.escape(package)}\b", dry), dry[-1500:]
    host.check_output("systemctl restart tomwerk-exporter")
    time.sleep(2)
    before = exporter_values(monitor, address)
    assert before["pending"] >= 1

    # The scheduled job, as its timer starts it (the stamp says "not run today").
    host.check_output("rm -f /var/lib/apt/periodic/upgrade-stamp /var/lib/apt/periodic/unattended-upgrades-stamp")
    host.check_output("systemctl start apt-daily-upgrade.service")
    assert host.check_output(f"dpkg-query -W -f='${{Version}}' {package}") == newest
    status = json.loads(host.file("/var/lib/tomwerk/updates/status.json").content_string)
    assert status["last_run_success"] is True

    last = "tomwerk_updates_last_success_timestamp_seconds"
    deadline = time.time() + 60
    after = before
    while time.time() < deadline:
        after = exporter_values(monitor, address)
        if after[last] > before[last]:
            break
        time.sleep(3)
    assert after[last] > before[last]
    assert after["pending"] < before["pending"]
