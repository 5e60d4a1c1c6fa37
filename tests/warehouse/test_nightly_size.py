"""Night after night the warehouse keeps its size (bench/nights.py measures a month of them).

DuckDB: each publish writes a copy of the published file; the tables it replaces in full are
dropped and checkpointed before the load, so their new rows take the old rows' blocks. Dropped
in the load's own transaction, the old blocks were freed only after the new rows had been
written past them, and every night's file carried the last night's tables as free blocks.

PostgreSQL: a table loaded as a delta is vacuumed after the commit, so the rows its DELETE
left dead make room for the next night's rows whether or not autovacuum runs (it is off on
the test server).
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import sqlalchemy as sa

from pipelines.warehouse import delta
from pipelines.warehouse.publish import publish
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


def test_a_table_loaded_as_a_delta_is_vacuumed_after_the_commit_on_postgresql(tmp_path, pg_databases, monkeypatch):
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
            vacuumed = dict(con.execute(sa.text(
                "SELECT relname, vacuum_count > 0 AND analyze_count > 0 FROM pg_stat_user_tables "
                "WHERE schemaname = current_schema()")).all())
    finally:
        engine.dispose()
    deltas = {name for name, kind in changed.loads.items() if kind == "delta"}
    assert deltas and all(vacuumed[name] for name in deltas), vacuumed
    # a table replaced in full is new: nothing dead in it, nothing vacuumed
    assert not any(vacuumed[name] for name, kind in changed.loads.items() if kind == "full")
