"""What every collector of a role keeps to on its recorded host, one table over the collectors.

Each collector's module (test_exporter_backup.py, _org, _updates) describes its
recorded host, exporter, figures, drifts and check errors in a CollectorTests;
the tests here run the same checks on each of them.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from tests.unit.exporter_helpers import CollectorTests
from tests.unit.test_exporter_backup import BACKUP_TESTS
from tests.unit.test_exporter_org import ORG_TESTS
from tests.unit.test_exporter_updates import UPDATES_TESTS

COLLECTORS: dict[str, CollectorTests] = {kit.name: kit for kit in (BACKUP_TESTS, ORG_TESTS, UPDATES_TESTS)}


def each_case(table: Callable[[CollectorTests], dict]):
    """Parametrises kit and name over the cases of table(kit) of every collector."""
    cases = [(kit, name) for kit in COLLECTORS.values() for name in table(kit)]
    return pytest.mark.parametrize(("kit", "name"), cases, ids=[f"{kit.name}: {name}" for kit, name in cases])


each_collector = pytest.mark.parametrize("kit", COLLECTORS.values(), ids=COLLECTORS)


def command_errors(kit: CollectorTests) -> dict:
    """How the collector's command fails: the ways any command can, then the collector's own."""
    if not kit.commands:
        return {}
    program = kit.commands[0][0]
    return {
        "missing": (FileNotFoundError(2, "No such file or directory"), f"{program} not found"),
        "hangs": (subprocess.TimeoutExpired(program, 5), "did not finish"),
        "empty": ((0, "", ""), "printed no JSON object"),
        "not-an-object": ((0, "[]", ""), "printed no JSON object"),
        **kit.command_errors,
    }


@each_collector
def test_compliant_host(kit):
    kit.assert_compliant()


@each_case(lambda kit: kit.drifts)
def test_drift_flips_exactly_the_right_tom_and_figure(kit, name):
    kit.assert_drift(*kit.drifts[name])


@each_collector
def test_inactive_without_the_role(kit):
    kit.assert_inactive()


@each_collector
def test_metric_names_follow_the_conventions(kit):
    kit.assert_conventions()


# --------------------------------------------------------------------- check errors


@pytest.mark.parametrize("kit", [kit for kit in COLLECTORS.values() if kit.required], ids=lambda kit: kit.name)
def test_missing_variable_is_a_check_error(kit, caplog):
    kit.assert_missing_variable_fails(kit.required, caplog)


@each_case(lambda kit: kit.state_errors)
def test_broken_state_file_is_a_check_error(kit, name, caplog):
    kit.assert_state_error(*kit.state_errors[name], caplog)


@each_case(lambda kit: kit.file_errors)
def test_broken_file_is_a_check_error(kit, name, caplog):
    kit.assert_file_error(*kit.file_errors[name], caplog)


@each_case(command_errors)
def test_failing_command_is_a_check_error(kit, name, caplog):
    kit.assert_command_error(*command_errors(kit)[name], caplog)
