"""Publish the built tables to the warehouse named by WAREHOUSE_URL, atomically.

Readers never see half a sync, and no crash, restart or overlap leaves one behind:

* DuckDB: the new version is a new file. It starts as a copy of the published one's bytes
  (taken with the file attached read-only: an analyst's notebook holding the warehouse open
  does not stop it); in it the tables replaced in full are dropped and checkpointed (their
  blocks taken by the new rows, so the file keeps its size night after night), then they
  are recreated and loaded (`read_parquet`, no Python rows) and the deltas applied in one
  transaction, checkpointed, fsynced, then renamed over the warehouse. Readers
  that have it open keep the old version until they reconnect; a publish killed anywhere
  leaves the old file whole and a temporary file the next publish removes.
* PostgreSQL: ONE transaction creates a fresh schema `_staging_<token>` (invisible to
  readers until the commit), fills it with COPY, drops the old tables and moves the new ones
  in (`ALTER TABLE ... SET SCHEMA`). A killed client, a dropped connection or a restarted
  server rolls all of it back: the old tables stand and nothing is left over (staging
  schemas orphaned by older versions of this code are dropped at the next publish). Every
  lock wait is bounded (`lock_timeout`): a reader holding a table makes the publish fail
  after `SWAP_LOCK_TIMEOUT` with a message naming the table, instead of queueing every
  other reader behind it. Tables are replaced, not emptied, and what people hang on them
  outlasts the swap: the privileges others held on a replaced table, and the target
  schema's `ALTER DEFAULT PRIVILEGES` (which PostgreSQL applied to none of the new tables,
  made in the staging schema), are granted on its replacement; a table an analyst's view
  reads is emptied and refilled from the staged copy instead (no CASCADE, never a dropped
  view), and if its columns changed the publish stops naming the views. The login needs
  CREATE on the database (the staging schema); without it the publish says so. After the
  commit the tables loaded as deltas are vacuumed and every table loaded is analyzed
  (`_after_commit_upkeep`), whether or not the server's autovacuum runs.
* Any other SQLAlchemy target (SQLite ...): drop, create and insert in batches, in one
  transaction.

One publisher at a time per warehouse: a file lock beside a DuckDB file, an advisory lock
on PostgreSQL (per target schema); a second publisher waits `lock_wait_seconds`, then stops
saying who holds it. The build folder is the run's own (`state/warehouse/build-<pid>-<hex>`),
removed afterwards; one left by a killed run is removed by the next publish.

Idempotent: the build writes the same files from the same inputs, and loading keeps their
row order, so a rerun with no change leaves every table's content identical. The
organization history is read back from the target before building, so it persists across
syncs with the warehouse itself.

Kill points (`pipelines.faults`): `publish.built`, `publish.duckdb.loading`,
`publish.duckdb.loaded`, `publish.duckdb.swapped`, `publish.postgres.copying`,
`publish.postgres.mid_swap`, `publish.postgres.before_commit`, `publish.kept`, `publish.done`.

After a change set most tables are as the last publish left them: `publish(incremental=True)`
(the default) leaves those alone and loads a large table's changed rows as a delta, in the
same transaction, while a record says the last publish's kept files are what the warehouse
holds (pipelines/warehouse/delta.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import logging
import os
import shutil
import time
import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from pipelines import duck
from pipelines.clock import AsOf
from pipelines.config import Settings
from pipelines.guard import DevelopmentKeyRefused, ensure_publishable, is_local_warehouse  # noqa: F401
from pipelines.faults import crash_point
from pipelines.files import (
    WRITE_ERRORS,
    DataDirUnwritable,
    discard_temp,
    fsync_path,
    private_dir,
    process_alive,
    remove_dead_writers_temps,
    temp_path,
    unwritable_error,
    writer_pid,
)
from pipelines.locks import LockBusy, held_lock
from pipelines.sql import literal, quote
from pipelines.warehouse.build import BuiltWarehouse, build_warehouse
from pipelines.warehouse.delta import (
    DELTA,
    FULL,
    UNCHANGED,
    TableChange,
    churn_after,
    duckdb_identity,
    forget_record,
    previous_publish,
    write_record,
)
from pipelines.warehouse.history import HISTORY_TABLE
from pipelines.warehouse.inputs import InputFiles
from pipelines.warehouse.privacy_scan import ensure_no_personal_numbers
from pipelines.warehouse.spec import (
    Table,
    WarehouseSpec,
    arrow_schema,
    duckdb_type,
    load_spec,
    postgres_type,
    sqlalchemy_type,
)
from pipelines.warehouse.verify import default_schema, published_columns

log = logging.getLogger(__name__)

COPY_BATCH_ROWS = 50_000
# How long a publish waits for another publish to the same warehouse to finish.
PUBLISH_LOCK_WAIT_SECONDS = 600.0
# How long one statement of the PostgreSQL publish may wait for a table lock (a reader's long
# query, an open transaction): past it the publish fails and the old warehouse stands.
SWAP_LOCK_TIMEOUT = "30s"
STAGING_PREFIX = "_staging_"


class PublishRefused(RuntimeError):
    """The warehouse cannot take this publish as it stands (a right the login lacks, a view on
    a table whose columns changed): said in words, with what to do; nothing was changed."""


# Called inside the publishing transaction, just before it commits (tests check what other
# connections see at that moment).
BeforeCommit = Callable[[], None]


@dataclass(frozen=True)
class PublishResult:
    warehouse: str  # URL with the password hidden
    schema: str | None  # None: the target's default (targets other than DuckDB / PostgreSQL)
    rows: dict[str, int]
    figures: dict[str, float | int | None]
    as_of: AsOf
    tables_built: list[str]  # every table, or the date-dependent ones of a date refresh
    # per table built: "unchanged" (not loaded), "delta" (rows deleted and inserted) or "full"
    loads: dict[str, str] = dataclasses.field(default_factory=dict)


class DeltaMismatch(RuntimeError):
    """The warehouse did not hold what the last publish's record says (a delta's deleted
    rows or the table's rows after it do not add up): the publish loads every table in full.
    Names tables and counts, never a value."""


# --- loaders ------------------------------------------------------------------------------


def _table_comment(table: Table) -> str:
    text = table.description
    if table.question:
        text = f"{text} Question: {table.question}"
    return text


def _column_comment(column) -> str:
    return f"{column.description} [{column.unit}]" if column.unit else column.description


def _comment_statements(schema: str, table: Table) -> list[str]:
    target = f"{quote(schema)}.{quote(table.name)}"
    statements = [f"COMMENT ON TABLE {target} IS {literal(_table_comment(table))}"]
    statements += [
        f"COMMENT ON COLUMN {target}.{quote(c.name)} IS {literal(_column_comment(c))}"
        for c in table.columns
    ]
    return statements


def _create_statement(schema: str, table: Table, type_of: Callable) -> str:
    columns = ", ".join(f"{quote(c.name)} {type_of(c)}" for c in table.columns)
    return f"CREATE TABLE {quote(schema)}.{quote(table.name)} ({columns})"


def _key_match(table: Table, left: str, right: str) -> str:
    return " AND ".join(f"{left}.{quote(c)} = {right}.{quote(c)}" for c in table.key)


def _check_delta(table: Table, change: TableChange, deleted: int, rows: int) -> None:
    if deleted != change.deleted or rows != change.rows:
        raise DeltaMismatch(
            f"{table.name}: the delta deleted {deleted} rows of the {change.deleted} the last publish "
            f"holds, leaving {rows} rows where the build has {change.rows}"
        )


def _apply_delta_duckdb(con, schema: str, table: Table, change: TableChange) -> None:
    """Delete the rows that went or changed, insert those that came or changed (delta.py)."""
    target = f"{quote(schema)}.{quote(table.name)}"
    deleted = con.execute(
        f"DELETE FROM {target} AS t USING read_parquet(?) AS d WHERE {_key_match(table, 't', 'd')}",
        [str(change.deletes)],
    ).fetchall()[0][0]
    column_list = ", ".join(quote(c) for c in table.column_names)
    con.execute(f"INSERT INTO {target} ({column_list}) SELECT {column_list} FROM read_parquet(?)",
                [str(change.inserts)])
    _check_delta(table, change, deleted, con.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0])


def _publish_duckdb(
    engine: sa.Engine,
    schema: str,
    tables: list[Table],
    files: dict[str, Path],
    before_commit: BeforeCommit | None,
    changes: dict[str, TableChange],
) -> None:
    raw = engine.raw_connection()
    try:
        con = raw.driver_connection
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
        con.execute("BEGIN TRANSACTION")
        try:
            for number, table in enumerate(tables):
                if number == 1:
                    crash_point("publish.duckdb.loading")
                change = changes.get(table.name)
                if change is not None and change.kind == UNCHANGED:
                    continue  # the copy of the published file holds it already
                if change is not None and change.kind == DELTA:
                    _apply_delta_duckdb(con, schema, table, change)
                    continue
                target = f"{quote(schema)}.{quote(table.name)}"
                con.execute(f"DROP TABLE IF EXISTS {target}")
                con.execute(_create_statement(schema, table, duckdb_type))
                column_list = ", ".join(quote(c) for c in table.column_names)
                con.execute(
                    f"INSERT INTO {target} ({column_list}) "
                    f"SELECT {column_list} FROM read_parquet(?)",
                    [str(files[table.name])],
                )
                for statement in _comment_statements(schema, table):
                    con.execute(statement)
            if before_commit:
                before_commit()
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("CHECKPOINT")  # everything in the file itself, no WAL beside it
    finally:
        raw.close()


def _csv_chunks(path: Path, table: Table):
    """The Parquet file as CSV bytes for COPY, a batch at a time (NULL = unquoted empty)."""
    schema = arrow_schema(table)
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    for batch in pq.ParquetFile(path).iter_batches(batch_size=COPY_BATCH_ROWS):
        buffer = io.BytesIO()
        pacsv.write_csv(pa.Table.from_batches([batch]).cast(schema), buffer, options)
        yield buffer.getvalue()


def _lock_holders(con, schema: str) -> str:
    """Who holds locks on the tables of `schema` (for the message of a lock timeout)."""
    rows = con.execute(
        "SELECT DISTINCT a.pid, coalesce(a.application_name, ''), coalesce(a.usename, ''), "
        "coalesce(a.state, ''), a.xact_start FROM pg_locks l "
        "JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE n.nspname = %s AND l.granted AND a.pid <> pg_backend_pid()",
        (schema,),
    ).fetchall()
    if not rows:
        return "a session that has since let go"
    return "; ".join(_holder(*row) for row in rows)


def _holder(pid: int, app: str, user: str, state: str, since: dt.datetime | None) -> str:
    """One lock holder in words, with what PostgreSQL shows of it: a login that is not a
    superuser sees another user's application but not its state or transaction start."""
    facts = [f"user {user or '?'}", f"application {app or '?'}"]
    if state:
        facts.append(state)
    if since:
        facts.append(f"transaction since {since:%Y-%m-%d %H:%M:%S%z}")
    return f"pid {pid} ({', '.join(facts)})"


def drop_orphan_staging_schemas(con, schema: str) -> list[str]:
    """Drop staging schemas left by publishes that died between two transactions (older
    versions of this code filled the staging schema in one transaction and swapped in
    another). Today's publish never commits one, so any committed `_staging_*` schema is
    an orphan; one whose tables are busy is skipped (lock_timeout) and tried next time."""
    names = [
        row[0]
        for row in con.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s ORDER BY nspname",
            (STAGING_PREFIX.replace("_", "\\_") + "%",),
        ).fetchall()
    ]
    dropped = []
    for name in names:
        try:
            with con.transaction():
                con.execute("SET LOCAL lock_timeout = '1s'")
                con.execute(f"DROP SCHEMA IF EXISTS {quote(name)} CASCADE")
            dropped.append(name)
        except Exception as error:  # noqa: BLE001 - busy or not ours to drop: leave it
            log.warning("left staging schema %s in place: %s", name, type(error).__name__)
    if dropped:
        log.info("dropped %d orphaned staging schema(s) before publishing to %s", len(dropped), schema)
    return dropped


@contextmanager
def postgres_publish_lock(con, schema: str, *, wait_seconds: float) -> Iterator[None]:
    """One publisher per (database, target schema): a session advisory lock, released by
    the server when the session ends, however it ends."""
    key = f"guizhou-volunteer-warehouse-publish:{schema}"
    deadline = time.monotonic() + max(wait_seconds, 0.0)
    while not con.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()[0]:
        if time.monotonic() >= deadline:
            holder = con.execute(
                "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.client_addr::text, 'local'), "
                "a.backend_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.objid = hashtext(%s)::oid",
                (key,),
            ).fetchone()
            who = (
                f"session pid {holder[0]} (application {holder[1] or '?'}, from {holder[2]}, "
                f"connected {holder[3]:%Y-%m-%d %H:%M:%S%z})" if holder else "another session"
            )
            raise LockBusy(
                f"another publish to schema {schema} is under way: {who}; waited "
                f"{wait_seconds:g} s. Let it finish and run again."
            )
        time.sleep(0.2)
    try:
        yield
    finally:
        try:
            con.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))
        except Exception:  # noqa: BLE001 - a dead session has released it already
            pass


def _create_schemas(con, schema: str, staging: str) -> None:
    """The target schema if missing, and this publish's staging schema: both need the right
    to create schemas in the database, which a login given only its schema's rights lacks."""
    database, user = con.execute("SELECT current_database(), current_user").fetchone()
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
        con.execute(f"CREATE SCHEMA {quote(staging)}")
    except Exception as error:
        if type(error).__name__ != "InsufficientPrivilege":
            raise
        raise PublishRefused(
            f"the warehouse login {user} lacks CREATE on database {database}: each publish fills "
            f"a schema of its own ({STAGING_PREFIX}...) before it swaps the tables into "
            f"{schema}. Nothing was changed: the previous warehouse stands. As the database's "
            f"owner: GRANT CREATE ON DATABASE {quote(database)} TO {quote(user)};"
        ) from None


def _views_on(con, schema: str, table: str) -> list[str]:
    """The views (and materialized views) that read `schema.table`, qualified: an analyst's,
    in any schema. Dropping the table would need CASCADE, which would drop them."""
    return [
        row[0]
        for row in con.execute(
            "SELECT DISTINCT quote_ident(vn.nspname) || '.' || quote_ident(v.relname) "
            "FROM pg_depend d JOIN pg_rewrite w ON w.oid = d.objid "
            "JOIN pg_class v ON v.oid = w.ev_class JOIN pg_namespace vn ON vn.oid = v.relnamespace "
            "WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass "
            "AND d.refobjid = to_regclass(%s) AND v.oid <> d.refobjid ORDER BY 1",
            (f"{quote(schema)}.{quote(table)}",),
        ).fetchall()
    ]


def _columns_of(con, schema: str, table: str) -> list[tuple[str, str]]:
    return con.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (f"{quote(schema)}.{quote(table)}",),
    ).fetchall()


def _refill_in_place(con, staging: str, schema: str, table: Table, views: list[str]) -> None:
    """Replace the rows of a table that views read, keeping the table (and so the views, their
    owners and grants, and the table's own grants): emptied and filled from the staged copy in
    the publishing transaction, so readers still see one sync or the next. A table whose
    columns changed cannot be refilled; the views then have to go first, said in words."""
    target = f"{quote(schema)}.{quote(table.name)}"
    fresh = f"{quote(staging)}.{quote(table.name)}"
    if _columns_of(con, schema, table.name) != _columns_of(con, staging, table.name):
        raise PublishRefused(
            f"{schema}.{table.name} has views on it ({', '.join(views)}) and its columns are not "
            f"the ones this version publishes, so it cannot be refilled in place nor dropped "
            f"without dropping them. Nothing was changed: the previous warehouse stands. Save "
            f"and drop those views, publish, then create them again (docs/DATA_DICTIONARY.md "
            f"lists the columns)."
        )
    con.execute(f"TRUNCATE {target}")
    con.execute(f"INSERT INTO {target} SELECT * FROM {fresh}")
    con.execute(f"DROP TABLE {fresh}")
    for statement in _comment_statements(schema, table):
        con.execute(statement)


def _grants_to_keep(con, schema: str, table: str) -> list[str]:
    """GRANT statements for the table that replaces `schema.table`: the privileges others held
    on the old one (a reader role given SELECT ON ALL TABLES), and the schema's default
    privileges for this login (ALTER DEFAULT PRIVILEGES IN SCHEMA ...), which PostgreSQL
    applied to none of the new tables: they were created in the staging schema."""
    target = f"{quote(schema)}.{quote(table)}"
    rows = con.execute(
        "WITH me AS (SELECT oid FROM pg_roles WHERE rolname = current_user), held AS ("
        " SELECT a.privilege_type, a.is_grantable, a.grantee FROM pg_class c"
        " CROSS JOIN LATERAL aclexplode(c.relacl) a WHERE c.oid = to_regclass(%s)"
        " UNION SELECT a.privilege_type, a.is_grantable, a.grantee FROM pg_default_acl d"
        " CROSS JOIN LATERAL aclexplode(d.defaclacl) a WHERE d.defaclobjtype = 'r'"
        " AND d.defaclnamespace = to_regnamespace(%s) AND d.defaclrole = (SELECT oid FROM me))"
        " SELECT h.privilege_type, h.is_grantable, r.rolname"
        " FROM held h LEFT JOIN pg_roles r ON r.oid = h.grantee"
        " WHERE h.grantee <> (SELECT oid FROM me) AND (h.grantee = 0 OR r.oid IS NOT NULL)",
        (target, quote(schema)),
    ).fetchall()
    return sorted(
        f"GRANT {privilege} ON {target} TO "
        + ("PUBLIC" if role is None else quote(role))  # grantee 0: PUBLIC, no role of that oid
        + (" WITH GRANT OPTION" if grantable else "")
        for privilege, grantable, role in rows
    )


def _copy_into(con, target: str, table: Table, path: Path) -> None:
    column_list = ", ".join(quote(c) for c in table.column_names)
    with con.cursor() as cursor:
        with cursor.copy(f"COPY {target} ({column_list}) FROM STDIN WITH (FORMAT csv)") as copy:
            for chunk in _csv_chunks(path, table):
                copy.write(chunk)


def _stage_delta_postgres(con, staging: str, table: Table, change: TableChange) -> None:
    """The delta's rows (`<table>`) and deleted keys (`<table>__deleted`) in the staging schema."""
    keys_only = dataclasses.replace(table, columns=tuple(c for c in table.columns if c.name in table.key))
    for staged, path in ((table, change.inserts), (keys_only, change.deletes)):
        name = table.name if staged is table else f"{table.name}__deleted"
        con.execute(_create_statement(staging, dataclasses.replace(staged, name=name), postgres_type))
        _copy_into(con, f"{quote(staging)}.{quote(name)}", staged, path)


def _apply_delta_postgres(con, staging: str, schema: str, table: Table, change: TableChange) -> None:
    """In the publishing transaction: readers see the table's old rows until the commit."""
    target = f"{quote(schema)}.{quote(table.name)}"
    fresh, gone = f"{quote(staging)}.{quote(table.name)}", f"{quote(staging)}.{quote(table.name + '__deleted')}"
    with con.cursor() as cursor:
        cursor.execute(f"DELETE FROM {target} AS t USING {gone} AS d WHERE {_key_match(table, 't', 'd')}")
        deleted = cursor.rowcount
    column_list = ", ".join(quote(c) for c in table.column_names)
    con.execute(f"INSERT INTO {target} ({column_list}) SELECT {column_list} FROM {fresh}")
    con.execute(f"DROP TABLE {fresh}, {gone}")
    _check_delta(table, change, deleted, con.execute(f"SELECT count(*) FROM {target}").fetchone()[0])


def _publish_postgres(
    engine: sa.Engine,
    schema: str,
    tables: list[Table],
    files: dict[str, Path],
    before_commit: BeforeCommit | None,
    lock_timeout: str = SWAP_LOCK_TIMEOUT,
    changes: dict[str, TableChange] | None = None,
) -> None:
    changes = changes or {}
    kind = {t.name: changes[t.name].kind if t.name in changes else FULL for t in tables}
    xid = None
    staging = f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
    raw = engine.raw_connection()
    try:
        con = raw.driver_connection  # psycopg 3
        con.rollback()  # the pool's connection may have a transaction open (autobegin)
        moving = ""
        try:
            # One transaction: fill, then swap. Until the commit the staging schema is
            # invisible; a crash at any point rolls everything back on the server.
            with con.transaction():
                con.execute("SELECT set_config('lock_timeout', %s, true)", (lock_timeout,))  # SET LOCAL
                _create_schemas(con, schema, staging)
                for number, table in enumerate(tables):
                    if number == 1:
                        crash_point("publish.postgres.copying")
                    if kind[table.name] == DELTA:
                        _stage_delta_postgres(con, staging, table, changes[table.name])
                        continue
                    if kind[table.name] == UNCHANGED:
                        continue  # the warehouse holds it already
                    con.execute(_create_statement(staging, table, postgres_type))
                    _copy_into(con, f"{quote(staging)}.{quote(table.name)}", table, files[table.name])
                    for statement in _comment_statements(staging, table):
                        con.execute(statement)
                # the swap: the old tables are locked from here to the commit only
                for number, table in enumerate(tables):
                    if number == len(tables) // 2:
                        crash_point("publish.postgres.mid_swap")
                    moving = table.name
                    if kind[table.name] == DELTA:
                        _apply_delta_postgres(con, staging, schema, table, changes[table.name])
                        continue
                    if kind[table.name] == UNCHANGED:
                        continue
                    views = _views_on(con, schema, table.name)
                    if views:
                        _refill_in_place(con, staging, schema, table, views)
                        continue
                    grants = _grants_to_keep(con, schema, table.name)
                    con.execute(f"DROP TABLE IF EXISTS {quote(schema)}.{quote(table.name)}")
                    con.execute(
                        f"ALTER TABLE {quote(staging)}.{quote(table.name)} SET SCHEMA {quote(schema)}"
                    )
                    for grant in grants:
                        con.execute(grant)
                moving = ""
                con.execute(f"DROP SCHEMA {quote(staging)}")
                # this transaction's id (as rows' xmin holds it): a row written after it is a
                # change the next publish's deltas would not know of (_postgres_unchanged_since)
                xid = con.execute("SELECT (txid_current() % 4294967296)::text").fetchone()[0]
                if before_commit:
                    before_commit()
                crash_point("publish.postgres.before_commit")
        except Exception as error:
            if type(error).__name__ == "LockNotAvailable":
                where = f"{schema}.{moving}" if moving else f"schema {schema}"
                holders = _lock_holders(con, schema) if not con.closed else "unknown"
                raise LockBusy(
                    f"publishing waited {lock_timeout} for a lock on {where}, held by "
                    f"{holders}. Nothing was changed: the previous warehouse stands. Run again "
                    "once that session has finished (or end it)."
                ) from None
            if type(error).__name__ == "DependentObjectsStillExist":
                # not a view (those are kept): a foreign key of somebody's table, a rule...
                detail = getattr(getattr(error, "diag", None), "message_detail", None) or str(error)
                raise PublishRefused(
                    f"{schema}.{moving} cannot be replaced: {detail.strip()}. Nothing was changed: "
                    "the previous warehouse stands. Drop that dependency (the published tables "
                    "are replaced at every publish; views on them are kept), then run again."
                ) from None
            raise
        _after_commit_upkeep(con, schema, kind, lock_timeout)
    finally:
        raw.close()
    return xid


def _after_commit_upkeep(con, schema: str, kind: dict[str, str], lock_timeout: str) -> None:
    """After the commit: VACUUM (ANALYZE) the tables loaded as deltas, ANALYZE those replaced.

    A delta's DELETE leaves the old rows as dead tuples, which only a vacuum makes room of;
    autovacuum comes when a fifth of a table is dead (its default scale factor), or never where
    it is off, and the tables grew by each night's deleted rows: at 20,000 persons ~450 dead
    tuples a night, +8% after a month (bench/nights.py), about the live rows' number after a
    year. With it: +1%, none dead. A table replaced in full is new, with nothing dead and no
    statistics: until autovacuum's analyze comes (never where it is off) the planner guesses
    its rows, and the analysts' joins over fact_service get the plans of a guess. Either that
    cannot run (another holds the table, the login does not own it) is skipped with a
    warning: the publish has committed, and the next one tries again."""
    upkeep = {name: "VACUUM (ANALYZE)" if how == DELTA else "ANALYZE"
              for name, how in kind.items() if how in (DELTA, FULL)}
    if not upkeep:
        return
    con.autocommit = True  # VACUUM runs outside a transaction
    try:
        con.execute("SELECT set_config('lock_timeout', %s, false)", (lock_timeout,))
        for name, command in upkeep.items():
            try:
                con.execute(f"{command} {quote(schema)}.{quote(name)}")
            except Exception as error:  # noqa: BLE001 - committed already: the next publish tries again
                log.warning("publish: %s of %s.%s skipped: %s", command, schema, name, type(error).__name__)
        con.execute("RESET lock_timeout")
    finally:
        con.autocommit = False


def _publish_generic(
    engine: sa.Engine,
    schema: str | None,
    tables: list[Table],
    files: dict[str, Path],
    before_commit: BeforeCommit | None,
) -> None:
    metadata = sa.MetaData(schema=schema)
    sa_tables = [
        sa.Table(t.name, metadata, *(sa.Column(c.name, sqlalchemy_type(c)) for c in t.columns))
        for t in tables
    ]
    with engine.begin() as connection:
        for table, sa_table in zip(tables, sa_tables):
            sa_table.drop(connection, checkfirst=True)
            sa_table.create(connection)
            for batch in pq.ParquetFile(files[table.name]).iter_batches(batch_size=COPY_BATCH_ROWS):
                rows = batch.to_pylist()
                if rows:
                    connection.execute(sa_table.insert(), rows)
        if before_commit:
            before_commit()


def load_files(
    engine: sa.Engine,
    files: dict[str, Path],
    *,
    spec: WarehouseSpec | None = None,
    schema: str | None = None,
    before_commit: BeforeCommit | None = None,
    lock_timeout: str = SWAP_LOCK_TIMEOUT,
    changes: dict[str, TableChange] | None = None,
) -> str | None:
    """Replace the tables named in `files` (in that order) by their content, atomically.
    `lock_timeout` bounds each lock wait on PostgreSQL (a PostgreSQL interval, e.g. '30s').
    `changes` (DuckDB and PostgreSQL): how each table reaches the warehouse (delta.py): an
    unchanged table is left as it stands, a delta applied in the same transaction; a table
    it does not name is replaced. Raises DeltaMismatch (nothing changed) when a delta does
    not add up. Returns, on PostgreSQL, the publishing transaction's id."""
    spec = spec or load_spec()
    tables = [spec[name] for name in files]
    dialect = engine.dialect.name
    if dialect == "duckdb":
        _publish_duckdb(engine, schema or "main", tables, files, before_commit, changes or {})
    elif dialect == "postgresql":
        return _publish_postgres(engine, schema or "public", tables, files, before_commit, lock_timeout, changes)
    else:
        _publish_generic(engine, schema, tables, files, before_commit)
    return None


def read_previous_history(engine: sa.Engine, schema: str | None = None) -> pa.Table | None:
    """The organization history as published last time; None before the first publish."""
    if engine.dialect.name not in ("duckdb", "postgresql"):
        schema = None
    elif schema is None:
        schema = default_schema(engine)
    published = published_columns(engine, schema).get(HISTORY_TABLE)
    if published is None:
        return None
    spec = load_spec()[HISTORY_TABLE]
    wanted = [c for c in spec.columns if c.name in published]
    # typed columns: the driver's values come back as dates and booleans on every target
    query = sa.select(*(sa.column(c.name, sqlalchemy_type(c)) for c in wanted)).select_from(
        sa.table(HISTORY_TABLE, schema=schema)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    columns = {
        c.name: [row[c.name] if c.name in published else None for row in rows] for c in spec.columns
    }
    return pa.table(columns, schema=arrow_schema(spec))


# --- the whole publish ---------------------------------------------------------------------


BUILD_PREFIX = "build-"


def build_dir(settings: Settings) -> Path:
    """This publish's own build folder: two overlapping runs never share (or remove) one."""
    return settings.state_dir / "warehouse" / f"{BUILD_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"


def published_build_dir(settings: Settings) -> Path:
    """The Parquet files of the tables as last published: a refresh of the date-dependent
    tables alone (`publish(rebuild=...)`) carries every other table from here."""
    return settings.state_dir / "warehouse" / "published"


def keep_build(settings: Settings, built: BuiltWarehouse) -> None:
    """Make `built` (just published) the kept build; called under the publish lock."""
    kept = published_build_dir(settings)
    retired = build_dir(settings)  # a name remove_stale_builds clears if this process dies
    if kept.exists():
        os.replace(kept, retired)
    os.replace(built.directory, kept)
    fsync_path(kept.parent)
    shutil.rmtree(retired, ignore_errors=True)


def carried_tables_kept(settings: Settings, rebuild: Collection[str]) -> bool:
    """Whether the kept build holds every table a partial build would carry."""
    kept = published_build_dir(settings)
    return all((kept / f"{name}.parquet").is_file() for name in load_spec().tables if name not in rebuild)


def remove_stale_builds(settings: Settings) -> None:
    """Build folders of publishes that died (their process is gone): nothing relies on them."""
    parent = settings.state_dir / "warehouse"
    if not parent.exists():
        return
    for folder in parent.iterdir():
        if folder.name == "build":  # the fixed folder of earlier versions
            shutil.rmtree(folder, ignore_errors=True)
            continue
        pid = writer_pid(folder.name) if folder.name.startswith(BUILD_PREFIX) else None
        if pid is not None and not process_alive(pid):
            shutil.rmtree(folder, ignore_errors=True)


def duckdb_lock_path(database: Path) -> Path:
    return database.with_name(f".{database.name}.lock")


def copy_published_duckdb(database: Path) -> Path:
    """A new DuckDB file (temporary name beside `database`) holding what is published now:
    every schema, table, view and macro (an analyst's own tables survive the publish). The
    published file is only read, so readers holding it open do not stop this.

    The copy is of the file's bytes (and its WAL, replayed into the copy), taken while this
    process holds the file attached read-only: DuckDB's shared lock keeps every writer out
    for that time, so the bytes are one consistent state. Copying bytes costs what the disk
    does (about 1 s for the 0.5 GB warehouse of 1M persons); `COPY FROM DATABASE`, which
    rewrites every table, cost 15 s."""
    import duckdb

    private_dir(database.parent)
    remove_dead_writers_temps(database)  # copies left by publishes that died
    fresh = temp_path(database)
    fresh_wal = fresh.with_name(fresh.name + ".wal")
    if not database.exists():
        return fresh  # the first publish: DuckDB makes the file
    holder = duck.connect()
    try:
        try:
            holder.execute(f"ATTACH {literal(str(database))} AS published (READ_ONLY)")
        except duckdb.Error as error:
            # "already attached": this very process has it open (a notebook, or a test that
            # publishes and reads in one process); DuckDB will not open it twice, and no other
            # process can write it meanwhile either
            if "already attached" not in str(error):
                raise
        wal = database.with_name(database.name + ".wal")
        shutil.copyfile(database, fresh)
        if wal.exists():
            shutil.copyfile(wal, fresh_wal)
    except BaseException:
        for leftover in (fresh, fresh_wal):
            leftover.unlink(missing_ok=True)
        raise
    finally:
        holder.close()
    if fresh_wal.exists():
        # replay the WAL into the copy, so the swap can drop the old one
        con = duck.connect(str(fresh))
        try:
            con.execute("CHECKPOINT")
        finally:
            con.close()
    return fresh


def swap_in_duckdb(fresh: Path, database: Path) -> None:
    """Put the new file in place of the published one, atomically and durably."""
    fsync_path(fresh)
    os.chmod(fresh, 0o600)
    # A WAL beside the published file belongs to the old content (a writer that died before
    # its checkpoint); the copy has read it already. Left there, DuckDB would replay it on
    # the new file.
    database.with_name(database.name + ".wal").unlink(missing_ok=True)
    os.replace(fresh, database)
    crash_point("publish.duckdb.swapped")
    fsync_path(database.parent)


def _build(settings: Settings, engine: sa.Engine, schema: str | None, as_of: AsOf,
           rebuild: Collection[str] | None, previous: Path | None = None,
           churn: dict[str, int] | None = None) -> BuiltWarehouse:
    previous_history = read_previous_history(engine, schema)
    if rebuild is not None and not carried_tables_kept(settings, rebuild):
        log.info("the kept build is incomplete: building every table")
        rebuild = None
    built = build_warehouse(
        InputFiles(settings.resolved_dir, settings.staged_dir),
        build_dir(settings),
        as_of=as_of.date,
        previous_history=previous_history,
        rebuild=rebuild,
        carried_from=published_build_dir(settings),
        name_key=settings.pii_hash_key,
        previous=previous if rebuild is None else None,
        churn=churn,
    )
    # the last line of defence: nothing shaped like a clear ID number or phone goes out. A
    # table loaded as a delta brings only its inserted rows; an unchanged one brings nothing
    # (its rows were scanned when they were published)
    ensure_no_personal_numbers(_entering(built))
    crash_point("publish.built")
    return built


def _entering(built: BuiltWarehouse) -> dict[str, Path]:
    """Per table, the file of the rows that enter the warehouse."""
    entering = {}
    for name, path in built.files.items():
        change = built.changes.get(name)
        if change is None or change.kind == FULL:
            entering[name] = path
        elif change.kind == DELTA:
            entering[name] = change.inserts
    return entering


def _load(engine: sa.Engine, built: BuiltWarehouse, **options) -> str | None:
    """Load the build, as deltas where it has them; in full when a delta does not add up
    (after scanning the rows the deltas had not brought). Returns load_files's."""
    try:
        xid = load_files(engine, built.files, changes=built.changes, **options)
    except DeltaMismatch as mismatch:
        log.warning("publish: %s; the warehouse is not what the last publish left: loading every table in full",
                    mismatch)
        scanned = _entering(built)
        ensure_no_personal_numbers({n: p for n, p in built.files.items() if scanned.get(n) != p})
        built.changes = {}
        xid = load_files(engine, built.files, **options)
    shutil.rmtree(built.delta_dir, ignore_errors=True)  # the kept build holds whole tables only
    return xid


def _loads(built: BuiltWarehouse) -> dict[str, str]:
    return {name: built.changes[name].kind if name in built.changes else FULL for name in built.files}


def _record(settings: Settings, built: BuiltWarehouse, schema: str | None, duckdb_file: list[int] | None,
            xid: str | None = None, churn: dict[str, int] | None = None) -> None:
    """`churn`: the last publish's record's (delta.churn_after counts this publish's in)."""
    crash_point("publish.kept")  # the warehouse and its kept files agree; not yet recorded
    write_record(published_build_dir(settings), target=settings.warehouse_display, schema=schema,
                 rows=built.rows, duckdb_file=duckdb_file, xid=xid,
                 churn=churn_after(churn or {}, built.changes, built.files, built.rows))


def _postgres_unchanged_since(engine: sa.Engine, schema: str, record: dict) -> bool:
    """Whether every table of the last publish's record has its row count in the warehouse and
    no row written after that publish's transaction (an analyst's insert or update, another
    DATA_DIR's publish: a row's xmin, compared by age, which survives the ids' wraparound)."""
    if not record.get("xid"):
        return False
    try:
        with engine.connect() as connection:
            for table, count in record["rows"].items():
                found, newer = connection.execute(sa.text(
                    f"SELECT count(*), count(*) FILTER (WHERE age(xmin) < age(CAST(:xid AS xid))) "
                    f"FROM {quote(schema)}.{quote(table)}"), {"xid": record["xid"]}).one()
                if found != count or newer:
                    log.info("publish: %s.%s was written since the last publish (%s rows, %s newer): "
                             "every table loaded in full", schema, table, found, newer)
                    return False
    except sa.exc.DBAPIError:
        log.info("publish: the last publish's tables cannot be read: every table loaded in full")
        return False
    return True


def _drop_replaced_tables(engine: sa.Engine, schema: str, built: BuiltWarehouse) -> None:
    """In the publish's own copy of the DuckDB file, before the load: drop the tables it
    replaces in full, and checkpoint.

    No reader sees that copy until the swap, and a publish that dies leaves the published file
    whole, so the drop needs no transaction with the load. It keeps the file from growing: a
    checkpoint frees a dropped table's blocks, and DuckDB writes new rows into free blocks
    first. Dropped in the load's own transaction, a table's old blocks were freed only after
    its new rows had taken blocks at the end of the file, and the next night's copy carried
    them, free: at 20,000 persons the file was 51% larger than its tables after one night
    (bench/nights.py). Not in `load_files`, which is atomic on any file it is given."""
    replaced = [name for name in built.files if name not in built.changes or built.changes[name].kind == FULL]
    raw = engine.raw_connection()
    try:
        con = raw.driver_connection
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
        for name in replaced:
            con.execute(f"DROP TABLE IF EXISTS {quote(schema)}.{quote(name)}")
        con.execute("CHECKPOINT")
    finally:
        raw.close()


def _publish_to_duckdb(
    settings: Settings, url: URL, schema: str | None, as_of: AsOf,
    before_commit: BeforeCommit | None, lock_wait_seconds: float, rebuild: Collection[str] | None,
    incremental: bool,
) -> tuple[str, BuiltWarehouse]:
    database = Path(url.database).resolve()
    kept = published_build_dir(settings)
    with held_lock(duckdb_lock_path(database), what=f"the warehouse {database}",
                   owner="publish", wait_seconds=lock_wait_seconds):
        identity = duckdb_identity(database)
        fresh = copy_published_duckdb(database)
        built = None
        try:
            engine = duck.quiet_engine(sa.create_engine(url.set(database=str(fresh))))
            try:
                schema = schema or default_schema(engine)
                record = previous_publish(kept, target=settings.warehouse_display, schema=schema,
                                          duckdb_file=identity) if incremental and identity is not None else None
                previous = kept if record is not None else None
                churn = record.get("churn", {}) if record is not None else {}
                built = _build(settings, engine, schema, as_of, rebuild, previous, churn)
                _drop_replaced_tables(engine, schema, built)
                _load(engine, built, schema=schema, before_commit=before_commit)
            finally:
                engine.dispose()
            crash_point("publish.duckdb.loaded")
            forget_record(kept)
            swap_in_duckdb(fresh, database)
            keep_build(settings, built)
            _record(settings, built, schema, duckdb_identity(database), churn=churn)
        except (*WRITE_ERRORS, sa.exc.DBAPIError) as error:
            # DuckDB's own refusal ("IO Error: ... No space left on device") comes wrapped by
            # SQLAlchemy when the load met it, bare when the build did
            clear = unwritable_error(database, getattr(error, "orig", None) or error)
            if clear is None:
                raise
            raise clear from None
        finally:
            for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
                discard_temp(leftover)
            if built is not None:
                shutil.rmtree(built.directory, ignore_errors=True)
    return schema, built


def _publish_to_server(
    settings: Settings, url: str, schema: str | None, as_of: AsOf,
    before_commit: BeforeCommit | None, lock_wait_seconds: float, lock_timeout: str,
    rebuild: Collection[str] | None, incremental: bool,
) -> tuple[str | None, BuiltWarehouse]:
    engine = sa.create_engine(url)
    kept = published_build_dir(settings)
    built = None
    try:
        schema = schema or default_schema(engine)
        if engine.dialect.name != "postgresql":
            built = _build(settings, engine, schema, as_of, rebuild)
            forget_record(kept)
            load_files(engine, built.files, schema=schema, before_commit=before_commit)
            keep_build(settings, built)
            return schema, built
        # The advisory lock lives in a session of its own, held from before the history is
        # read to after the swap: two publishes never build from the same old history.
        with engine.connect() as locking:
            con = locking.connection.driver_connection
            con.autocommit = True
            with postgres_publish_lock(con, schema, wait_seconds=lock_wait_seconds):
                drop_orphan_staging_schemas(con, schema)
                previous, churn = None, {}
                if incremental:
                    record = previous_publish(kept, target=settings.warehouse_display, schema=schema)
                    if record is not None and _postgres_unchanged_since(engine, schema, record):
                        previous, churn = kept, record.get("churn", {})
                built = _build(settings, engine, schema, as_of, rebuild, previous, churn)
                forget_record(kept)
                xid = _load(engine, built, schema=schema, before_commit=before_commit, lock_timeout=lock_timeout)
                keep_build(settings, built)
                _record(settings, built, schema, None, xid, churn)
            con.autocommit = False
        return schema, built
    finally:
        engine.dispose()
        if built is not None:
            shutil.rmtree(built.directory, ignore_errors=True)


def publish(
    settings: Settings,
    *,
    as_of: AsOf | dt.date | dt.datetime,
    schema: str | None = None,
    before_commit: BeforeCommit | None = None,
    lock_wait_seconds: float = PUBLISH_LOCK_WAIT_SECONDS,
    lock_timeout: str = SWAP_LOCK_TIMEOUT,
    rebuild: Collection[str] | None = None,
    incremental: bool = True,
) -> PublishResult:
    """Build every table and mart from DATA_DIR and publish them to the warehouse at once.

    `as_of` is the run's instant; its Beijing date dates the age bands and closes the history
    of organizations that no longer exist. `schema` defaults to the target's own (DuckDB
    `main`, PostgreSQL the connection's current schema, normally `public`). Another publish
    to the same warehouse is waited for `lock_wait_seconds` at most (then `LockBusy`);
    on PostgreSQL each table lock is waited for `lock_timeout` at most (then `LockBusy`).
    `rebuild` names the only tables to build and load, the others carried from the last
    publish's files (`published_build_dir`): for a caller that knows the inputs are those of
    the last publish and only the date moved (build.date_dependent); every table is built
    when those files are incomplete. `incremental` (DuckDB and PostgreSQL): tables are
    compared with the last publish's files and only what changed is loaded (delta.py),
    when the record of that publish says the warehouse holds them; False loads every table.
    """
    ensure_publishable(settings)
    as_of = AsOf.of(as_of)
    remove_stale_builds(settings)
    url = make_url(settings.resolved_warehouse_url)
    if url.get_backend_name() == "duckdb" and url.database and url.database != ":memory:" \
            and not url.database.startswith(("md:", "motherduck:")):
        schema, built = _publish_to_duckdb(settings, url, schema, as_of, before_commit, lock_wait_seconds, rebuild,
                                           incremental)
    else:
        schema, built = _publish_to_server(
            settings, settings.resolved_warehouse_url, schema, as_of, before_commit,
            lock_wait_seconds, lock_timeout, rebuild, incremental,
        )
    crash_point("publish.done")
    log.info(
        "published %d tables to %s: %s",
        len(built.rows),
        settings.warehouse_display,
        ", ".join(f"{name}={count}" for name, count in built.rows.items()),
    )
    return PublishResult(
        warehouse=settings.warehouse_display,
        schema=schema,
        rows=built.rows,
        figures=built.figures,
        as_of=as_of,
        tables_built=list(built.files),
        loads=_loads(built),
    )


__all__ = [
    "DataDirUnwritable",
    "DevelopmentKeyRefused",
    "LockBusy",
    "DeltaMismatch",
    "PublishRefused",
    "PublishResult",
    "is_local_warehouse",
    "load_files",
    "publish",
]
