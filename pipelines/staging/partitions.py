"""Staging by prefecture: the staged layer's work spread over Guizhou's 9 prefectures.

The pulls stay whole (the provincial interface has no region filter; per-prefecture walks
of the national one would lose rows that move or carry retired or unusable codes, and cost
9 walks: docs/SCALING.md), so every partition reads every stream's landed pages, and the latest-version dedup (one DuckDB
query per stream, a small part of the cost) runs whole in each. The costly part — mapping,
normalizing and judging each row — runs in a partition only on the rows of its prefecture.

Rows are independent once the dedup has chosen them, so the 9 parts together hold exactly
the rows a whole staging holds, each once. Only the big tables are split
(PARTITIONED_TABLES). `combine_table` stacks them back in the whole staging's order (by stream, then the row's position in the dedup's output) and sums their
counts, so the staged files — and everything resolved and published from them — are the
ones `stage_table` writes. Resolution is not split: it reads the combined tables, so a
person registered in Guiyang on one system and in Zunyi on the other is still one person
(docs/SCALING.md says why resolution stays whole, and how it would be split at national
scale).

Which prefecture a row belongs to: the first four digits of its normalized region code
(retired codes mapped to their successors). A row without one (the streams that carry no
region, and rows whose region is missing or unusable) goes by a stable hash of its row id,
so that work spreads evenly too.
"""

from __future__ import annotations

import json
import zlib
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.clock import AsOf
from pipelines.config import Settings
from pipelines.files import write_parquet, write_text
from pipelines.normalize.regions import normalize_region
from pipelines.quality import quarantine as quarantine_rows
from pipelines.schemas import StreamMapping, arrow_schema, mappings_for_table, table_spec
from pipelines.staging.extract import raw_batches, versions_per_sync
from pipelines.staging.tables import (
    DEFAULT_CHUNK_ROWS,
    StagedResult,
    _previous_quarantine,
    _Staging,
    quarantine_part_path,
    stage_table,
    staged_path,
)

# The prefecture-level divisions of Guizhou (GB/T 2260): Guiyang, Liupanshui, Zunyi, Anshun,
# Bijie, Tongren, Qianxinan, Qiandongnan, Qiannan. A test holds them to the division table.
PREFECTURES = ("5201", "5202", "5203", "5204", "5205", "5206", "5223", "5226", "5227")
# The tables whose rows are split: the persons' accounts and their services are ~95% of
# the rows (the rest, teams, projects, stations, evaluations and redemptions, are staged
# whole by the combining step, where splitting would cost more in fixed per-part work than
# it saves).
PARTITIONED_TABLES = ("volunteers", "services")
PARTS_DIR = "prefectures"
STREAM_COLUMN, ORDINAL_COLUMN = "__stream", "__ordinal"


def part_dir(settings: Settings, prefecture: str) -> Path:
    return settings.staged_dir / PARTS_DIR / prefecture


def _part_files(settings: Settings, prefecture: str, table: str) -> tuple[Path, Path, Path]:
    folder = part_dir(settings, prefecture)
    return folder / f"{table}.parquet", folder / f"{table}.quarantine.parquet", folder / f"{table}.json"


def prefecture_of(raw: pd.DataFrame, mapping: StreamMapping) -> np.ndarray:
    """The prefecture (one of PREFECTURES) each extracted row is staged in."""
    by_hash = np.array(
        [PREFECTURES[zlib.crc32(str(row_id).encode()) % len(PREFECTURES)] for row_id in raw["__id"]],
        dtype=object,
    )
    region_field = mapping.columns.get("region_code", {}).get("field")
    if region_field is None or region_field not in raw:
        return by_hash
    values = raw[region_field]
    text = values.astype(object).where(values.notna(), None).map(
        lambda v: None if v is None or isinstance(v, (list, dict)) else str(v)
    )
    codes = normalize_region(text).astype(object)
    prefix = codes.where(codes.notna(), "").astype(str).str[:4].to_numpy(dtype=object)
    return np.where(np.isin(prefix, PREFECTURES), prefix, by_hash)


class _PrefectureStaging(_Staging):
    """`stage_table`'s work on one prefecture's rows; kept rows carry their place in the
    whole staging's order."""

    def __init__(self, table: str, settings: Settings, as_of: AsOf, prefecture: str):
        super().__init__(table, settings, as_of, StagedResult(table=table, entity=table_spec(table).entity,
                                                               path=_part_files(settings, prefecture, table)[0]))
        self.prefecture = prefecture
        self.kept_per_stream: dict[str, dict] = {}
        self.extracted_per_stream: dict[str, int] = {}

    def chunks(self, chunk_rows: int):
        for stream_index, mapping in enumerate(mappings_for_table(self.table)):
            stream = f"{mapping.source}/{mapping.stream}"
            kept_per_sync: dict[str, dict[str, int]] = {}
            position = 0
            for raw in raw_batches(mapping, self.settings, chunk_rows):
                # the index is the row's position in the stream's whole output, which the
                # adapter and the rules keep on every frame they build
                raw.index = pd.RangeIndex(position, position + len(raw))
                position += len(raw)
                mine = raw[prefecture_of(raw, mapping) == self.prefecture]
                if not len(mine):
                    continue
                kept = self.chunk(mine, mapping, kept_per_sync)
                ordinals = np.asarray(self.kept_positions, dtype=np.int64)
                yield (
                    kept.append_column(STREAM_COLUMN, pa.array(np.full(len(ordinals), stream_index, np.int16)))
                    .append_column(ORDINAL_COLUMN, pa.array(ordinals))
                )
            self.kept_per_stream[stream] = kept_per_sync
            self.extracted_per_stream[stream] = position
            self.result.rows_per_source.setdefault(mapping.source, 0)


def _part_schema(table: str) -> pa.Schema:
    return arrow_schema(table).append(pa.field(STREAM_COLUMN, pa.int16())).append(
        pa.field(ORDINAL_COLUMN, pa.int64())
    )


def stage_table_part(
    table: str, settings: Settings, as_of: AsOf | datetime, prefecture: str,
    *, chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> int:
    """Stage one table's rows of one prefecture into DATA_DIR/staged/prefectures/<code>/;
    returns the rows staged."""
    if prefecture not in PREFECTURES:
        raise ValueError(f"not a Guizhou prefecture: {prefecture!r}")
    rows_path, quarantine_path, counts_path = _part_files(settings, prefecture, table)
    staging = _PrefectureStaging(table, settings, AsOf.of(as_of), prefecture)
    result = staging.result
    rows = write_parquet(rows_path, staging.chunks(chunk_rows), _part_schema(table))
    quarantined = (
        pd.concat(staging.quarantine_parts, ignore_index=True)
        if staging.quarantine_parts else quarantine_rows.empty_quarantine()
    )
    write_parquet(quarantine_path, quarantine_rows.to_arrow(quarantined))
    counts = {
        "rows_per_source": result.rows_per_source, "deleted_rows": result.deleted_rows,
        "soft_flags": result.soft_flags, "superseded_duplicates": result.superseded_duplicates,
        "kept_per_stream": staging.kept_per_stream,
        "extracted_per_stream": staging.extracted_per_stream,
    }
    write_text(counts_path, json.dumps(counts, sort_keys=True))
    return rows


def stage_prefecture(settings: Settings, as_of: AsOf | datetime, prefecture: str) -> dict[str, int]:
    """The partitioned tables' rows of one prefecture (one partition's work)."""
    return {table: stage_table_part(table, settings, as_of, prefecture) for table in PARTITIONED_TABLES}


def stage_from_parts(table: str, settings: Settings, as_of: AsOf | datetime) -> StagedResult:
    """A staged table after the partitions ran: combined from its parts if it is split,
    else staged whole here."""
    if table in PARTITIONED_TABLES:
        return combine_table(table, settings, as_of)
    return stage_table(table, settings, as_of)


def _add(total: dict, more: dict) -> None:
    for name, value in more.items():
        if isinstance(value, dict):
            _add(total.setdefault(name, {}), value)
        else:
            total[name] = total.get(name, 0) + int(value)


def _check_parts_current(table: str, stream: str, per_part: list[dict], latest_rows: int) -> None:
    """Every part must have read the pages landed now: a part staged before a later pull
    would publish yesterday's rows (the accounting check would catch it too, less plainly)."""
    for prefecture, part in zip(PREFECTURES, per_part):
        read = part.get("extracted_per_stream", {}).get(stream, 0)
        if read != latest_rows:
            raise RuntimeError(
                f"the {table} part of prefecture {prefecture} read {read} rows of {stream}, "
                f"{latest_rows} are landed now: run stage_by_prefecture again after the pull"
            )


def combine_table(table: str, settings: Settings, as_of: AsOf | datetime) -> StagedResult:
    """The 9 parts of a table as `stage_table` would have written it whole: the staged file
    in the same order, the quarantine part, the counts and the accounting."""
    spec = table_spec(table)
    as_of = AsOf.of(as_of)
    result = StagedResult(table=table, entity=spec.entity, path=staged_path(settings, table), as_of=as_of)
    files = [_part_files(settings, prefecture, table) for prefecture in PREFECTURES]
    missing = [str(path) for paths in files for path in paths if not path.exists()]
    if missing:
        raise FileNotFoundError(f"prefecture parts not staged yet: {', '.join(missing)}")

    parts = pa.concat_tables([pq.read_table(rows_path, schema=_part_schema(table)) for rows_path, _, _ in files])
    ordered = parts.sort_by([(STREAM_COLUMN, "ascending"), (ORDINAL_COLUMN, "ascending")])
    result.rows = write_parquet(result.path, ordered.drop_columns([STREAM_COLUMN, ORDINAL_COLUMN]), arrow_schema(table))

    counts: dict = {}
    per_part = [json.loads(counts_path.read_text(encoding="utf-8")) for _, _, counts_path in files]
    for part in per_part:
        _add(counts, part)
    result.rows_per_source = {source: counts.get("rows_per_source", {}).get(source, 0)
                              for source in dict.fromkeys(m.source for m in mappings_for_table(table))}
    result.deleted_rows = counts.get("deleted_rows", 0)
    result.superseded_duplicates = counts.get("superseded_duplicates", 0)
    result.soft_flags = {name: n for name, n in sorted(counts.get("soft_flags", {}).items()) if n}
    for mapping in mappings_for_table(table):
        stream = f"{mapping.source}/{mapping.stream}"
        versions = versions_per_sync(mapping, settings)
        _check_parts_current(table, stream, per_part, sum(latest for _, latest in versions.values()))
        kept = counts.get("kept_per_stream", {}).get(stream, {})
        result.accounting[stream] = {
            sync_id: {
                "landed": landed,
                "staged": kept.get("staged", {}).get(sync_id, 0),
                "quarantined": kept.get("quarantined", {}).get(sync_id, 0),
                "superseded": landed - latest,
            }
            for sync_id, (landed, latest) in versions.items()
        }

    quarantined = [pq.read_table(path).to_pandas() for _, path, _ in files]
    quarantined = [frame for frame in quarantined if len(frame)]
    current = pd.concat(quarantined, ignore_index=True) if quarantined else quarantine_rows.empty_quarantine()
    current = quarantine_rows.carry_first_seen(current, _previous_quarantine(settings, table, spec.entity))
    current = quarantine_rows.sort_rows(current)
    write_parquet(quarantine_part_path(settings, table), quarantine_rows.to_arrow(current))
    result.quarantine = current
    result.quarantined_per_rule = quarantine_rows.counts_per_rule(current)
    return result
