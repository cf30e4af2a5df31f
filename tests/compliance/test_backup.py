"""TOM-BAK-01..03: encrypted backups of this server, at least daily, in three cities,
with retention; proven by asking the repositories themselves and by a real restore."""

from __future__ import annotations

import datetime as dt
import json
import shlex

import pytest

ROLE = "backup"
CONFIG = "/etc/tomwerk/backup/config.json"
# A file the role writes and never changes between runs: restored and compared.
PROBE_FILE = "/etc/tomwerk/state/backup.json"


@pytest.fixture(scope="module")
def config(host) -> dict:
    return json.loads(host.file(CONFIG).content_string)


def restic(host, config: dict, location: dict, args: str, password_file: str | None = None):
    password = shlex.quote(password_file or config["password_file"])
    env = f"RESTIC_PASSWORD_FILE={password} RESTIC_CACHE_DIR=/var/cache/tomwerk-backup"
    sftp = shlex.quote(f"sftp.command={location['sftp_command']}")
    return host.run(f"{env} restic -r {shlex.quote(location['repository'])} -o {sftp} {args}")


@pytest.fixture(scope="module")
def latest(host, config) -> dict[str, dict]:
    """The newest snapshot of each location, as its repository reports it."""
    found = {}
    for location in config["locations"]:
        result = restic(host, config, location, "snapshots --json --latest 1")
        snaps = json.loads(result.stdout) if result.rc == 0 else []
        found[location["location"]] = {"city": location["city"], "snapshot": snaps[-1] if snaps else None,
                                       "error": result.stderr.strip()[-200:] if result.rc else ""}  # fmt: skip
    return found


def age_hours(snapshot: dict) -> float:
    taken = dt.datetime.fromisoformat(snapshot["time"].replace("Z", "+00:00"))
    return (dt.datetime.now(dt.UTC) - taken).total_seconds() / 3600


@pytest.mark.tom("TOM-BAK-01")
def test_config_matches_the_inventory(config, role_vars, evidence):
    """The runner backs up to exactly the locations the inventory names."""
    wanted = sorted((loc["location"], loc["city"]) for loc in role_vars["backup_locations"])
    have = sorted((loc["location"], loc["city"]) for loc in config["locations"])
    evidence("locations", have)
    assert have == wanted
    assert config["retention"] == dict(role_vars["backup_retention"])


@pytest.mark.tom("TOM-BAK-01")
def test_backup_runs_at_least_daily(host, role_vars, evidence):
    """The timer is active, fires at each of backup_times every day, and catches up after downtime."""
    timer = host.service("tomwerk-backup.timer")
    calendar = host.check_output("systemctl show tomwerk-backup.timer -p TimersCalendar --value")
    persistent = host.check_output("systemctl show tomwerk-backup.timer -p Persistent --value")
    evidence("timer", calendar)
    assert timer.is_enabled and timer.is_running
    for time in role_vars["backup_times"]:
        assert f"*-*-* {time}:00" in calendar
    assert persistent == "yes"


@pytest.mark.tom("TOM-BAK-01")
def test_every_location_has_a_fresh_snapshot(latest, role_vars, evidence):
    """Each location's repository holds a snapshot younger than backup_max_age_hours."""
    ages = {loc: round(age_hours(v["snapshot"]), 2) if v["snapshot"] else None for loc, v in latest.items()}
    evidence("snapshot age (hours)", ages)
    for loc, value in latest.items():
        assert value["snapshot"], f"{loc}: no snapshot ({value['error']})"
        assert ages[loc] < role_vars["backup_max_age_hours"], loc


@pytest.mark.tom("TOM-BAK-01")
def test_repositories_need_their_password(host, config, evidence):
    """Without the right password a repository does not open: the backups are encrypted."""
    wrong = host.check_output("mktemp")
    host.check_output(f"head -c 24 /dev/urandom | base64 > {wrong}")
    try:
        outcomes = {loc["location"]: restic(host, config, loc, "cat config", wrong) for loc in config["locations"]}
    finally:
        host.run(f"rm -f {wrong}")
    evidence("with a wrong password", {k: v.stderr.strip().splitlines()[-1:] for k, v in outcomes.items()})
    for loc, result in outcomes.items():
        assert result.rc != 0, loc
        assert "wrong password" in result.stderr.lower(), result.stderr


@pytest.mark.tom("TOM-BAK-01")
def test_a_file_restores_identically_from_every_location(host, config, latest, evidence):
    """A real restore: a file from the latest snapshot of each location equals the live file."""
    live = host.file(PROBE_FILE).sha256sum
    restored = {}
    for location in config["locations"]:
        target = host.check_output("mktemp -d")
        result = restic(host, config, location, f"restore latest --include {PROBE_FILE} --target {target}")
        copy = host.file(f"{target}{PROBE_FILE}")
        restored[location["location"]] = copy.sha256sum if result.rc == 0 and copy.exists else result.stderr[-200:]
        host.run(f"rm -rf {target}")
    evidence("sha256 live / restored", {"live": live, **restored})
    assert all(value == live for value in restored.values()), restored


@pytest.mark.tom("TOM-BAK-02")
def test_copies_in_at_least_three_cities(latest, role_vars, evidence):
    """Fresh snapshots exist in at least backup_min_cities different cities, on different hosts."""
    max_age = role_vars["backup_max_age_hours"]
    fresh = {v["city"] for v in latest.values() if v["snapshot"] and age_hours(v["snapshot"]) < max_age}
    evidence("cities with a fresh copy", sorted(fresh))
    assert len(fresh) >= role_vars["backup_min_cities"] >= 3
    hosts = [loc["host"] for loc in role_vars["backup_locations"]]
    assert len(set(hosts)) == len(hosts)


@pytest.mark.tom("TOM-BAK-03")
def test_retention_keeps_a_finite_window(host, config, role_vars, evidence):
    """The last run applied forget --prune everywhere, and no location keeps more snapshots than the policy allows."""
    status = json.loads(host.file(json.loads(host.file(CONFIG).content_string)["status_file"]).content_string)
    bound = sum(int(v) for v in role_vars["backup_retention"].values())
    counts = {}
    for location in config["locations"]:
        result = restic(host, config, location, "snapshots --json")
        counts[location["location"]] = len(json.loads(result.stdout)) if result.rc == 0 else None
    evidence("snapshots per location", counts)
    evidence("forget ok", {k: v.get("forget_ok") for k, v in status["locations"].items()})
    for location in config["locations"]:
        assert status["locations"][location["location"]]["forget_ok"] is True, location["location"]
        assert counts[location["location"]] is not None and counts[location["location"]] <= bound
