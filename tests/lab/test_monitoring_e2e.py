"""End to end (TOM-MON-01): a control broken by hand on web1 flips its metric at the
next scrape, the alert reaches the receiver on monitor1, and restoring the
control resolves it."""

from __future__ import annotations

import pytest

from tests.lab.conftest import has_alert, lab_host, wait_for, watch_metric


@pytest.mark.tom("TOM-MON-01")
def test_drift_is_alerted_and_resolved():
    web1 = lab_host("web1")
    monitor = lab_host("monitor1")
    compliant = 'tomwerk_tom_compliant{instance="web1",tom="TOM-SSH-01"}'
    value, start = watch_metric(monitor, compliant, "1", "TOM-SSH-01 must hold on web1 before the test")
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
