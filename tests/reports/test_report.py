"""The officials' statistics report, as an official opens it.

The sync of the shared world wrote it (tests/reports/conftest.py). Its figures are recounted
here with SQL from the warehouse's base tables (not the marts the report reads) and found in
the report's tables; headless Chromium opens it with every network request refused and draws
every chart; it holds none of the world's clear numbers, phones or full names.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.reports import labels

CHROMIUM = "/usr/bin/chromium"


class Tables(HTMLParser):
    """Every <table id=...> of a page as a list of rows of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[tuple[str, ...]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.references: list[str] = []  # every src/href of an element of the page

    def handle_starttag(self, tag, attrs):
        self.references += [value or "" for name, value in attrs if name in ("src", "href")]
        if tag == "table":
            self._table = dict(attrs).get("id")
            self.tables[self._table] = []
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None:
            self._row.append("".join(self._cell or []).strip())
            self._cell = None
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append(tuple(self._row or []))
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def report(synced) -> tuple[Path, str, Tables]:
    path = synced.report_path()
    page = path.read_text(encoding="utf-8")
    parser = Tables()
    parser.feed(page)
    return path, page, parser


def sql_rows(synced, sql: str) -> list[tuple]:
    engine = synced.engine()
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(sql))]
    finally:
        engine.dispose()


def test_one_report_per_sync_linked_from_the_asset(synced, report):
    path, page, parsed = report
    materialization = synced.result.asset_materializations_for_node("reports__statistics")[0]
    assert materialization.metadata["report"].value == path.resolve().as_uri()
    assert path.parent == synced.settings.reports_dir.resolve()
    assert synced.result.run_id[:8] in path.name and "20260630T180000" in path.name
    # self-contained: no element loads or links anything (scripts and styles are inline)
    assert parsed.references == []
    assert page.count("<script") == page.count("<script>") + page.count('<script type="')
    assert materialization.metadata["charts"].value >= 15
    headline = materialization.metadata["figures"].value
    volunteers = sql_rows(synced, "SELECT count(*) FROM dim_volunteer WHERE status <> 'deleted'")[0][0]
    assert f"| 注册志愿者（人） | {volunteers:,} |" in headline


def test_figures_equal_the_warehouse(synced, report):
    _, page, parsed = report
    tables = parsed.tables
    by_prefecture = sql_rows(synced, """
        SELECT r.prefecture_name, count(*), sum(CASE WHEN v.status = 'active' THEN 1 ELSE 0 END)
        FROM dim_volunteer v JOIN dim_region r ON r.region_code = v.region_code
        WHERE v.status <> 'deleted' GROUP BY r.prefecture_name""")
    shown = {row[0]: row[1:3] for row in tables["volunteers-by-prefecture"]}
    assert by_prefecture
    for name, volunteers, active in by_prefecture:
        assert shown[name] == (f"{volunteers:,}", f"{active:,}"), name

    hours_by_month = sql_rows(synced, """
        SELECT strftime(service_date, '%Y-%m'), count(*), sum(hours) FROM fact_service GROUP BY 1""")
    shown = set(tables["hours-by-month"])
    for month, services, hours in hours_by_month:
        assert (month, f"{services:,}", f"{float(hours):,.1f}") in shown, month

    total_hours = sql_rows(synced, "SELECT sum(hours) FROM fact_service")[0][0]
    key_figures = re.search(r'<section class="key-figures".*?</section>', page, re.DOTALL).group(0)
    assert f"<b>{float(total_hours):,.1f}</b>" in key_figures

    registration = dict(sql_rows(synced, """
        SELECT registration_status, count(*) FROM dim_organization
        WHERE status NOT IN ('deleted', 'exited') GROUP BY 1"""))
    province = next(row for row in tables["organizations-by-registration"] if row[0] == "贵州省")
    assert province[2:5] == tuple(f"{registration.get(s, 0):,}" for s in ("registered", "filed", "unregistered"))

    stations = sql_rows(synced, "SELECT host_type, station_type, count(*) FROM dim_station GROUP BY 1, 2")
    assert stations
    header, *by_host = tables["stations-by-host-type"]
    assert header == ("依托类型", "服务站", "服务点", "服务岗", "合计")
    shown = {row[0]: row[1:] for row in by_host}
    for host, kind, n in stations:
        assert shown[host]["站点岗".index(kind)] == f"{n:,}", (host, kind)
    assert sum(int(row[-1].replace(",", "")) for row in by_host) == sum(n for _, _, n in stations)

    quarantined = sql_rows(synced, "SELECT source, entity, rule, count(*) FROM quarantine GROUP BY 1, 2, 3")
    assert quarantined, "the sandbox plants invalid rows: some must be quarantined"
    assert set(tables["quarantine-by-rule"][1:]) == {
        (labels.SOURCES[s], labels.ENTITIES[e], labels.RULES.get(r, r), f"{n:,}") for s, e, r, n in quarantined
    }


def test_data_quality_panel_counts_what_was_landed_and_checked(synced, report):
    _, page, parsed = report
    tables = parsed.tables
    import pyarrow.parquet as pq

    landed = {}
    for page_file in synced.settings.raw_dir.glob("*/*/*/*.parquet"):
        key = (page_file.parts[-4], page_file.parts[-3])
        landed[key] = landed.get(key, 0) + pq.ParquetFile(page_file).metadata.num_rows
    shown = {(row[0], row[1]): row[3] for row in tables["landed-rows"][1:]}
    assert len(landed) == 11
    for (source, stream), rows in landed.items():
        assert shown[(labels.SOURCES[source], labels.STREAMS[stream])] == f"{rows:,}"
    checks = tables["checks"][1:]
    assert len(checks) >= 40 and all(row[3] in ("通过", "未通过", "未运行") for row in checks)
    assert any(row[0] == "warehouse/publish" and row[1] == "hours_add_up" and row[3] == "通过" for row in checks)
    assert "数据仓库发布时间：" in page and "待人工复核" in page


def test_report_holds_no_clear_personal_data(synced, report):
    _, page, _ = report
    persons = synced.truth.persons
    text = re.sub(r"<script>.*?</script>", "", page, flags=re.DOTALL)  # plotly.js itself
    for column, minimum in (("cert_no", 15), ("phone", 11), ("name", 2)):
        leaked = [v for v in persons[column].dropna() if len(v) >= minimum and v in text]
        assert not leaked, column


# Debian's chromium: .ci/run installs it when it is missing (no skip: a missing browser fails)
def test_every_chart_draws_offline_in_chromium(synced, report):
    from playwright.sync_api import sync_playwright

    path, page_text, _ = report
    charts = json.loads(re.search(r'id="report-summary">(.*?)</script>', page_text).group(1))["charts"]
    requests = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"],
        )
        try:
            context = browser.new_context(viewport={"width": 760, "height": 1000})

            def refuse_network(route):
                requests.append(route.request.url)
                if route.request.url.startswith("file://"):
                    route.continue_()
                else:
                    route.abort()

            context.route("**/*", refuse_network)
            page = context.new_page()
            errors = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(path.resolve().as_uri())
            page.wait_for_function(
                f"document.querySelectorAll('figure.chart .main-svg').length >= {charts}", timeout=30_000
            )
            drawn = page.evaluate("""() => Array.from(document.querySelectorAll('figure.chart')).map(f => {
                const plot = f.querySelector('.js-plotly-plot');
                return plot !== null && plot._fullData !== undefined
                    && f.querySelectorAll('.main-svg').length > 0
                    && f.querySelectorAll('g.trace, g.slice, path.point').length > 0;
            })""")
            body_text = page.inner_text("body")
            pdf = page.pdf(format="A4", print_background=True)
        finally:
            browser.close()
    assert not errors
    assert len(drawn) == charts and all(drawn), drawn
    assert [url for url in requests if not url.startswith("file://")] == []
    han = len(re.findall(r"[\u4e00-\u9fff]", body_text))
    latin_words = len(re.findall(r"[A-Za-z]{3,}", body_text))
    assert han > 500 and han > 5 * latin_words
    assert "贵州省志愿服务统计报告" in body_text and "数据质量" in body_text
    assert pdf.startswith(b"%PDF") and len(pdf) > 50_000  # it prints, on A4 pages
    assert re.search(rb"/MediaBox \[0 0 59[56](?:\.\d+)? 84[12](?:\.\d+)?\]", pdf)  # 210 x 297 mm
