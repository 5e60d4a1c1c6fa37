"""The report against the provincial measures (《关于支持和发展志愿服务组织的实施意见》), figure by
figure, recounted from the sandbox's truth and its stored source rows, never from the warehouse.

A 2,500-person world (seed 3: 50 organizations, two of them exited, one registered one
deleted, a registered one whose founding date neither system gives, a professional field no
organization works in (其他), national accounts that redeemed time-bank hours) is synced by the
contract's `sync_all` over real HTTP into a real DuckDB warehouse; the report it writes is read
as an official reads it, its tables cell by cell.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from pipelines.reports import labels
from sandbox import generate_world, load_truth
from tests.reference import GUIZHOU_PREFECTURES
from tests.reports.test_report import Tables
from tests.sandbox_sync import sync_world

PERSONS = 2_500
SEED = 3
AS_OF = dt.datetime(2026, 6, 30, 18, 0)  # Beijing
PII_KEY = "measures-test-pii-key-of-at-least-32-bytes"
# The professional fields the measures name, as the measures write them
MEASURE_FIELDS = ["网络文明", "司法", "交通", "卫健", "环保", "体育", "文旅", "扶贫", "科普", "助残",
                  "应急", "消防", "禁毒", "支教"]


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    root = tmp_path_factory.mktemp("measures")
    world = Path(generate_world(root / "world", persons=PERSONS, seed=SEED, as_of=AS_OF))
    result = sync_world(world, {"DATA_DIR": str(root / "data"), "WAREHOUSE_URL": f"duckdb:///{root / 'warehouse.duckdb'}",
                                "PII_HASH_KEY": PII_KEY}, tags={"as_of": AS_OF.isoformat()})
    path = Path(result.asset_materializations_for_node("reports__statistics")[0].metadata["path"].value)
    parsed = Tables()
    parsed.feed(path.read_text(encoding="utf-8"))
    return {"world": world, "truth": load_truth(world), "tables": parsed.tables, "page": path.read_text(encoding="utf-8")}


def stored_rows(world: Path, system: str, table: str) -> pd.DataFrame:
    """The rows a source system serves, as stored (the sandbox's own SQLite, read directly)."""
    with sqlite3.connect(world / f"{system}.sqlite") as con:
        return pd.DataFrame([json.loads(body) for (body,) in con.execute(f"SELECT body FROM {table}")])  # noqa: S608


def valid(rows: pd.DataFrame, truth, entity: str, source: str, column: str = "id") -> pd.DataFrame:
    """Rows that are true entities (not planted invalid ones), as the truth lists them."""
    accounts = truth.accounts
    ids = set(accounts.loc[(accounts["entity"] == entity) & (accounts["source"] == source), "source_id"])
    return rows[rows[column].astype(str).isin(ids)]


def in_being(orgs: pd.DataFrame) -> pd.DataFrame:
    return orgs[~orgs["status"].isin(["deleted", "exited"])]


def key_figure(page: str, label: str) -> str:
    start = page.index('<section class="key-figures"')
    section = page[start:page.index("</section>", start)]
    cell = section[:section.index(f"<span>{label}</span>")]
    return cell[cell.rindex("<b>") + 3:cell.rindex("</b>")]


def test_the_world_holds_what_the_measures_ask_about(synced):
    orgs = synced["truth"].orgs
    assert (orgs["status"] == "exited").sum() >= 1
    assert ((orgs["status"] == "deleted") & (orgs["registration_status"] == "registered")).sum() >= 1
    from pipelines.normalize.categories import NATIONAL_LABELS

    fields = set(in_being(orgs)["categories"].str.split(",").explode())
    assert set(NATIONAL_LABELS) - fields, "some service category must have no organization"


def test_organizations_by_level_count_those_in_being(synced):
    """An exited organization was counted in its level (各管理层级组织数), while the key figure and
    the registration rate leave it out: the levels added up to more than the organizations."""
    orgs = in_being(synced["truth"].orgs)
    level = orgs["level"].fillna(labels.UNKNOWN)
    expected = {
        name: (f"{len(group):,}", f"{(group['registration_status'] == 'registered').sum():,}",
               f"{group['is_hub'].fillna(False).astype(bool).sum():,}")
        for name, group in orgs.groupby(level)
    }
    shown = synced["tables"]["organizations-by-level"]
    assert shown[0] == ("层级", "组织", "其中已登记", "枢纽型")
    assert {row[0]: row[1:] for row in shown[1:]} == expected
    assert key_figure(synced["page"], "志愿服务组织（个，不含已删除、已退出）") == f"{len(orgs):,}"
    # 未知 is said to be the organizations only the national system holds (it has no level)
    assert expected[labels.UNKNOWN][0] != "0" and not orgs.loc[orgs["level"].isna(), "in_provincial"].any()
    assert "全国志愿服务信息系统不记录组织的管理层级，仅在全国系统中的组织因此管理层级未知" in synced["page"]
    assert "全国志愿服务信息系统不记录组织的诚信状态" in synced["page"]


def test_every_professional_field_the_measures_name_has_its_row(synced):
    """A field no organization works in had no row: an official reporting on 消防 or 禁毒 could not
    tell "none" from "not counted". Each row also names the field as the measures do."""
    orgs = in_being(synced["truth"].orgs)
    per_category = Counter(orgs["categories"].str.split(",").explode())
    registered = Counter(orgs.loc[orgs["registration_status"] == "registered", "categories"].str.split(",").explode())
    shown = synced["tables"]["organizations-by-category"]
    assert shown[0] == ("服务类别", "《实施意见》所列领域", "组织", "其中已登记")
    rows = {row[0]: row[1:] for row in shown[1:]}
    from pipelines.normalize.categories import NATIONAL_LABELS

    assert set(rows) == set(NATIONAL_LABELS)
    for category, (field, count, of_them_registered) in rows.items():
        assert (count, of_them_registered) == (f"{per_category[category]:,}", f"{registered[category]:,}"), category
        assert field == labels.MEASURE_FIELDS.get(category, "—")
    assert sorted(row[0] for row in rows.values() if row[0] != "—") == sorted(MEASURE_FIELDS)
    assert any(row[1] == "0" for row in rows.values())


def test_registrations_by_year_count_each_registered_organization_once_in_its_year(synced):
    """A deleted organization was counted as newly registered, and one whose founding date
    neither system gives was counted in the year its record was last edited (2024 for one
    founded in 2014). Now: deleted ones nowhere, undated ones under 年份不详."""
    world, truth = synced["world"], synced["truth"]
    national = stored_rows(world, "national", "teams").set_index("albe0001")["albe0046"]
    provincial = stored_rows(world, "provincial", "teams")
    provincial = provincial.set_index(provincial["id"].astype(str))["foundDate"]

    def founding_given(org) -> bool:
        dates = [national.get(org.national_source_id) if isinstance(org.national_source_id, str) else None,
                 provincial.get(org.provincial_source_id) if isinstance(org.provincial_source_id, str) else None]
        return any(isinstance(d, str) and d for d in dates)

    orgs = truth.orgs
    registered = orgs[(orgs["registration_status"] == "registered") & (orgs["status"] != "deleted")]
    dated = registered[[founding_given(o) for o in registered.itertuples()]]
    expected = Counter(f"{pd.Timestamp(d).year}年" for d in dated["founded_on"])
    expected["年份不详"] = len(registered) - len(dated)
    assert expected["年份不详"] >= 1
    shown = {row[0]: row for row in synced["tables"]["organization-events-by-year"][1:]}
    assert {year: int(row[1].replace(",", "")) for year, row in shown.items() if row[1] != "0"} == +expected
    assert sum(int(row[2]) for row in shown.values()) == (orgs["status"] == "exited").sum()
    assert list(shown)[-1] == "年份不详"


def test_the_time_bank_subtracts_what_either_system_redeemed(synced):
    """The balance (结余) ignored the hours the national system says were already redeemed
    (albp0093): every person who redeemed there had their balance overstated."""
    world, truth = synced["world"], synced["truth"]
    deposited = truth.services.loc[truth.services["effective"], "hours"].sum()
    redemptions = valid(stored_rows(world, "provincial", "redemptions"), truth, "redemption", "provincial")
    provincial = redemptions.loc[~redemptions["isDeleted"].astype(bool), "minutes"].sum() / 60
    volunteers = valid(stored_rows(world, "national", "volunteers"), truth, "volunteer", "national", "albp0029")
    national = volunteers.loc[volunteers["isdelete"] == 0, "albp0093"].fillna(0).sum()
    assert national > 0 and provincial > 0
    shown = synced["tables"]["timebank-by-prefecture"]
    assert shown[0] == ("市（州）", "志愿者", "兑换人数", "存入（小时）", "兑换（小时）", "其中志愿贵州", "其中全国系统", "结余（小时）")
    rows = shown[1:]
    tolerance = 0.05 * len(rows)  # each cell is rounded to one decimal

    def column(i: int) -> float:
        return sum(float(row[i].replace(",", "")) for row in rows)

    for index, expected in ((3, deposited), (4, provincial + national), (5, provincial), (6, national),
                            (7, deposited - provincial - national)):
        assert abs(column(index) - expected) <= tolerance, shown[0][index]


def test_the_stars_add_up_to_the_registered_volunteers(synced):
    truth = synced["truth"]
    persons = truth.persons[truth.persons["status"] != "deleted"]
    stars = Counter(sum(h >= t for t in labels.STAR_HOURS) for h in persons["true_hours"])
    shown = synced["tables"]["star-distribution"][1:]
    assert shown == [(name, f"{stars[level]:,}") for level, name in enumerate(labels.STARS)]
    assert key_figure(synced["page"], "注册志愿者（人）") == f"{len(persons):,}"


def test_every_host_the_measures_name_has_its_row_of_stations_points_and_posts(synced):
    """Host types with no station had no row (the table listed host and type pairs that
    exist): 博物馆, 码头, 空港 … read as not reported, where the measures ask for a station in each."""
    world, truth = synced["world"], synced["truth"]
    stations = valid(stored_rows(world, "provincial", "stations"), truth, "station", "provincial")
    stations = stations[~stations["isDeleted"].astype(bool)]
    counts = Counter(zip(stations["hostType"], stations["stationType"]))
    header, *rows = synced["tables"]["stations-by-host-type"]
    assert header == ("依托类型", "服务站", "服务点", "服务岗", "合计")
    measures_hosts = ["社区", "图书馆", "博物馆", "文化馆", "美术馆", "科技馆", "纪念馆", "车站", "码头", "空港",
                      "医院", "景区", "高速公路服务区"]
    assert [row[0] for row in rows][:len(measures_hosts)] == measures_hosts
    for host, *cells in rows:
        expected = [counts[(host, kind)] for kind in "站点岗"]
        assert cells == [f"{n:,}" for n in [*expected, sum(expected)]], host
    assert any(cells[-1] == "0" for _, *cells in rows)
    assert sum(int(row[-1]) for row in rows) == len(stations)


def test_the_composite_evaluation_is_shown_by_score_band(synced):
    """The measures' comprehensive evaluation (登记管理机关、资助方、服务对象、自我评估 and third
    parties combined) was in the warehouse (evaluation_score) and nowhere in the report."""
    world, truth = synced["world"], synced["truth"]
    orgs = truth.orgs[(truth.orgs["status"] != "deleted") & truth.orgs["evaluation_score"].notna()]
    assert len(orgs) >= 5

    def band(score: float) -> str:
        floor = next((f for f in (90, 80, 70, 60) if score >= f), 0)
        return labels.SCORE_BANDS[floor]

    evaluations = valid(stored_rows(world, "national", "evaluations"), truth, "evaluation", "national")
    evaluations = evaluations[evaluations["isdelete"] == 0]
    latest = evaluations[evaluations["period"] == evaluations.groupby("albe0001")["period"].transform("max")]
    all_five = set(latest.groupby("albe0001")["evaluator"].nunique().loc[lambda n: n == 5].index)
    scored = Counter(band(score) for score in orgs["evaluation_score"])
    five = Counter(band(o.evaluation_score) for o in orgs.itertuples() if o.national_source_id in all_five)
    header, *rows = synced["tables"]["composite-evaluation"]
    assert header == ("综合得分", "组织", "其中五类主体均已评估")
    assert rows == [(name, f"{scored[name]:,}", f"{five[name]:,}") for name in labels.SCORE_BANDS.values()]


def test_each_systems_own_star_rating_is_compared_with_the_stars_of_the_hours_counted_once(synced):
    """The measures ask for star ratings made 科学 (on sound grounds): the report rated by the
    deduplicated hours and never said how far each system's own rating departs from that."""
    world, truth = synced["world"], synced["truth"]
    persons = truth.persons.set_index("person_id")["true_hours"]
    expected = {}
    for source, number, rating, deleted in (("national", "albp0029", "albp0026", "isdelete"),
                                            ("provincial", "id", "starLevel", "isDeleted")):
        rows = valid(stored_rows(world, source, "volunteers"), truth, "volunteer", source, number)
        rows = rows[~rows[deleted].astype(bool) & rows[rating].notna()]
        person = truth.accounts.query("entity == 'volunteer' and source == @source").set_index("source_id")["true_id"]
        computed = [sum(persons[person[str(n)]] >= t for t in labels.STAR_HOURS) for n in rows[number]]
        own = rows[rating].astype(int).tolist()
        agreeing = sum(a == b for a, b in zip(own, computed))
        expected[labels.SOURCES[source]] = (f"{len(rows):,}", f"{agreeing:,}",
                                            f"{sum(a > b for a, b in zip(own, computed)):,}",
                                            f"{sum(a < b for a, b in zip(own, computed)):,}",
                                            labels.share(agreeing / len(rows)))
    header, *rows = synced["tables"]["star-agreement"]
    assert header == ("来源系统", "有星级的在用账号", "与去重时长星级一致", "来源星级偏高", "来源星级偏低", "一致率")
    assert {row[0]: row[1:] for row in rows} == expected


def test_evaluations_are_listed_by_the_measures_evaluators_in_their_order(synced):
    """Counted from the stored national evaluations (deleted ones and those of deleted
    organizations left out), each period listing 登记管理机关, 资助方, 服务对象, 组织自评,
    第三方机构 in the measures' order (it followed the codes' alphabet: 服务对象 first)."""
    world, truth = synced["world"], synced["truth"]
    evaluations = valid(stored_rows(world, "national", "evaluations"), truth, "evaluation", "national")
    deleted = set(truth.orgs.loc[truth.orgs["status"] == "deleted", "national_source_id"].dropna())
    evaluations = evaluations[(evaluations["isdelete"] == 0) & ~evaluations["albe0001"].isin(deleted)]
    order = list(labels.EVALUATORS)
    expected = [
        (f"{period}年", labels.EVALUATORS[evaluator], f"{len(group):,}", f"{group['albe0001'].nunique():,}",
         labels.score(group["score"].mean()))
        for (period, evaluator), group in sorted(evaluations.groupby(["period", "evaluator"]),
                                                 key=lambda item: (item[0][0], order.index(item[0][1])))
    ]
    header, *rows = synced["tables"]["evaluations-by-evaluator"]
    assert header == ("评估期", "评估主体", "评估次数", "被评估组织", "平均得分")
    assert rows == expected


def test_service_hours_by_prefecture_count_each_service_once_where_its_project_is(synced):
    """Hours of service were shown by month and category only: a prefecture could not find its
    own. Each effective service once (a pushed log and its national record are one), deleted
    and refused records nowhere, in the prefecture of its project."""
    truth = synced["truth"]
    services = truth.services[truth.services["effective"]].merge(
        truth.projects[["project_id", "region_code"]], on="project_id", how="left")
    assert services["region_code"].notna().all()
    by_prefecture = services.groupby(services["region_code"].str[:4])["hours"].agg(["size", "sum"])
    expected = {GUIZHOU_PREFECTURES[code]: (f"{int(n):,}", f"{hours:,.1f}") for code, (n, hours) in by_prefecture.iterrows()}
    header, *rows = synced["tables"]["hours-by-prefecture"]
    assert header == ("市（州）", "服务记录", "服务时长（小时）")
    assert {row[0]: row[1:] for row in rows} == expected


def test_the_report_says_which_items_of_the_measures_no_source_holds(synced):
    """Incubation bases, training bases and public-service contracts are in neither interface:
    the report says so rather than leave an official to read their absence as none."""
    start = synced["page"].index("<h1>")
    head = synced["page"][start:synced["page"].index("一、志愿者")]
    for item in ("孵化基地", "培训基地", "承接公共服务项目", "均未提供数据"):
        assert item in head, item
