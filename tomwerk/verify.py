"""`tomwerk verify`: run the compliance checks and keep a machine-readable result.

The Testinfra suite (tests/compliance) runs through ansible-runner, pytest's
lines stream to the terminal as they come, and every run gets its own
directory so a scheduled job keeps the history:

    OUT/20261121T153000Z/junit.xml    what pytest wrote (one test case per check and host)
    OUT/20261121T153000Z/pytest.log   the streamed output
    OUT/20261121T153000Z/result.json  the result below
    OUT/20261121T153000Z/summary.txt  the closing lines: per host and in all, passed/failed/errors/skipped
    OUT/latest -> 20261121T153000Z    the newest complete run

result.json, schema "tomwerk-verify/1" (a new field may be added within a
version; a renamed or removed one bumps it):

    {
      "schema": "tomwerk-verify/1",
      "started": "2026-11-21T15:30:00Z",           # UTC, ISO 8601
      "finished": "2026-11-21T15:31:12Z",
      "inventory": "/abs/path/inventories/lab",
      "hosts_filter": ["web1", "mail1"] | null,     # --hosts
      "suite": "/abs/path/tests/compliance",       # the first suite (kept for readers of 1.0)
      "suites": ["/abs/path/tests/compliance", ...],  # every suite of the run (--suite, repeatable)
      "pytest_exit_code": 0 | 1,
      "tomwerk": {"version": "0.1.0" | null, "commit": "0f20b30" | null, "dirty": bool | null},
      "hosts": {                                    # every inventory host (after --hosts)
        "web1": {
          "roles": ["internal_pki", ...],           # Inventory.roles_by_host (site.yml order)
          "release": "Debian 13.8 (trixie)",        # as a check observed it (evidence "debian release");
                                                    # absent when no check did
          "toms": {                                 # catalogue order; only TOMs with checks in this run
            "TOM-SSH-01": {
              "status": "pass" | "fail" | "skipped",
              "checks": [{
                "id": "tests/compliance/test_ssh_access.py::test_sshd_allows_keys_only[web1]",
                "check": "sshd -T: public keys are the only way in; ...",  # docstring, first paragraph
                "outcome": "pass" | "fail" | "error" | "skipped",
                "message": "AssertionError: ...",   # failure/error/skip message, trimmed; "" on pass
                "observed": {"sshd -T": {...}},     # evidence(...) values; JSON is decoded again
                "duration_seconds": 0.12,           # setup + call + teardown
                "timestamp": "2026-11-21T15:30:02Z" # when the check started
              }]
            }
          }
        }
      },
      "unassigned_checks": [<check>, ...],         # checks without a TOM marker (should stay empty)
      "organisational": {                           # one entry per organisational TOM, keyed by evidence.where
        "tomwerk_org_reviews": [...] | null,        # record "inventory": the templated 'all' variable, null if unset
        "/var/lib/tomwerk/access-journal.jsonl": {...} | null  # record "journal": its status (counts only,
                                                    # no persons) when the journal is readable where verify
                                                    # runs (the admin host), else null
      },
      "summary": {
        "hosts": 8,
        "checks": {"pass": n, "fail": n, "error": n, "skipped": n},
        "toms": {"pass": n, "fail": n, "skipped": n},      # per TOM id over all hosts
        "tom_hosts": {"pass": n, "fail": n, "skipped": n}  # per (TOM, host) pair
      }
    }

Status rules. A TOM on a host fails when any of its checks failed or errored
(an error means the measure is not proven), passes when none did and at least
one passed (a skipped check is listed in the report but does not fail the
TOM), and is skipped when all its checks were skipped. Over all hosts
(summary.toms) a TOM fails when it fails on any host, passes when it passes on
every host it was checked on, and is skipped otherwise.

Timestamps. This module is also a tiny pytest plugin (`-p tomwerk.verify`):
it records each check's start time and node id as JUnit properties
("started", "nodeid"). A JUnit file without them (e.g. from `make verify`)
still parses: the start is then the suite's timestamp plus the durations of
the checks before it, which ignores collection time.

Exit codes: 0 every check passed (skips allowed), 1 some check failed or
errored, 2 the run itself went wrong (a missing, unparsable or empty
inventory, collection error, interruption, no check ran). Only runs with exit 0 or 1 get a result.json
and move `latest`. The first Ctrl-C is passed on to pytest as SIGINT, so
checks still clean up on the hosts (test users, canary services); a second
one kills it.

ansible-runner runs pytest with the caller's environment: the settings it
adds for its own Ansible runs (its stdout callback, host key checking off)
are not passed on to the Ansible the checks use.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tomwerk import ROOT, catalogue

SCHEMA = "tomwerk-verify/1"
DEFAULT_SUITE = ROOT / "tests" / "compliance"
OUTCOMES = ("pass", "fail", "error", "skipped")
TOM_STATUSES = ("pass", "fail", "skipped")
MESSAGE_LIMIT = 400
FAILED_LISTED = 30  # failed checks named in the closing lines (CI shows only the log's tail)
# pytest's exit codes that mean "the checks ran": all passed, some failed.
PYTEST_RAN = {0, 1}
NO_TESTS = 5
PYTEST_PHASE_OK = {0, 1, NO_TESTS}  # with --jobs, a part may have nothing to run
PIDFILE_ENV = "TOMWERK_VERIFY_PIDFILE"
PHASES = ("hosts", "rest")
# pytest -v result lines: "<node id> PASSED  ...  [ 12%]".
RESULT_LINE = re.compile(r"^\S+::\S+ (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b")
PARAMS = re.compile(r"\[([^\[\]]+)\]$")


# ----------------------------------------------------------------- pytest plugin (-p tomwerk.verify)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # tryfirst: the time is taken before fixtures set up (the first check on a host connects).
    item.user_properties.append(("started", utc_iso(now_utc())))
    item.user_properties.append(("nodeid", item.nodeid))


def pytest_addoption(parser):
    parser.addoption(
        "--tomwerk-phase",
        choices=PHASES,
        help="only the checks of one phase: 'hosts' (each check on one host; hosts may be checked in "
        "parallel) or 'rest' (checks across hosts, and those marked serial)",
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "serial: a check that disturbs or watches other hosts; runs alone")
    # The parent interrupts pytest with SIGINT (teardowns run) instead of killing it.
    pidfile = os.environ.get(PIDFILE_ENV)
    if pidfile:
        Path(pidfile).write_text(str(os.getpid()), encoding="utf-8")


def item_host(item) -> str | None:
    """The host a collected check runs on; None for checks across hosts."""
    params = getattr(item, "callspec", None) and item.callspec.params
    if not params or "hostname" not in params or _no_host(item):
        return None
    return str(params["hostname"])


def _no_host(item) -> bool:
    """A per-host check whose group has no host in this run: pytest's "empty parameter set" stand-in
    (skipped). With --jobs, a job's share often lacks a group: such items belong to the rest phase,
    which runs on every host and so skips them only where the inventory really lacks the group."""
    from _pytest.compat import NOTSET

    params = getattr(item, "callspec", None) and item.callspec.params
    return bool(params) and params.get("hostname", None) is NOTSET


def pytest_collection_modifyitems(config, items):
    phase = config.getoption("tomwerk_phase", None)
    if not phase:
        return
    keep, drop = [], []
    for item in items:
        per_host = item_host(item) is not None and item.get_closest_marker("serial") is None
        (keep if per_host == (phase == "hosts") else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep


# ----------------------------------------------------------------- time


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def utc_iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    # pytest writes local time; a naive value is taken as local too.
    return (moment if moment.tzinfo else moment.astimezone()).astimezone(dt.UTC)


# ----------------------------------------------------------------- JUnit -> checks


def parse_junit(path: Path) -> list[dict]:
    """One dict per check (test case) of a pytest JUnit file, in run order.

    Keys: id, toms, host, check, outcome, message, observed, duration_seconds,
    timestamp. A test case pytest split in two (a failed call and an erroring
    teardown) is merged back into one check.
    """
    root = ET.parse(path).getroot()  # noqa: S314 - our own pytest's output, not untrusted input
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    checks: dict[str, dict] = {}
    for suite in suites:
        suite_start = parse_time(suite.get("timestamp"))
        elapsed = 0.0
        for case in suite.iter("testcase"):
            check = _check_from_case(case, suite_start, elapsed)
            elapsed += check["duration_seconds"]
            previous = checks.get(check["id"])
            checks[check["id"]] = _merge(previous, check) if previous else check
    return list(checks.values())


def _check_from_case(case: ET.Element, suite_start: dt.datetime | None, elapsed: float) -> dict:
    props: list[tuple[str, str]] = [
        (p.get("name", ""), p.get("value", "")) for p in case.iterfind("properties/property")
    ]
    named = dict(props)
    name = case.get("name", "")
    node_id = named.get("nodeid") or _node_id(case)
    outcome, message = "pass", ""
    for tag, value in (("failure", "fail"), ("error", "error"), ("skipped", "skipped")):
        element = case.find(tag)
        if element is not None:
            outcome, message = value, element.get("message") or (element.text or "")
            break
    started = parse_time(named.get("started"))
    if started is None and suite_start is not None:
        started = suite_start + dt.timedelta(seconds=elapsed)
    params = PARAMS.search(name)
    return {
        "id": node_id,
        "toms": [value for key, value in props if key == "tom"],
        # The plugin records the host of every check that has one; a bracketed
        # parameter names a host only in JUnit files written without the plugin.
        "host": named.get("host") or (params.group(1) if params and "nodeid" not in named else None),
        "check": named.get("check") or PARAMS.sub("", name),
        "outcome": outcome,
        "message": trim_message(message),
        "observed": {
            key.removeprefix("observed:"): decode(value) for key, value in props if key.startswith("observed:")
        },
        "duration_seconds": round(float(case.get("time") or 0.0), 3),
        "timestamp": utc_iso(started) if started else None,
    }


def _node_id(case: ET.Element) -> str:
    """path::[Class::]name from a test case without the plugin's nodeid property."""
    classname, name, file = case.get("classname", ""), case.get("name", ""), case.get("file")
    if file:
        module = file.removesuffix(".py").replace("/", ".")
        inner = classname[len(module) + 1 :].split(".") if classname.startswith(module + ".") else []
        return "::".join([file, *inner, name])
    return classname.replace(".", "/") + ".py::" + name


def _merge(first: dict, second: dict) -> dict:
    merged = dict(first)
    merged["outcome"] = worst_outcome([first["outcome"], second["outcome"]])
    merged["message"] = trim_message(" / ".join(m for m in (first["message"], second["message"]) if m))
    merged["observed"] = {**first["observed"], **second["observed"]}
    merged["duration_seconds"] = round(first["duration_seconds"] + second["duration_seconds"], 3)
    return merged


def worst_outcome(outcomes: Iterable[str]) -> str:
    found = set(outcomes)
    for outcome in ("fail", "error", "pass", "skipped"):
        if outcome in found:
            return outcome
    return "skipped"


def trim_message(text: str) -> str:
    """One readable line: blank lines and indentation go, long messages are cut."""
    text = " ".join(line.strip() for line in text.splitlines() if line.strip())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1].rstrip() + "…"


def decode(value: str):
    # The evidence fixture JSON-encodes everything that is not a string.
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            pass
    return value


# ----------------------------------------------------------------- aggregation


def tom_status(outcomes: Iterable[str]) -> str:
    found = set(outcomes)
    if found & {"fail", "error"}:
        return "fail"
    return "pass" if "pass" in found else "skipped"


def tom_status_over_hosts(statuses: Iterable[str]) -> str:
    found = set(statuses)
    if "fail" in found:
        return "fail"
    return "pass" if found == {"pass"} else "skipped"


# The evidence key under which a check records the host's operating system release.
RELEASE_EVIDENCE = "debian release"


def aggregate(
    checks: list[dict], roles_by_host: Mapping[str, list[str]], tom_order: Iterable[str] = ()
) -> tuple[dict, list[dict]]:
    """(hosts section, unassigned checks) of result.json from parsed checks."""
    hosts: dict[str, dict] = {name: {"roles": list(roles), "toms": {}} for name, roles in roles_by_host.items()}
    unassigned = []
    for check in checks:
        entry = {
            k: check[k] for k in ("id", "check", "outcome", "message", "observed", "duration_seconds", "timestamp")
        }
        if not check["toms"]:
            unassigned.append({"host": check["host"], **entry})
            continue
        host = hosts.setdefault(check["host"] or "", {"roles": [], "toms": {}})
        release = (check.get("observed") or {}).get(RELEASE_EVIDENCE)
        if isinstance(release, str) and release:
            host["release"] = release
        for tom in check["toms"]:
            host["toms"].setdefault(tom, {"status": None, "checks": []})["checks"].append(entry)
    rank = {tom: i for i, tom in enumerate(tom_order)}
    for host in hosts.values():
        ordered = sorted(host["toms"].items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))
        host["toms"] = {
            tom: {**data, "status": tom_status(c["outcome"] for c in data["checks"])} for tom, data in ordered
        }
    return hosts, unassigned


def summarise(hosts: Mapping[str, dict], unassigned: Iterable[dict] = ()) -> dict:
    # By id: a check that proves two TOMs is still one check.
    outcomes = {c["id"]: c["outcome"] for c in unassigned}
    pairs = Counter(dict.fromkeys(TOM_STATUSES, 0))
    per_tom: dict[str, list[str]] = {}
    for host in hosts.values():
        for tom, data in host["toms"].items():
            pairs[data["status"]] += 1
            per_tom.setdefault(tom, []).append(data["status"])
            outcomes.update((c["id"], c["outcome"]) for c in data["checks"])
    checks = Counter(dict.fromkeys(OUTCOMES, 0))
    checks.update(outcomes.values())
    toms = Counter(dict.fromkeys(TOM_STATUSES, 0))
    toms.update(tom_status_over_hosts(statuses) for statuses in per_tom.values())
    return {"hosts": len(hosts), "checks": dict(checks), "toms": dict(toms), "tom_hosts": dict(pairs)}


# ----------------------------------------------------------------- organisational evidence


def plain(value):
    """JSON-ready copy of an Ansible value (tagged strings, dates, tuples)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(v) for v in value]
    return str(value)


def journal_evidence(path: str) -> dict | None:
    """The access journal's state for the report: counts and integrity, no names or purposes.

    The journal lives on the admin host, where the scheduled run reads it; a run
    elsewhere (a laptop, CI) has no journal and records None.
    """
    from tomwerk_host import access_journal

    if not os.path.exists(path):
        return None
    state = access_journal.status(path)
    return {
        "intact": state["intact"],
        "problem": state["problem"],
        "entries": state["entries"],
        "accesses": state["accesses"],
        "notification_open": state["open"],
        "notification_overdue": state["overdue"],
        "notify_within_hours": state["notify_within_hours"],
    }


def organisational_evidence(inventory, toms: Mapping, warn: Callable[[str], None] = print) -> dict:
    """For each organisational TOM, keyed by evidence.where: the recorded value or None.

    An inventory whose records are invented (the lab's) says so with
    tomwerk_org_records_are_examples: true; the flag is kept under its own name,
    only when set, and the report marks those records as examples.
    """
    hosts = inventory.hosts()
    any_host = hosts[0] if hosts else None
    found: dict[str, object] = {}
    for tom in toms.values():
        if tom.technical or not tom.evidence:
            continue
        where = tom.evidence["where"]
        found[where] = None
        if tom.evidence.get("record") == "journal":
            found[where] = journal_evidence(where)
            continue
        if tom.evidence.get("record") != "inventory" or any_host is None:
            continue
        if where not in inventory.raw_vars(any_host):
            continue
        try:
            found[where] = plain(inventory.var(any_host, where))
        except Exception as exc:  # any templating error: say so, record nothing
            warn(f"tomwerk verify: {tom.id}: cannot template {where}: {exc}")
    examples = "tomwerk_org_records_are_examples"  # tomwerk/report.py: EXAMPLES_FLAG
    if any_host is not None and examples in inventory.raw_vars(any_host):
        found[examples] = inventory.var(any_host, examples) is True
    return found


# ----------------------------------------------------------------- version


def tomwerk_version() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("tomwerk")
    except PackageNotFoundError:
        installed = None
    commit = dirty = None
    if (ROOT / ".git").exists() and shutil.which("git"):
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        if head.returncode == 0:
            commit = head.stdout.strip()
            status = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True)
            dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return {"version": installed, "commit": commit, "dirty": dirty}


# ----------------------------------------------------------------- the run


@dataclass
class VerifyRun:
    exit_code: int
    run_dir: Path | None = None
    result: dict | None = None


def echo(line: str) -> None:
    print(line, flush=True)


def progress_line(raw: str) -> str:
    """A pytest output line as shown on the terminal: last carriage-return segment, no padding."""
    line = raw.rsplit("\r", 1)[-1].rstrip()
    return " ".join(line.split()) if RESULT_LINE.match(line) else line


def verify(
    inventory: str | Path,
    *,
    hosts: list[str] | None = None,
    out: str | Path = "results",
    suite: str | Path | Iterable[str | Path] = DEFAULT_SUITE,
    pytest_args: Iterable[str] = (),
    on_line: Callable[[str], None] = echo,
    jobs: int = 1,
) -> VerifyRun:
    """Run the suites against the inventory; write the run directory. See the module docstring."""
    from tomwerk.inventory import Inventory, InventoryError  # Ansible: loaded only when a run starts

    started = now_utc()
    inventory_path = Path(inventory).resolve()
    suite_paths = [Path(s).resolve() for s in ([suite] if isinstance(suite, str | Path) else suite)]
    for suite_path in suite_paths:
        if not suite_path.exists():
            on_line(f"tomwerk verify: no check suite at {suite_path}")
            return VerifyRun(2)
    try:
        inv = Inventory(inventory_path)
        roles_by_host = inv.roles_by_host
        toms = catalogue.load()
    except InventoryError as exc:
        on_line(f"tomwerk verify: {exc}")
        return VerifyRun(2)
    except Exception as exc:  # Ansible raises many kinds; all mean "cannot start"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        on_line(f"tomwerk verify: cannot read the inventory or catalogue: {first}")
        return VerifyRun(2)
    if hosts:
        unknown = [h for h in hosts if h not in roles_by_host]
        if unknown:
            on_line(f"tomwerk verify: not in the inventory: {', '.join(unknown)} (it has: {', '.join(roles_by_host)})")
            return VerifyRun(2)
        roles_by_host = {h: roles for h, roles in roles_by_host.items() if h in hosts}

    run_dir = _new_run_dir(Path(out).resolve(), started)
    junit = run_dir / "junit.xml"
    host_filter = ["--hosts", ",".join(hosts)] if hosts else []
    base = [
        "-m", "pytest", *map(str, suite_paths),
        "--inventory", str(inventory_path),
        "-o", "junit_family=xunit1",  # xunit2 warns on every record_property
        "-p", "tomwerk.verify",
        "-p", "no:cacheprovider",
        "-v", "--tb=short",
        *pytest_args,
    ]  # fmt: skip
    host_names = list(roles_by_host)
    if jobs > 1 and len(host_names) > 1:
        # Each host's checks run in order in one pytest; up to `jobs` of them at a
        # time, each with its share of the hosts. Then what spans hosts or
        # disturbs others runs alone. Their JUnit files are merged below.
        shares = [host_names[i::jobs] for i in range(min(jobs, len(host_names)))]
        parallel = [
            [*base, "--tomwerk-phase", "hosts", "--hosts", ",".join(share),
             "--junitxml", str(run_dir / f"junit-hosts-{n}.xml")]
            for n, share in enumerate(shares, 1)
        ]  # fmt: skip
        rest = [*base, *host_filter, "--tomwerk-phase", "rest", "--junitxml", str(run_dir / "junit-rest.xml")]
    else:
        shares, parallel, rest = [], [], [*base, *host_filter, "--junitxml", str(junit)]
    on_line(f"tomwerk verify: {len(roles_by_host)} host(s), {max(len(parallel), 1)} at a time, results in {run_dir}")
    with open(run_dir / "pytest.log", "w", encoding="utf-8") as log:
        lock = threading.Lock()

        def shower(prefix: str) -> Callable[[str], None]:
            def show(raw: str) -> None:
                with lock:
                    log.write(prefix + raw.rstrip("\r\n") + "\n")
                    log.flush()
                    on_line(prefix + progress_line(raw))

            return show

        # In the repo: its pytest settings apply and node ids are relative to it.
        cwd = ROOT if all(p.is_relative_to(ROOT) for p in suite_paths) else suite_paths[0].parent
        with _interruptible() as ctrl_c:
            codes = _run_parallel(
                [(args, shower(f"[{','.join(share)}] ")) for args, share in zip(parallel, shares, strict=True)],
                cwd,
                ctrl_c,
            )
            if all(c in PYTEST_PHASE_OK for c in codes):
                codes.append(_run_pytest(rest, cwd, shower(""), ctrl_c))
    if parallel and all(c in PYTEST_PHASE_OK for c in codes):
        _merge_junit([*sorted(run_dir.glob("junit-hosts-*.xml")), run_dir / "junit-rest.xml"], junit)
    # A phase that had nothing to run (5) is fine as long as another ran checks.
    ran = [c for c in codes if c != NO_TESTS] or [NO_TESTS]
    rc = next((c for c in codes if c not in PYTEST_PHASE_OK), max(ran))
    finished = now_utc()

    if rc not in PYTEST_RAN or not junit.exists():
        reason = {2: "interrupted or collection error", 3: "pytest internal error", 4: "usage error",
                  5: "no checks collected"}.get(rc, f"exit code {rc}")  # fmt: skip
        on_line(f"tomwerk verify: the run did not complete ({reason}); see {run_dir / 'pytest.log'}")
        return VerifyRun(2, run_dir)

    result = build_result(
        junit,
        inv,
        toms,
        roles_by_host,
        started=started,
        finished=finished,
        hosts_filter=hosts,
        suite=suite_paths,
        pytest_exit_code=rc,
        warn=on_line,
    )
    counts = result["summary"]["checks"]
    if not sum(counts.values()):
        # Nothing was proven (e.g. --collect-only): that must not become "latest".
        on_line(f"tomwerk verify: no check ran; see {run_dir / 'pytest.log'}")
        return VerifyRun(2, run_dir)
    (run_dir / "result.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    _point_latest(run_dir)
    failed = counts["fail"] + counts["error"]
    lines = summary_lines(result)
    (run_dir / "summary.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for line in lines:
        on_line(line)
    on_line(f"tomwerk verify: {run_dir / 'result.json'}")
    return VerifyRun(1 if failed or rc == 1 else 0, run_dir, result)


def build_result(
    junit: Path,
    inventory,
    toms: Mapping,
    roles_by_host: Mapping[str, list[str]],
    *,
    started: dt.datetime,
    finished: dt.datetime,
    hosts_filter: list[str] | None = None,
    suite: Path | Iterable[Path] = DEFAULT_SUITE,
    pytest_exit_code: int = 0,
    warn: Callable[[str], None] = echo,
) -> dict:
    """result.json's content from a JUnit file and the inventory it ran against."""
    host_results, unassigned = aggregate(parse_junit(junit), roles_by_host, toms)
    suites = [str(suite)] if isinstance(suite, str | Path) else [str(s) for s in suite]
    return {
        "schema": SCHEMA,
        "started": utc_iso(started),
        "finished": utc_iso(finished),
        "inventory": inventory.source,
        "hosts_filter": list(hosts_filter) if hosts_filter else None,
        "suite": suites[0],
        "suites": suites,
        "pytest_exit_code": pytest_exit_code,
        "tomwerk": tomwerk_version(),
        "hosts": host_results,
        "unassigned_checks": unassigned,
        "organisational": organisational_evidence(inventory, toms, warn=warn),
        "summary": summarise(host_results, unassigned),
    }


def _counts(outcomes: Iterable[str]) -> str:
    found = Counter(outcomes)
    return f"{found['pass']} passed, {found['fail']} failed, {found['error']} errors, {found['skipped']} skipped"


def summary_lines(result: Mapping) -> list[str]:
    """The run's closing lines: one per host, then the total (what the demo and CI both end with)."""
    lines = []
    per_host: dict[str, dict[str, str]] = {}
    for name, host in result["hosts"].items():
        outcomes = per_host.setdefault(name, {})
        outcomes.update((c["id"], c["outcome"]) for data in host["toms"].values() for c in data["checks"])
    for check in result.get("unassigned_checks", []):  # e.g. the lab's safety tests
        per_host.setdefault(check.get("host") or "", {})[check["id"]] = check["outcome"]
    # Checks that span hosts (the lab's end-to-end tests) carry no host name.
    names = {name: name or "across hosts" for name in per_host}
    width = max(map(len, names.values()), default=0)
    for name, outcomes in per_host.items():
        lines.append(f"tomwerk verify:   {names[name]:<{width}}  {_counts(outcomes.values())}")
    failed = [
        (tom, c) for host in result["hosts"].values() for tom, data in host["toms"].items() for c in data["checks"]
    ]
    seen: set[str] = set()
    for tom, check in failed:
        if check["outcome"] in ("fail", "error") and check["id"] not in seen and len(seen) < FAILED_LISTED:
            seen.add(check["id"])
            lines.append(f"tomwerk verify:   {check['outcome'].upper()} {tom} {check['id']}: {check['message'][:200]}")
    total = result["summary"]["checks"]
    lines.append(f"tomwerk verify: {_counts(Counter(total).elements())} (all hosts)")
    return lines


def _merge_junit(parts: list[Path], target: Path) -> None:
    """One JUnit file with the test suites of every part that was written."""
    merged = ET.Element("testsuites")
    for part in parts:
        if part.exists():
            root = ET.parse(part).getroot()  # noqa: S314 - our own pytest's output
            merged.extend([root] if root.tag == "testsuite" else list(root))
    ET.ElementTree(merged).write(target, encoding="utf-8", xml_declaration=True)


def _new_run_dir(out: Path, started: dt.datetime) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    for suffix in ["", *(f"-{n}" for n in range(2, 100))]:
        try:
            (out / (stamp + suffix)).mkdir()
            return out / (stamp + suffix)
        except FileExistsError:
            continue
    raise FileExistsError(f"too many runs in {out} within one second")


def _point_latest(run_dir: Path) -> None:
    # Relative link, swapped atomically: a reader never sees it missing.
    latest = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name, target_is_directory=True)
    os.replace(tmp, latest)


@contextlib.contextmanager
def _interruptible():
    """Collect Ctrl-C presses for the runs started inside (one entry per press)."""
    ctrl_c: list[bool] = []
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, lambda *_: ctrl_c.append(True))
    try:
        yield ctrl_c
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _run_parallel(runs: list[tuple[list[str], Callable[[str], None]]], cwd: Path, ctrl_c: list[bool]) -> list[int]:
    """Several pytest runs at once, each in a thread of its own; their exit codes in order."""
    codes = [2] * len(runs)
    # Imported here, once: ansible_runner's first import is not thread-safe. Four threads importing
    # it at once left `ansible_runner.plugins` bound to its subpackage instead of the plugin dict,
    # and three of four runs died with "'module' object is not iterable" (seen in the upgrade test).
    import ansible_runner.interface  # noqa: F401

    def one(index: int, args: list[str], show: Callable[[str], None]) -> None:
        codes[index] = _run_pytest(args, cwd, show, ctrl_c)

    threads = [threading.Thread(target=one, args=(i, *run), daemon=True) for i, run in enumerate(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():  # short joins: the main thread stays free for Ctrl-C
            thread.join(0.2)
    return codes


def _run_pytest(args: list[str], cwd: Path, show: Callable[[str], None], ctrl_c: list[bool]) -> int:
    """pytest in the venv's python through ansible-runner; pytest's exit code."""
    from ansible_runner.interface import init_command_config

    with tempfile.TemporaryDirectory(prefix="tomwerk-runner-") as private:
        pidfile = Path(private) / "pytest.pid"
        # The runner's own Ansible settings (awx_display callback, host key
        # checking off, ...) must not leak into the Ansible the checks use:
        # the suite runs with the caller's environment, as on the command line.
        env = {**os.environ, "PY_COLORS": "0", "COLUMNS": "160", PIDFILE_ENV: str(pidfile)}
        forwarded: list[bool] = []

        def on_event(event: dict) -> bool:
            if event.get("event") == "verbose" and "stdout" in event:
                show(event["stdout"])
            return False  # no job_events files: the lines are kept in pytest.log

        def cancel() -> bool:
            # First Ctrl-C: pytest gets SIGINT, stops and still runs its teardowns
            # (test users, canary services). A second one kills it.
            if ctrl_c and not forwarded and pidfile.exists():
                forwarded.append(True)
                os.kill(int(pidfile.read_text()), signal.SIGINT)
            return len(ctrl_c) > 1

        if ctrl_c:  # interrupted before this run started
            return 2
        runner = init_command_config(
            sys.executable,
            args,
            private_data_dir=private,  # holds the runner's copy of the env: never kept
            host_cwd=str(cwd),
            quiet=True,
            event_handler=on_event,
            cancel_callback=cancel,
            settings={"pexpect_timeout": 1},
        )
        runner.config.env = {k: str(v) for k, v in env.items()}
        runner.run()
        # An interrupted run is incomplete, whatever pytest says.
        return 2 if ctrl_c and runner.rc in PYTEST_RAN else runner.rc
