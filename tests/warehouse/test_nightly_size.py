"""Night after night the warehouse keeps its size (bench/nights.py measures a month of them).

DuckDB: each publish writes a copy of the published file; the tables it replaces in full are
dropped and checkpointed before the load, so their new rows take the old rows' blocks. Dropped
in the load's own transaction, the old blocks were freed only after the new rows had been
written past them, and every night's file carried the last night's tables as free blocks.

PostgreSQL: a table loaded as a delta is vacuumed after the commit, so the rows its DELETE
left dead make room for the next night's rows whether or not autovacuum runs (it is off on
the test server).

Both: deltas add up (DuckDB's row groups keep deleted rows and gain small ones), so a table
whose deltas changed more than delta.DELTA_CHURN_SHARE of it since its last full load is
loaded in full, compact again.
"""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import pandas as pd
import sqlalchemy as sa

from pipelines.warehouse import delta
from pipelines.warehouse.delta import RECORD_NAME
from pipelines.warehouse.publish import published_build_dir, publish
from tests.warehouse.conftest import settings_for
from tests.warehouse.world import make_world

FIRST_NIGHT = dt.date(2026, 3, 1)


def blocks(database) -> tuple[int, int]:
    """The file's blocks: in all, and free (held by nothing)."""
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute("SELECT total_blocks, free_blocks FROM pragma_database_size()").fetchone()


def test_tables_replaced_in_full_every_night_leave_no_free_blocks_in_the_duckdb_file(tmp_path):
    make_world(tmp_path, persons=300, services=5000)
    settings = settings_for(tmp_path)
    sizes = []
    for night in range(3):
        # every table replaced in full (as the small tables are every night)
        publish(settings, as_of=FIRST_NIGHT + dt.timedelta(days=night), incremental=False)
        sizes.append(blocks(tmp_path / "warehouse.duckdb"))
    (first, _), (second, free_second), (third, free_third) = sizes
    # before: 32 blocks, then 63 of which 31 free, night after night
    assert free_second == free_third == 0, sizes
    assert third <= first * 1.1, sizes


def test_after_the_commit_postgresql_vacuums_the_deltas_and_analyzes_the_tables_replaced(tmp_path, pg_databases, monkeypatch):
    monkeypatch.setattr(delta, "DELTA_MIN_ROWS", 0)  # the world is small
    make_world(tmp_path, persons=200, services=1500)
    url = pg_databases.new()
    settings = settings_for(tmp_path, url)
    publish(settings, as_of=FIRST_NIGHT)
    services = pd.read_parquet(tmp_path / "resolved" / "services.parquet")
    services.loc[services.index[:7], "hours"] += 1.25
    services.to_parquet(tmp_path / "resolved" / "services.parquet", index=False)

    changed = publish(settings, as_of=FIRST_NIGHT + dt.timedelta(days=1))

    assert changed.loads["fact_service"] == "delta"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as con:
            upkeep = {name: (vacuums, analyzes) for name, vacuums, analyzes in con.execute(sa.text(
                "SELECT relname, vacuum_count, analyze_count FROM pg_stat_user_tables "
                "WHERE schemaname = current_schema()")).all()}
    finally:
        engine.dispose()
    deltas = {name for name, kind in changed.loads.items() if kind == "delta"}
    assert deltas and all(upkeep[name][0] > 0 and upkeep[name][1] > 0 for name in deltas), upkeep
    # a table replaced in full is new: nothing dead in it to vacuum, but no statistics either
    full = {name for name, kind in changed.loads.items() if kind == "full"}
    assert full and all(upkeep[name][1] >= 1 for name in full), upkeep


def _change_hours(data_dir, first: int) -> None:
    services = pd.read_parquet(data_dir / "resolved" / "services.parquet")
    services.loc[services.index[first:first + 7], "hours"] += 1.25
    services.to_parquet(data_dir / "resolved" / "services.parquet", index=False)


def test_a_table_its_deltas_changed_enough_is_loaded_in_full_and_counted_afresh(tmp_path, monkeypatch):
    monkeypatch.setattr(delta, "DELTA_MIN_ROWS", 0)  # the world is small
    # one night's 7 changed services (7 deleted, 7 inserted) pass it
    monkeypatch.setattr(delta, "DELTA_CHURN_SHARE", 0.004)
    make_world(tmp_path, persons=200, services=1500)
    settings = settings_for(tmp_path)
    publish(settings, as_of=FIRST_NIGHT)
    kinds, churn = [], []
    for night in range(1, 4):
        _change_hours(tmp_path, 10 * night)
        kinds.append(publish(settings, as_of=FIRST_NIGHT + dt.timedelta(days=night)).loads["fact_service"])
        record = json.loads((published_build_dir(settings) / RECORD_NAME).read_text())
        churn.append(record["churn"].get("fact_service", 0))
    # a delta; then, 14 rows changed since the full load being past the share, in full; a delta
    assert kinds == ["delta", "full", "delta"], kinds
    assert churn == [14, 0, 14], churn
