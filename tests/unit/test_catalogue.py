"""The catalogue stays honest: every id it names exists, and everything that
carries a TOM id (test markers, metrics, alert rules) names a known TOM."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import yaml

from tests.unit.test_roles import ROLES
from tomwerk import ROOT, catalogue, readme, runbooks
from tomwerk.check_inventory import imported_roles
from tomwerk.testindex import marked_tests

TOMS = catalogue.load()
TECHNICAL = [t for t in TOMS.values() if t.technical]
IMPLEMENTED = [t for t in TECHNICAL if t.status == "implemented"]
SEEDS = yaml.safe_load((ROOT / "docs" / "seeds.yml").read_text())["seeds"]
SEEDS_DIR = ROOT.parent / "shared" / "seeds"


def test_catalogue_has_technical_and_organisational_toms():
    assert len(TECHNICAL) >= 20
    assert len([t for t in TOMS.values() if not t.technical]) >= 3


@pytest.mark.parametrize("tom", IMPLEMENTED, ids=[t.id for t in IMPLEMENTED])
def test_implemented_tom_has_roles_and_tests(tom):
    assert tom.roles, "an implemented technical TOM names the roles that enforce it"
    for role in tom.roles:
        assert (ROOT / "roles" / role / "tasks" / "main.yml").exists(), f"role {role} does not exist"
    assert tom.tests, "an implemented technical TOM names at least one test"


def test_catalogue_names_its_version():
    """Every evidence report prints the catalogue edition it was made with."""
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}|\d+\.\d+(\.\d+)?", TOMS.version), TOMS.version
    assert re.fullmatch(r"[0-9a-f]{64}", TOMS.sha256)


@pytest.mark.parametrize("tom", TECHNICAL, ids=[t.id for t in TECHNICAL])
def test_technical_tom_says_what_to_do_when_it_fails(tom):
    """The report's "what to do" for a failed check: both languages, a concrete command for the host."""
    assert tom.remedy, f"{tom.id}: no remedy (de/en) in toms.yml"
    for lang in ("de", "en"):
        text = tom.remedy.get(lang, "")
        assert text.strip(), f"{tom.id}: remedy needs {lang}"
        # The report fills {host} and {inventory}; any other brace would be shown raw.
        assert set(re.findall(r"{[^}]*}", text)) <= {"{host}", "{inventory}"}, text
        assert "playbooks/site.yml" in text and "--limit {host}" in text, f"{tom.id} ({lang}): name the command"
        assert text.count("`") % 2 == 0, f"{tom.id} ({lang}): unbalanced code quotes"


def test_listed_tests_are_exactly_the_marked_tests():
    """Each entry's tests list equals the tests that carry its marker (both ways)."""
    index = marked_tests()
    for tom in TOMS.values():
        assert sorted(tom.tests) == index.get(tom.id, []), (
            f"{tom.id}: catalogue and markers disagree; run `tomwerk catalogue sync-tests`"
        )


def test_markers_name_known_toms():
    unknown = set(marked_tests()) - set(TOMS)
    assert not unknown


def test_planned_toms_claim_no_tests():
    for tom in TECHNICAL:
        if tom.status == "planned":
            assert not tom.tests and not tom.metrics and not tom.alerts, f"{tom.id} is planned but claims checks"


def test_sources_are_known_seeds():
    for tom in TOMS.values():
        for src in tom.sources:
            assert src["seed"] in SEEDS, f"{tom.id}: unknown seed {src['seed']}"


@pytest.mark.skipif(not SEEDS_DIR.is_dir(), reason="the seed texts are not beside this checkout")
def test_seed_files_and_sections_exist():
    """With the seeds at hand: the files are the ones catalogued, and each section is in its seed."""
    for name, meta in SEEDS.items():
        data = (SEEDS_DIR / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == meta["sha256"], name
    texts = {name: (SEEDS_DIR / name).read_text(encoding="utf-8") for name in SEEDS}
    for tom in TOMS.values():
        for src in tom.sources:
            heading = re.sub(r"\s*\(.*\)$", "", src["section"])  # "(Mail-Lösungen)" notes are ours
            assert heading.lower() in texts[src["seed"]].lower(), f"{tom.id}: section {src['section']!r}"


def test_metrics_exist_and_follow_conventions():
    exporter_source = "\n".join(p.read_text() for p in (ROOT / "tomwerk_host" / "exporter").rglob("*.py"))
    for tom in TOMS.values():
        for metric in tom.metrics:
            assert metric.startswith("tomwerk_"), metric
            assert f'"{metric}"' in exporter_source or f"'{metric}'" in exporter_source, (
                f"{tom.id}: {metric} not exported"
            )


def test_alerts_exist_and_carry_their_tom():
    rules = {rule["alert"]: rule for rule in runbooks.alert_rules()}
    for tom in TOMS.values():
        for alert in tom.alerts:
            assert alert in rules, f"{tom.id}: alert {alert} not defined"
    for name, rule in rules.items():
        tom = rule.get("labels", {}).get("tom")
        if tom and "{{" not in tom:
            assert tom in TOMS, f"alert {name} names unknown {tom}"


def test_readme_map_is_generated_from_the_catalogue():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = text.index(readme.BEGIN), text.index(readme.END) + len(readme.END)
    assert text[start:end] == readme.tom_map(TOMS), "run `tomwerk catalogue update-readme`"


# Roles that serve the TOMs of the roles depending on them, none of their own.
SUPPORT_ROLES = {"tomwerk_host"}  # the host package: exporter, backup runner, anonymiser, ...


def test_every_role_serves_a_tom():
    used = {r for t in TOMS.values() for r in t.roles}
    roles = {p.name for p in (ROOT / "roles").iterdir() if p.is_dir()} - SUPPORT_ROLES
    assert roles <= used, f"roles without a TOM: {sorted(roles - used)}"


def test_support_roles_serve_tom_roles():
    for support in SUPPORT_ROLES:
        users = [role for role in ROLES if support in imported_roles(role)]
        assert users, f"{support} serves no role"


def test_tom_ids_in_roles_are_known():
    """TOM ids written in role code (comments, file headers) exist."""
    for path in Path(ROOT / "roles").rglob("*"):
        if path.is_file():
            for tom in re.findall(r"TOM-[A-Z]+-\d{2}", path.read_text(errors="replace")):
                assert tom in TOMS, f"{path}: unknown {tom}"
