"""What every collector of a role keeps to on its recorded host, one table over the collectors.

Each collector's module (test_exporter_backup.py, _org, _updates) describes its
recorded host, exporter, figures and drifts in a CollectorTests; the tests here
run the same checks on each of them.
"""

from __future__ import annotations

import pytest

from tests.unit.exporter_helpers import CollectorTests
from tests.unit.test_exporter_backup import BACKUP_TESTS
from tests.unit.test_exporter_org import ORG_TESTS
from tests.unit.test_exporter_updates import UPDATES_TESTS

COLLECTORS: dict[str, CollectorTests] = {kit.name: kit for kit in (BACKUP_TESTS, ORG_TESTS, UPDATES_TESTS)}
DRIFTS = [(kit, name) for kit in COLLECTORS.values() for name in kit.drifts]


@pytest.mark.parametrize("kit", COLLECTORS.values(), ids=COLLECTORS)
def test_compliant_host(kit):
    kit.assert_compliant()


@pytest.mark.parametrize(("kit", "name"), DRIFTS, ids=[f"{kit.name}: {name}" for kit, name in DRIFTS])
def test_drift_flips_exactly_the_right_tom_and_figure(kit, name):
    kit.assert_drift(*kit.drifts[name])


@pytest.mark.parametrize("kit", COLLECTORS.values(), ids=COLLECTORS)
def test_inactive_without_the_role(kit):
    kit.assert_inactive()


@pytest.mark.parametrize("kit", COLLECTORS.values(), ids=COLLECTORS)
def test_metric_names_follow_the_conventions(kit):
    kit.assert_conventions()
