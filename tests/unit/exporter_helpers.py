"""What the exporter tests (test_exporter*.py) share: recorded hosts, scraping, and the checks
every collector's tests make (CollectorTests).

The tests run with the venv's prometheus-client; the exporter itself keeps to the
0.16 API of Debian 12 (test_exporter.py: test_only_stdlib_and_prometheus_client_016_api).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tomwerk_host.exporter import core
from tomwerk_host.exporter.collectors import all_collectors
from tomwerk_host.exporter.collectors.firewall import NFT_LIST
from tomwerk_host.exporter.collectors.ssh import SSHD_T

ROOT = Path(__file__).resolve().parents[2]
HOST_PACKAGE = ROOT / "tomwerk_host"
PACKAGE = HOST_PACKAGE / "exporter"
FIXTURES = Path(__file__).parent / "fixtures" / "exporter"

STATE_DIR = "/etc/tomwerk/state"
ALL_TOMS = ["TOM-FW-01", "TOM-PWD-01", "TOM-SSH-01", "TOM-SSH-02", "TOM-SSH-03"]
COMMAND_FILES = {SSHD_T: "sshd-T.txt", NFT_LIST: "nft-j-list-ruleset.json"}
LOGGER = "tomwerk_exporter"


# --------------------------------------------------------------------- hosts


class DictHost(core.Host):
    """A host made of dicts: files[path] is a file's text, outputs[argv] a command's (rc, stdout, stderr).

    A test changes the host by editing them; a value that is an exception is
    raised instead, an output that is callable is called. calls counts the
    commands run; modes (path -> (uid, st_mode), default root, 0644) and
    mtimes (path -> time, default 0) are what stat reports of a file.
    """

    def __init__(self, files: dict[str, object] | None = None, outputs: dict[tuple[str, ...], object] | None = None):
        self.files: dict[str, object] = dict(files or {})
        self.outputs: dict[tuple[str, ...], object] = dict(outputs or {})
        self.modes: dict[str, tuple[int, int]] = {}
        self.mtimes: dict[str, float] = {}
        self.calls: Counter = Counter()

    def execute(self, argv):
        self.calls[tuple(argv)] += 1
        result = self.outputs.get(tuple(argv), FileNotFoundError(2, "No such file or directory", argv[0]))
        if callable(result) and not isinstance(result, BaseException):
            result = result()
        if isinstance(result, BaseException):
            raise result
        return result

    def read_text(self, path):
        content = self.files.get(path)
        if content is None:
            raise FileNotFoundError(2, "No such file or directory", path)
        if isinstance(content, BaseException):
            raise content
        return content

    def listdir(self, path):
        prefix = path.rstrip("/") + "/"
        names = {p[len(prefix) :].split("/")[0] for p in self.files if p.startswith(prefix)}
        if not names:
            raise FileNotFoundError(2, "No such file or directory", path)
        return sorted(names)

    def stat(self, path):
        if path not in self.files:
            raise FileNotFoundError(2, "No such file or directory", path)
        uid, mode = self.modes.get(path, (0, 0o100644))
        mtime = self.mtimes.get(path, 0)
        return os.stat_result((mode, 0, 0, 1, uid, 0, 0, mtime, mtime, mtime))


class RecordedHost(DictHost):
    """A host recorded in a fixture tree: <tree>/etc/... at /etc/..., command outputs in <tree>/commands."""

    def __init__(self, tree: Path = FIXTURES / "compliant"):
        super().__init__()
        self.overlay(tree, COMMAND_FILES)

    def overlay(self, tree: Path, commands: dict[tuple[str, ...], str] | None = None) -> RecordedHost:
        """Adds a recording: its files (but its README.md) and, of commands (argv -> name), <tree>/commands/name."""
        for path in sorted(tree.rglob("*")):
            rel = path.relative_to(tree)
            if path.is_file() and rel.parts[0] not in ("commands", "README.md"):
                self.files["/" + rel.as_posix()] = path.read_text()
        for argv, name in (commands or {}).items():
            self.outputs[argv] = (0, (tree / "commands" / name).read_text(), "")
        return self

    # Drift helpers: the edit must apply, or the test would prove nothing.
    def edit(self, path: str, old: str, new: str) -> None:
        assert old in self.files[path], f"{old!r} not in {path}"
        self.files[path] = self.files[path].replace(old, new)

    def edit_output(self, argv: tuple[str, ...], old: str, new: str) -> None:
        rc, out, err = self.outputs[argv]
        assert old in out, f"{old!r} not in the output of {argv}"
        self.outputs[argv] = (rc, out.replace(old, new), err)

    def set_output(self, argv: tuple[str, ...], path: Path) -> None:
        self.outputs[argv] = (0, path.read_text(), "")


def edit_json(text: str, changes: dict, within: str | None = None, **dump) -> str:
    """text, a JSON object, with changes to its keys (or to those of its object `within`); they must exist."""
    data = json.loads(text)
    target = data[within] if within else data
    assert set(changes) <= set(target), changes
    target.update(changes)
    return json.dumps(data, **dump)


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------- exporters and scrapes


def make_exporter(host: core.Host | None = None, **kwargs) -> core.TomExporter:
    kwargs.setdefault("wall", FakeClock(1_700_000_000.0))
    return core.TomExporter(all_collectors(), host=host or RecordedHost(), state_dir=STATE_DIR, **kwargs)


def exporter_with(collector, host: core.Host, now: float, **kwargs) -> core.TomExporter:
    """All registered collectors, the one of collector's name replaced by collector; the wall clock says now."""
    collectors = [collector if c.name == collector.name else c for c in all_collectors()]
    kwargs.setdefault("wall", FakeClock(now))
    return core.TomExporter(collectors, host=host, state_dir=STATE_DIR, **kwargs)


def run_alone(collector, host: core.Host, now: float):
    """One run of one collector (no scrape): its outcome, with toms, error and samples."""
    exporter = core.TomExporter([collector], host=host, state_dir=STATE_DIR, wall=lambda: now)
    return exporter._run(exporter._slots[0])


def assert_outcome(outcome, toms: dict[str, bool], expected: dict) -> None:
    """A run that worked, with these verdicts and (at least) these samples."""
    samples = {(s.name, s.labels): s.value for s in outcome.samples}
    assert outcome.error is None
    assert outcome.toms == toms
    for key, value in expected.items():
        assert samples[key] == value, key


def exposition(exporter: core.TomExporter) -> str:
    registry = CollectorRegistry()
    registry.register(exporter)
    return generate_latest(registry).decode()


class Scrape:
    """A parsed exposition: samples[(name, ((label, value), ...))] = value."""

    def __init__(self, text: str):
        self.text = text
        self.families = list(text_string_to_metric_families(text))
        self.samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in self.families for s in f.samples}

    def value(self, name: str, **labels) -> float | None:
        return self.samples.get((name, tuple(sorted(labels.items()))))

    def series(self, name: str) -> dict[tuple, float]:
        return {labels: v for (n, labels), v in self.samples.items() if n == name}

    def toms(self) -> dict[str, float]:
        return {dict(labels)["tom"]: v for labels, v in self.series("tomwerk_tom_compliant").items()}

    def errors(self) -> dict[str, float]:
        return {dict(labels)["collector"]: v for labels, v in self.series("tomwerk_collector_errors_total").items()}


def scrape(exporter: core.TomExporter) -> Scrape:
    return Scrape(exposition(exporter))


def no_errors() -> dict[str, int]:
    """The error counters of a scrape in which every check worked."""
    return {c.name: 0 for c in all_collectors()}


# --------------------------------------------------------------------- what every scrape must keep to


def personal_label_values(scraped: Scrape) -> list[str]:
    """Label values that are or contain an IP address or a mail address."""
    found = []
    for (_, labels), _ in scraped.samples.items():
        for _, value in labels:
            tokens = re.split(r"[\s,;=()\[\]]+", value)
            if "@" in value or any(_is_ip(t) for t in tokens):
                found.append(value)
    return found


def _is_ip(token: str) -> bool:
    for candidate in (token, token.split("/")[0], token.strip(".:")):
        try:
            ipaddress.ip_address(candidate)
            return True
        except ValueError:
            pass
    return False


# Prometheus naming: https://prometheus.io/docs/practices/naming/
FORBIDDEN_UNITS = re.compile(
    r"_(milliseconds|microseconds|ms|minutes|hours|days|kilobytes|megabytes|kb|mb|percent)(_|$)"
)


def convention_violations(scraped: Scrape) -> list[str]:
    problems = []
    for family in scraped.families:
        name = family.name
        if not re.fullmatch(r"tomwerk_[a-z][a-z0-9_]*", name):
            problems.append(f"{name}: not tomwerk_ snake case")
        if not family.documentation.strip():
            problems.append(f"{name}: no HELP")
        if FORBIDDEN_UNITS.search(name):
            problems.append(f"{name}: not in base units")
        if ("timestamp" in name and not name.endswith("_timestamp_seconds")) or (
            "duration" in name and not name.endswith("_seconds")
        ):
            problems.append(f"{name}: time not in _seconds")
        for sample in family.samples:
            if family.type == "counter" and not sample.name.endswith("_total"):
                problems.append(f"{sample.name}: counter without _total")
            if family.type != "counter" and sample.name.endswith("_total"):
                problems.append(f"{sample.name}: _total on a {family.type}")
            for label in sample.labels:
                if not re.fullmatch(r"[a-z][a-z0-9_]*", label):
                    problems.append(f"{sample.name}: label {label}")
    return problems


def assert_names_in_source(scraped: Scrape) -> None:
    """Metric names appear literally in the source (tests/unit/test_catalogue.py looks for them there)."""
    source = "\n".join(p.read_text() for p in PACKAGE.rglob("*.py"))
    for family in scraped.families:
        assert f'"{family.name}"' in source or f'"{family.name}_total"' in source, family.name


def the_error_logged(caplog, reason: str) -> str:
    """The one error line logged, which gives reason."""
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and reason in errors[0], errors
    assert "\n" not in errors[0]
    return errors[0]


def findings_logged(caplog, host: core.Host, make: Callable[..., core.TomExporter], drift, repair) -> list[str]:
    """The log of a scrape, drift(host), three scrapes (findings, no failed check), repair(host) and two scrapes.

    The exporter is make(host, min_interval=0): every scrape runs the checks.
    """
    exporter = make(host, min_interval=0)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        scrape(exporter)
        drift(host)
        for _ in range(3):
            s = scrape(exporter)
        assert s.errors() == no_errors()
        repair(host)
        scrape(exporter)
        scrape(exporter)
    return [r.getMessage() for r in caplog.records]


# --------------------------------------------------------------------- one collector's tests


@dataclass
class CollectorTests:
    """The checks the tests of one collector on a recorded host share (test_exporter_contract.py makes them all).

    host() is the recorded host it is active on, with the role's state file
    state; exporter(host, **kwargs) the exporter with the collector's clocks
    set; compliant are its figures (its series that start with one of
    prefixes) on host(), drifts its drift cases: id -> (drift, failing TOMs,
    figures that change from compliant; None: the series disappears). A
    scrape runs each of commands once; without_role() is a host where the
    collector is inactive.

    Its check errors (test_exporter_contract.py): required, a variable of
    state whose absence fails the check; state_errors, id -> (changes to the
    state's vars, reason logged), a log that quotes none of unquoted and runs
    none of commands; file_errors, id -> (path, its content, reason);
    command_errors, id -> (the output of commands[0], reason).
    """

    name: str
    toms: list[str]
    prefixes: tuple[str, ...]
    compliant: dict
    drifts: dict
    host: Callable[[], RecordedHost]
    exporter: Callable[..., core.TomExporter]
    state: str = ""
    commands: tuple[tuple[str, ...], ...] = ()
    without_role: Callable[[], RecordedHost] = RecordedHost
    required: str = ""
    state_errors: dict = field(default_factory=dict)
    unquoted: tuple[str, ...] = ()
    file_errors: dict = field(default_factory=dict)
    command_errors: dict = field(default_factory=dict)

    @property
    def all_toms(self) -> list[str]:
        return [*ALL_TOMS, *(t for t in self.toms if t not in ALL_TOMS)]

    def figures(self, s: Scrape) -> dict:
        return {key: value for key, value in s.samples.items() if key[0].startswith(self.prefixes)}

    def verdicts(self, failing: Iterable[str] = ()) -> dict[str, int]:
        """tomwerk_tom_compliant of every TOM when the failing ones fail."""
        return {tom: 0 if tom in failing else 1 for tom in self.all_toms}

    def scrape(self, host: core.Host | None = None, **kwargs) -> Scrape:
        return scrape(self.exporter(host or self.host(), **kwargs))

    def assert_compliant(self) -> Scrape:
        host = self.host()
        s = self.scrape(host)
        assert s.toms() == self.verdicts()
        assert s.errors() == no_errors()
        assert s.value("tomwerk_collector_active", collector=self.name) == 1
        assert self.figures(s) == self.compliant
        assert host.calls == {SSHD_T: 1, NFT_LIST: 1, **dict.fromkeys(self.commands, 1)}
        return s

    def assert_drift(self, drift, failing: Iterable[str], changed: dict) -> Scrape:
        """drift flips exactly the failing TOMs and the changed figures (None: the series disappears)."""
        host = self.host()
        drift(host)
        s = self.scrape(host)
        assert s.toms() == self.verdicts(failing)
        assert s.errors() == no_errors()  # findings, not failed checks
        expected = {k: v for k, v in {**self.compliant, **changed}.items() if v is not None}
        assert self.figures(s) == expected
        assert convention_violations(s) == []
        assert personal_label_values(s) == []
        return s

    def assert_inactive(self) -> Scrape:
        """On a host without the role: inactive, no TOM, no figure and no command of its own."""
        host = self.without_role()
        s = self.scrape(host)
        assert s.value("tomwerk_collector_active", collector=self.name) == 0
        assert set(s.toms()) == set(ALL_TOMS)
        assert self.figures(s) == {}
        assert [host.calls[argv] for argv in self.commands] == [0] * len(self.commands)
        return s

    def assert_conventions(self) -> None:
        s = self.scrape()
        assert convention_violations(s) == []
        assert_names_in_source(s)
        assert all(f.type == "gauge" for f in s.families if f.name.startswith(self.prefixes))

    def failed_check(self, host: core.Host, caplog, level: int = logging.ERROR) -> Scrape:
        """A scrape of host on which the check fails: all of the collector's TOMs fail, no other."""
        with caplog.at_level(level, logger=LOGGER):
            s = self.scrape(host)
        assert s.toms() == self.verdicts(self.toms)
        assert s.errors() == {**no_errors(), self.name: 1}
        return s

    def assert_check_error_logged(self, host: core.Host, caplog, reason: str) -> Scrape:
        """The check fails with one error line that gives reason; none of the collector's figures is exported."""
        s = self.failed_check(host, caplog, logging.INFO)
        assert the_error_logged(caplog, reason).startswith(f"{self.name}: check failed")
        assert self.figures(s) == {}
        return s

    def assert_missing_variable_fails(self, variable: str, caplog) -> None:
        host = self.host()
        data = json.loads(host.files[self.state])
        del data["vars"][variable]
        host.files[self.state] = json.dumps(data)
        self.failed_check(host, caplog)
        assert f"vars.{variable} is missing" in caplog.text

    def assert_state_error(self, changes: dict, reason: str, caplog) -> None:
        """A state file with changes to its vars fails the check before any command runs, quoting none of unquoted."""
        host = self.host()
        host.files[self.state] = edit_json(host.files[self.state], changes, "vars")
        self.failed_check(host, caplog)
        assert reason in caplog.text
        assert [p for p in self.unquoted if p in caplog.text] == []
        assert [host.calls[argv] for argv in self.commands] == [0] * len(self.commands)

    def assert_file_error(self, path: str, content: object, reason: str, caplog) -> None:
        host = self.host()
        host.files[path] = content
        self.assert_check_error_logged(host, caplog, reason)

    def assert_command_error(self, output: object, reason: str, caplog) -> None:
        host = self.host()
        host.outputs[self.commands[0]] = output
        self.assert_check_error_logged(host, caplog, reason)

    def findings_logged(self, caplog, drift, repair) -> list[str]:
        return findings_logged(caplog, self.host(), self.exporter, drift, repair)

    def scrapes(self, drifts: Iterable[Callable]) -> Iterator[Scrape]:
        """A scrape of the recorded host after each drift."""
        for drift in drifts:
            host = self.host()
            drift(host)
            yield self.scrape(host)
