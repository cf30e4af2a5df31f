"""Which tests carry which TOM id, read from the source (no import, no hosts)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tomwerk import ROOT

TESTS = ROOT / "tests"


def probed_toms() -> set[str]:
    """The TOMs the host probe measures (tomwerk-probe, the exporter's collectors)."""
    from tomwerk_host.exporter.collectors import all_collectors

    return {tom for collector in all_collectors() for tom in collector.toms}


def _tom_ids(decorators) -> list[str]:
    ids = []
    for dec in decorators:
        # @pytest.mark.probe: one check per TOM the host's probe measures
        if isinstance(dec, ast.Attribute) and dec.attr == "probe":
            ids.extend(sorted(probed_toms()))
        # @pytest.mark.tom("TOM-X-01")
        if (
            isinstance(dec, ast.Call)
            and isinstance(dec.func, ast.Attribute)
            and dec.func.attr == "tom"
            and dec.args
            and isinstance(dec.args[0], ast.Constant)
        ):
            ids.append(dec.args[0].value)
    return ids


def marked_tests(root: Path = TESTS) -> dict[str, list[str]]:
    """TOM id -> sorted pytest node ids (path::function) that carry its marker."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in sorted(root.rglob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
                for tom in _tom_ids(node.decorator_list):
                    found[tom].add(f"{rel}::{node.name}")
    return {tom: sorted(ids) for tom, ids in found.items()}
