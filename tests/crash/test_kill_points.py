"""A sync killed with SIGKILL at 24 named points, then rerun, ends with a warehouse identical,
table by table (content hash), to a clean sync of the same sandbox world — on DuckDB and on
PostgreSQL — with nothing left behind (no temporary file, build folder or staging schema).

The points are listed below, layer by layer (pipelines/faults.py, docs/RELIABILITY.md). To
stay within the suite's time, each layer's points are a chain: the layer's run is killed
at the first point, run again and killed at the next (each run recovers from the crash
before it, then dies at a later one), then run to the end as an operator does with
"re-execute from failure" (the failed step and everything downstream; after a landing
crash, the whole sync). Every run must die where it was told to: a point never reached
fails the test. `bench/crash.py` runs every point on its own, from a clean start each
time, and prints the README's figures.

Real parts only: the sandbox servers over HTTP, the code location's own assets, checks and
resources, a DuckDB file and a PostgreSQL database of our own on the shared server.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import psycopg
import pytest

from sandbox import generate_world
from tests.crash.harness import KILLED, run_plan

PG_ADMIN = "host=127.0.0.1 port=5432 dbname=test user=postgres"

# (point, layers the killed run runs). Landing: one stream each, every moment of a page's
# life and of its checkpoint; in the order the run lands the streams (so that each run of
# the chain reaches the next point: a stream landed whole is not walked again).
LANDING = [
    ("file.after_rename:*/raw/national/service_records/*/page-000002.parquet", "raw"),
    ("file.before_rename:*/state/national/teams.json", "raw"),  # the checkpoint mid-write
    ("file.partial:*/raw/national/volunteers/*/page-000002.parquet", "raw"),  # inside a page write
    ("landing.after_checkpoint:provincial/activities", "raw"),
    ("file.before_rename:*/raw/provincial/service_logs/*/page-000001.parquet", "raw"),
    ("landing.before_checkpoint:provincial/volunteers", "raw"),  # landed, not checkpointed
]
STAGING = [
    ("file.partial:*/staged/volunteers.parquet", "staged"),
    ("file.after_rename:*/staged/services.parquet", "staged"),  # some tables staged, not all
    ("file.before_rename:*/staged/quarantine.parquet", "staged"),
]
RESOLUTION = [
    ("file.before_rename:*/state/resolve/volunteer_source_map.parquet", "resolved"),
    ("file.after_rename:*/state/resolve/volunteer_key_history.parquet", "resolved"),
    ("file.partial:*/resolved/volunteers.parquet", "resolved"),  # state saved, output not
    ("file.after_rename:*/resolved/organizations.parquet", "resolved"),
    ("file.before_rename:*/resolved/services.parquet", "resolved"),
]
PUBLISH_DUCKDB = [
    ("file.before_rename:*/state/warehouse/build-*/fact_service.parquet", "warehouse"),  # mid-build
    ("publish.built", "warehouse"),
    ("publish.duckdb.loading", "warehouse"),
    ("publish.duckdb.loaded", "warehouse"),  # new file complete, not swapped in
    ("publish.duckdb.swapped", "warehouse"),  # swapped, folder not yet fsynced
]
PUBLISH_POSTGRES = [
    ("file.after_rename:*/state/warehouse/build-*/dim_volunteer.parquet", "warehouse"),
    ("publish.postgres.copying", "warehouse"),
    ("publish.postgres.mid_swap", "warehouse"),  # half the old tables dropped, in the transaction
    ("publish.postgres.before_commit", "warehouse"),
    ("publish.done", "warehouse"),  # committed, checks not yet run
]
ALL_POINTS = LANDING + STAGING + RESOLUTION + PUBLISH_DUCKDB + PUBLISH_POSTGRES


@pytest.fixture(scope="module")
def crash_database():
    """A PostgreSQL database of our own (dropped after): the kills never touch anybody's."""
    name = f"test_crash_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(PG_ADMIN.replace("dbname=test", f"dbname={name}"), autocommit=True) as own:
        own.execute("CREATE SCHEMA warehouse")
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def results(tmp_path_factory, crash_database) -> dict:
    """One world, one harness process: the clean reference, then every chain."""
    root = tmp_path_factory.mktemp("crash")
    world = generate_world(root / "world", persons=120, seed=5, as_of=datetime(2026, 11, 1, 12))
    postgres = f"{crash_database}?options=-csearch_path%3Dwarehouse"
    steps = [
        {"kind": "reference"},
        {"kind": "chain", "name": "landing", "start": "empty", "kills": LANDING, "rerun": "all"},
        {"kind": "chain", "name": "staging", "start": "landed", "kills": STAGING,
         "rerun": "staged+resolved+warehouse"},
        {"kind": "chain", "name": "resolution", "start": "staged", "kills": RESOLUTION,
         "rerun": "resolved+warehouse"},
        # over a published warehouse: after each kill, readers must still find it whole
        {"kind": "chain", "name": "publish_duckdb", "start": "published", "kills": PUBLISH_DUCKDB,
         "rerun": "warehouse", "check_after_kill": True},
        {"kind": "chain", "name": "publish_postgres", "start": "resolved", "warehouse_url": postgres,
         "kills": [("publish.done", "warehouse")] + PUBLISH_POSTGRES, "rerun": "warehouse",
         "check_after_kill": True},
    ]
    completed = run_plan(world, steps, root, timeout=1200)
    assert completed.returncode == 0, completed.stderr[-4000:]
    lines = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    return {"reference": lines[0], **{line["chain"]: line for line in lines if "chain" in line}}


def test_the_points_are_distinct_and_at_least_twenty():
    assert len(set(ALL_POINTS)) == len(ALL_POINTS) >= 20


def test_the_clean_reference_published_every_table(results):
    reference = results["reference"]
    assert reference["code"] == 0
    assert len(reference["hashes"]) >= 20
    assert all(not value.startswith("0:") for name, value in reference["hashes"].items()
               if name in ("dim_volunteer", "fact_service", "quarantine", "volunteer_source_map"))


def test_after_the_landing_crashes_every_stream_holds_the_clean_sync_rows(results):
    # every stream: the same rows (none lost, none invented) and the same checkpoint
    assert results["landing"]["raw"] == results["reference"]["raw"]


@pytest.mark.parametrize("chain", ["landing", "staging", "resolution", "publish_duckdb"])
def test_a_sync_killed_at_each_point_then_rerun_equals_the_clean_sync_duckdb(results, chain):
    outcome = results[chain]
    # every run died where it was told to (a point never reached would prove nothing)
    assert [k["code"] for k in outcome["kills"]] == [KILLED] * len(outcome["kills"]), outcome["kills"]
    assert outcome["rerun_code"] == 0
    assert outcome["hashes"] == results["reference"]["hashes"]
    assert outcome["leftovers"] == []


def test_killed_duckdb_publishes_leave_the_previous_warehouse_whole(results):
    for kill in results["publish_duckdb"]["kills"]:
        assert kill["hashes"] == results["reference"]["hashes"], kill["point"]


def test_a_publish_killed_at_each_point_then_rerun_equals_the_clean_sync_postgresql(results):
    outcome = results["publish_postgres"]
    first, *kills = outcome["kills"]
    # The first run publishes the resolved world and is killed only after its commit: that
    # is the clean publish to compare with (PostgreSQL's values print differently from
    # DuckDB's; the row counts must match the DuckDB reference too).
    clean = first["hashes"]
    assert first["code"] == KILLED
    assert {t: h.split(":")[0] for t, h in clean.items()} == {
        t: h.split(":")[0] for t, h in results["reference"]["hashes"].items()}
    assert [k["code"] for k in kills] == [KILLED] * len(kills)
    for kill in kills:  # readers see the previous warehouse whole after every kill
        assert kill["hashes"] == clean, kill["point"]
    assert outcome["rerun_code"] == 0
    assert outcome["hashes"] == clean
    assert outcome["leftovers"] == []  # no _staging_ schema, no temporary file
