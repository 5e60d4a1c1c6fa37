"""docs/ANSWERING_QUESTIONS.md: every worked query runs on DuckDB and PostgreSQL, gives the same
rows on both, and answers its question as the sandbox world's truth says.

One small sandbox world is synced over HTTP into DuckDB (sync_all, the run instant fixed by
the `as_of` tag), then the same DATA_DIR is published to a PostgreSQL schema. Expected answers
come from the world's truth files; where the truth has no column for what a query groups by
(a station's host type, an evaluation's evaluator kind) from the world's stored source rows
that the truth lists as valid. Counts of persons go through entity resolution, which is not
perfect on a dirty world (one person of 600 split in two here): they are allowed 1% off, at
least 1; hours, services, stations, organizations and evaluations are exact.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.config import Settings
from pipelines.warehouse.publish import publish
from tests.reference import GUIZHOU_COUNTIES, MEASURE_FIELD_OF_CATEGORY
from tests.sandbox_sync import sync_world
from tests.warehouse.helpers import rows

DOC = Path(__file__).resolve().parents[2] / "docs" / "ANSWERING_QUESTIONS.md"
PERSONS = 600
SEED = 3
AS_OF = dt.datetime(2026, 11, 20, 18, 0)  # Beijing: "last month" is 2026-10
AS_OF_TAG = "2026-11-20T18:00:00+08:00"
KEY = "answering-questions-pii-key-of-32-bytes-or-more"
BEIJING = ZoneInfo("Asia/Shanghai")
BEIJING_TODAY = "CAST(now() AT TIME ZONE 'Asia/Shanghai' AS DATE)"


def doc_queries() -> dict[str, str]:
    """Each ```sql block of the doc by the name on its first line (`-- answers: <name>`)."""
    queries = {}
    for block in re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S):
        named = re.match(r"-- answers: (\w+)\n", block)
        assert named, f"a query in {DOC.name} does not say what it answers: {block[:80]!r}"
        queries[named.group(1)] = block.strip().rstrip(";")
    return queries


QUERIES = doc_queries()


@pytest.fixture(scope="module")
def answered(tmp_path_factory, pg_databases):
    from sandbox import generate_world, load_truth

    root = tmp_path_factory.mktemp("answering")
    world = Path(generate_world(root / "world", persons=PERSONS, seed=SEED, as_of=AS_OF))
    data_dir, warehouse = root / "data", root / "warehouse.duckdb"
    sync_world(world, {"DATA_DIR": str(data_dir), "WAREHOUSE_URL": f"duckdb:///{warehouse}", "PII_HASH_KEY": KEY},
               tags={"as_of": AS_OF_TAG})
    pg_url = pg_databases.new()
    publish(Settings(data_dir=data_dir, warehouse_url=pg_url, pii_hash_key=KEY),
            as_of=dt.datetime.fromisoformat(AS_OF_TAG))
    engines = {"duckdb": sa.create_engine(f"duckdb:///{warehouse}"), "postgresql": sa.create_engine(pg_url)}
    yield {"truth": load_truth(world), "world": world, "engines": engines}
    for engine in engines.values():
        engine.dispose()


def answer(answered, name: str, target: str) -> list[tuple]:
    """The doc's query `name` on `target`, "today" pinned to the world's Beijing date."""
    sql = QUERIES[name].replace(BEIJING_TODAY, f"DATE '{AS_OF:%Y-%m-%d}'")
    return [tuple(plain(v) for v in row) for row in rows(answered["engines"][target], sql)]


def plain(value):
    """Decimal, float and int alike (the targets' types differ, docs: "Types differ")."""
    if isinstance(value, (Decimal, float, np.floating)):
        number = float(value)
        return int(number) if number.is_integer() else round(number, 6)
    return value


def near(got: int, expected: int) -> bool:
    """A count of persons: within 1% of the truth, at least 1 (resolution is not perfect)."""
    return abs(got - expected) <= max(1, round(0.01 * expected))


def effective_services(truth) -> pd.DataFrame:
    services = truth.services[truth.services["effective"]].copy()
    services["service_date"] = pd.to_datetime(services["service_date"])
    return services


def in_year(services: pd.DataFrame, year: int) -> pd.DataFrame:
    return services[services["service_date"].dt.year == year]


def live_source_rows(answered, source: str, table: str, entity: str) -> list[dict]:
    """The world's stored rows of `table` that the truth lists as valid and not deleted."""
    accounts = answered["truth"].accounts
    valid = set(accounts[(accounts["entity"] == entity) & ~accounts["is_deleted"]]["row_id"])
    with sqlite3.connect(answered["world"] / f"{source}.sqlite") as db:
        bodies = [json.loads(body) for body, in db.execute(f"SELECT CAST(body AS TEXT) FROM {table}")]
    return [body for body in bodies if str(body["id"]) in valid]


def test_every_query_in_the_doc_is_checked_here():
    assert set(QUERIES) == set(CHECKS)
    assert len(QUERIES) >= 10


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_each_query_runs_unchanged_and_gives_the_same_rows_on_both_targets(answered, name):
    duck, pg = answer(answered, name, "duckdb"), answer(answered, name, "postgresql")
    assert duck, f"{name} answers nothing on the test world"
    assert duck == pg  # in the same order too (both sort text by code point)
    for engine in answered["engines"].values():  # as written, "today" included
        rows(engine, QUERIES[name])


def check_volunteers_served_by_prefecture(answered, got):
    truth = answered["truth"]
    served = in_year(effective_services(truth), 2026).merge(truth.persons[["person_id", "region_code"]], on="person_id")
    expected = served.groupby(served["region_code"].str[:4])["person_id"].nunique().to_dict()
    assert {row[0] for row in got} == set(expected)
    assert all(near(row[2], expected[row[0]]) for row in got), (got, expected)


def check_hours_by_professional_field(answered, got):
    services = effective_services(answered["truth"])
    fields = services["category"].map(lambda category: MEASURE_FIELD_OF_CATEGORY.get(category, category))
    expected = services.groupby(fields)["hours"].agg(["count", "sum"])
    assert {row[0] for row in got} == set(expected.index)
    for field, services_count, hours in got:
        assert services_count == expected.loc[field, "count"]
        assert hours == pytest.approx(expected.loc[field, "sum"], abs=0.006)
    assert {"司法", "卫健", "环保"} <= {row[0] for row in got}


def true_org_ids(answered, org_keys) -> set[str]:
    """The truth's organization ids of warehouse org_keys, through organization_source_map."""
    orgs = answered["truth"].orgs
    by_source = {("national", s): o for s, o in zip(orgs["national_source_id"], orgs["org_id"]) if isinstance(s, str)}
    by_source |= {("provincial", str(s)): o for s, o in zip(orgs["provincial_source_id"], orgs["org_id"]) if isinstance(s, str)}
    mapped = rows(answered["engines"]["duckdb"], "SELECT source, source_id, org_key FROM organization_source_map")
    wanted = set(org_keys)
    return {by_source[(source, source_id)] for source, source_id, key in mapped if key in wanted}


def check_organizations_without_service_in_2025(answered, got):
    truth = answered["truth"]
    served = set(in_year(effective_services(truth), 2025)["org_id"])
    live = truth.orgs[truth.orgs["status"] != "deleted"]
    expected = set(live["org_id"]) - served
    assert expected and true_org_ids(answered, [row[0] for row in got]) == expected
    assert len(got) == len(expected)


def check_stations_by_host_type_by_county(answered, got):
    stations = live_source_rows(answered, "provincial", "stations", "station")
    expected: dict[tuple, list[int]] = {}
    for station in stations:
        county = str(station["areaCode"])[:6]
        key = (county if county in GUIZHOU_COUNTIES else None, station["hostType"])
        counts = expected.setdefault(key, [0, 0, 0, 0])
        counts[0] += 1
        counts[1 + ["站", "点", "岗"].index(station["stationType"])] += 1
    assert {(row[1], row[3]): list(row[4:]) for row in got} == expected
    assert sum(row[4] for row in got) == len(stations)


def check_star_levels_and_hours(answered, got):
    persons = answered["truth"].persons
    persons = persons[persons["status"] != "deleted"]
    levels = np.searchsorted([100, 300, 600, 1000, 1500], persons["true_hours"].to_numpy(), side="right")
    expected = pd.Series(levels).value_counts().to_dict()
    assert {row[0] for row in got} == set(expected)
    assert all(near(row[1], expected[row[0]]) for row in got), (got, expected)
    assert sum(row[2] for row in got) == pytest.approx(persons["true_hours"].sum(), abs=0.05)
    assert all(row[3] >= [0, 100, 300, 600, 1000, 1500][row[0]] for row in got)


def check_volunteers_in_both_systems(answered, got):
    accounts = answered["truth"].accounts
    volunteers = accounts[accounts["entity"] == "volunteer"]
    live = volunteers[~volunteers["is_deleted"]]
    ever = volunteers[volunteers["true_id"].isin(live["true_id"])].groupby("true_id")["source"].nunique()
    now = live.groupby("true_id")["source"].nunique()
    (ever_in_both, live_in_both), = got
    assert near(ever_in_both, int((ever == 2).sum()))
    assert near(live_in_both, int((now == 2).sum()))
    assert live_in_both < ever_in_both  # the world has persons whose second account was deleted


def check_organization_hours_last_month(answered, got):
    truth = answered["truth"]
    (org_key, name, services_count, hours), = got
    org_id = truth.orgs.loc[truth.orgs["name"] == name, "org_id"].item()
    assert true_org_ids(answered, [org_key]) == {org_id}
    services = effective_services(truth)
    october = services[(services["org_id"] == org_id) & (services["service_date"].dt.to_period("M") == "2026-10")]
    assert services_count == len(october) > 0
    assert hours == pytest.approx(october["hours"].sum(), abs=0.006)


def check_service_trend_by_month(answered, got):
    services = in_year(effective_services(answered["truth"]), 2026)
    expected = services.groupby(services["service_date"].dt.month).agg(
        services=("service_id", "size"), volunteers=("person_id", "nunique"), hours=("hours", "sum"))
    assert [(row[0], row[1]) for row in got] == [(2026, int(month)) for month in expected.index]
    for _, month, services_count, volunteers, hours in got:
        assert services_count == expected.loc[month, "services"]
        assert near(volunteers, expected.loc[month, "volunteers"])
        assert hours == pytest.approx(expected.loc[month, "hours"], abs=0.006)


def check_county_share_of_province_hours(answered, got):
    truth = answered["truth"]
    services = effective_services(truth).merge(truth.projects[["project_id", "region_code"]], on="project_id")
    county = services.loc[services["region_code"] == "520102", "hours"].sum()
    (county_hours, province_hours, percent), = got
    assert county > 0 and county_hours == pytest.approx(county, abs=0.006)
    assert province_hours == pytest.approx(services["hours"].sum(), abs=0.006)
    assert percent == pytest.approx(round(100 * county / services["hours"].sum(), 2), abs=0.006)


def check_evaluations_by_evaluator_and_prefecture(answered, got):
    orgs = answered["truth"].orgs
    team_org = {team: (status, region) for team, status, region
                in zip(orgs["national_source_id"], orgs["status"], orgs["region_code"]) if isinstance(team, str)}
    kept = []
    for evaluation in live_source_rows(answered, "national", "evaluations", "evaluation"):
        status, region = team_org.get(evaluation["albe0001"], (None, None))
        if status != "deleted":
            kept.append((evaluation["period"], region[:4] if region else None, evaluation["evaluator"],
                         evaluation["score"], evaluation["albe0001"]))
    frame = pd.DataFrame(kept, columns=["period", "prefecture", "evaluator", "score", "team"])
    expected = {
        (period, prefecture, evaluator): (len(group), group["team"].nunique(), group["score"].mean())
        for (period, prefecture, evaluator), group in frame.groupby(["period", "prefecture", "evaluator"], dropna=False)
    }
    answered_rows = {(row[0], row[1], row[3]): (row[5], row[6], row[7]) for row in got}
    assert answered_rows.keys() == expected.keys()
    for key, (evaluations, organizations, mean) in answered_rows.items():
        assert (evaluations, organizations) == expected[key][:2]
        assert mean == pytest.approx(expected[key][2], abs=0.0051)  # rounded to 2 places
    assert {row[4] for row in got} <= {"登记管理机关", "资助方", "服务对象", "组织自评", "第三方机构"}


def check_quarantine_by_rule(answered, got):
    planted = answered["truth"].invalid_rows.groupby(["entity", "rule"]).size().to_dict()
    assert {(row[0], row[1]): row[2] for row in got} == planted
    first_seen = rows(answered["engines"]["duckdb"],
                      "SELECT entity, rule, MIN(first_seen_at) FROM quarantine GROUP BY entity, rule")
    assert {(row[0], row[1]): row[3] for row in got} == {
        (entity, rule): instant.astimezone(BEIJING).date() for entity, rule, instant in first_seen}


CHECKS = {
    "volunteers_served_by_prefecture": check_volunteers_served_by_prefecture,
    "hours_by_professional_field": check_hours_by_professional_field,
    "organizations_without_service_in_2025": check_organizations_without_service_in_2025,
    "stations_by_host_type_by_county": check_stations_by_host_type_by_county,
    "star_levels_and_hours": check_star_levels_and_hours,
    "volunteers_in_both_systems": check_volunteers_in_both_systems,
    "organization_hours_last_month": check_organization_hours_last_month,
    "service_trend_by_month": check_service_trend_by_month,
    "county_share_of_province_hours": check_county_share_of_province_hours,
    "evaluations_by_evaluator_and_prefecture": check_evaluations_by_evaluator_and_prefecture,
    "quarantine_by_rule": check_quarantine_by_rule,
}


@pytest.mark.parametrize("target", ["duckdb", "postgresql"])
@pytest.mark.parametrize("name", sorted(CHECKS))
def test_each_query_answers_as_the_truth_says(answered, name, target):
    CHECKS[name](answered, answer(answered, name, target))


def test_a_month_of_the_service_mart_does_not_add_up_to_its_persons_and_the_dictionary_says_so(answered):
    """The trap the doc warns of: the mart's distinct persons summed over a month's rows
    count a person once per category and prefecture served in."""
    engine = answered["engines"]["duckdb"]
    summed = dict(rows(engine, "SELECT month, SUM(volunteers) FROM mart_service_hours_by_month GROUP BY month"))
    persons = dict(rows(engine, "SELECT strftime(service_date, '%Y-%m'), COUNT(DISTINCT volunteer_key) "
                                "FROM fact_service GROUP BY 1"))
    assert summed.keys() == persons.keys()
    assert any(summed[month] > persons[month] for month in summed)
    dictionary = (DOC.parent / "DATA_DICTIONARY.md").read_text(encoding="utf-8")
    for table, column in [("mart_service_hours_by_month", "volunteers"), ("mart_team_hours_ranking", "volunteers"),
                          ("mart_brand_programmes", "volunteers"), ("mart_organizations_by_category", "organizations"),
                          ("mart_evaluations_by_evaluator", "organizations")]:
        section = dictionary.split(f"### `{table}`", 1)[1].split("\n### ", 1)[0]
        line = next(line for line in section.splitlines() if line.startswith(f"| `{column}` |"))
        assert "not additive" in line, (table, column)
