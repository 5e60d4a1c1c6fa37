"""Incremental staging: after a sync that landed a few pages, map and judge only the rows
that changed, and keep every other staged and quarantined row as it was.

A full staging (`tables.stage_table`) leaves, next to its outputs, a ledger
(`DATA_DIR/state/staging_ledger/<table>.parquet`): one row per staged or quarantined row,
naming the landed row it is (page file and row in it, key versions), in the staged order,
with its outcome, its soft flags and, for a quarantined row, its quarantine entry. The next
staging of the table may merge instead of restaging when (`why_not_incremental`):

* the previous staging's record (pipelines/reuse.py) was made by the same code and settings,
  its outputs and ledger are untouched since, and the run's instant is inside its window
  (so every kept row would be mapped and judged the same today);
* every page it read is still there, unchanged (pages are only ever added): told per sync
  folder, by its time (`landing.sync_folders`, `landing.landed_since`).

The merge (`merge_stage`) reads only the new pages' records: their identity columns (row id,
fetch order, deleted flag, source key; kept per sync folder by `extract.identity_parts`, so a
page is read once) name the source keys they touch, and the dedup of `extract.py` runs over those keys
alone (`_winners`): the staged row of each, exactly as a full staging picks it, whatever order
versions came in (a re-sent older version fetched later wins there, so it wins here). Every
other key keeps the row the ledger names. Touched rows whose winner is the one the ledger
names are kept too; the others are read from their pages, mapped and judged
(`_Staging.chunk`, the full staging's code), and everything is put back in the full staging's
order. Accounting is counted from the ledger and the landed pages, as a full staging counts
it. Anything that does not add up raises `IncrementalUnavailable`, and the caller restages in
full.

Memory stays bounded at any size: the identities are joined and sorted in DuckDB (which
spills to disk past its memory limit); what Python holds is a few bytes per row (the merged
order) and the restaged rows; the previous staged table and ledger are read batch by batch
and written into the new ones as they are read (`_Forward`, `_interleaved`).

What is not exact: `changes_at` (when a verdict would change) is the earlier of the previous
staging's and the restaged rows', an instant at or before the full staging's, so a later run
restages in full a little early, never late.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.clock import AsOf
from pipelines.config import Settings
from pipelines.files import private_dir, write_parquet
from pipelines.landing import landed_since
from pipelines.quality import quarantine as quarantine_rows
from pipelines.quality.gx_runner import suite_columns
from pipelines.reuse import ReuseRecord, outputs_untouched
from pipelines.schemas import arrow_schema, mappings_for_table, table_spec
from pipelines.staging.extract import (
    IDENTITY_TYPED,
    connect,
    identity_parts,
    landed_per_sync,
    picked_batches,
    winners_of_identities_sql,
)
from pipelines.staging.tables import (
    DEFAULT_CHUNK_ROWS,
    LEDGER_SCHEMA,
    StagedResult,
    _previous_quarantine,
    _Staging,
    ledger_path,
    quarantine_part_path,
    stage_table,
    staged_path,
)

log = logging.getLogger("pipelines.staging")

BASIS_KEY = "incremental"  # where a staging record keeps what the next merge needs
# Above this share of rows changed a merge costs more than it saves (a full_refresh re-pull
# lands every row again): restage in full. Told first from the new pages' footers
# (`_a_re_pull`), then exactly by the merge (`_keep_and_pick`).
MAX_CHANGED_SHARE = 0.5
# What tells a staged row's landed version apart: the same key, the same landed row
IDENTITY = ["ordinal", "id", "filename", "file_row", "key_versions"]
WINNER_COLUMNS = ["ordinal", "id", "filename", "file_row", "key_versions", "source_key", "sync_id"]
# The ledger's columns of a few distinct values (a page's path, a sync's id: ~100 bytes a row
# as text), carried through a merge as the dictionaries Parquet stores them in: decoded,
# taken and encoded again as text they were half the cost of rewriting the ledger
LEDGER_DICTIONARY = ["filename", "sync_id"]
LEDGER_AS_READ = pa.schema([
    pa.field(f.name, pa.dictionary(pa.int32(), pa.string())) if f.name in LEDGER_DICTIONARY else f
    for f in LEDGER_SCHEMA
])


class IncrementalUnavailable(Exception):
    """A merge cannot be trusted to equal a full staging; the reason names no row."""


def basis(base_fingerprint: str, folders: list) -> dict[str, Any]:
    """What a staging record keeps for the next merge: the code/settings fingerprint (inputs
    aside) and the state of the sync folders it read (a `landing.sync_folders` per stream:
    a few numbers per sync, however many pages the landing zone keeps)."""
    return {"base": base_fingerprint, "folders": folders}


def pages_since(record: ReuseRecord, folders_now: list) -> list[str] | None:
    """The pages landed since the staging `record` describes (`landing.landed_since`, stream
    by stream); None when a folder it read changed or disappeared, or it kept no folders."""
    kept = ((record.report or {}).get(BASIS_KEY) or {}).get("folders")
    if kept is None or len(kept) != len(folders_now):
        return None
    new: list[str] = []
    for kept_stream, stream_now in zip(kept, folders_now):
        try:
            since = landed_since(kept_stream, stream_now)
        except (TypeError, ValueError):  # a record damaged or edited by hand: not trusted
            return None
        if since is None:
            return None
        new += since
    return new


def why_not_incremental(
    record: ReuseRecord | None, base_fingerprint: str, folders_now: list, as_of: AsOf
) -> str | None:
    """None when the last staging may be merged with the new pages; else why not."""
    return _merge_refusal(record, base_fingerprint, folders_now, as_of)[0]


def _merge_refusal(
    record: ReuseRecord | None, base_fingerprint: str, folders_now: list, as_of: AsOf
) -> tuple[str | None, list[str]]:
    """(why not, none when the merge may go ahead; the pages landed since, when told)."""
    if record is None:
        return "no previous staging", []
    kept = (record.report or {}).get(BASIS_KEY)
    if not kept or "folders" not in kept:
        return "the previous staging kept no ledger", []
    if kept.get("base") != base_fingerprint:
        return "code or settings changed", []
    if not record.holds_at(as_of):
        return "the instant is outside the previous staging's window", []
    if not outputs_untouched(record):
        return "the staged files changed since", []
    new = pages_since(record, folders_now)
    if new is None:
        return "a sync folder read before changed or disappeared", []
    if not new:
        return "no new pages", []  # (the reuse check skips the step; here if it could not)
    return None, new


def stage_table_or_merge(
    table: str,
    settings: Settings,
    as_of: AsOf,
    *,
    previous: ReuseRecord | None,
    base_fingerprint: str,
    folders: list,
    allow: bool = True,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> StagedResult:
    """Merge the new pages into the last staging when that equals a full staging; otherwise
    (or when `allow` is false: a run with reuse off) stage in full. `result.incremental`
    says which; `result.restaged` counts the rows mapped and judged."""
    reason, new_pages = _merge_refusal(previous, base_fingerprint, folders, as_of) if allow else ("reuse off", [])
    if reason is None:
        reason = _a_re_pull(settings, table, new_pages)
    if reason is None:
        try:
            return merge_stage(table, settings, as_of, previous=previous, chunk_rows=chunk_rows)
        except IncrementalUnavailable as unavailable:
            reason = str(unavailable)
        except Exception as failure:  # noqa: BLE001 - a full staging is always right
            # the type only: a message might quote a value
            reason = f"the merge failed ({type(failure).__name__})"
            log.warning("staging %s: %s; staging in full", table, reason)
    log.info("staging %s in full: %s", table, reason)
    result = stage_table(table, settings, as_of, chunk_rows=chunk_rows)
    result.restaged = result.rows + result.quarantined
    result.why_in_full = reason
    return result


def _a_re_pull(settings: Settings, table: str, new_pages: list[str]) -> str | None:
    """Why a merge would decline, told from the files' footers alone: the pages landed since
    the last staging hold more than `MAX_CHANGED_SHARE` as many rows as its ledger (a re-pull
    lands every row once again, each a new landed version to restage). The merge's own count
    (`_keep_and_pick`) is exact but comes after the dedup of every touched key, which for a
    re-pull is the whole stream: 36 s for the services at a million persons. None when the
    pages do not say (the merge's count then decides)."""
    try:
        landed = sum(pq.read_metadata(page).num_rows for page in new_pages)
        ledger_rows = pq.read_metadata(ledger_path(settings, table)).num_rows
    except (OSError, pa.ArrowException):
        return None
    if landed > MAX_CHANGED_SHARE * ledger_rows:
        return f"a re-pull: {landed} rows landed since the last staging, which staged or quarantined {ledger_rows}"
    return None


def _rows_of(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> int:
    return int(con.execute(sql, params or {}).fetchall()[0][0])  # fetched whole: the result is finished


def _check_previous(con: duckdb.DuckDBPyConnection, settings: Settings, table: str) -> None:
    """The ledger names as many staged and quarantined rows as the files hold (read from the
    files' metadata and the ledger's `quarantined` column, not the rows)."""
    quarantined = _rows_of(con, "SELECT count(*) FILTER (WHERE quarantined) FROM read_parquet($ledger)",
                           {"ledger": [str(ledger_path(settings, table))]})
    ledger_rows = pq.read_metadata(ledger_path(settings, table)).num_rows
    staged_rows = pq.read_metadata(staged_path(settings, table)).num_rows
    if ledger_rows - quarantined != staged_rows:
        raise IncrementalUnavailable(
            f"ledger names {ledger_rows - quarantined} staged rows, the file holds {staged_rows}")
    in_part = pq.read_metadata(quarantine_part_path(settings, table)).num_rows
    if quarantined != in_part:
        raise IncrementalUnavailable(f"ledger names {quarantined} quarantined rows, the part holds {in_part}")


def _winners(con: duckdb.DuckDBPyConnection, table: str, settings: Settings) -> None:
    """The temporary tables `touched` (ordinal, source_key: the keys whose staged row the new
    pages may change) and `winners` (the landed row a full staging picks for each touched key:
    `stream_winners`' dedup over their identities alone, kept in DuckDB, which spills).

    A key's staged row and version count are a function of the rows whose latest version
    carries it. A new page changes which those are only for the keys its rows carry and the
    keys any earlier version of the same row ids carried (a row can move to another key);
    every other key keeps the winner the ledger names. The dedup of the touched keys reads
    every version of every row id that ever carried one of them: exactly the versions it
    would read among all the stream's identities."""
    con.execute("""CREATE OR REPLACE TEMP TABLE winners (ordinal BIGINT, id VARCHAR, filename VARCHAR,
                   file_row BIGINT, key_versions BIGINT, source_key VARCHAR, sync_id VARCHAR)""")
    con.execute("CREATE OR REPLACE TEMP TABLE touched (ordinal BIGINT, source_key VARCHAR)")
    for ordinal, mapping in enumerate(mappings_for_table(table)):
        # the identities of the pages read before come from their parts: only new pages'
        # records are read (and make a new part)
        parts = identity_parts(con, mapping, settings)
        if parts is None or not parts[1]:
            continue  # nothing landed, or nothing new: every key of the stream is untouched
        everything = {"parts": parts[0] + parts[1]}
        con.execute("""CREATE OR REPLACE TEMP TABLE stream_touched AS
            SELECT DISTINCT source_key FROM read_parquet($parts)
            WHERE id IN (SELECT id FROM read_parquet($new))""", {**everything, "new": parts[1]})
        con.execute(f"""CREATE OR REPLACE TEMP TABLE identities AS
            SELECT {IDENTITY_TYPED} FROM read_parquet($parts)
            WHERE id IN (SELECT id FROM read_parquet($parts) SEMI JOIN stream_touched USING (source_key))""",
                    everything)
        con.execute(f"""INSERT INTO winners SELECT {int(ordinal)}, id, filename, file_row, key_versions,
                        source_key, sync_id FROM ({winners_of_identities_sql("identities")})
                        SEMI JOIN stream_touched USING (source_key)""")
        con.execute(f"INSERT INTO touched SELECT {int(ordinal)}, source_key FROM stream_touched")
    con.execute("DROP TABLE IF EXISTS identities")
    con.execute("DROP TABLE IF EXISTS stream_touched")


# every identity column is set on both sides (a row id without an id is named by its hash):
# plain equality, which DuckDB hashes
_SAME = " AND ".join(f"l.{c} = w.{c}" for c in IDENTITY)


def _keep_and_pick(con: duckdb.DuckDBPyConnection, settings: Settings, table: str) -> pd.DataFrame:
    """The temporary table `kept` (position, ordinal, id, quarantined of each ledger row whose
    landed row is still the one a full staging picks) and, returned, the winners the ledger
    does not hold (the rows to restage). A ledger row of an untouched key is kept as it is;
    the touched keys' winners are joined with their ledger rows (a landed row is at most one
    ledger row). Raises `IncrementalUnavailable` when more than `MAX_CHANGED_SHARE` of the
    rows a full staging stages or quarantines would be restaged (a re-pull of every row),
    counted before any row is fetched: at a million persons a re-pull's fetched winners held
    gigabytes in the staging child through the full staging that followed."""
    ledger = {"ledger": [str(ledger_path(settings, table))]}
    ledger_keys = f"""(SELECT file_row_number AS position, {', '.join(IDENTITY)}, source_key, quarantined
                      FROM read_parquet($ledger, file_row_number = true))"""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE matched AS
        SELECT w.*, l.position, l.quarantined
        FROM winners w LEFT JOIN (SELECT * FROM {ledger_keys} SEMI JOIN touched USING (ordinal, source_key)) l
        ON {_SAME}""", ledger)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE kept AS
        SELECT position, ordinal, id, quarantined FROM {ledger_keys} ANTI JOIN touched USING (ordinal, source_key)
        UNION ALL
        SELECT position, ordinal, id, quarantined FROM matched WHERE position IS NOT NULL""", ledger)
    restage = _rows_of(con, "SELECT count(*) FROM matched WHERE position IS NULL")
    winners = _rows_of(con, "SELECT count(*) FROM kept") + restage
    if winners and restage > MAX_CHANGED_SHARE * winners:
        raise IncrementalUnavailable(f"{restage} of {winners} rows changed")
    picked = con.execute(f"SELECT {', '.join(WINNER_COLUMNS)} FROM matched WHERE position IS NULL").df()
    con.execute("DROP TABLE matched")
    return picked


def _restage(staging: _Staging, mappings, picked: pd.DataFrame, chunk_rows: int) -> tuple[pa.Table, pa.Table]:
    """The picked rows read from their pages, mapped and judged as a full staging does: their
    staged rows and their ledger rows (each in the order read)."""
    new_tables = []
    for ordinal, mapping in enumerate(mappings):
        rows = picked[picked["ordinal"] == ordinal]
        for raw in picked_batches(mapping, staging.settings, rows, chunk_rows):
            new_tables.append(staging.chunk(raw, mapping, {}, ordinal))
    schema = arrow_schema(staging.table)
    staged = pa.concat_tables([t.cast(schema) for t in new_tables]) if new_tables else schema.empty_table()
    ledger = pa.concat_tables(staging.ledger_parts) if staging.ledger_parts else LEDGER_SCHEMA.empty_table()
    if ledger.num_rows != len(picked):
        raise IncrementalUnavailable(f"{len(picked)} rows picked, {ledger.num_rows} read back")
    return staged, ledger


def _order(con: duckdb.DuckDBPyConnection, new_ledger: pa.Table) -> dict[str, np.ndarray]:
    """The merged ledger's rows in a full staging's order (stream, then row id as DuckDB's
    `ORDER BY id` sorts it: the same engine and collation as `extract_sql`): for each, whether
    it is new (else kept from the previous ledger), its position in its source and whether it
    is quarantined. A few bytes a row; the sort spills to disk."""
    new_keys = pa.table({
        "position": pa.array(np.arange(new_ledger.num_rows, dtype="int64")),
        "ordinal": new_ledger["ordinal"], "id": new_ledger["id"], "quarantined": new_ledger["quarantined"],
    })
    con.register("new_keys", new_keys)
    order = con.execute("""
        SELECT is_new, position, quarantined FROM (
            SELECT false AS is_new, position, ordinal, id, quarantined FROM kept
            UNION ALL
            SELECT true, position, ordinal, id, quarantined FROM new_keys
        ) ORDER BY ordinal, id""").fetchnumpy()
    con.unregister("new_keys")
    return {name: np.asarray(values) for name, values in order.items()}


class _Forward:
    """Rows of a Parquet file taken by increasing positions, the file read once, batch by
    batch: never the whole file in memory. With `left_out` (a mask over the file's rows),
    the rows it marks are gathered as their batches go by (`columns_left_out` of them), so
    the rows a merge drops come out of the same read that copies the rows it keeps."""

    def __init__(self, path: Path, batch_rows: int, schema: pa.Schema, columns: list[str] | None = None,
                 left_out: np.ndarray | None = None, columns_left_out: list[str] | None = None,
                 read_dictionary: list[str] | None = None):
        self.file = pq.ParquetFile(path, read_dictionary=read_dictionary)
        self.batches = self.file.iter_batches(batch_size=batch_rows, columns=columns)
        self.schema = schema if columns is None else pa.schema([schema.field(c) for c in columns])
        self.buffer, self.start = self.schema.empty_table(), 0  # rows [start, start + len(buffer))
        self.read_rows = 0  # rows read from the file so far
        self.left_out_mask, self.columns_left_out = left_out, columns_left_out or self.schema.names
        self.left_out_parts = [self.schema.empty_table().select(self.columns_left_out)]

    def _read(self, batch: pa.RecordBatch) -> pa.Table:
        table = pa.Table.from_batches([batch]).cast(self.schema)
        if self.left_out_mask is not None:
            mask = self.left_out_mask[self.read_rows:self.read_rows + table.num_rows]
            if mask.any():
                self.left_out_parts.append(table.select(self.columns_left_out).filter(pa.array(mask)))
        self.read_rows += table.num_rows
        return table

    def _drop_before(self, first: int) -> None:
        drop = min(first - self.start, self.buffer.num_rows)
        if drop > 0:
            self.buffer, self.start = self.buffer.slice(drop), self.start + drop

    def span(self, first: int, last: int) -> pa.Table:
        """Rows [first, last], a slice of the buffer (no copy); `first` never decreases."""
        self._drop_before(first)
        while self.start + self.buffer.num_rows <= last:
            batch = next(self.batches)  # StopIteration: a position past the end is a bug
            self.buffer = pa.concat_tables([self.buffer, self._read(batch)])
            self._drop_before(first)
        return self.buffer.slice(first - self.start, last - first + 1)

    def left_out(self) -> pa.Table:
        """The rows `left_out` marks (the file's rest read first: rows after the last one
        taken), in the file's order."""
        for batch in self.batches:
            self._read(batch)
        return pa.concat_tables(self.left_out_parts)


def _interleaved(old: _Forward, new: pa.Table, is_new: np.ndarray, position: np.ndarray,
                 batch_rows: int) -> Iterator[pa.Table]:
    """The rows named by (is_new, position), in that order, `batch_rows` at a time: old rows
    from the previous file (their positions increase), new ones from `new`. One take a
    batch, from the span of the file the batch's old rows lie in (a slice, no copy) followed
    by its new rows: a change set keeps nearly every old row, and taking them apart first
    copied each row three times."""
    for begin in range(0, len(is_new), batch_rows):
        mine, where = is_new[begin:begin + batch_rows], position[begin:begin + batch_rows]
        old_where = where[~mine]
        first, last = (int(old_where[0]), int(old_where[-1])) if len(old_where) else (0, -1)
        kept = old.span(first, last) if len(old_where) else old.schema.empty_table()
        new_rows = new.take(pa.array(where[mine], pa.int64())).cast(old.schema)
        index = np.where(mine, kept.num_rows + np.cumsum(mine) - 1, where - first)
        yield pa.concat_tables([kept, new_rows]).take(pa.array(index, pa.int64()))


def _staged_positions(order: dict[str, np.ndarray], old_quarantined: np.ndarray,
                      new_quarantined: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is_new, position in its staged table) of the merged staged rows, in order: a ledger
    row's staged row is its rank among the staged (not quarantined) rows of its ledger."""
    old_rank = np.cumsum(~old_quarantined) - 1
    new_rank = np.cumsum(~new_quarantined) - 1
    live = ~order["quarantined"]
    is_new, position = order["is_new"][live], order["position"][live]
    ranked = np.where(is_new, new_rank[np.where(is_new, position, 0)] if len(new_rank) else 0,
                      old_rank[np.where(is_new, 0, position)] if len(old_rank) else 0)
    return is_new, ranked.astype("int64")


def _write_merged(result: StagedResult, new_staged: pa.Table, is_new: np.ndarray, position: np.ndarray,
                  suite_schema: pa.Schema, chunk_rows: int) -> int:
    """Write the merged staged table (the previous file's kept rows and the restaged ones,
    in order), in one read of the previous file: its rows the merge does not keep (replaced
    or gone) are gathered on the way (`result.removed_rows`, the suite's columns: what GX
    carries its counts by), and the deleted rows are counted as the batches go out. Returns
    the rows written."""
    schema = arrow_schema(result.table)
    left_out = np.ones(pq.read_metadata(result.path).num_rows, dtype=bool)
    left_out[position[~is_new]] = False
    old = _Forward(result.path, chunk_rows, schema, left_out=left_out, columns_left_out=suite_schema.names)
    result.deleted_rows = 0

    def batches() -> Iterator[pa.Table]:
        for batch in _interleaved(old, new_staged, is_new, position, chunk_rows):
            result.deleted_rows += int(pc.sum(batch["is_deleted"]).as_py() or 0)
            yield batch
        # the previous file's rest, read before the new one takes its name
        result.removed_rows = old.left_out().cast(suite_schema)

    return write_parquet(result.path, batches(), schema)


class _LedgerTally:
    """What a merge counts of its ledger as the merged ledger is written, batch by batch
    (`_count`): rows per stream, sync and outcome, staged rows with superseded versions,
    soft flags, and the quarantined rows' entries in order."""

    ENTRY_COLUMNS = ["ordinal", "q_source_id", "q_rule", "q_detail", "q_record", "q_seen_at"]

    def __init__(self) -> None:
        self.per_sync: dict[tuple[int, str, bool], int] = {}
        self.superseded = 0
        self.flags: dict[str, int] = {}
        self._entries = [LEDGER_SCHEMA.empty_table().select(self.ENTRY_COLUMNS)]

    def counting(self, batches: Iterator[pa.Table]) -> Iterator[pa.Table]:
        for batch in batches:
            self.add(batch)
            yield batch

    def add(self, batch: pa.Table) -> None:
        quarantined = batch["quarantined"]
        self._entries.append(batch.select(self.ENTRY_COLUMNS).filter(quarantined))
        groups = batch.select(["ordinal", "sync_id", "quarantined"]).group_by(
            ["ordinal", "sync_id", "quarantined"]).aggregate([([], "count_all")])
        for row in groups.to_pylist():
            key = (int(row["ordinal"]), str(row["sync_id"]), bool(row["quarantined"]))
            self.per_sync[key] = self.per_sync.get(key, 0) + int(row["count_all"])
        staged = pc.invert(quarantined)
        self.superseded += int(pc.sum(pc.and_(staged, pc.greater(batch["key_versions"], 1))).as_py() or 0)
        for combination in pc.value_counts(pc.filter(batch["flags"], staged).drop_null()).to_pylist():
            for flag in combination["values"].split(","):
                self.flags[flag] = self.flags.get(flag, 0) + int(combination["counts"])

    def entries(self) -> pa.Table:
        return pa.concat_tables(self._entries)


def merge_stage(
    table: str,
    settings: Settings,
    as_of: AsOf,
    *,
    previous: ReuseRecord | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> StagedResult:
    """The last staging with the rows whose landed version changed restaged (module
    docstring); the same outputs and accounting as `stage_table`. Out of core: the
    identities are joined and sorted in DuckDB (which spills), the previous staged table and
    ledger are streamed into the new ones a batch at a time."""
    spec = table_spec(table)
    mappings = mappings_for_table(table)
    con = connect(settings)
    try:
        _check_previous(con, settings, table)
        _winners(con, table, settings)
        picked = _keep_and_pick(con, settings, table)
        result = StagedResult(table=table, entity=spec.entity, path=staged_path(settings, table), as_of=as_of)
        staging = _Staging(table, settings, as_of, result)
        new_staged, new_ledger = _restage(staging, mappings, picked, chunk_rows)
        del picked
        order = _order(con, new_ledger)
    finally:
        con.close()
    previous_ledger = ledger_path(settings, table)
    old_quarantined = pq.read_table(previous_ledger, columns=["quarantined"])["quarantined"].to_numpy()
    new_quarantined = new_ledger["quarantined"].to_numpy(zero_copy_only=False)
    is_new, position = _staged_positions(order, old_quarantined, new_quarantined)
    del old_quarantined
    suite_schema = pa.schema([arrow_schema(table).field(column) for column in suite_columns(table)])
    result.added_rows = new_staged.select(suite_schema.names).cast(suite_schema)
    result.rows = _write_merged(result, new_staged, is_new, position, suite_schema, chunk_rows)
    del is_new, position, new_staged

    if previous is not None and previous.valid_until is not None:
        staging.note_change_at(pd.Timestamp(AsOf.parse(previous.valid_until).utc))
    private_dir(previous_ledger.parent)
    # the ledger before the quarantine part, whose entries its pass gathers: a run stopped in
    # between has forgotten the staging's record (assets/staged.py), and stages in full
    tally = _LedgerTally()
    old = _Forward(previous_ledger, chunk_rows, LEDGER_AS_READ, read_dictionary=LEDGER_DICTIONARY)
    # written as read, without the Arrow schema: read back, its columns are LEDGER_SCHEMA's
    merged_rows = write_parquet(previous_ledger, tally.counting(
        _interleaved(old, new_ledger, order["is_new"], order["position"], chunk_rows)), LEDGER_AS_READ,
        store_schema=False)
    del old, order
    _merge_quarantine(settings, table, spec.entity, mappings, tally.entries().to_pandas(), result)
    _count(result, mappings, settings, tally)
    result.incremental = True
    result.restaged = new_ledger.num_rows
    log.info(
        "staged %s incrementally: %d of %d rows restaged; %d rows (%s), %d quarantined %s",
        table, result.restaged, merged_rows, result.rows, result.rows_per_source,
        result.quarantined, result.quarantined_per_rule,
    )
    return result


def _merge_quarantine(settings: Settings, table: str, entity: str, mappings, rows: pd.DataFrame,
                      result: StagedResult) -> None:
    """The table's quarantine part as a full staging writes it: the entries (the quarantined
    ledger rows, in staged order), `first_seen_at` carried from the previous part, sorted."""
    sources = [m.source for m in mappings]
    current = quarantine_rows.empty_quarantine()
    if len(rows):
        seen = pd.to_datetime(rows["q_seen_at"], utc=True).to_numpy()
        current = pd.DataFrame({
            "source": [sources[o] for o in rows["ordinal"]],
            "entity": entity,
            "source_id": rows["q_source_id"].to_numpy(),
            "rule": rows["q_rule"].astype("string").to_numpy(),
            "detail": rows["q_detail"].astype("string").to_numpy(),
            "record": rows["q_record"].to_numpy(),
            "first_seen_at": seen,
            "last_seen_at": seen,
        })
    current = quarantine_rows.carry_first_seen(current, _previous_quarantine(settings, table, entity))
    current = quarantine_rows.sort_rows(current)
    write_parquet(quarantine_part_path(settings, table), quarantine_rows.to_arrow(current))
    result.quarantine = current
    result.quarantined_per_rule = quarantine_rows.counts_per_rule(current)


def _count(result: StagedResult, mappings, settings: Settings, tally: _LedgerTally) -> None:
    """Rows per source, superseded duplicates, soft flags and the accounting per stream and
    sync, counted as a full staging counts them: from the merged ledger, as it was written
    (`_LedgerTally`), and the landed rows per sync (the identities' parts)."""
    per_sync: dict[int, dict[str, dict[str, int]]] = {}
    for (ordinal, sync_id, quarantined), rows in tally.per_sync.items():
        outcome = "quarantined" if quarantined else "staged"
        per_sync.setdefault(ordinal, {}).setdefault(outcome, {})[sync_id] = rows
    result.superseded_duplicates = tally.superseded
    flags = tally.flags.items()
    result.rows_per_source = {}
    result.accounting = {}
    for ordinal, mapping in enumerate(mappings):
        mine = per_sync.get(ordinal, {})
        staged_here, quarantined_here = mine.get("staged", {}), mine.get("quarantined", {})
        result.rows_per_source[mapping.source] = (
            result.rows_per_source.get(mapping.source, 0) + sum(staged_here.values()))
        counts = {}
        for sync_id, landed in landed_per_sync(mapping, settings).items():
            # the rows staging reads, per sync: the ledger's (`versions_per_sync` counts the
            # same from a second dedup over every page)
            latest = staged_here.get(sync_id, 0) + quarantined_here.get(sync_id, 0)
            counts[sync_id] = {
                "landed": landed,
                "staged": staged_here.get(sync_id, 0),
                "quarantined": quarantined_here.get(sync_id, 0),
                "superseded": landed - latest,
            }
        result.accounting[f"{mapping.source}/{mapping.stream}"] = counts
    result.soft_flags = {name: int(count) for name, count in sorted(flags) if count}
