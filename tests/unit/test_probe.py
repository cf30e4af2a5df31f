"""tomwerk-probe (tomwerk_host/probe.py): the exporter's measurement as JSON, one verdict per TOM.

The metrics and the checks must read one measurement. So for every recorded
drift, the probe's verdict of each TOM equals the exporter's tomwerk_tom_compliant,
and a failing TOM carries the reason in plain words.
"""

from __future__ import annotations

import io
import json

import pytest

from tests.unit.test_exporter import ALL_TOMS, STATE_DIR, RecordedHost, make_exporter, scrape
from tests.unit.test_exporter_backup import make_backup_exporter
from tests.unit.test_exporter_collectors import DRIFTS
from tests.unit.test_exporter_org import make_org_exporter
from tomwerk_host import probe
from tomwerk_host.exporter.collectors import all_collectors
from tomwerk_host.exporter.collectors.ssh import SSHD_T


@pytest.mark.parametrize("name", ["compliant", *DRIFTS])
def test_the_probe_and_the_metric_give_one_verdict(name):
    host = RecordedHost()
    drift, failing, _ = DRIFTS.get(name, (lambda h: None, set(), {}))
    drift(host)
    measured = probe.measure(make_exporter(host))["toms"]
    metric = scrape(make_exporter(host)).toms()
    assert {tom: int(entry["compliant"]) for tom, entry in measured.items()} == metric
    assert sorted(measured) == ALL_TOMS
    assert {tom for tom, entry in measured.items() if not entry["compliant"]} == failing
    for tom, entry in measured.items():
        assert bool(entry["reasons"]) != entry["compliant"], (tom, entry["reasons"])


def test_a_check_that_cannot_decide_says_why():
    host = RecordedHost()
    host.outputs[SSHD_T] = (255, "", "sshd: no hostkeys available -- exiting.")
    measured = probe.measure(make_exporter(host))
    ssh = {t: e for t, e in measured["toms"].items() if e["collectors"] == ["ssh"]}
    assert ssh and all(not e["compliant"] for e in ssh.values())
    assert all(e["reasons"][0].startswith("check failed: ") for e in ssh.values())
    assert measured["collectors"]["ssh"]["error"]
    assert measured["collectors"]["password"] == {**measured["collectors"]["password"], "active": True, "error": None}


def test_observed_figures_travel_with_the_verdict():
    measured = probe.measure(make_exporter())["toms"]["TOM-PWD-01"]
    names = {o["name"] for o in measured["observed"]}
    assert "tomwerk_password_weak_hash_accounts" in names, names


def observed_names(measured: dict) -> dict[str, set[str]]:
    return {tom: {o["name"] for o in entry["observed"]} for tom, entry in measured["toms"].items()}


def test_a_tom_holds_only_its_own_figures():
    """The ssh collector decides three TOMs; each gets the figures of its own conditions."""
    names = observed_names(probe.measure(make_exporter()))
    assert names["TOM-SSH-01"] == {"tomwerk_ssh_password_auth_enabled"}
    assert names["TOM-SSH-02"] == {"tomwerk_ssh_login_allowed_accounts", "tomwerk_ssh_unexpected_key_files"}
    assert names["TOM-SSH-03"] == {"tomwerk_ssh_weak_algorithms_offered"}


@pytest.mark.parametrize(
    "exporter", [make_exporter, make_backup_exporter, make_org_exporter], ids=["web", "backup", "org"]
)
def test_figures_are_split_by_tom_as_the_catalogue_lists_them(exporter):
    """Every figure lands under a TOM, none under one that toms.yml does not list it for, and the
    multi-TOM collectors (ssh, backup, org) split theirs: no figure under all of their TOMs."""
    import yaml

    from tomwerk import ROOT

    listed: dict[str, set[str]] = {}
    for entry in yaml.safe_load((ROOT / "toms.yml").read_text(encoding="utf-8"))["toms"]:
        for metric in entry.get("metrics") or []:
            listed.setdefault(metric, set()).add(entry["id"])
    measured = probe.measure(exporter())
    names = observed_names(measured)
    for tom, found in names.items():
        assert {n for n in found if n in listed and tom not in listed[n]} == set(), tom
    scraped = {
        name for name, _ in scrape(exporter()).samples if not name.startswith(("tomwerk_tom_", "tomwerk_collector_"))
    }
    assert set().union(*names.values()) == scraped
    for collector in all_collectors():
        toms = [t for t in collector.toms if t in names]
        if len(toms) > 1:
            assert set.intersection(*(names[t] for t in toms)) == set(), collector.name


def test_collectors_of_several_toms_name_the_tom_of_each_figure():
    """In a collector that decides more than one TOM, every gauge() says whose figure it is
    (require_and_gauge takes the TOM of its condition)."""
    import ast
    import inspect

    for collector in all_collectors():
        if len(collector.toms) < 2:
            continue
        tree = ast.parse(inspect.getsource(type(collector)))
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "gauge"]
        assert calls, collector.name
        for call in calls:
            assert "tom" in {k.arg for k in call.keywords}, f"{collector.name}: gauge() in line {call.lineno}"


def run_main(monkeypatch, argv, host=None):
    monkeypatch.setattr(probe, "TomExporter", lambda collectors, state_dir: make_exporter(host))
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    code = probe.main(argv)
    return code, out.getvalue()


def test_main_prints_json_and_exits_0_when_all_hold(monkeypatch):
    code, out = run_main(monkeypatch, ["--state-dir", STATE_DIR])
    assert code == 0
    assert json.loads(out)["toms"]["TOM-SSH-01"]["compliant"] is True


def test_main_exits_1_when_a_tom_does_not_hold_and_narrows_to_the_asked_tom(monkeypatch):
    host = RecordedHost()
    DRIFTS["md5 hash present"][0](host)
    code, out = run_main(monkeypatch, ["--tom", "TOM-PWD-01"], host)
    assert code == 1
    assert list(json.loads(out)["toms"]) == ["TOM-PWD-01"]
    code, out = run_main(monkeypatch, ["--tom", "TOM-SSH-01"], host)
    assert code == 0 and list(json.loads(out)["toms"]) == ["TOM-SSH-01"]
    code, out = run_main(monkeypatch, ["--tom", "TOM-DNS-01"], host)  # no collector of this host decides it
    assert code == 1 and json.loads(out)["toms"] == {}


def test_main_refuses_a_malformed_tom_id(monkeypatch, capsys):
    with pytest.raises(SystemExit) as exc:
        probe.main(["--tom", "ssh-01"])
    assert exc.value.code == 2
    assert "TOM-SSH-01" in capsys.readouterr().err


def test_the_host_tool_is_registered():
    from tomwerk_host.__main__ import TOOLS

    assert TOOLS["probe"] == "tomwerk_host.probe"


def test_every_technical_tom_has_exactly_one_probe():
    """One measurement per TOM: each technical TOM of toms.yml is decided by one collector, no more.
    TOM-MON-01 is the odd one: it is the probe and the exporter themselves, checked from outside."""
    import yaml

    from tomwerk import ROOT

    catalogue = yaml.safe_load((ROOT / "toms.yml").read_text(encoding="utf-8"))["toms"]
    technical = {t["id"] for t in catalogue if t["kind"] == "technical"}
    owners: dict[str, list[str]] = {}
    for collector in all_collectors():
        for tom in collector.toms:
            owners.setdefault(tom, []).append(collector.name)
    assert {t: o for t, o in owners.items() if len(o) != 1} == {}
    assert technical - set(owners) == {"TOM-MON-01"}
