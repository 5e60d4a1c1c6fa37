"""The report's sections as an official reads them, on small warehouses made here (no sync):
an empty one says why in place of each chart, months are labelled 2026-03 and thousands
1,000 on every axis, and every integrity level the measures name has its row."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipelines.clock import BEIJING, AsOf
from pipelines.reports.figures import read_figures
from pipelines.reports.quality import DataQuality
from pipelines.reports.render import render_report
from pipelines.warehouse.reader import read_only_engine
from pipelines.warehouse.spec import duckdb_type, load_spec

AS_OF = AsOf(dt.datetime(2026, 12, 7, 23, 45, tzinfo=BEIJING))
SECTIONS = ["一、志愿者", "二、志愿服务时长", "三、志愿服务组织", "四、组织评估", "五、诚信与退出",
            "六、志愿服务站点", "七、时间银行", "八、品牌项目", "九、数据质量"]


def warehouse(path, rows: dict[str, list[dict]] | None = None) -> str:
    """A DuckDB warehouse with every table and mart of the spec, holding `rows` only."""
    with duckdb.connect(str(path)) as con:
        for table in load_spec().tables.values():
            columns = ", ".join(f'"{c.name}" {duckdb_type(c)}' for c in table.columns)
            con.execute(f'CREATE TABLE "{table.name}" ({columns})')
        for name, records in (rows or {}).items():
            frame = pd.DataFrame(records)  # noqa: F841 - read by DuckDB below
            con.execute(f'INSERT INTO "{name}" BY NAME SELECT * FROM frame')
    return f"duckdb:///{path}"


def render(url: str) -> str:
    engine = read_only_engine(url)
    try:
        figures = read_figures(engine)
    finally:
        engine.dispose()
    quality = DataQuality(landed_rows=pd.DataFrame(columns=["source", "stream", "syncs", "row_count"]),
                          review_queue=None)
    return render_report(figures, quality, as_of=AS_OF)


def body_text(page: str) -> str:
    return re.sub(r"<script.*?</script>", "", page, flags=re.S)


def charts(page: str) -> list[dict]:
    """The layout of every chart of the page, as plotly draws it."""
    layouts = []
    for call in re.findall(r"Plotly\.newPlot\(\s*\"chart-\d+\",\s*(\[.*?\]),\s*(\{.*?\}),\s*\{\"displayModeBar", page, re.S):
        layouts.append(json.loads(call[1]))
    return layouts


def test_an_empty_warehouse_says_why_in_every_section_instead_of_bare_axes(tmp_path):
    page = render(warehouse(tmp_path / "empty.duckdb"))
    text = body_text(page)
    assert '"charts": 0' in page, "a chart of nothing draws axes from -1 to 6"
    for section, following in zip(SECTIONS, SECTIONS[1:] + ["</body>"]):
        part = text[text.index(section):text.index(following)]
        assert '<p class="note">' in part, f"{section} is blank"
    assert "暂无数据" in text and "<th>" not in text.split("九、数据质量")[0]
    assert "每个县（市、区）都有站点" not in text  # no county known: coverage cannot be claimed


def test_months_read_2026_03_and_numbers_carry_thousands_on_every_axis(tmp_path):
    months = [{"month": f"2026-{m:02d}", "prefecture_code": "5201", "category": "社区服务",
               "services": 900 * m, "hours": 1500.5 * m, "volunteers": 10} for m in (1, 2, 5, 12)]
    page = render(warehouse(tmp_path / "months.duckdb", {"mart_service_hours_by_month": months}))
    layouts = charts(page)
    assert layouts, "no chart drawn"
    monthly = [layout for layout in layouts if "每月志愿服务时长" in json.dumps(layout, ensure_ascii=False)]
    assert monthly and monthly[0]["xaxis"]["tickformat"] == "%Y-%m"
    for layout in layouts:
        for axis in ("xaxis", "yaxis"):
            assert layout[axis].get("exponentformat") == "none" and layout[axis].get("separatethousands")
    assert "2026-12 为不完整月份（截至 12月7日）" in body_text(page)


def test_every_integrity_level_has_its_row_even_when_no_organization_holds_it(tmp_path):
    rows = [{"prefecture_code": "5201", "prefecture_name": "贵阳市", "credit_status": "良好",
             "organizations": 3, "active": 3, "suspended": 0, "exited": 0}]
    text = body_text(render(warehouse(tmp_path / "integrity.duckdb", {"mart_organization_integrity": rows})))
    table = text[text.index('id="integrity"'):]
    table = table[:table.index("</table>")]
    assert [re.sub(r"<.*?>", "", cell) for cell in re.findall(r"<tr><td>(.*?)</td>", table)] == ["良好", "警示", "失信"]


def test_the_organizations_figure_says_it_leaves_exited_ones_out(tmp_path):
    """The warehouse's `organizations` (warehouse/publish's metadata, the integrity table)
    counts exited organizations; the report's headline, like the registration rate,
    does not: under one unqualified name the dashboard and the report disagreed (58 and 56)."""
    from pipelines.reports.render import key_figure_boxes

    province = [{"area_level": "province", "area_code": "52", "area_name": "贵州省", "organizations": 56,
                 "registered": 21, "filed": 12, "unregistered": 23, "hubs": 2, "registration_rate": 0.375}]
    engine = read_only_engine(warehouse(tmp_path / "orgs.duckdb", {"mart_organization_registration_rate": province}))
    try:
        figures = read_figures(engine)
    finally:
        engine.dispose()
    assert ("志愿服务组织（个，不含已删除、已退出）", "56") in key_figure_boxes(figures)
    assert "organizations" not in figures.key_figures()
    assert figures.key_figures()["organizations_not_exited"] == 56


def test_the_brand_table_says_its_projects_are_counted_in_each_system(tmp_path):
    """A project run in both systems is a national project and a provincial activity, which
    nothing links: the sandbox's 8 西部计划 projects showed as 10 under a bare 项目."""
    brands = [{"brand": "西部计划", "projects": 10, "volunteers": 200, "services": 304, "hours": 1379.2}]
    text = body_text(render(warehouse(tmp_path / "brands.duckdb", {"mart_brand_programmes": brands})))
    table = text[text.index('id="brand-programmes"'):]
    assert "<th>项目与活动（两系统分别计）</th>" in table[:table.index("</table>")]
    assert "同一项目在两个系统中各有记录的计为两个" in table


def test_the_checks_panel_says_in_chinese_what_each_check_looks_at(tmp_path):
    """The panel listed failing checks by their code alone (newest_update_age 未通过), which
    an official cannot read; every check of the code location has its Chinese meaning."""
    from pipelines.definitions import defs
    from pipelines.reports import labels
    from pipelines.reports.quality import CheckOutcome

    names = {key.name for key in defs.resolve_asset_graph().asset_check_keys}
    assert names <= set(labels.CHECKS), sorted(names - set(labels.CHECKS))
    engine = read_only_engine(warehouse(tmp_path / "checks.duckdb"))
    try:
        figures = read_figures(engine)
    finally:
        engine.dispose()
    quality = DataQuality(landed_rows=pd.DataFrame(columns=["source", "stream", "syncs", "row_count"]),
                          review_queue=None,
                          checks=[CheckOutcome("raw/provincial_stations", "newest_update_age", False, False),
                                  CheckOutcome("raw/provincial_stations", "a_new_check", True, False)])
    text = body_text(render_report(figures, quality, as_of=AS_OF))
    rows = re.findall(r"<tr><td>raw/provincial_stations</td>(.*?)</tr>", text)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows]
    assert ["newest_update_age", "警告", "未通过", "最新变更是否及时"] in cells
    assert ["a_new_check", "警告", "通过", "—"] in cells


@pytest.mark.filterwarnings("ignore::pipelines.config.DevelopmentKeyWarning")
def test_the_dashboard_links_the_report_where_officials_browsers_reach_it(tmp_path):
    """The asset's `report` link was the file on the server (file:///srv/...): a browser
    refuses it from the Dagster UI's page ("Not allowed to load local resource"), and on an
    official's own machine it names their disk. With REPORTS_URL it is the served address."""
    from pipelines.config import Settings
    from pipelines.reports import report_link

    path = Path(tmp_path) / "reports" / "statistics-20261207T234533-88cdc3d0.html"
    served = Settings.from_env({"REPORTS_URL": " https://stats.example.gov.cn/reports/ ", "DATA_DIR": str(tmp_path)})
    assert report_link(served, path) == "https://stats.example.gov.cn/reports/statistics-20261207T234533-88cdc3d0.html"
    assert report_link(Settings(data_dir=tmp_path), path) == path.resolve().as_uri()


def test_a_share_too_small_to_show_is_not_written_as_none():
    from pipelines.reports import labels

    assert labels.share(1 / 2245) == "<0.1%" and labels.share(2244 / 2245) == ">99.9%"
    assert (labels.share(0), labels.share(1), labels.share(0.0005), labels.share(0.4523)) == ("0.0%", "100.0%", "0.1%", "45.2%")


def test_a_year_without_registrations_or_exits_keeps_its_place(tmp_path):
    events = [{"year": year, "prefecture_code": "5201", "newly_registered": n, "exited": 0}
              for year, n in ((2019, 2), (2022, 1))]
    text = body_text(render(warehouse(tmp_path / "years.duckdb", {"mart_organization_events_by_year": events})))
    table = text[text.index('id="organization-events-by-year"'):]
    table = table[:table.index("</table>")]
    assert re.findall(r"<tr><td>(\d{4})年</td>", table) == ["2019", "2020", "2021", "2022"]


def test_registrations_whose_year_is_not_known_are_a_row_of_their_own(tmp_path):
    """The mart counts a registration without a known year under year null; the page lists the
    years, then 年份不详, so the rows add up to every registered organization."""
    events = [{"year": 2019, "prefecture_code": "5201", "newly_registered": 2, "exited": 0},
              {"year": 2021, "prefecture_code": "5201", "newly_registered": 1, "exited": 1},
              {"year": None, "prefecture_code": "5201", "newly_registered": 3, "exited": 0}]
    text = body_text(render(warehouse(tmp_path / "unknown-year.duckdb", {"mart_organization_events_by_year": events})))
    table = text[text.index('id="organization-events-by-year"'):]
    table = table[:table.index("</table>")]
    assert re.findall(r"<tr><td>(.*?)</td><td[^>]*>(.*?)</td>", table) == [
        ("2019年", "2"), ("2020年", "0"), ("2021年", "1"), ("年份不详", "3")]
    assert "年份不详：首次同步时已是登记状态、但两个系统均未填写成立日期的组织" in text


def test_the_star_distribution_says_the_hours_each_star_takes(tmp_path):
    """The stars were counted on thresholds the page never said; the note's hours are the
    ones the warehouse rates by."""
    prefecture = [{"prefecture_code": "5201", "prefecture_name": "贵阳市", "volunteers": 3, "active": 3,
                   "in_both_systems": 1, **{f"star_{level}": int(level < 3) for level in range(6)}}]
    text = body_text(render(warehouse(tmp_path / "stars.duckdb", {"mart_volunteers_by_prefecture": prefecture})))
    assert "一星100小时、二星300小时、三星600小时、四星1,000小时、五星1,500小时" in text
    build = (Path(__file__).resolve().parents[2] / "pipelines" / "warehouse" / "build.py").read_text(encoding="utf-8")
    for hours in (100, 300, 600, 1000, 1500):
        assert f"total_hours >= {hours} THEN" in build, hours
