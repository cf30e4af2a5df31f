"""site.yml checks every role's input for every host before it changes anything (issue 18).

playbooks/validate.yml is generated from site.yml (`make readme`); site.yml imports it first."""

from __future__ import annotations

import yaml

from tomwerk import ROOT, check_inventory
from tomwerk.inventory import plays, role_names, short_role

SITE = ROOT / "playbooks" / "site.yml"


def test_the_validation_playbook_is_current():
    current = (ROOT / "playbooks" / "validate.yml").read_text(encoding="utf-8")
    assert current == check_inventory.playbook(SITE, keep_going=False), "stale: run `make readme`"


def test_site_imports_it_before_any_role():
    first = yaml.safe_load(SITE.read_text(encoding="utf-8"))[0]
    assert first.get("ansible.builtin.import_playbook") == "validate.yml", first


def test_every_play_of_site_has_its_input_checks_on_the_same_hosts_first():
    checks = [p for p in yaml.safe_load((ROOT / "playbooks" / "validate.yml").read_text()) if p.get("tasks")]
    real = [p for p in plays(SITE) if role_names(p)]
    assert [c["hosts"] for c in checks] == [p["hosts"] for p in real]
    for check, play in zip(checks, real, strict=True):
        validated = [short_role(r) for r in check["tasks"][0]["loop"]]
        assert set(role_names(play)) <= set(validated), play["name"]
        include = check["tasks"][0]["ansible.builtin.include_role"]
        assert include["tasks_from"] == "validate" and "ignore_errors" not in include["apply"]


def test_check_inventory_runs_the_same_checks_but_keeps_going():
    site_form = check_inventory.playbook(SITE, keep_going=False)
    check_form = check_inventory.playbook(SITE, keep_going=True)
    loops = [line for line in site_form.splitlines() if "loop:" in line]
    assert loops == [line for line in check_form.splitlines() if "loop:" in line]
    assert "ignore_errors: true" in check_form and "ignore_errors" not in site_form


def test_it_is_made_from_site_even_when_missing_and_names_may_hold_colons(tmp_path):
    site = tmp_path / "site.yml"
    site.write_text(
        "- ansible.builtin.import_playbook: validate.yml\n- {name: 'Web: TLS and HSTS', hosts: web, roles: [web_tls]}\n"
    )
    generated = yaml.safe_load(check_inventory.playbook(site, keep_going=False))
    named = [p for p in generated if p.get("tasks")]
    assert [p["name"] for p in named] == ["Input checks of Web: TLS and HSTS"]
    assert named[0]["tasks"][0]["loop"] == ["tomwerk.toms.web_tls"]
