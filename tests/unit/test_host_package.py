"""The host package (tomwerk_host): one artifact, every tool an entry point, on the hosts' Pythons."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.unit import hostpkg
from tomwerk import ROOT, pack
from tomwerk_host import __main__ as dispatch

PACKAGE = ROOT / "tomwerk_host"
# Debian 12's and 13's Python versions; the skip says when one is missing here.
HOST_PYTHONS = ["3.11", "3.13"]


def interpreter(version: str) -> str:
    """python<version> on PATH when it runs, else pyenv's (its shims run only the selected one)."""
    pyenv = sorted(Path.home().glob(f".pyenv/versions/{version}*/bin/python{version}"))
    candidates = [shutil.which(f"python{version}"), *pyenv]
    for candidate in filter(None, candidates):
        if subprocess.run([str(candidate), "-c", ""], capture_output=True, check=False).returncode == 0:
            return str(candidate)
    pytest.skip(f"no Python {version} on this machine")


def test_no_python_left_in_the_roles():
    assert sorted(str(p.relative_to(ROOT)) for p in (ROOT / "roles").rglob("*.py")) == []


def test_every_tool_has_a_main():
    for tool, module in dispatch.TOOLS.items():
        assert callable(importlib.import_module(module).main), tool


def test_every_module_is_in_the_zipapp():
    names = set(zipfile.ZipFile(hostpkg.zipapp()).namelist())
    for path in PACKAGE.rglob("*.py"):
        if "__pycache__" not in path.parts:
            assert path.relative_to(ROOT).as_posix() in names, path


def test_the_zipapp_is_reproducible(tmp_path):
    first = pack.pack_zipapp(PACKAGE, tmp_path / "a.pyz", "tomwerk_host.__main__:main").read_bytes()
    second = pack.pack_zipapp(PACKAGE, tmp_path / "b.pyz", "tomwerk_host.__main__:main").read_bytes()
    assert first == second
    assert first.startswith(b"#!/usr/bin/python3 -I\n")


def test_a_link_named_after_the_tool_runs_it(tmp_path):
    """How the roles install a tool: /usr/local/sbin/tomwerk-<tool> -> tomwerk-host.pyz."""
    app = tmp_path / "tomwerk-host.pyz"
    shutil.copy(hostpkg.zipapp(), app)
    link = tmp_path / "tomwerk-anonymize"
    link.symlink_to(app.name)
    proc = subprocess.run(
        [sys.executable, "-I", str(link)], input=b"from 192.0.2.7 to a@b.example\n", capture_output=True, check=False
    )
    assert (proc.returncode, proc.stdout) == (0, b"from 0 to x@x\n"), proc.stderr


def test_unknown_tool_and_no_tool_exit_2():
    for argv in ([], ["nonsense"]):
        proc = subprocess.run([sys.executable, "-I", str(hostpkg.zipapp()), *argv], capture_output=True, text=True)
        assert proc.returncode == 2, proc
        assert "anonymize" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("version", HOST_PYTHONS)
def test_every_tool_starts_on_the_hosts_python(version):
    """Each tool's --help from the zipapp: every import resolves on that Python (the
    exporter needs prometheus-client, which only the hosts have)."""
    python = interpreter(version)
    for tool in dispatch.TOOLS:
        if tool == "exporter":
            continue
        proc = subprocess.run([*hostpkg.command(tool, python), "--help"], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, f"{tool} on {python}: {proc.stderr[-500:]}"
        assert "usage:" in proc.stdout, tool


@pytest.mark.parametrize("version", HOST_PYTHONS)
def test_retention_sweep_and_anonymiser_work_on_the_hosts_python(version, tmp_path):
    python = interpreter(version)
    log = tmp_path / "app.log"
    log.write_text("2026-11-01T10:00:00+00:00 web1 app: old entry\n")
    state = tmp_path / "retention.json"
    classes = [{"name": "logs", "limit_days": 14, "paths": [str(log)], "expire": [str(log)]}]
    state.write_text(json.dumps({"vars": {"retention_classes": classes, "retention_sweep_margin_seconds": 0}}))
    now = "1795330000"  # 2026-11-22: the entry is 21 days old
    out = subprocess.run(
        [*hostpkg.command("retention", python), "enforce", "--state", str(state), "--now", now],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0 and "logs: deleted" in out.stdout, out.stderr
    assert not log.exists()
    proc = subprocess.run(
        hostpkg.command("anonymize", python), input=b"mail from [2001:db8::1] <a@b.example>\n", capture_output=True
    )
    assert proc.stdout == b"mail from [0] <x@x>\n", proc.stderr


@pytest.mark.parametrize("version", HOST_PYTHONS)
def test_the_probe_answers_json_without_prometheus_client(version, tmp_path):
    """tomwerk-probe is what the compliance checks run on every host: plain Python, no python3-prometheus-client."""
    python = interpreter(version)
    proc = subprocess.run(
        [*hostpkg.command("probe", python), "--state-dir", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    # Nothing to measure (no role's state file): an answer, but no proof, so exit 1.
    assert proc.returncode == 1, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["toms"] == {} and answer["collectors"]["ssh"]["active"] is False
