"""TOM-MON-01: the Grafana dashboard (roles/monitoring/files/grafana) shows real data.

Grafana is not a Debian package and cannot run here, so the check asks the lab's real
Prometheus every panel query (the host variable as "All") and wants data back."""

from __future__ import annotations

import json
import re

import pytest

from tests.compliance.promql import query
from tomwerk import ROOT

ROLE = "monitoring"
DASHBOARD = ROOT / "roles" / "monitoring" / "files" / "grafana" / "tomwerk-compliance.json"


def panel_queries() -> list[tuple[str, str]]:
    """(panel title and target, PromQL with the dashboard's variables as "All") of every target."""
    found = []
    for panel in json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]:
        for target in panel["targets"]:
            found.append((f"{panel['title']} [{target['refId']}]", target["expr"].replace("$instance", ".*")))
    return found


@pytest.mark.tom("TOM-MON-01")
@pytest.mark.parametrize(("panel", "expr"), panel_queries(), ids=[p for p, _ in panel_queries()])
def test_every_dashboard_query_returns_data(host, role_vars, panel, expr, evidence):
    """Each panel query of the Grafana dashboard returns data from the lab's Prometheus."""
    prometheus = f"https://{role_vars['monitoring_listen_address']}:9090"
    result = query(host, prometheus, expr)
    evidence("series", len(result))
    assert result, f"{panel}: no data for {expr}"


def metric_names() -> list[str]:
    """The tomwerk_* series the panels read. A query ending in `or vector(0)` answers even
    without them, so each must exist on its own (ALERTS is empty when nothing fires, rightly)."""
    return sorted({name for _, expr in panel_queries() for name in re.findall(r"\btomwerk_[a-z0-9_]+", expr)})


@pytest.mark.tom("TOM-MON-01")
@pytest.mark.parametrize("name", metric_names())
def test_every_series_a_panel_reads_exists(host, role_vars, name, evidence):
    """Every tomwerk_* metric a dashboard panel reads has series in the lab's Prometheus."""
    prometheus = f"https://{role_vars['monitoring_listen_address']}:9090"
    result = query(host, prometheus, f'count({{__name__="{name}"}})')
    evidence("series", int(float(result[0]["value"][1])) if result else 0)
    assert result, f"no series named {name}: the panels reading it show a made-up 0"
