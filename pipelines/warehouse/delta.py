"""What a publish must change in the warehouse: per table, nothing, a delta or everything.

The last publish's files stay in `DATA_DIR/state/warehouse/published/` (publish.keep_build).
When that publish is known to be what the warehouse holds (`previous_publish`: a record
written after it, for this very target and table layout), each table the build makes again
is compared, row for row, with its file there (`diff_table`, in the build's own DuckDB):

* the same rows: **unchanged**. Not scanned, not loaded: the warehouse holds them already;
* a few rows differ, in a large table: a **delta**, the keys of the rows that went or
  changed (deleted) and the rows that came or changed (inserted), applied inside the
  publishing transaction (publish.py), and scanned for personal numbers before it;
* otherwise: **full**, replaced as before.

The comparison is on whole rows joined by key, exact (IS DISTINCT FROM: NULL equals NULL): after
deleting the keys of the old rows absent from the new table and inserting the new rows absent
from the old one, the table holds the new rows exactly, whatever changed. Without a usable
record (a first publish, a new `schemas/warehouse.yaml`, another warehouse, a publish that
died between its commit and its record, a DuckDB file written since) every table is full.

The record names no value: the target (password hidden), the schema, the spec's digest,
row counts, for DuckDB the file's identity (inode, size, modification time), for PostgreSQL
the publishing transaction's id (a row written after it shows a newer `xmin`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.files import fsync_path, write_text
from pipelines.sql import quote
from pipelines.warehouse.spec import WAREHOUSE_SPEC_PATH, Table

log = logging.getLogger(__name__)

RECORD_NAME = "publish.json"
# A table is loaded as a delta from this many rows on: below it a full load and scan cost
# next to nothing (the marts). The quarantine (26,483 rows at 1M) is above it: its raw records
# made its scan 3.3 of the publish's CPU seconds, and a change set changes a few hundred.
DELTA_MIN_ROWS = 10_000
# ... and while the rows it changes are at most this share of the table: past it, deleting
# and inserting cost more than loading the table afresh.
DELTA_MAX_SHARE = 0.25
# Deltas add up in the warehouse: DuckDB keeps deleted rows in their row groups and puts each
# night's inserted rows in small new ones; PostgreSQL's pages keep dead tuples until a vacuum.
# Once the rows a table's deltas changed since it was last loaded in full (inserted plus
# deleted, kept in the record as `churn`) pass this share of it, it is loaded in full that
# night, compact again. At 20,000 persons the DuckDB file was 25% larger than a fresh one
# after 12 nights of deltas without it, 20% after 30 nights with it (bench/nights.py; 0.05
# gave 10%). The 1M change set changes 1-2% of `fact_service` a night: reloaded every 5-10.
DELTA_CHURN_SHARE = 0.1

UNCHANGED, DELTA, FULL = "unchanged", "delta", "full"


@dataclass(frozen=True)
class TableChange:
    """How one built table reaches the warehouse. `inserts` holds the rows to insert (every
    column), `deletes` the keys of the rows to delete; both only for a delta."""

    kind: str
    rows: int  # the table's rows after the publish
    inserts: Path | None = None
    deletes: Path | None = None
    inserted: int = 0
    deleted: int = 0


def spec_digest() -> str:
    return hashlib.sha256(WAREHOUSE_SPEC_PATH.read_bytes()).hexdigest()


def duckdb_identity(database: Path) -> list[int] | None:
    """The DuckDB file as it stands (inode, size, modification time), or None when absent or
    a WAL beside it says a writer has been at it since."""
    wal = database.with_name(database.name + ".wal")
    if not database.exists() or wal.exists():
        return None
    stat = database.stat()
    return [stat.st_ino, stat.st_size, stat.st_mtime_ns]


def forget_record(kept: Path) -> None:
    """Before the warehouse changes: from here until `write_record`, the kept files may not
    be what the warehouse holds, so no later publish may take them as such."""
    record = kept / RECORD_NAME
    if record.exists():
        record.unlink()
        fsync_path(kept)


def write_record(kept: Path, *, target: str, schema: str | None, rows: dict[str, int],
                 duckdb_file: list[int] | None, xid: str | None = None,
                 churn: dict[str, int] | None = None) -> None:
    """After the warehouse committed and `kept` holds its files: they are what it holds.
    `xid`: PostgreSQL's id of the publishing transaction; `churn`: per table, the rows its
    deltas changed since it was last loaded in full (`churn_after`)."""
    write_text(kept / RECORD_NAME, json.dumps({
        "target": target, "schema": schema, "spec": spec_digest(), "rows": rows,
        "duckdb_file": duckdb_file, "xid": xid, "churn": churn or {},
    }, sort_keys=True))


def churn_after(churn: dict[str, int], changes: dict[str, TableChange], built: Collection[str],
                rows: dict[str, int]) -> dict[str, int]:
    """Per table, the rows its deltas changed since it was last loaded in full, after a publish
    that built the tables `built` (with `changes`; none: all in full): a delta adds its inserted
    and deleted rows, a full load starts again at 0, an unchanged table or one a date refresh
    carried (not built, not loaded) keeps its count."""
    after = {}
    for name in rows:
        change = changes.get(name)
        if name not in built or (change is not None and change.kind == UNCHANGED):
            after[name] = churn.get(name, 0)
        elif change is not None and change.kind == DELTA:
            after[name] = churn.get(name, 0) + change.inserted + change.deleted
    return {name: count for name, count in after.items() if count}


def previous_publish(kept: Path, *, target: str, schema: str | None,
                     duckdb_file: list[int] | None = None) -> dict | None:
    """The record of the last publish (its row counts `rows`, PostgreSQL's `xid`) when its
    files in `kept` may be what the warehouse `target` / `schema` holds, else None (and the
    log says why). On PostgreSQL the caller then asks the warehouse itself."""
    try:
        record = json.loads((kept / RECORD_NAME).read_text())
    except (OSError, ValueError):
        log.info("publish: no record of a complete last publish: every table loaded in full")
        return None
    why = None
    if record.get("target") != target or record.get("schema") != schema:
        why = "the last publish went to another warehouse"
    elif record.get("spec") != spec_digest():
        why = "schemas/warehouse.yaml changed since the last publish"
    elif record.get("duckdb_file") != duckdb_file:
        why = "the warehouse file was written since the last publish"
    elif not all((kept / f"{name}.parquet").is_file() for name in record.get("rows", {})):
        why = "the last publish's files are incomplete"
    if why:
        log.info("publish: %s: every table loaded in full", why)
        return None
    return record


def diff_table(con: duckdb.DuckDBPyConnection, table: Table, rows: int, previous: Path,
               out_dir: Path, churn: int = 0) -> TableChange:
    """Compare the built table `table` (in `con`, `rows` rows) with the file `previous` of the
    last publish; write the delta's files into `out_dir` when it is one. `churn`: the rows
    earlier deltas changed since the table was last loaded in full (DELTA_CHURN_SHARE)."""
    if not previous.is_file():
        return TableChange(FULL, rows)
    con.read_parquet([str(previous)]).create_view("_previous", replace=True)  # the path as data
    name = quote(table.name)
    try:
        if rows < DELTA_MIN_ROWS or not table.key:
            # small: loaded whole unless nothing changed (cheap to tell at this size)
            differs = con.execute(
                f"SELECT (SELECT count(*) FROM _previous) <> ? OR EXISTS "
                f"(SELECT * FROM {name} EXCEPT SELECT * FROM _previous)", [rows]
            ).fetchall()[0][0]
            return TableChange(FULL if differs else UNCHANGED, rows)
        # one join on the key, whole rows compared (exact, NULL equal to NULL): a third of the
        # cost of the two set differences, which hash every column of both sides
        columns = [quote(c) for c in table.column_names]
        keys = [quote(c) for c in table.key]
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _changed AS SELECT "
            + ", ".join(f"n.{k} AS new_{i}, o.{k} AS old_{i}" for i, k in enumerate(keys))
            + ", n._present AS in_new, o._present AS in_old "
            f"FROM (SELECT *, true AS _present FROM {name}) n "
            "FULL JOIN (SELECT *, true AS _present FROM _previous) o ON "
            + " AND ".join(f"n.{k} IS NOT DISTINCT FROM o.{k}" for k in keys)
            + " WHERE n._present IS NULL OR o._present IS NULL OR row("
            + ", ".join(f"n.{c}" for c in columns) + ") IS DISTINCT FROM row("
            + ", ".join(f"o.{c}" for c in columns) + ")"
        )
        inserted, deleted, null_keys = con.execute(
            "SELECT count(*) FILTER (in_new), count(*) FILTER (in_old), count(*) FILTER ("
            + " OR ".join(f"(in_new AND new_{i} IS NULL) OR (in_old AND old_{i} IS NULL)" for i in range(len(keys)))
            + ") FROM _changed"
        ).fetchall()[0]
        if not inserted and not deleted:
            return TableChange(UNCHANGED, rows)
        if null_keys or inserted + deleted > DELTA_MAX_SHARE * rows:
            return TableChange(FULL, rows)  # a NULL key matches no row by `=` in the target
        if churn > DELTA_CHURN_SHARE * rows:
            log.info("publish: %s: %d rows changed by deltas since its last full load: loaded in full",
                     table.name, churn)
            return TableChange(FULL, rows)
        out_dir.mkdir(mode=0o700, exist_ok=True)
        inserts, deletes = out_dir / f"{table.name}.inserts.parquet", out_dir / f"{table.name}.deletes.parquet"
        selects = {
            inserts: f"SELECT n.* FROM {name} n SEMI JOIN (SELECT * FROM _changed WHERE in_new) c ON "
                     + " AND ".join(f"n.{k} = c.new_{i}" for i, k in enumerate(keys)),
            deletes: "SELECT " + ", ".join(f"old_{i} AS {k}" for i, k in enumerate(keys))
                     + " FROM _changed WHERE in_old",
        }
        for path, select in selects.items():
            con.execute(f"COPY ({select}) TO ? (FORMAT parquet, COMPRESSION zstd)", [str(path)])
            os.chmod(path, 0o600)
        return TableChange(DELTA, rows, inserts, deletes, inserted, deleted)
    finally:
        con.execute("DROP TABLE IF EXISTS _changed")
        con.execute("DROP VIEW IF EXISTS _previous")
