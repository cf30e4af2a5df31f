"""The Grafana dashboard's structure: every query names metrics the exporter really exports.

Its queries returning data is a lab check (tests/compliance/test_dashboard.py)."""

from __future__ import annotations

import json
import re

from tomwerk import ROOT

DASHBOARD = ROOT / "roles" / "monitoring" / "files" / "grafana" / "tomwerk-compliance.json"
HOST_SOURCE = "\n".join(p.read_text() for p in (ROOT / "tomwerk_host").rglob("*.py"))


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def test_panels_are_unique_and_use_the_datasource_variable():
    panels = dashboard()["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    assert dashboard()["uid"] == "tomwerk-compliance"
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"] and all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
        assert panel["description"], panel["title"]


def test_panels_do_not_overlap():
    taken: set[tuple[int, int]] = set()
    for panel in dashboard()["panels"]:
        g = panel["gridPos"]
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & taken, panel["title"]
        assert g["x"] + g["w"] <= 24
        taken |= cells


def test_every_metric_in_a_query_is_exported():
    for panel in dashboard()["panels"]:
        for target in panel["targets"]:
            for name in re.findall(r"\b(tomwerk_[a-z0-9_]+)", target["expr"]):
                assert f'"{name}"' in HOST_SOURCE, f"{panel['title']}: {name} is not exported"


def test_the_dashboard_covers_what_the_admins_look_at():
    text = json.dumps(dashboard())
    for metric in ("tomwerk_tom_compliant", "tomwerk_backup_last_success_timestamp_seconds", "tomwerk_updates_pending",
                   "tomwerk_log_pii_lines", "tomwerk_tls_certificate_expiry_timestamp_seconds", "ALERTS"):  # fmt: skip
        assert metric in text, metric
