"""TOM-AV-01: servers are scanned for malware; TOM-AV-02: incoming mail is scanned, not kept.

The role antivirus runs clamd and tomwerk-antivirus-scan.timer, which writes
each completed scan's result to antivirus_result_file
(tomwerk_host/antivirus_scan.py). This module reads it.

TOM-AV-01 holds iff clamd answers, the newest signature database is at most
antivirus_signature_max_age_days old, the last completed scan is at most
antivirus_scan_max_age_hours old, and it found nothing. The signature time is
the build time in a .cvd/.cld/.cud header (freshclam's databases), else the
file's mtime (a local database such as tomwerk.hdb).

TOM-AV-02 (mail hosts) promises a virus and a spam check of incoming mail.
It holds iff both halves are there and work: clamav-milter runs and postfix's
smtpd_milters and non_smtpd_milters contain it (antivirus_mail_milter), and,
from the role spam_filter's state, spamd answers, spamass-milter runs and
smtpd_milters contains it. A host with only one of the two roles' mail parts
fails TOM-AV-02 and says which half is missing.

Only counts and times leave this module: no file names.
"""

from __future__ import annotations

import time

from ..core import CheckError, Collector, Host, Report, State, is_number, json_object, load_state

AV = "TOM-AV-01"
MAIL = "TOM-AV-02"
DAY = 86400
HOUR = 3600
# ClamAV database files (clamd loads these from its DatabaseDirectory).
DB_SUFFIXES = (
    ".cvd", ".cld", ".cud", ".hdb", ".hsb", ".hdu", ".hsu", ".mdb", ".msb", ".mdu", ".msu",
    ".ndb", ".ndu", ".ldb", ".ldu", ".cdb", ".db", ".ign2", ".fp", ".sfp", ".pdb", ".wdb",
    ".ftm", ".idb", ".cbc", ".yar", ".yara", ".crb", ".cat", ".pwdb", ".info",
)  # fmt: skip
CVD_SUFFIXES = (".cvd", ".cld", ".cud")


def cvd_build_time(header: str) -> float | None:
    """Build time (Unix seconds) from a CVD header "ClamAV-VDB:date:version:sigs:flevel:md5:dsig:builder:stime"."""
    if not header.startswith("ClamAV-VDB:"):
        return None
    # The build date itself holds a colon ("21 Nov 2026 07:26 +0000"): stime is the last field.
    fields = header[:512].split(":")
    if len(fields) < 9:
        return None
    stime = fields[-1].strip()
    return float(stime) if stime.isdigit() else None


def scan_result(text: str, path: str) -> dict:
    """The result file with the fields the check reads in their types."""
    data = json_object(text, path)
    last = data.get("last_completed_timestamp")
    if last is not None:
        if not is_number(last):
            raise CheckError(f"{path}: last_completed_timestamp is not a number")
        for field in ("files_scanned", "infected_files", "errors"):
            value = data.get(field)
            if not is_number(value) or value < 0:
                raise CheckError(f"{path}: {field} is not a count")
    return data


MILTER_SETTINGS = ("smtpd_milters", "non_smtpd_milters")


def postfix_milters(host: Host) -> dict[str, list[str]]:
    """The milters postfix hands mail to: received over SMTP, and submitted locally."""
    lines = [*host.output(("postconf", "-h", *MILTER_SETTINGS)).splitlines(), "", ""][: len(MILTER_SETTINGS)]
    return {name: value.replace(",", " ").split() for name, value in zip(MILTER_SETTINGS, lines, strict=True)}


def service_active(host: Host, unit: str) -> bool:
    try:
        return host.output(("systemctl", "is-active", unit)).strip() == "active"
    except CheckError:
        return False


class AntivirusCollector(Collector):
    name = "antivirus"
    role = "antivirus"
    toms = (AV, MAIL)
    also_roles = ("spam_filter",)

    def __init__(self, now=time.time):
        self._now = now

    def check(self, state: State, host: Host) -> Report:
        max_scan_hours = state.integer("antivirus_scan_max_age_hours", 1, 48)
        max_sig_days = state.integer("antivirus_signature_max_age_days", 1, 7)
        db_dir = state.text("antivirus_database_dir")
        result_file = state.text("antivirus_result_file")
        now = self._now()
        report = Report()
        self._clamd(report, host)
        self._signatures(report, host, db_dir, max_sig_days, now)
        self._scan(report, host, result_file, max_scan_hours, now)
        spam = load_state(host, state.directory, "spam_filter")
        # One postconf call serves both milter checks.
        milters = postfix_milters(host) if MAIL in state.toms or spam is not None else {}
        if MAIL in state.toms:
            self._milter(report, host, state.text("antivirus_postfix_milter"), milters)
        elif spam is not None:
            report.require(MAIL, False, "incoming mail gets no virus check (antivirus_mail_milter is off)")
        if spam is not None:
            self._spam(report, host, spam.text("spam_filter_postfix_milter"), milters)
        elif MAIL in state.toms:
            report.require(MAIL, False, "incoming mail gets no spam check (role spam_filter is not applied)")
        return report

    def _clamd(self, report: Report, host: Host) -> None:
        try:
            out = host.output(("clamdscan", "--ping", "1"))
            up = "PONG" in out
            reason = f"clamd answered {out.strip()[:60]!r} to PING"
        except CheckError as exc:
            up, reason = False, f"clamd does not answer: {exc}"
        report.require_and_gauge(
            AV, up, reason, "tomwerk_antivirus_clamd_up", "1 if clamd answers PING on its socket, else 0 (TOM-AV-01)."
        )

    def _signatures(self, report: Report, host: Host, db_dir: str, max_days: int, now: float) -> None:
        names = [n for n in (host.list_optional(db_dir) or []) if n.endswith(DB_SUFFIXES)]
        newest = None
        for name in names:
            path = f"{db_dir.rstrip('/')}/{name}"
            built = None
            if name.endswith(CVD_SUFFIXES):
                built = cvd_build_time(host.read(path)[:512])
            if built is None:
                built = host.stat_of(path).st_mtime
            newest = built if newest is None else max(newest, built)
        report.gauge(
            "tomwerk_antivirus_signature_databases",
            "Signature database files in clamd's DatabaseDirectory (TOM-AV-01).",
            len(names),
            tom=AV,
        )
        report.gauge(
            "tomwerk_antivirus_signature_max_age_seconds",
            "Age the newest signature database may reach (TOM-AV-01), from antivirus_signature_max_age_days.",
            max_days * DAY,
            tom=AV,
        )
        if not _require_recent(
            report,
            newest,
            now,
            (max_days, DAY, "days"),
            "the newest signature database",
            f"no signature database in {db_dir}",
        ):
            return
        report.gauge(
            "tomwerk_antivirus_signature_timestamp_seconds",
            "Build time of the newest signature database (CVD header, else file mtime) (TOM-AV-01).",
            newest,
            tom=AV,
        )

    def _scan(self, report: Report, host: Host, path: str, max_hours: int, now: float) -> None:
        report.gauge(
            "tomwerk_antivirus_scan_max_age_seconds",
            "Age the last completed scan may reach (TOM-AV-01), from antivirus_scan_max_age_hours.",
            max_hours * HOUR,
            tom=AV,
        )
        text = host.read_optional(path)
        result = scan_result(text, path) if text is not None else {}
        last = result.get("last_completed_timestamp")
        if not _require_recent(
            report,
            last,
            now,
            (max_hours, HOUR, "hours"),
            "the last completed scan",
            f"no completed scan is recorded ({path})",
        ):
            return
        infected = int(result["infected_files"])
        report.require(AV, infected == 0, f"the last scan found {infected} infected file(s)")
        report.gauge(
            "tomwerk_antivirus_last_scan_timestamp_seconds",
            "Unix time the last scan completed (TOM-AV-01).",
            last,
            tom=AV,
        )
        report.gauge(
            "tomwerk_antivirus_infected_files",
            "Files the last completed scan found infected (TOM-AV-01).",
            infected,
            tom=AV,
        )
        report.gauge(
            "tomwerk_antivirus_scanned_files", "Files the last completed scan scanned.", result["files_scanned"], tom=AV
        )
        report.gauge(
            "tomwerk_antivirus_scan_errors", "Files the last completed scan could not scan.", result["errors"], tom=AV
        )

    def _milter(self, report: Report, host: Host, milter: str, milters: dict[str, list[str]]) -> None:
        active = service_active(host, "clamav-milter")
        report.require(MAIL, active, "clamav-milter is not running")
        wired = True
        for name in MILTER_SETTINGS:
            present = milter in milters[name]
            report.require(MAIL, present, f"postfix {name} lacks {milter}")
            wired = wired and present
        report.gauge(
            "tomwerk_antivirus_milter_up",
            "1 if clamav-milter runs and postfix hands it incoming mail, else 0 (TOM-AV-02).",
            1 if active and wired else 0,
            tom=MAIL,
        )

    def _spam(self, report: Report, host: Host, milter: str, milters: dict[str, list[str]]) -> None:
        try:
            host.output(("spamc", "-d", "127.0.0.1", "-K"))  # PING; non-zero exit when spamd does not answer
            spamd = True
        except CheckError as exc:
            spamd = False
            report.require(MAIL, False, f"spamd does not answer: {exc}")
        report.gauge(
            "tomwerk_spam_spamd_up",
            "1 if spamd answers a PING from spamc, else 0 (TOM-AV-02).",
            1 if spamd else 0,
            tom=MAIL,
        )
        active = service_active(host, "spamass-milter")
        report.require(MAIL, active, "spamass-milter is not running")
        wired = milter in milters["smtpd_milters"]
        report.require(MAIL, wired, f"postfix smtpd_milters lacks {milter}")
        report.gauge(
            "tomwerk_spam_milter_up",
            "1 if spamass-milter runs and postfix hands it mail received over SMTP, else 0 (TOM-AV-02).",
            1 if active and wired else 0,
            tom=MAIL,
        )


def _require_recent(report: Report, when: float | None, now: float, limit, what: str, missing: str) -> bool:
    """TOM-AV-01 requires that what happened (at when) at most limit = (count, unit seconds, unit name) ago.

    Without a time, missing is the reason; returns whether there was one.
    """
    if when is None:
        report.require(AV, False, missing)
        return False
    count, unit, unit_name = limit
    report.require(
        AV,
        now - when <= count * unit,
        f"{what} is {(now - when) / unit:.1f} {unit_name} old, more than {count}",
    )
    return True
