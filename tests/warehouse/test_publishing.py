"""Publishing is atomic (a reader sees one sync or the next, never a mix) and idempotent."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from decimal import Decimal
from pathlib import Path

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from pipelines.warehouse.build import build_warehouse
from pipelines.warehouse.inputs import InputFiles
from pipelines.warehouse.publish import LockBusy, PublishRefused, load_files, publish
from pipelines.warehouse.verify import first_named_schema
from tests.warehouse.conftest import AS_OF, PG_ADMIN, settings_for
from tests.warehouse.helpers import rows, scalar, table_rows
from tests.warehouse.world import make_world


def snapshot(engine: sa.Engine, tables) -> dict[str, list[tuple]]:
    return {table: table_rows(engine, table) for table in tables}


@pytest.fixture
def pg_url(pg_databases):
    return pg_databases.new()


@pytest.mark.parametrize("target", ["duckdb", "postgresql"])
def test_a_rerun_with_no_change_leaves_every_table_identical(tmp_path, target, pg_databases):
    make_world(tmp_path, persons=150, services=800)
    url = pg_databases.new() if target == "postgresql" else ""
    settings = settings_for(tmp_path, url)
    first = publish(settings, as_of=AS_OF)
    engine = sa.create_engine(settings.resolved_warehouse_url)
    try:
        before = snapshot(engine, first.rows)
        engine.dispose()
        second = publish(settings, as_of=AS_OF)
        after = snapshot(engine, second.rows)
    finally:
        engine.dispose()
    assert first.rows == second.rows
    assert all(before.values())  # every table has rows: the comparison compares something
    assert before == after


def _version_two(tmp_path: Path) -> None:
    """The same world with more persons and services: every table changes."""
    make_world(tmp_path, persons=200, services=1200, seed=8)


def _bad_files(tmp_path: Path, built_files: dict[str, Path]) -> dict[str, Path]:
    """v2's files with the last table replaced by one whose dates are not dates."""
    files = dict(built_files)
    last = list(files)[-1]
    broken = tmp_path / "broken.parquet"
    table = pq.read_table(files[last])
    columns = {name: pa.array(["not a number"] * table.num_rows) for name in table.column_names}
    pq.write_table(pa.table(columns), broken)
    files[last] = broken
    return files


@pytest.mark.parametrize("target", ["duckdb", "postgresql"])
def test_a_publish_that_fails_midway_leaves_the_previous_version_whole(tmp_path, target, pg_databases):
    make_world(tmp_path, persons=150, services=800)
    url = pg_databases.new() if target == "postgresql" else ""
    settings = settings_for(tmp_path, url)
    v1 = publish(settings, as_of=AS_OF)
    engine = sa.create_engine(settings.resolved_warehouse_url)
    v1_content = snapshot(engine, v1.rows)
    engine.dispose()

    _version_two(tmp_path)
    built = build_warehouse(
        InputFiles(settings.resolved_dir, settings.staged_dir), tmp_path / "v2build", as_of=AS_OF
    )
    assert built.rows["dim_volunteer"] == 200  # v2 differs from v1
    with pytest.raises(Exception):
        load_files(engine, _bad_files(tmp_path, built.files))
    engine.dispose()
    assert snapshot(engine, v1.rows) == v1_content
    if target == "postgresql":  # the staging schema is gone too
        assert scalar(engine, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE '\\_staging\\_%'") == 0
    engine.dispose()


def test_duckdb_readers_see_the_previous_version_until_they_reconnect(tmp_path):
    make_world(tmp_path, persons=150, services=800)
    settings = settings_for(tmp_path)
    publish(settings, as_of=AS_OF)
    reader = sa.create_engine(settings.resolved_warehouse_url)
    seen: dict[str, tuple] = {}

    def look() -> tuple:
        with reader.connect() as connection:
            return (
                connection.execute(sa.text("SELECT count(*) FROM dim_volunteer")).scalar_one(),
                connection.execute(sa.text("SELECT sum(total_hours) FROM dim_volunteer")).scalar_one(),
                connection.execute(sa.text("SELECT sum(hours) FROM fact_service")).scalar_one(),
                connection.execute(sa.text("SELECT sum(volunteers) FROM mart_volunteers_by_county")).scalar_one(),
            )

    seen["v1"] = look()
    _version_two(tmp_path)
    publish(settings, as_of=AS_OF, before_commit=lambda: seen.setdefault("during", look()))
    seen["still_open"] = look()  # a reader keeps its version until it reconnects
    reader.dispose()
    seen["v2"] = look()
    reader.dispose()
    assert seen["still_open"] == seen["v1"]
    assert seen["during"] == seen["v1"]
    assert seen["v2"] != seen["v1"] and seen["v2"][0] == 200
    # v2 is consistent with itself: every person's hours add up to the facts
    assert seen["v2"][1] <= seen["v2"][2]


def test_postgresql_readers_see_one_version_whole(tmp_path, pg_url):
    make_world(tmp_path, persons=150, services=800)
    settings = settings_for(tmp_path, pg_url)
    publish(settings, as_of=AS_OF)
    dsn = pg_url.replace("postgresql+psycopg://", "postgresql://")
    seen: dict[str, object] = {}

    def look(connection) -> tuple:
        with connection.transaction():
            return connection.execute(
                "SELECT (SELECT count(*) FROM dim_volunteer), (SELECT sum(hours) FROM fact_service)"
            ).fetchone()

    with psycopg.connect(dsn) as before:
        seen["v1"] = look(before)

    def read_during_swap(ready: threading.Event) -> None:
        with psycopg.connect(dsn) as connection:
            ready.set()
            seen["during"] = look(connection)  # waits for the swap to commit

    def before_commit() -> None:
        # the reader starts while the old tables are dropped in the open swap transaction
        ready = threading.Event()
        seen["thread"] = threading.Thread(target=read_during_swap, args=(ready,))
        seen["thread"].start()
        ready.wait()
        with psycopg.connect(dsn, autocommit=True) as monitor:
            for _ in range(500):  # until the reader is blocked on the swap's locks
                waiting = monitor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
                ).fetchone()[0]
                if waiting:
                    break
                threading.Event().wait(0.01)
        seen["blocked"] = bool(waiting)

    _version_two(tmp_path)
    publish(settings, as_of=AS_OF, before_commit=before_commit)
    seen["thread"].join()
    with psycopg.connect(dsn) as after:
        seen["v2"] = look(after)
    assert seen["blocked"], "the reader never waited on the swap"
    assert seen["during"] == seen["v2"] != seen["v1"]
    assert seen["v2"][0] == 200


def test_organization_history_records_changes_across_syncs(tmp_path):
    make_world(tmp_path, persons=100, services=400)
    settings = settings_for(tmp_path)
    publish(settings, as_of=dt.date(2026, 1, 10))
    # sync 2: O00001 (filed) gets registered on 2026-02-01; O00002 is listed as dishonest
    changed_at = {
        1: {"registration_status": "registered", "updated_at": pd.Timestamp("2026-02-01 03:00", tz="UTC")},
        2: {"credit_status": "失信", "updated_at": pd.Timestamp("2026-02-15 17:00", tz="UTC")},
    }
    make_world(tmp_path, persons=100, services=400, org_overrides=changed_at)
    publish(settings, as_of=dt.date(2026, 3, 1))
    engine = sa.create_engine(settings.resolved_warehouse_url)
    history = rows(
        engine,
        "SELECT org_key, registration_status, credit_status, valid_from, valid_to, is_current "
        "FROM organization_status_history WHERE org_key IN ('O00001', 'O00002') ORDER BY org_key, valid_from",
    )
    founded_1, founded_2 = dt.date(2013, 2, 1), dt.date(2014, 3, 1)
    assert history == [
        ("O00001", "filed", "良好", founded_1, dt.date(2026, 2, 1), False),
        ("O00001", "registered", "良好", dt.date(2026, 2, 1), None, True),
        ("O00002", "unregistered", "警示", founded_2, dt.date(2026, 2, 16), False),  # Beijing date
        ("O00002", "unregistered", "失信", dt.date(2026, 2, 16), None, True),
    ]
    # one open row per organization, and the question the history is for
    assert scalar(engine, "SELECT count(*) FROM organization_status_history WHERE is_current") == 40
    registered_at = (
        "SELECT count(DISTINCT org_key) FROM organization_status_history "
        "WHERE registration_status = 'registered' AND valid_from <= :day AND (valid_to IS NULL OR valid_to > :day)"
    )
    end_2025 = scalar(engine, registered_at, day=dt.date(2025, 12, 31))
    assert scalar(engine, registered_at, day=dt.date(2026, 2, 28)) == end_2025 + 1
    events = dict(rows(engine, "SELECT year, sum(newly_registered) FROM mart_organization_events_by_year GROUP BY year"))
    assert events[2026] == 1
    before_rerun = table_rows(engine, "organization_status_history")
    engine.dispose()
    publish(settings, as_of=dt.date(2026, 3, 2))  # no change: nothing new
    assert table_rows(engine, "organization_status_history") == before_rerun
    engine.dispose()


def test_any_sqlalchemy_target_gets_the_same_tables(tmp_path):
    """SQLite stands for the targets without a bulk path: same tables and rows, history read back."""
    make_world(tmp_path, persons=150, services=800)
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    settings = settings_for(tmp_path, url)
    first = publish(settings, as_of=AS_OF)
    second = publish(settings, as_of=AS_OF)
    engine = sa.create_engine(url)
    try:
        from pipelines.warehouse.verify import contract_problems, hours_reconciliation

        assert contract_problems(engine) == []
        assert first.rows == second.rows
        assert {t: scalar(engine, f'SELECT count(*) FROM "{t}"') for t in first.rows} == first.rows
        # SQLite keeps decimals as floating point: equal up to float noise
        assert abs(hours_reconciliation(engine)["difference"]) < Decimal("0.000001")
    finally:
        engine.dispose()


# --- what analysts and DBAs attach to the published tables (PostgreSQL) ---------------------
# Each publish replaces the tables; what people hang on them between two syncs must not stop
# the nightly publish nor be lost by it.


def _schema_of(url: str) -> str:
    return url.rsplit("search_path%3D", 1)[1]


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _published_once(tmp_path: Path, pg_url: str):
    """(settings, schema, result) of a 150-person world published once to `pg_url`."""
    make_world(tmp_path, persons=150, services=800)
    settings = settings_for(tmp_path, pg_url)
    return settings, _schema_of(pg_url), publish(settings, as_of=AS_OF)


def _login_dsn(role: str) -> str:
    return f"host=127.0.0.1 port=5432 dbname=test user={role}"


@pytest.fixture
def pg_role():
    """A throwaway login role (roles are the server's, not the database's): dropped at the end."""
    name = f"wh_reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{name}" LOGIN')
    yield name
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP OWNED BY "{name}"')
        admin.execute(f'DROP ROLE "{name}"')


def test_an_analysts_view_on_a_published_table_survives_the_next_publish(tmp_path, pg_url):
    settings, schema, _ = _published_once(tmp_path, pg_url)
    with psycopg.connect(_dsn(pg_url), autocommit=True) as analyst:
        analyst.execute(
            f'CREATE VIEW "{schema}".analyst_hours AS '
            f'SELECT count(*) AS services, sum(hours) AS hours FROM "{schema}".fact_service'
        )
    _version_two(tmp_path)
    publish(settings, as_of=AS_OF)  # failed: "cannot drop table fact_service because other objects depend on it"
    with psycopg.connect(_dsn(pg_url)) as analyst:
        from_view = analyst.execute(f'SELECT services, hours FROM "{schema}".analyst_hours').fetchone()
        from_table = analyst.execute(f'SELECT count(*), sum(hours) FROM "{schema}".fact_service').fetchone()
        volunteers = analyst.execute(f'SELECT count(*) FROM "{schema}".dim_volunteer').fetchone()[0]
        comment = analyst.execute("SELECT obj_description(%s::regclass)", (f'"{schema}".fact_service',)).fetchone()[0]
    assert volunteers == 200  # version two is published
    assert from_view == from_table  # and the view reads it
    assert comment.startswith("Every effective service")


def test_a_view_on_a_table_whose_columns_changed_stops_the_publish_naming_it(tmp_path, pg_url):
    settings, schema, v1 = _published_once(tmp_path, pg_url)
    with psycopg.connect(_dsn(pg_url), autocommit=True) as analyst:
        # the live table no longer has the published columns (as after a release that changed them)
        analyst.execute(f'ALTER TABLE "{schema}".fact_service ADD COLUMN analyst_note text')
        analyst.execute(f'CREATE VIEW "{schema}".analyst_notes AS SELECT analyst_note FROM "{schema}".fact_service')
    engine = sa.create_engine(settings.resolved_warehouse_url)
    v1_content = snapshot(engine, v1.rows)
    engine.dispose()
    _version_two(tmp_path)
    with pytest.raises(PublishRefused, match=r"analyst_notes.*fact_service|fact_service.*analyst_notes") as refused:
        publish(settings, as_of=AS_OF)
    assert "previous warehouse stands" in str(refused.value)
    assert snapshot(engine, v1.rows) == v1_content
    engine.dispose()


def test_a_reader_roles_grants_survive_the_next_publish(tmp_path, pg_url, pg_role):
    settings, schema, _ = _published_once(tmp_path, pg_url)
    with psycopg.connect(_dsn(pg_url), autocommit=True) as dba:
        dba.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{pg_role}"')
        dba.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{pg_role}"')
    _version_two(tmp_path)
    publish(settings, as_of=AS_OF)
    with psycopg.connect(_login_dsn(pg_role)) as reader:  # was: permission denied for table fact_service
        assert reader.execute(f'SELECT count(*) FROM "{schema}".dim_volunteer').fetchone()[0] == 200
        assert reader.execute(f'SELECT count(*) FROM "{schema}".fact_service').fetchone()[0] > 0


def test_a_schemas_default_privileges_reach_the_published_tables(tmp_path, pg_url, pg_role):
    schema = _schema_of(pg_url)
    with psycopg.connect(_dsn(pg_url), autocommit=True) as dba:
        dba.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{pg_role}"')
        dba.execute(f'ALTER DEFAULT PRIVILEGES IN SCHEMA "{schema}" GRANT SELECT ON TABLES TO "{pg_role}"')
    make_world(tmp_path, persons=150, services=800)
    publish(settings_for(tmp_path, pg_url), as_of=AS_OF)  # the tables were made in another schema
    try:
        with psycopg.connect(_login_dsn(pg_role)) as reader:
            assert reader.execute(f'SELECT count(*) FROM "{schema}".dim_volunteer').fetchone()[0] == 150
    finally:
        with psycopg.connect(_dsn(pg_url), autocommit=True) as dba:
            dba.execute(f'ALTER DEFAULT PRIVILEGES IN SCHEMA "{schema}" REVOKE SELECT ON TABLES FROM "{pg_role}"')


def test_a_login_without_create_on_the_database_is_told_what_it_lacks(tmp_path, pg_url, pg_role):
    schema = _schema_of(pg_url)
    with psycopg.connect(_dsn(pg_url), autocommit=True) as dba:  # what a DBA grants first
        dba.execute(f'GRANT USAGE, CREATE ON SCHEMA "{schema}" TO "{pg_role}"')
    make_world(tmp_path, persons=150, services=800)
    url = pg_url.replace("postgres@", f"{pg_role}@")
    with pytest.raises(PublishRefused, match=r"CREATE on database test") as refused:
        publish(settings_for(tmp_path, url), as_of=AS_OF)
    assert "GRANT CREATE ON DATABASE" in str(refused.value)


def test_a_foreign_key_to_a_published_table_stops_the_publish_naming_it(tmp_path, pg_url):
    settings, schema, _ = _published_once(tmp_path, pg_url)
    with psycopg.connect(_dsn(pg_url), autocommit=True) as analyst:
        analyst.execute(f'ALTER TABLE "{schema}".dim_region ADD PRIMARY KEY (region_code)')
        analyst.execute(
            f'CREATE TABLE "{schema}".analyst_targets (region_code text '
            f'REFERENCES "{schema}".dim_region (region_code))'
        )
    _version_two(tmp_path)
    with pytest.raises(PublishRefused, match=r"dim_region cannot be replaced: .*analyst_targets") as refused:
        # every table replaced (the counties do not change: a publish that loads only what
        # changed would leave dim_region alone, and pass)
        publish(settings, as_of=AS_OF, incremental=False)  # was: DependentObjectsStillExist, the server's words only
    assert "previous warehouse stands" in str(refused.value)


def test_a_limited_login_told_of_a_lock_names_the_holders_application(tmp_path, pg_url, pg_role):
    """PostgreSQL hides another user's transaction start and state from a login that is not
    a superuser, but not its application: the message names it all the same."""
    schema = _schema_of(pg_url)
    with psycopg.connect(_dsn(pg_url), autocommit=True) as dba:
        dba.execute(f'GRANT USAGE, CREATE ON SCHEMA "{schema}" TO "{pg_role}"')
        dba.execute(f'GRANT CREATE ON DATABASE test TO "{pg_role}"')
    make_world(tmp_path, persons=150, services=800)
    settings = settings_for(tmp_path, pg_url.replace("postgres@", f"{pg_role}@"))
    publish(settings, as_of=AS_OF)
    analyst = psycopg.connect(_dsn(pg_url), application_name="analyst-notebook")
    try:
        analyst.execute(f'SELECT count(*) FROM "{schema}".fact_service').fetchone()  # left open
        _version_two(tmp_path)
        with pytest.raises(LockBusy) as refused:
            publish(settings, as_of=AS_OF, lock_timeout="1s")
        assert "analyst-notebook" in str(refused.value)  # was: "pid 123 (user postgres)" alone
    finally:
        analyst.close()


def test_a_search_path_naming_a_schema_not_yet_made_publishes_there(tmp_path, pg_databases):
    """A login whose search_path names the warehouse schema (`ALTER ROLE etl SET search_path =
    warehouse`, or `?options=-csearch_path=...` in WAREHOUSE_URL) before it exists: the first
    publish makes it and publishes there, as a CREATE TABLE would, not into public."""
    schema = f"wh_test_{uuid.uuid4().hex[:10]}"
    pg_databases.created.append(schema)  # dropped at the end with the others
    make_world(tmp_path, persons=150, services=800)
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    result = publish(settings_for(tmp_path, url), as_of=AS_OF)
    if result.schema == "public":  # the bug: leave the shared database as it was
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            for table in result.rows:
                admin.execute(f'DROP TABLE IF EXISTS public."{table}"')
    assert result.schema == schema  # was: public
    with psycopg.connect(PG_ADMIN) as admin:
        assert admin.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{schema}".dim_volunteer',)).fetchone()[0]


@pytest.mark.parametrize("search_path, first", [
    ('"$user", public', "public"), ("warehouse", "warehouse"), ('"$user",warehouse', "warehouse"),
    ('"仓库 GZ", public', "仓库 GZ"), ('"a""b"', 'a"b'), ('"$user"', None), ("", None),
])
def test_the_first_schema_a_search_path_names(search_path, first):
    assert first_named_schema(search_path) == first
