"""The tomwerk wheel, installed into a fresh venv, works outside the repository (issue 18).

Heavy: it builds the wheel and installs its declared dependencies from PyPI (or pip's cache)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

from tomwerk import ROOT

pytestmark = pytest.mark.heavy

# Nothing of the source tree may leak in: no PYTHONPATH, no project from the environment.
CLEAN = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TOMWERK_PROJECT", "VIRTUAL_ENV")}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp / "dist"), str(ROOT)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    (wheel,) = (tmp / "dist").glob("tomwerk-*.whl")
    venv.create(tmp / "venv", with_pip=True)
    python = tmp / "venv" / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], check=True, timeout=900, env=CLEAN)
    return tmp / "venv" / "bin"


def run(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(bin_dir / "tomwerk"), *args], capture_output=True, text=True, cwd=cwd, timeout=120, env=CLEAN
    )


def test_the_wheel_holds_the_package_and_declares_what_it_imports(installed):
    (wheel,) = (installed.parent.parent / "dist").glob("tomwerk-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "tomwerk/cli.py" in names and any(n.startswith("tomwerk/templates/") for n in names)
    assert not any(n.startswith(("tests/", "lab/", "roles/")) for n in names), "lab and tests stay out of it"
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert {d.split(">")[0].lower() for d in declared} >= {"ansible-core", "pyyaml", "jinja2", "pytest"}


def test_version_and_python_m(installed, tmp_path):
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert run(installed, "--version", cwd=tmp_path).stdout.strip() == f"tomwerk {declared}"
    module = subprocess.run([str(installed / "python"), "-m", "tomwerk", "--version"], capture_output=True, text=True,
                            cwd=tmp_path, env=CLEAN)  # fmt: skip
    assert module.stdout.strip() == f"tomwerk {declared}", module.stderr


def test_outside_any_project_it_says_so_in_one_line(installed, tmp_path):
    out = run(installed, "catalogue", cwd=tmp_path)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and "--project" in out.stderr, out.stderr


def test_catalogue_and_verify_help_from_outside_the_repository(installed, tmp_path):
    out = run(installed, "--project", str(ROOT), "catalogue", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "TOM-SSH-01" in out.stdout
    helped = run(installed, "--project", str(ROOT), "verify", "--help", cwd=tmp_path)
    assert helped.returncode == 0 and "--inventory" in helped.stdout, helped.stderr
