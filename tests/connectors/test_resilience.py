"""Nothing is lost when tokens or cursors expire mid-walk, rows move during the walk, or the
process dies mid-stream and the sync is run again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
import requests

from pipelines import landing
from pipelines.landing import land_stream, raw_files, read_state

from .helpers import (
    Killed,
    PageHook,
    landed_keys,
    latest_landed,
    national_api,
    provincial_api,
    source_keys,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_token_expiry_in_the_middle_of_a_walk(world, servers, data_dir):
    api = national_api(servers)
    hooked = PageHook(api, after_pages=2, hook=servers.expire_tokens)

    result = land_stream(hooked, "volunteers", data_dir, "sync-1")

    assert hooked.pages > 3, "the walk must go on after the expiry"
    assert servers.stats["national"]["faults"].get("token_rejected", 0) >= 1
    assert api.stats.token_fetches == 2  # the first token, and one after the 401
    assert Counter(landed_keys(data_dir, "national", "volunteers")) == Counter(
        source_keys(world, "national", "volunteers")
    )
    assert result.rows == len(source_keys(world, "national", "volunteers"))


def test_token_is_renewed_before_it_expires(world, servers, data_dir):
    from sandbox import Faults

    servers.set_faults(Faults(token_ttl=1))
    api = national_api(servers, page_size=40)
    hooked = PageHook(api, after_pages=1, hook=lambda: time.sleep(1.1))  # outlive the token

    land_stream(hooked, "teams", data_dir, "sync-1")

    assert api.stats.token_fetches >= 2
    assert set(landed_keys(data_dir, "national", "teams")) == source_keys(
        world, "national", "teams"
    )


def test_forced_cursor_expiry_restarts_from_the_last_row_landed(world, servers, data_dir):
    api = provincial_api(servers)
    hooked = PageHook(api, after_pages=3, hook=servers.expire_cursors)

    result = land_stream(hooked, "volunteers", data_dir, "sync-1")

    assert servers.stats["provincial"]["faults"].get("cursor_expired", 0) == 1
    assert result.restarts == 1
    landed = landed_keys(data_dir, "provincial", "volunteers")
    expected = source_keys(world, "provincial", "volunteers")
    assert set(landed) == expected
    # the restart is inclusive of the last second landed, but rows already landed there are
    # not landed again
    assert len(landed) == len(expected)


def test_rows_updated_during_the_walk_are_not_skipped(world, servers, data_dir):
    from sandbox import Faults

    streams = [("national", "volunteers"), ("provincial", "volunteers")]
    at_start = {key: source_keys(world, *key) for key in streams}
    servers.set_faults(Faults(updates_during_walk=1.0))  # rows re-stamped after every page
    apis = {"national": national_api(servers), "provincial": provincial_api(servers)}
    for source, stream in streams:
        land_stream(apis[source], stream, data_dir, "sync-1")
    touched = servers.stats["national"]["faults"]["rows_touched"]
    assert touched > 5 and servers.stats["provincial"]["faults"]["rows_touched"] > 5

    for source, stream in streams:
        ids_landed = {row_id for row_id, _ in landed_keys(data_dir, source, stream)}
        assert {row_id for row_id, _ in at_start[(source, stream)]} <= ids_landed

    # the rows re-stamped after the walk's last answer come with the next (quiet) sync
    servers.set_faults(Faults())
    for source, stream in streams:
        land_stream(apis[source], stream, data_dir, "sync-2")
        assert latest_landed(data_dir, source, stream) == source_keys(world, source, stream)


def test_offset_paging_would_have_skipped_rows(world, servers):
    """The trap is real in this sandbox: the same walk by offset pages loses rows."""
    from sandbox import Faults

    ids_at_start = {row_id for row_id, _ in source_keys(world, "national", "volunteers")}
    servers.set_faults(Faults(updates_during_walk=1.0))
    api = national_api(servers)
    token = api.access_token()
    seen, page = set(), 1
    while True:
        query = urlencode({"region": "52", "page": page, "page_size": 50}, quote_via=quote)
        body = requests.get(
            f"{servers.national_url}/api/v1/volunteers?{query}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).json()
        seen |= {row["id"] for row in body["items"]}
        if page * 50 >= body["total"]:
            break
        page += 1
    assert ids_at_start - seen, "offset paging lost nothing: the keyset test above proves little"


@pytest.mark.parametrize(
    "source,stream", [("national", "service_records"), ("provincial", "service_logs")]
)
def test_killed_mid_stream_then_rerun_loses_nothing(world, servers, data_dir, source, stream):
    make = national_api if source == "national" else provincial_api

    def die():
        raise Killed()

    with pytest.raises(Killed):
        land_stream(PageHook(make(servers), after_pages=4, hook=die), stream, data_dir, "sync-1")
    assert len(raw_files(data_dir, source, stream)) == 4
    state = read_state(data_dir, source, stream)
    assert state is not None  # the rerun resumes from a committed row, not from the start
    assert (state.id, state.updated_at) in set(landed_keys(data_dir, source, stream))

    land_stream(make(servers), stream, data_dir, "sync-2")

    landed = landed_keys(data_dir, source, stream)
    assert set(landed) == source_keys(world, source, stream)


@pytest.mark.parametrize("commit_interval", [0.0, 3600.0])
def test_state_never_runs_ahead_of_the_pages(
    world, servers, data_dir, monkeypatch, commit_interval
):
    """Every state commit names a row already in a page file on disk; a crash at the third
    commit (pages written, state not moved) then a rerun loses nothing."""
    real_write_state = landing.write_state
    commits = []

    def checked_write_state(root, source, stream, checkpoint, sync_id):
        on_disk = set(landed_keys(root, source, stream))
        assert (checkpoint.id, checkpoint.updated_at) in on_disk, "state ahead of the data"
        commits.append(checkpoint)
        if len(commits) == 3:
            raise Killed()
        real_write_state(root, source, stream, checkpoint, sync_id)

    # 0: commit after every page; 3600: commit only when the writer catches up with the fetch
    monkeypatch.setattr(landing, "COMMIT_INTERVAL_SECONDS", commit_interval)
    monkeypatch.setattr(landing, "write_state", checked_write_state)
    api = PageHook(provincial_api(servers), after_pages=0, hook=lambda: None)
    api.iter_window = _slow_every_fifth_page(api.api)  # let the writer catch up now and then
    with pytest.raises(Killed):
        land_stream(api, "service_logs", data_dir, "sync-1")
    monkeypatch.setattr(landing, "write_state", real_write_state)
    state = read_state(data_dir, "provincial", "service_logs")
    assert (state.id, state.updated_at) in set(landed_keys(data_dir, "provincial", "service_logs"))

    land_stream(provincial_api(servers), "service_logs", data_dir, "sync-1")  # a retried step

    landed = landed_keys(data_dir, "provincial", "service_logs")
    expected = source_keys(world, "provincial", "service_logs")
    assert set(landed) == expected
    assert len(landed) > len(expected)  # pages after the state came twice; dedup removes them
    names = [p.name for p in raw_files(data_dir, "provincial", "service_logs")]
    assert len(names) == len(set(names))  # the retried step appended, overwrote nothing


def _slow_every_fifth_page(api):
    def iter_window(stream, start):
        for number, rows in enumerate(api.iter_window(stream, start), 1):
            if number % 5 == 0:
                time.sleep(0.1)
            yield rows

    return iter_window


KILLABLE_SYNC = """
import sys, time
from pipelines.landing import land_stream
from pipelines.sources import ProvincialApi

url, key, secret, data_dir = sys.argv[1:5]
api = ProvincialApi(url, key, secret, page_size=20)
real_iter_window = api.iter_window

def slow_after_three_pages(stream, start):
    for number, rows in enumerate(real_iter_window(stream, start), 1):
        yield rows
        if number >= 3:
            print("landed", number, flush=True)
            time.sleep(0.2)

api.iter_window = slow_after_three_pages
land_stream(api, "volunteers", data_dir, "sync-killed")
print("finished", flush=True)
"""


def test_sync_process_killed_then_rerun_loses_nothing(world, servers, data_dir):
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            KILLABLE_SYNC,
            servers.provincial_url,
            servers.provincial_app_key,
            servers.provincial_app_secret,
            str(data_dir),
        ],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for line in process.stdout:
            if line.startswith("landed 5"):
                break
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    landed_before_rerun = landed_keys(data_dir, "provincial", "volunteers")
    expected = source_keys(world, "provincial", "volunteers")
    assert 0 < len(set(landed_before_rerun)) < len(expected)

    land_stream(provincial_api(servers), "volunteers", data_dir, "sync-rerun")

    assert set(landed_keys(data_dir, "provincial", "volunteers")) == expected
    state = json.loads((data_dir / "state" / "provincial" / "volunteers.json").read_text())
    assert state["sync_id"] == "sync-rerun"
