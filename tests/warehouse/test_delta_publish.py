"""A publish after a change set loads only what changed (pipelines/warehouse/delta.py): a table
the warehouse already holds as built is left alone, a large one gets its changed rows deleted
and inserted in the publishing transaction. The warehouse equals a full publish of the same
files into a fresh target, table by table, on DuckDB and PostgreSQL, through deletions, an
account moving to another person, new rows, a change undone, a warehouse changed by hand
and a publish killed between its commit and its record.

The world is small, so the deltas' size floor is lowered to none (a real sync loads tables
under 50,000 rows whole).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa

from pipelines.warehouse import delta
from pipelines.warehouse.delta import RECORD_NAME, previous_publish, spec_digest, write_record
from pipelines.warehouse.privacy_scan import PersonalDataFound
from pipelines.warehouse.publish import published_build_dir, publish
from tests.crash.harness import table_hashes
from tests.warehouse.conftest import PG_ADMIN, settings_for
from tests.warehouse.world import make_world

ROOT = Path(__file__).resolve().parents[2]
DAY_ONE, DAY_TWO, DAY_THREE = dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)


@pytest.fixture(autouse=True)
def deltas_at_any_size(monkeypatch):
    monkeypatch.setattr(delta, "DELTA_MIN_ROWS", 0)
    monkeypatch.setattr(delta, "DELTA_MAX_SHARE", 1.0)


class Pair:
    """One DATA_DIR published incrementally, and a copy of its inputs published in full into
    a warehouse of its own (`incremental=False`, a fresh DATA_DIR each time: no kept files)."""

    def __init__(self, root: Path, target: str, pg_databases) -> None:
        self.root, self.target, self.pg = root, target, pg_databases
        make_world(root / "incremental", persons=200, services=1500)
        self.settings = settings_for(root / "incremental", pg_databases.new() if target == "postgresql" else "")
        self.rounds = 0

    @property
    def data(self) -> Path:
        return self.settings.data_dir

    def resolved(self, name: str) -> pd.DataFrame:
        return pd.read_parquet(self.data / "resolved" / f"{name}.parquet")

    def write(self, name: str, frame: pd.DataFrame) -> None:
        frame.to_parquet(self.data / "resolved" / f"{name}.parquet", index=False)

    def publish(self, as_of: dt.date, **options):
        return publish(self.settings, as_of=as_of, **options)

    def hashes(self) -> dict[str, str]:
        return table_hashes(self.settings.resolved_warehouse_url)

    def full_rebuild(self, as_of: dt.date) -> dict[str, str]:
        """The same inputs (and the same organization history before) published in full."""
        self.rounds += 1
        full = self.root / f"full-{self.rounds}"
        shutil.copytree(self.data, full, ignore=shutil.ignore_patterns("state", "warehouse.duckdb*"))
        if self.target == "postgresql":
            url = self.pg.new()
            # the organization history persists in the warehouse: the rebuild starts from it
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'CREATE TABLE "{_schema(url)}".organization_status_history AS SELECT * FROM '
                              f'"{_schema(self.settings.resolved_warehouse_url)}".organization_status_history')
        else:
            url = ""
            shutil.copy(self.data / "warehouse.duckdb", full / "warehouse.duckdb")
        settings = settings_for(full, url)
        publish(settings, as_of=as_of, incremental=False)
        return table_hashes(settings.resolved_warehouse_url)


def _schema(url: str) -> str:
    return url.rsplit("%3D", 1)[1]


@pytest.fixture(params=["duckdb", "postgresql"])
def pair(request, tmp_path, pg_databases) -> Pair:
    return Pair(tmp_path, request.param, pg_databases)


def _change_set(pair: Pair) -> dict:
    """Hours changed, services deleted and added, an account moved to another person, a
    person's county changed; returns what to undo it with."""
    services, accounts, volunteers = pair.resolved("services"), pair.resolved("volunteer_source_map"), pair.resolved("volunteers")
    undo = {"services": services.copy(), "volunteer_source_map": accounts.copy(), "volunteers": volunteers.copy()}
    services.loc[services.index[:7], "hours"] += 1.25
    added = services.iloc[20:23].copy()
    added["service_key"] = ["S-new-1", "S-new-2", "S-new-3"]
    services = pd.concat([services.drop(services.index[30:36]), added], ignore_index=True)
    accounts.loc[accounts.index[5], "volunteer_key"] = accounts.loc[accounts.index[60], "volunteer_key"]
    volunteers.loc[volunteers.index[9], "region_code"] = volunteers.loc[volunteers.index[70], "region_code"]
    pair.write("services", services)
    pair.write("volunteer_source_map", accounts)
    pair.write("volunteers", volunteers)
    return undo


def test_a_change_set_is_loaded_as_deltas_and_equals_a_full_publish_and_so_does_its_undoing(pair):
    first = pair.publish(DAY_ONE)
    assert set(first.loads.values()) == {"full"}  # no record yet: every table

    undo = _change_set(pair)
    changed = pair.publish(DAY_TWO)
    assert pair.hashes() == pair.full_rebuild(DAY_TWO)
    assert {changed.loads[t] for t in ("fact_service", "dim_volunteer", "volunteer_source_map")} == {"delta"}
    assert changed.loads["dim_region"] == changed.loads["dim_station"] == "unchanged"
    assert changed.rows["fact_service"] == first.rows["fact_service"] - 3

    # the same day again, nothing changed: nothing is loaded
    again = pair.publish(DAY_TWO)
    assert set(again.loads.values()) == {"unchanged"}, [t for t, k in again.loads.items() if k != "unchanged"]

    # every change undone (a record that changes back): the first warehouse's tables again
    for name, frame in undo.items():
        pair.write(name, frame)
    undone = pair.publish(DAY_THREE)
    assert undone.loads["fact_service"] == "delta"
    assert pair.hashes() == pair.full_rebuild(DAY_THREE)


@pytest.mark.parametrize("by_hand", [
    "DELETE FROM fact_service WHERE service_key = (SELECT min(service_key) FROM fact_service)",
    # the same row count: DuckDB's file changed, PostgreSQL's row has a newer xmin
    "UPDATE fact_service SET category = 'by hand' WHERE service_key = (SELECT max(service_key) FROM fact_service)",
])
def test_a_warehouse_changed_by_hand_since_the_last_publish_is_loaded_in_full(pair, by_hand):
    pair.publish(DAY_ONE)
    _change_set(pair)
    engine = sa.create_engine(pair.settings.resolved_warehouse_url)
    with engine.begin() as con:  # an analyst at the warehouse
        con.execute(sa.text(by_hand))
    engine.dispose()
    result = pair.publish(DAY_TWO)
    assert set(result.loads.values()) == {"full"}
    assert pair.hashes() == pair.full_rebuild(DAY_TWO)


def test_a_delta_that_does_not_add_up_rolls_back_and_loads_every_table(pair):
    pair.publish(DAY_ONE)
    before = pair.hashes()
    _change_set(pair)
    # the kept file no longer what the warehouse holds (which the record cannot see): a row
    # the change set changes is renamed there, so the delta deletes a key the warehouse lacks
    kept = published_build_dir(pair.settings) / "fact_service.parquet"
    facts = pd.read_parquet(kept)
    changed_key = pair.resolved("services")["service_key"].iloc[0]  # its hours changed
    facts.loc[facts["service_key"] == changed_key, "service_key"] = "renamed"
    facts.to_parquet(kept, index=False)
    result = pair.publish(DAY_TWO)
    assert set(result.loads.values()) == {"full"}  # the delta's transaction rolled back
    assert pair.hashes() == pair.full_rebuild(DAY_TWO) != before


def test_a_delta_brings_its_rows_through_the_privacy_scan(pair):
    pair.publish(DAY_ONE)
    before = pair.hashes()
    services = pair.resolved("services")
    services.loc[services.index[3], "category"] = "联系 138 0013 8000"  # a phone, typed into a field
    pair.write("services", services)
    with pytest.raises(PersonalDataFound) as refused:
        pair.publish(DAY_TWO)
    assert "fact_service.category" in str(refused.value) and "13800138000" not in str(refused.value)
    assert pair.hashes() == before  # nothing published


def _service_figures(url: str) -> tuple:
    """What a reader sees of the table loaded as a delta (a replaced table is locked until
    the commit on PostgreSQL, as before: readers wait for it, not read half of it)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as con:
            return tuple(con.execute(sa.text(
                "SELECT count(*), sum(hours), count(DISTINCT volunteer_key) FROM fact_service")).one())
    finally:
        engine.dispose()


def test_readers_see_the_old_rows_until_a_delta_commits(pair):
    pair.publish(DAY_ONE)
    url = pair.settings.resolved_warehouse_url
    before = _service_figures(url)
    _change_set(pair)
    seen = {}
    result = pair.publish(DAY_TWO, before_commit=lambda: seen.setdefault("during", _service_figures(url)))
    assert result.loads["fact_service"] == "delta"
    assert seen["during"] == before
    assert _service_figures(url) != before


def test_a_publish_killed_after_its_commit_but_before_its_record_is_followed_by_a_full_one(pair):
    pair.publish(DAY_ONE)
    _change_set(pair)
    script = (
        "import datetime as dt, sys; sys.path.insert(0, '.')\n"
        "from pipelines.warehouse import delta; delta.DELTA_MIN_ROWS = 0; delta.DELTA_MAX_SHARE = 1.0\n"
        "from pipelines.warehouse.publish import publish\n"
        "from tests.warehouse.conftest import PG_ADMIN, settings_for\n"
        f"publish(settings_for({str(pair.data)!r}, {pair.settings.warehouse_url!r}), as_of=dt.date(2026, 3, 2))\n"
    )
    killed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PIPELINE_CRASH_AT": "publish.kept"})
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert not (published_build_dir(pair.settings) / RECORD_NAME).exists()
    # a change the killed publish never saw, then the rerun
    services = pair.resolved("services")
    services.loc[services.index[100], "hours"] += 2
    pair.write("services", services)
    rerun = pair.publish(DAY_TWO)
    assert set(rerun.loads.values()) == {"full"}
    assert pair.hashes() == pair.full_rebuild(DAY_TWO)


def test_a_record_holds_only_for_its_own_target_schema_layout_and_file(tmp_path):
    (tmp_path / "fact_service.parquet").write_bytes(b"")
    write_record(tmp_path, target="duckdb:///w.duckdb", schema="main", rows={"fact_service": 3},
                 duckdb_file=[1, 2, 3])
    assert previous_publish(tmp_path, target="duckdb:///w.duckdb", schema="main", duckdb_file=[1, 2, 3])["rows"] == {"fact_service": 3}
    assert previous_publish(tmp_path, target="duckdb:///other.duckdb", schema="main", duckdb_file=[1, 2, 3]) is None
    assert previous_publish(tmp_path, target="duckdb:///w.duckdb", schema="other", duckdb_file=[1, 2, 3]) is None
    assert previous_publish(tmp_path, target="duckdb:///w.duckdb", schema="main", duckdb_file=[1, 2, 4]) is None
    record = json.loads((tmp_path / RECORD_NAME).read_text())
    assert record["spec"] == spec_digest()
    (tmp_path / RECORD_NAME).write_text(json.dumps(record | {"spec": "an older layout"}))
    assert previous_publish(tmp_path, target="duckdb:///w.duckdb", schema="main", duckdb_file=[1, 2, 3]) is None
    (tmp_path / RECORD_NAME).write_text(json.dumps(record))
    (tmp_path / "fact_service.parquet").unlink()
    assert previous_publish(tmp_path, target="duckdb:///w.duckdb", schema="main", duckdb_file=[1, 2, 3]) is None
