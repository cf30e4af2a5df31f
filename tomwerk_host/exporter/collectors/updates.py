"""TOM-UPD-01: software updates are installed at least weekly.

The role updates installs unattended-upgrades and tomwerk-updates-status
(tomwerk_host/updates_status.py). That command records each
run's outcome in updates_status_file, which this module reads, and its
`pending` subcommand (updates_status_command) lists pending upgrades.

TOM-UPD-01 holds iff the last successful run is at most updates_max_age_days
old and no security update has been pending longer than
updates_security_max_pending_days. A failed run alone is no finding (the
next one may succeed); the alert UpdatesRunFailed reports it.

`pending` needs apt-get -s dist-upgrade: seconds of CPU and some 80 MB, as apt
parses every package list (in memory under the exporter's read-only /var).
The command therefore reuses the result it stored while apt's inputs (dpkg
status, package lists) are unchanged; the role refreshes it after each list
update and upgrade run. On top, this collector keeps the command's output for
PENDING_CACHE_SECONDS, beyond the framework's --min-interval, and drops it
early when a new run is recorded. The limits are days: minutes of staleness
do not matter.

Only counts and times leave this module: no package names.
"""

from __future__ import annotations

import datetime as dt
import time

from ..core import CheckError, Collector, Host, Report, State, StateError, is_count, is_number, json_object

TOM = "TOM-UPD-01"
DAY = 86400
PENDING_CACHE_SECONDS = 300.0


def _utc(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


class UpdatesCollector(Collector):
    name = "updates"
    role = "updates"
    toms = (TOM,)

    def __init__(self, now=time.time, clock=time.monotonic, pending_cache_seconds: float = PENDING_CACHE_SECONDS):
        self._now = now  # wall clock for the ages; injectable for tests
        self._clock = clock  # monotonic clock for the cache of `pending`
        self._cache_seconds = pending_cache_seconds
        # (argv, last_run_timestamp it was made after, monotonic time, parsed output)
        self._pending: tuple[tuple[str, ...], object, float, dict] | None = None

    def check(self, state: State, host: Host) -> Report:
        interval_days = state.integer("updates_interval_days", 1, 7)
        max_age_days = state.integer("updates_max_age_days", 1, 7)
        max_pending_days = state.integer("updates_security_max_pending_days", 1, 7)
        if max_age_days < interval_days:
            raise StateError(f"{state.role}.json: vars.updates_max_age_days is shorter than the interval", state.toms)
        if max_pending_days > max_age_days:
            raise StateError(
                f"{state.role}.json: vars.updates_security_max_pending_days is longer than updates_max_age_days",
                state.toms,
            )
        path = state.text("updates_status_file")
        argv = tuple(state.texts("updates_status_command"))
        if not path.startswith("/") or not argv or not argv[0].startswith("/"):
            raise StateError(
                f"{state.role}.json: vars.updates_status_file and the command in updates_status_command "
                "must be absolute paths",
                state.toms,
            )
        text = host.read_optional(path)
        status = run_status(text, path) if text is not None else None
        pending = self._pending_updates(host, argv, (status or {}).get("last_run_timestamp"))
        now = self._now()
        report = Report()
        self._runs(report, status, path, max_age_days, now)
        self._pending_report(report, pending, max_pending_days, now)
        return report

    def _pending_updates(self, host: Host, argv: tuple[str, ...], last_run: object) -> dict:
        now = self._clock()
        cached = self._pending
        if cached and cached[0] == argv and cached[1] == last_run and now - cached[2] < self._cache_seconds:
            return cached[3]
        # A failure is not cached: the next check tries again.
        result = pending_output(host.output(argv))
        self._pending = (argv, last_run, now, result)
        return result

    def _runs(self, report: Report, status: dict | None, path: str, max_age_days: int, now: float) -> None:
        max_age = max_age_days * DAY
        last_success = (status or {}).get("last_success_timestamp")
        if status is None:
            report.require(TOM, False, f"no unattended-upgrades run has been recorded yet ({path} is missing)")
            status = {}
        elif last_success is None:
            report.require(TOM, False, "no successful unattended-upgrades run is recorded")
        else:
            report.require(
                TOM,
                now - last_success <= max_age,
                f"the last successful unattended-upgrades run ({_utc(last_success)}) is older than {max_age_days} days",
            )
            report.gauge(
                "tomwerk_updates_last_success_timestamp_seconds",
                "Unix time the last successful unattended-upgrades run started (TOM-UPD-01); absent when none "
                "is recorded.",
                last_success,
            )
        if status.get("last_run_timestamp") is not None:
            report.gauge(
                "tomwerk_updates_last_run_timestamp_seconds",
                "Unix time the last unattended-upgrades run started, successful or not (TOM-UPD-01); absent "
                "when none is recorded.",
                status["last_run_timestamp"],
            )
            report.gauge(
                "tomwerk_updates_last_run_success",
                "1 if the last unattended-upgrades run succeeded, 0 if it failed (reason: tomwerk-updates-status "
                "show); absent when none is recorded.",
                1 if status["last_run_success"] else 0,
            )
            report.gauge(
                "tomwerk_updates_last_run_packages_upgraded",
                "Packages the last unattended-upgrades run upgraded (0 when it failed); absent when none is recorded.",
                status["packages_upgraded"],
            )
        report.gauge(
            "tomwerk_updates_max_age_seconds",
            "Age the last successful unattended-upgrades run may reach (TOM-UPD-01), from updates_max_age_days.",
            max_age,
        )

    def _pending_report(self, report: Report, pending: dict, max_pending_days: int, now: float) -> None:
        max_pending = max_pending_days * DAY
        oldest = pending["oldest_security_first_seen_timestamp"]
        if oldest is not None:
            report.require(
                TOM,
                now - oldest <= max_pending,
                f"{pending['security']} security update(s) pending, the oldest since {_utc(oldest)}, "
                f"longer than {max_pending_days} days",
            )
            report.gauge(
                "tomwerk_updates_oldest_pending_security_timestamp_seconds",
                "Unix time the oldest pending security update was first seen (TOM-UPD-01); absent when none "
                "is pending.",
                oldest,
            )
        for kind in ("security", "other"):
            report.gauge(
                "tomwerk_updates_pending",
                "Upgrades apt-get -s dist-upgrade would install, by kind: security (from a *-security suite) "
                "or other (TOM-UPD-01).",
                pending[kind],
                kind=kind,
            )
        report.gauge(
            "tomwerk_updates_security_max_pending_seconds",
            "How long a security update may stay pending (TOM-UPD-01), from updates_security_max_pending_days.",
            max_pending,
        )
        report.gauge(
            "tomwerk_updates_reboot_required",
            "1 if /var/run/reboot-required exists (an update waits for a reboot), else 0.",
            1 if pending["reboot_required"] else 0,
        )
        if pending["reboot_required_since_timestamp"] is not None:
            report.gauge(
                "tomwerk_updates_reboot_required_since_timestamp_seconds",
                "Unix time a required reboot was first seen; absent when none is required.",
                pending["reboot_required_since_timestamp"],
            )


def run_status(text: str, path: str) -> dict:
    """The status file with the fields the check reads in their types (null: no run of that kind yet)."""
    data = json_object(text, path)
    for field in ("last_run_timestamp", "last_success_timestamp"):
        if data.get(field) is not None and not is_number(data[field]):
            raise CheckError(f"{path}: {field} is not a number")
    if data.get("last_run_timestamp") is not None:
        if not isinstance(data.get("last_run_success"), bool):
            raise CheckError(f"{path}: last_run_success is not true or false")
        count = data.get("packages_upgraded")
        if not is_number(count) or count < 0:
            raise CheckError(f"{path}: packages_upgraded is not a count")
    return data


def pending_output(text: str) -> dict:
    """tomwerk-updates-status pending output, with the fields the check reads in their types."""
    data = json_object(text, "tomwerk-updates-status pending", "printed no JSON object")
    for field in ("security", "other"):
        if not is_count(data.get(field)):
            raise CheckError(f"tomwerk-updates-status pending printed no count {field}")
    if not isinstance(data.get("reboot_required"), bool):
        raise CheckError("tomwerk-updates-status pending printed no reboot_required")
    for field in ("oldest_security_first_seen_timestamp", "reboot_required_since_timestamp"):
        value = data.get(field, "missing")
        if value is not None and not is_number(value):
            raise CheckError(f"tomwerk-updates-status pending printed no {field}")
    # A count without a time (or the reverse) would hide an overdue update.
    if (data["security"] > 0) != (data["oldest_security_first_seen_timestamp"] is not None):
        raise CheckError("tomwerk-updates-status pending printed security updates without first-seen time")
    return data
