"""End to end (issue 15): one measurement, read twice. A weak password hash put on web1 by hand
turns both the exporter's metric and the verify check of TOM-PWD-01 red, with the same reason,
and both recover when it is gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.compliance.conftest import exporter_sample
from tests.lab.conftest import lab_host
from tomwerk import ROOT

HOST = "web1"
USER = "tw-probe-drift"
MD5_HASH = "$1$tomwerk$3XjR2mCFqfN0e8Gmv3yDv0"  # crypt(5) md5: weaker than the policy allows
METRIC = 'tomwerk_tom_compliant{tom="TOM-PWD-01"}'


def wait_for_metric(host, wanted: float, timeout: float = 60) -> float:
    deadline = time.monotonic() + timeout
    while (value := exporter_sample(host, METRIC)) != wanted and time.monotonic() < deadline:
        time.sleep(2)
    assert value == wanted, f"{METRIC} is {value}, not {wanted}, after {timeout}s"
    return timeout - (deadline - time.monotonic())


def verify_pwd(tmp_path: Path) -> tuple[int, dict]:
    """`tomwerk verify` of the probe check of TOM-PWD-01 on web1, as an admin would run it."""
    out = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
    run = subprocess.run(
        [str(Path(sys.executable).parent / "tomwerk"), "verify", "--inventory", "inventories/lab", "--hosts", HOST,
         "--out", str(out), "--suite", "tests/compliance/test_probes.py", "--", "-k", "TOM-PWD-01"],
        capture_output=True, text=True, cwd=ROOT, timeout=600, env=os.environ,
    )  # fmt: skip
    (result,) = [p for p in out.glob("*/result.json") if p.parent.name != "latest"]
    return run.returncode, json.loads(result.read_text())["hosts"][HOST]["toms"]["TOM-PWD-01"]


@pytest.mark.serial
@pytest.mark.tom("TOM-PWD-01")
def test_a_broken_input_turns_the_metric_and_the_check_red(tmp_path, evidence):
    web1 = lab_host(HOST)
    assert exporter_sample(web1, METRIC) == 1, "TOM-PWD-01 must hold on web1 before the test"
    web1.check_output(f"useradd --no-create-home --shell /usr/sbin/nologin {USER}")
    try:
        web1.check_output(f"usermod --password '{MD5_HASH}' {USER}")
        flipped_after = wait_for_metric(web1, 0)
        code, tom = verify_pwd(tmp_path)
        evidence("verify with the weak hash", {"exit": code, "status": tom["status"]})
        assert code == 1 and tom["status"] == "fail", tom
        assert "weaker than allowed (md5)" in tom["checks"][0]["message"], tom["checks"][0]["message"]
    finally:
        web1.run(f"userdel {USER}")
    recovered_after = wait_for_metric(web1, 1)
    code, tom = verify_pwd(tmp_path)
    assert code == 0 and tom["status"] == "pass", tom
    print(f"metric red after {flipped_after:.0f}s, green again after {recovered_after:.0f}s")
