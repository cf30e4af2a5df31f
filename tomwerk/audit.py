"""`tomwerk audit`: what a converge would change, without changing anything.

Runs playbooks/site.yml in Ansible's check mode with diffs (`--check
--diff`) through ansible-runner, and reads its events: every task that
would change a host, and every task that fails, with the role it belongs
to and the TOMs that role serves (toms.yml). This is how admins look for
drift before they dare to converge production, and it is what CI runs on the
converged lab: there it must report nothing.

Each run leaves OUT/<UTC time>-audit/ with the full Ansible output
(audit.log) and audit.json, schema "tomwerk-audit/1":

    {
      "schema": "tomwerk-audit/1",
      "started": "...Z", "finished": "...Z",
      "inventory": "/abs/inventory", "playbook": "/abs/playbooks/site.yml",
      "limit": "web1" | null, "tags": "..." | null,
      "hosts": {"web1": {"ok": 210, "changed": 1, "failed": 0, "unreachable": 0, "skipped": 40}},
      "changes": [{"host": "web1", "role": "ssh_access", "task": "ssh_access : Configure sshd",
                   "toms": ["TOM-SSH-01", ...], "diff": "--- before ...\n+++ after ..."}],
      "failures": [{"host": ..., "role": ..., "task": ..., "toms": [...], "message": "..."}],
      "toms": {"TOM-SSH-01": ["web1"]}          # the TOMs that would change, and where
    }

Exit codes: 0 nothing would change, 1 drift (some task would change a host),
2 the audit itself failed (a task failed, a host was unreachable, bad input).
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import shlex
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tomwerk import ROOT, catalogue, collections_path

SCHEMA = "tomwerk-audit/1"
SITE = ROOT / "playbooks" / "site.yml"
DIFF_LIMIT = 4000
STAT_KEYS = {"ok": "ok", "changed": "changed", "failures": "failed", "dark": "unreachable", "skipped": "skipped"}


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def utc_iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def toms_by_role(toms: Mapping[str, catalogue.Tom]) -> dict[str, list[str]]:
    """Role name -> the TOM ids it serves (catalogue order)."""
    found: dict[str, list[str]] = {}
    for tom in toms.values():
        for role in tom.roles:
            found.setdefault(role, []).append(tom.id)
    return found


def diff_text(diff) -> str:
    """Ansible's diff result (a dict, or a list of them) as unified-diff-like text."""
    parts = []
    for one in diff if isinstance(diff, list) else [diff]:
        if not isinstance(one, Mapping):
            continue
        if "prepared" in one:
            parts.append(str(one["prepared"]))
            continue
        before, after = one.get("before", ""), one.get("after", "")
        if isinstance(before, Mapping) or isinstance(after, Mapping):
            before, after = json.dumps(before, sort_keys=True), json.dumps(after, sort_keys=True)
        if before == after:
            continue
        parts.append(
            "".join(
                difflib.unified_diff(
                    str(before).splitlines(keepends=True),
                    str(after).splitlines(keepends=True),
                    fromfile=f"before: {one.get('before_header', '')}",
                    tofile=f"after: {one.get('after_header', '')}",
                )
            )
        )
    text = "\n".join(p for p in parts if p)
    return text if len(text) <= DIFF_LIMIT else text[:DIFF_LIMIT] + "\n[... cut]"


@dataclass
class Collector:
    """Turns ansible-runner events into the audit's findings."""

    role_toms: Mapping[str, list[str]]
    changes: list[dict] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)
    stats: dict[str, dict[str, int]] = field(default_factory=dict)

    def _where(self, data: Mapping) -> dict:
        role = data.get("role") or ""
        task = data.get("task") or ""
        return {
            "host": data.get("host") or data.get("remote_addr") or "",
            "role": role,
            "task": f"{role} : {task}" if role else task,
            "toms": list(self.role_toms.get(role, [])),
        }

    def feed(self, event: Mapping) -> str | None:
        """Take one event; return a line worth showing at once, if any."""
        kind = event.get("event")
        data = event.get("event_data") or {}
        if kind == "runner_on_ok":
            res = data.get("res") or {}
            if res.get("changed"):
                found = {**self._where(data), "diff": diff_text(res.get("diff", []))}
                self.changes.append(found)
                return f"would change: {found['host']}  {found['task']}  ({', '.join(found['toms']) or 'no TOM'})"
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            res = data.get("res") or {}
            found = {**self._where(data), "message": str(res.get("msg") or res.get("stderr") or "")[:DIFF_LIMIT]}
            self.failures.append(found)
            first = (found["message"].splitlines() or [""])[0]
            return f"FAILED: {found['host']}  {found['task']}: {first}"
        elif kind == "runner_on_unreachable":
            res = data.get("res") or {}
            found = {**self._where(data), "message": str(res.get("msg") or "unreachable")}
            self.failures.append(found)
            return f"UNREACHABLE: {found['host']}: {found['message']}"
        elif kind == "playbook_on_stats":
            for key, name in STAT_KEYS.items():
                for host, count in (data.get(key) or {}).items():
                    self.stats.setdefault(host, dict.fromkeys(STAT_KEYS.values(), 0))[name] = int(count)
        return None

    def toms(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for change in self.changes:
            for tom in change["toms"] or ["(no TOM)"]:
                hosts = found.setdefault(tom, [])
                if change["host"] not in hosts:
                    hosts.append(change["host"])
        return found


@dataclass
class AuditRun:
    exit_code: int
    run_dir: Path | None = None
    result: dict | None = None


def summary_lines(result: Mapping) -> list[str]:
    lines = []
    width = max(map(len, result["hosts"]), default=0)
    for host, counts in result["hosts"].items():
        lines.append(
            f"tomwerk audit:   {host:<{width}}  changed={counts['changed']} failed={counts['failed']} "
            f"unreachable={counts['unreachable']} ok={counts['ok']}"
        )
    for tom, hosts in result["toms"].items():
        lines.append(f"tomwerk audit: would change {tom} on {', '.join(hosts)}")
    changed = sum(1 for c in result["hosts"].values() if c["changed"])
    failed = sum(1 for c in result["hosts"].values() if c["failed"] or c["unreachable"])
    lines.append(
        f"tomwerk audit: {len(result['hosts'])} hosts, {changed} would change, {failed} failed; "
        f"{len(result['changes'])} task(s) would change something"
    )
    return lines


def audit(
    inventory: str | Path,
    *,
    limit: str | None = None,
    tags: str | None = None,
    out: str | Path = "results",
    playbook: str | Path = SITE,
    on_line: Callable[[str], None] = lambda line: print(line, flush=True),
    extra_args: Iterable[str] = (),
) -> AuditRun:
    """Run the playbook in check mode against the inventory; see the module docstring."""
    from tomwerk.inventory import Inventory, InventoryError

    started = now_utc()
    try:
        inv = Inventory(inventory)  # refuses a missing, unparsable or empty inventory
        if limit and not inv.hosts(limit):
            raise InventoryError(f"--limit {limit} matches no host of {inv.source}")
        toms = catalogue.load()
    except (InventoryError, catalogue.CatalogueError) as exc:
        on_line(f"tomwerk audit: {exc}")
        return AuditRun(2)
    playbook = Path(playbook).resolve()
    if not playbook.exists():
        on_line(f"tomwerk audit: no playbook at {playbook}")
        return AuditRun(2)

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    run_dir = out / (started.strftime("%Y%m%dT%H%M%SZ") + "-audit")
    run_dir.mkdir(exist_ok=True)
    collector = Collector(toms_by_role(toms))
    args = ["--check", "--diff", *(["--limit", limit] if limit else []), *(["--tags", tags] if tags else [])]
    on_line(f"tomwerk audit: ansible-playbook {playbook.name} {' '.join(args)} against {inv.source}")
    rc = _run_playbook(playbook, inv.source, [*args, *extra_args], run_dir / "audit.log", collector, on_line)

    result = {
        "schema": SCHEMA,
        "started": utc_iso(started),
        "finished": utc_iso(now_utc()),
        "inventory": inv.source,
        "playbook": str(playbook),
        "limit": limit,
        "tags": tags,
        "hosts": dict(sorted(collector.stats.items())),
        "changes": collector.changes,
        "failures": collector.failures,
        "toms": collector.toms(),
    }
    (run_dir / "audit.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if not collector.stats:
        on_line(f"tomwerk audit: the playbook did not run (exit {rc}); see {run_dir / 'audit.log'}")
        return AuditRun(2, run_dir, result)
    for line in summary_lines(result):
        on_line(line)
    on_line(f"tomwerk audit: {run_dir / 'audit.json'}")
    # Check mode never fails on drift: any failure or unreachable host means the audit is incomplete.
    if collector.failures or rc != 0:
        return AuditRun(2, run_dir, result)
    return AuditRun(1 if collector.changes else 0, run_dir, result)


def _run_playbook(
    playbook: Path,
    inventory: str,
    args: list[str],
    log_path: Path,
    collector: Collector,
    on_line: Callable[[str], None],
) -> int:
    import ansible_runner

    env = {
        # The project's settings (roles, plugins); host keys stay checked as the
        # admin's own ansible-playbook would (ansible-runner turns that off).
        "ANSIBLE_CONFIG": os.environ.get("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg")),
        "ANSIBLE_COLLECTIONS_PATH": collections_path(),
        "ANSIBLE_HOST_KEY_CHECKING": os.environ.get("ANSIBLE_HOST_KEY_CHECKING", "True"),
        "ANSIBLE_FORCE_COLOR": "0",
    }
    with open(log_path, "w", encoding="utf-8") as log, tempfile.TemporaryDirectory(prefix="tomwerk-audit-") as private:

        def on_event(event: dict) -> bool:
            if event.get("stdout"):
                log.write(event["stdout"] + "\n")
            line = collector.feed(event)
            if line:
                on_line(f"tomwerk audit: {line}")
            return False  # no job_events files kept

        run = ansible_runner.run(
            private_data_dir=private,
            project_dir=str(ROOT),
            playbook=str(playbook),
            inventory=inventory,
            cmdline=" ".join(_quote(a) for a in args),
            envvars=env,
            quiet=True,
            event_handler=on_event,
            settings={"suppress_ansible_output": True},
        )
        return run.rc


def _quote(arg: str) -> str:
    return shlex.quote(arg)
