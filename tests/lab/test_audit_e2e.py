"""`tomwerk audit` in the lab: a setting changed by hand shows up as drift of its
TOM, and the audit (Ansible's check mode) leaves the host exactly as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab.conftest import lab_host
from tomwerk import ROOT

SSHD_CONFIG = "/etc/ssh/sshd_config"


@pytest.mark.tom("TOM-SSH-01")
def test_drift_is_reported_by_the_audit_and_not_applied(tmp_path, evidence):
    """PasswordAuthentication switched on by hand on web1: the audit reports TOM-SSH-01 as drift and changes nothing.

    The audit runs as an admin would audit one TOM: `tomwerk audit --limit web1 --tags tom-ssh-01`."""
    web1 = lab_host("web1")
    original = web1.check_output(f"sha256sum {SSHD_CONFIG}").split()[0]
    web1.check_output(f"cp -p {SSHD_CONFIG} {SSHD_CONFIG}.tomwerk-e2e")
    try:
        web1.check_output(f"sed -i 's/^PasswordAuthentication no$/PasswordAuthentication yes/' {SSHD_CONFIG}")
        drifted = web1.check_output(f"sha256sum {SSHD_CONFIG}").split()[0]
        assert drifted != original, "the drift was not made: no 'PasswordAuthentication no' line in sshd_config"
        tomwerk = Path(sys.executable).parent / "tomwerk"
        run = subprocess.run(
            [str(tomwerk), "audit", "--inventory", "inventories/lab", "--limit", "web1", "--tags", "tom-ssh-01",
             "--out", str(tmp_path)],
            capture_output=True, text=True, cwd=ROOT, timeout=900, env={**os.environ, "ANSIBLE_FORCE_COLOR": "0"},
        )  # fmt: skip
        (audit_json,) = tmp_path.glob("*-audit/audit.json")
        result = json.loads(audit_json.read_text())
        sshd = [c for c in result["changes"] if c["task"].startswith("ssh_access : ") and "sshd" in c["task"]]
        evidence("audit exit code", run.returncode)
        evidence("drifting TOMs", result["toms"])
        evidence("changed tasks", [f"{c['host']}: {c['task']}" for c in result["changes"]])
        assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
        assert "web1" in result["toms"].get("TOM-SSH-01", []), result["toms"]
        assert sshd and "PasswordAuthentication yes" in sshd[0]["diff"], result["changes"]
        # Only the drift: every other task of the TOM's role is unchanged.
        assert len(result["changes"]) <= 2, result["changes"]  # sshd_config, and its reload handler
        # Check mode touched nothing: the drifted file is still there, byte for byte.
        assert web1.check_output(f"sha256sum {SSHD_CONFIG}").split()[0] == drifted
    finally:
        web1.check_output(f"mv {SSHD_CONFIG}.tomwerk-e2e {SSHD_CONFIG}")
    assert web1.check_output(f"sha256sum {SSHD_CONFIG}").split()[0] == original
