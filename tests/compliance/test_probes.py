"""Every technical TOM of every host, judged by the host's own measurement (`tomwerk-probe`).

The probe runs the exporter's collectors on the host: the same code, reading
the settings the roles recorded they applied, that the metrics show. One
check per host and TOM, so the report has a row for each, with the probe's
reasons and figures as evidence. What only shows from outside (a handshake, a
probe from another host, a restore) is checked by the TOM's own module."""

from __future__ import annotations

import pytest

from tests.compliance.conftest import probe_result

ROLE = "tom_exporter"  # the probe ships with the exporter, on every host


def figures(entry: dict) -> dict[str, float]:
    found = {}
    for sample in entry["observed"]:
        labels = ",".join(f"{k}={v}" for k, v in sorted(sample["labels"].items()))
        found[sample["name"] + (f"{{{labels}}}" if labels else "")] = sample["value"]
    return found


@pytest.mark.probe  # conftest: one check per TOM the host's roles record, marked with it
def test_the_hosts_own_measurement_says_the_tom_holds(host, role_vars, tom, evidence):
    """The host's probe (the exporter's measurement, run on the host) finds the TOM in force."""
    result = probe_result(host, role_vars["tom_exporter_probe_command"])
    entry = result["toms"].get(tom)
    assert entry is not None, f"{tom}: the host's probe does not measure it; is its collector missing?"
    evidence("probe", {"compliant": entry["compliant"], "reasons": entry["reasons"], "by": entry["collectors"]})
    evidence("figures", figures(entry))
    assert entry["compliant"], f"{tom} does not hold: {'; '.join(entry['reasons'])}"
