"""`tomwerk report`: a verification result and the catalogue as a report for auditors.

Reads a result.json of `tomwerk verify` (schema tomwerk-verify/1) and the
TOM catalogue, and writes the report as one self-contained HTML file (inline
CSS, nothing loaded from elsewhere, A4 print styles), Markdown with the same
content, and a PDF or a PNG of the first screen printed from that HTML by
headless Chromium (Debian's /usr/bin/chromium). German by default; all fixed
text is in tomwerk/i18n.py, TOM titles, statements and remedies come from the
catalogue.

Both templates render one view (`build_view`), so HTML and Markdown cannot
drift apart. Values observed on hosts are data, not markup: the HTML
template autoescapes, the Markdown filter escapes. A failed check reads in
the report's language (TOM, host, expected, found, what to do); pytest's own
message stays behind a fold and in result.json. Every report names the time
it was made, the catalogue version and the SHA-256 of its result.json, so a
printed copy can be matched to the run it shows.

The sample in docs/ is made from the demo's result (`make demo`), in English:

    make sample-report                      # from results/latest/result.json
    make sample-report RESULT=path/to/result.json

which runs `tomwerk report --result RESULT --lang en --format md,png,pdf --out docs --name sample-report`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import jinja2
import markupsafe
import yaml

from tomwerk import ROOT, catalogue, i18n

SCHEMA_PREFIX = "tomwerk-verify/1"
FORMATS = {"html": "report.html.j2", "md": "report.md.j2"}
# Printed from the HTML by Chromium: the whole report, or its first screen (the README's sample).
PRINTED = ("pdf", "png")
ALL_FORMATS = (*FORMATS, *PRINTED)
CHROMIUM = Path("/usr/bin/chromium")
# Headless, as root, without network or a desktop session: nothing may phone home or wait for one.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip
# Generous: the lab may keep both cores busy while a report is printed.
CHROMIUM_TIMEOUT = 240
SCREEN = (1200, 1400)
# Set in an inventory whose organisational records are invented (the lab's); verify records it
# next to the records (tomwerk/verify.py, organisational_evidence) and the report marks them.
EXAMPLES_FLAG = "tomwerk_org_records_are_examples"
SEEDS = ROOT / "docs" / "seeds.yml"
# Observed phrases (output lines) read as one line up to this length, else one per line.
INLINE_LIMIT = 90


class ReportError(Exception):
    pass


# ----------------------------------------------------------------- input


def load_result(path: str | Path) -> dict:
    return read_result(path)[0]


def read_result(path: str | Path) -> tuple[dict, str]:
    """The result and the SHA-256 of the very bytes it was parsed from."""
    path = Path(path)
    if not path.exists():
        raise ReportError(f"no result at {path}; run `tomwerk verify` first")
    data = path.read_bytes()
    try:
        result = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise ReportError(f"{path} is not JSON: {exc}") from exc
    schema = str(result.get("schema", ""))
    if schema != SCHEMA_PREFIX and not schema.startswith(SCHEMA_PREFIX + "."):
        raise ReportError(f"{path}: schema {schema!r} is not {SCHEMA_PREFIX}")
    return result, hashlib.sha256(data).hexdigest()


def seed_publishers(path: Path = SEEDS) -> dict[str, str]:
    if not path.exists():
        return {}
    seeds = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("seeds", {})
    return {name: info.get("publisher", "") for name, info in seeds.items()}


# ----------------------------------------------------------------- view


def fmt_time(text: str | None, lang: str) -> str:
    if not text:
        return ""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)
    return moment.strftime(i18n.TIME_FORMAT[lang])


def cell_status(tom, host: Mapping) -> str:
    """Status of a TOM on a host: a check result, or why there is none."""
    data = host["toms"].get(tom.id)
    if data:
        return data["status"]
    carried = set(tom.roles) & set(host.get("roles", []))
    if carried and not carried <= set(tom.not_applicable or {}):
        return "not_checked"
    return "na"


def not_applicable_reason(tom, host: Mapping, lang: str) -> str:
    """Why a TOM whose role a host carries does not apply there (the catalogue's words), or ""."""
    if host["toms"].get(tom.id):
        return ""
    carried = [r for r in tom.roles if r in host.get("roles", [])]
    reasons = [(tom.not_applicable or {}).get(r, {}).get(lang, "") for r in carried]
    return " ".join(r for r in reasons if r)


def overall_status(statuses: Iterable[str]) -> str:
    """A TOM over the hosts it applies to: pass only when proven on every one of them."""
    relevant = [s for s in statuses if s != "na"]
    if not relevant:
        return "not_checked"
    if "fail" in relevant:
        return "fail"
    return "pass" if set(relevant) == {"pass"} else "unproven"


def observed_items(observed: Mapping) -> list[dict]:
    """Observed values ready to show: text, words, lines or key/value pairs."""
    items = []
    for what, value in observed.items():
        if isinstance(value, str):
            lines = value.splitlines()
            item = {"kind": "lines", "value": lines} if len(lines) > 1 else {"kind": "text", "value": value}
        elif isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
            words = [str(v) for v in value]
            if all(w and not any(ch.isspace() for ch in w) for w in words):
                item = {"kind": "words", "value": words}  # names, ports, algorithms: wrap freely
            elif len(", ".join(words)) <= INLINE_LIMIT:
                item = {"kind": "text", "value": ", ".join(words)}
            else:
                item = {"kind": "lines", "value": words}  # output lines keep their layout
        elif isinstance(value, dict) and all(not isinstance(v, dict | list) for v in value.values()):
            item = {"kind": "pairs", "value": [(str(k), str(v)) for k, v in value.items()]}
        else:
            item = {"kind": "text", "value": json.dumps(value, ensure_ascii=False, sort_keys=True)}
        items.append({"what": what, **item})
    return items


def shape(value) -> dict:
    """A recorded organisational value as a renderable node (tables for lists of dicts)."""
    if value is None or value == "" or value == [] or value == {}:
        return {"kind": "none"}
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        columns: list[str] = []
        for row in value:
            columns += [str(k) for k in row if str(k) not in columns]
        rows = [[shape(row.get(c)) for c in columns] for row in value]
        return {"kind": "table", "columns": columns, "rows": rows}
    if isinstance(value, dict):
        return {"kind": "pairs", "pairs": [(str(k), shape(v)) for k, v in value.items()]}
    if isinstance(value, list):
        return {"kind": "list", "items": [shape(v) for v in value]}
    if isinstance(value, bool):
        return {"kind": "text", "text": "true" if value else "false"}
    return {"kind": "text", "text": str(value)}


def flat(node: dict) -> str:
    """One line of text for a node (Markdown table cells)."""
    kind = node["kind"]
    if kind == "text":
        return node["text"]
    if kind == "list":
        return ", ".join(flat(n) for n in node["items"])
    if kind == "pairs":
        return "; ".join(f"{k}: {flat(v)}" for k, v in node["pairs"])
    if kind == "table":
        return " / ".join(
            "; ".join(
                f"{c}: {flat(cell)}" for c, cell in zip(node["columns"], row, strict=True) if cell["kind"] != "none"
            )
            for row in node["rows"]
        )
    return i18n.DASH


def code_segments(text: str) -> list[dict]:
    """Text with `inline code` as segments, so both templates can show commands as code."""
    return [{"code": bool(n % 2), "text": part} for n, part in enumerate(text.split("`")) if part]


def inventory_argument(inventory: str | None, placeholder: str) -> str:
    """The inventory as `ansible-playbook -i` takes it on the controller.

    Inside this checkout it is named relative to it (the commands run from here). A
    path elsewhere may be the admin host's snapshot, which is no inventory to
    provision from: the report then leaves a placeholder rather than a wrong path.
    """
    if not inventory:
        return placeholder
    try:
        return str(Path(inventory).resolve().relative_to(ROOT.resolve()))
    except ValueError:
        return placeholder


def fill(text: str, host: str, inventory: str) -> str:
    # Only these two names: commands in the text may carry braces of their own.
    return text.replace("{host}", host).replace("{inventory}", inventory)


def heading_anchor(text: str) -> str:
    """The anchor GitHub and most Markdown renderers give a heading."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


@dataclass(frozen=True)
class _Words:
    """The language-dependent pieces every part of the view needs."""

    lang: str
    t: Mapping[str, str]
    status: Mapping[str, str]
    outcome: Mapping[str, str]
    publishers: Mapping[str, str]
    inventory: str  # as the remedies' commands name it

    def sources(self, tom) -> list[dict]:
        return [
            {
                "seed": src["seed"],
                "publisher": self.publishers.get(src["seed"], ""),
                "section": self.t["source_section"].format(section=src["section"]),
                # The basis is an English paraphrase of the policy sentence.
                "basis": src["basis"] if self.lang == "en" else "",
            }
            for src in tom.sources
        ]


def build_view(
    result: Mapping,
    toms: Mapping | None = None,
    lang: str = i18n.DEFAULT,
    *,
    generated_at: dt.datetime | None = None,
    result_path: str | Path | None = None,
    result_sha256: str | None = None,
) -> dict:
    """Everything the templates show, computed once."""
    toms = catalogue.load() if toms is None else toms
    t = i18n.texts(lang)
    inventory = inventory_argument(result.get("inventory"), t["inventory_placeholder"])
    words = _Words(lang, t, i18n.STATUS[lang], i18n.OUTCOME[lang], seed_publishers(), inventory)
    # "" holds the checks across hosts (a probe from one host to another, the alert state).
    hosts: Mapping[str, dict] = {name or t["across_hosts"]: host for name, host in result["hosts"].items()}
    host_count = len([name for name in result["hosts"] if name])

    # TOM ids with results that the catalogue does not know still get shown.
    known = dict(toms)
    for host in hosts.values():
        for tom_id in host["toms"]:
            if tom_id not in known:
                known[tom_id] = catalogue.Tom(
                    id=tom_id, kind="technical", status="implemented", family="", title={lang: t["unknown_tom"]},
                    statement={lang: ""}, sources=[],
                )  # fmt: skip
    technical = [tom for tom in known.values() if tom.technical]
    checked_ids = {tom_id for host in hosts.values() for tom_id in host["toms"]}
    planned_ids = {tom.id for tom in technical if tom.status != "implemented" and tom.id not in checked_ids}
    tech = _technical(technical, planned_ids, hosts, words)
    organisational = _organisational([tom for tom in known.values() if not tom.technical], result, words)

    overall = tech["overall"]
    held, failing = sum(s == "pass" for s in overall.values()), sum(s == "fail" for s in overall.values())
    covered = len(technical) - len(planned_ids)
    recorded = sum(o["status"] == "recorded" for o in organisational)
    elsewhere = [o["id"] for o in organisational if o["status"] == "elsewhere"]
    checks = _check_counts(result)
    applies_everywhere = all(c["status"] != "na" for row in tech["matrix"] for c in row["cells"])
    headline = [
        t["headline_all" if applies_everywhere else "headline_applicable"].format(
            held=held, covered=covered, hosts=host_count
        )
    ]
    if planned_ids:
        headline.append(t["headline_planned"].format(planned=len(planned_ids)))
    if organisational:
        headline.append(t["headline_org"].format(recorded=recorded, total=len(organisational)))
    if elsewhere:
        headline.append(t["headline_org_elsewhere"].format(ids=", ".join(elsewhere)))
    if any(o["example"] for o in organisational):
        headline.append(t["headline_org_examples"])
    figure_groups = [
        (
            t["fig_group_technical"],
            [
                ("toms_total", "fig_toms_total", len(technical), 0, ""),
                ("toms_covered", "fig_toms_covered", covered, 0, ""),
                ("toms_hold", "fig_toms_hold", held, 1, "pass"),
                ("toms_not_hold", "fig_toms_not_hold", failing, 1, "fail"),
                ("toms_unproven", "fig_toms_unproven", covered - held - failing, 1, "unproven"),
                ("toms_planned", "fig_toms_planned", len(planned_ids), 0, "planned"),
            ],
        ),
        (
            t["fig_group_org"],
            [
                ("org_total", "fig_org_total", len(organisational), 0, ""),
                ("org_recorded", "fig_org_recorded", recorded, 1, "recorded"),
                ("org_elsewhere", "fig_org_elsewhere", len(elsewhere), 1, "elsewhere"),
                ("org_missing", "fig_org_missing", len(organisational) - recorded - len(elsewhere), 1, "no_record"),
            ],
        ),
        (
            t["fig_group_checks"],
            [
                ("hosts", "fig_hosts", host_count, 0, ""),
                ("checks_total", "fig_checks", sum(checks.values()), 0, ""),
                *((f"checks_{o}", f"fig_checks_{o}", checks[o], 1, o) for o in ("pass", "fail", "error", "skipped")),
            ],
        ),
    ]

    generated = (generated_at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime(i18n.TIME_FORMAT[lang])
    version = getattr(toms, "version", "") or t["unknown"]
    stamp = {
        "generated": generated,
        "catalogue_version": version,
        "catalogue_sha256": getattr(toms, "sha256", ""),
        "result_sha256": result_sha256 or "",
    }
    return {
        "lang": lang,
        "t": t,
        "stamp": stamp,
        "example_note": t["example_note"].format(flag=EXAMPLES_FLAG),
        # Header and footer of every printed page (CSS margin boxes), and the cover line.
        "footer": [
            " · ".join(
                [t["title"], t["footer_made"].format(time=generated), t["footer_catalogue"].format(version=version)]
            ),
            t["footer_result"].format(sha256=result_sha256) if result_sha256 else "",
        ],
        "status_words": words.status,
        "outcome_words": words.outcome,
        "headline": headline,
        "figure_groups": [
            {
                "title": title,
                "figures": [
                    {"key": key, "label": t[label], "value": value, "level": level, "status": status}
                    for key, label, value, level, status in figures
                ],
            }
            for title, figures in figure_groups
        ],
        "hosts": list(hosts),
        "matrix": tech["matrix"],
        "failures": tech["failures"],
        "unproven": tech["unproven"],
        "technical": tech["entries"],
        "organisational": organisational,
        "unassigned": [
            {**c, "outcome_label": words.outcome[c["outcome"]], "observed": observed_items(c.get("observed") or {})}
            for c in result.get("unassigned_checks") or []
        ],
        "meta": _meta(result, t, lang, generated, result_path, stamp),
        "cover": [
            (t["meta_inventory"], result.get("inventory", "")),
            (t["meta_started"], fmt_time(result.get("started"), lang)),
            (t["meta_generated"], generated),
            (t["meta_catalogue"], t["meta_catalogue_value"].format(version=version)),
        ],
    }


def _technical(technical: list, planned_ids: set[str], hosts: Mapping[str, dict], words: _Words) -> dict:
    """Per technical TOM: its section, its matrix row, and what does not hold or is not proven."""
    t, lang = words.t, words.lang
    entries, matrix, failures, unproven = [], [], [], []
    overall: dict[str, str] = {}
    failed_on: dict[tuple[str, str], dict] = {}  # (TOM, host): what the auditor reads about it
    for tom in technical:
        title = tom.title.get(lang) or tom.title.get("en", "")
        entry = {
            "id": tom.id,
            "title": title,
            "anchor": heading_anchor(f"{tom.id} {title}"),
            "statement": tom.statement.get(lang, ""),
            "sources": words.sources(tom),
            "roles": list(tom.roles),
            "planned": tom.id in planned_ids,
            "note": "",
            "hosts": [],
            "exempt": [],
        }
        entries.append(entry)
        if entry["planned"]:
            entry.update(status="planned", status_label=words.status["planned"], note=t["planned_note"])
            continue
        cells = []
        for name, host in hosts.items():
            status = cell_status(tom, host)
            cells.append({"host": name, "status": status, "label": words.status[status]})
            if status == "na":
                reason = not_applicable_reason(tom, host, lang)
                if reason:
                    entry["exempt"].append({"host": name, "reason": reason})
                continue
            recorded_checks = host["toms"].get(tom.id, {}).get("checks", [])
            checks = [
                {
                    "id": c["id"],
                    "check": c["check"],
                    "outcome": c["outcome"],
                    "outcome_label": words.outcome[c["outcome"]],
                    "message": c.get("message", ""),
                    "observed": observed_items(c.get("observed") or {}),
                }
                for c in recorded_checks
            ]
            times = sorted(c["timestamp"] for c in recorded_checks if c.get("timestamp"))
            entry["hosts"].append(
                {
                    "host": name,
                    "status": status,
                    "label": words.status[status],
                    "time": fmt_time(times[0], lang) if times else "",
                    "checks": checks,
                }
            )
            for check in checks:
                row = {"tom": tom.id, "title": title, "host": name, **check}
                if check["outcome"] in ("fail", "error"):
                    if (tom.id, name) not in failed_on:
                        failed_on[tom.id, name] = _failure(tom, title, entry, name, words)
                        failures.append(failed_on[tom.id, name])
                    failed_on[tom.id, name]["checks"].append(_failed_check(check, name, words))
                elif check["outcome"] == "skipped":
                    unproven.append({**row, "status": "skipped", "reason": check["message"]})
            if status == "not_checked":
                unproven.append(
                    {"tom": tom.id, "title": title, "host": name, "status": status, "check": "", "reason": ""}
                )
        overall[tom.id] = overall_status(c["status"] for c in cells)
        entry.update(status=overall[tom.id], status_label=words.status[overall[tom.id]])
        if not entry["hosts"]:
            entry["note"] = t["no_hosts_note"]
        matrix.append(
            {"id": tom.id, "title": title, "anchor": entry["anchor"], "status": overall[tom.id], "cells": cells}
        )
    return {"entries": entries, "matrix": matrix, "failures": failures, "unproven": unproven, "overall": overall}


def _failure(tom, title: str, entry: Mapping, host: str, words: _Words) -> dict:
    """A TOM that does not hold on a host, in plain words: expected, found (per check), what to do."""
    remedy = (tom.remedy or {}).get(words.lang, "")
    return {
        "tom": tom.id,
        "title": title,
        "anchor": entry["anchor"],
        "host": host,
        "expected": entry["statement"],
        "remedy": code_segments(fill(remedy, host, words.inventory)) if remedy else [],
        "checks": [],
    }


def _failed_check(check: Mapping, host: str, words: _Words) -> dict:
    hint = words.t["error_hint"] if check["outcome"] == "error" else ""
    return {
        **check,  # its message (pytest's assertion text, reprs) is for the admin: the templates fold it
        "found_nothing": words.t["found_nothing"] if not check["observed"] else "",
        "hint": code_segments(fill(hint, host, words.inventory)) if hint else [],
    }


def _organisational(toms: list, result: Mapping, words: _Words) -> list[dict]:
    """Per organisational TOM: its section with the recorded evidence, or why there is none."""
    t, lang = words.t, words.lang
    recorded = result.get("organisational") or {}
    examples = recorded.get(EXAMPLES_FLAG) is True
    entries = []
    for tom in toms:
        evidence = tom.evidence or {}
        where, record = evidence.get("where", ""), evidence.get("record", "")
        raw = recorded.get(where)
        node = _journal(raw, t) if record == "journal" and isinstance(raw, Mapping) else shape(raw)
        # Unset is "no record"; set but empty is shown as such (an empty list of disclosures can be the truth).
        status = "no_record" if raw is None else "recorded" if node["kind"] != "none" else "empty"
        if record == "journal" and raw is None:
            # Not missing: it lives on the admin host, where only the scheduled run reads it.
            status, note = "elsewhere", t["journal_pending"]
        elif status == "recorded":
            note = ""
        else:
            note = t["no_record_text" if status == "no_record" else "empty_record_text"].format(where=where)
        title = tom.title.get(lang, "")
        entries.append(
            {
                "id": tom.id,
                "title": title,
                "anchor": heading_anchor(f"{tom.id} {title}"),
                "statement": tom.statement.get(lang, ""),
                "sources": words.sources(tom),
                "how": evidence.get(f"how_{lang}", ""),
                "where": t["record_journal" if record == "journal" else "record_inventory"].format(where=where),
                "status": status,
                "status_label": words.status[status],
                "note": note,
                "value": node,
                # The inventory's flag covers its own records, not the journal read on the admin host.
                "example": examples and record == "inventory" and status in ("recorded", "empty"),
            }
        )
    return entries


def _journal(status: Mapping, t: Mapping[str, str]) -> dict:
    """The access journal's state (verify.journal_evidence) as labelled pairs in the report's language."""
    yes_no = {True: t["yes"], False: t["no"]}
    rows = [
        ("journal_intact", yes_no.get(status.get("intact"), t["unknown"])),
        ("journal_problem", status.get("problem") or ""),
        ("journal_entries", status.get("entries")),
        ("journal_accesses", status.get("accesses")),
        ("journal_open", status.get("notification_open")),
        ("journal_overdue", status.get("notification_overdue")),
    ]
    if status.get("notify_within_hours") is not None:
        rows.append(("journal_window", t["journal_hours"].format(hours=status["notify_within_hours"])))
    return {"kind": "pairs", "pairs": [(t[key], shape(value)) for key, value in rows if value not in (None, "")]}


def _check_counts(result: Mapping) -> dict[str, int]:
    # Counted from the checks themselves (by id: a check may prove two TOMs).
    outcomes = {c["id"]: c["outcome"] for c in result.get("unassigned_checks") or []}
    for host in result["hosts"].values():
        for data in host["toms"].values():
            outcomes.update((c["id"], c["outcome"]) for c in data["checks"])
    counts = dict.fromkeys(("pass", "fail", "error", "skipped"), 0)
    for outcome in outcomes.values():
        counts[outcome] += 1
    return counts


def _meta(
    result: Mapping, t: Mapping[str, str], lang: str, generated: str, result_path, stamp: Mapping
) -> list[tuple[str, str]]:
    started, finished = result.get("started"), result.get("finished")
    duration = ""
    if started and finished:
        seconds = int((_parse(finished) - _parse(started)).total_seconds())
        duration = t["meta_duration_value"].format(minutes=seconds // 60, seconds=seconds % 60)
    hosts = [
        f"{name} ({host['release']})" if host.get("release") else name for name, host in result["hosts"].items() if name
    ]
    selection = (
        t["meta_hosts_filter"].format(hosts=", ".join(result["hosts_filter"]))
        if result.get("hosts_filter")
        else t["meta_hosts_all"]
    )
    tool = result.get("tomwerk") or {}
    version = t["meta_tomwerk_value"].format(
        version=tool.get("version") or t["unknown"], commit=tool.get("commit") or t["unknown"]
    )
    if tool.get("dirty"):
        version += " " + t["meta_dirty"]
    catalogue_text = t["meta_catalogue_value"].format(version=stamp["catalogue_version"])
    if stamp["catalogue_sha256"]:
        catalogue_text += " " + t["meta_catalogue_sha"].format(sha256=stamp["catalogue_sha256"])
    rows = [
        (t["meta_inventory"], result.get("inventory", "")),
        (t["meta_hosts"], f"{len(hosts)} ({selection}): {', '.join(hosts)}"),
        (t["meta_started"], fmt_time(started, lang)),
        (t["meta_finished"], fmt_time(finished, lang)),
        (t["meta_duration"], duration),
        (t["meta_suite"], result.get("suite", "")),
        (t["meta_tomwerk"], version),
        (t["meta_schema"], result.get("schema", "")),
    ]
    if result_path:
        rows.append((t["meta_result"], str(result_path)))
    rows.append((t["meta_result_sha"], stamp["result_sha256"]))
    rows.append((t["meta_catalogue"], catalogue_text))
    rows.append((t["meta_generated"], generated))
    return [(label, value) for label, value in rows if value]


def _parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


# ----------------------------------------------------------------- rendering


_MD_SPECIAL = re.compile(r"([\\`*_|<>\[\]])")


def md(text) -> str:
    """Text for a Markdown table cell or line: markup characters escaped, one line."""
    escaped = _MD_SPECIAL.sub(r"\\\1", str(text))
    return "<br>".join(part for part in escaped.splitlines()) if "\n" in escaped else escaped


def md_code(text) -> str:
    """Inline code that survives backticks and pipes inside table cells."""
    text = str(text).replace("\n", " ").replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}" if text.strip() else ""


def md_pre(text) -> str:
    """Verbatim text for an HTML <pre> block inside Markdown: escaped, and without blank
    lines, which would end the block and let the rest be read as Markdown."""
    return "\n".join(line for line in str(markupsafe.escape(text)).splitlines() if line.strip())


def css_string(text) -> markupsafe.Markup:
    """A CSS string literal (the printed header and footer) that cannot leave its quotes or the <style>."""
    escaped = "".join(ch if ch.isalnum() or ch in " .,:;·-_/()+" else f"\\{ord(ch):x} " for ch in str(text))
    return markupsafe.Markup(f'"{escaped}"')  # noqa: S704 - every character that could end it is escaped above


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tomwerk", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2", "html"), default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md
    env.filters["md_code"] = md_code
    env.filters["md_pre"] = md_pre
    env.filters["css_string"] = css_string
    env.filters["flat"] = flat
    return env


def render(view: Mapping, fmt: str) -> str:
    if fmt not in FORMATS:
        raise ReportError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    text = environment().get_template(FORMATS[fmt]).render(**view)
    # Template blocks leave runs of blank lines; Markdown needs at most one.
    return re.sub(r"\n{3,}", "\n\n", text) if fmt == "md" else text


def chromium() -> Path:
    if not CHROMIUM.exists():
        raise ReportError(
            f"pdf and png need Chromium at {CHROMIUM} (Debian package chromium, see lab/host-packages.txt); not found"
        )
    return CHROMIUM


def print_page(html: Path, target: Path, fmt: str) -> None:
    """Print an HTML file with headless Chromium: the whole report as PDF, or its first screen as PNG."""
    with tempfile.TemporaryDirectory(prefix="tomwerk-chromium-") as scratch:
        # A fresh profile each time (no state between reports), and the file appears only when complete.
        partial = Path(scratch) / f"page.{fmt}"
        if fmt == "pdf":
            output = [f"--print-to-pdf={partial}", "--no-pdf-header-footer"]
        else:
            output = [f"--window-size={SCREEN[0]},{SCREEN[1]}", "--hide-scrollbars", f"--screenshot={partial}"]
        profile = Path(scratch) / "profile"
        argv = [str(chromium()), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *output, html.resolve().as_uri()]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise ReportError(f"chromium did not finish {target.name} within {CHROMIUM_TIMEOUT} s") from None
        if done.returncode != 0 or not partial.exists() or partial.stat().st_size == 0:
            # Chromium's stderr is mostly D-Bus noise; its last line is the best hint there is.
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            raise ReportError(
                f"chromium could not make {target.name} (exit {done.returncode}): {lines[-1] if lines else 'no output'}"
            )
        shutil.move(partial, target)


def write_reports(
    result_path: str | Path,
    *,
    lang: str = i18n.DEFAULT,
    formats: Iterable[str] = ("html", "md"),
    out: str | Path | None = None,
    name: str | None = None,
    toms: Mapping | None = None,
    generated_at: dt.datetime | None = None,
) -> list[Path]:
    """Render the report files; their paths."""
    formats = [f.strip() for f in formats if f.strip()]
    unknown = [f for f in formats if f not in ALL_FORMATS]
    if unknown or not formats:
        raise ReportError(f"unknown format {', '.join(unknown) or '(none)'}; use {', '.join(ALL_FORMATS)}")
    if lang not in i18n.LANGUAGES:
        raise ReportError(f"unknown language {lang!r}; use {', '.join(i18n.LANGUAGES)}")
    if set(formats) & set(PRINTED):
        chromium()  # before anything is written
    result_path = Path(result_path)
    result, digest = read_result(result_path)
    view = build_view(result, toms, lang, generated_at=generated_at, result_path=result_path, result_sha256=digest)
    # Next to the result by default: results/latest/ resolves to the run's own directory.
    target = Path(out) if out else result_path.resolve().parent
    target.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="tomwerk-report-") as scratch:
        html = Path(scratch) / "report.html"  # what Chromium prints, also when no .html is asked for
        html.write_text(render(view, "html"), encoding="utf-8")
        for fmt in formats:
            path = target / f"{name or 'report.' + lang}.{fmt}"
            if fmt in PRINTED:
                print_page(html, path, fmt)
            else:
                path.write_text(render(view, fmt), encoding="utf-8")
            written.append(path)
    return written
