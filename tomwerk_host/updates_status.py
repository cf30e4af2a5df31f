"""tomwerk-updates-status: what unattended-upgrades last did, and what is still pending (TOM-UPD-01).

unattended-upgrades leaves no machine-readable "last successful run", and
apt.systemd.daily (what apt-daily-upgrade.service runs) swallows its exit
status. This command records the outcome of each run in a status file that
the tomwerk exporter reads:

  begin     ExecStartPre= of apt-daily-upgrade.service: notes when the service
            started, so `record` knows which log lines belong to it.
  record    ExecStopPost= of apt-daily-upgrade.service, or by hand after
            running unattended-upgrade: reads the runs the log gained since the
            last record and the service's result ($SERVICE_RESULT,
            $EXIT_CODE, $EXIT_STATUS), and stores the outcome.
  pending   prints pending upgrades as JSON (security and other, from
            apt-get -s dist-upgrade), whether a reboot is required, and since
            when the oldest security update has been pending. It keeps the
            time each security update was first seen in the status file, and
            the apt-get result until apt's inputs change. Also ExecStopPost=
            of apt-daily.service: first sightings right after a list update.
  show      prints the status file.

Status file (written atomically, under a lock):
  last_run_timestamp      start of the newest run (Unix time)
  last_run_success        whether it succeeded
  last_success_timestamp  start of the newest successful run (kept when a run fails)
  packages_upgraded       packages the newest run upgraded (0 when it failed)
  error                   one line on why the newest run failed, else null
  pending_security_first_seen  package -> when it was first seen with a pending security update
  reboot_required_first_seen, pending_snapshot (the last apt-get -s result, reused while
  apt's inputs are unchanged), service_started_timestamp (between begin and record),
  recorded_timestamp

Standard library only (Debian 12's Python 3.11); runs as root.
"""

from __future__ import annotations

import argparse
import datetime as dt
import errno
import fcntl
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import NamedTuple

STATUS_FILE = "/var/lib/tomwerk/updates/status.json"
LOG_FILE = "/var/log/unattended-upgrades/unattended-upgrades.log"
REBOOT_REQUIRED = "/var/run/reboot-required"
DPKG_STATUS = "/var/lib/dpkg/status"
APT_LISTS = "/var/lib/apt/lists"
# A stored apt-get -s result is reused while apt's inputs are unchanged, but no longer than
# this: pins and apt configuration are not part of the fingerprint.
SNAPSHOT_MAX_AGE = 86400
# Held (fcntl) by a running unattended-upgrade, see LOCK_FILE in /usr/bin/unattended-upgrade.
UU_LOCK = "/var/run/unattended-upgrades.lock"
# NoLocking: the simulation must neither wait for nor block a running upgrade.
SIMULATE = ("apt-get", "-s", "-o", "Debug::NoLocking=1", "dist-upgrade")
APT_TIMEOUT = 300
# `begin` runs before unattended-upgrade starts; the slack only absorbs rounding.
SINCE_SLACK = 1.0
# Opening the lock file fails this way where the status file cannot be written
# (the exporter runs with ProtectSystem=strict): `pending` then works read-only.
READ_ONLY_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM)

Runner = Callable[[tuple[str, ...]], tuple[int, str, str]]


class UpdatesError(Exception):
    """Something this command needs failed; the message is one line."""


def one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def local_time(at: float) -> str:
    return dt.datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")


# --------------------------------------------------------------------- the log of unattended-upgrades

# unattended-upgrade logs with format "%(asctime)s %(levelname)s %(message)s", in local time.
LINE = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}),(\d{3}) (DEBUG|INFO|WARNING|ERROR|CRITICAL) (.*)$")
START = "Starting unattended upgrades script"
PLANNED = "Packages that will be upgraded:"
NOTHING_TO_DO = "No packages found that can be upgraded unattended"
INSTALLED = "All upgrades installed"
# unattended-upgrade --dry-run (the role's checks use it) logs to the same file and installs nothing.
DRY_RUN = "Option --dry-run given"
# Written by a process before its "Starting" line (log_once notices).
NOTICE = re.compile(
    r"^(Checking if (system is running on battery|connection is metered) is skipped|Enabled logging to syslog)"
)
# A process that stops before "Starting" writes one of these instead.
NO_START = re.compile(
    r"^(Lock file is already taken|Skipping update check|Not running on (this|the) development release"
    r"|Could not figure out development release)"
)
# Warnings after which unattended-upgrade exits 1 (its exit status is lost in apt.systemd.daily).
FAILING_WARNING = re.compile(
    r"^(Package \S+ has conffile prompt|package \S+ upgradable but fails to be marked|SIGTERM received"
    r"|SIGNAL received, stopping|System is on battery power, stopping|System is on metered connection, stopping)"
)


class Entry(NamedTuple):
    at: float
    level: str
    message: str


class Run:
    """The log lines of one unattended-upgrade process."""

    def __init__(self, at: float, orphan: bool) -> None:
        self.start = at  # of the "Starting" line once seen, else of the first line
        self.started = False
        self.ended = orphan  # stopped before "Starting"
        self.orphan = orphan  # the tail of a run that began in a rotated log
        self.entries: list[Entry] = []


class Outcome(NamedTuple):
    start: float
    success: bool
    packages: tuple[str, ...]  # upgraded (none when the run failed)
    error: str | None


def parse_entries(text: str) -> list[Entry]:
    entries = []
    for line in text.splitlines():
        m = LINE.match(line)
        # Other lines continue the entry before (tracebacks, dpkg output): not needed.
        if m:
            at = dt.datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S").timestamp() + int(m[2]) / 1000
            entries.append(Entry(round(at, 3), m[3], m[4].rstrip()))
    return entries


def split_runs(entries: list[Entry]) -> list[Run]:
    runs: list[Run] = []
    current: Run | None = None
    started: Run | None = None  # the newest run with a "Starting" line
    for e in entries:
        marker = e.message == START or NOTICE.match(e.message) or NO_START.match(e.message)
        if current is None or (marker and (current.started or current.ended)):
            current = Run(e.at, orphan=not marker)
            runs.append(current)
        if e.message == START:
            current.started, current.start = True, e.at
            started = current
        elif not current.started and (NO_START.match(e.message) or FAILING_WARNING.match(e.message)):
            current.ended = True  # e.g. the lock is taken: this process stops before "Starting"
            current.entries.append(e)
            continue
        # A process that stopped early (a second one started while a run held the
        # lock) writes between the lines of that run; they stay with the run.
        target = started if current.ended and not marker and started is not None else current
        target.entries.append(e)
    return runs


def outcome(run: Run, install_expected: bool) -> Outcome | None:
    """What a run achieved; None for a run that installs nothing by design (download-only, not a patch day).

    install_expected: apt-daily-upgrade.service started the run, so it was
    meant to install. Without that, a run that stopped before deciding what
    to upgrade is taken for one of apt-daily.service's download-only runs,
    which log exactly that much.
    """
    if run.orphan:
        return None  # recorded before the log was rotated
    if any(e.message.startswith(DRY_RUN) for e in run.entries):
        return None
    errors = [e.message for e in run.entries if e.level in ("ERROR", "CRITICAL")]
    warnings = [e.message for e in run.entries if e.level == "WARNING" and FAILING_WARNING.match(e.message)]
    if not run.started:
        if errors:
            return Outcome(run.start, False, (), one_line(f"unattended-upgrade did not start: {errors[0]}"))
        return None
    # unattended-upgrade exits 1 on these; apt.systemd.daily drops that status.
    if errors or warnings:
        return Outcome(run.start, False, (), one_line((errors or warnings)[0]))
    if any(e.message.startswith(NOTHING_TO_DO) for e in run.entries):
        return Outcome(run.start, True, (), None)
    planned = [e.message[len(PLANNED) :].split() for e in run.entries if e.message.startswith(PLANNED)]
    if planned:
        packages = tuple(planned[-1])
        # Only auto-removals planned: nothing to install, so no "All upgrades installed".
        if packages and not any(e.message == INSTALLED for e in run.entries):
            return Outcome(run.start, False, (), "the run ended before all upgrades were installed")
        return Outcome(run.start, True, packages, None)
    if install_expected:
        return Outcome(run.start, False, (), "unattended-upgrade ended before it decided what to upgrade")
    return None


def finished(run: Run) -> bool:
    """The run wrote its last line: it stopped early, or it decided and installed."""
    messages = [e.message for e in run.entries]
    return (
        run.ended
        or any(m.startswith(NOTHING_TO_DO) or m == INSTALLED for m in messages)
        or any(m.startswith(PLANNED) and not m[len(PLANNED) :].split() for m in messages)
    )


def read_log(path: str) -> str:
    """The log; after a rotation without a run since, the rotated one before it (logrotate compresses at once)."""
    texts = []
    for name in (path, path + ".1", path + ".1.gz"):
        try:
            opener = gzip.open if name.endswith(".gz") else open
            with opener(name, "rt", encoding="utf-8", errors="replace") as f:
                texts.insert(0, f.read())
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise UpdatesError(f"cannot read {name}: {exc.strerror or exc}") from None
        if START in texts[0]:
            break
    return "\n".join(texts)


def unattended_upgrade_running(lock_file: str = UU_LOCK) -> bool:
    """True while an unattended-upgrade process holds its lock."""
    try:
        fd = os.open(lock_file, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False  # no lock file: never ran since boot; not root: cannot tell
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # also releases a lock we got
    return False


# --------------------------------------------------------------------- the status file


def number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def load_status(path: str, writable: bool) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        data = exc
    if isinstance(data, dict):
        return data
    # Start afresh, but keep the broken file for whoever looks into it.
    print(f"tomwerk-updates-status: {path} is unreadable or not a JSON object, starting afresh", file=sys.stderr)
    if writable:
        os.replace(path, path + ".broken")
    return {}


def write_atomically(path: str, data: dict) -> None:
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".status.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # the exporter reads it
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def update_status(path: str, change: Callable[[dict], object]) -> tuple[object, bool]:
    """Apply change to the status under a lock and save it; (change's result, whether it was saved).

    record (systemd) and pending (the exporter, an admin) may run at once;
    the lock keeps one from overwriting the other.
    """
    try:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        lock = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno not in READ_ONLY_ERRNOS:
            raise UpdatesError(f"cannot lock {path}: {exc.strerror or exc}") from None
        return change(load_status(path, writable=False)), False
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        status = load_status(path, writable=True)
        before = json.dumps(status, sort_keys=True)
        result = change(status)
        if json.dumps(status, sort_keys=True) != before:
            write_atomically(path, status)
        return result, True
    except OSError as exc:
        raise UpdatesError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        os.close(lock)


# --------------------------------------------------------------------- record


def record(
    status_path: str,
    log_path: str,
    env: dict,
    now: float,
    running: Callable[[], bool] = unattended_upgrade_running,
    refresh: Callable[[], object] | None = None,
) -> str:
    """Store the outcome of the runs since the last record; returns a line for the journal.

    refresh: called after a new run was stored, to bring the pending upgrades up
    to date (the run installed some); its failure is reported, not fatal.
    """
    result = env.get("SERVICE_RESULT")  # set by systemd for ExecStopPost= only
    in_service = result is not None
    runs = split_runs(parse_entries(read_log(log_path)))
    if runs and not finished(runs[-1]) and running():
        runs.pop()  # the run in progress has no outcome yet

    def change(status: dict) -> str:
        since = number(status.pop("service_started_timestamp", None)) if in_service else None
        last = number(status.get("last_run_timestamp"))
        found: list[tuple[Outcome, bool]] = []  # (outcome, started by this service run)
        ours_seen = False
        for run in runs:
            if last is None or run.start > last:
                # The service runs unattended-upgrade once; a later run is apt-daily.service's
                # download-only one (it waits for the same lock) or an admin's.
                ours = since is not None and run.start >= since - SINCE_SLACK and run.started and not ours_seen
                ours_seen = ours_seen or ours
                o = outcome(run, install_expected=ours)
                if o is not None:
                    found.append((o, ours))
        if in_service and result != "success":
            reason = one_line(
                f"apt-daily-upgrade.service failed: {result}"
                f" ({env.get('EXIT_CODE', 'unknown')} {env.get('EXIT_STATUS', 'unknown')})"
            )
            mine = [i for i, (_, ours) in enumerate(found) if ours]
            if mine:
                o = found[mine[0]][0]
                found[mine[0]] = (Outcome(o.start, False, (), o.error or reason), True)
            else:
                found.append((Outcome(since if since is not None else now, False, (), reason), True))
        status["recorded_timestamp"] = now
        if not found:
            return "no new unattended-upgrades run since the last record"
        outcomes = sorted((o for o, _ in found), key=lambda o: o.start)
        newest = outcomes[-1]
        status["last_run_timestamp"] = newest.start
        status["last_run_success"] = newest.success
        status["packages_upgraded"] = len(newest.packages)
        status["error"] = newest.error
        previous = number(status.get("last_success_timestamp"))
        successes = [o.start for o in outcomes if o.success] + ([previous] if previous is not None else [])
        status["last_success_timestamp"] = max(successes, default=None)
        # Forget the first sightings of what was upgraded, so a later update starts its own clock.
        upgraded = {name for o in outcomes for name in o.packages}
        seen = status.get("pending_security_first_seen")
        if isinstance(seen, dict):
            status["pending_security_first_seen"] = {k: v for k, v in seen.items() if k.split(":")[0] not in upgraded}
        if newest.success:
            return f"run of {local_time(newest.start)} succeeded, {len(newest.packages)} package(s) upgraded"
        return f"run of {local_time(newest.start)} failed: {newest.error}"

    message, _ = update_status(status_path, change)
    if refresh is not None and not str(message).startswith("no new"):
        try:
            refresh()
        except UpdatesError as exc:
            message = f"{message}; pending upgrades not refreshed: {exc}"
    return str(message)


def begin(status_path: str, now: float) -> None:
    def change(status: dict) -> None:
        status["service_started_timestamp"] = now

    update_status(status_path, change)


# --------------------------------------------------------------------- pending

# "Inst libssl3 [3.0.11-1~deb12u2] (3.0.13-1~deb12u1 Debian-Security:12/stable-security [amd64])";
# a new package has no [old]; several origins are joined by ", "; apt may append " []".
INST = re.compile(r"^Inst (\S+)(?: \[([^\]]*)\])? \((\S+)(?: (.*?))? \[[^\]]*\]\)")
SUMMARY = re.compile(
    r"^(\d+) upgraded, (\d+) newly installed, (?:\d+ downgraded, )?(?:\d+ reinstalled, )?"
    r"(\d+) to remove and (\d+) not upgraded\.$",
    re.M,
)


class Upgrade(NamedTuple):
    name: str
    old: str | None
    new: str
    origins: tuple[str, ...]

    @property
    def security(self) -> bool:
        return any(is_security(o) for o in self.origins)


def is_security(origin: str) -> bool:
    """An origin as apt prints it (Label:Version/Suite) of a *-security suite.

    "Debian-Security:12/stable-security", "Debian-Security:12/oldstable-security" (once
    bookworm is oldstable) and origins naming the codename (bookworm-security) count;
    the label alone ("Debian-Security") does not.
    """
    after_label = origin.split(":", 1)[-1]
    return any(part.strip().lower().endswith("-security") for part in after_label.split("/"))


def parse_simulation(text: str) -> tuple[list[Upgrade], int]:
    """The Inst lines of apt-get -s dist-upgrade, and how many packages it would not upgrade."""
    summary = SUMMARY.search(text)
    if summary is None:
        raise UpdatesError("apt-get -s dist-upgrade printed no summary line (N upgraded, ...)")
    upgrades = []
    for line in text.splitlines():
        m = INST.match(line)
        if m:
            origins = tuple(o.strip() for o in (m[4] or "").split(", ") if o.strip())
            upgrades.append(Upgrade(m[1], m[2], m[3], origins))
    return upgrades, int(summary[4])


def default_runner(argv: tuple[str, ...]) -> tuple[int, str, str]:
    # C locale: apt's messages and summary line stay what the parser expects.
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LC_ALL": "C"}
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=APT_TIMEOUT, env=env, check=False)
    except FileNotFoundError:
        raise UpdatesError(f"{argv[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise UpdatesError(f"{' '.join(argv)} did not finish within {APT_TIMEOUT} s") from None
    return proc.returncode, proc.stdout, proc.stderr


def boot_time() -> float:
    with open("/proc/stat", encoding="ascii") as f:
        for line in f:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def apt_fingerprint(dpkg_status: str = DPKG_STATUS, lists: str = APT_LISTS) -> str:
    """Changes whenever what apt-get -s would print can change: installed packages or package lists."""
    parts = []
    try:
        names = sorted(n for n in os.listdir(lists) if os.path.isfile(os.path.join(lists, n)))
    except FileNotFoundError:
        names = []
    for path in [dpkg_status, *(os.path.join(lists, n) for n in names)]:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        parts.append(f"{path} {st.st_mtime_ns} {st.st_size}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def snapshot_of(status: dict, fingerprint: str, now: float) -> dict | None:
    """The stored result of apt-get -s if apt's inputs have not changed since (and it is not too old)."""
    snap = status.get("pending_snapshot")
    if not isinstance(snap, dict) or snap.get("fingerprint") != fingerprint:
        return None
    checked = number(snap.get("checked_timestamp"))
    names = (snap.get("security"), snap.get("other"))
    if (
        checked is None
        or not 0 <= now - checked < SNAPSHOT_MAX_AGE
        or not isinstance(snap.get("not_upgraded"), int)
        or not all(isinstance(n, list) and all(isinstance(x, str) for x in n) for n in names)
    ):
        return None
    return snap


def pending(
    status_path: str,
    runner: Runner,
    now: float,
    *,
    reboot_file: str = REBOOT_REQUIRED,
    booted: float | None = None,
    fingerprint: Callable[[], str] = apt_fingerprint,
) -> dict:
    """Pending upgrades, the reboot flag and first sightings; saves them when the status file is writable.

    apt-get -s needs seconds and much memory (it parses all package lists), too
    much for every exporter check: its result is stored with a fingerprint of
    apt's inputs and reused until they change (a list update, an installation).
    """
    booted = boot_time() if booted is None else booted
    fp = fingerprint()
    snap = snapshot_of(load_status(status_path, writable=False), fp, now)
    if snap is not None:
        security, other = snap["security"], snap["other"]
        not_upgraded, checked = snap["not_upgraded"], snap["checked_timestamp"]
    else:
        rc, out, err = runner(SIMULATE)
        if rc != 0:
            raise UpdatesError(f"{' '.join(SIMULATE)} exited with {rc}: {one_line(err or out) or 'no message'}")
        upgrades, not_upgraded = parse_simulation(out)
        security = sorted({u.name for u in upgrades if u.security})
        other = sorted({u.name for u in upgrades if not u.security} - set(security))
        checked = now
    try:
        reboot_mtime: float | None = os.stat(reboot_file).st_mtime
    except FileNotFoundError:
        reboot_mtime = None

    def change(status: dict) -> tuple[dict, float | None]:
        known = status.get("pending_security_first_seen")
        known = known if isinstance(known, dict) else {}
        # Keyed by package: a newer security version does not reset the clock of an older one still pending.
        seen = {name: number(known.get(name)) or now for name in security}
        status["pending_security_first_seen"] = seen
        since = None
        if reboot_mtime is not None:
            # The flag may be touched again by later packages: keep the first sighting, but
            # only one since boot (/run is emptied by a reboot, a read-only caller cannot reset it).
            first = number(status.get("reboot_required_first_seen"))
            first = first if first is not None and first >= booted else None
            since = min(x for x in (first, reboot_mtime, now) if x is not None)
        status["reboot_required_first_seen"] = since
        status["pending_snapshot"] = {
            "fingerprint": fp,
            "checked_timestamp": checked,
            "security": security,
            "other": other,
            "not_upgraded": not_upgraded,
        }
        return seen, since

    (seen, reboot_since), saved = update_status(status_path, change)
    return {
        "security": len(security),
        "other": len(other),
        "security_packages": security,
        "other_packages": other,
        "oldest_security_first_seen_timestamp": min(seen.values(), default=None),
        "not_upgraded": not_upgraded,
        "reboot_required": reboot_mtime is not None,
        "reboot_required_since_timestamp": reboot_since,
        "checked_timestamp": checked,
        "first_seen_saved": saved,
    }


# --------------------------------------------------------------------- command line


def main(
    argv: list[str] | None = None,
    *,
    env: dict | None = None,
    runner: Runner = default_runner,
    now: Callable[[], float] = time.time,
    reboot_file: str = REBOOT_REQUIRED,
    running: Callable[[], bool] = unattended_upgrade_running,
    fingerprint: Callable[[], str] = apt_fingerprint,
) -> int:
    parser = argparse.ArgumentParser(
        prog="tomwerk-updates-status", description="Record and show what unattended-upgrades did (TOM-UPD-01)."
    )
    parser.add_argument("--status-file", default=STATUS_FILE, help="default: %(default)s")
    parser.add_argument("--log-file", default=LOG_FILE, help="unattended-upgrades' log (default: %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("begin", help="note the start of apt-daily-upgrade.service (ExecStartPre=)")
    sub.add_parser("record", help="record the outcome of the runs since the last record (ExecStopPost=, or by hand)")
    sub.add_parser("pending", help="print pending upgrades, reboot flag and first-seen times as JSON")
    sub.add_parser("show", help="print the status file")
    args = parser.parse_args(argv)
    env = os.environ if env is None else env
    try:
        if args.command == "begin":
            begin(args.status_file, now())
        elif args.command == "record":

            def refresh() -> object:
                return pending(args.status_file, runner, now(), reboot_file=reboot_file, fingerprint=fingerprint)

            message = record(args.status_file, args.log_file, env, now(), running, refresh)
            print(f"tomwerk-updates-status: {message}")
        elif args.command == "pending":
            output = pending(args.status_file, runner, now(), reboot_file=reboot_file, fingerprint=fingerprint)
            print(json.dumps(output, indent=2, sort_keys=True))
        else:
            print(json.dumps(load_status(args.status_file, writable=False), indent=2, sort_keys=True))
    except UpdatesError as exc:
        print(f"tomwerk-updates-status: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. /var/run/reboot-required unreadable: one line, not a traceback
        print(f"tomwerk-updates-status: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
