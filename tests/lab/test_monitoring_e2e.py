"""End to end (TOM-MON-01): a control broken by hand on web1 flips its metric at the
next scrape, the alert reaches the receiver on monitor1, and restoring the
control resolves it."""

from __future__ import annotations

import json
import time

import pytest

from tests.compliance.promql import query
from tests.lab.conftest import lab_host

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


@pytest.mark.tom("TOM-MON-01")
def test_drift_is_alerted_and_resolved():
    web1 = lab_host("web1")
    monitor = lab_host("monitor1")
    compliant = 'tomwerk_tom_compliant{instance="web1",tom="TOM-SSH-01"}'

    def value():
        result = query(monitor, PROMETHEUS, compliant)
        return result and result[0]["value"][1]

    assert value() == "1", "TOM-SSH-01 must hold on web1 before the test"
    start = len(monitor.check_output(f"cat {SINK}").splitlines())
    original = web1.file("/etc/ssh/sshd_config").sha256sum

    web1.check_output("sed -i 's/^PasswordAuthentication no$/PasswordAuthentication yes/' /etc/ssh/sshd_config")
    web1.check_output("systemctl reload ssh")
    try:
        # Exporter check interval (10 s in the lab) plus one scrape (10 s).
        _, flipped_after = wait_for("the metric to flip", lambda: value() == "0", timeout=60)
        _, fired_after = wait_for(
            "TomNotCompliant to reach the receiver",
            lambda: has_alert(monitor, start, "firing", "TomNotCompliant", instance="web1", tom="TOM-SSH-01"),
            timeout=180,
        )
        assert has_alert(monitor, start, "firing", "SshPasswordLoginEnabled", instance="web1")
    finally:
        web1.check_output("sed -i 's/^PasswordAuthentication yes$/PasswordAuthentication no/' /etc/ssh/sshd_config")
        web1.check_output("systemctl reload ssh")
    assert web1.file("/etc/ssh/sshd_config").sha256sum == original
    wait_for("the metric to recover", lambda: value() == "1", timeout=60)
    _, resolved_after = wait_for(
        "the resolution to reach the receiver",
        lambda: has_alert(monitor, start, "resolved", "TomNotCompliant", instance="web1", tom="TOM-SSH-01"),
        timeout=240,
    )
    print(f"metric flipped after {flipped_after:.0f}s, alert delivered after {fired_after:.0f}s, "
          f"resolution after {resolved_after:.0f}s")  # fmt: skip
