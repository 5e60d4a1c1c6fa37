"""Incremental syncs: no change pulls only the boundary; a change set pulls exactly the
changes, Beijing-time stamps of the last hours included; full refresh starts over."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from pipelines.landing import land_stream, raw_files, read_state, write_state
from pipelines.sources import Checkpoint, beijing_text

from .helpers import ALL_STREAMS, BEIJING, land_all, landed_keys, latest_landed, source_keys


def test_second_sync_without_change_pulls_only_the_boundary(world, servers, apis, data_dir):
    land_all(apis, data_dir, "sync-1")
    requests_before = {s: apis[s].stats.requests for s in apis}

    second = land_all(apis, data_dir, "sync-2")

    for (source, stream), result in second.items():
        assert result.rows == 0 and result.pages == 0, f"{source} {stream}"
        assert result.checkpoint == read_state(data_dir, source, stream)
        assert not any(p.parent.name == "sync-2" for p in raw_files(data_dir, source, stream))
    # one request per stream: the inclusive boundary page, nothing more
    assert apis["national"].stats.requests - requests_before["national"] == 5
    assert apis["provincial"].stats.requests - requests_before["provincial"] == 6


def test_boundary_request_asks_from_the_last_second_landed(world, servers, apis, data_dir):
    """The provincial window starts at the last updateTime landed, inclusive (Beijing text
    as the platform wrote it); the boundary rows come back and are not landed twice."""
    land_stream(apis["provincial"], "teams", data_dir, "sync-1")
    state = read_state(data_dir, "provincial", "teams")
    boundary = {
        (i, u) for i, u in source_keys(world, "provincial", "teams") if u == state.updated_at
    }
    assert state.boundary_ids == frozenset(i for i, _ in boundary)

    page = apis["provincial"].get_page(apis["provincial"].streams["teams"], state.updated_at)

    assert {(str(r["id"]), r["updateTime"]) for r in page["list"]} == boundary


def test_change_set_is_pulled_exactly(world, servers, apis, data_dir):
    land_all(apis, data_dir, "sync-1")
    before = {key: source_keys(world, *key) for key in ALL_STREAMS}

    counts = servers.apply_changeset(seed=3)
    assert counts, "the change set changed nothing"
    changed_rows = 0
    second = land_all(apis, data_dir, "sync-2")

    now_beijing = datetime.now(BEIJING)
    for key in ALL_STREAMS:
        changes = source_keys(world, *key) - before[key]
        changed_rows += len(changes)
        in_sync_2 = {(i, u) for i, u in _keys_of_sync(data_dir, *key, "sync-2")}
        assert in_sync_2 == changes, key
        assert second[key].rows == len(changes), key
        for _, updated_at in changes:  # stamped now, in Beijing time, without a zone for provincial
            stamped = datetime.fromisoformat(updated_at.replace(" ", "T")[:19]).replace(
                tzinfo=BEIJING
            )
            assert now_beijing - stamped < timedelta(hours=1)
    assert changed_rows > 0
    deleted_in_changes = sum(r.deleted_rows for r in second.values())
    assert deleted_in_changes > 0, "the change set's deletions must land like any change"


def _keys_of_sync(data_dir, source, stream, sync_id):
    import pyarrow.parquet as pq

    keys = []
    for path in raw_files(data_dir, source, stream):
        if path.parent.name == sync_id:
            table = pq.read_table(path, columns=["id", "updated_at"])
            keys.extend(zip(table["id"].to_pylist(), table["updated_at"].to_pylist()))
    return keys


def test_a_window_computed_in_beijing_time_catches_the_last_hours(world, servers, apis, data_dir):
    """A checkpoint computed from a moment (not copied from a row) is sent as Beijing wall
    time: a UTC rendering would be 8 hours early, a naive one 8 hours late and miss rows."""
    servers.apply_changeset(seed=5)
    two_hours_ago = datetime.now(BEIJING) - timedelta(hours=2)
    since = beijing_text(two_hours_ago.astimezone(datetime.now().astimezone().tzinfo))
    assert since == two_hours_ago.strftime("%Y-%m-%d %H:%M:%S")
    write_state(data_dir, "provincial", "volunteers", Checkpoint(since, "0"), "seeded")

    result = land_stream(apis["provincial"], "volunteers", data_dir, "sync-1")

    recent = {(i, u) for i, u in source_keys(world, "provincial", "volunteers") if u >= since}
    assert recent, "the change set touched no provincial volunteer"
    assert set(landed_keys(data_dir, "provincial", "volunteers")) == recent
    assert result.rows == len(recent)


def test_national_window_sends_the_offset_as_received(world, servers, apis, data_dir):
    """updated_since goes out with its +08:00 (as %2B): read as a space it would be refused
    or shifted, and the incremental window would be wrong."""
    land_stream(apis["national"], "projects", data_dir, "sync-1")
    servers.apply_changeset(seed=4)

    land_stream(apis["national"], "projects", data_dir, "sync-2")

    assert latest_landed(data_dir, "national", "projects") == source_keys(
        world, "national", "projects"
    )
    state = json.loads((data_dir / "state" / "national" / "projects.json").read_text())
    assert state["updated_at"].endswith("+08:00")


def test_full_refresh_ignores_the_state_and_lands_everything_again(world, servers, apis, data_dir):
    land_stream(apis["national"], "teams", data_dir, "sync-1")
    result = land_stream(apis["national"], "teams", data_dir, "sync-2", full_refresh=True)

    expected = source_keys(world, "national", "teams")
    assert result.rows == len(expected) and result.start is None
    assert set(_keys_of_sync(data_dir, "national", "teams", "sync-2")) == expected
    assert (
        read_state(data_dir, "national", "teams").id == max(expected, key=lambda k: (k[1], k[0]))[0]
    )


def test_a_bulk_update_beyond_the_boundary_set_is_landed_once(world, servers, apis, data_dir, monkeypatch):
    """A source job re-stamps more rows in one second than the walk remembers one by one:
    the national walk lands each once (it restarts strictly after the last key), the
    provincial one (inclusive restarts only) at most once more, never pass after pass."""
    from collections import Counter

    import numpy as np

    from pipelines.sources import streams
    from sandbox.changes import touch_rows

    monkeypatch.setattr(streams, "MAX_BOUNDARY_IDS", 40)
    land_all(apis, data_dir, "sync-1")
    now = datetime.now(BEIJING)
    touched = {
        ("national", "service_records"): touch_rows(world, "national", "service_records", 150, np.random.default_rng(1), now=now),
        ("provincial", "service_logs"): touch_rows(world, "provincial", "service_logs", 150, np.random.default_rng(2), now=now),
    }

    land_all(apis, data_dir, "sync-2")

    for (source, stream), ids in touched.items():
        landed = Counter(i for i, _ in _keys_of_sync(data_dir, source, stream, "sync-2"))
        assert set(landed) == {str(i) for i in ids}, (source, stream)
        most = 1 if source == "national" else 2
        assert max(landed.values()) <= most, (source, stream, max(landed.values()))
    third = land_all(apis, data_dir, "sync-3")
    assert third[("national", "service_records")].rows == 0
