"""tomwerk-backup: encrypted restic backups of this server to every backup location.

TOM-BAK-01 (daily encrypted backups), TOM-BAK-02 (several cities) and TOM-BAK-03
(deleted data ages out of the backups). roles/backup installs this file as
/usr/local/sbin/tomwerk-backup and runs it as root from systemd timers; it
writes a status file and a drill file that the tomwerk exporter's backup
collector reads. Standard library only (Debian 12's Python 3.11) and restic.

Subcommands
  run     per location, independently: open the repository (create it when
          there is none yet), back up, forget + prune by the retention policy,
          check; then update the status file. Exit 0: every location
          succeeded; 1: at least one failed (or another run holds the lock).
  drill   per location: restore the newest snapshot into a scratch directory,
          compare every restored regular file with the live file by SHA-256,
          write the drill file, remove the scratch directory. Exit 0 only if
          every location restored and had no mismatch, else 1.
  status  print the status and drill files for humans.
Exit 2: the configuration is missing or invalid (the message names the key).

Config (--config, default /etc/tomwerk/backup/config.json; roles/backup writes it):
  {
    "host": "web1",                  # restic --host of the snapshots
    "paths": ["/etc", "/var/www"],   # absolute paths to back up; those missing on this host are skipped
    "excludes": ["/var/www/cache"],  # restic --exclude patterns (optional, default [])
    "password_file": "/etc/tomwerk/backup/repository.pass",
    "status_file": "/var/lib/tomwerk/backup/status.json",
    "drill_file": "/var/lib/tomwerk/backup/drill.json",
    "drill_dir": "/var/tmp/tomwerk-restore-drill",   # optional; scratch is <drill_dir>/<location>
    "cache_dir": "/var/cache/tomwerk-backup",        # optional; RESTIC_CACHE_DIR
    "restic_binary": "/usr/bin/restic",              # optional
    "timeout_seconds": 3600,         # optional; per location and command (run or drill); integers
                                     # may also be digit strings, as Ansible templates write them
    "retention": {"keep_last": 0, "keep_hourly": 0, "keep_daily": 7, "keep_weekly": 4,
                  "keep_monthly": 0, "keep_yearly": 0},   # integers >= 0, at least one > 0; absent keys are 0
    "prune_max_unused": "0",         # optional; restic prune --max-unused (see below)
    "check_read_data_subset": "5%",  # optional; null, "" or absent: check the structure only
    "locations": [
      {"location": "berlin-1",       # [a-z0-9][a-z0-9._-]*, unique
       "city": "Berlin",
       "repository": "sftp:bk-web1@10.231.0.21:/repo",   # any restic repository, also a plain path
       "sftp_command": "ssh ... -s sftp",                # optional; restic -o sftp.command=...
       "timeout_seconds": 3600}                          # optional; overrides the global one
    ]
  }

Status file (written atomically after each location; mode 0644):
  {"version": 1, "host": "web1",
   "skipped_paths": ["/var/www"],     # configured paths that do not exist on this host
   "locations": {"berlin-1": {
      "city": "Berlin",
      "last_attempt": 1767225600.0,   # Unix time the latest run of this location started
      "last_success": 1767225600.0,   # start of the latest run in which every step succeeded;
                                      # null if none yet; kept from the previous status on failure
      "duration_seconds": 12.3,       # of the latest run
      "added_bytes": 2370,            # data the newest snapshot added (of the latest successful backup step)
      "snapshot_id": "47093a2b",      # newest snapshot made by this runner (kept when a run made none)
      "check_ok": true,               # latest `restic check`; kept when a run did not get to it; null: never
      "forget_ok": true,              # latest `restic forget --prune`; same rules as check_ok
      "error": ""}}}                  # one line "<step>: <reason>[; <step>: <reason>]", "" when the run
                                      # succeeded; steps: open, init, backup, forget, check
Drill file (mode 0600: it names files):
  {"version": 1, "host": "web1", "locations": {"berlin-1": {
      "timestamp": 1767229200.0, "snapshot_id": "47093a2b", "snapshot_time": 1767225600.0,
      "files_compared": 812, "files_identical": 812, "mismatches": [],   # up to 20 live paths
      "changed_since_backup": 3, "deleted_since_backup": 1, "success": true, "error": ""}}}
A live file whose mtime is newer than the snapshot is "changed since backup" and
not compared; a restored file without a live file is "deleted since backup".

Why some choices:
- The password reaches restic only as RESTIC_PASSWORD_FILE; restic's output is
  scrubbed of it before it is logged or stored, in case it ever shows up.
- forget uses --group-by '' so that every snapshot in the repository, whatever
  its host or paths, falls under the retention policy; otherwise a changed
  path list would leave old snapshots (and deleted data) behind for ever.
- prune --max-unused 0 repacks every pack that holds unused data, so deleted
  files are physically gone after the prune, not merely unreferenced.
- A file restic could not read fails the run (the snapshot is still kept);
  a file that vanished while restic walked the tree does not.
- Stale restic locks (of a restic killed by the timeout) are removed when a
  step finds the repository locked, and the step is tried once more.
- A repository that has vanished after this location once succeeded is not
  re-created silently (an unmounted disk or a wiped target must be noticed);
  `run --allow-init` re-creates it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

from tomwerk_host.values import to_int

DEFAULT_CONFIG = "/etc/tomwerk/backup/config.json"
# Root-owned, mode 0700, and cleared before use: not a shared temporary file.
DEFAULT_DRILL_DIR = "/var/tmp/tomwerk-restore-drill"  # noqa: S108
DEFAULT_CACHE_DIR = "/var/cache/tomwerk-backup"
DEFAULT_RESTIC = "/usr/bin/restic"
DEFAULT_TIMEOUT = 3600
RETENTION_KEYS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")
LOCATION_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
# restic check --read-data-subset: n/t, a percentage, or a size.
DATA_SUBSET = re.compile(r"^(\d+/\d+|\d+(\.\d+)?%|\d+[KMGT]?)$")
MAX_MISMATCHES_LISTED = 20
ENOENT = 2
ERROR_LIMIT = 200
STATUS_VERSION = 1

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


class ConfigError(Exception):
    """The configuration is missing or invalid; the message names the key."""


class StepFailed(Exception):
    """A step of a location failed; the message is the one-line reason."""


class StepTimedOut(StepFailed):
    """The location's time ran out; nothing more is tried there."""


def one_line(text: str, limit: int = ERROR_LIMIT) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def log(message: str) -> None:
    # stdout goes to the journal, which adds time and unit.
    print(one_line(message, 1000), flush=True)


def human_bytes(count: float) -> str:
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    while count >= 1024 and len(units) > 1:
        count /= 1024
        units.pop(0)
    return f"{count:.0f} B" if units[0] == "B" else f"{count:.1f} {units[0]}"


# --------------------------------------------------------------------- config


class Location:
    def __init__(self, name: str, city: str, repository: str, sftp_command: str | None, timeout: int):
        self.name = name
        self.city = city
        self.repository = repository
        self.sftp_command = sftp_command
        self.timeout = timeout


class Config:
    def __init__(self, data: dict):
        self.host = _text(data, "host")
        if any(c.isspace() for c in self.host):
            raise ConfigError("host must not contain white space")
        self.paths = _abs_paths(data, "paths")
        if not self.paths:
            raise ConfigError("paths must name at least one path")
        excludes = data.get("excludes", [])
        if not isinstance(excludes, list) or not all(isinstance(e, str) and e for e in excludes):
            raise ConfigError("excludes must be a list of non-empty strings")
        self.excludes = excludes
        self.password_file = _abs_path(data, "password_file")
        self.status_file = _abs_path(data, "status_file")
        self.drill_file = _abs_path(data, "drill_file")
        self.drill_dir = _abs_path(data, "drill_dir", DEFAULT_DRILL_DIR)
        self.cache_dir = _abs_path(data, "cache_dir", DEFAULT_CACHE_DIR)
        self.restic = _abs_path(data, "restic_binary", DEFAULT_RESTIC)
        self.timeout = _seconds(data, "timeout_seconds", DEFAULT_TIMEOUT)
        self.retention = _retention(data.get("retention"))
        self.prune_max_unused = data.get("prune_max_unused", "0")
        if not isinstance(self.prune_max_unused, str) or not re.fullmatch(
            r"\d+(\.\d+)?%?|\d+[KMGT]|unlimited", self.prune_max_unused
        ):
            raise ConfigError("prune_max_unused must be a restic --max-unused value such as 0, 5% or unlimited")
        subset = data.get("check_read_data_subset") or None  # "" from a template: none
        if subset is not None and (not isinstance(subset, str) or not DATA_SUBSET.match(subset)):
            raise ConfigError("check_read_data_subset must be null or n/t, a percentage or a size (5%, 1/10, 500M)")
        self.check_read_data_subset = subset
        self.locations = _locations(data.get("locations"), self.timeout)
        # The drill deletes its scratch directories: they must never hold live data.
        if self.drill_dir == "/":
            raise ConfigError("drill_dir must not be /")
        for path in self.paths:
            if _within(path, self.drill_dir):
                raise ConfigError(f"drill_dir {self.drill_dir} contains the backup path {path}")


def _text(data: dict, key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key} must be a non-empty string")
    return value


def _abs_path(data: dict, key: str, default: str | None = None) -> str:
    if default is not None and key not in data:
        return default
    value = _text(data, key)
    if not value.startswith("/"):
        raise ConfigError(f"{key} must be an absolute path")
    return os.path.normpath(value)


def _abs_paths(data: dict, key: str) -> list[str]:
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(p, str) and p.startswith("/") for p in value):
        raise ConfigError(f"{key} must be a list of absolute paths")
    return [os.path.normpath(p) for p in value]


def _seconds(data: dict, key: str, default: int) -> int:
    value = to_int(data.get(key, default))
    if value is None or value <= 0:
        raise ConfigError(f"{key} must be a positive integer (seconds)")
    return value


def _retention(value: object) -> dict[str, int]:
    if not isinstance(value, dict):
        raise ConfigError("retention must be an object with keep_* counts")
    unknown = sorted(set(value) - set(RETENTION_KEYS))
    if unknown:
        raise ConfigError(f"retention has unknown keys {', '.join(unknown)} (known: {', '.join(RETENTION_KEYS)})")
    counts = {key: to_int(count) for key, count in value.items()}
    for key, count in counts.items():
        if count is None or count < 0:
            raise ConfigError(f"retention.{key} must be an integer >= 0")
    # Without a positive count restic forget removes nothing: deleted data would stay for ever.
    if not any(counts.values()):
        raise ConfigError("retention must keep something: at least one keep_* count above 0")
    return {key: counts[key] for key in RETENTION_KEYS if counts.get(key)}


def _locations(value: object, default_timeout: int) -> list[Location]:
    if not isinstance(value, list) or not value:
        raise ConfigError("locations must be a non-empty list")
    locations, seen = [], set()
    for number, entry in enumerate(value, 1):
        where = f"locations[{number}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be an object")
        name = entry.get("location")
        if not isinstance(name, str) or not LOCATION_NAME.match(name):
            raise ConfigError(f"{where}.location must match {LOCATION_NAME.pattern}")
        if name in seen:
            raise ConfigError(f"{where}.location {name} is not unique")
        seen.add(name)
        try:
            city = _text(entry, "city")
            repository = _text(entry, "repository")
            timeout = _seconds(entry, "timeout_seconds", default_timeout)
        except ConfigError as exc:
            raise ConfigError(f"{where}.{exc}") from None
        command = entry.get("sftp_command")
        if command is not None and (not isinstance(command, str) or not command.strip()):
            raise ConfigError(f"{where}.sftp_command must be a non-empty string when given")
        locations.append(Location(name, city, repository, command, timeout))
    return locations


def _within(path: str, directory: str) -> bool:
    """True if path is directory or lies below it."""
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def load_config(path: str) -> Config:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {one_line(str(exc), 120)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a JSON object")
    return Config(data)


# --------------------------------------------------------------------- files


def read_json(path: str) -> dict | None:
    """A JSON object from path, or None when it is missing or unusable (logged)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log(f"ignoring unreadable {path}: {one_line(str(exc), 120)}")
        return None
    return data if isinstance(data, dict) else None


def write_json_atomically(path: str, data: dict, mode: int) -> None:
    """Write to a temporary file beside path and rename it, so readers never see half a file."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), mode)
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def exclusive_lock(path: str):
    """Hold a lock beside the status file so that run and drill never overlap."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def lock_path(config: Config) -> str:
    return os.path.join(os.path.dirname(config.status_file), ".tomwerk-backup.lock")


def under_lock(step):
    """step(config, ...) while it holds the lock; EXIT_FAILED, said so, while another run or drill holds it."""

    @functools.wraps(step)
    def locked_step(config: Config, *args, **kwargs) -> int:
        with exclusive_lock(lock_path(config)) as locked:
            if not locked:
                log("another tomwerk-backup run or drill is in progress; nothing done")
                return EXIT_FAILED
            return step(config, *args, **kwargs)

    return locked_step


# --------------------------------------------------------------------- restic


class Restic:
    """Runs restic for one location with the password file, a deadline and scrubbed output."""

    def __init__(self, config: Config, location: Location, secrets: tuple[str, ...]):
        self.config = config
        self.location = location
        self.secrets = tuple(s for s in secrets if s)
        self.deadline = time.monotonic() + location.timeout
        # A clean environment: no RESTIC_PASSWORD or RESTIC_REPOSITORY from the caller.
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "LC_ALL": "C",
            "RESTIC_PASSWORD_FILE": config.password_file,
            "RESTIC_CACHE_DIR": config.cache_dir,
        }
        if "TMPDIR" in os.environ:
            self.env["TMPDIR"] = os.environ["TMPDIR"]

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[password]")
        return text

    def argv(self, *args: str) -> list[str]:
        argv = [self.config.restic, "--repo", self.location.repository]
        if self.location.sftp_command:
            argv += ["-o", f"sftp.command={self.location.sftp_command}"]
        return [*argv, *args]

    def __call__(self, step: str, *args: str) -> tuple[int, str, str]:
        """(exit code, stdout, stderr) of restic; StepTimedOut when the location's time is up.

        A lock left by a restic that was killed (by the timeout, a reboot) blocks
        prune and check for ever in restic 0.14: remove stale locks and try once more.
        """
        code, out, err = self._run(step, *args)
        if code != 0 and LOCKED in err:
            log(f"{self.location.name} ({self.location.city}): {step}: repository locked, removing stale locks")
            self._run("unlock", "unlock")
            code, out, err = self._run(step, *args)
        return code, out, err

    def _run(self, step: str, *args: str) -> tuple[int, str, str]:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise StepTimedOut(f"{step}: the location's {self.location.timeout} s were used up")
        # Files, not pipes: an ssh child that outlives a killed restic would keep a pipe open.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(
                    self.argv(*args),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    env=self.env,
                    start_new_session=True,
                )
            except OSError as exc:
                raise StepFailed(f"{step}: cannot run {self.config.restic}: {exc.strerror or exc}") from None
            try:
                code = proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                kill_tree(proc)
                raise StepTimedOut(f"{step}: no result within {self.location.timeout} s, stopped") from None
            out.seek(0)
            err.seek(0)
            return (
                code,
                self.scrub(out.read().decode("utf-8", "replace")),
                self.scrub(err.read().decode("utf-8", "replace")),
            )


def kill_tree(proc: subprocess.Popen) -> None:
    """Kill restic, its process group and every descendant (ssh may sit in a group of its own)."""
    descendants = _descendants(proc.pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    for pid in descendants:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                # The command name may hold spaces and parentheses; the fields follow the last ')'.
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def restic_reason(out: str, err: str) -> str:
    """restic's own explanation: its Fatal line, else the last line it printed."""
    lines = [line.strip() for line in (err + "\n" + out).splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith("Fatal:")]
    if fatal:
        return one_line(fatal[0].removeprefix("Fatal:").strip())
    return one_line(lines[-1]) if lines else "no message"


LOCKED = "repository is already locked"
# restic >= 0.17 says it with exit codes; 0.14 (Debian 12) only in words.
EXIT_NO_REPOSITORY, EXIT_WRONG_PASSWORD = 10, 12
NO_REPOSITORY = "Is there a repository at the following location?"
NOT_FOUND = ("no such file or directory", "file does not exist")
KEY_NOT_FOUND = "wrong password or no key found"


def repository_state(code: int, out: str, err: str) -> str:
    """'ok', 'missing', 'wrong-password' or 'unreachable' from `restic cat config`."""
    if code == 0:
        return "ok"
    text = f"{out}\n{err}"
    if code == EXIT_WRONG_PASSWORD or KEY_NOT_FOUND in text:
        return "wrong-password"
    # Only a config file that is positively not there means "no repository";
    # any other failure to look (ssh down, permission denied) must never lead to an init.
    if code == EXIT_NO_REPOSITORY or (NO_REPOSITORY in text and any(n in text.lower() for n in NOT_FOUND)):
        return "missing"
    return "unreachable"


def parse_summary(out: str) -> dict | None:
    for line in reversed(out.splitlines()):
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict) and message.get("message_type") == "summary":
            return message
    return None


# --------------------------------------------------------------------- run


def carried_over(config: Config, path: str) -> dict:
    """A new status or drill file, with the entries of the one at path.

    Locations no longer configured drop out; the others keep their entry until their turn.
    """
    previous = read_json(path) or {}
    old = previous.get("locations") if isinstance(previous.get("locations"), dict) else {}
    locations = {loc.name: old[loc.name] for loc in config.locations if isinstance(old.get(loc.name), dict)}
    return {"version": STATUS_VERSION, "host": config.host, "locations": locations}


@under_lock
def run(config: Config, allow_init: bool = False) -> int:
    status = carried_over(config, config.status_file)
    secrets, password_problem = read_password(config.password_file)
    # One path list serves every server (/var/www, /var/mail, ...): what a host lacks is skipped, and said so.
    paths = [p for p in config.paths if os.path.lexists(p)]
    status["skipped_paths"] = [p for p in config.paths if p not in paths]
    if status["skipped_paths"]:
        log(f"skipping configured paths that do not exist here: {', '.join(status['skipped_paths'])}")
    failed = 0
    for location in config.locations:
        entry = run_location(
            config, location, secrets, password_problem, paths, status["locations"].get(location.name), allow_init
        )
        status["locations"][location.name] = entry
        write_json_atomically(config.status_file, status, 0o644)
        failed += bool(entry["error"])
    log(f"done: {len(config.locations) - failed} of {len(config.locations)} locations succeeded")
    return EXIT_FAILED if failed else EXIT_OK


def read_password(path: str) -> tuple[tuple[str, ...], str]:
    """The forms in which the password could show up in output (to scrub), and a problem reading it."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            raw = f.read()
        mode = os.stat(path).st_mode
    except OSError as exc:
        return (), f"cannot read the password file {path}: {exc.strerror or exc}"
    if mode & 0o077:
        log(f"warning: the password file {path} is readable by others than its owner (mode {mode & 0o777:o})")
    # restic strips surrounding white space from the file's content.
    stripped = raw.strip()
    if not stripped:
        return (), f"the password file {path} is empty"
    return tuple(sorted({stripped, raw.rstrip("\n")}, key=len, reverse=True)), ""


def run_location(
    config: Config,
    location: Location,
    secrets: tuple[str, ...],
    password_problem: str,
    paths: list[str],
    previous: dict | None,
    allow_init: bool,
) -> dict:
    previous = previous or {}
    started, clock = time.time(), time.monotonic()
    entry = {
        "city": location.city,
        "last_attempt": round(started, 3),
        "last_success": previous.get("last_success"),
        "duration_seconds": 0.0,
        "added_bytes": previous.get("added_bytes"),
        "snapshot_id": previous.get("snapshot_id"),
        "check_ok": previous.get("check_ok"),
        "forget_ok": previous.get("forget_ok"),
        "error": "",
    }
    name = f"{location.name} ({location.city})"
    restic = Restic(config, location, secrets)
    errors: list[str] = []
    try:
        if password_problem:
            raise StepFailed(f"open: {password_problem}")
        open_repository(restic, name, previous, allow_init)
        steps = (
            lambda: backup(config, restic, name, entry, paths),
            lambda: forget(config, restic, name, entry),
            lambda: check(config, restic, name, entry),
        )
        for step in steps:
            try:
                step()
            except StepTimedOut:
                raise
            except StepFailed as exc:
                # The next steps still run: an incomplete backup must not keep old data from ageing out.
                errors.append(str(exc))
    except StepFailed as exc:
        errors.append(str(exc))
    except Exception as exc:  # a bug or an OS error at one location must not cost the others their backup
        errors.append(f"internal error: {type(exc).__name__}: {exc}")
    entry["duration_seconds"] = round(time.monotonic() - clock, 3)
    entry["error"] = restic.scrub(one_line("; ".join(errors))) if errors else ""
    if errors:
        log(f"{name}: FAILED after {entry['duration_seconds']:.1f} s: {entry['error']}")
    else:
        entry["last_success"] = entry["last_attempt"]
        log(f"{name}: ok in {entry['duration_seconds']:.1f} s")
    return entry


def open_repository(restic: Restic, name: str, previous: dict, allow_init: bool) -> None:
    code, out, err = restic("open", "cat", "config")
    state = repository_state(code, out, err)
    if state == "ok":
        log(f"{name}: open ok")
        return
    if state == "wrong-password":
        raise StepFailed("open: wrong password or no key found")
    if state == "unreachable":
        raise StepFailed(f"open: {restic_reason(out, err)}")
    if previous.get("last_success") and not allow_init:
        raise StepFailed(
            "open: the repository has disappeared although backups succeeded there before; "
            "find out why, then re-create it with `tomwerk-backup run --allow-init`"
        )
    log(f"{name}: no repository yet, initialising")
    code, out, err = restic("init", "init")
    if code != 0:
        raise StepFailed(f"init: {restic_reason(out, err)}")
    log(f"{name}: init ok")


def backup(config: Config, restic: Restic, name: str, entry: dict, paths: list[str]) -> None:
    if not paths:
        raise StepFailed("backup: none of the configured paths exists")
    args = ["backup", "--json", "--quiet", "--host", config.host, "--exclude-caches"]
    # The drill's scratch copies must never end up in a backup.
    for pattern in [*config.excludes, config.drill_dir]:
        args += ["--exclude", pattern]
    code, out, err = restic("backup", *args, "--", *paths)
    summary = parse_summary(out)
    if code not in (0, 3) or summary is None:
        # With --json, stdout holds progress messages; the reason is on stderr.
        raise StepFailed(f"backup: {restic_reason('', err) if err.strip() else 'restic printed no summary'}")
    snapshot, added = summary.get("snapshot_id"), summary.get("data_added")
    if isinstance(snapshot, str) and isinstance(added, int):
        entry["snapshot_id"], entry["added_bytes"] = snapshot, added
    log(f"{name}: backup ok: snapshot {snapshot}, {human_bytes(added or 0)} added")
    # Exit code 3: the snapshot was made, but files could not be read. Files that vanished
    # while restic walked the tree (mail moving in a Maildir) are normal; any other is a failure.
    vanished, unreadable = read_errors(err)
    if vanished:
        log(f"{name}: backup: {len(vanished)} file(s) vanished during the backup (normal for busy directories)")
    for path in unreadable[:MAX_MISMATCHES_LISTED]:
        log(f"{name}: backup: could not read {path}")
    if unreadable or (code == 3 and not vanished):
        count = len(unreadable) or "some"
        raise StepFailed(f"backup: snapshot incomplete, {count} file(s) could not be read (paths in the journal)")


def read_errors(err: str) -> tuple[list[str], list[str]]:
    """The items restic --json reported as errors: (vanished since listed, really unreadable)."""
    vanished, unreadable = [], []
    for line in err.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if not isinstance(message, dict) or message.get("message_type") != "error":
            continue
        item = str(message.get("item") or "")
        error = message.get("error")
        errno = error.get("Err") if isinstance(error, dict) else None
        (vanished if errno == ENOENT or (item and not os.path.lexists(item)) else unreadable).append(item)
    return vanished, unreadable


def forget(config: Config, restic: Restic, name: str, entry: dict) -> None:
    args = ["forget", "--prune", "--group-by", "", "--max-unused", config.prune_max_unused]
    for key, count in config.retention.items():
        args += ["--" + key.replace("_", "-"), str(count)]
    code, out, err = restic("forget", *args)
    entry["forget_ok"] = code == 0
    if code != 0:
        raise StepFailed(f"forget: {restic_reason(out, err)}")
    removed = re.search(r"^remove (\d+) snapshots", out, re.MULTILINE)
    log(f"{name}: forget/prune ok: {removed.group(1) if removed else 0} snapshots removed")


def check(config: Config, restic: Restic, name: str, entry: dict) -> None:
    args = ["check"]
    if config.check_read_data_subset:
        args += ["--read-data-subset", config.check_read_data_subset]
    code, out, err = restic("check", *args)
    entry["check_ok"] = code == 0
    if code != 0:
        raise StepFailed(f"check: {restic_reason(out, err)}")
    log(f"{name}: check ok" + (f" (read {config.check_read_data_subset} of the data)" if len(args) > 1 else ""))


# --------------------------------------------------------------------- drill


@under_lock
def drill(config: Config) -> int:
    result = carried_over(config, config.drill_file)
    secrets, password_problem = read_password(config.password_file)
    os.makedirs(config.drill_dir, mode=0o700, exist_ok=True)
    failed = 0
    for location in config.locations:
        entry = drill_location(config, location, secrets, password_problem)
        result["locations"][location.name] = entry
        write_json_atomically(config.drill_file, result, 0o600)
        failed += not entry["success"]
    log(f"drill done: {len(config.locations) - failed} of {len(config.locations)} locations restored identically")
    return EXIT_FAILED if failed else EXIT_OK


def drill_location(config: Config, location: Location, secrets: tuple[str, ...], password_problem: str) -> dict:
    name = f"{location.name} ({location.city})"
    entry = {
        "timestamp": round(time.time(), 3),
        "snapshot_id": None,
        "snapshot_time": None,
        "files_compared": 0,
        "files_identical": 0,
        "mismatches": [],
        "changed_since_backup": 0,
        "deleted_since_backup": 0,
        "success": False,
        "error": "",
    }
    restic = Restic(config, location, secrets)
    scratch = os.path.join(config.drill_dir, location.name)
    try:
        if password_problem:
            raise StepFailed(f"open: {password_problem}")
        snapshot_id, snapshot_time = newest_snapshot(restic, config.host)
        entry["snapshot_id"], entry["snapshot_time"] = snapshot_id[:8], snapshot_time
        remove_tree(scratch)  # left over from an interrupted drill
        os.makedirs(scratch, mode=0o700)
        code, out, err = restic("restore", "restore", snapshot_id, "--target", scratch)
        if code != 0:
            raise StepFailed(f"restore: {restic_reason(out, err)}")
        log(f"{name}: restore of snapshot {snapshot_id[:8]} ok")
        compare_tree(scratch, snapshot_time, entry)
        mismatched = entry["files_compared"] - entry["files_identical"]
        entry["success"] = mismatched == 0
        if mismatched:
            entry["error"] = f"compare: {mismatched} restored file(s) differ from the live files"
        log(
            f"{name}: compared {entry['files_compared']} files, {entry['files_identical']} identical, "
            f"{mismatched} mismatched, {entry['changed_since_backup']} changed and "
            f"{entry['deleted_since_backup']} deleted since the backup"
        )
    except StepFailed as exc:
        entry["error"] = restic.scrub(one_line(str(exc)))
        log(f"{name}: drill FAILED: {entry['error']}")
    except Exception as exc:  # as in run: the other locations still get their drill
        entry["error"] = restic.scrub(one_line(f"internal error: {type(exc).__name__}: {exc}"))
        log(f"{name}: drill FAILED: {entry['error']}")
    finally:
        try:
            remove_tree(scratch)
        except OSError as exc:
            log(f"{name}: cannot remove {scratch}: {exc.strerror or exc}")
    return entry


def newest_snapshot(restic: Restic, host: str) -> tuple[str, float]:
    code, out, err = restic("snapshots", "snapshots", "--json", "--host", host, "latest")
    if code != 0:
        raise StepFailed(f"snapshots: {restic_reason(out, err)}")
    try:
        snapshots = json.loads(out)
        newest = max(snapshots, key=lambda s: s["time"]) if snapshots else None
    except (ValueError, TypeError, KeyError):
        raise StepFailed("snapshots: restic printed no snapshot list") from None
    if newest is None:
        raise StepFailed(f"snapshots: no snapshot of {host} to restore")
    return newest["id"], snapshot_timestamp(newest["time"])


def snapshot_timestamp(text: str) -> float:
    """Unix time of restic's RFC 3339 time with nanoseconds (Python reads at most microseconds)."""
    match = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", text)
    if not match:
        raise StepFailed(f"snapshots: unreadable snapshot time {text!r}")
    base, fraction, zone = match.groups()
    fraction = (fraction or ".0")[:7]
    return dt.datetime.fromisoformat(base + fraction + ("+00:00" if zone == "Z" else zone)).timestamp()


def compare_tree(scratch: str, snapshot_time: float, entry: dict) -> None:
    """Compare every restored regular file with the live file at the same path."""
    mismatches = []
    for directory, _dirs, files in os.walk(scratch):
        for file_name in files:
            restored = os.path.join(directory, file_name)
            if not stat.S_ISREG(os.lstat(restored).st_mode):
                continue
            live = "/" + os.path.relpath(restored, scratch)
            verdict = compare_file(restored, live, snapshot_time)
            if verdict == "deleted":
                entry["deleted_since_backup"] += 1
            elif verdict == "changed":
                entry["changed_since_backup"] += 1
            else:
                entry["files_compared"] += 1
                if verdict == "identical":
                    entry["files_identical"] += 1
                else:
                    mismatches.append(live)
    entry["mismatches"] = sorted(mismatches)[:MAX_MISMATCHES_LISTED]


def compare_file(restored: str, live: str, snapshot_time: float) -> str:
    """'identical', 'mismatch', 'changed' (since the snapshot, or while we read it) or 'deleted'."""
    try:
        before = os.lstat(live)
        if before.st_mtime > snapshot_time:
            return "changed"
        same = stat.S_ISREG(before.st_mode) and sha256_of(live) == sha256_of(restored)
        after = os.lstat(live)
    except FileNotFoundError:
        return "deleted"
    except OSError:
        return "mismatch"  # what cannot be read cannot be shown to be identical
    if (after.st_mtime_ns, after.st_size) != (before.st_mtime_ns, before.st_size):
        return "changed"
    return "identical" if same else "mismatch"


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def remove_tree(path: str) -> None:
    # shutil.rmtree never follows symlinks out of the tree (restored links point at live paths).
    if os.path.lexists(path):
        shutil.rmtree(path)


# --------------------------------------------------------------------- status


def show_status(config: Config) -> int:
    status = read_json(config.status_file)
    if not status or not isinstance(status.get("locations"), dict):
        print(f"no backup has run yet ({config.status_file} is missing)")
        return EXIT_FAILED
    now = time.time()
    print(f"backups of {status.get('host', config.host)} ({config.status_file}):")
    for name, entry in sorted(status["locations"].items()):
        success = entry.get("last_success")
        age = f"{(now - success) / 3600:.1f} h ago" if isinstance(success, (int, float)) else "never"
        state = "ok" if not entry.get("error") else f"FAILED: {entry['error']}"
        print(
            f"  {name} ({entry.get('city')}): last success {age}, last attempt {_when(entry.get('last_attempt'))} "
            f"{state}; snapshot {entry.get('snapshot_id')}, check {_yes_no(entry.get('check_ok'))}, "
            f"forget {_yes_no(entry.get('forget_ok'))}"
        )
    drill_result = read_json(config.drill_file)
    if drill_result and isinstance(drill_result.get("locations"), dict):
        print(f"restore drills ({config.drill_file}):")
        for name, entry in sorted(drill_result["locations"].items()):
            verdict = "ok" if entry.get("success") else f"FAILED: {entry.get('error')}"
            print(
                f"  {name}: {_when(entry.get('timestamp'))} {verdict}; snapshot {entry.get('snapshot_id')}, "
                f"{entry.get('files_identical')}/{entry.get('files_compared')} identical, "
                f"{entry.get('changed_since_backup')} changed, {entry.get('deleted_since_backup')} deleted since"
            )
            for path in entry.get("mismatches") or []:
                print(f"    differs: {path}")
    return EXIT_OK


def _when(timestamp: object) -> str:
    if not isinstance(timestamp, (int, float)):
        return "never"
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _yes_no(value: object) -> str:
    if value is None:
        return "not yet"
    return "ok" if value is True else "FAILED"


# --------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tomwerk-backup", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default: %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="back up to every location, forget and prune, check")
    run_parser.add_argument(
        "--allow-init",
        action="store_true",
        help="re-create a repository that has disappeared although backups succeeded there before",
    )
    commands.add_parser("drill", help="restore the newest snapshot of every location and compare it")
    commands.add_parser("status", help="show the status and drill files")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"tomwerk-backup: config error: {exc}", file=sys.stderr, flush=True)
        return EXIT_CONFIG
    if args.command == "run":
        return run(config, allow_init=args.allow_init)
    if args.command == "drill":
        return drill(config)
    return show_status(config)


if __name__ == "__main__":
    sys.exit(main())
