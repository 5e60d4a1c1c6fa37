"""The officials' statistics report as one self-contained HTML file.

Officials open it on a government intranet with no internet: plotly.js is inlined once in
the page (plotly ships it; never a CDN link), and so is the style sheet. Every chart sits
above the table of the figures it draws, so the page reads, prints and copies without
scripts; the charts are plotly's interactive ones, sized for an A4 page (@page A4, 680 px
wide) and kept whole across page breaks. Every text that comes from the warehouse passes
`pipelines.privacy.redact` (a brand or a county name typed with a number in it still shows
no number). No Dagster here; plotly is imported when a report is rendered, not at import.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from dataclasses import dataclass, field

import pandas as pd

from pipelines.clock import BEIJING, AsOf
from pipelines.privacy import redact
from pipelines.reports import labels as L
from pipelines.reports.figures import ReportFigures
from pipelines.reports.quality import DataQuality

TITLE = "贵州省志愿服务统计报告"
# What the measures ask the province to know that neither source interface carries (the
# contracts: schemas/sources/*.openapi.yaml): said once, so its absence is not read as zero
NOT_IN_EITHER_SYSTEM = (
    "《关于支持和发展志愿服务组织的实施意见》所列事项中，志愿服务组织孵化基地、志愿者培训基地、"
    "组织承接公共服务项目的情况，全国志愿服务信息系统和“志愿贵州”均未提供数据，本报告未作统计。"
)
CHART_WIDTH = 680  # px: the printable width of A4 with 15 mm margins
CHART_HEIGHT = 320
FONTS = '"Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC", "SimHei", sans-serif'
PALETTE = ["#c0392b", "#2c7fb8", "#e69f00", "#009e73", "#6a51a3", "#8c6d31", "#d95f02", "#7f7f7f"]

STYLE = """
@page { size: A4; margin: 15mm; }
* { box-sizing: border-box; }
body { font-family: %(fonts)s; color: #222; margin: 0 auto; max-width: 720px; padding: 12px; line-height: 1.5; }
h1 { font-size: 22px; border-bottom: 3px solid #c0392b; padding-bottom: 6px; }
h2 { font-size: 18px; color: #c0392b; margin-top: 28px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
.meta { color: #555; font-size: 13px; }
.key-figures { display: grid; grid-template-columns: repeat(3, 1fr); gap: 8px; }
.key-figures div { border: 1px solid #ddd; border-radius: 4px; padding: 6px 8px; }
.key-figures b { display: block; font-size: 20px; }
.key-figures span { color: #555; font-size: 12px; }
figure.chart { margin: 8px 0; break-inside: avoid; page-break-inside: avoid; }
table { border-collapse: collapse; width: 100%%; font-size: 12px; margin: 6px 0 12px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
thead { display: table-header-group; }
tr { break-inside: avoid; page-break-inside: avoid; }
.fail { color: #c0392b; font-weight: bold; }
.note { color: #555; font-size: 12px; }
@media print { body { max-width: none; padding: 0; } h2 { break-after: avoid; } }
""" % {"fonts": FONTS}


def _text(value) -> str:
    """A value from the warehouse, safe to write into the page."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return L.UNKNOWN
    return html.escape(redact(str(value)))


@dataclass
class Column:
    header: str
    field: str
    kind: str = "text"  # text, count, hours, score, share
    labels: dict[str, str] | None = None


def table_html(frame: pd.DataFrame, columns: list[Column], table_id: str) -> str:
    formats = {"count": L.count, "hours": L.hours, "score": L.score, "share": L.share}
    head = "".join(f"<th>{html.escape(c.header)}</th>" for c in columns)
    body = []
    for record in frame.to_dict("records"):
        cells = []
        for column in columns:
            value = record.get(column.field)
            if column.kind == "text":
                cells.append(f"<td>{_text(L.label(column.labels, value) if column.labels else value)}</td>")
            else:
                cells.append(f'<td class="n">{formats[column.kind](value)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<table id="{table_id}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


@dataclass
class Report:
    """The page being written: sections of headings, charts and tables, in order."""

    parts: list[str] = field(default_factory=list)
    charts: int = 0

    def heading(self, text: str, level: int = 2) -> None:
        self.parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def note(self, text: str) -> None:
        self.parts.append(f'<p class="note">{html.escape(text)}</p>')

    def absent(self, frame: pd.DataFrame, why: str) -> bool:
        """True, with `why` written in its place, when `frame` has no rows: a chart of nothing
        draws bare axes (−1 to 6) and a table its header alone, which read as a broken page."""
        if len(frame):
            return False
        self.note(why)
        return True

    def chart(self, figure, caption: str) -> None:
        import plotly.io as pio

        self.charts += 1
        figure.update_layout(
            title={"text": caption, "font": {"size": 14}},
            width=CHART_WIDTH, height=CHART_HEIGHT,
            margin={"l": 60, "r": 20, "t": 40, "b": 60},
            font={"family": FONTS, "size": 11},
            colorway=PALETTE, plot_bgcolor="#fff", paper_bgcolor="#fff",
            legend={"orientation": "h", "y": -0.2},
        )
        # 12,000 on either axis (a horizontal bar's values are on x), never plotly's "12k"
        figure.update_xaxes(gridcolor="#eee", separatethousands=True, exponentformat="none")
        figure.update_yaxes(gridcolor="#eee", separatethousands=True, exponentformat="none")
        div = pio.to_html(
            figure, full_html=False, include_plotlyjs=False, div_id=f"chart-{self.charts}",
            # no mode bar: its buttons are English and officials print the page
            config={"displayModeBar": False, "responsive": False},
        )
        self.parts.append(f'<figure class="chart">{div}</figure>')

    def table(self, frame: pd.DataFrame, columns: list[Column], table_id: str) -> None:
        self.parts.append(table_html(frame, columns, table_id))


def _bar(x, ys: dict[str, list], *, stacked: bool = False, horizontal: bool = False):
    import plotly.graph_objects as go

    figure = go.Figure()
    for name, values in ys.items():
        if horizontal:
            figure.add_bar(y=list(x), x=list(values), name=name, orientation="h")
        else:
            figure.add_bar(x=list(x), y=list(values), name=name)
    figure.update_layout(barmode="stack" if stacked else "group", showlegend=len(ys) > 1)
    if horizontal:
        figure.update_yaxes(autorange="reversed")
    return figure


def _pie(names, values):
    import plotly.graph_objects as go

    return go.Figure(go.Pie(labels=list(names), values=list(values), hole=0.4, sort=False))


def _line(x, ys: dict[str, list]):
    import plotly.graph_objects as go

    figure = go.Figure()
    for name, values in ys.items():
        figure.add_scatter(x=list(x), y=list(values), name=name, mode="lines+markers")
    figure.update_layout(showlegend=len(ys) > 1)
    return figure


def _by_month(figure):
    """A chart over `YYYY-MM` months: a time axis (a month without figures keeps its place)
    labelled 2026-03, where plotly's default writes "Mar 2026" in English."""
    figure.update_xaxes(type="date", tickformat="%Y-%m", hoverformat="%Y-%m")
    return figure


def _partial_month(report: Report, months: pd.Series, as_of: AsOf) -> None:
    """Say that the last month is still under way, so its short bar is not read as a fall."""
    if len(months) and str(months.iloc[-1]) == as_of.instant.strftime("%Y-%m"):
        report.note(f"{months.iloc[-1]} 为不完整月份（截至 {as_of.instant.month}月{as_of.instant.day}日）。")


YEAR_UNKNOWN = "年份不详"


def every_year(events: pd.DataFrame) -> pd.DataFrame:
    """The yearly figures with a row of zeros for each year between the first and the last
    that has none: on the chart's axis of year labels 2019年 stood next to 2022年, as if
    nothing lay between. Registrations whose year is not known (year null: no founding date)
    follow the years as one row, so that the rows add up to every registered organization."""
    known = events[events["year"].notna()]
    unknown = events[events["year"].isna()]
    frame = known.assign(year=known["year"].astype(int)).set_index("year")
    if len(known):
        frame = frame.reindex(range(frame.index.min(), frame.index.max() + 1), fill_value=0)
    frame = frame.rename_axis("year").reset_index()
    frame["year"] = frame["year"].map(lambda y: f"{int(y)}年")
    if len(unknown):
        frame = pd.concat([frame, unknown.assign(year=YEAR_UNKNOWN)], ignore_index=True)
    return frame


# Why an organization's level or integrity is 未知: the national interface has neither field
UNKNOWN_IN_NATIONAL = "“未知”：全国志愿服务信息系统不记录组织的{what}，仅在全国系统中的组织因此{what}未知。"

CREDIT_STATUSES = ["良好", "警示", "失信"]  # the integrity levels the measures name, each shown


def with_every_credit_status(integrity: pd.DataFrame) -> pd.DataFrame:
    """The integrity figures with a row of zeros for a level no organization holds: a
    missing 警示 row reads as "not reported", where it is none."""
    missing = [status for status in CREDIT_STATUSES if status not in set(integrity["credit_status"])]
    zeros = pd.DataFrame({"credit_status": missing, **{c: 0 for c in integrity.columns if c != "credit_status"}})
    return pd.concat([integrity, zeros], ignore_index=True) if missing else integrity


def every_category(categories: pd.DataFrame) -> pd.DataFrame:
    """Organizations by service category with a row of zeros for each category of the national
    list that none works in, and the measures' name of the field beside it: a professional
    field the measures name (消防, 禁毒 ...) with no organization was absent, where an official
    must report it as none. Ordered by organizations, then in the national order."""
    from pipelines.normalize.categories import NATIONAL_LABELS

    missing = [c for c in NATIONAL_LABELS if c not in set(categories["category"])]
    zeros = pd.DataFrame({"category": missing, "organizations": 0, "registered": 0})
    frame = pd.concat([categories, zeros], ignore_index=True) if missing else categories.copy()
    rank = {label: i for i, label in enumerate(NATIONAL_LABELS)}
    frame = frame.assign(_rank=frame["category"].map(lambda c: rank.get(c, len(rank))))
    frame = frame.sort_values(["organizations", "_rank", "category"], ascending=[False, True, True])
    frame["measure_field"] = frame["category"].map(lambda c: L.MEASURE_FIELDS.get(c, "—"))
    return frame.drop(columns="_rank").reset_index(drop=True)


def stations_by_host(hosts: pd.DataFrame) -> pd.DataFrame:
    """Live stations per host type, one column per type (站, 点, 岗) and their total, every
    host type of the interface listed in its order (0 where none): a museum, station or scenic
    spot without a station had no row, where the measures ask for one in each. A host type the
    source adds is kept after them; a missing one is 未知 (pivot_table dropped those rows)."""
    hosts = hosts.assign(host_type=hosts["host_type"].fillna(L.UNKNOWN), station_type=hosts["station_type"].fillna(L.UNKNOWN))
    pivot = hosts.pivot_table(index="host_type", columns="station_type", values="stations", aggfunc="sum", fill_value=0)
    types = L.STATION_TYPES + sorted(set(pivot.columns) - set(L.STATION_TYPES))
    rows = L.STATION_HOSTS + sorted(set(pivot.index) - set(L.STATION_HOSTS))
    pivot = pivot.reindex(index=rows, columns=types, fill_value=0)
    pivot.columns = [str(c) for c in pivot.columns]
    pivot["total"] = pivot.sum(axis=1)
    return pivot.rename_axis("host_type").reset_index()


def key_figure_boxes(figures: ReportFigures) -> list[tuple[str, str]]:
    """The report's headline figures, labelled and written as the report writes them."""
    key = figures.key_figures()
    return [
        ("注册志愿者（人）", L.count(key["volunteers"])),
        ("在册活跃志愿者（人）", L.count(key["active_volunteers"])),
        ("两个系统均有在用账号（人）", L.count(key["in_both_systems"])),
        ("志愿服务时长（小时）", L.hours(key["service_hours"])),
        ("服务记录（条，去重后）", L.count(key["services"])),
        ("志愿服务组织（个，不含已删除、已退出）", L.count(key["organizations_not_exited"])),
        ("组织登记率", L.share(key["registration_rate"])),
        ("服务站点（个）", L.count(key["stations"])),
        ("无站点的县（市、区）", L.count(key["counties_without_station"])),
    ]


def key_figures_markdown(figures: ReportFigures) -> str:
    """The headline figures as a Markdown table (the asset's metadata in the Dagster UI)."""
    lines = ["| 指标 | 数值 |", "| --- | ---: |"]
    return "\n".join(lines + [f"| {name} | {value} |" for name, value in key_figure_boxes(figures)])


def _key_figures(report: Report, figures: ReportFigures) -> None:
    boxes = key_figure_boxes(figures)
    cells = "".join(f"<div><b>{value}</b><span>{html.escape(name)}</span></div>" for name, value in boxes)
    report.parts.append(f'<section class="key-figures" id="key-figures">{cells}</section>')


def _volunteers(report: Report, figures: ReportFigures, as_of: AsOf) -> None:
    report.heading("一、志愿者")
    prefectures = figures["volunteers_by_prefecture"]
    if report.absent(prefectures, "暂无数据：数据仓库中尚无志愿者。"):
        return
    report.chart(
        _bar(prefectures["prefecture_name"], {"注册志愿者": prefectures["volunteers"], "活跃志愿者": prefectures["active"]}),
        "各市（州）注册志愿者与活跃志愿者",
    )
    # persons whose county is unknown are in no county mart: one row says how many
    totals = figures["volunteer_totals"].iloc[0]
    unplaced = {
        "prefecture_name": "地区不详",
        **{column: int(totals[column] or 0) - int(prefectures[column].sum()) for column in ("volunteers", "active")},
        "in_both_systems": None,
    }
    rows = pd.concat([prefectures, pd.DataFrame([unplaced])], ignore_index=True) if unplaced["volunteers"] else prefectures
    report.table(rows, [
        Column("市（州）", "prefecture_name"), Column("注册志愿者", "volunteers", "count"),
        Column("活跃志愿者", "active", "count"), Column("两个系统均有在用账号", "in_both_systems", "count"),
    ], "volunteers-by-prefecture")
    months = figures["registrations_by_month"]
    if not report.absent(months, "暂无数据：没有志愿者的注册日期可按月统计。"):
        report.chart(_by_month(_line(months["month"], {"新注册志愿者": months["new_volunteers"]})), "每月新注册志愿者")
        _partial_month(report, months["month"], as_of)
    report.heading("各县（市、区）志愿者", 3)
    counties = figures["volunteers_by_county"]
    if not report.absent(counties, "暂无数据：没有县（市、区）可知的志愿者。"):
        report.table(counties, [
            Column("市（州）", "prefecture_name"), Column("县（市、区）", "region_name"),
            Column("注册志愿者", "volunteers", "count"), Column("活跃志愿者", "active", "count"),
        ], "volunteers-by-county")
    report.heading("星级分布", 3)
    stars = [int(prefectures[f"star_{level}"].sum()) for level in range(6)]
    report.chart(_bar(L.STARS, {"志愿者": stars}), "志愿者星级分布（按去重后服务时长）")
    report.table(pd.DataFrame({"star": L.STARS, "volunteers": stars}), [
        Column("星级", "star"), Column("志愿者", "volunteers", "count"),
    ], "star-distribution")
    # the basis of the rating, which the page did not say
    report.note("星级按去重后的累计志愿服务时长认定：" + "、".join(
        f"{star}{L.count(hours)}小时" for star, hours in zip(L.STARS[1:], L.STAR_HOURS)) + "；不足100小时为未达一星。")
    _star_agreement(report, figures["star_agreement"])


def _star_agreement(report: Report, agreement: pd.DataFrame) -> None:
    """How far each system's own star rating agrees with the stars of the hours counted once:
    a rating that differs is one a volunteer's certificate and the source would dispute."""
    if not len(agreement):
        return
    report.table(agreement.assign(share=agreement["agreeing"] / agreement["rated"].where(agreement["rated"] > 0)), [
        Column("来源系统", "source", labels=L.SOURCES), Column("有星级的在用账号", "rated", "count"),
        Column("与去重时长星级一致", "agreeing", "count"), Column("来源星级偏高", "higher", "count"),
        Column("来源星级偏低", "lower", "count"), Column("一致率", "share", "share"),
    ], "star-agreement")
    report.note("各系统自行评定的星级与按两系统去重后时长认定的星级对比：同一人在两个系统的服务时长"
                "只计一次，来源系统只计本系统的时长，星级因此可能不同。")


def _service_hours(report: Report, figures: ReportFigures, as_of: AsOf) -> None:
    report.heading("二、志愿服务时长")
    months = figures["hours_by_month"]
    if report.absent(months, "暂无数据：数据仓库中尚无有效的志愿服务记录。"):
        return
    report.chart(_by_month(_bar(months["month"], {"服务时长（小时）": months["hours"]})), "每月志愿服务时长（小时）")
    _partial_month(report, months["month"], as_of)
    report.table(months, [
        Column("月份", "month"), Column("服务记录", "services", "count"),
        Column("服务时长（小时）", "hours", "hours"),
    ], "hours-by-month")
    prefectures = figures["hours_by_prefecture"]
    # a service is counted where its project is (else its organization, else its volunteer)
    prefectures = prefectures.assign(prefecture_name=prefectures["prefecture_name"].fillna("地区不详"))
    report.chart(_bar(prefectures["prefecture_name"], {"服务时长（小时）": prefectures["hours"]}), "各市（州）志愿服务时长（小时）")
    report.table(prefectures, [
        Column("市（州）", "prefecture_name"), Column("服务记录", "services", "count"),
        Column("服务时长（小时）", "hours", "hours"),
    ], "hours-by-prefecture")
    report.note("服务时长按服务所属项目（活动）所在地统计；项目地点不详的，按组织所在地，再按志愿者所在地。")
    categories = figures["hours_by_category"]
    report.chart(_bar(categories["category"], {"服务时长（小时）": categories["hours"]}, horizontal=True), "各服务类别志愿服务时长（小时）")
    report.table(categories, [
        Column("服务类别", "category"), Column("服务记录", "services", "count"),
        Column("服务时长（小时）", "hours", "hours"),
    ], "hours-by-category")


def _organizations(report: Report, figures: ReportFigures) -> None:
    report.heading("三、志愿服务组织")
    areas = figures["organizations_by_registration"]
    if report.absent(areas, "暂无数据：数据仓库中尚无志愿服务组织。"):
        return
    province = areas[areas["area_level"] == "province"]
    statuses = ["registered", "filed", "unregistered"]
    values = [int(province[s].sum()) for s in statuses]
    report.chart(_pie([L.REGISTRATION[s] for s in statuses], values), "组织登记状态（不含已删除、已退出）")
    report.table(areas.assign(area_name=areas["area_name"].fillna(L.UNKNOWN)), [
        Column("地区", "area_name"), Column("组织", "organizations", "count"),
        Column("已登记", "registered", "count"), Column("已备案", "filed", "count"),
        Column("未登记", "unregistered", "count"), Column("枢纽型", "hubs", "count"),
        Column("登记率", "registration_rate", "share"),
    ], "organizations-by-registration")
    levels = figures["organizations_by_level"]
    if report.absent(levels, "暂无数据：没有在册（未删除、未退出）的志愿服务组织。"):
        return
    order = ["省级", "市级", "县级", "乡镇", "社区", "单位"]
    levels = levels.assign(_order=levels["level"].map(lambda v: order.index(v) if v in order else len(order)))
    levels = levels.sort_values(["_order", "level"])
    report.chart(
        _bar(levels["level"], {"组织": levels["organizations"], "其中已登记": levels["registered"]}),
        "各管理层级组织数（不含已删除、已退出）",
    )
    report.table(levels, [
        Column("层级", "level"), Column("组织", "organizations", "count"),
        Column("其中已登记", "registered", "count"), Column("枢纽型", "hubs", "count"),
    ], "organizations-by-level")
    if (levels["level"] == L.UNKNOWN).any():
        report.note(UNKNOWN_IN_NATIONAL.format(what="管理层级"))
    categories = figures["organizations_by_category"]
    if report.absent(categories, "暂无数据：组织均未登记服务类别。"):
        return
    categories = every_category(categories)
    report.chart(
        _bar(categories["category"], {"组织": categories["organizations"], "其中已登记": categories["registered"]}, horizontal=True),
        "各专业领域（服务类别）组织数（不含已删除、已退出）",
    )
    report.table(categories, [
        Column("服务类别", "category"), Column("《实施意见》所列领域", "measure_field"),
        Column("组织", "organizations", "count"), Column("其中已登记", "registered", "count"),
    ], "organizations-by-category")
    report.note("一个组织登记有多个服务类别的，在每个类别中各计一次，各类别之和可大于组织总数。")


def _evaluations(report: Report, figures: ReportFigures) -> None:
    report.heading("四、组织评估")
    evaluations = figures["evaluations_by_evaluator"]
    if report.absent(evaluations, "暂无数据：数据仓库中尚无组织评估记录（评估记录来自全国志愿服务信息系统）。"):
        return
    evaluators = list(L.EVALUATORS)
    ys = {}
    for period, rows in evaluations.groupby("period", sort=True):
        by_evaluator = dict(zip(rows["evaluator"], rows["evaluations"]))
        ys[f"{period}年"] = [int(by_evaluator.get(e, 0)) for e in evaluators]
    report.chart(_bar([L.EVALUATORS[e] for e in evaluators], ys), "五类评估主体的评估次数")
    # in the measures' order (登记管理机关, 资助方, 服务对象, 自我评估, 第三方), not the codes' alphabet
    rank = {code: i for i, code in enumerate(evaluators)}
    evaluations = evaluations.assign(_rank=evaluations["evaluator"].map(lambda e: rank.get(e, len(rank))))
    evaluations = evaluations.sort_values(["period", "_rank", "evaluator"]).drop(columns="_rank")
    report.table(evaluations.assign(period=evaluations["period"].map(lambda p: f"{p}年")), [
        Column("评估期", "period"), Column("评估主体", "evaluator", labels=L.EVALUATORS),
        Column("评估次数", "evaluations", "count"), Column("被评估组织", "organizations", "count"),
        Column("平均得分", "mean_score", "score"),
    ], "evaluations-by-evaluator")
    _composite_evaluation(report, figures["composite_evaluation"])


def _composite_evaluation(report: Report, composite: pd.DataFrame) -> None:
    """The measures' comprehensive evaluation (综合评价体系): each organization's composite score
    (dim_organization.evaluation_score), every band listed, 0 where none."""
    report.heading("综合评价得分", 3)
    if report.absent(composite, "暂无数据：没有组织的综合评价得分。"):
        return
    bands = composite.set_index(composite["band"].astype(int))
    frame = pd.DataFrame({
        "band": list(L.SCORE_BANDS.values()),
        "organizations": [int(bands["organizations"].get(floor, 0)) for floor in L.SCORE_BANDS],
        "all_five": [int(bands["all_five"].get(floor, 0)) for floor in L.SCORE_BANDS],
    })
    report.table(frame, [
        Column("综合得分", "band"), Column("组织", "organizations", "count"),
        Column("其中五类主体均已评估", "all_five", "count"),
    ], "composite-evaluation")
    report.note("综合得分：取组织最近一个有评估的年度，先求每类评估主体（登记管理机关、资助方、服务对象、"
                "组织自评、第三方机构）的平均分，再求各类平均分的平均值；不含已删除的组织。")


def _integrity_levels(report: Report, integrity: pd.DataFrame) -> None:
    integrity = with_every_credit_status(integrity)
    order = CREDIT_STATUSES + [L.UNKNOWN]
    integrity = integrity.assign(_order=integrity["credit_status"].map(lambda v: order.index(v) if v in order else len(order)))
    integrity = integrity.sort_values(["_order", "credit_status"])
    report.chart(
        _bar(integrity["credit_status"], {"正常": integrity["active"], "暂停": integrity["suspended"], "已退出": integrity["exited"]}, stacked=True),
        "各诚信状态组织数",
    )
    report.table(integrity, [
        Column("诚信状态", "credit_status"), Column("组织", "organizations", "count"),
        Column("正常", "active", "count"), Column("暂停", "suspended", "count"),
        Column("已退出", "exited", "count"),
    ], "integrity")
    if integrity.loc[integrity["credit_status"] == L.UNKNOWN, "organizations"].sum() > 0:
        report.note(UNKNOWN_IN_NATIONAL.format(what="诚信状态"))


def _integrity(report: Report, figures: ReportFigures) -> None:
    report.heading("五、诚信与退出")
    integrity = figures["integrity"]
    if not report.absent(integrity, "暂无数据：数据仓库中尚无志愿服务组织。"):
        _integrity_levels(report, integrity)
    events = figures["organization_events_by_year"]
    if report.absent(events, "暂无数据：没有组织的登记或退出日期。"):
        return
    events = every_year(events)
    report.chart(_bar(events["year"], {"新登记": events["newly_registered"], "退出": events["exited"]}), "每年新登记与退出的组织")
    if (events["year"] == YEAR_UNKNOWN).any():
        report.note(f"{YEAR_UNKNOWN}：首次同步时已是登记状态、但两个系统均未填写成立日期的组织，无法确定其登记年份。")
    report.table(events, [
        Column("年份", "year"), Column("新登记", "newly_registered", "count"), Column("退出", "exited", "count"),
    ], "organization-events-by-year")


def _stations(report: Report, figures: ReportFigures) -> None:
    report.heading("六、志愿服务站点")
    hosts = figures["stations_by_host_type"]
    if not report.absent(hosts, "暂无数据：数据仓库中尚无服务站点（站点来自志愿贵州）。"):
        by_host = stations_by_host(hosts)
        types = [c for c in by_host.columns if c not in ("host_type", "total")]
        report.chart(
            _bar(by_host["host_type"], {f"服务{t}": by_host[t] for t in types}, stacked=True),
            "各依托类型的服务站、点、岗",
        )
        report.table(by_host, [Column("依托类型", "host_type")]
                     + [Column(f"服务{t}", t, "count") for t in types]
                     + [Column("合计", "total", "count")], "stations-by-host-type")
    coverage = figures["station_coverage_by_prefecture"]
    # without the counties (dim_region) no coverage can be said, not even "every county has one"
    if report.absent(coverage, "暂无数据：数据仓库中没有县级行政区划，无法统计站点覆盖。"):
        return
    report.chart(
        _bar(coverage["prefecture_name"], {"有站点的县": coverage["counties_with_station"],
                                            "无站点的县": coverage["counties"] - coverage["counties_with_station"]}, stacked=True),
        "各市（州）县级站点覆盖",
    )
    report.table(coverage, [
        Column("市（州）", "prefecture_name"), Column("县（市、区）", "counties", "count"),
        Column("有站点", "counties_with_station", "count"), Column("站点数", "stations", "count"),
    ], "station-coverage")
    without = figures["counties_without_station"]
    report.heading("尚无站点的县（市、区）", 3)
    if len(without):
        report.table(without, [Column("市（州）", "prefecture_name"), Column("县（市、区）", "region_name")], "counties-without-station")
    else:
        report.note("每个县（市、区）都有站点。")


def _timebank(report: Report, figures: ReportFigures) -> None:
    report.heading("七、时间银行")
    bank = figures["timebank_by_prefecture"]
    if report.absent(bank, "暂无数据：数据仓库中尚无时间银行存入或兑换记录。"):
        return
    report.chart(
        _bar(bank["prefecture_name"], {"存入": bank["deposited_hours"], "兑换": bank["redeemed_hours"], "结余": bank["available_hours"]}),
        "各市（州）时间银行（小时）",
    )
    report.table(bank, [
        Column("市（州）", "prefecture_name"), Column("志愿者", "volunteers", "count"),
        Column("兑换人数", "redeeming_volunteers", "count"), Column("存入（小时）", "deposited_hours", "hours"),
        Column("兑换（小时）", "redeemed_hours", "hours"),
        Column("其中志愿贵州", "provincial_redeemed_hours", "hours"),
        Column("其中全国系统", "national_redeemed_hours", "hours"),
        Column("结余（小时）", "available_hours", "hours"),
    ], "timebank-by-prefecture")
    report.note("存入为去重后的有效志愿服务时长；兑换为“志愿贵州”时间兑换记录与全国志愿服务信息系统"
                "“已支取总时长”之和；结余 = 存入 − 兑换。")


def _brands(report: Report, figures: ReportFigures) -> None:
    report.heading("八、品牌项目")
    brands = figures["brand_programmes"]
    if report.absent(brands, "暂无数据：数据仓库中尚无品牌项目。"):
        return
    report.chart(_bar(brands["brand"].map(lambda b: redact(str(b))), {"服务时长（小时）": brands["hours"]}), "品牌项目志愿服务时长（小时）")
    report.table(brands, [
        Column("品牌项目", "brand"), Column("项目与活动（两系统分别计）", "projects", "count"),
        Column("志愿者", "volunteers", "count"),
        Column("服务记录", "services", "count"), Column("服务时长（小时）", "hours", "hours"),
    ], "brand-programmes")
    # nothing in either system links a national project to the provincial activity it is:
    # one run in both is two of `projects`, where persons, services and hours count once
    report.note("项目数为全国系统的项目与“志愿贵州”的活动之和：同一项目在两个系统中各有记录的计为两个；"
                "志愿者、服务记录与服务时长均已去重，只计一次。")


def _beijing(moment: dt.datetime) -> str:
    return moment.astimezone(BEIJING).strftime("%Y年%m月%d日 %H:%M")


def _quality(report: Report, figures: ReportFigures, quality: DataQuality, as_of: AsOf) -> None:
    report.heading("九、数据质量")
    newest = figures["newest_service"]["newest_service_date"].iloc[0] if len(figures["newest_service"]) else None
    published = _beijing(quality.published_at) if quality.published_at else "未知"
    # the age is counted from the report's instant; a replay "as of" an earlier day has none
    age = (
        f"，距本报告 {(as_of.utc - quality.published_at).total_seconds() / 3600:.1f} 小时"
        if quality.published_at and as_of.utc >= quality.published_at else ""
    )
    report.note(
        f"数据仓库发布时间：{published}（北京时间{age}）；最近一次服务日期：{_text(newest)}；"
        f"待人工复核的疑似同一人账号对：{'未知' if quality.review_queue is None else L.count(quality.review_queue)}。"
    )
    report.heading("各来源落地行数", 3)
    landed = quality.landed_rows
    if not report.absent(landed, "暂无数据：落地区中尚无来源数据。"):
        by_source = landed.groupby("source", sort=True)["row_count"].sum()
        report.chart(_bar([L.label(L.SOURCES, s) for s in by_source.index], {"落地行数": by_source.values}), "各来源系统累计落地行数")
        report.table(landed, [
            Column("来源系统", "source", labels=L.SOURCES), Column("数据流", "stream", labels=L.STREAMS),
            Column("同步次数", "syncs", "count"), Column("落地行数", "row_count", "count"),
        ], "landed-rows")
    report.heading("隔离行（按规则）", 3)
    quarantine = figures["quarantine_by_rule"]
    if not report.absent(quarantine, "没有被隔离的行：落地的每一行都已入库，或已被其更新版本取代。"):
        by_rule = quarantine.groupby("rule", sort=True)["row_count"].sum()
        report.chart(_bar([L.label(L.RULES, r) for r in by_rule.index], {"隔离行数": by_rule.values}, horizontal=True), "各规则隔离行数")
        report.table(quarantine, [
            Column("来源系统", "source", labels=L.SOURCES), Column("对象", "entity", labels=L.ENTITIES),
            Column("规则", "rule", labels=L.RULES), Column("行数", "row_count", "count"),
        ], "quarantine-by-rule")
    report.heading("账号匹配", 3)
    methods = figures["match_methods"]
    if not report.absent(methods, "暂无数据：数据仓库中尚无志愿者账号。"):
        totals = methods.groupby("source")["accounts"].transform("sum")
        methods = methods.assign(rate=methods["accounts"] / totals.where(totals > 0))
        report.table(methods, [
            Column("来源系统", "source", labels=L.SOURCES), Column("匹配方式", "match_method", labels=L.MATCH_METHODS),
            Column("账号数", "accounts", "count"), Column("占该系统账号", "rate", "share"),
        ], "match-methods")
    report.heading("数据检查", 3)
    checks = quality.checks
    failed = quality.checks_failed()
    not_run = [c for c in checks if c.passed is None]
    report.note(
        f"检查项 {len(checks)} 项：通过 {len(checks) - len(failed) - len(not_run)} 项，"
        f"未通过 {len(failed)} 项，未运行 {len(not_run)} 项。"
    )
    rows = pd.DataFrame(
        [{"asset": c.asset, "check": c.check, "kind": "阻断" if c.blocking else "警告",
          "result": "未运行" if c.passed is None else ("通过" if c.passed else "未通过"),
          "meaning": L.CHECKS.get(c.check, "—")}
         for c in sorted(checks, key=lambda c: (c.passed is not False, c.asset, c.check))],
        columns=["asset", "check", "kind", "result", "meaning"],
    )
    if report.absent(rows, "未取得检查结果：Dagster 中没有这些资产的检查记录（同步未记录在 DAGSTER_HOME 时即如此）。"):
        return
    report.table(rows, [
        Column("资产", "asset"), Column("检查", "check"), Column("级别", "kind"), Column("结果", "result"),
        Column("检查内容", "meaning"),
    ], "checks")


def render_report(figures: ReportFigures, quality: DataQuality, *, as_of: AsOf) -> str:
    """The whole report as one HTML document (plotly.js and the style inlined)."""
    from plotly.offline import get_plotlyjs

    report = Report()
    report.parts.append(f"<h1>{TITLE}</h1>")
    report.parts.append(
        f'<p class="meta">数据截至 {_beijing(as_of.utc)}（北京时间）。全部数字取自数据仓库统计表；'
        "同一志愿者、同一服务在两个系统中只计一次。</p>"
    )
    report.note(NOT_IN_EITHER_SYSTEM)
    _key_figures(report, figures)
    _volunteers(report, figures, as_of)
    _service_hours(report, figures, as_of)
    for section in (_organizations, _evaluations, _integrity, _stations, _timebank, _brands):
        section(report, figures)
    _quality(report, figures, quality, as_of)
    summary = json.dumps({"charts": report.charts}, ensure_ascii=False)
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{TITLE}</title><style>{STYLE}</style>"
        f'<script type="application/json" id="report-summary">{summary}</script>'
        f"<script>{get_plotlyjs()}</script></head><body>"
        + "\n".join(report.parts)
        + "</body></html>\n"
    )
