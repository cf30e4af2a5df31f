"""Modules the tests load by their path: files that are no importable package."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from types import ModuleType

from tomwerk import ROOT


def load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def filter_plugin() -> ModuleType:
    """plugins/filter/tomwerk.py, as Ansible loads it: by its path."""
    return load_module("tomwerk_filters", ROOT / "plugins" / "filter" / "tomwerk.py")
