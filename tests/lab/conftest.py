"""Lab-only tests: they change the lab hosts on purpose and put them back."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tomwerk import ROOT

LAB_INVENTORY = ROOT / "inventories" / "lab"


def ansible_playbook(*args: str, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run ansible-playbook from the project root with the project's ansible.cfg."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0", **(env or {})},
    )


def recap(output: str, host: str) -> dict[str, int]:
    """The PLAY RECAP counters of one host."""
    for line in output.splitlines():
        if line.startswith(f"{host} ") and "ok=" in line:
            return {k: int(v) for k, v in (field.split("=") for field in line.split()[2:])}
    raise AssertionError(f"no recap for {host} in:\n{output[-3000:]}")


@functools.cache
def _lab():
    from tomwerk.inventory import Inventory

    return Inventory(LAB_INVENTORY)


@pytest.fixture(scope="session")
def lab():
    return _lab()


def lab_host(name: str):
    """A lab host as the checks reach it: the lab inventory's tomwerk_testinfra_spec (nsenter)."""
    from tests.compliance.conftest import get_host

    return get_host(_lab(), name)
