"""Publish the built tables to the warehouse named by WAREHOUSE_URL, atomically.

Readers never see half a sync:

* DuckDB: every table is dropped, recreated and loaded (`read_parquet`, no Python rows) in
  ONE transaction; DuckDB's MVCC lets other connections read the previous version until the
  commit. (DuckDB has no `ALTER TABLE ... SET SCHEMA`; a single transaction is its swap.)
* PostgreSQL: every table is created and filled with COPY in a fresh schema
  `_staging_<token>`, invisible to readers; then one short transaction drops the old tables
  and moves the new ones in (`ALTER TABLE ... SET SCHEMA`). Readers hold the old tables until
  the swap commits; a failure anywhere leaves the old tables and drops the staging schema.
  Tables are replaced, not emptied: grants to reader roles belong in
  `ALTER DEFAULT PRIVILEGES`, and an analyst's view on a published table makes the swap fail
  (no CASCADE: the publish stops rather than drop somebody's view).
* Any other SQLAlchemy target (SQLite ...): drop, create and insert in batches, in one
  transaction.

Idempotent: the build writes the same files from the same inputs, and loading keeps their
row order, so a rerun with no change leaves every table's content identical. The
organization history is read back from the target before building, so it persists across
syncs with the warehouse itself.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa

from pipelines.clock import AsOf
from pipelines.config import Settings
from pipelines.guard import DevelopmentKeyRefused, ensure_publishable, is_local_warehouse  # noqa: F401
from pipelines.sql import literal, quote
from pipelines.warehouse.build import BuiltWarehouse, build_warehouse
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


def _publish_duckdb(
    engine: sa.Engine,
    schema: str,
    tables: list[Table],
    files: dict[str, Path],
    before_commit: BeforeCommit | None,
) -> None:
    raw = engine.raw_connection()
    try:
        con = raw.driver_connection
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
        con.execute("BEGIN TRANSACTION")
        try:
            for table in tables:
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


def _publish_postgres(
    engine: sa.Engine,
    schema: str,
    tables: list[Table],
    files: dict[str, Path],
    before_commit: BeforeCommit | None,
) -> None:
    staging = f"_staging_{uuid.uuid4().hex[:12]}"
    raw = engine.raw_connection()
    try:
        con = raw.driver_connection  # psycopg 3
        try:
            with con.transaction():
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
                con.execute(f"CREATE SCHEMA {quote(staging)}")
                for table in tables:
                    con.execute(_create_statement(staging, table, postgres_type))
                    column_list = ", ".join(quote(c) for c in table.column_names)
                    with con.cursor() as cursor:
                        with cursor.copy(
                            f"COPY {quote(staging)}.{quote(table.name)} ({column_list}) "
                            "FROM STDIN WITH (FORMAT csv)"
                        ) as copy:
                            for chunk in _csv_chunks(files[table.name], table):
                                copy.write(chunk)
                    for statement in _comment_statements(staging, table):
                        con.execute(statement)
            # the swap: short, and all or nothing
            with con.transaction():
                for table in tables:
                    con.execute(f"DROP TABLE IF EXISTS {quote(schema)}.{quote(table.name)}")
                    con.execute(
                        f"ALTER TABLE {quote(staging)}.{quote(table.name)} SET SCHEMA {quote(schema)}"
                    )
                con.execute(f"DROP SCHEMA {quote(staging)}")
                if before_commit:
                    before_commit()
        finally:
            con.rollback()  # nothing open after the blocks above; clears a failed state
            with con.transaction():
                con.execute(f"DROP SCHEMA IF EXISTS {quote(staging)} CASCADE")
            con.commit()
    finally:
        raw.close()


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
) -> None:
    """Replace the tables named in `files` (in that order) by their content, atomically."""
    spec = spec or load_spec()
    tables = [spec[name] for name in files]
    dialect = engine.dialect.name
    if dialect == "duckdb":
        _publish_duckdb(engine, schema or "main", tables, files, before_commit)
    elif dialect == "postgresql":
        _publish_postgres(engine, schema or "public", tables, files, before_commit)
    else:
        _publish_generic(engine, schema, tables, files, before_commit)


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


def build_dir(settings: Settings) -> Path:
    return settings.state_dir / "warehouse" / "build"


def publish(
    settings: Settings,
    *,
    as_of: AsOf | dt.date | dt.datetime,
    schema: str | None = None,
    before_commit: BeforeCommit | None = None,
) -> PublishResult:
    """Build every table and mart from DATA_DIR and publish them to the warehouse at once.

    `as_of` is the run's instant; its Beijing date dates the age bands and closes the history
    of organizations that no longer exist. `schema` defaults to the target's own (DuckDB
    `main`, PostgreSQL the connection's current schema, normally `public`).
    """
    ensure_publishable(settings)
    as_of = AsOf.of(as_of)
    engine = sa.create_engine(settings.resolved_warehouse_url)
    try:
        if engine.dialect.name == "duckdb":
            Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)
        schema = schema or default_schema(engine)
        previous = read_previous_history(engine, schema)
        built: BuiltWarehouse = build_warehouse(
            InputFiles(settings.resolved_dir, settings.staged_dir),
            build_dir(settings),
            as_of=as_of.date,
            previous_history=previous,
        )
        # the last line of defence: nothing shaped like a clear ID number or phone goes out
        ensure_no_personal_numbers(built.files)
        load_files(engine, built.files, schema=schema, before_commit=before_commit)
    finally:
        engine.dispose()
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
    )
