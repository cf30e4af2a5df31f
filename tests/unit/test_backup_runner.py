"""The backup runner (tomwerk_host/backup.py) with the real restic and local repositories.

Three "locations" are directories in tmp (restic accepts a plain path as a
repository); the data is a small tree in tmp. The runner runs in-process
(main()), so its journal lines are pytest's captured stdout. Without restic
on the machine the restic tests are skipped (CI installs it: lab/host-packages.txt).
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.unit import hostpkg
from tomwerk import ROOT

RUNNER = ROOT / "tomwerk_host" / "backup.py"
_spec = importlib.util.spec_from_file_location("tomwerk_backup", RUNNER)
backup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(backup)

RESTIC = shutil.which("restic")


def needs_restic(test):
    """Runs real restic: heavy (`make test`, not `make unit`), and skipped where restic is missing."""
    reason = "restic is not installed (apt-get install restic; CI installs lab/host-packages.txt)"
    return pytest.mark.heavy(pytest.mark.skipif(RESTIC is None, reason=reason)(test))


PASSWORD = "Correct-Horse-7f3a9c-Battery"  # noqa: S105 (a test repository's password)
CITIES = {"berlin-1": "Berlin", "frankfurt-1": "Frankfurt", "nuremberg-1": "Nuremberg"}
DELETED_CONTENT = b"Kundin Erika Mustermann, IBAN DE02 1203 0000 0000 2020 51, delete me\n"


class Setup:
    """A server with data, a password file and a config for three local repositories."""

    def __init__(self, tmp: Path, locations=tuple(CITIES), template: Path | None = None):
        self.tmp = tmp
        self.data = tmp / "data"
        (self.data / "www" / "shop").mkdir(parents=True)
        (self.data / "etc").mkdir()
        (self.data / "www" / "index.html").write_text("<h1>hello</h1>\n")
        (self.data / "www" / "shop" / "customer-erika.txt").write_bytes(DELETED_CONTENT)
        (self.data / "www" / "big.bin").write_bytes(os.urandom(300_000))
        (self.data / "etc" / "app.conf").write_text("listen = 8443\n")
        (self.data / "etc" / "empty").write_text("")
        (self.data / "www" / "cache").mkdir()
        (self.data / "www" / "cache" / "page.html").write_text("cached\n")
        os.symlink("index.html", self.data / "www" / "home.html")  # not a regular file: not compared
        self.password_file = tmp / "repository.pass"
        self.password_file.write_text(PASSWORD + "\n")
        self.password_file.chmod(0o600)
        self.config_file = tmp / "config.json"
        self.config = {
            "host": "web1",
            "paths": [str(self.data / "www"), str(self.data / "etc")],
            "excludes": [str(self.data / "www" / "cache")],
            "password_file": str(self.password_file),
            "status_file": str(tmp / "state" / "status.json"),
            "drill_file": str(tmp / "state" / "drill.json"),
            "drill_dir": str(tmp / "drill"),
            "cache_dir": str(tmp / "cache"),
            "restic_binary": RESTIC or "/usr/bin/restic",
            "retention": {"keep_daily": 7, "keep_weekly": 4},
            "check_read_data_subset": "50%",
            "locations": [
                {"location": name, "city": CITIES[name], "repository": str(self.repo(name))} for name in locations
            ],
        }
        self.save()
        if template is not None:
            # A copy of an initialised repository saves restic's init (and its key derivation) per test.
            for name in locations:
                shutil.copytree(template, self.repo(name))

    def repo(self, location: str) -> Path:
        return self.tmp / f"repo-{location.split('-')[0]}"

    def location(self, name: str) -> dict:
        return next(entry for entry in self.config["locations"] if entry["location"] == name)

    def save(self) -> None:
        self.config_file.write_text(json.dumps(self.config, indent=2))

    def main(self, *args: str) -> int:
        return backup.main(["--config", str(self.config_file), *args])

    def status(self) -> dict:
        return json.loads(Path(self.config["status_file"]).read_text())["locations"]

    def drill_result(self) -> dict:
        return json.loads(Path(self.config["drill_file"]).read_text())["locations"]

    def restic(self, location: str, *args: str, password_file: Path | None = None) -> subprocess.CompletedProcess:
        env = {
            "PATH": os.environ["PATH"],
            "RESTIC_PASSWORD_FILE": str(password_file or self.password_file),
            "RESTIC_CACHE_DIR": str(self.tmp / "test-cache"),
        }
        return subprocess.run(
            [RESTIC, "--repo", str(self.repo(location)), *args], capture_output=True, text=True, env=env, check=False
        )

    def snapshots(self, location: str) -> list[dict]:
        proc = self.restic(location, "snapshots", "--json")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def files_in(self, location: str, snapshot: str = "latest") -> str:
        proc = self.restic(location, "ls", snapshot)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def find(self, location: str, name: str) -> list[dict]:
        """The snapshots (any, not only the latest) that hold a file called name."""
        proc = self.restic(location, "find", "--json", name)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def blobs(self, location: str) -> set[str]:
        proc = self.restic(location, "list", "blobs")
        assert proc.returncode == 0, proc.stderr
        return {line.split()[1] for line in proc.stdout.splitlines() if line.strip()}


@pytest.fixture(scope="session")
def empty_repository(tmp_path_factory):
    """One initialised repository with PASSWORD, copied into place by the tests that need no init."""
    if RESTIC is None:
        pytest.skip("restic is not installed")
    path = tmp_path_factory.mktemp("template") / "repo"
    password = path.parent / "pass"
    password.write_text(PASSWORD)
    env = {"PATH": os.environ["PATH"], "RESTIC_PASSWORD_FILE": str(password), "RESTIC_CACHE_DIR": str(path.parent)}
    subprocess.run([RESTIC, "--repo", str(path), "init"], capture_output=True, env=env, check=True)
    return path


@pytest.fixture
def server(tmp_path):
    """Three locations without repositories: the first run initialises them."""
    return Setup(tmp_path)


@pytest.fixture
def three_locations(tmp_path, empty_repository):
    """Three locations with initialised, empty repositories."""
    return Setup(tmp_path, tuple(CITIES), empty_repository)


@pytest.fixture
def two_locations(tmp_path, empty_repository):
    """Berlin and Nuremberg with initialised, empty repositories."""
    return Setup(tmp_path, ("berlin-1", "nuremberg-1"), empty_repository)


@pytest.fixture
def one_location(tmp_path, empty_repository):
    return Setup(tmp_path, ("berlin-1",), empty_repository)


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory):
    """Three locations after one run and one drill, each with its exit code and journal lines; read only."""
    if RESTIC is None:
        pytest.skip("restic is not installed")
    setup = Setup(tmp_path_factory.mktemp("backed-up"))
    with contextlib.redirect_stdout(io.StringIO()) as run_log:
        setup.run_code = setup.main("run")
    with contextlib.redirect_stdout(io.StringIO()) as drill_log:
        setup.drill_code = setup.main("drill")
    setup.run_log, setup.drill_log = run_log.getvalue(), drill_log.getvalue()
    return setup


# --------------------------------------------------------------------- run


@needs_restic
def test_a_run_leaves_a_checked_snapshot_in_every_location(backed_up):
    server = backed_up
    assert server.run_code == 0
    status = server.status()
    assert set(status) == set(CITIES)
    for name, entry in status.items():
        snapshots = server.snapshots(name)
        assert len(snapshots) == 1
        assert entry["snapshot_id"] == snapshots[0]["short_id"]
        assert snapshots[0]["hostname"] == "web1"
        assert entry["city"] == CITIES[name]
        assert entry["error"] == ""
        assert entry["last_success"] == entry["last_attempt"] <= time.time()
        assert entry["check_ok"] is True and entry["forget_ok"] is True
        assert entry["added_bytes"] > 300_000 and entry["duration_seconds"] > 0
        listing = server.files_in(name)
        assert "customer-erika.txt" in listing and "app.conf" in listing
        assert "page.html" not in listing  # excluded
    log = server.run_log
    assert log.count("init ok") == 3 and "done: 3 of 3 locations succeeded" in log
    # One journal line per step and location.
    for step in ("backup ok", "forget/prune ok", "check ok (read 50% of the data)"):
        assert log.count(step) == 3, step


@needs_restic
def test_a_broken_location_fails_alone_keeps_its_last_success_and_catches_up(three_locations):
    server = three_locations
    assert server.main("run") == 0
    before = server.status()
    # A file where the repository directory must be: the target's disk is gone.
    frankfurt = server.repo("frankfurt-1")
    frankfurt.rename(server.tmp / "frankfurt-away")
    frankfurt.write_text("not a repository\n")

    assert server.main("run") == 1
    broken = server.status()
    assert broken["frankfurt-1"]["error"].startswith("open: ")
    assert broken["frankfurt-1"]["last_success"] == before["frankfurt-1"]["last_success"]
    assert broken["frankfurt-1"]["last_attempt"] > before["frankfurt-1"]["last_attempt"]
    assert broken["frankfurt-1"]["snapshot_id"] == before["frankfurt-1"]["snapshot_id"]
    assert frankfurt.read_text() == "not a repository\n"  # no init over it
    for name in ("berlin-1", "nuremberg-1"):
        assert broken[name]["error"] == ""
        assert broken[name]["last_success"] == broken[name]["last_attempt"] > before[name]["last_success"]
        assert len(server.snapshots(name)) == 1  # keep_daily: one a day

    frankfurt.unlink()
    (server.tmp / "frankfurt-away").rename(frankfurt)
    assert server.main("run") == 0
    fixed = server.status()["frankfurt-1"]
    assert (
        fixed["error"] == "" and fixed["last_success"] == fixed["last_attempt"] > broken["frankfurt-1"]["last_attempt"]
    )
    assert (
        fixed["snapshot_id"] == server.snapshots("frankfurt-1")[0]["short_id"] != before["frankfurt-1"]["snapshot_id"]
    )


@needs_restic
def test_an_unreachable_sftp_target_fails_alone_without_an_init(two_locations, capsys):
    server = two_locations
    nuremberg = server.location("nuremberg-1")
    nuremberg["repository"] = "sftp:bk-web1@192.0.2.21:/repo"
    nuremberg["sftp_command"] = "false"  # ssh that cannot connect
    server.save()
    assert server.main("run") == 1
    status = server.status()
    assert status["nuremberg-1"]["error"].startswith("open: ")
    assert status["nuremberg-1"]["last_success"] is None
    assert status["nuremberg-1"]["check_ok"] is None and status["nuremberg-1"]["forget_ok"] is None
    assert status["berlin-1"]["error"] == ""
    log = capsys.readouterr().out
    assert "nuremberg-1 (Nuremberg): no repository yet" not in log
    assert "done: 1 of 2 locations succeeded" in log


@needs_restic
def test_a_hanging_target_times_out_and_leaves_no_process(two_locations):
    server = two_locations
    nuremberg = server.location("nuremberg-1")
    nuremberg["repository"] = "sftp:bk-web1@192.0.2.21:/repo"
    nuremberg["sftp_command"] = "sleep 4711"  # connects, never answers
    nuremberg["timeout_seconds"] = 2
    server.save()
    started = time.monotonic()
    assert server.main("run") == 1
    assert time.monotonic() - started < 60
    status = server.status()
    assert status["nuremberg-1"]["error"] == "open: no result within 2 s, stopped"
    assert 2 <= status["nuremberg-1"]["duration_seconds"] < 10
    assert status["berlin-1"]["error"] == ""
    assert not [cmd for cmd in _command_lines() if "sleep 4711" in cmd]


def _command_lines() -> list[str]:
    lines = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                lines.append(Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode())
    return lines


@needs_restic
def test_deleted_data_ages_out_of_every_repository(three_locations):
    """TOM-BAK-03: with keep_last 1, a deleted file is in no snapshot and no pack after the next run."""
    server = three_locations
    server.config["retention"] = {"keep_last": 1}
    server.save()
    assert server.main("run") == 0
    blob = hashlib.sha256(DELETED_CONTENT).hexdigest()  # a small file is one blob, named by its SHA-256
    assert server.find("berlin-1", "customer-erika.txt")
    assert blob in server.blobs("berlin-1")

    (server.data / "www" / "shop" / "customer-erika.txt").unlink()
    assert server.main("run") == 0
    for name in CITIES:
        assert server.status()[name]["forget_ok"] is True
        listing = server.files_in(name)
        assert "index.html" in listing and "customer-erika.txt" not in listing
        assert server.find(name, "customer-erika.txt") == []  # in no snapshot at all
        # Pruned with --max-unused 0: the data itself is gone, not merely unreferenced.
        assert blob not in server.blobs(name)


@needs_restic
def test_a_wrong_password_fails_to_open_and_never_initialises(one_location, tmp_path):
    server = one_location
    assert server.main("run") == 0
    server.password_file.write_text("not-the-password\n")
    assert server.main("run") == 1
    entry = server.status()["berlin-1"]
    assert entry["error"] == "open: wrong password or no key found"
    assert entry["check_ok"] is True  # from the run before: this one did not get that far
    # Still the one repository with the one snapshot, readable with the right password.
    right = tmp_path / "right.pass"
    right.write_text(PASSWORD)
    assert len(json.loads(server.restic("berlin-1", "snapshots", "--json", password_file=right).stdout)) == 1


@needs_restic
def test_a_vanished_repository_is_not_recreated_silently(one_location):
    server = one_location
    assert server.main("run") == 0
    shutil.rmtree(server.repo("berlin-1"))
    assert server.main("run") == 1
    assert "has disappeared" in server.status()["berlin-1"]["error"]
    assert not server.repo("berlin-1").exists()
    assert server.main("run", "--allow-init") == 0
    assert server.status()["berlin-1"]["error"] == ""
    assert len(server.snapshots("berlin-1")) == 1


@needs_restic
def test_paths_this_host_lacks_are_skipped_and_an_unreadable_file_fails_the_run(one_location, capsys):
    """One path list serves all servers; but a file restic cannot read leaves a gap that must be seen."""
    server = one_location
    server.config["paths"] += [str(server.data / "srv"), "/proc/self/mem"]  # mem: restic's read gets EIO
    server.save()
    assert server.main("run") == 1
    status = json.loads(Path(server.config["status_file"]).read_text())
    assert status["skipped_paths"] == [str(server.data / "srv")]
    entry = status["locations"]["berlin-1"]
    assert entry["error"] == "backup: snapshot incomplete, 1 file(s) could not be read (paths in the journal)"
    assert entry["snapshot_id"] == server.snapshots("berlin-1")[0]["short_id"]  # the rest is backed up
    assert entry["check_ok"] is True and entry["forget_ok"] is True and entry["last_success"] is None
    log = capsys.readouterr().out
    assert "skipping configured paths that do not exist here: " in log
    assert "berlin-1 (Berlin): backup: could not read /proc/self/mem" in log


def test_files_that_vanish_during_the_backup_are_no_failure(tmp_path):
    gone = tmp_path / "new" / "1767225600.M1P2.mail1"
    there = tmp_path / "present"
    there.write_text("")
    err = "\n".join(
        [
            json.dumps(
                {"message_type": "error", "error": {"Op": "lstat", "Path": str(gone), "Err": 2}, "item": str(gone)}
            ),
            json.dumps({"message_type": "error", "error": {}, "item": str(tmp_path / "moved")}),  # restic 0.14: {}
            json.dumps({"message_type": "error", "error": {"Op": "read", "Err": 5}, "item": str(there)}),
            "Warning: at least one source file could not be read",
        ]
    )
    assert backup.read_errors(err) == ([str(gone), str(tmp_path / "moved")], [str(there)])


def test_locations_dropped_from_the_config_drop_out_of_the_status(tmp_path):
    server = Setup(tmp_path, ("berlin-1", "nuremberg-1"))
    server.config["restic_binary"] = str(fake_restic(tmp_path))
    server.save()
    assert server.main("run") == 0
    assert set(server.status()) == {"berlin-1", "nuremberg-1"}
    server.config["locations"] = server.config["locations"][:1]
    server.save()
    assert server.main("run") == 0
    assert set(server.status()) == {"berlin-1"}


@needs_restic
def test_a_stale_lock_of_a_killed_restic_is_removed(one_location, capsys):
    """A restic killed by the timeout leaves its lock; restic 0.14 would refuse every later prune and check."""
    server = one_location
    env = {"PATH": os.environ["PATH"], "RESTIC_PASSWORD_FILE": str(server.password_file)}
    env["RESTIC_CACHE_DIR"] = str(server.tmp / "test-cache")
    repo = server.repo("berlin-1")
    stuck = subprocess.Popen(  # waits for stdin for ever, holding a lock
        [RESTIC, "--repo", str(repo), "backup", "--stdin"], stdin=subprocess.PIPE, env=env, stderr=subprocess.DEVNULL
    )
    try:
        # Wait until the lock is complete (readable by restic), not only until its file appears:
        # a restic killed while writing it leaves a broken lock, which restic ignores.
        deadline = time.monotonic() + 30
        while not lock_readable(repo, env) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lock_readable(repo, env)
    finally:
        stuck.kill()
        stuck.wait()
        stuck.stdin.close()
    assert server.main("run") == 0
    assert "repository locked, removing stale locks" in capsys.readouterr().out
    assert server.status()["berlin-1"]["check_ok"] is True


def lock_readable(repo: Path, env: dict) -> bool:
    names = [p.name for p in (repo / "locks").iterdir()]
    return bool(names) and all(
        subprocess.run([RESTIC, "--repo", str(repo), "--no-lock", "cat", "lock", name], env=env, capture_output=True,
                       check=False).returncode == 0
        for name in names
    )  # fmt: skip


def fake_restic(directory: Path) -> Path:
    """A restic that succeeds at once: for the runner's bookkeeping, where restic's work does not matter."""
    path = directory / "fake-restic"
    summary = json.dumps({"message_type": "summary", "data_added": 1, "snapshot_id": "fa4e0001"})
    path.write_text(f'#!/bin/sh\ncase " $* " in *" backup "*) echo \'{summary}\';; esac\n')
    path.chmod(0o755)
    return path


def test_an_unexpected_error_at_one_location_does_not_stop_the_others(tmp_path, monkeypatch):
    server = Setup(tmp_path, ("berlin-1", "nuremberg-1"))
    server.config["restic_binary"] = str(fake_restic(tmp_path))
    server.save()
    real_parse = backup.parse_summary
    calls = []

    def parse_once_broken(out):
        calls.append(out)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real_parse(out)

    monkeypatch.setattr(backup, "parse_summary", parse_once_broken)
    assert server.main("run") == 1
    status = server.status()
    assert status["berlin-1"]["error"] == "internal error: RuntimeError: boom"
    assert status["nuremberg-1"]["error"] == "" and status["nuremberg-1"]["snapshot_id"] == "fa4e0001"


def test_a_second_run_while_one_holds_the_lock_does_nothing(server, capsys):
    lock = Path(server.config["status_file"]).parent / ".tomwerk-backup.lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        assert server.main("run") == 1
        assert server.main("drill") == 1
    assert "in progress; nothing done" in capsys.readouterr().out
    assert not Path(server.config["status_file"]).exists()


# --------------------------------------------------------------------- secrets


@needs_restic
def test_the_password_never_reaches_argv_env_status_drill_or_log(two_locations, monkeypatch, capsys):
    server = two_locations
    calls = []
    real_popen = subprocess.Popen

    def recording_popen(argv, **kwargs):
        calls.append((list(argv), dict(kwargs["env"])))
        return real_popen(argv, **kwargs)

    monkeypatch.setattr(backup.subprocess, "Popen", recording_popen)
    monkeypatch.setenv("RESTIC_PASSWORD", PASSWORD)  # from a careless caller: must not be passed on
    server.location("nuremberg-1")["repository"] = str(server.tmp / "blocked")  # fails: a file
    (server.tmp / "blocked").write_text("")
    server.save()
    assert server.main("run") == 1
    assert server.main("drill") == 1
    assert server.main("status") == 0
    assert calls
    for argv, env in calls:
        assert not [a for a in argv if PASSWORD in a]
        assert not [v for v in env.values() if PASSWORD in v]
        assert env["RESTIC_PASSWORD_FILE"] == str(server.password_file)
        assert env["RESTIC_CACHE_DIR"] == server.config["cache_dir"]
        assert not {"RESTIC_PASSWORD", "RESTIC_PASSWORD_COMMAND", "RESTIC_REPOSITORY"} & set(env)
    captured = capsys.readouterr()
    for text in (
        captured.out,
        captured.err,
        Path(server.config["status_file"]).read_text(),
        Path(server.config["drill_file"]).read_text(),
    ):
        assert PASSWORD not in text


def test_restic_output_is_scrubbed_of_the_password(server, capsys):
    """Belt and braces: should restic ever print the password, it is blanked before the log and the files."""
    fake = server.tmp / "fake-restic"
    fake.write_text('#!/bin/sh\necho "Fatal: cannot open, password was $(cat "$RESTIC_PASSWORD_FILE")" >&2\nexit 1\n')
    fake.chmod(0o755)
    server.config["restic_binary"] = str(fake)
    server.save()
    assert server.main("run") == 1
    assert server.main("drill") == 1
    assert server.status()["berlin-1"]["error"] == "open: cannot open, password was [password]"
    assert server.drill_result()["berlin-1"]["error"] == "snapshots: cannot open, password was [password]"
    log = capsys.readouterr().out
    assert "password was [password]" in log and PASSWORD not in log


def test_an_unreadable_password_file_fails_every_location(server):
    server.password_file.unlink()
    assert server.main("run") == 1
    for entry in server.status().values():
        assert entry["error"].startswith("open: cannot read the password file")


# --------------------------------------------------------------------- drill


@needs_restic
def test_the_drill_restores_byte_identical_data(backed_up):
    server = backed_up
    assert server.drill_code == 0
    result = server.drill_result()
    status = server.status()
    assert set(result) == set(CITIES)
    for name, entry in result.items():
        # index.html, customer-erika.txt, big.bin, app.conf, empty; not the excluded cache, not the symlink
        assert entry["files_compared"] == entry["files_identical"] == 5
        assert entry["mismatches"] == [] and entry["success"] is True and entry["error"] == ""
        assert entry["changed_since_backup"] == entry["deleted_since_backup"] == 0
        assert entry["snapshot_id"] == status[name]["snapshot_id"]
        assert status[name]["last_attempt"] <= entry["snapshot_time"] <= entry["timestamp"]
    assert list(Path(server.config["drill_dir"]).iterdir()) == []  # scratch removed
    assert "drill done: 3 of 3 locations restored identically" in server.drill_log
    assert (Path(server.config["drill_file"]).stat().st_mode & 0o777) == 0o600


@needs_restic
def test_the_drill_detects_a_restore_that_differs(one_location):
    server = one_location
    assert server.main("run") == 0
    # Corrupt: the content differs but the mtime says "unchanged since the backup".
    conf = server.data / "etc" / "app.conf"
    old = conf.stat()
    conf.write_text("listen = 8080\n")
    os.utime(conf, ns=(old.st_atime_ns, old.st_mtime_ns))
    # Changed after the backup (newer mtime): not compared. Deleted: counted.
    time.sleep(0.01)
    (server.data / "www" / "index.html").write_text("<h1>new</h1>\n")
    (server.data / "etc" / "empty").unlink()

    assert server.main("drill") == 1
    entry = server.drill_result()["berlin-1"]
    assert entry["success"] is False
    assert entry["mismatches"] == [str(conf)]
    assert entry["files_compared"] == 3 and entry["files_identical"] == 2
    assert entry["changed_since_backup"] == 1 and entry["deleted_since_backup"] == 1
    assert entry["error"] == "compare: 1 restored file(s) differ from the live files"
    assert list(Path(server.config["drill_dir"]).iterdir()) == []


@needs_restic
def test_a_drill_without_a_snapshot_fails(one_location):
    server = one_location
    assert server.main("drill") == 1
    entry = server.drill_result()["berlin-1"]
    assert entry["success"] is False and entry["error"] == "snapshots: no snapshot of web1 to restore"


def test_status_without_a_run(server, capsys):
    assert server.main("status") == 1
    assert "no backup has run yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-21T17:04:45.975810492Z", 1795280685.975810),
        ("2026-11-21T18:04:45.975810492+01:00", 1795280685.975810),
        ("2026-11-21T17:04:45Z", 1795280685.0),
    ],
)
def test_snapshot_times_with_nanoseconds(text, expected):
    assert backup.snapshot_timestamp(text) == pytest.approx(expected, abs=1e-6)


# --------------------------------------------------------------------- status and config


@needs_restic
def test_status_prints_every_location(backed_up, capsys):
    server = backed_up
    assert server.main("status") == 0
    out = capsys.readouterr().out
    for name, city in CITIES.items():
        # Made by the fixture minutes ago at most (a loaded machine may take a while).
        ago = re.search(rf"{name} \({city}\): last success (\d+\.\d) h ago", out)
        assert ago and float(ago.group(1)) < 1, out
    assert out.count("5/5 identical") == 3


def test_repository_states_of_restic_014_and_later():
    missing = "Fatal: unable to open config file: stat /r/config: no such file or directory\n" + backup.NO_REPOSITORY
    sftp_missing = "Fatal: unable to open config file: Lstat: file does not exist\n" + backup.NO_REPOSITORY
    denied = "Fatal: unable to open config file: Lstat: permission denied\n" + backup.NO_REPOSITORY
    assert backup.repository_state(1, "", missing) == "missing"
    assert backup.repository_state(1, "", sftp_missing) == "missing"
    assert backup.repository_state(1, "", denied) == "unreachable"
    assert backup.repository_state(1, "", "Fatal: wrong password or no key found\n") == "wrong-password"
    assert backup.repository_state(10, "", "Fatal: repository does not exist") == "missing"
    assert backup.repository_state(12, "", "Fatal: wrong password") == "wrong-password"
    assert backup.repository_state(1, "", "Fatal: unable to start the sftp session, error: EOF") == "unreachable"
    assert backup.repository_state(0, "{}", "") == "ok"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.pop("paths"), "paths must be a list of absolute paths"),
        (lambda c: c.update(paths=[]), "paths must name at least one path"),
        (lambda c: c.update(paths=["var/www"]), "paths must be a list of absolute paths"),
        (lambda c: c.update(host=""), "host must be a non-empty string"),
        (lambda c: c.update(password_file="repository.pass"), "password_file must be an absolute path"),  # noqa: S106
        (lambda c: c.update(retention={"keep_daily": 0}), "retention must keep something"),
        (lambda c: c.update(retention={"keep_within": "30d"}), "retention has unknown keys keep_within"),
        (lambda c: c.update(retention={"keep_daily": -1}), "retention.keep_daily must be an integer >= 0"),
        (lambda c: c.update(retention={"keep_daily": True}), "retention.keep_daily must be an integer >= 0"),
        (lambda c: c.pop("retention"), "retention must be an object"),
        (lambda c: c.update(check_read_data_subset="some"), "check_read_data_subset must be null"),
        (lambda c: c.update(timeout_seconds=0), "timeout_seconds must be a positive integer"),
        (lambda c: c.update(locations=[]), "locations must be a non-empty list"),
        (lambda c: c["locations"].append(dict(c["locations"][0])), "locations[4].location berlin-1 is not unique"),
        (lambda c: c["locations"][1].update(location="Frankfurt 1"), "locations[2].location must match"),
        (lambda c: c["locations"][2].pop("city"), "locations[3].city must be a non-empty string"),
        (lambda c: c["locations"][0].update(sftp_command=""), "locations[1].sftp_command must be a non-empty"),
        (lambda c: c.update(drill_dir=c["paths"][0].rsplit("/", 1)[0]), "contains the backup path"),
        (lambda c: c.update(drill_dir="/"), "drill_dir must not be /"),
        (lambda c: c.update(prune_max_unused="some"), "prune_max_unused must be"),
    ],
)
def test_a_bad_config_exits_2_naming_the_key(server, change, message, capsys):
    change(server.config)
    server.save()
    assert server.main("run") == 2
    err = capsys.readouterr().err
    assert err.startswith("tomwerk-backup: config error: ") and message in err, err
    assert not Path(server.config.get("status_file", "/nonexistent")).exists()


@pytest.mark.parametrize("content", [None, "{not json", "[]"], ids=["missing", "not-json", "not-an-object"])
def test_an_unreadable_config_exits_2(server, content, capsys):
    if content is None:
        server.config_file.unlink()
    else:
        server.config_file.write_text(content)
    assert server.main("drill") == 2
    assert "config error" in capsys.readouterr().err


def test_config_defaults():
    config = backup.Config(
        {
            "host": "web1",
            "paths": ["/etc/"],
            "password_file": "/etc/tomwerk/backup/repository.pass",
            "status_file": "/var/lib/tomwerk/backup/status.json",
            "drill_file": "/var/lib/tomwerk/backup/drill.json",
            "retention": {"keep_daily": 7, "keep_weekly": 4, "keep_monthly": 0},
            "locations": [{"location": "berlin-1", "city": "Berlin", "repository": "sftp:bk@h:/repo"}],
        }
    )
    assert config.paths == ["/etc"] and config.excludes == []
    assert config.drill_dir == "/var/tmp/tomwerk-restore-drill"  # noqa: S108
    assert config.cache_dir == "/var/cache/tomwerk-backup"
    assert config.restic == "/usr/bin/restic" and config.check_read_data_subset is None
    assert config.locations[0].timeout == 3600 and config.locations[0].sftp_command is None
    assert config.retention == {"keep_daily": 7, "keep_weekly": 4}  # zero counts are left out
    assert config.prune_max_unused == "0"


# --------------------------------------------------------------------- the file itself


def test_runner_uses_only_the_standard_library():
    for node in ast.walk(ast.parse(RUNNER.read_text())):
        if isinstance(node, ast.Import):
            assert all(a.name.split(".")[0] in sys.stdlib_module_names for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            # tomwerk_host.values: its own package, standard library only itself
            assert (
                node.module in ("__future__", "tomwerk_host.values")
                or node.module.split(".")[0] in sys.stdlib_module_names
            )


@pytest.mark.skipif(not shutil.which("python3.11"), reason="no Python 3.11 interpreter on this machine")
def test_runner_runs_with_python_311(server):
    """As installed: tomwerk-backup from the host zipapp, run by Debian 12's Python 3.11."""
    proc = subprocess.run(
        [*hostpkg.command("backup", "python3.11"), "--config", str(server.config_file), "status"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        check=False,
    )
    assert proc.returncode == 1 and "no backup has run yet" in proc.stdout, proc.stderr
