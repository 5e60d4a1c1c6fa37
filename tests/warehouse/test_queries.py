"""The ten example queries of the data dictionary run on both targets and answer sensibly.

Where a query's answer can be worked out from the world's frames (its inputs) and the literal
county list (tests/reference.py), it is compared with that, not with another table of the
same warehouse."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pandas as pd
import pytest

from pipelines.warehouse.dictionary import load_queries
from tests.reference import GUIZHOU_COUNTIES, GUIZHOU_PREFECTURES
from tests.warehouse.helpers import hours_decimal, rows, scalar

QUERIES = {query.name: query for query in load_queries()}


def run(engine, name: str) -> list[tuple]:
    return rows(engine, QUERIES[name].sql.rstrip().rstrip(";"))


def comparable(value):
    if isinstance(value, (Decimal, float)):
        return round(float(value), 6)
    return value


def test_there_are_ten_example_queries_each_with_a_question():
    assert len(QUERIES) == 10
    assert all(query.question.endswith("?") for query in QUERIES.values())


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_each_query_gives_the_same_answer_on_duckdb_and_postgresql(name, duckdb_published, pg_published):
    duck = [tuple(comparable(v) for v in row) for row in run(duckdb_published[0], name)]
    pg = [tuple(comparable(v) for v in row) for row in run(pg_published[0], name)]
    assert duck, f"{name} returns nothing on the test world"
    assert duck == pg


def test_volunteers_by_prefecture(world, published):
    engine, _ = published
    answer = run(engine, "q01_volunteers_by_prefecture")
    assert len(answer) == 9
    volunteers = world.frames["resolved/volunteers"]
    counted = volunteers[(volunteers["status"] != "deleted") & volunteers["region_code"].notna()]
    assert sum(row[2] for row in answer) == len(counted)
    assert sum(row[3] for row in answer) == (counted["status"] == "active").sum()


def test_registered_organizations_at_the_end_of_2025(world, published):
    engine, _ = published
    organizations = world.frames["resolved/organizations"]
    # first sync: the history dates each organization's values from its founding date
    expected = organizations[
        (organizations["registration_status"] == "registered")
        & ~organizations["status"].isin(["deleted", "exited"])
        & (organizations["founded_on"] <= dt.date(2025, 12, 31))
    ]
    assert run(engine, "q02_registered_organizations_end_of_2025") == [(len(expected),)]


def test_service_hours_by_month_of_2025(world, published):
    engine, _ = published
    answer = run(engine, "q03_service_hours_by_month_2025")
    services = world.frames["resolved/services"]
    in_2025 = services[services["service_date"].map(lambda d: d.year == 2025)]
    assert [int(row[0]) for row in answer] == sorted({d.month for d in in_2025["service_date"]})
    assert len(answer) >= 6
    assert sum(row[1] for row in answer) == len(in_2025)
    assert abs(float(sum(row[3] for row in answer)) - in_2025["hours"].sum()) < 0.001


def test_top_ten_teams(world, published):
    engine, _ = published
    answer = run(engine, "q04_top_ten_teams_by_hours")
    services = world.frames["resolved/services"].dropna(subset=["org_key"])
    organizations = world.frames["resolved/organizations"].set_index("org_key")
    hours, volunteers = defaultdict(Decimal), defaultdict(set)
    for org_key, volunteer_key, value in zip(services["org_key"], services["volunteer_key"], services["hours"]):
        hours[org_key] += hours_decimal(value)
        if pd.notna(volunteer_key):
            volunteers[org_key].add(volunteer_key)
    top = sorted(hours, key=lambda key: (-hours[key], key))[:10]
    expected = []
    for key in top:
        region = organizations.loc[key, "region_code"]
        expected.append((key, organizations.loc[key, "name"], GUIZHOU_PREFECTURES[region[:4]],
                         GUIZHOU_COUNTIES[region], hours[key], len(volunteers[key])))
    assert answer == expected


def test_registration_rate_by_prefecture(world, published):
    engine, _ = published
    answer = run(engine, "q05_registration_rate_by_prefecture")
    organizations = world.frames["resolved/organizations"]
    live = organizations[~organizations["status"].isin(["deleted", "exited"])]
    counted: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for region, status in zip(live["region_code"], live["registration_status"]):
        counted[region[:4]][0] += 1
        counted[region[:4]][1] += status == "registered"
    expected = [(code, GUIZHOU_PREFECTURES[code], n, registered) for code, (n, registered) in sorted(counted.items())]
    assert [tuple(row[:4]) for row in answer] == expected
    for (_, _, n, registered), row in zip(expected, answer):
        assert abs(float(row[4]) - 100 * registered / n) <= 0.05 + 1e-9  # rounded to 0.1
    # and the province's row of the mart agrees with the world too
    assert scalar(
        engine, "SELECT registered FROM mart_organization_registration_rate WHERE area_level = 'province'"
    ) == (live["registration_status"] == "registered").sum()


def test_counties_without_station(world, published):
    engine, _ = published
    answer = run(engine, "q06_counties_without_station")
    stations = world.frames["staged/stations"]
    with_station = set(stations.loc[~stations["is_deleted"], "region_code"])
    expected = [(GUIZHOU_PREFECTURES[code[:4]], code, name)
                for code, name in sorted(GUIZHOU_COUNTIES.items()) if code not in with_station]
    assert answer == expected
    assert len(answer) == scalar(engine, "SELECT count(*) FROM mart_station_coverage_by_county WHERE NOT has_station")


def test_star_level_disagreements(world, published):
    engine, _ = published
    answer = {row[0]: row[1:] for row in run(engine, "q07_star_level_disagreements")}
    assert set(answer) == {"national", "provincial"}
    for rated, disagreements, higher, lower in answer.values():
        assert 0 < disagreements <= rated and higher + lower == disagreements


def test_timebank_by_county(world, published):
    engine, _ = published
    answer = run(engine, "q08_timebank_by_county")
    # the world's time bank per person: deposited = their services, redeemed = their live
    # redemptions (made with a provincial account), counted in the person's county
    volunteers = world.frames["resolved/volunteers"].set_index("volunteer_key")
    services = world.frames["resolved/services"].dropna(subset=["volunteer_key"])
    vmap = world.frames["resolved/volunteer_source_map"]
    account_key = dict(zip(zip(vmap["source"], vmap["source_id"]), vmap["volunteer_key"]))
    redemptions = world.frames["staged/redemptions"]
    redemptions = redemptions[~redemptions["is_deleted"]]
    deposited, redeemed = defaultdict(Decimal), defaultdict(Decimal)
    for key, value in zip(services["volunteer_key"], services["hours"]):
        deposited[key] += hours_decimal(value)
    for source, account, value in zip(redemptions["source"], redemptions["volunteer_source_id"], redemptions["hours"]):
        redeemed[account_key[(source, account)]] += hours_decimal(value)
    by_county: dict[str, list] = defaultdict(lambda: [0, Decimal(0), Decimal(0)])
    for key in set(deposited) | set(redeemed):
        region = volunteers.loc[key, "region_code"]
        if pd.isna(region):
            continue  # an unknown county is its own row, which the query leaves out
        by_county[region][0] += 1
        by_county[region][1] += deposited[key]
        by_county[region][2] += redeemed[key]
    expected = sorted(
        ((GUIZHOU_PREFECTURES[code[:4]], GUIZHOU_COUNTIES[code], n, d, r, d - r, code)
         for code, (n, d, r) in by_county.items()),
        key=lambda row: (-row[5], row[6]),
    )[:10]
    assert answer == [row[:6] for row in expected]
    assert scalar(engine, "SELECT sum(redeemed_hours) FROM mart_timebank_by_county") == sum(redeemed.values())


def test_brand_programmes(world, published):
    engine, _ = published
    answer = {row[0]: row[1:] for row in run(engine, "q09_brand_programmes")}
    assert set(answer) == {"三关爱", "暖冬行动", "西部计划", "青清河", "夜校", "其他"}
    projects = world.frames["staged/projects"]
    live = projects[~projects["is_deleted"]]
    night_school = live["brand"].fillna("").str.contains("夜校").sum()
    assert answer["夜校"][0] == night_school  # 脱贫攻坚夜校 counts as 夜校
    assert all(answer[brand][3] > 0 for brand in ("三关爱", "暖冬行动", "西部计划", "青清河", "夜校"))


def test_evaluation_and_integrity_by_level(world, published):
    engine, _ = published
    answer = run(engine, "q10_evaluation_and_integrity_by_level")
    organizations = world.frames["resolved/organizations"]
    live = organizations[organizations["status"] != "deleted"]
    assert sum(row[1] for row in answer) == len(live)
    assert sum(row[4] for row in answer) == (live["credit_status"] == "失信").sum()
    assert all(row[3] is None or 0 <= float(row[3]) <= 100 for row in answer)
