"""TOM-ORG-01, TOM-ORG-02: the records of the organisational TOMs on the admin host.

TOM-ORG-01: the newest review recorded in tom_records.json (from the
inventory's tomwerk_org_reviews) is no older than
tom_records_review_max_age_days. TOM-ORG-02: the access journal's hash chain
is intact and no customer waits longer than tom_records_notify_within_hours
to be told about an access; tomwerk-access-log status counts both.

Reviewers, scopes, results, customers, purposes and persons never leave this
module: only dates and counts do.
"""

from __future__ import annotations

import datetime as dt
import re
import time

from ..core import CheckError, Collector, Host, Report, State, StateError, is_count, json_object, one_line

ACCESS_LOG = "/usr/local/bin/tomwerk-access-log"
REVIEW = "TOM-ORG-01"
JOURNAL = "TOM-ORG-02"

DAY = 86400
# A review dated today in a zone east of UTC starts up to 14 h after now (UTC).
FUTURE_SLACK_SECONDS = DAY
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Fields of tomwerk-access-log status (tomwerk_host/access_journal.py, status()) the check reads.
COUNTS = ("entries", "open", "overdue")
# The one value status() quotes from a journal line; it stays out of the journal (systemd's).
QUOTED_SEQUENCE = re.compile(r"sequence .*? out of order")


def review_timestamp(date: str) -> float:
    """Unix time of a review date (YYYY-MM-DD), at 00:00 UTC of that day."""
    day = dt.date.fromisoformat(date)
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp()


class OrgCollector(Collector):
    name = "org"
    role = "tom_records"
    toms = (REVIEW, JOURNAL)

    def __init__(self, now=time.time) -> None:
        self._now = now  # wall clock for the age of the newest review; injectable for tests

    def check(self, state: State, host: Host) -> Report:
        dates = review_dates(state)
        max_age_days = state.integer("tom_records_review_max_age_days", 1, 365)
        journal = state.text("tom_records_access_journal")
        if not journal.startswith("/"):
            raise StateError(f"{state.role}.json: vars.tom_records_access_journal is not an absolute path", state.toms)
        hours = state.integer("tom_records_notify_within_hours", 1, 48)
        argv = (ACCESS_LOG, "--journal", journal, "status", "--notify-hours", str(hours))
        status = access_status(host.output(argv))
        report = Report()
        self._reviews(report, dates, max_age_days)
        self._journal(report, status, hours)
        return report

    def _reviews(self, report: Report, dates: list[str], max_age_days: int) -> None:
        max_age = max_age_days * DAY
        report.require(REVIEW, bool(dates), "no review of the measures is recorded (tomwerk_org_reviews)")
        if dates:
            newest = max(dates)  # YYYY-MM-DD sorts by date
            at = review_timestamp(newest)
            now = self._now()
            report.require(
                REVIEW, now - at <= max_age, f"the newest review ({newest}) is older than {max_age_days} days"
            )
            # A mistyped year must not stand in for the next reviews.
            report.require(
                REVIEW, at <= now + FUTURE_SLACK_SECONDS, f"the newest review is dated {newest}, after today"
            )
            report.gauge(
                "tomwerk_org_last_review_timestamp_seconds",
                "Unix time of the newest recorded review of all measures, 00:00 UTC of its date (TOM-ORG-01); "
                "absent when none is recorded.",
                at,
                tom=REVIEW,
            )
        report.gauge(
            "tomwerk_org_reviews_recorded",
            "Reviews of all measures recorded in the inventory (TOM-ORG-01).",
            len(dates),
            tom=REVIEW,
        )
        report.gauge(
            "tomwerk_org_review_max_age_seconds",
            "Age the newest review may reach before the next one is overdue (TOM-ORG-01), "
            "from tom_records_review_max_age_days.",
            max_age,
            tom=REVIEW,
        )

    def _journal(self, report: Report, status: dict, hours: int) -> None:
        intact = status["intact"]
        problem = QUOTED_SEQUENCE.sub("sequence out of order", status["problem"])
        report.require(
            JOURNAL, intact, f"the access journal is not intact: {one_line(problem, 200) or 'no reason given'}"
        )
        report.require(
            JOURNAL,
            status["overdue"] == 0,
            f"{status['overdue']} accesses to customer data were not reported to the customer within {hours} hours",
        )
        report.gauge(
            "tomwerk_access_journal_intact",
            "1 if the hash chain of the journal of accesses to customer data verifies, else 0 (TOM-ORG-02).",
            1 if intact else 0,
            tom=JOURNAL,
        )
        if not intact:
            return  # a broken journal cannot be counted; the counts below are unknown, so absent
        report.gauge(
            "tomwerk_access_journal_entries",
            "Entries (accesses and notifications) in the access journal (TOM-ORG-02); absent when it is not intact.",
            status["entries"],
            tom=JOURNAL,
        )
        report.gauge(
            "tomwerk_access_journal_open_notifications",
            "Accesses to customer data the customer has not been told about yet (TOM-ORG-02); "
            "absent when the journal is not intact.",
            status["open"],
            tom=JOURNAL,
        )
        report.gauge(
            "tomwerk_access_journal_overdue_notifications",
            "Accesses to customer data not reported to the customer within tom_records_notify_within_hours "
            "(TOM-ORG-02); absent when the journal is not intact.",
            status["overdue"],
            tom=JOURNAL,
        )
        if status["oldest_open_access_timestamp"] is not None:
            report.gauge(
                "tomwerk_access_journal_oldest_open_access_timestamp_seconds",
                "Unix time of the oldest access to customer data the customer has not been told about "
                "(TOM-ORG-02); absent when none is open or the journal is not intact.",
                status["oldest_open_access_timestamp"],
                tom=JOURNAL,
            )


def review_dates(state: State) -> list[str]:
    """The date of every recorded review; the rest of a review (reviewer, scope, result) is not read."""
    reviews = state.value("tom_records_reviews")
    where = f"{state.role}.json: vars.tom_records_reviews"
    if not isinstance(reviews, list):
        raise StateError(f"{where} is not a list", state.toms)
    dates = []
    for number, review in enumerate(reviews, 1):
        date = review.get("date") if isinstance(review, dict) else None
        if not isinstance(date, str) or not DATE.match(date):
            raise StateError(f"{where}: review {number} has no date in the form YYYY-MM-DD", state.toms)
        try:
            review_timestamp(date)
        except ValueError:
            raise StateError(f"{where}: review {number} has no valid date", state.toms) from None
        dates.append(date)
    return dates


def access_status(text: str) -> dict:
    """tomwerk-access-log status output, with the fields the check reads in their types."""
    data = json_object(text, "tomwerk-access-log status", "printed no JSON object")
    if not isinstance(data.get("intact"), bool) or not isinstance(data.get("problem"), str):
        raise CheckError("tomwerk-access-log status printed no intact or problem field")
    for field in COUNTS:
        if not is_count(data.get(field)):
            raise CheckError(f"tomwerk-access-log status printed no count {field}")
    oldest = data.get("oldest_open_access_timestamp", "missing")
    if oldest is not None and (isinstance(oldest, bool) or not isinstance(oldest, (int, float))):
        raise CheckError("tomwerk-access-log status printed no oldest_open_access_timestamp")
    return data
