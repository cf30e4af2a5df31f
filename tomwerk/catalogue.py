"""The TOM catalogue (toms.yml): the one place that defines each TOM."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tomwerk import ROOT

CATALOGUE = ROOT / "toms.yml"
ID_PATTERN = re.compile(r"^TOM-[A-Z]+-\d{2}$")
KINDS = {"technical", "organisational"}
STATUSES = {"technical": {"implemented", "planned"}, "organisational": {"recorded"}}


@dataclass(frozen=True)
class Tom:
    id: str
    kind: str
    status: str
    family: str
    title: dict
    statement: dict
    sources: list
    roles: list = field(default_factory=list)
    tests: list = field(default_factory=list)
    metrics: list = field(default_factory=list)
    alerts: list = field(default_factory=list)
    evidence: dict | None = None

    @property
    def technical(self) -> bool:
        return self.kind == "technical"


class CatalogueError(ValueError):
    pass


def load(path: Path = CATALOGUE) -> dict[str, Tom]:
    """Load and structurally validate the catalogue; ids in file order."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    toms: dict[str, Tom] = {}
    for raw in data["toms"]:
        tom = Tom(**raw)
        problems = _problems(tom)
        if tom.id in toms:
            problems.append("duplicate id")
        if problems:
            raise CatalogueError(f"{tom.id}: " + "; ".join(problems))
        toms[tom.id] = tom
    return toms


def _problems(tom: Tom) -> list[str]:
    problems = []
    if not ID_PATTERN.match(tom.id):
        problems.append(f"id does not match {ID_PATTERN.pattern}")
    if tom.kind not in KINDS:
        problems.append(f"kind {tom.kind!r} not in {sorted(KINDS)}")
    elif tom.status not in STATUSES[tom.kind]:
        problems.append(f"status {tom.status!r} not allowed for {tom.kind}")
    for lang in ("de", "en"):
        if not tom.statement.get(lang) or not tom.title.get(lang):
            problems.append(f"title and statement need {lang}")
    if not tom.sources:
        problems.append("no seed source")
    for src in tom.sources:
        if not {"seed", "section", "basis"} <= set(src):
            problems.append("a source needs seed, section and basis")
    if tom.kind == "organisational" and not tom.evidence:
        problems.append("organisational TOM without evidence record")
    return problems


def sync_tests(path: Path = CATALOGUE) -> list[str]:
    """Rewrite each entry's `tests:` from the pytest markers; returns the ids that changed.

    Round-trips the YAML (comments and order stay), so the catalogue remains
    the hand-edited source for everything else.
    """
    from ruamel.yaml import YAML

    from tomwerk.testindex import marked_tests

    yaml_rt = YAML()
    yaml_rt.preserve_quotes = True
    yaml_rt.width = 160
    yaml_rt.indent(mapping=2, sequence=4, offset=2)
    yaml_rt.explicit_start = True
    data = yaml_rt.load(path.read_text(encoding="utf-8"))
    index = marked_tests()
    changed = []
    for entry in data["toms"]:
        tests = index.get(entry["id"], [])
        if list(entry.get("tests") or []) != tests:
            entry["tests"] = tests
            changed.append(entry["id"])
    buf = io.StringIO()
    yaml_rt.dump(data, buf)
    # One blank line between entries, as a human would write it.
    text = re.sub(r"\n+(  - id: )", r"\n\n\1", buf.getvalue()).replace("toms:\n\n", "toms:\n")
    path.write_text(text, encoding="utf-8")
    return changed
