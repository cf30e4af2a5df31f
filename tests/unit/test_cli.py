"""The command line's own surface: version and `python -m tomwerk`."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from tomwerk import ROOT


def test_version_comes_from_pyproject_and_python_m_works():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    out = subprocess.run(
        [sys.executable, "-m", "tomwerk", "--version"], capture_output=True, text=True, check=False, cwd="/"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"tomwerk {declared}"


def test_a_missing_inventory_is_one_line_and_exit_2(tmp_path):
    """Bad input the user can fix: a clear line naming it, exit 2, no traceback, nothing written."""
    for args in (
        ["snapshot", "--inventory", str(tmp_path / "nope"), "--out", str(tmp_path / "out.yml")],
        ["audit", "--inventory", str(tmp_path / "nope"), "--out", str(tmp_path / "results")],
        ["check-inventory", "--inventory", str(tmp_path / "nope")],
    ):
        out = subprocess.run([sys.executable, "-m", "tomwerk", *args], capture_output=True, text=True, check=False)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        said = out.stdout + out.stderr
        assert "Traceback" not in said, said
        assert f"tomwerk {args[0]}: no inventory at {tmp_path / 'nope'}" in said
    assert not (tmp_path / "out.yml").exists()
