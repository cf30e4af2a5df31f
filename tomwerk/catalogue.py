"""The TOM catalogue (toms.yml): the one place that defines each TOM."""

from __future__ import annotations

import hashlib
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
    # What to do when a technical TOM does not hold on a host ({de, en}); {host} and
    # {inventory} are filled in by the report.
    remedy: dict | None = None
    # Role -> {de, en}: why the TOM does not apply on a host that carries this role
    # but none of the TOM's checks (e.g. the lab's ACME server issues, it holds no
    # certificate). The report shows the reason instead of "not checked".
    not_applicable: dict = field(default_factory=dict)

    @property
    def technical(self) -> bool:
        return self.kind == "technical"


class CatalogueError(ValueError):
    pass


class Catalogue(dict[str, Tom]):
    """The TOMs by id, plus what identifies this edition of the catalogue in a report."""

    def __init__(self, *args, version: str = "", sha256: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.version = version  # toms.yml's `version:`, bumped by hand when the measures change
        self.sha256 = sha256  # of the file itself: tells editions apart even if a bump was forgotten


def load(path: Path = CATALOGUE) -> Catalogue:
    """Load and structurally validate the catalogue; ids in file order."""
    raw_bytes = path.read_bytes()
    data = yaml.safe_load(raw_bytes.decode("utf-8"))
    version = data.get("version")
    if not isinstance(version, str) or not version.strip():
        raise CatalogueError(f"{path}: needs a top-level `version:` string")
    toms = Catalogue(version=version, sha256=hashlib.sha256(raw_bytes).hexdigest())
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
    if tom.remedy is not None and not (
        isinstance(tom.remedy, dict) and all(isinstance(tom.remedy.get(lang), str) for lang in ("de", "en"))
    ):
        problems.append("remedy needs de and en text")
    for role, reason in (tom.not_applicable or {}).items():
        if role not in tom.roles:
            problems.append(f"not_applicable names {role}, which is not one of its roles")
        if not (isinstance(reason, dict) and all(isinstance(reason.get(lang), str) for lang in ("de", "en"))):
            problems.append(f"not_applicable.{role} needs de and en text")
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
