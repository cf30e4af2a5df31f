"""`tomwerk report` from a recorded result: what the report shows equals what the result says.

Expected values are computed here from result.json and the catalogue,
independently of tomwerk.report, and compared with the parsed HTML and
Markdown.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tomwerk import ROOT, catalogue, cli, i18n, report

FIXTURES = Path(__file__).parent / "fixtures" / "report"
RESULT = json.loads((FIXTURES / "result.json").read_text(encoding="utf-8"))
TOMS = catalogue.load()
TECHNICAL = [t for t in TOMS.values() if t.technical]
COVERED = [t for t in TECHNICAL if t.status == "implemented"]
PLANNED = [t for t in TECHNICAL if t.status == "planned"]
ORGANISATIONAL = [t for t in TOMS.values() if not t.technical]
GENERATED = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC)
CHROMIUM = Path("/usr/bin/chromium")


# ----------------------------------------------------------------- expectations from the result


def expected_status(result: dict, tom, host: str) -> str:
    entry = result["hosts"][host]
    if tom.id in entry["toms"]:
        return entry["toms"][tom.id]["status"]
    return "not_checked" if set(tom.roles) & set(entry["roles"]) else "na"


def holds_everywhere(result: dict, tom) -> bool:
    statuses = [expected_status(result, tom, h) for h in result["hosts"]]
    return all(s in ("pass", "na") for s in statuses) and "pass" in statuses


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
    recorded = [
        t for t in ORGANISATIONAL if RESULT["organisational"].get(t.evidence["where"]) not in (None, [], {}, "")
    ]
    assert figures == {
        "hosts": len(RESULT["hosts"]),
        "toms_total": len(TECHNICAL),
        "toms_covered": len(COVERED),
        "toms_hold": len(held),
        "toms_not_hold": len(failing),
        "toms_unproven": len(COVERED) - len(held) - len(failing),
        "toms_planned": len(PLANNED),
        "org_total": len(ORGANISATIONAL),
        "org_recorded": len(recorded),
        "org_missing": len(ORGANISATIONAL) - len(recorded),
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
    rows = page.select("tr", cls=None)
    listed = {
        (r["attrs"]["data-tom"], r["attrs"]["data-host"], r["attrs"]["data-check"], r["attrs"]["data-outcome"])
        for r in rows
        if "data-outcome" in r["attrs"]
    }
    assert listed == expected and len(expected) == 5
    table = text(page.select("table", cls="failures")[0])
    for cid, check in all_checks(RESULT).items():
        if check["outcome"] in ("fail", "error"):
            assert check["check"] in table and " ".join(check["message"][:60].split()) in table, cid
    # Skipped checks are listed as not proven.
    unproven = text(page.select("table", cls="unproven")[0])
    assert "backup-nuremberg" in unproven and "no private key of a named admin" in unproven


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

    failures = md_table(markdown, f"### {t['not_holding']}")
    html_rows = [r["attrs"] for r in Elements(rendered[lang]["html"]).select("tr") if "data-outcome" in r["attrs"]]
    assert [(row[0].split()[0], row[1], row[3]) for row in failures] == [
        (r["data-tom"], r["data-host"], i18n.OUTCOME[lang][r["data-outcome"]]) for r in html_rows
    ]
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
    for tom in ORGANISATIONAL:
        value = RESULT["organisational"][tom.evidence["where"]]
        assert sections[tom.id]["attrs"]["data-status"] == ("no_record" if value is None else "recorded"), tom.id
    assert sections["TOM-ORG-06"]["attrs"]["data-status"] == "no_record"
    assert i18n.STATUS[lang]["no_record"] in text(sections["TOM-ORG-06"])
    assert i18n.TEXT[lang]["journal_pending"] in text(sections["TOM-ORG-02"])

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
    assert "@page { size: A4" in html and "@media print" in html


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
    row = next(line for line in markdown.splitlines() if "alert(1)" in line)
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
        report.write_reports(FIXTURES / "result.json", formats=["pdf"], out=tmp_path)


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


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (lab/host-packages.txt installs it)")
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
