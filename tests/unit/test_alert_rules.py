"""Alert rules are tested and carry their TOM; the promtool run itself is `make rules`."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess

import pytest
import yaml

from tests.unit.loaders import filter_plugin
from tomwerk import ROOT, catalogue, runbooks

filters = filter_plugin()

RULE_FILES = sorted(runbooks.RULES_DIR.glob("*.yml"))
TEST_FILES = sorted((ROOT / "tests" / "promtool").glob("*.test.yml"))
# Metrics whose series carry the `tom` label themselves.
TOM_LABELLED = ("tomwerk_tom_compliant", "tomwerk_tom_check_timestamp_seconds")


@functools.cache
def cases() -> list[dict]:
    return [
        case for path in TEST_FILES for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]  # fmt: skip


RULES = {rule["alert"]: rule for rule in runbooks.alert_rules()}
TOMS = catalogue.load()


def test_alert_rules_are_the_monitoring_roles():
    """Every rule file is one the runbooks are made from: no other role ships alert rules."""
    assert sorted((ROOT / "roles").glob("*/files/alerts/*.yml")) == RULE_FILES


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
        assert tom in TOMS, tom


@pytest.mark.parametrize("name", sorted(RULES))
def test_rule_metrics_follow_conventions(name):
    for metric in re.findall(r"\b(tomwerk_[a-z0-9_]+)", RULES[name]["expr"]):
        assert not metric.endswith("_total") or "rate(" in RULES[name]["expr"] or "increase(" in RULES[name]["expr"]


@pytest.mark.heavy
def test_promtool_unit_tests_pass():
    """`promtool test rules` on every test file (also `make rules`)."""
    assert shutil.which("promtool"), "promtool is missing: `make bootstrap` installs Debian's prometheus package"
    for path in TEST_FILES:
        proc = subprocess.run(["promtool", "test", "rules", path.name], cwd=path.parent, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_runbooks_are_generated_and_have_a_section_per_alert():
    books = runbooks.load(TOMS)
    assert sorted(b.alert for b in books) == sorted(RULES)
    markdown, console = runbooks.MARKDOWN.read_text(), runbooks.CONSOLE.read_text()
    assert markdown == runbooks.markdown(books), "docs/runbooks.md is stale: run `make readme`"
    assert console == runbooks.console(books), "the runbook console is stale: run `make readme`"
    for name in RULES:
        assert f"\n## {name}\n" in markdown
        assert f'<section id="{name.lower()}">' in console
    assert "{{" not in console  # Prometheus renders consoles as Go templates


def test_installed_rules_link_their_runbook_and_keep_everything_else():
    base = "https://monitor.example:9090/consoles/tomwerk-runbooks.html"
    for path in RULE_FILES:
        original = yaml.safe_load(path.read_text())
        linked = filters.with_runbook_urls(original, base)
        for group, new_group in zip(original["groups"], linked["groups"], strict=True):
            for rule, new_rule in zip(group["rules"], new_group["rules"], strict=True):
                if "alert" not in rule:
                    assert new_rule == rule
                    continue
                notes = dict(new_rule["annotations"])
                assert notes.pop("runbook_url") == f"{base}#{rule['alert'].lower()}"
                assert {**new_rule, "annotations": notes} == rule
