"""What the published tables hold, checked against the world they were built from.

Expected values come from the world's frames (its inputs), from literal facts (the county
list, the star thresholds) and from the contract's hash computed with stdlib hmac
(tests/reference.py), never from the code that builds the warehouse."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import sqlalchemy as sa

from tests.reference import GUIZHOU_COUNTIES, GUIZHOU_PREFECTURES, MEASURE_FIELD_OF_CATEGORY, id_hash
from pipelines.warehouse.publish import publish
from tests.warehouse.conftest import AS_OF, TEST_KEY, settings_for
from tests.warehouse.helpers import hours_decimal, rows, scalar, table_rows
from tests.warehouse.world import make_world

STAR_THRESHOLDS = [(1500, 5), (1000, 4), (600, 3), (300, 2), (100, 1)]


def expected_star(hours: float) -> int:
    return next((stars for floor, stars in STAR_THRESHOLDS if hours >= floor), 0)


def test_dim_region_lists_every_current_county_with_its_prefecture(published):
    engine, _ = published
    regions = rows(engine, "SELECT region_code, region_name, prefecture_code, prefecture_name FROM dim_region")
    codes = {r[0] for r in regions}
    assert len(regions) == 88
    assert {r[2] for r in regions} == {"5201", "5202", "5203", "5204", "5205", "5206", "5223", "5226", "5227"}
    assert all(code.startswith(prefecture) and len(code) == 6 for code, _, prefecture, _ in regions)
    # successors in, retired codes out (the contract's four renames)
    assert {"520115", "520204", "520281", "520581"} <= codes
    assert not codes & {"520114", "520221", "520222", "520522"}
    names = {r[0]: (r[1], r[3]) for r in regions}
    assert names["520115"] == ("观山湖区", "贵阳市")
    assert names["522732"] == ("三都水族自治县", "黔南布依族苗族自治州")
    # and the whole published list, row by row
    assert {code: (name, prefecture, prefecture_name) for code, name, prefecture, prefecture_name in regions} == {
        code: (name, code[:4], GUIZHOU_PREFECTURES[code[:4]]) for code, name in GUIZHOU_COUNTIES.items()
    }


def test_volunteer_totals_are_the_sum_of_their_services_and_stars_follow_the_thresholds(world, published):
    engine, _ = published
    services = world.frames["resolved/services"]
    expected_totals = services.dropna(subset=["volunteer_key"]).groupby("volunteer_key")["hours"].apply(
        lambda hours: sum(hours_decimal(h) for h in hours)
    )
    published_rows = {
        key: (total, stars)
        for key, total, stars in rows(engine, "SELECT volunteer_key, total_hours, star_level FROM dim_volunteer")
    }
    assert len(published_rows) == len(world.frames["resolved/volunteers"])
    for key, (total, stars) in published_rows.items():
        assert total == expected_totals.get(key, Decimal(0)), key
        assert stars == expected_star(float(total)), key
    # the world puts persons 1..5 at 5, 4, 3, 2 and 0 stars (99.5 h of extra service is not enough)
    assert published_rows["V000001"][1] == 5 and published_rows["V000002"][1] >= 4
    assert {stars for _, stars in published_rows.values()} >= {0, 2, 3, 4, 5}


def test_identity_columns_are_hashed_and_masked_as_the_contract_says(world, published):
    engine, _ = published
    volunteers = world.frames["resolved/volunteers"].set_index("volunteer_key")
    published = rows(engine, "SELECT volunteer_key, id_hash, id_masked, name_masked FROM dim_volunteer")
    for key, published_hash, id_masked, name_masked in published:
        source = volunteers.loc[key]
        index = int(key[1:])
        number = world.id_numbers[index]
        # the contract's hash of the clear number (stdlib HMAC-SHA256 under the test key);
        # null for the persons whose number only came masked
        masked_only = pd.isna(source["cert_hash"])
        assert published_hash == (None if masked_only else id_hash(number, TEST_KEY)), key
        assert id_masked == number[:4] + "*" * 10 + number[-4:]
        name = world.names[index]
        family = 2 if name[:2] in {"欧阳", "司马", "诸葛", "上官"} else 1
        assert name_masked == name[:family] + "*" * (len(name) - family), key
    # the world's rule: every tenth person came with a masked number only
    assert sum(h is None for _, h, _, _ in published) == len(published) // 10


def test_each_service_is_published_once_with_its_hours(world, published):
    engine, _ = published
    services = world.frames["resolved/services"]
    assert scalar(engine, "SELECT count(*) FROM fact_service") == len(services)
    assert scalar(engine, "SELECT count(DISTINCT service_key) FROM fact_service") == len(services)
    assert scalar(engine, "SELECT sum(hours) FROM fact_service") == sum(hours_decimal(h) for h in services["hours"])
    by_source = dict(rows(engine, "SELECT source, count(*) FROM fact_service GROUP BY source"))
    assert by_source == services["source"].value_counts().to_dict()


def test_projects_are_keyed_by_the_documented_rule_and_join_the_facts(world, published):
    engine, _ = published
    projects = world.frames["staged/projects"]
    assert scalar(engine, "SELECT count(*) FROM dim_project") == (~projects["is_deleted"]).sum()
    # P + 12 hex of SHA-256 of 'source:source_id' (docs/DATA_DICTIONARY.md), worked out with
    # coreutils' sha256sum: echo -n national:X00000 | sha256sum -> 9deb24af0f32...
    key_sql = "SELECT project_key FROM dim_project WHERE source = :source AND source_id = :source_id"
    assert scalar(engine, key_sql, source="national", source_id="X00000") == "P9deb24af0f32"
    assert scalar(engine, key_sql, source="provincial", source_id="9001") == "P9f5ed97d0cb4"
    # every service that names a project finds it in dim_project
    services = world.frames["resolved/services"]
    assert scalar(engine, "SELECT count(*) FROM fact_service WHERE project_key IS NOT NULL") == services["project_key"].notna().sum()
    assert scalar(
        engine,
        "SELECT count(*) FROM fact_service f WHERE f.project_key IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM dim_project p WHERE p.project_key = f.project_key)",
    ) == 0


def test_organizations_carry_the_composite_evaluation_score(world, published):
    engine, _ = published
    evaluations = world.frames["staged/evaluations"]
    # team T52000004 is org O00004: its latest period is 2024
    latest = evaluations[(evaluations["org_source_id"] == "T52000004") & (evaluations["period"] == "2024")]
    expected = latest.groupby("evaluator")["score"].mean().mean()
    score, period = rows(engine, "SELECT evaluation_score, evaluation_period FROM dim_organization WHERE org_key = 'O00004'")[0]
    assert period == "2024"
    assert abs(float(score) - expected) < 1e-6
    # provincial-only organizations have no evaluations
    assert scalar(engine, "SELECT evaluation_score FROM dim_organization WHERE org_key = 'O00001'") is None
    assert scalar(engine, "SELECT count(*) FROM dim_organization") == len(world.frames["resolved/organizations"])


def test_only_live_stations_are_published_and_linked_to_their_organization(world, published):
    engine, _ = published
    stations = world.frames["staged/stations"]
    live = stations[~stations["is_deleted"]]
    assert scalar(engine, "SELECT count(*) FROM dim_station") == len(live)
    published_keys = {r[0] for r in rows(engine, "SELECT station_key FROM dim_station")}
    assert published_keys == {f"provincial:{i}" for i in live["source_id"]}
    linked = rows(engine, "SELECT count(*) FROM dim_station WHERE org_key IS NOT NULL")[0][0]
    assert linked == live["org_source_id"].notna().sum()


def test_quarantine_and_source_maps_are_published_as_staged(world, published):
    engine, _ = published
    assert scalar(engine, "SELECT count(*) FROM quarantine") == len(world.frames["staged/quarantine"])
    assert scalar(engine, "SELECT count(*) FROM quarantine WHERE rule = 'region_outside_province'") == 12
    vmap = world.frames["resolved/volunteer_source_map"]
    assert scalar(engine, "SELECT count(*) FROM volunteer_source_map") == len(vmap)
    assert scalar(engine, "SELECT count(*) FROM organization_source_map") == len(world.frames["resolved/organization_source_map"])


def test_duckdb_and_postgresql_hold_the_same_content(duckdb_published, pg_published):
    duck, duck_result = duckdb_published
    pg, pg_result = pg_published
    assert duck_result.rows == pg_result.rows
    for table in duck_result.rows:
        assert table_rows(duck, table) == table_rows(pg, table), table


def test_table_and_column_descriptions_are_in_the_database(duckdb_published, pg_published):
    duck, _ = duckdb_published
    pg, _ = pg_published
    duck_comment = scalar(duck, "SELECT comment FROM duckdb_tables() WHERE table_name = 'mart_brand_programmes'")
    pg_comment = scalar(pg, "SELECT obj_description('mart_brand_programmes'::regclass)")
    assert duck_comment == pg_comment and "Question:" in pg_comment
    assert "hours" in scalar(
        pg, "SELECT col_description('dim_volunteer'::regclass, 12)"
    )


def test_in_both_systems_counts_persons_with_a_live_account_in_each(tmp_path):
    """mart_volunteers_by_county.in_both_systems is "with a live account in both systems"
    (the report's 两个系统均有在用账号): a person whose account in one system was deleted has
    no live account there, though dim_volunteer.in_* still say the account existed."""
    world = make_world(tmp_path, persons=150, services=800)
    staged = world.frames["staged/volunteers"].copy()
    people = world.frames["resolved/volunteers"].set_index("volunteer_key")
    accounts = world.frames["resolved/volunteer_source_map"].merge(staged, on=["source", "source_id"])
    in_both = people.index[people["in_national"] & people["in_provincial"] & (people["status"] != "deleted")]
    # the provincial account of five live persons in both systems is deleted at its source
    closed = accounts[(accounts["source"] == "provincial") & accounts["volunteer_key"].isin(in_both[:5])]
    staged.loc[staged["source_id"].isin(closed["source_id"]) & (staged["source"] == "provincial"), "is_deleted"] = True
    staged.to_parquet(tmp_path / "staged" / "volunteers.parquet", index=False)

    publish(settings_for(tmp_path), as_of=AS_OF)
    engine = sa.create_engine(settings_for(tmp_path).resolved_warehouse_url)
    try:
        published = scalar(engine, "SELECT sum(in_both_systems) FROM mart_volunteers_by_county")
        by_prefecture = scalar(engine, "SELECT sum(in_both_systems) FROM mart_volunteers_by_prefecture")
    finally:
        engine.dispose()
    live = accounts.merge(staged[["source", "source_id", "is_deleted"]], on=["source", "source_id"], suffixes=("_old", ""))
    live = live[~live["is_deleted"] & live["volunteer_key"].isin(people.index[people["status"] != "deleted"])]
    expected = int((live.groupby("volunteer_key")["source"].nunique() == 2).sum())
    assert expected == len(in_both) - 5  # the five no longer count
    assert published == expected == by_prefecture


def test_evaluations_of_a_deleted_organization_are_counted_in_no_period(tmp_path):
    """mart_evaluations_by_evaluator said "deleted organizations excluded" and counted their
    evaluations: the report's 评估次数 held evaluations of organizations it counts nowhere else."""
    world = make_world(tmp_path, persons=100, services=400, org_overrides={0: {"status": "deleted"}})
    publish(settings_for(tmp_path), as_of=AS_OF)
    evaluations = world.frames["staged/evaluations"]
    deleted_team = world.frames["staged/organizations"].query("status == 'deleted'")["source_id"]
    assert evaluations["org_source_id"].isin(deleted_team).any(), "the deleted organization must have evaluations"
    kept = evaluations[~evaluations["is_deleted"] & ~evaluations["org_source_id"].isin(deleted_team)]
    expected = {(period, evaluator): (len(group), group["org_source_id"].nunique())
                for (period, evaluator), group in kept.groupby(["period", "evaluator"])}
    engine = sa.create_engine(settings_for(tmp_path).resolved_warehouse_url)
    try:
        published = rows(engine, "SELECT period, evaluator, evaluations, organizations FROM mart_evaluations_by_evaluator")
    finally:
        engine.dispose()
    assert {(p, e): (n, o) for p, e, n, o in published} == expected


def test_the_source_maps_say_which_accounts_and_teams_are_deleted_at_their_source(world, published):
    """dim_volunteer.in_national / in_provincial stay true after a deletion: the maps' is_deleted
    is what tells a live account from a deleted one (docs/ANSWERING_QUESTIONS.md, query 6)."""
    engine, _ = published
    for table, staged in (("volunteer_source_map", "staged/volunteers"), ("organization_source_map", "staged/organizations")):
        frame = world.frames[staged]
        expected = {(s, str(i)): bool(d) for s, i, d in zip(frame["source"], frame["source_id"], frame["is_deleted"])}
        published_rows = {(s, i): d for s, i, d in rows(engine, f"SELECT source, source_id, is_deleted FROM {table}")}
        assert published_rows == {key: expected[key] for key in published_rows}
        assert set(published_rows.values()) == {True, False}, table


def test_fact_evaluation_holds_each_live_evaluation_the_evaluator_mart_counts(world, published):
    engine, _ = published
    evaluations = world.frames["staged/evaluations"]
    team_org = dict(zip(world.frames["resolved/organization_source_map"]["source_id"],
                        world.frames["resolved/organization_source_map"]["org_key"]))
    organizations = world.frames["resolved/organizations"].set_index("org_key")["status"]
    kept = evaluations[~evaluations["is_deleted"]
                       & (evaluations["org_source_id"].map(team_org).map(organizations) != "deleted")]
    assert len(kept) > 0
    fact = rows(engine, "SELECT evaluation_key, org_key, period, evaluator, score FROM fact_evaluation")
    assert sorted(key for key, *_ in fact) == sorted("national:" + kept["source_id"])
    assert {(key, org) for key, org, *_ in fact} == {
        ("national:" + s, team_org[t]) for s, t in zip(kept["source_id"], kept["org_source_id"])}
    by_period = rows(engine, "SELECT period, evaluator, COUNT(*), COUNT(DISTINCT org_key) FROM fact_evaluation "
                             "GROUP BY period, evaluator ORDER BY period, evaluator")
    mart = rows(engine, "SELECT period, evaluator, evaluations, organizations FROM mart_evaluations_by_evaluator "
                        "ORDER BY period, evaluator")
    assert by_period == mart


def test_dim_service_category_lists_the_national_categories_with_the_measures_fields(published):
    """Hours by professional field (司法, 卫健 …) are a join on category, not a CASE every
    analyst retypes (docs/ANSWERING_QUESTIONS.md, query 2)."""
    engine, _ = published
    categories = rows(engine, "SELECT position, category_code, category, measure_field FROM dim_service_category "
                              "ORDER BY position")
    assert [row[0] for row in categories] == list(range(1, 18))
    assert [row[1] for row in categories] == [f"{n:04d}" for n in range(1, 17)] + ["0099"]
    assert {row[2]: row[3] for row in categories} == {
        **MEASURE_FIELD_OF_CATEGORY, "社区服务": None, "文化艺术": None, "其他": None}
    unknown = scalar(engine, "SELECT COUNT(*) FROM fact_service f WHERE f.category IS NOT NULL AND NOT EXISTS "
                             "(SELECT 1 FROM dim_service_category c WHERE c.category = f.category)")
    assert unknown == 0
