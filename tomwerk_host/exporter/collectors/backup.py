"""TOM-BAK-01, TOM-BAK-02, TOM-BAK-03: the backups of this host, as the backup runner recorded them.

roles/backup runs tomwerk-backup (tomwerk_host/backup.py), which
writes a status file after every run and a drill file after every restore
drill; this collector reads both (no restic at scrape time: a check of three
remote repositories takes minutes, a scrape must not).

TOM-BAK-01: every configured location has a success younger than
backup_max_age_hours, and its latest repository check passed.
TOM-BAK-02: successes that young exist in at least backup_min_cities cities.
TOM-BAK-03: a retention policy that removes something is configured, and the
latest forget/prune succeeded at every location.
No status file yet (the first run has not finished) fails all three, as a
finding. The restore drill is exported but not part of the verdicts.

Per-location series carry location and city, names from the inventory;
repositories, addresses, error texts and the drill's file names never leave
this module.
"""

from __future__ import annotations

import json
import re
import time

from ..core import CheckError, Collector, Host, Report, State, StateError, looks_personal, to_int

DAILY = "TOM-BAK-01"
CITIES = "TOM-BAK-02"
RETENTION = "TOM-BAK-03"

HOUR = 3600
LOCATION_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
# The runner's keep_* options (tomwerk_backup.RETENTION_KEYS).
RETENTION_KEYS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")


class BackupCollector(Collector):
    name = "backup"
    role = "backup"
    toms = (DAILY, CITIES, RETENTION)

    def __init__(self, now=time.time) -> None:
        self._now = now  # wall clock for the age of the last success; injectable for tests

    def check(self, state: State, host: Host) -> Report:
        status_file = absolute_path(state, "backup_status_file")
        drill_file = absolute_path(state, "backup_drill_file")
        max_age = state.integer("backup_max_age_hours", 1, 24 * 31) * HOUR
        min_cities = state.integer("backup_min_cities", 1, 100)
        locations = configured_locations(state)
        retention = retention_counts(state)
        status = read_locations(host, status_file, "status", STATUS_FIELDS)
        drill = read_locations(host, drill_file, "drill", DRILL_FIELDS)
        now = self._now()

        report = Report()
        report.gauge(
            "tomwerk_backup_locations_configured",
            "Backup locations configured for this host (backup_locations).",
            len(locations),
            tom=CITIES,
        )
        report.gauge(
            "tomwerk_backup_max_age_seconds",
            "Age the last successful backup of a location may reach (backup_max_age_hours, TOM-BAK-01).",
            max_age,
            tom=DAILY,
        )
        report.gauge(
            "tomwerk_backup_min_cities",
            "Cities that must hold a fresh backup (backup_min_cities, TOM-BAK-02).",
            min_cities,
            tom=CITIES,
        )
        report.require(
            RETENTION,
            any(retention.values()),
            "no retention policy keeps a finite window (every keep_* is 0): forget would keep every snapshot",
        )
        if status is None:
            reason = f"no backup has run yet ({status_file} is missing)"
            for tom in self.toms:
                report.require(tom, False, reason)
            report.gauge("tomwerk_backup_fresh_cities", FRESH_CITIES_HELP, 0, tom=CITIES)
            return report

        fresh_cities = set()
        for location, city in locations:
            labels = {"location": location, "city": city}
            where = f"{location} ({city})"
            entry = status.get(location)
            if entry is None:
                report.require(DAILY, False, f"no backup to {where} has run yet")
                report.require(RETENTION, False, f"no forget/prune at {where} has run yet")
                continue
            self._location_figures(report, entry, labels)
            success = entry["last_success"]
            if success is None:
                report.require(DAILY, False, f"no backup to {where} has succeeded yet")
            elif now - success > max_age:
                report.require(
                    DAILY,
                    False,
                    f"the last successful backup to {where} is {(now - success) / HOUR:.1f} h old "
                    f"(limit {max_age // HOUR} h)",
                )
            else:
                fresh_cities.add(city)
            report.require(DAILY, entry["check_ok"] is not False, f"the last repository check at {where} failed")
            report.require(
                RETENTION,
                entry["forget_ok"] is True,
                f"the last forget/prune at {where} failed"
                if entry["forget_ok"] is False
                else f"no forget/prune at {where} has run yet",
            )
            if drill is not None and location in drill:
                report.gauge(
                    "tomwerk_backup_restore_drill_timestamp_seconds",
                    "Unix time of the newest restore drill from the location.",
                    drill[location]["timestamp"],
                    tom=DAILY,
                    **labels,
                )
                report.gauge(
                    "tomwerk_backup_restore_drill_success",
                    "1 if the newest restore drill from the location restored every file identically, else 0 "
                    "(TOM-BAK-01).",
                    1 if drill[location]["success"] else 0,
                    tom=DAILY,
                    **labels,
                )
        report.require(
            CITIES,
            len(fresh_cities) >= min_cities,
            f"backups younger than {max_age // HOUR} h are in {len(fresh_cities)} cities"
            f"{' (' + ', '.join(sorted(fresh_cities)) + ')' if fresh_cities else ''}, fewer than {min_cities}",
        )
        report.gauge("tomwerk_backup_fresh_cities", FRESH_CITIES_HELP, len(fresh_cities), tom=CITIES)
        return report

    def _location_figures(self, report: Report, entry: dict, labels: dict) -> None:
        report.gauge(
            "tomwerk_backup_last_attempt_timestamp_seconds",
            "Unix time the latest backup run to the location started.",
            entry["last_attempt"],
            tom=DAILY,
            **labels,
        )
        report.gauge(
            "tomwerk_backup_last_run_success",
            "1 if the latest backup run to the location succeeded in every step, else 0 (reason in the journal "
            "of tomwerk-backup.service).",
            1 if entry["error"] == "" else 0,
            tom=DAILY,
            **labels,
        )
        report.gauge(
            "tomwerk_backup_duration_seconds",
            "How long the latest backup run to the location took.",
            entry["duration_seconds"],
            tom=DAILY,
            **labels,
        )
        optional = (
            (
                "tomwerk_backup_last_success_timestamp_seconds",
                "Unix time the latest successful backup run to the location started (TOM-BAK-01); "
                "absent before the first success.",
                entry["last_success"],
                DAILY,
            ),
            (
                "tomwerk_backup_added_bytes",
                "Bytes the newest snapshot added to the location's repository, after deduplication.",
                entry["added_bytes"],
                DAILY,
            ),
            (
                "tomwerk_backup_check_success",
                "1 if the latest restic check of the location's repository passed, else 0 (TOM-BAK-01); "
                "absent before the first check.",
                None if entry["check_ok"] is None else int(entry["check_ok"]),
                DAILY,
            ),
            (
                "tomwerk_backup_forget_success",
                "1 if the latest forget/prune by the retention policy succeeded at the location, else 0 "
                "(TOM-BAK-03); absent before the first one.",
                None if entry["forget_ok"] is None else int(entry["forget_ok"]),
                RETENTION,
            ),
        )
        for name, documentation, value, tom in optional:
            if value is not None:
                report.gauge(name, documentation, value, tom=tom, **labels)


FRESH_CITIES_HELP = "Distinct cities with a backup of this host younger than backup_max_age_hours (TOM-BAK-02)."

# The fields each file's entries must have, and their types (None: null allowed).
NUMBER = (int, float)
STATUS_FIELDS = {
    "last_attempt": NUMBER,
    "last_success": (*NUMBER, type(None)),
    "duration_seconds": NUMBER,
    "added_bytes": (int, type(None)),
    "check_ok": (bool, type(None)),
    "forget_ok": (bool, type(None)),
    "error": (str,),
}
DRILL_FIELDS = {"timestamp": NUMBER, "success": (bool,)}


def absolute_path(state: State, name: str) -> str:
    path = state.text(name)
    if not path.startswith("/"):
        raise StateError(f"{state.role}.json: vars.{name} is not an absolute path", state.toms)
    return path


def configured_locations(state: State) -> list[tuple[str, str]]:
    """(location, city) of every configured location; both become label values."""
    value = state.value("backup_locations")
    where = f"{state.role}.json: vars.backup_locations"
    if not isinstance(value, list) or not value:
        raise StateError(f"{where} is not a non-empty list", state.toms)
    found, names = [], set()
    for number, entry in enumerate(value, 1):
        location = entry.get("location") if isinstance(entry, dict) else None
        city = entry.get("city") if isinstance(entry, dict) else None
        if not isinstance(location, str) or not LOCATION_NAME.match(location):
            raise StateError(f"{where}: entry {number} has no location name like berlin-1", state.toms)
        if not isinstance(city, str) or not city.strip():
            raise StateError(f"{where}: entry {number} has no city", state.toms)
        # Labels name places, never hosts' addresses.
        if looks_personal(location) or looks_personal(city):
            raise StateError(f"{where}: entry {number} names an address, not a place", state.toms)
        if location in names:
            raise StateError(f"{where}: location {location} is listed twice", state.toms)
        names.add(location)
        found.append((location, city))
    return found


def retention_counts(state: State) -> dict[str, int]:
    value = state.value("backup_retention")
    where = f"{state.role}.json: vars.backup_retention"
    if not isinstance(value, dict):
        raise StateError(f"{where} is not an object", state.toms)
    counts = {}
    for key, count in value.items():
        number = to_int(count)
        if key not in RETENTION_KEYS or number is None or number < 0:
            raise StateError(f"{where}: {key} is not a keep_* count >= 0", state.toms)
        counts[key] = number
    return counts


def read_locations(host: Host, path: str, kind: str, fields: dict) -> dict[str, dict] | None:
    """The per-location entries of the runner's status or drill file; None when there is no file yet."""
    text = host.read_optional(path)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    locations = data.get("locations") if isinstance(data, dict) else None
    if not isinstance(locations, dict):
        raise CheckError(f"the backup {kind} file {path} is not the runner's JSON")
    for name, entry in locations.items():
        if not isinstance(entry, dict):
            raise CheckError(f"the backup {kind} file {path}: entry {name} is not an object")
        for field, types in fields.items():
            value = entry.get(field, "missing")
            # bool is an int in Python: a flag in a number field is an error too.
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                raise CheckError(f"the backup {kind} file {path}: {field} of {name} is missing or of the wrong type")
    return locations
