"""End to end on a small sandbox world: every asset of the code location, over real HTTP,
into a real DuckDB warehouse; then the privacy scan, the figures and the example queries.

The scan looks for the world's own clear certificate numbers, phones and full names (the
sandbox truth holds them: the world is synthetic) in every text column of every published
table, in the run's log messages and in the Dagster metadata of every materialization and
check.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from pipelines.warehouse.dictionary import load_queries
from tests.reference import GUIZHOU_COUNTIES
from tests.sandbox_sync import sync_world
from tests.warehouse.helpers import all_text_values, rows, scalar, text_columns

PERSONS = 400
SEED = 5
AS_OF = dt.datetime(2026, 6, 30, 18, 0)
TEST_KEY = "sandbox-e2e-pii-key-of-at-least-32-bytes"


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    from sandbox import generate_world, load_truth

    root = tmp_path_factory.mktemp("warehouse-e2e")
    world = Path(generate_world(root / "world", persons=PERSONS, seed=SEED, as_of=AS_OF))
    warehouse = root / "warehouse.duckdb"
    instance = dg.DagsterInstance.ephemeral()
    result = sync_world(world, {"DATA_DIR": str(root / "data"), "WAREHOUSE_URL": f"duckdb:///{warehouse}",
                                "PII_HASH_KEY": TEST_KEY}, instance=instance)
    engine = sa.create_engine(f"duckdb:///{warehouse}")
    yield {"truth": load_truth(world), "engine": engine, "result": result, "instance": instance, "world": world}
    engine.dispose()


def _volunteers(warehouse: Path) -> dict[str, tuple]:
    engine = sa.create_engine(f"duckdb:///{warehouse}")
    try:
        return {row[0]: tuple(row[1:]) for row in rows(engine, "SELECT volunteer_key, name_masked, id_hash FROM dim_volunteer")}
    finally:
        engine.dispose()


def clear_values(truth) -> dict[str, set[str]]:
    persons = truth.persons
    return {
        "id_numbers": {v for v in persons["cert_no"].dropna() if len(v) >= 15},
        "phones": {v for v in persons["phone"].dropna() if len(v) >= 11},
        "names": {v for v in persons["name"].dropna() if len(v) >= 2},
    }


def findings(texts, clear: dict[str, set[str]]) -> dict[str, list[str]]:
    """Which kinds of clear value occur in the texts (kinds only: never print a value)."""
    found: dict[str, int] = {kind: 0 for kind in clear}
    for text in texts:
        for kind, values in clear.items():
            found[kind] += any(value in text for value in values)
    return found


def test_no_clear_personal_data_in_any_published_text_column(synced):
    engine = synced["engine"]
    columns = text_columns(engine, "main")
    assert {"dim_volunteer", "quarantine", "dim_station", "fact_service"} <= set(columns)
    values = all_text_values(engine, columns)
    assert findings(values, clear_values(synced["truth"])) == {"id_numbers": 0, "phones": 0, "names": 0}


def test_no_clear_personal_data_in_the_logs_or_the_dagster_metadata(synced):
    instance: dg.DagsterInstance = synced["instance"]
    run_id = synced["result"].run_id
    texts = []
    for record in instance.all_logs(run_id):
        texts.append(record.user_message or "")
        event = record.dagster_event
        if event is None:
            continue
        data = event.event_specific_data
        for holder in (getattr(data, "materialization", None), getattr(data, "asset_check_evaluation", None), data):
            metadata = getattr(holder, "metadata", None) or {}
            texts += [json.dumps(str(getattr(v, "value", v)), ensure_ascii=False) for v in metadata.values()]
            texts += [str(getattr(v, "value", v)) for v in metadata.values()]
    assert len(texts) > 50
    assert any("dim_volunteer" in text for text in texts)  # the dictionary is in the metadata
    assert findings(texts, clear_values(synced["truth"])) == {"id_numbers": 0, "phones": 0, "names": 0}


def test_the_warehouse_counts_every_hour_once_and_its_checks_pass(synced):
    engine, truth = synced["engine"], synced["truth"]
    total = float(scalar(engine, "SELECT sum(hours) FROM fact_service"))
    assert total == pytest.approx(truth.persons["true_hours"].sum(), abs=0.01)
    assert float(scalar(engine, "SELECT sum(total_hours) FROM dim_volunteer")) == pytest.approx(total, abs=0.01)
    assert scalar(engine, "SELECT count(*) FROM dim_region") == 88
    checks = {
        e.check_name: e.passed
        for e in synced["result"].get_asset_check_evaluations()
        if e.asset_key == dg.AssetKey(["warehouse", "publish"])
    }
    assert checks == {"tables_and_columns": True, "no_clear_personal_numbers": True, "hours_add_up": True,
                      "freshness_check": True}  # published moments ago


@pytest.mark.parametrize("query", load_queries(), ids=lambda q: q.name)
def test_each_example_query_answers_on_the_sandbox_warehouse(synced, query):
    answer = rows(synced["engine"], query.sql.rstrip().rstrip(";"))
    assert answer, f"{query.name} returns nothing"
    assert all(any(value is not None for value in row) for row in answer)


def test_the_key_figures_agree_with_the_sandbox_truth(synced):
    engine, truth = synced["engine"], synced["truth"]
    materialization = synced["result"].asset_materializations_for_node("warehouse__publish")[0]
    figures = {k: v.value for k, v in materialization.metadata.items()}
    live_persons = (truth.persons["status"] != "deleted").sum()
    assert figures["volunteers"] == scalar(engine, "SELECT count(*) FROM dim_volunteer WHERE status <> 'deleted'")
    assert figures["volunteers"] == pytest.approx(live_persons, rel=0.02)
    assert 0 <= figures["registration_rate"] <= 1
    assert figures["stations"] == scalar(engine, "SELECT count(*) FROM dim_station")
    with_station = {code for code, in rows(engine, "SELECT DISTINCT region_code FROM dim_station")}
    assert figures["counties_without_station"] == len(set(GUIZHOU_COUNTIES) - with_station)


def test_names_are_masked_from_their_clear_form(synced):
    """Staging seals names (pipelines/name_seal.py) and the publish unseals them to mask them:
    every masked name is a family name of the world's and stars, none a sealed character."""
    engine, truth = synced["engine"], synced["truth"]
    masked = [m for m, in rows(engine, "SELECT name_masked FROM dim_volunteer WHERE name_masked IS NOT NULL")]
    assert len(masked) > PERSONS / 2
    assert not [m for m in masked if any(0xE000 <= ord(c) <= 0xF8FF or ord(c) >= 0xF0000 for c in m)]
    family_names = {name[:2] for name in truth.persons["name"].dropna()} | {name[:1] for name in truth.persons["name"].dropna()}
    assert all(m.rstrip("*") in family_names and m.endswith("*") for m in masked if len(m) > 1)


def test_a_new_pii_hash_key_restages_everything_under_it(synced, tmp_path):
    """A new PII_HASH_KEY (README: never, but an operator may): the next sync stages and
    resolves everything again under it, so the names sealed under the old key are not read
    with the new one: the same persons, the same masked names, new id hashes."""
    data_dir, warehouse = tmp_path / "data", tmp_path / "warehouse.duckdb"  # (where the
    # data lives is part of what a step's reuse is told by: the same folder for both syncs)
    env = {"DATA_DIR": str(data_dir), "WAREHOUSE_URL": f"duckdb:///{warehouse}"}
    sync_world(synced["world"], {**env, "PII_HASH_KEY": TEST_KEY})
    before = _volunteers(warehouse)
    sync_world(synced["world"], {**env, "PII_HASH_KEY": TEST_KEY[::-1]})
    after = _volunteers(warehouse)
    assert set(after) == set(before)
    assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in before.items()}
    with_hash = [k for k, v in before.items() if v[1] is not None]
    assert with_hash and all(after[k][1] not in (None, before[k][1]) for k in with_hash)
