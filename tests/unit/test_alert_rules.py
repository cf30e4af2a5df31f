"""Alert rules are tested and carry their TOM; the promtool run itself is `make rules`."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from tomwerk import ROOT, catalogue

RULE_FILES = sorted((ROOT / "roles").glob("*/files/alerts/*.yml"))
TEST_FILES = sorted((ROOT / "tests" / "promtool").glob("*.test.yml"))
# Metrics whose series carry the `tom` label themselves.
TOM_LABELLED = ("tomwerk_tom_compliant", "tomwerk_tom_check_timestamp_seconds")


def rules() -> dict[str, dict]:
    found = {}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    found[rule["alert"]] = rule
    return found


def cases() -> list[dict]:
    return [
        case for path in TEST_FILES for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]  # fmt: skip


RULES = rules()


@pytest.mark.parametrize("name", sorted(RULES))
def test_rule_has_firing_and_silent_case(name):
    mine = [c for c in cases() if c["alertname"] == name]
    assert any(c.get("exp_alerts") for c in mine), f"{name}: no case where it fires"
    assert any(not c.get("exp_alerts") for c in mine), f"{name}: no case where it stays silent"


@pytest.mark.parametrize("name", sorted(RULES))
def test_rule_names_its_tom(name):
    rule = RULES[name]
    tom = rule.get("labels", {}).get("tom")
    if tom is None:
        assert any(m in rule["expr"] for m in TOM_LABELLED), f"{name}: no tom label and no tom-labelled series"
    else:
        assert tom in catalogue.load(), tom


@pytest.mark.parametrize("name", sorted(RULES))
def test_rule_metrics_follow_conventions(name):
    for metric in re.findall(r"\b(tomwerk_[a-z0-9_]+)", RULES[name]["expr"]):
        assert not metric.endswith("_total") or "rate(" in RULES[name]["expr"] or "increase(" in RULES[name]["expr"]


def test_promtool_unit_tests_pass():
    """`promtool test rules` on every test file (also `make rules`)."""
    assert shutil.which("promtool"), "promtool is missing: `make bootstrap` installs Debian's prometheus package"
    for path in TEST_FILES:
        proc = subprocess.run(["promtool", "test", "rules", path.name], cwd=path.parent, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
