"""Publishing under the faults of a shared server: a reader holding the DuckDB file, a
second publisher, a PostgreSQL session dropped mid-publish, a reader holding a table, a
staging schema orphaned by an older publish. Readers see the old or the new warehouse,
never a mix; every wait is bounded and names who holds what; the rerun completes.

Real DuckDB files read from other processes, the real PostgreSQL server (a database of
our own, dropped after).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from pipelines.locks import LockBusy
from pipelines.warehouse.publish import duckdb_lock_path, publish
from tests.warehouse.conftest import AS_OF, settings_for
from tests.warehouse.world import make_world

ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN = "host=127.0.0.1 port=5432 dbname=test user=postgres"


@pytest.fixture(scope="module")
def pg_database():
    name = f"test_crash_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_schema(pg_database):
    """(SQLAlchemy URL, psycopg DSN) of a fresh schema in our own database."""
    schema = f"wh_{uuid.uuid4().hex[:8]}"
    dsn = f"host=127.0.0.1 port=5432 dbname={pg_database} user=postgres"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{pg_database}?options=-csearch_path%3D{schema}"
    return url, f"{dsn} options=-csearch_path={schema}"


def _counts(dsn: str) -> tuple:
    with psycopg.connect(dsn) as connection:
        return connection.execute(
            "SELECT (SELECT count(*) FROM dim_volunteer), (SELECT sum(hours) FROM fact_service), "
            "(SELECT sum(volunteers) FROM mart_volunteers_by_county)"
        ).fetchone()


READER = textwrap.dedent("""
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    for line in sys.stdin:  # one query per line asked, one answer printed
        print(con.execute("SELECT count(*) FROM dim_volunteer").fetchone()[0], flush=True)
""")


def test_duckdb_publish_while_another_process_holds_the_warehouse_open(tmp_path):
    make_world(tmp_path, persons=150, services=800)
    settings = settings_for(tmp_path)
    publish(settings, as_of=AS_OF)
    database = tmp_path / "warehouse.duckdb"
    # an analyst's notebook: another process with the warehouse open (read-only)
    reader = subprocess.Popen([sys.executable, "-c", READER, str(database)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        reader.stdin.write("?\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "150"
        make_world(tmp_path, persons=200, services=1200, seed=8)
        publish(settings, as_of=AS_OF)  # not stopped by the open file
        reader.stdin.write("?\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "150"  # its version, whole, until it reconnects
    finally:
        reader.stdin.close()
        reader.wait(timeout=60)
    fresh = subprocess.run([sys.executable, "-c", READER, str(database)], input="?\n",
                           capture_output=True, text=True, timeout=60)
    assert fresh.stdout.strip() == "200"  # whoever connects now gets the new one
    assert not list(tmp_path.glob(".warehouse.duckdb.*.tmp*"))


HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from pipelines.locks import held_lock
    with held_lock(Path(sys.argv[1]), what="test", owner="a publish in another process"):
        print("held", flush=True)
        sys.stdin.readline()
""")


def test_a_second_duckdb_publisher_waits_a_bounded_time_and_names_the_holder(tmp_path):
    make_world(tmp_path, persons=100, services=400)
    settings = settings_for(tmp_path)
    database = tmp_path / "warehouse.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(duckdb_lock_path(database))],
                              cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        began = time.monotonic()
        with pytest.raises(LockBusy) as refused:
            publish(settings, as_of=AS_OF, lock_wait_seconds=1.0)
        assert time.monotonic() - began < 30
        assert f"process {holder.pid}" in str(refused.value)
        assert "a publish in another process" in str(refused.value)
        assert not database.exists()  # nothing was written meanwhile
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    publish(settings, as_of=AS_OF, lock_wait_seconds=1.0)  # once it let go: published
    assert database.exists()


def test_postgresql_connection_dropped_mid_publish_then_rerun(tmp_path, pg_schema):
    url, dsn = pg_schema
    make_world(tmp_path, persons=150, services=800)
    settings = settings_for(tmp_path, url)
    publish(settings, as_of=AS_OF)
    v1 = _counts(dsn)
    # an orphan of the older two-transaction publish, which died between its transactions
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute('CREATE SCHEMA "_staging_0123456789ab"')
        admin.execute('CREATE TABLE "_staging_0123456789ab".dim_volunteer (volunteer_key text)')

    seen = {}

    def drop_the_connection() -> None:
        # the swap is done but not committed: the server loses the publisher right here
        with psycopg.connect(dsn, autocommit=True) as admin:
            seen["killed"] = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND state = 'idle in transaction' "
                "AND pid <> pg_backend_pid()"
            ).fetchall()

    make_world(tmp_path, persons=200, services=1200, seed=8)
    with pytest.raises(Exception):
        publish(settings, as_of=AS_OF, before_commit=drop_the_connection)
    assert seen["killed"] == [(True,)]
    assert _counts(dsn) == v1  # readers see the old version whole
    with psycopg.connect(dsn) as connection:
        staging = connection.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE '\\_staging\\_%'").fetchall()
    assert staging == []  # nothing of the dead publish; the old orphan dropped before it

    publish(settings, as_of=AS_OF)  # the rerun completes
    v2 = _counts(dsn)
    assert v2 != v1 and v2[0] == 200


def test_postgresql_publish_bounds_its_lock_waits(tmp_path, pg_schema):
    url, dsn = pg_schema
    make_world(tmp_path, persons=120, services=500)
    settings = settings_for(tmp_path, url)
    publish(settings, as_of=AS_OF)
    v1 = _counts(dsn)

    # a second publisher's session holds the publish lock: bounded wait, the holder named
    other = psycopg.connect(dsn, autocommit=True, application_name="nightly-by-hand")
    schema = dsn.rsplit("search_path=", 1)[1]
    other.execute("SELECT pg_advisory_lock(hashtext(%s))",
                  (f"guizhou-volunteer-warehouse-publish:{schema}",))
    try:
        with pytest.raises(LockBusy) as refused:
            publish(settings, as_of=AS_OF, lock_wait_seconds=1.0)
        assert "nightly-by-hand" in str(refused.value)
    finally:
        other.close()

    # an analyst's open transaction holds a published table: the swap gives up in time
    analyst = psycopg.connect(dsn, application_name="analyst-notebook")
    analyst.execute("SELECT count(*) FROM fact_service").fetchone()  # transaction left open
    make_world(tmp_path, persons=160, services=600, seed=9)
    try:
        began = time.monotonic()
        with pytest.raises(LockBusy) as refused:
            publish(settings, as_of=AS_OF, lock_timeout="1s")
        assert time.monotonic() - began < 60
        message = str(refused.value)
        assert "fact_service" in message and "analyst-notebook" in message
        # other readers were not queued behind the waiting swap for long, and see v1 whole
        assert _counts(dsn) == v1
    finally:
        analyst.close()
    publish(settings, as_of=AS_OF, lock_timeout="1s")
    assert _counts(dsn)[0] == 160


def test_the_publish_lock_is_released_when_its_holder_dies(tmp_path):
    """flock: the kernel frees it with the process, SIGKILL included; no stale lock."""
    lock = tmp_path / ".warehouse.duckdb.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait(timeout=30)
    from pipelines.locks import held_lock

    acquired = threading.Event()
    with held_lock(lock, what="test", wait_seconds=5.0):
        acquired.set()
    assert acquired.is_set()
