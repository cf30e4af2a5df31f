"""`tomwerk report` from a recorded result: what the report shows equals what the result says.

Expected values are computed here from result.json and the catalogue,
independently of tomwerk.report, and compared with the parsed HTML and
Markdown.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tomwerk import ROOT, catalogue, cli, i18n, report, verify
from tomwerk.inventory import Inventory

FIXTURES = Path(__file__).parent / "fixtures" / "report"
RESULT = json.loads((FIXTURES / "result.json").read_text(encoding="utf-8"))
TOMS = catalogue.load()
TECHNICAL = [t for t in TOMS.values() if t.technical]
COVERED = [t for t in TECHNICAL if t.status == "implemented"]
PLANNED = [t for t in TECHNICAL if t.status == "planned"]
ORGANISATIONAL = [t for t in TOMS.values() if not t.technical]
GENERATED = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC)
CHROMIUM = Path("/usr/bin/chromium")
RESULT_SHA256 = hashlib.sha256((FIXTURES / "result.json").read_bytes()).hexdigest()


def needs_chromium(test):
    """Starts headless Chromium: heavy (`make test`, not `make unit`), skipped where it is missing."""
    reason = "needs /usr/bin/chromium (lab/host-packages.txt installs it)"
    return pytest.mark.heavy(pytest.mark.skipif(not CHROMIUM.exists(), reason=reason)(test))


# ----------------------------------------------------------------- expectations from the result


def expected_status(result: dict, tom, host: str) -> str:
    entry = result["hosts"][host]
    if tom.id in entry["toms"]:
        return entry["toms"][tom.id]["status"]
    # A role the catalogue says does not carry the TOM (with a reason) does not count.
    carried = set(tom.roles) & set(entry["roles"]) - set(tom.not_applicable)
    return "not_checked" if carried else "na"


def holds_everywhere(result: dict, tom) -> bool:
    statuses = [expected_status(result, tom, h) for h in result["hosts"]]
    return all(s in ("pass", "na") for s in statuses) and "pass" in statuses


def org_status(result: dict, tom) -> str:
    value = result["organisational"].get(tom.evidence["where"])
    if value is None:
        # The journal is read only where it lives (the admin host): elsewhere it is not "missing".
        return "elsewhere" if tom.evidence["record"] == "journal" else "no_record"
    return "recorded" if value not in ([], {}, "") else "empty"


def without_folds(text: str) -> str:
    """What a reader sees before opening any <details> fold."""
    return re.sub(r"<details.*?</details>", "", text, flags=re.DOTALL)


def all_checks(result: dict) -> dict[str, dict]:
    checks = {}
    for host, entry in result["hosts"].items():
        for tom, data in entry["toms"].items():
            for check in data["checks"]:
                checks[check["id"]] = {**check, "host": host, "tom": tom}
    return checks


# ----------------------------------------------------------------- parsing what was rendered


class Elements(HTMLParser):
    """Every element with its attributes and its whole text."""

    VOID = frozenset({"meta", "br", "link", "img", "hr", "input"})

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.found: list[dict] = []
        self._open: list[dict] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, "attrs": dict(attrs), "text": ""}
        self.found.append(element)
        if tag not in self.VOID:
            self._open.append(element)

    def handle_endtag(self, tag):
        while self._open:
            if self._open.pop()["tag"] == tag:
                break

    def handle_data(self, data):
        for element in self._open:
            element["text"] += data

    def select(self, tag=None, cls=None, **attrs) -> list[dict]:
        return [
            e
            for e in self.found
            if (tag is None or e["tag"] == tag)
            and (cls is None or cls in e["attrs"].get("class", "").split())
            and all(e["attrs"].get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]


def text(element: dict) -> str:
    return " ".join(element["text"].split())


def md_table(markdown: str, heading: str) -> list[list[str]]:
    """Rows (cells, unescaped pipes kept) of the first table after a heading line."""
    lines = markdown.splitlines()
    start = lines.index(heading)
    rows, in_table = [], False
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            in_table = True
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if not all(re.fullmatch(r"-+:?", c) for c in cells):
                rows.append(cells)
        elif in_table:
            break
    return rows[1:]  # without the header row


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, dict[str, str]]:
    out = tmp_path_factory.mktemp("report")
    files = {}
    for lang in i18n.LANGUAGES:
        paths = report.write_reports(FIXTURES / "result.json", lang=lang, out=out, generated_at=GENERATED)
        files[lang] = {p.suffix[1:]: p.read_text(encoding="utf-8") for p in paths}
    return files


@pytest.fixture(scope="module", params=i18n.LANGUAGES)
def lang(request) -> str:
    return request.param


# ----------------------------------------------------------------- tests


def test_every_tom_host_cell_shows_the_result_status(rendered, lang):
    page = Elements(rendered[lang]["html"])
    for where in ("cell", "host-status"):  # the summary matrix, and each TOM's evidence table
        cells = {(c["attrs"]["data-tom"], c["attrs"]["data-host"]): c for c in page.select("td", cls=where)}
        for tom in COVERED:
            for host in RESULT["hosts"]:
                status = expected_status(RESULT, tom, host)
                if where == "host-status" and status == "na":
                    assert (tom.id, host) not in cells
                    continue
                cell = cells[(tom.id, host)]
                assert cell["attrs"]["data-status"] == status, (where, tom.id, host)
                assert text(cell) == i18n.STATUS[lang][status]
        assert all(tom in {t.id for t in COVERED} for tom, _ in cells)


def test_summary_counts_equal_counts_from_the_result(rendered, lang):
    page = Elements(rendered[lang]["html"])
    figures = {e["attrs"]["data-figure"]: int(text(e)) for e in page.select("td", cls="num")}
    checks = all_checks(RESULT)
    outcomes = [c["outcome"] for c in checks.values()]
    held = [t for t in COVERED if holds_everywhere(RESULT, t)]
    failing = [t for t in COVERED if any(expected_status(RESULT, t, h) == "fail" for h in RESULT["hosts"])]
    org = [org_status(RESULT, t) for t in ORGANISATIONAL]
    assert figures == {
        "hosts": len(RESULT["hosts"]),
        "toms_total": len(TECHNICAL),
        "toms_covered": len(COVERED),
        "toms_hold": len(held),
        "toms_not_hold": len(failing),
        "toms_unproven": len(COVERED) - len(held) - len(failing),
        "toms_planned": len(PLANNED),
        "org_total": len(ORGANISATIONAL),
        "org_recorded": org.count("recorded"),
        "org_elsewhere": org.count("elsewhere"),
        "org_missing": len(ORGANISATIONAL) - org.count("recorded") - org.count("elsewhere"),
        "checks_total": len(checks),
        "checks_pass": outcomes.count("pass"),
        "checks_fail": outcomes.count("fail"),
        "checks_error": outcomes.count("error"),
        "checks_skipped": outcomes.count("skipped"),
    }
    # The result's own summary agrees.
    assert RESULT["summary"]["checks"] == {o: outcomes.count(o) for o in ("pass", "fail", "error", "skipped")}
    headline = text(page.select("div", cls="headline")[0])
    # "on all N hosts" when every covered TOM applies to every host, else "on every host it applies to".
    everywhere = all(t.id in RESULT["hosts"][h]["toms"] for t in COVERED for h in RESULT["hosts"])
    words = {
        ("de", True): "von {} technischen TOMs mit Prüfungen gelten auf allen {} Hosts",
        ("en", True): "of {} technical TOMs with checks hold on all {} hosts",
        ("de", False): (
            "von {} technischen TOMs mit Prüfungen gelten auf allen Hosts, für die sie vorgesehen sind ({} Hosts"
        ),
        ("en", False): "of {} technical TOMs with checks hold on every host they apply to ({} hosts",
    }
    assert f"{len(held)} " + words[lang, everywhere].format(len(COVERED), len(RESULT["hosts"])) in headline


def test_failing_checks_are_listed(rendered, lang):
    page = Elements(rendered[lang]["html"])
    expected = {
        (c["tom"], c["host"], cid, c["outcome"])
        for cid, c in all_checks(RESULT).items()
        if c["outcome"] in ("fail", "error")
    }
    listed = {
        (r["attrs"]["data-tom"], r["attrs"]["data-host"], r["attrs"]["data-check"], r["attrs"]["data-outcome"])
        for r in page.select("div", cls="failed-check")
    }
    assert listed == expected and len(expected) == 5
    # One block per TOM and host, however many of its checks failed.
    blocks = {(b["attrs"]["data-tom"], b["attrs"]["data-host"]) for b in page.select("article", cls="failure")}
    assert blocks == {(tom, host) for tom, host, _, _ in expected} and len(blocks) == 3
    # Skipped checks are listed as not proven.
    unproven = text(page.select("table", cls="unproven")[0])
    assert "backup-nuremberg" in unproven and "no private key of a named admin" in unproven


def test_failed_checks_read_in_plain_words(rendered, lang):
    """Which TOM, which host, expected, found, what to do; pytest's own text only behind a fold."""
    html, t = rendered[lang]["html"], i18n.TEXT[lang]
    for check in all_checks(RESULT).values():
        if check["outcome"] not in ("fail", "error"):
            continue
        tom, host = TOMS[check["tom"]], check["host"]
        start = html.index('<article class="failure', html.index('id="failures"'))
        start = html.index(f'data-tom="{tom.id}" data-host="{host}">', start)
        article = html[start : html.index("</article>", start)]
        block = " ".join(Elements(f"<div {article}").found[0]["text"].split())
        assert tom.title[lang] in block and host in block
        assert t["expected"] in block and tom.statement[lang] in block
        remedy = " ".join(tom.remedy[lang].replace("{host}", host).replace("`", "").split())
        assert remedy.split(" -i ")[0] in block and f"--limit {host}" in block
        assert "{host}" not in block and "{inventory}" not in block
        found = report.observed_items(check["observed"])
        if found:
            assert all(item["what"] in block for item in found)
        else:
            assert t["found_nothing"] in block
        # The raw message is kept, but only inside the fold.
        message = " ".join(check["message"].split())[:50]
        assert any(message in " ".join(pre["text"].split()) for pre in Elements(article).select("pre"))
        assert message not in " ".join(text(e) for e in Elements(without_folds(article)).found)
    error = next(e for e in Elements(html).select("div", cls="failed-check") if e["attrs"]["data-outcome"] == "error")
    assert "tomwerk verify --inventory" in text(error)
    for name, body in (("html", html), ("md", rendered[lang]["md"])):
        for raw in ("AssertionError", "assert ", "CompletedProcess(", "= int("):
            assert raw not in without_folds(body), (name, raw)
    # A fold per failed or erroring check: in "what does not hold", and in the HTML's evidence tables too.
    assert rendered[lang]["md"].count("<details>") == 5 and html.count("<details") == 10


def test_both_languages_render_and_german_is_the_default(rendered, tmp_path):
    default = report.write_reports(FIXTURES / "result.json", out=tmp_path, generated_at=GENERATED)
    assert [p.name for p in default] == ["report.de.html", "report.de.md"]
    assert default[0].read_text(encoding="utf-8") == rendered["de"]["html"]
    assert '<html lang="de">' in rendered["de"]["html"] and "<h1>TOM-Nachweisbericht</h1>" in rendered["de"]["html"]
    assert '<html lang="en">' in rendered["en"]["html"] and "<h1>TOM evidence report</h1>" in rendered["en"]["html"]
    assert rendered["de"]["md"].startswith("# TOM-Nachweisbericht") and rendered["en"]["md"].startswith(
        "# TOM evidence report"
    )
    for lang, other in (("de", "en"), ("en", "de")):
        # Fixed text is translated: no longer phrase of the other language slips in.
        foreign = [v for k, v in i18n.TEXT[other].items() if "{" not in v and len(v) > 12 and v != i18n.TEXT[lang][k]]
        for phrase in foreign:
            assert phrase not in rendered[lang]["html"], (lang, phrase)
        # Titles and promises come from the catalogue in the report's language.
        assert TOMS["TOM-SSH-01"].title[lang] in rendered[lang]["html"]
        assert TOMS["TOM-SSH-01"].statement[lang] in rendered[lang]["md"]


def test_markdown_has_the_same_rows(rendered, lang):
    markdown, t = rendered[lang]["md"], i18n.TEXT[lang]
    matrix = md_table(markdown, f"### {t['matrix']}")
    assert [row[0].split("]")[0].lstrip("[") for row in matrix] == [tom.id for tom in COVERED]
    for row, tom in zip(matrix, COVERED, strict=True):
        assert row[1] == tom.title[lang]
        assert row[2:] == [i18n.STATUS[lang][expected_status(RESULT, tom, h)] for h in RESULT["hosts"]]

    # What does not hold: one heading per TOM and host, in the HTML's order, then its checks' outcomes.
    section = markdown[markdown.index(f"### {t['not_holding']}") : markdown.index(f"### {t['not_verified']}")]
    headings = [line[5:] for line in section.splitlines() if line.startswith("#### ")]
    page = Elements(rendered[lang]["html"])
    articles = [a["attrs"] for a in page.select("article", cls="failure")]
    assert headings == [
        f"{a['data-tom']} {TOMS[a['data-tom']].title[lang]} {t['on_host']} {a['data-host']}" for a in articles
    ]
    outcomes = re.findall(r"^\*\*(. \S+)\*\* · ", section, flags=re.MULTILINE)
    assert outcomes == [i18n.OUTCOME[lang][c["attrs"]["data-outcome"]] for c in page.select("div", cls="failed-check")]
    # Per TOM: one row per check in the evidence table.
    for tom in COVERED:
        heading = f"### {tom.id} {tom.title[lang]}"
        rows = md_table(markdown, heading)
        expected = [
            len(RESULT["hosts"][h]["toms"][tom.id]["checks"]) if tom.id in RESULT["hosts"][h]["toms"] else 1
            for h in RESULT["hosts"]
            if expected_status(RESULT, tom, h) != "na"
        ]
        assert len(rows) == sum(expected)


def test_markdown_links_point_at_headings(rendered, lang):
    markdown = rendered[lang]["md"]
    headings = {
        report.heading_anchor(line.lstrip("#").strip()) for line in markdown.splitlines() if line.startswith("#")
    }
    links = re.findall(r"\]\(#([^)]+)\)", markdown)
    assert links and set(links) <= headings


def test_planned_toms_are_listed_as_not_yet_covered(rendered, lang):
    page = Elements(rendered[lang]["html"])
    sections = {s["attrs"]["data-tom"]: s for s in page.select("section", cls="tom")}
    assert list(sections) == [t.id for t in TECHNICAL] + [t.id for t in ORGANISATIONAL]  # catalogue order
    for tom in PLANNED:
        assert sections[tom.id]["attrs"]["data-status"] == "planned"
        assert i18n.TEXT[lang]["planned_note"] in text(sections[tom.id])
        assert tom.statement[lang] in text(sections[tom.id])
    source = TOMS["TOM-SSH-01"].sources[0]
    assert source["seed"] in text(sections["TOM-SSH-01"]) and source["section"] in text(sections["TOM-SSH-01"])


def test_organisational_evidence_is_shown_or_marked_missing(rendered, lang):
    page = Elements(rendered[lang]["html"])
    sections = {s["attrs"]["data-tom"]: s for s in page.select("section", cls="org")}
    overview = {r["attrs"]["data-tom"]: r for r in page.select("tr") if r["attrs"].get("data-status")}
    for tom in ORGANISATIONAL:
        assert sections[tom.id]["attrs"]["data-status"] == org_status(RESULT, tom), tom.id
        assert overview[tom.id]["attrs"]["data-status"] == org_status(RESULT, tom), tom.id
    assert sections["TOM-ORG-06"]["attrs"]["data-status"] == "no_record"
    assert i18n.STATUS[lang]["no_record"] in text(sections["TOM-ORG-06"])
    # The journal lives on the admin host: said so, not shown as missing or as an empty cell.
    assert sections["TOM-ORG-02"]["attrs"]["data-status"] == "elsewhere"
    assert i18n.TEXT[lang]["journal_pending"] in text(sections["TOM-ORG-02"])
    assert i18n.STATUS[lang]["elsewhere"] in text(overview["TOM-ORG-02"])
    assert "TOM-ORG-02" in text(page.select("div", cls="headline")[0])
    # The fixture's records are not marked as examples.
    assert not page.select(cls="example")

    # Reviews (a list of dicts) become a table with a header per key.
    html = rendered[lang]["html"]
    org01 = html[html.index('id="TOM-ORG-01"') : html.index('id="TOM-ORG-02"')]
    assert [text(th) for th in Elements(org01).select("th")] == ["date", "reviewer", "scope", "result"]
    for review in RESULT["organisational"]["tomwerk_org_reviews"]:
        assert review["date"] in org01 and review["reviewer"] in org01
    reviews_md = md_table(rendered[lang]["md"], f"### TOM-ORG-01 {TOMS['TOM-ORG-01'].title[lang]}")
    assert [row[:2] for row in reviews_md] == [
        [r["date"], r["reviewer"]] for r in RESULT["organisational"]["tomwerk_org_reviews"]
    ]


def test_html_is_self_contained_and_printable(rendered, lang):
    html = rendered[lang]["html"]
    for forbidden in ("<script", "<link", "<img", "<iframe", "@import", "url(", "src="):
        assert forbidden not in html
    assert not re.search(r'href="(?!#)', html)  # only links inside the page
    assert "@page {" in html and "size: A4" in html and "@media print" in html


def test_values_from_hosts_are_escaped(tmp_path):
    result = copy.deepcopy(RESULT)
    check = result["hosts"]["web1"]["toms"]["TOM-SSH-01"]["checks"][0]
    check["observed"] = {"banner": "<script>alert(1)</script> | x"}
    check["message"] = "<b>bold</b>"
    check["outcome"] = "fail"
    path = tmp_path / "result.json"
    path.write_text(json.dumps(result))
    html_file, md_file = report.write_reports(path, lang="en", out=tmp_path, generated_at=GENERATED)
    html, markdown = html_file.read_text(encoding="utf-8"), md_file.read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>bold</b>" not in html and "<b>bold</b>" not in markdown
    row = next(line for line in markdown.splitlines() if "alert(1)" in line and line.startswith("|"))
    assert len(re.split(r"(?<!\\)\|", row)) == 7  # the pipe inside the value does not split the row


def test_unchecked_and_not_applicable_cells():
    result = copy.deepcopy(RESULT)
    del result["hosts"]["web1"]["toms"]["TOM-SSH-01"]  # e.g. deselected with -k
    result["hosts"]["appliance1"] = {"roles": [], "toms": {}}
    view = report.build_view(result, TOMS, "en", generated_at=GENERATED)
    cells = {(row["id"], c["host"]): c["status"] for row in view["matrix"] for c in row["cells"]}
    assert cells[("TOM-SSH-01", "web1")] == "not_checked"
    assert cells[("TOM-SSH-01", "appliance1")] == "na"
    ssh01 = next(t for t in view["technical"] if t["id"] == "TOM-SSH-01")
    assert ssh01["status"] == "unproven"
    assert ("TOM-SSH-01", "web1") in {(r["tom"], r["host"]) for r in view["unproven"]}
    assert "every host they apply to" in view["headline"][0]
    html = report.render(view, "html")
    assert 'data-host="appliance1" data-status="na"' in html


def test_checks_across_hosts_are_a_named_column_not_a_host():
    result = copy.deepcopy(RESULT)
    result["hosts"][""] = {"roles": [], "toms": copy.deepcopy(result["hosts"]["web1"]["toms"])}
    for lang, label in (("en", "across hosts"), ("de", "hostübergreifend")):
        view = report.build_view(result, TOMS, lang, generated_at=GENERATED)
        assert view["hosts"][-1] == label and "" not in view["hosts"]
        figures = {f["key"]: f["value"] for group in view["figure_groups"] for f in group["figures"]}
        assert figures["hosts"] == len(RESULT["hosts"])  # the column is not counted as a host


def test_report_names_each_hosts_debian_release():
    result = copy.deepcopy(RESULT)
    result["hosts"]["web1"]["release"] = "Debian 13.8 (trixie)"
    result["hosts"][""] = {"roles": [], "toms": {}}
    for lang in ("de", "en"):
        html = report.render(report.build_view(result, TOMS, lang, generated_at=GENERATED), "html")
        rows = dict(re.findall(r"<tr><th>([^<]+)</th><td>([^<]*)</td></tr>", html))
        shown = rows[i18n.TEXT[lang]["meta_hosts"]]
        assert "web1 (Debian 13.8 (trixie))" in shown
        assert shown.startswith(f"{len(RESULT['hosts'])} ")  # the checks across hosts are no host


def test_empty_record_is_not_a_record():
    result = copy.deepcopy(RESULT)
    result["organisational"]["tomwerk_org_disclosures"] = []
    view = report.build_view(result, TOMS, "de", generated_at=GENERATED)
    disclosures = next(o for o in view["organisational"] if o["id"] == "TOM-ORG-10")
    assert disclosures["status"] == "empty" and "leer" in disclosures["note"]


def test_bad_input_is_reported(tmp_path, capsys):
    assert cli.main(["report", "--result", str(tmp_path / "missing.json")]) == 2
    assert "run `tomwerk verify` first" in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "something-else/1"}))
    with pytest.raises(report.ReportError, match="schema"):
        report.load_result(other)
    with pytest.raises(report.ReportError, match="format"):
        report.write_reports(FIXTURES / "result.json", formats=["docx"], out=tmp_path)


def test_pdf_without_chromium_is_one_clear_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(report, "CHROMIUM", tmp_path / "no-chromium")
    argv = ["report", "--result", str(FIXTURES / "result.json"), "--format", "html,pdf", "--out", str(tmp_path)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Chromium" in err and "not found" in err
    assert not list(tmp_path.glob("report.*"))  # refused before anything was written


def test_remedies_name_the_inventory_as_the_controller_uses_it():
    result = copy.deepcopy(RESULT)
    result["inventory"] = str(ROOT / "inventories" / "lab")
    view = report.build_view(result, TOMS, "en", generated_at=GENERATED)
    fw01 = next(f for f in view["failures"] if f["tom"] == "TOM-FW-01")
    commands = [part["text"] for part in fw01["remedy"] if part["code"]]
    assert "ansible-playbook -i inventories/lab playbooks/site.yml --limit web1" in commands
    # Elsewhere (the admin host's snapshot) the path is no inventory to provision from: a placeholder.
    assert report.inventory_argument("/etc/tomwerk/verify/inventory.yml", "<inventory>") == "<inventory>"


def test_report_names_its_date_catalogue_and_result(rendered, lang):
    """Enough to match a printed copy to its run: when made, which catalogue, which result.json."""
    html, markdown, t = rendered[lang]["html"], rendered[lang]["md"], i18n.TEXT[lang]
    made = GENERATED.strftime(i18n.TIME_FORMAT[lang])
    cover = text(Elements(html).select("header", cls="cover")[0])
    for shown in (made, TOMS.version, RESULT_SHA256):
        assert shown in cover, shown
        assert shown in markdown.split(f"## {t['summary']}")[0], shown  # the Markdown's head
        assert shown in markdown.rsplit("\n---\n", 1)[1], shown  # and its foot
    # The printed pages' footer (CSS margin boxes, see test_pdf_...).
    page_rule = html[html.index("@page {") : html.index("@media print")]
    assert RESULT_SHA256 in page_rule and "@bottom-left" in page_rule
    rows = dict(re.findall(r"<tr><th>([^<]+)</th><td>([^<]*)</td></tr>", html))
    assert rows[t["meta_result_sha"]] == RESULT_SHA256
    assert rows[t["meta_catalogue"]].startswith(t["meta_catalogue_value"].format(version=TOMS.version))
    assert TOMS.sha256 in rows[t["meta_catalogue"]]


def test_example_records_are_marked(lang):
    result = copy.deepcopy(RESULT)
    result["organisational"][report.EXAMPLES_FLAG] = True
    view = report.build_view(result, TOMS, lang, generated_at=GENERATED)
    marked = {o["id"] for o in view["organisational"] if o["example"]}
    assert marked == {t.id for t in ORGANISATIONAL if org_status(RESULT, t) in ("recorded", "empty")}
    assert "TOM-ORG-02" not in marked  # the journal is not the inventory's record
    assert i18n.TEXT[lang]["headline_org_examples"] in view["headline"]
    page = Elements(report.render(view, "html"))
    rows = [r for r in page.select("tr") if r["attrs"].get("data-example") == "true"]
    assert {r["attrs"]["data-tom"] for r in rows} == marked
    assert all(i18n.TEXT[lang]["example_badge"] in text(r) for r in rows)
    markdown = report.render(view, "md")
    assert markdown.count(f"*({i18n.TEXT[lang]['example_badge']})*") == len(marked)


def test_the_journal_reads_in_words_where_it_is_available():
    result = copy.deepcopy(RESULT)
    result["organisational"]["/var/lib/tomwerk/access-journal.jsonl"] = {
        "intact": True, "problem": "", "entries": 3, "accesses": 2, "notification_open": 1,
        "notification_overdue": 0, "notify_within_hours": 48,
    }  # fmt: skip
    view = report.build_view(result, TOMS, "de", generated_at=GENERATED)
    journal = next(o for o in view["organisational"] if o["id"] == "TOM-ORG-02")
    assert journal["status"] == "recorded"
    pairs = {key: report.flat(value) for key, value in journal["value"]["pairs"]}
    assert pairs == {
        "Hash-Kette unversehrt": "ja", "Einträge": "3", "Zugriffe": "2",
        "Meldung an den Kunden offen": "1", "Meldung überfällig": "0", "Meldefrist": "48 Stunden",
    }  # fmt: skip


def test_the_lab_records_every_organisational_tom_as_an_example():
    """The lab inventory holds a (made-up) record for each organisational TOM, and says they are examples."""
    found = verify.organisational_evidence(Inventory(ROOT / "inventories" / "lab"), TOMS, warn=pytest.fail)
    assert found.pop(report.EXAMPLES_FLAG) is True
    result = {**copy.deepcopy(RESULT), "organisational": {**found, report.EXAMPLES_FLAG: True}}
    view = report.build_view(result, TOMS, "en", generated_at=GENERATED)
    statuses = {o["id"]: (o["status"], o["example"]) for o in view["organisational"]}
    journal = [t.id for t in ORGANISATIONAL if t.evidence["record"] == "journal"]
    assert statuses == {
        t.id: ("elsewhere", False) if t.id in journal else ("recorded", True) for t in ORGANISATIONAL
    }, "every inventory record set (toms.yml evidence.where) in inventories/lab/group_vars/all/records.yml"


def test_cli_writes_next_to_the_result_by_default(tmp_path, capsys):
    run_dir = tmp_path / "results" / "20261121T090002Z"
    run_dir.mkdir(parents=True)
    shutil.copy(FIXTURES / "result.json", run_dir / "result.json")
    (tmp_path / "results" / "latest").symlink_to(run_dir.name)
    assert cli.main(["report", "--result", str(tmp_path / "results" / "latest" / "result.json"), "--format", "md"]) == 0
    assert (run_dir / "report.de.md").exists()
    assert capsys.readouterr().out.strip().endswith("report.de.md")


def test_translations_are_complete():
    for table in (i18n.TEXT, i18n.STATUS, i18n.OUTCOME):
        assert set(table["de"]) == set(table["en"])
    for key in i18n.TEXT["de"]:
        placeholders = {lang: set(re.findall(r"{(\w+)}", i18n.TEXT[lang][key])) for lang in i18n.LANGUAGES}
        assert placeholders["de"] == placeholders["en"], key


def test_templates_ship_with_the_package():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'\[tool\.setuptools\.package-data\]\s*\ntomwerk = \[[^\]]*"templates/\*', pyproject)
    assert {p.name for p in (ROOT / "tomwerk" / "templates").iterdir()} >= set(report.FORMATS.values())


def test_sample_report_is_kept_in_docs():
    sample = (ROOT / "docs" / "sample-report.md").read_text(encoding="utf-8")
    assert sample.startswith("# TOM evidence report")
    png = ROOT / "docs" / "sample-report.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size < 300_000


# ----------------------------------------------------------------- the HTML in a real browser


def decode_png(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """(width, height, channels, rows) of an 8-bit RGB/RGBA PNG, with the standard library only."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and interlace == 0 and color in (2, 6)
    bpp = {2: 3, 6: 4}[color]
    raw, stride = zlib.decompress(idat), width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:  # Sub
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:  # Up
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif kind == 3:  # Average
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:  # Paeth
            for i in range(stride):
                a, b = (line[i - bpp] if i >= bpp else 0), prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def screenshot(html: Path, png: Path, profile: Path, size: tuple[int, int] = (1280, 1800)) -> None:
    subprocess.run(
        [
            str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}", f"--screenshot={png}",
            html.resolve().as_uri(),
        ],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


@needs_chromium
def test_html_renders_in_headless_chromium(rendered, tmp_path):
    html = tmp_path / "report.de.html"
    html.write_text(rendered["de"]["html"], encoding="utf-8")
    png = tmp_path / "report.png"
    screenshot(html, png, tmp_path / "profile")

    width, height, channels, rows = decode_png(png.read_bytes())
    assert (width, height) == (1280, 1800)
    pixels = [row[x : x + 3] for row in rows[::6] for x in range(0, width * channels, channels * 6)]
    colours = set(pixels)
    not_white = sum(1 for p in pixels if p != b"\xff\xff\xff") / len(pixels)
    assert len(colours) > 50, "the page looks blank or flat"
    assert 0.05 < not_white < 0.9
    # The status colours are on screen: the "holds" and "does not hold" cell backgrounds.
    for name in ("pass-bg", "fail-bg"):
        hex_colour = re.search(rf"--{name}: #([0-9a-f]{{6}})", rendered["de"]["html"]).group(1)
        assert bytes.fromhex(hex_colour) in colours, name


def read_pgm(data: bytes) -> tuple[int, int, bytes]:
    """(width, height, pixels) of a binary 8-bit greyscale PGM (P5), as pdftoppm -gray writes it."""
    fields, pos = [], 0
    while len(fields) < 4:  # magic, width, height, maxval; '#' starts a comment
        while data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        end = pos
        while not data[end : end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    assert fields[0] == b"P5" and fields[3] == b"255"
    width, height = int(fields[1]), int(fields[2])
    return width, height, data[pos + 1 : pos + 1 + width * height]


@needs_chromium
@pytest.mark.skipif(not shutil.which("pdftoppm"), reason="needs pdftoppm and pdftotext (Debian package poppler-utils)")
def test_pdf_has_no_blank_page_and_names_its_result(tmp_path):
    pdf, png = report.write_reports(
        FIXTURES / "result.json", lang="de", formats=["pdf", "png"], out=tmp_path, generated_at=GENERATED
    )
    assert pdf.read_bytes()[:5] == b"%PDF-"
    subprocess.run(["pdftoppm", "-gray", "-r", "20", str(pdf), str(tmp_path / "page")], check=True, timeout=120)
    pages = sorted(tmp_path.glob("page-*.pgm"))
    assert len(pages) >= 5, "the whole report, not just its first screen"
    for page in pages:
        width, height, pixels = read_pgm(page.read_bytes())
        # Above the footer (the bottom 19 mm of 297): the footer alone must not pass for a page.
        body = pixels[: width * int(height * (1 - 19 / 297))]
        inked = sum(1 for value in body if value < 200) / len(body)
        assert inked > 0.002, f"{page.name} looks blank ({inked:.4f} of the page inked)"
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    printed = [p for p in text.split("\f") if p.strip()]
    assert len(printed) == len(pages)
    # The SHA-256 of the result.json: on the first page, and in the footer of every page.
    assert all(RESULT_SHA256 in p for p in printed), [i for i, p in enumerate(printed, 1) if RESULT_SHA256 not in p]
    assert TOMS.version in printed[0] and GENERATED.strftime(i18n.TIME_FORMAT["de"]) in printed[0]
    width, height, channels, rows = decode_png(png.read_bytes())
    assert (width, height) == report.SCREEN
    assert len({row[x : x + 3] for row in rows[::20] for x in range(0, width * channels, channels * 20)}) > 20


def test_a_role_that_does_not_carry_the_tom_shows_the_catalogues_reason(rendered, lang):
    """web1 carries antivirus but takes no mail: TOM-AV-02 is "does not apply", with the catalogue's reason."""
    tom = TOMS["TOM-AV-02"]
    assert "antivirus" in RESULT["hosts"]["web1"]["roles"] and "TOM-AV-02" not in RESULT["hosts"]["web1"]["toms"]
    page = Elements(rendered[lang]["html"])
    cells = {(c["attrs"]["data-tom"], c["attrs"]["data-host"]): c for c in page.select("td", cls="cell")}
    assert cells[("TOM-AV-02", "web1")]["attrs"]["data-status"] == "na"
    notes = [text(p) for p in page.select("p", cls="exempt") if p["attrs"].get("data-host") == "web1"]
    assert any(tom.not_applicable["antivirus"][lang] in note for note in notes), notes
    assert tom.not_applicable["antivirus"][lang] in rendered[lang]["md"]
