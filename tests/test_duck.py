"""DuckDB connections draw no progress bar: a step's log is a file and the Dagster UI, not a
terminal (a province-size staging wrote dozens of half-drawn bars between its events)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
import sqlalchemy as sa

from pipelines import duck
from pipelines.warehouse.reader import read_only_engine

ROOT = Path(__file__).resolve().parents[1]


def test_a_pipeline_connection_draws_no_progress_bar():
    with duck.connect() as con:
        assert con.execute("SELECT current_setting('enable_progress_bar')").fetchone()[0] is False


def test_the_warehouse_reader_draws_none_either(tmp_path):
    database = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(database)).close()
    engine = read_only_engine(f"duckdb:///{database}")
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT current_setting('enable_progress_bar')")).scalar() is False
    engine.dispose()


def test_the_pipeline_opens_duckdb_only_through_its_helper():
    opened_elsewhere = [
        str(path.relative_to(ROOT)) for path in sorted((ROOT / "pipelines").rglob("*.py"))
        if path.name != "duck.py" and "duckdb.connect(" in path.read_text(encoding="utf-8")
    ]
    assert opened_elsewhere == []


def test_processes_side_by_side_share_one_spill_budget(tmp_path, monkeypatch):
    """A spilling connection holds duck.SPILL_MEMORY_MB on every core; in a process that shares
    them with another (the staged step's two lanes) each holds half of both, so two stagings
    together hold what one did."""
    def budget() -> tuple[str, int]:
        with duck.connect(spill_to=tmp_path) as con:
            return con.execute(
                "SELECT current_setting('memory_limit'), current_setting('threads')").fetchone()

    monkeypatch.setattr(duck, "_spill_share", 1)
    monkeypatch.setattr(duck.os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3})
    alone = budget()
    duck.share_spill_budget(2)
    assert (alone, budget()) == (("953.6 MiB", 4), ("476.8 MiB", 2))  # 1 GB and 500 MB
    duck.share_spill_budget(8)
    assert budget()[1] == 1  # never none


def test_scratch_connections_share_a_database_but_not_what_their_queries_leave():
    """Resolution's short queries open connections to one in-memory database (duck.scratch):
    what one registers or makes as a TEMP table is its own."""
    first, second = duck.scratch(), duck.scratch()
    try:
        first.register("frame", pa.table({"value": [1, 2]}))
        first.execute("CREATE TEMP TABLE kept AS SELECT * FROM frame")
        second.execute("CREATE TEMP TABLE kept AS SELECT 5 AS value")  # the same name: no clash
        assert first.execute("SELECT sum(value) FROM kept").fetchone()[0] == 3
        assert second.execute("SELECT sum(value) FROM kept").fetchone()[0] == 5
        with duck.scratch() as third, pytest.raises(duckdb.CatalogException):
            third.execute("SELECT * FROM frame").fetchall()  # another connection's frame
        assert first.execute("SELECT current_setting('enable_progress_bar')").fetchone()[0] is False
    finally:
        first.close()
        second.close()
