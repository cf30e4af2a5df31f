"""Lab-only tests: they change the lab hosts on purpose and put them back."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.compliance.promql import query
from tomwerk import ROOT

LAB_INVENTORY = ROOT / "inventories" / "lab"


def ansible_playbook(*args: str, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run ansible-playbook from the project root with the project's ansible.cfg."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0", **(env or {})},
    )


def recap(output: str, host: str) -> dict[str, int]:
    """The PLAY RECAP counters of one host."""
    for line in output.splitlines():
        if line.startswith(f"{host} ") and "ok=" in line:
            return {k: int(v) for k, v in (field.split("=") for field in line.split()[2:])}
    raise AssertionError(f"no recap for {host} in:\n{output[-3000:]}")


@functools.cache
def _lab():
    from tomwerk.inventory import Inventory

    return Inventory(LAB_INVENTORY)


@pytest.fixture(scope="session")
def lab():
    return _lab()


def lab_host(name: str):
    """A lab host as the checks reach it: the lab inventory's tomwerk_testinfra_spec (nsenter)."""
    from tests.compliance.conftest import get_host

    return get_host(_lab(), name)


# --------------------------------------------------------------------- metrics and alerts (monitor1)

SINK = "/var/lib/tomwerk-alert-sink/alerts.jsonl"
PROMETHEUS = "https://10.231.0.15:9090"


def wait_for(what: str, condition, timeout: float, every: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result, timeout - (deadline - time.monotonic())
        time.sleep(every)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def metric_value(monitor, series: str):
    """The value of series in the lab's Prometheus, asked from monitor (falsy without the series)."""
    result = query(monitor, PROMETHEUS, series)
    return result and result[0]["value"][1]


def notification_count(monitor) -> int:
    """How many notifications the alert sink on monitor holds: since_line of has_alert for what comes next."""
    return len(monitor.check_output(f"cat {SINK}").splitlines())


def watch_metric(monitor, series: str, before: str, message: str):
    """value() of series, asserted to be before now (message if not), and the sink's notification_count."""

    def value():
        return metric_value(monitor, series)

    assert value() == before, message
    return value, notification_count(monitor)


def notifications(monitor, since_line: int) -> list[dict]:
    lines = monitor.check_output(f"cat {SINK}").splitlines()[since_line:]
    return [json.loads(line)["notification"] for line in lines]


def has_alert(monitor, since_line: int, status: str, alertname: str, **labels) -> bool:
    for note in notifications(monitor, since_line):
        for alert in note["alerts"]:
            if (alert["status"] == status and alert["labels"].get("alertname") == alertname
                    and all(alert["labels"].get(k) == v for k, v in labels.items())):  # fmt: skip
                return True
    return False
