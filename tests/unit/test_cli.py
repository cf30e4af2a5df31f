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
