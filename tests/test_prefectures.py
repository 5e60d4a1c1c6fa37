"""The sync partitioned by prefecture publishes the warehouse the whole sync publishes.

One small world, landed once over real HTTP (`pull_raw`); one copy of the landing zone goes
through `sync_all`, the other through the partitioned path an operator runs at scale
(`stage_by_prefecture` for each of the 9 prefectures, then `sync_from_prefectures`). Both
warehouses (DuckDB) are compared table by table, and a person whose accounts were staged
in different prefectures is still one volunteer.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipelines.definitions import defs
from pipelines.normalize.regions import guizhou_counties
from pipelines.staging.partitions import PREFECTURES, part_dir
from sandbox import SandboxServers, generate_world

AS_OF = datetime(2026, 11, 1, 12, 0, 0)
TAGS = {"as_of": AS_OF.isoformat()}


def test_the_partitions_are_the_prefectures_of_guizhou():
    assert sorted(PREFECTURES) == sorted(guizhou_counties()["prefecture_code"].unique())


def run_job(name: str, instance: dg.DagsterInstance, partition_key: str | None = None) -> None:
    result = defs.resolve_job_def(name).execute_in_process(
        instance=instance, tags=TAGS, partition_key=partition_key
    )
    assert result.success, name


def warehouse_tables(data_dir: Path) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        names = [row[0] for row in con.execute(
            "select table_name from information_schema.tables where table_type = 'BASE TABLE'"
        ).fetchall()]
        tables = {}
        for name in sorted(names):
            frame = con.execute(f'select * from "{name}"').df()
            tables[name] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return tables


@pytest.fixture(scope="module")
def both_warehouses(tmp_path_factory):
    root = tmp_path_factory.mktemp("prefectures")
    world = generate_world(root / "world", persons=300, seed=23, as_of=AS_OF)
    whole, by_prefecture = root / "whole", root / "by_prefecture"
    with SandboxServers(world) as servers, pytest.MonkeyPatch.context() as env:
        for name, value in servers.env().items():
            env.setenv(name, value)
        env.setenv("PII_HASH_KEY", "prefectures-test-key-of-at-least-32-bytes")
        env.setenv("DATA_DIR", str(whole))
        env.setenv("WAREHOUSE_URL", f"duckdb:///{whole / 'warehouse.duckdb'}")
        with dg.instance_for_test() as instance:
            run_job("pull_raw", instance)
        shutil.copytree(whole, by_prefecture)
        with dg.instance_for_test() as instance:
            run_job("sync_all", instance)
        env.setenv("DATA_DIR", str(by_prefecture))
        env.setenv("WAREHOUSE_URL", f"duckdb:///{by_prefecture / 'warehouse.duckdb'}")
        with dg.instance_for_test() as instance:
            for prefecture in PREFECTURES:
                run_job("stage_by_prefecture", instance, partition_key=prefecture)
            run_job("sync_from_prefectures", instance)
    return whole, by_prefecture


def test_partitioned_sync_publishes_the_same_warehouse(both_warehouses):
    whole, by_prefecture = both_warehouses
    expected, published = warehouse_tables(whole), warehouse_tables(by_prefecture)
    assert sorted(published) == sorted(expected)
    assert len(expected["dim_volunteer"]) > 0 and len(expected["fact_service"]) > 0
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(published[name], frame, obj=name)


def test_every_prefecture_stages_its_share(both_warehouses):
    _, by_prefecture = both_warehouses
    per_prefecture = {
        code: pq.read_metadata(part_dir_of(by_prefecture, code) / "volunteers.parquet").num_rows
        for code in PREFECTURES
    }
    assert all(rows > 0 for rows in per_prefecture.values()), per_prefecture


def part_dir_of(data_dir: Path, prefecture: str) -> Path:
    from pipelines.config import Settings

    return part_dir(Settings(data_dir=data_dir), prefecture)


def test_cross_prefecture_duplicates_are_one_volunteer(both_warehouses):
    _, by_prefecture = both_warehouses
    staged_in = pd.concat(
        [
            pq.read_table(part_dir_of(by_prefecture, code) / "volunteers.parquet",
                          columns=["source", "source_id"]).to_pandas().assign(prefecture=code)
            for code in PREFECTURES
        ],
        ignore_index=True,
    )
    with duckdb.connect(str(by_prefecture / "warehouse.duckdb"), read_only=True) as con:
        source_map = con.execute("select source, source_id, volunteer_key from volunteer_source_map").df()
    linked = source_map.merge(staged_in, on=["source", "source_id"])
    prefectures_per_volunteer = linked.groupby("volunteer_key")["prefecture"].nunique()
    assert (prefectures_per_volunteer > 1).sum() > 0


def test_a_part_older_than_the_landed_pages_stops_the_combination(both_warehouses, tmp_path):
    from pipelines.config import Settings
    from pipelines.staging.partitions import combine_table

    _, by_prefecture = both_warehouses
    data_dir = tmp_path / "data"
    shutil.copytree(by_prefecture, data_dir)
    settings = Settings(data_dir=data_dir)
    # Zunyi's part as it would be had it been staged before the last pull: fewer rows read
    counts_path = part_dir(settings, "5203") / "volunteers.json"
    counts = json.loads(counts_path.read_text())
    counts["extracted_per_stream"]["provincial/volunteers"] -= 1
    counts_path.write_text(json.dumps(counts))
    with pytest.raises(RuntimeError, match="prefecture 5203 .* run stage_by_prefecture again"):
        combine_table("volunteers", settings, datetime(2026, 11, 1, 4, 0, tzinfo=UTC))
