"""Every row of the world lands, exactly once after dedup, with faults off and all on."""

from __future__ import annotations

import gc
import json
import math
import stat
from collections import Counter
from datetime import datetime

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipelines.config import Settings
from pipelines.landing import PAGE_SCHEMA, land_stream, raw_files, read_state, state_path
from pipelines.schemas import load_mapping
from pipelines.staging import raw_batches

from .helpers import ALL_STREAMS, BEIJING, land_all, landed_keys, latest_landed, source_keys


def test_every_row_lands_once_with_faults_off(world, servers, apis, data_dir):
    results = land_all(apis, data_dir, "sync-1")

    for source, stream in ALL_STREAMS:
        expected = source_keys(world, source, stream)
        landed = landed_keys(data_dir, source, stream)
        assert expected, f"the world has no {source} {stream}"
        assert Counter(landed) == Counter(expected), f"{source} {stream}"  # all, and once each
        result = results[(source, stream)]
        assert result.rows == len(expected)
        page_size = apis[source].page_size
        assert (
            result.pages
            == len(raw_files(data_dir, source, stream))
            == math.ceil(len(expected) / page_size)
        )
        assert result.retries == 0
        state = read_state(data_dir, source, stream)
        assert (state.id, state.updated_at) == max(
            expected, key=lambda k: (k[1], _order(source, k[0]))
        )


def _order(source: str, row_id: str):
    return int(row_id) if source == "provincial" else row_id


def test_every_row_lands_with_every_fault_on(world, servers, apis, data_dir):
    from sandbox import Faults

    keys_at_start = {
        (source, stream): source_keys(world, source, stream) for source, stream in ALL_STREAMS
    }
    started = datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    servers.set_faults(Faults.all_on(retry_after=0))
    faulty = land_all(apis, data_dir, "sync-faulty")
    # Rows re-stamped after the last answer a walk got cannot be in that walk; a quiet
    # incremental sync picks them up, as the next scheduled sync would.
    servers.set_faults(Faults())
    land_all(apis, data_dir, "sync-quiet")

    faults_seen = Counter()
    for system in ("national", "provincial"):
        faults_seen.update(servers.stats[system]["faults"])
    for kind in ("rate_limited", "rows_touched"):
        assert faults_seen[kind] > 0, f"the sandbox injected no {kind}: the test proves nothing"
    assert sum(n for kind, n in faults_seen.items() if kind.startswith("truncated")) > 0
    assert sum(r.retries for r in faulty.values()) > 0

    for source, stream in ALL_STREAMS:
        expected_now = source_keys(world, source, stream)
        landed = landed_keys(data_dir, source, stream)
        at_start = keys_at_start[(source, stream)]
        # no row skipped: every row of the world at the start landed in some version ...
        assert {i for i, _ in at_start} <= {i for i, _ in landed}, f"{source} {stream}"
        # ... and its current version, once dedup keeps the newest
        assert latest_landed(data_dir, source, stream) == expected_now, f"{source} {stream}"
        # nothing landed that the source never served: versions are the world's at the
        # start or re-stamps made during the walk (stamped now, Beijing time)
        unknown = {(i, u) for i, u in set(landed) - at_start if u.replace("T", " ")[:19] < started}
        assert not unknown, f"{source} {stream}: {sorted(unknown)[:3]}"


def test_page_files_hold_the_rows_as_received(world, servers, apis, data_dir):
    land_all(apis, data_dir, "sync-1")

    for source, stream in [("national", "volunteers"), ("provincial", "service_logs")]:
        files = raw_files(data_dir, source, stream)
        table = pq.read_table(files[0])
        assert table.schema.equals(PAGE_SCHEMA)
        row = table.slice(0, 1).to_pylist()[0]
        record = json.loads(row["record"])
        assert str(record["id"]) == row["id"]
        cursor_field = "updated_at" if source == "national" else "updateTime"
        assert record[cursor_field] == row["updated_at"]
        assert row["sync_id"] == "sync-1" and row["page"] == 1
        assert row["fetched_at"].tzinfo is not None

    # deletions are landed like any other row, flagged
    deleted = [
        flag for path in raw_files(data_dir, "provincial", "volunteers")
        for flag in pq.read_table(path, columns=["is_deleted"])["is_deleted"].to_pylist() if flag
    ]
    assert deleted, "the world has deleted provincial volunteers; none landed"
    for path in raw_files(data_dir, "national", "teams"):
        for row in pq.read_table(path, columns=["is_deleted", "record"]).to_pylist():
            assert row["is_deleted"] == (json.loads(row["record"]).get("isdelete") == 1)


def test_landing_zone_is_private(world, servers, apis, data_dir):
    land_all(apis, data_dir, "sync-1")

    for folder in [data_dir, data_dir / "raw", data_dir / "state", *data_dir.rglob("*")]:
        mode = stat.S_IMODE(folder.stat().st_mode)
        if folder.is_dir():
            assert mode == 0o700, folder
        else:
            assert mode == 0o600, folder
    assert not list(data_dir.rglob("*.tmp"))
    assert state_path(data_dir, "national", "volunteers").exists()


def test_staging_reads_one_version_per_row(world, servers, apis, data_dir):
    """Landed twice, read once: staging's extract (the one path from raw pages to the latest
    version of each row) keeps one version of each source row."""
    land_all(apis, data_dir, "sync-1")
    land_all(apis, data_dir, "sync-2", full_refresh=True)  # every row landed twice
    settings = Settings(data_dir=data_dir)

    for source, stream in [("national", "teams"), ("provincial", "teams")]:
        expected = source_keys(world, source, stream)
        assert len(landed_keys(data_dir, source, stream)) == 2 * len(expected)
        latest = pd.concat(raw_batches(load_mapping(source)[stream], settings, chunk_rows=100))
        assert set(zip(latest["__id"], latest["__updated_at"])) == expected
        assert len(latest) == len(expected)


def test_the_walk_gives_the_collector_back_every_object(world, servers, apis, data_dir):
    # while a stream lands, the objects there were before are out of the full garbage
    # collections' way (gc.freeze: at 1M persons those collections were 15% of the walk);
    # after it, landed or failed, every object is the collector's again
    client = apis["national"]
    frozen_while_walking: list[int] = []

    def note_freeze(response, *args, **kwargs):
        frozen_while_walking.append(gc.get_freeze_count())

    client.session.hooks["response"].append(note_freeze)
    result = land_stream(client, "volunteers", data_dir, "sync-1")
    assert result.rows and len(frozen_while_walking) >= result.pages
    assert min(frozen_while_walking) > 0
    assert gc.get_freeze_count() == 0

    def fail(response, *args, **kwargs):
        raise RuntimeError("the operator pulled the plug")

    client.session.hooks["response"] = [fail]
    with pytest.raises(RuntimeError, match="pulled the plug"):
        land_stream(client, "teams", data_dir, "sync-2", full_refresh=True)
    assert gc.get_freeze_count() == 0


def test_a_heap_frozen_before_the_walk_stays_frozen(world, servers, apis, data_dir):
    gc.freeze()  # a host process's own (a server frozen before it forks, say)
    try:
        assert gc.get_freeze_count() > 0
        land_stream(apis["provincial"], "teams", data_dir, "sync-1")
        assert gc.get_freeze_count() > 0  # (unfrozen, it would be 0)
    finally:
        gc.unfreeze()
