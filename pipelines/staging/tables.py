"""One canonical table from every stream that feeds it: staged rows, quarantine, accounting.

For each stream of the table (schemas/mapping/*.yaml), chunk by chunk (so 5M rows never sit
in pandas at once): the latest version of each landed row (`extract.raw_batches`), onto the
canonical model (`adapter.map_chunk`), judged (`pipelines/quality/rules.py`); kept rows
stream into `DATA_DIR/staged/<table>.parquet`, rejected ones into this table's quarantine
part. Nothing is dropped: for each stream and each sync,

    rows landed = staged + quarantined + superseded (older versions of rows landed again)

and `StagedResult.accounting` says so, per stream and per sync, for the run metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.clock import AsOf
from pipelines.config import Settings
from pipelines.files import atomic_path, parquet_writer, private_dir, write_parquet
from pipelines.quality import quarantine as quarantine_rows
from pipelines.quality.rules import RuleInputs, evaluate, future_verdicts_change_at, soft_flag_masks
from pipelines.schemas import StreamMapping, arrow_schema, mappings_for_table, table_names, table_spec
from pipelines.staging.adapter import map_chunk
from pipelines.staging.extract import raw_batches

log = logging.getLogger("pipelines.staging")

DEFAULT_CHUNK_ROWS = 200_000
QUARANTINE_FILE = "quarantine.parquet"
QUARANTINE_PARTS_DIR = "quarantine"
LEDGER_DIR = "staging_ledger"


@dataclass
class StagedResult:
    """What staging one table produced; counts are safe for run metadata (no personal data)."""

    table: str
    entity: str
    path: Path
    rows: int = 0
    rows_per_source: dict[str, int] = field(default_factory=dict)
    deleted_rows: int = 0
    quarantine: pd.DataFrame = field(default_factory=quarantine_rows.empty_quarantine)
    quarantined_per_rule: dict[str, int] = field(default_factory=dict)
    soft_flags: dict[str, int] = field(default_factory=dict)
    superseded_duplicates: int = 0
    # "<source>/<stream>" -> {sync id -> {landed, staged, quarantined, superseded}}
    accounting: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    as_of: AsOf | None = None
    frame: pd.DataFrame | None = None
    # the first instant after `as_of` at which a row would be judged differently (a date
    # stops being in the future, a birth date is lived): None when none would
    changes_at: pd.Timestamp | None = None
    # merged into the last staging (incremental.py) rather than staged in full, and the
    # rows mapped and judged to do so; else why not (no row named)
    incremental: bool = False
    restaged: int = 0
    why_in_full: str | None = None
    # after a merge, the suite's columns of the staged rows it took out (replaced or gone)
    # and of those it put in: a few rows, from which the suite's counts are carried
    removed_rows: pa.Table | None = None
    added_rows: pa.Table | None = None

    @property
    def quarantined(self) -> int:
        return len(self.quarantine)

    def read(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The staged table as written (all rows: live and deleted)."""
        return pq.read_table(self.path, columns=columns).to_pandas()

    def balanced(self) -> bool:
        """Whether every landed row of every stream and sync is staged, quarantined or
        superseded."""
        return all(
            counts["landed"] == counts["staged"] + counts["quarantined"] + counts["superseded"]
            for syncs in self.accounting.values() for counts in syncs.values()
        )


# -- places -------------------------------------------------------------------------------


def staged_path(settings: Settings, table: str) -> Path:
    return settings.staged_dir / f"{table}.parquet"


def quarantine_path(settings: Settings) -> Path:
    return settings.staged_dir / QUARANTINE_FILE


def quarantine_part_path(settings: Settings, table: str) -> Path:
    return settings.staged_dir / QUARANTINE_PARTS_DIR / f"{table}.parquet"


def ledger_path(settings: Settings, table: str) -> Path:
    """Which landed row each staged and quarantined row of the table is (incremental.py)."""
    return settings.state_dir / LEDGER_DIR / f"{table}.parquet"


def read_staged(settings: Settings, table: str, columns: list[str] | None = None) -> pd.DataFrame:
    """A staged table as pandas (an empty frame of the canonical schema if never staged)."""
    path = staged_path(settings, table)
    if not path.exists():
        return arrow_schema(table).empty_table().to_pandas()
    return pq.read_table(path, columns=columns).to_pandas()


def read_staged_head(settings: Settings, table: str, rows: int) -> pd.DataFrame:
    """The first `rows` rows of a staged table, reading one batch, not the file (a preview of
    4M services must not load them all)."""
    path = staged_path(settings, table)
    if not path.exists():
        return arrow_schema(table).empty_table().to_pandas()
    batch = next(pq.ParquetFile(path).iter_batches(batch_size=rows), None)
    if batch is None:
        return arrow_schema(table).empty_table().to_pandas()
    return pa.Table.from_batches([batch]).to_pandas()


def read_quarantine(settings: Settings, path: Path | None = None) -> pd.DataFrame:
    """The combined quarantine (or one table's part), empty if never written."""
    path = path or quarantine_path(settings)
    if not path.exists():
        return quarantine_rows.empty_quarantine()
    return pq.read_table(path).to_pandas()


# -- canonical frames as Arrow --------------------------------------------------------------


def _column_to_arrow(values: pd.Series, arrow_type: pa.DataType) -> pa.Array:
    if pa.types.is_date32(arrow_type):
        stamps = pd.to_datetime(values, errors="coerce")
        if isinstance(stamps.dtype, pd.DatetimeTZDtype):
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        return pa.array(stamps.dt.normalize(), from_pandas=True).cast(pa.timestamp("us")).cast(arrow_type)
    if pa.types.is_timestamp(arrow_type):
        return pa.array(pd.to_datetime(values, errors="coerce", utc=True), from_pandas=True).cast(arrow_type)
    if pa.types.is_boolean(arrow_type):
        return pa.array(values.astype("boolean"), from_pandas=True, type=arrow_type)
    if pa.types.is_integer(arrow_type):
        return pa.array(pd.to_numeric(values, errors="coerce").astype("Int64"), from_pandas=True, type=arrow_type)
    if pa.types.is_floating(arrow_type):
        return pa.array(pd.to_numeric(values, errors="coerce").astype("float64"), from_pandas=True, type=arrow_type)
    if pa.types.is_string(arrow_type):
        if pd.api.types.is_string_dtype(values.dtype) and values.dtype != object:
            return pa.array(values, from_pandas=True, type=arrow_type)
        text = values.astype(object).where(values.notna(), None)
        return pa.array(text.map(lambda v: v if v is None or isinstance(v, str) else str(v)), type=arrow_type)
    return pa.array(values, from_pandas=True, type=arrow_type)


def frame_to_arrow(frame: pd.DataFrame, table: str) -> pa.Table:
    """A canonical frame as an Arrow table of exactly the canonical schema."""
    schema = arrow_schema(table)
    arrays = [
        _column_to_arrow(frame[f.name] if f.name in frame else pd.Series(np.nan, index=frame.index), f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


# -- one table ----------------------------------------------------------------------------


def _add_counts(total: dict[str, int], more: dict[str, int]) -> None:
    for name, count in more.items():
        total[name] = total.get(name, 0) + int(count)


def _source_fields(mapping: StreamMapping) -> dict[str, str]:
    """Canonical column -> source field, for details."""
    named = {"source_id": mapping.source_id_field}
    named.update({column: spec["field"] for column, spec in mapping.columns.items() if spec.get("field")})
    return named


LEDGER_SCHEMA = pa.schema([
    pa.field("ordinal", pa.int64()),  # the stream's place among the table's mappings
    pa.field("id", pa.string()),  # the landed row id (`__id`): the staged order within a stream
    pa.field("filename", pa.string()),  # which landed row: page file and row in it
    pa.field("file_row", pa.int64()),
    pa.field("source_key", pa.string()),
    pa.field("key_versions", pa.int64()),
    pa.field("sync_id", pa.string()),
    pa.field("quarantined", pa.bool_()),
    pa.field("flags", pa.string()),  # soft flags of a staged row, comma-separated
    # a quarantined row's quarantine entry before `carry_first_seen`
    pa.field("q_source_id", pa.string()),
    pa.field("q_rule", pa.string()),
    pa.field("q_detail", pa.string()),
    pa.field("q_record", pa.string()),
    pa.field("q_seen_at", pa.timestamp("us", tz="UTC")),
])


def joined_flags(flags: list[tuple[str, pd.Series]], index: pd.Index) -> pd.Series:
    """Each row's soft flags, their names joined by commas in `flags`' order (None for a row
    with none). Made once per distinct combination of flags (a chunk holds a few dozen), not
    by adding strings row by row (a Python operation per row and flag)."""
    names = [name for name, _ in flags]
    if not names:
        return pd.Series(np.full(len(index), None, dtype=object), index=index, dtype=object)
    bits = np.column_stack([mask.fillna(False).to_numpy(dtype=bool) for _, mask in flags])
    packed = np.packbits(bits, axis=1)  # each row's flags as bytes: one comparable value a row
    rows = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    joined = [",".join(names[flag] for flag in np.flatnonzero(bits[row])) or None for row in first]
    return pd.Series(np.array(joined, dtype=object)[inverse.ravel()], index=index, dtype=object)


def ledger_rows(
    raw: pd.DataFrame, ordinal: int, rejected: pd.Series, flags: list[tuple[str, pd.Series]],
    quarantined: pd.DataFrame,
) -> pd.DataFrame:
    """One ledger row per row of a staged chunk (in the chunk's order): which landed row it
    is and what staging made of it, so a later staging can keep it without reading it."""
    ledger = pd.DataFrame({
        "ordinal": ordinal,
        "id": raw["__id"].astype(str),
        "filename": raw["__filename"].astype(str),
        "file_row": raw["__file_row"].astype("int64"),
        "source_key": raw["__source_key"].where(raw["__source_key"].notna(), "#" + raw["__id"].astype(str)),
        "key_versions": raw["__key_versions"].astype("int64"),
        "sync_id": raw["__sync_id"].astype(str),
        "quarantined": rejected.to_numpy(dtype=bool),
        "flags": joined_flags(flags, raw.index),
    }, index=raw.index)
    for column in ("source_id", "rule", "detail", "record"):
        ledger["q_" + column] = pd.Series(None, index=raw.index, dtype=object)
        if len(quarantined):
            ledger.loc[rejected, "q_" + column] = quarantined[column].astype(object).to_numpy()
    ledger["q_seen_at"] = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[us, UTC]")
    if len(quarantined):
        ledger.loc[rejected, "q_seen_at"] = pd.to_datetime(quarantined["first_seen_at"], utc=True).to_numpy()
    return ledger.reset_index(drop=True)


def ledger_table(part: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(part, schema=LEDGER_SCHEMA, preserve_index=False)


@contextmanager
def ledger_writer(path: Path) -> Iterator[pq.ParquetWriter]:
    """A writer of the ledger at `path`, put in place (atomically, pipelines/files.py) when
    the block ends without an error: a staging writes each chunk's ledger rows as it goes."""
    private_dir(path.parent)
    with atomic_path(path) as temp, parquet_writer(temp, LEDGER_SCHEMA) as writer:
        yield writer


class _Staging:
    """The work of one `stage_table` call, chunk by chunk."""

    def __init__(self, table: str, settings: Settings, as_of: AsOf, result: StagedResult):
        self.table, self.settings, self.as_of, self.result = table, settings, as_of, result
        self.entity = table_spec(table).entity
        self.quarantine_parts: list[pd.DataFrame] = []
        # the ledger's rows: written to `ledger_writer` chunk by chunk when there is one (a full
        # staging: 4M service rows' ledger never sits in memory), else kept (a merge's few rows)
        self.ledger_parts: list[pa.Table] = []
        self.ledger_writer: pq.ParquetWriter | None = None

    def chunks(self, chunk_rows: int) -> Iterator[pa.Table]:
        for ordinal, mapping in enumerate(mappings_for_table(self.table)):
            stream = f"{mapping.source}/{mapping.stream}"
            kept_per_sync: dict[str, dict[str, int]] = {}
            versions: dict[str, tuple[int, int]] = {}
            for raw in raw_batches(mapping, self.settings, chunk_rows, keep_identities=True, versions=versions):
                yield self.chunk(raw, mapping, kept_per_sync, ordinal)
            self.result.accounting[stream] = self.account(versions, kept_per_sync)
            self.result.rows_per_source.setdefault(mapping.source, 0)

    def chunk(
        self, raw: pd.DataFrame, mapping: StreamMapping, kept_per_sync: dict, ordinal: int = 0
    ) -> pa.Table:
        mapped = map_chunk(raw, mapping, self.settings, self.as_of)
        canonical = mapped.canonical
        inputs = RuleInputs(
            table=self.table, as_of=self.as_of.utc, failed=mapped.failed,
            problems=mapped.problems, fields=_source_fields(mapping),
        )
        verdict = evaluate(canonical, inputs)
        self.note_change_at(mapped.changes_at)
        self.note_change_at(future_verdicts_change_at(canonical, inputs))
        # a deleted row without its key cannot be told apart from another: it is quarantined
        keyless = canonical["source_id"].isna() & verdict["rule"].isna()
        verdict.loc[keyless, "rule"] = "missing_required"
        verdict.loc[keyless, "detail"] = f"missing {inputs.named('source_id')}"
        rejected = verdict["rule"].notna()
        quarantined = quarantine_rows.empty_quarantine()
        if rejected.any():
            quarantined = quarantine_rows.build_rows(
                source=mapping.source, entity=self.entity,
                source_ids=canonical.loc[rejected, "source_id"].fillna(raw.loc[rejected, "__id"]),
                rules=verdict.loc[rejected, "rule"], details=verdict.loc[rejected, "detail"],
                records=raw.loc[rejected, "__record"], seen_at=raw.loc[rejected, "__fetched_at"],
            )
            self.quarantine_parts.append(quarantined)
        kept = ~rejected
        kept_frame = canonical[kept]
        result = self.result
        # (name, rows) pairs: a name may come from the rules and the adapter both, and counts twice
        flags = [(name, mask.reindex(canonical.index, fill_value=False) & kept)
                 for name, mask in soft_flag_masks(kept_frame, inputs).items()]
        flags += [(name, mask & kept) for name, mask in mapped.soft_flags.items()]
        for name, mask in flags:
            _add_counts(result.soft_flags, {name: int(mask.sum())})
        part = ledger_table(ledger_rows(raw, ordinal, rejected, flags, quarantined))
        if self.ledger_writer is not None:
            self.ledger_writer.write_table(part)
        else:
            self.ledger_parts.append(part)
        result.superseded_duplicates += int((raw.loc[kept, "__key_versions"] > 1).sum())
        result.rows_per_source[mapping.source] = result.rows_per_source.get(mapping.source, 0) + int(kept.sum())
        result.deleted_rows += int(kept_frame["is_deleted"].sum())
        sync_ids = raw["__sync_id"].astype(str)
        for outcome, mask in (("staged", kept), ("quarantined", rejected)):
            _add_counts(kept_per_sync.setdefault(outcome, {}), sync_ids[mask].value_counts().to_dict())
        # staging by prefecture (partitions.py) puts rows back in the whole order by these
        self.kept_positions = kept_frame.index
        return frame_to_arrow(kept_frame, self.table)

    def note_change_at(self, instant: pd.Timestamp | None) -> None:
        if instant is not None and not pd.isna(instant):
            current = self.result.changes_at
            self.result.changes_at = instant if current is None else min(current, instant)

    def account(self, versions: dict[str, tuple[int, int]], kept_per_sync: dict) -> dict[str, dict[str, int]]:
        """Per sync: rows landed, and where each went (counted apart, so they can disagree);
        `versions`: {sync id: (rows landed, rows read)}, `extract.versions_per_sync`'s."""
        counts = {}
        for sync_id, (landed, latest) in versions.items():
            counts[sync_id] = {
                "landed": landed,
                "staged": kept_per_sync.get("staged", {}).get(sync_id, 0),
                "quarantined": kept_per_sync.get("quarantined", {}).get(sync_id, 0),
                "superseded": landed - latest,
            }
        return counts


def _previous_quarantine(settings: Settings, table: str, entity: str) -> pd.DataFrame | None:
    part = quarantine_part_path(settings, table)
    if part.exists():
        return read_quarantine(settings, part)
    previous = read_quarantine(settings)
    return previous[previous["entity"] == entity] if len(previous) else None


def stage_table(
    table: str,
    settings: Settings,
    as_of: AsOf | datetime,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    return_frame: bool = False,
) -> StagedResult:
    """Build `DATA_DIR/staged/<table>.parquet` and this table's quarantine part from raw.

    `as_of` is the run's instant: a date after it is a `future_date`, a birth date after it
    is not real.
    """
    spec = table_spec(table)
    as_of = AsOf.of(as_of)
    result = StagedResult(table=table, entity=spec.entity, path=staged_path(settings, table), as_of=as_of)
    staging = _Staging(table, settings, as_of, result)
    # the ledger is put in place with the staged table, before the quarantine part: a run
    # stopped in between leaves parts that do not add up, and the next one stages in full
    # (incremental._check_previous; the staging's reuse record is already forgotten)
    with ledger_writer(ledger_path(settings, table)) as staging.ledger_writer:
        result.rows = write_parquet(result.path, staging.chunks(chunk_rows), arrow_schema(table))
    staging.ledger_writer = None
    result.soft_flags = {name: count for name, count in sorted(result.soft_flags.items()) if count}

    current = (
        pd.concat(staging.quarantine_parts, ignore_index=True)
        if staging.quarantine_parts
        else quarantine_rows.empty_quarantine()
    )
    current = quarantine_rows.carry_first_seen(current, _previous_quarantine(settings, table, spec.entity))
    current = quarantine_rows.sort_rows(current)
    write_parquet(quarantine_part_path(settings, table), quarantine_rows.to_arrow(current))
    result.quarantine = current
    result.quarantined_per_rule = quarantine_rows.counts_per_rule(current)
    if return_frame:
        result.frame = result.read()
    log.info(
        "staged %s: %d rows (%s), %d quarantined %s",
        table, result.rows, result.rows_per_source, result.quarantined, result.quarantined_per_rule,
    )
    return result


def combine_quarantine(settings: Settings, tables: list[str] | None = None) -> pd.DataFrame:
    """Stack the tables' quarantine parts into `DATA_DIR/staged/quarantine.parquet`."""
    parts = [read_quarantine(settings, quarantine_part_path(settings, table)) for table in tables or table_names()]
    parts = [part for part in parts if len(part)]
    combined = pd.concat(parts, ignore_index=True) if parts else quarantine_rows.empty_quarantine()
    combined = quarantine_rows.sort_rows(combined)
    write_parquet(quarantine_path(settings), quarantine_rows.to_arrow(combined))
    return combined


def stage_all(settings: Settings, as_of: AsOf | datetime, **options: Any) -> dict[str, StagedResult]:
    """Stage every canonical table with one `as_of`, then combine the quarantine."""
    results = {table: stage_table(table, settings, as_of, **options) for table in table_names()}
    combine_quarantine(settings)
    return results
