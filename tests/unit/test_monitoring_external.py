"""Issue 18: role monitoring's `external` entry point puts only tomwerk's alert rules and scrape
jobs into a Prometheus the admins already run. Run here on the controller into a temporary
directory (connection local), with the real promtool checking every file before it lands."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tomwerk import ROOT

pytestmark = [
    pytest.mark.heavy,
    pytest.mark.skipif(shutil.which("promtool") is None, reason="needs promtool (make bootstrap installs it)"),
]

PLAYBOOK = """
- name: tomwerk's rules and scrape jobs into an existing Prometheus
  hosts: prometheus
  gather_facts: false
  tasks:
    - name: The external entry point
      ansible.builtin.include_role:
        name: tomwerk.toms.monitoring
        tasks_from: external
"""


def converge(tmp: Path) -> dict:
    inventory = {
        "all": {
            "hosts": {
                "prometheus": {"tomwerk_address": "10.9.0.5"},
                "web7": {"tomwerk_address": "10.9.0.7"},
                "mail7": {"tomwerk_address": "10.9.0.8"},
            },
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
                "tomwerk_admin_networks": ["10.9.0.0/24"],
                "monitoring_targets": ["mail7", "web7"],
                "monitoring_external_rules_dir": str(tmp / "rules.d" / "tomwerk"),
                "monitoring_external_scrape_config_file": str(tmp / "scrape.d" / "tomwerk.yml"),
                "monitoring_external_reload_command": ["sh", "-c", f"echo reloaded >> {tmp / 'reloads'}"],
                "monitoring_runbook_url": "https://wiki.example.net/tomwerk/runbooks",
            },
        }
    }
    (tmp / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp / "playbook.yml").write_text(PLAYBOOK)
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"}
    proc = subprocess.run(
        [Path(sys.executable).parent / "ansible-playbook", "-i", str(tmp / "inventory.yml"), str(tmp / "playbook.yml")],
        capture_output=True, text=True, env=env, cwd=tmp, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return json.loads(proc.stdout)["stats"]["prometheus"]


def test_rules_and_jobs_land_checked_and_the_prometheus_is_reloaded_once(tmp_path):
    first = converge(tmp_path)
    rules = sorted((tmp_path / "rules.d" / "tomwerk").glob("*.yml"))
    shipped = sorted(p.name for p in (ROOT / "roles" / "monitoring" / "files" / "alerts").glob("*.yml"))
    assert [p.name for p in rules] == shipped and first["changed"] > 0
    alerts = [r for p in rules for g in yaml.safe_load(p.read_text())["groups"] for r in g["rules"] if "alert" in r]
    assert all(a["annotations"]["runbook_url"].startswith("https://wiki.example.net/tomwerk/runbooks#") for a in alerts)
    # The admins' Prometheus names the rules under rule_files (and the jobs file under
    # scrape_config_files, 2.43 and later; the controller's Debian 12 promtool is 2.42).
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({"rule_files": [str(tmp_path / "rules.d" / "tomwerk" / "*.yml")]}))
    for path in (config, tmp_path / "scrape.d" / "tomwerk.yml"):
        check = subprocess.run(
            ["promtool", "check", "config", "--syntax-only", str(path)], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
    jobs = yaml.safe_load((tmp_path / "scrape.d" / "tomwerk.yml").read_text())["scrape_configs"]
    assert [j["job_name"] for j in jobs] == ["tomwerk", "node"]
    assert [t["labels"]["instance"] for t in jobs[0]["static_configs"]] == ["mail7", "web7"]
    assert (tmp_path / "reloads").read_text() == "reloaded\n"
    # Idempotent: the second run changes nothing and does not reload again.
    assert converge(tmp_path)["changed"] == 0
    assert (tmp_path / "reloads").read_text() == "reloaded\n"
    assert not (tmp_path / "etc").exists()  # no server, nothing outside the named paths
