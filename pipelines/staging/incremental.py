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
* every page it read is still there, unchanged (pages are only ever added).

The merge (`merge_stage`) runs the dedup of `extract.py` over every page, identity columns
only (the same scan the accounting already makes; no field is read): the staged row of each
key, exactly as a full staging picks it, whatever order versions came in (a re-sent older
version fetched later wins there, so it wins here). Rows whose winner is the one the ledger
names are kept; the others are read from their pages, mapped and judged (`_Staging.chunk`, the
full staging's code), and everything is put back in the full staging's order. Accounting is
counted from the ledger and the landed pages, as a full staging counts it. Anything that does
not add up raises `IncrementalUnavailable`, and the caller restages in full.

What is not exact: `changes_at` (when a verdict would change) is the earlier of the previous
staging's and the restaged rows', an instant at or before the full staging's, so a later run
restages in full a little early, never late.
"""

from __future__ import annotations

import logging
from collections import Counter
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
from pipelines.quality import quarantine as quarantine_rows
from pipelines.reuse import ReuseRecord, files_manifest
from pipelines.schemas import arrow_schema, mappings_for_table, table_spec
from pipelines.staging.extract import landed_per_sync, picked_batches, stream_winners
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
    ledger_table,
    write_ledger,
)

log = logging.getLogger("pipelines.staging")

BASIS_KEY = "incremental"  # where a staging record keeps what the next merge needs
# Above this share of rows changed a merge costs more than it saves (a full_refresh re-pull
# lands every row again): restage in full.
MAX_CHANGED_SHARE = 0.5
# What tells a staged row's landed version apart: the same key, the same landed row
IDENTITY = ["ordinal", "id", "filename", "file_row", "key_versions"]


class IncrementalUnavailable(Exception):
    """A merge cannot be trusted to equal a full staging; the reason names no row."""


def basis(base_fingerprint: str, pages: list) -> dict[str, Any]:
    """What a staging record keeps for the next merge: the code/settings fingerprint (inputs
    aside) and the manifest of the pages read."""
    return {"base": base_fingerprint, "pages": pages}


def _page_set(pages: list) -> set[tuple]:
    return {tuple(entry) for stream in pages for entry in stream}


def why_not_incremental(
    record: ReuseRecord | None, base_fingerprint: str, pages_now: list, as_of: AsOf
) -> str | None:
    """None when the last staging may be merged with the new pages; else why not."""
    if record is None:
        return "no previous staging"
    kept = (record.report or {}).get(BASIS_KEY)
    if not kept:
        return "the previous staging kept no ledger"
    if kept.get("base") != base_fingerprint:
        return "code or settings changed"
    if not record.holds_at(as_of):
        return "the instant is outside the previous staging's window"
    if files_manifest(Path(p[0]) for p in record.outputs) != sorted(record.outputs):
        return "the staged files changed since"
    before, now = _page_set(kept.get("pages") or []), _page_set(pages_now)
    if not before <= now:
        return f"{len(before - now)} page files read before changed or disappeared"
    if before == now:
        return "no new pages"  # (the reuse check skips the step; here if it could not)
    return None


def stage_table_or_merge(
    table: str,
    settings: Settings,
    as_of: AsOf,
    *,
    previous: ReuseRecord | None,
    base_fingerprint: str,
    pages: list,
    allow: bool = True,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> StagedResult:
    """Merge the new pages into the last staging when that equals a full staging; otherwise
    (or when `allow` is false: a run with reuse off) stage in full. `result.incremental`
    says which; `result.restaged` counts the rows mapped and judged."""
    reason = why_not_incremental(previous, base_fingerprint, pages, as_of) if allow else "reuse off"
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
    return result


def _read_previous(settings: Settings, table: str) -> tuple[pd.DataFrame, pa.Table]:
    ledger = pq.read_table(ledger_path(settings, table), schema=LEDGER_SCHEMA).to_pandas()
    staged = pq.read_table(staged_path(settings, table))
    if int((~ledger["quarantined"]).sum()) != staged.num_rows:
        raise IncrementalUnavailable(
            f"ledger names {int((~ledger['quarantined']).sum())} staged rows, the file holds {staged.num_rows}"
        )
    in_part = pq.read_metadata(quarantine_part_path(settings, table)).num_rows
    if int(ledger["quarantined"].sum()) != in_part:
        raise IncrementalUnavailable(
            f"ledger names {int(ledger['quarantined'].sum())} quarantined rows, the part holds {in_part}"
        )
    return ledger, staged


def _winners(table: str, settings: Settings) -> pd.DataFrame:
    parts = []
    for ordinal, mapping in enumerate(mappings_for_table(table)):
        found = stream_winners(mapping, settings)
        found.insert(0, "ordinal", ordinal)
        parts.append(found)
    winners = pd.concat(parts, ignore_index=True)
    return winners.astype({"ordinal": "int64", "id": str, "filename": str, "file_row": "int64",
                           "key_versions": "int64", "source_key": str, "sync_id": str})


def _found_in(frame: pd.DataFrame, other: pd.DataFrame) -> np.ndarray:
    """For each row of `frame`, whether `other` holds a row of the same identity (a missing
    id equal to a missing id). A semi join in DuckDB: pandas' MultiIndex.isin makes a Python
    tuple per row, gigabytes for the 4M services of 1M persons."""
    con = duckdb.connect()
    try:
        con.register("rows", frame[IDENTITY].assign(position=np.arange(len(frame), dtype="int64")))
        con.register("others", other[IDENTITY])
        same = " AND ".join(f"r.{c} IS NOT DISTINCT FROM o.{c}" for c in IDENTITY)
        found = con.execute(f"SELECT position FROM rows r SEMI JOIN others o ON {same}").fetchnumpy()["position"]
    finally:
        con.close()
    mask = np.zeros(len(frame), dtype=bool)
    mask[found] = True
    return mask


def _staged_order(ledger: pd.DataFrame) -> pa.Array:
    """Positions that put ledger rows in a full staging's order: stream, then row id (DuckDB
    `ORDER BY id`: bytewise, as Arrow sorts)."""
    keys = pa.table({"ordinal": pa.array(ledger["ordinal"], pa.int64()),
                     "id": pa.array(ledger["id"].astype(object), pa.string())})
    return pc.sort_indices(keys, sort_keys=[("ordinal", "ascending"), ("id", "ascending")])


def merge_stage(
    table: str,
    settings: Settings,
    as_of: AsOf,
    *,
    previous: ReuseRecord | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> StagedResult:
    """The last staging with the rows whose landed version changed restaged (module
    docstring); the same outputs and accounting as `stage_table`."""
    spec = table_spec(table)
    mappings = mappings_for_table(table)
    ledger, staged = _read_previous(settings, table)
    winners = _winners(table, settings)
    keep = _found_in(ledger, winners)
    picked = winners[~_found_in(winners, ledger)]
    if len(winners) and len(picked) > MAX_CHANGED_SHARE * len(winners):
        raise IncrementalUnavailable(f"{len(picked)} of {len(winners)} rows changed")

    result = StagedResult(table=table, entity=spec.entity, path=staged_path(settings, table), as_of=as_of)
    staging = _Staging(table, settings, as_of, result)
    new_tables = []
    for ordinal, mapping in enumerate(mappings):
        rows = picked[picked["ordinal"] == ordinal]
        for raw in picked_batches(mapping, settings, rows, chunk_rows):
            new_tables.append(staging.chunk(raw, mapping, {}, ordinal))
    new_ledger = (pa.concat_tables(staging.ledger_parts).to_pandas() if staging.ledger_parts
                  else LEDGER_SCHEMA.empty_table().to_pandas())
    if len(new_ledger) != len(picked):
        raise IncrementalUnavailable(f"{len(picked)} rows picked, {len(new_ledger)} read back")

    # the staged rows: those kept from the file, then the new ones; each ledger row knows
    # its place in that stack, and the full staging's order sorts both
    kept_before = ledger[keep].reset_index(drop=True)
    stacked = pa.concat_tables(
        [staged.filter(pa.array(keep[~ledger["quarantined"].to_numpy()]))]
        + [t.cast(staged.schema) for t in new_tables]
    )
    merged = pd.concat([kept_before, new_ledger], ignore_index=True)
    live = ~merged["quarantined"].to_numpy()
    merged["stack_position"] = -1
    merged.loc[live, "stack_position"] = range(int(live.sum()))
    merged = merged.take(_staged_order(merged).to_numpy()).reset_index(drop=True)
    staged_rows = merged[~merged["quarantined"]]
    ordered = stacked.take(pa.array(staged_rows["stack_position"].to_numpy(), pa.int64()))
    result.rows = write_parquet(result.path, ordered, arrow_schema(table))

    _merge_quarantine(settings, table, spec.entity, mappings, merged, result)
    _count(result, mappings, merged, ordered, settings)
    if previous is not None and previous.valid_until is not None:
        staging.note_change_at(pd.Timestamp(AsOf.parse(previous.valid_until).utc))
    private_dir(ledger_path(settings, table).parent)
    write_ledger(ledger_path(settings, table), [ledger_table(merged.drop(columns=["stack_position"]))])
    result.incremental = True
    result.restaged = len(picked)
    log.info(
        "staged %s incrementally: %d of %d rows restaged; %d rows (%s), %d quarantined %s",
        table, len(picked), len(merged), result.rows, result.rows_per_source,
        result.quarantined, result.quarantined_per_rule,
    )
    return result


def _merge_quarantine(settings: Settings, table: str, entity: str, mappings, merged: pd.DataFrame,
                      result: StagedResult) -> None:
    """The table's quarantine part as a full staging writes it: the entries in staged
    order, `first_seen_at` carried from the previous part, sorted."""
    rows = merged[merged["quarantined"]]
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


def _count(result: StagedResult, mappings, merged: pd.DataFrame, staged: pa.Table,
           settings: Settings) -> None:
    """Rows per source, deleted rows, superseded duplicates, soft flags and the accounting
    per stream and sync, counted as a full staging counts them."""
    kept = merged[~merged["quarantined"]]
    result.rows_per_source = {}
    result.accounting = {}
    for ordinal, mapping in enumerate(mappings):
        mine = merged[merged["ordinal"] == ordinal]
        staged_here = mine[~mine["quarantined"]]
        result.rows_per_source[mapping.source] = result.rows_per_source.get(mapping.source, 0) + len(staged_here)
        per_sync = {
            "staged": staged_here["sync_id"].value_counts().to_dict(),
            "quarantined": mine[mine["quarantined"]]["sync_id"].value_counts().to_dict(),
        }
        # the rows staging reads, per sync: the ledger's (`versions_per_sync` counts the same
        # from a second dedup over every page)
        read = mine["sync_id"].value_counts().to_dict()
        counts = {}
        for sync_id, landed in landed_per_sync(mapping, settings).items():
            latest = int(read.get(sync_id, 0))
            counts[sync_id] = {
                "landed": landed,
                "staged": int(per_sync["staged"].get(sync_id, 0)),
                "quarantined": int(per_sync["quarantined"].get(sync_id, 0)),
                "superseded": landed - latest,
            }
        result.accounting[f"{mapping.source}/{mapping.stream}"] = counts
    result.deleted_rows = int(pc.sum(staged["is_deleted"]).as_py() or 0) if staged.num_rows else 0
    result.superseded_duplicates = int((kept["key_versions"] > 1).sum())
    flags = Counter(name for text in kept["flags"].dropna() for name in str(text).split(","))
    result.soft_flags = {name: count for name, count in sorted(flags.items()) if count}
