"""Staging: landed raw pages -> canonical staged tables, with quarantine of rows that cannot load.

For one canonical table (schemas/canonical.yaml), every source stream that feeds it
(schemas/mapping/*.yaml) is read from `DATA_DIR/raw/<source>/<stream>/*/page-*.parquet`:

1. DuckDB keeps the latest landed version of each source row (greatest parsed `updated_at`,
   then `fetched_at`), then one row per source key (a live row wins over a deleted one, then
   the latest), and extracts the mapped JSON fields once per row (one JSON parse per row);
2. chunk by chunk (Arrow record batches, so 5M rows never sit in pandas at once), pandas
   applies the mapping's transforms (the `pipelines/normalize` functions), hashes
   certificate numbers and phones with `PII_HASH_KEY` (their clear values never leave the
   chunk), and judges each row against `pipelines/quality/rules.py`;
3. clean rows stream into `DATA_DIR/staged/<table>.parquet` (written to a temp file, fsynced,
   renamed; 0600 in a 0700 folder); broken rows go to this table's quarantine part
   `DATA_DIR/staged/quarantine/<table>.parquet`; `combine_quarantine` stacks the parts into
   `DATA_DIR/staged/quarantine.parquet`, the file the warehouse publishes.

`stage_table(table, settings, as_of)` is a plain function (no Dagster): the assets, tests and
benchmarks call it the same way. Missing raw folders mean an empty table.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
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
from pipelines.files import private_dir, write_parquet
from pipelines.landing import has_raw, raw_glob, updated_at_utc_sql
from pipelines.normalize import as_text as normalize_text
from pipelines.normalize import categories, ids, names, phones, regions, statuses
from pipelines.normalize.dates import (
    BEIJING_OFFSET,
    beijing_text_to_utc,
    iso_to_utc,
    minutes_to_hours,
    parse_date,
    utc_to_beijing_date,
)
from pipelines.privacy import hmac_hex
from pipelines.quality import quarantine as quarantine_rows
from pipelines.quality.rules import RuleInputs, evaluate, soft_flags
from pipelines.schemas import (
    StreamMapping,
    arrow_schema,
    mappings_for_table,
    table_names,
    table_spec,
)
from pipelines.sql import literal

log = logging.getLogger("pipelines.staging")

DEFAULT_CHUNK_ROWS = 200_000
DUCKDB_MEMORY_LIMIT = "1GB"
QUARANTINE_FILE = "quarantine.parquet"
QUARANTINE_PARTS_DIR = "quarantine"


# -- results ------------------------------------------------------------------------------


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
    as_of: AsOf | None = None
    frame: pd.DataFrame | None = None

    @property
    def quarantined(self) -> int:
        return len(self.quarantine)

    def read(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The staged table as written (all rows: live and deleted)."""
        return pq.read_table(self.path, columns=columns).to_pandas()


# -- places -------------------------------------------------------------------------------


def staged_path(settings: Settings, table: str) -> Path:
    return settings.staged_dir / f"{table}.parquet"


def quarantine_path(settings: Settings) -> Path:
    return settings.staged_dir / QUARANTINE_FILE


def quarantine_part_path(settings: Settings, table: str) -> Path:
    return settings.staged_dir / QUARANTINE_PARTS_DIR / f"{table}.parquet"


def read_staged(settings: Settings, table: str, columns: list[str] | None = None) -> pd.DataFrame:
    """A staged table as pandas (an empty frame of the canonical schema if never staged)."""
    path = staged_path(settings, table)
    if not path.exists():
        return arrow_schema(table).empty_table().to_pandas()
    return pq.read_table(path, columns=columns).to_pandas()


def read_quarantine(settings: Settings) -> pd.DataFrame:
    path = quarantine_path(settings)
    if not path.exists():
        return quarantine_rows.empty_quarantine()
    return pq.read_table(path).to_pandas()


# -- reading raw --------------------------------------------------------------------------


def _json_path(key: str) -> str:
    return "$." + json.dumps(key)  # "$.\"albp0029\"": quoting copes with any key


def extract_sql(mapping: StreamMapping, glob: str) -> str:
    """DuckDB SQL: the latest version of each source row with the mapped fields extracted.

    Output columns: `__id` (the row id), `__updated_at` (text), `__updated_utc` (naive UTC
    timestamp), `__is_deleted`, `__record`
    (raw JSON), `__fetched_at`, `__key_versions` (how many row ids share the source key),
    then one column per mapped JSON key: text, or DOUBLE for fields only read as numbers
    (one JSON parse per row, no text round trip in pandas), or a list for `list: true`.
    """
    scalar_fields = [
        name for name, kind in mapping.raw_fields.items() if kind in ("text", "number")
    ]
    list_fields = [name for name, kind in mapping.raw_fields.items() if kind == "list"]
    paths = ", ".join(literal(_json_path(name)) for name in scalar_fields)
    extracted = [
        f'TRY_CAST(__f[{position}] AS DOUBLE) AS "{name}"'
        if mapping.raw_fields[name] == "number"
        else f'__f[{position}] AS "{name}"'
        for position, name in enumerate(scalar_fields, start=1)
    ]
    extracted += [
        f'TRY_CAST(json_extract(__record, {literal(_json_path(name))}) AS VARCHAR[]) AS "{name}"'
        for name in list_fields
    ]
    deleted_text = (
        f"lower(json_extract_string(record, {literal(_json_path(mapping.deleted_field))}))"
    )
    source_key = f"json_extract_string(record, {literal(_json_path(mapping.source_id_field))})"
    return f"""
WITH versions AS (
    SELECT id, updated_at, record, fetched_at,
           COALESCE(is_deleted, {deleted_text} IN ('1', 'true')) AS deleted,
           -- try(): one unreadable timestamp makes a missing_required row, not a failed step
           try({updated_at_utc_sql(mapping.source)}) AS updated_utc
    FROM read_parquet({literal(glob)}, union_by_name = true)
), latest_per_row AS (
    SELECT *, COALESCE(NULLIF(trim({source_key}), ''), '#' || id) AS source_key
    FROM versions
    QUALIFY row_number() OVER (
        PARTITION BY id ORDER BY updated_utc DESC NULLS LAST, fetched_at DESC) = 1
), latest_per_key AS (
    -- two row ids with one source key (an account re-created at the source): the staged
    -- table holds one row per key, a live one if any, else the latest
    SELECT *, count(*) OVER (PARTITION BY source_key) AS key_versions
    FROM latest_per_row
    QUALIFY row_number() OVER (
        PARTITION BY source_key ORDER BY deleted ASC, updated_utc DESC NULLS LAST, id DESC) = 1
)
SELECT id AS __id, updated_at AS __updated_at, updated_utc AS __updated_utc,
       deleted AS __is_deleted, record AS __record,
       fetched_at AS __fetched_at, key_versions AS __key_versions,
       {", ".join(extracted) if extracted else "NULL AS __nothing"}
FROM (
    SELECT *, record AS __record, json_extract_string(record, [{paths}]) AS __f
    FROM latest_per_key
)
ORDER BY id
"""


def raw_batches(
    mapping: StreamMapping, settings: Settings, chunk_rows: int
) -> Iterator[pd.DataFrame]:
    """The stream's latest rows with mapped fields, as pandas chunks (none if nothing landed)."""
    import duckdb

    if not has_raw(settings, mapping.source, mapping.stream):
        return
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        # The dedup sorts every landed version: let DuckDB spill to a private folder next to
        # the staged files rather than hold 5M rows in memory (or spill into the cwd).
        spill = private_dir(settings.staged_dir / ".duckdb_spill")
        con.execute(f"SET temp_directory = {literal(str(spill))}")
        con.execute(f"SET memory_limit = {literal(DUCKDB_MEMORY_LIMIT)}")
        relation = con.sql(extract_sql(mapping, raw_glob(settings, mapping.source, mapping.stream)))
        reader = relation.to_arrow_reader(chunk_rows)
        for batch in reader:
            if batch.num_rows:
                yield batch.to_pandas()
    finally:
        con.close()


# -- transforms: source text -> canonical values -----------------------------------------


@dataclass
class ChunkContext:
    """Per-chunk state the transforms share (and report problems into)."""

    mapping: StreamMapping
    settings: Settings
    as_of: AsOf
    raw: pd.DataFrame
    is_deleted: pd.Series
    canonical: pd.DataFrame
    unparseable: dict[str, pd.Series] = field(default_factory=dict)
    unknown_codes: dict[str, pd.Series] = field(default_factory=dict)
    soft_masks: dict[str, pd.Series] = field(default_factory=dict)

    def add_soft(self, name: str, mask: pd.Series) -> None:
        mask = mask.fillna(False).astype(bool)
        previous = self.soft_masks.get(name)
        self.soft_masks[name] = mask if previous is None else (previous | mask)


def as_text(values: pd.Series) -> pd.Series:
    """Stripped text (str dtype), NaN for missing or empty: a blank field is a missing one."""
    text = normalize_text(values).str.strip()
    return text.where(text.str.len() > 0)


def _present(values: pd.Series) -> pd.Series:
    return as_text(values).notna()


def _track_unparseable(
    column: str, raw: pd.Series, parsed: pd.Series, ctx: ChunkContext
) -> pd.Series:
    ctx.unparseable[column] = (_present(raw) & pd.Series(parsed, index=raw.index).isna()).astype(
        bool
    )
    return parsed


def _vocabulary(column: str, raw: pd.Series, spec: dict, ctx: ChunkContext) -> pd.Series:
    """A source code or label -> the staged word (schemas/vocabularies.yaml, one place)."""

    text = as_text(raw)
    mapped = as_text(
        pd.Series(statuses.map_vocabulary(text, spec["kind"], ctx.mapping.source), index=raw.index)
    )
    ctx.unknown_codes[column] = (text.notna() & mapped.isna()).astype(bool)
    return mapped


def _bool(raw: pd.Series) -> pd.Series:
    text = as_text(raw).str.lower()
    return text.map({"true": True, "1": True, "false": False, "0": False}).astype("boolean")


def _float(raw: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(raw.dtype):
        return raw.astype("float64")
    return pd.to_numeric(as_text(raw), errors="coerce").astype("float64")


def _int(raw: pd.Series) -> pd.Series:
    numbers = _float(raw)
    whole = numbers.where(numbers.round() == numbers)
    return whole.astype("Int64")


def _hmac(values: pd.Series, ctx: ChunkContext) -> pd.Series:
    present = values.notna()
    hashed = pd.Series(np.nan, index=values.index, dtype="str")
    if present.any():
        hashed[present] = pd.Series(
            hmac_hex(values[present], ctx.settings.pii_hash_key), index=values[present].index
        ).to_numpy()
    return hashed


def _phone_hash(column: str, raw: pd.Series, spec: dict, ctx: ChunkContext) -> pd.Series:
    cleaned = phones.normalize_phone(raw)
    usable = cleaned["phone_valid"].fillna(False).astype(bool) & ~cleaned["phone_masked"].fillna(
        False
    ).astype(bool)
    return _hmac(cleaned["phone"].where(usable), ctx)


KNOWN_BRANDS = ("三关爱", "暖冬行动", "西部计划", "青清河", "夜校")


def _brand(column: str, raw: pd.Series, spec: dict, ctx: ChunkContext) -> pd.Series:
    """Brand programmes as one label each (脱贫攻坚夜校 -> 夜校), else the cleaned text."""
    cleaned = names.normalize_name(raw)
    branded = pd.Series(np.nan, index=raw.index, dtype="str")
    for brand in KNOWN_BRANDS:
        hit = cleaned.str.contains(brand, regex=False).fillna(False) & branded.isna()
        branded[hit] = brand
    return branded.fillna(cleaned)


def _with_fast_path(
    raw: pd.Series,
    strict_format: str,
    parse: Callable,
    *,
    utc: bool,
    shift: pd.Timedelta | None = None,
) -> pd.Series:
    """`parse` (the normalize function: every format the sources write) over the values
    that a strict `pd.to_datetime` of the common format does not read.

    Why: the general parser is a regex extraction per value; at millions of rows the one
    format that nearly every value has is read ten times faster by pandas' own parser, and
    what it reads it reads the same way (same format, same offset rule).
    """
    text = as_text(raw)
    if utc and shift is None:
        quick = pd.to_datetime(text, format=strict_format, errors="coerce", utc=True)
    else:
        quick = pd.to_datetime(text, format=strict_format, errors="coerce")
        if shift is not None:  # Beijing wall-clock time without an offset -> UTC
            quick = (quick - shift).dt.tz_localize("UTC")
    quick = quick.astype("datetime64[us, UTC]" if utc else "datetime64[us]")
    slow = text.notna() & quick.isna()
    if slow.any():
        quick[slow] = pd.Series(parse(text[slow]), index=text[slow].index).astype(quick.dtype)
    return quick


def _date(column: str, raw: pd.Series, spec: dict, ctx: ChunkContext) -> pd.Series:
    return _track_unparseable(
        column, raw, _with_fast_path(raw, "%Y-%m-%d", parse_date, utc=False), ctx
    )


def _iso_timestamp(column: str, raw: pd.Series, spec: dict, ctx: ChunkContext) -> pd.Series:
    parsed = _with_fast_path(raw, "%Y-%m-%dT%H:%M:%S%z", iso_to_utc, utc=True)
    return _track_unparseable(column, raw, parsed, ctx)


def _beijing_timestamp(column: str, raw: pd.Series, spec: dict, ctx: ChunkContext) -> pd.Series:
    parsed = _with_fast_path(
        raw, "%Y-%m-%d %H:%M:%S", beijing_text_to_utc, utc=True, shift=BEIJING_OFFSET
    )
    return _track_unparseable(column, raw, parsed, ctx)


def _beijing_date_of_text(column: str, raw: pd.Series, spec: dict, ctx: ChunkContext) -> pd.Series:
    """A Beijing-time timestamp's calendar date; a bare date in any known format as is."""
    stamps = _with_fast_path(
        raw, "%Y-%m-%d %H:%M:%S", beijing_text_to_utc, utc=True, shift=BEIJING_OFFSET
    )
    dates = pd.Series(utc_to_beijing_date(stamps), index=raw.index)
    missing = dates.isna()
    if missing.any():
        dates = dates.astype(object)
        dates[missing] = pd.Series(parse_date(raw[missing]), index=raw[missing].index).astype(
            object
        )
    return _track_unparseable(column, raw, dates, ctx)


def _beijing_date(column: str, values: pd.Series, spec: dict, ctx: ChunkContext) -> pd.Series:
    dates = utc_to_beijing_date(values)
    # the date is as readable as the timestamp it comes from
    source_column = spec.get("column")
    if source_column in ctx.unparseable:
        ctx.unparseable[column] = ctx.unparseable[source_column]
    return dates


def _minutes_to_hours(column: str, raw: pd.Series, spec: dict, ctx: ChunkContext) -> pd.Series:
    return pd.Series(minutes_to_hours(_float(raw)), index=raw.index, dtype="float64")


def _name(column: str, raw: pd.Series, spec: dict, ctx: ChunkContext) -> pd.Series:
    return names.normalize_name(raw)


def _region(column: str, raw: pd.Series, spec: dict, ctx: ChunkContext) -> pd.Series:
    return as_text(regions.normalize_region(as_text(raw)))


def _national_category(column: str, raw: pd.Series, spec: dict, ctx: ChunkContext) -> pd.Series:
    labels = as_text(pd.Series(categories.national_code_to_label(as_text(raw)), index=raw.index))
    ctx.add_soft("unmapped_category", _present(raw) & labels.isna())
    return labels


def _first_category(column: str, raw: pd.Series, spec: dict, ctx: ChunkContext) -> pd.Series:
    labels = as_text(pd.Series(categories.first_category(as_text(raw)), index=raw.index))
    ctx.add_soft("unmapped_category", _present(raw) & labels.isna())
    return labels


def _equals_live(column: str, raw: pd.Series, spec: dict, ctx: ChunkContext) -> pd.Series:
    return (as_text(raw).eq(str(spec["value"])).fillna(False) & ~ctx.is_deleted).astype(bool)


def _strip_prefix(column: str, raw: pd.Series, spec: dict, ctx: ChunkContext) -> pd.Series:
    text = as_text(raw)
    prefix = spec["prefix"]
    stripped = text.where(~text.str.startswith(prefix).fillna(False), text.str.slice(len(prefix)))
    return as_text(stripped)


TRANSFORMS: dict[str, Callable[[str, pd.Series, dict, ChunkContext], pd.Series]] = {
    "text": lambda column, raw, spec, ctx: as_text(raw),
    "name": _name,
    "region": _region,
    "date": _date,
    "iso_timestamp": _iso_timestamp,
    "beijing_timestamp": _beijing_timestamp,
    "beijing_date_of_text": _beijing_date_of_text,
    "beijing_date": _beijing_date,
    "float": lambda column, raw, spec, ctx: _float(raw),
    "int": lambda column, raw, spec, ctx: _int(raw),
    "bool": lambda column, raw, spec, ctx: _bool(raw),
    "minutes_to_hours": _minutes_to_hours,
    "vocabulary": _vocabulary,
    "const": lambda column, raw, spec, ctx: pd.Series(
        spec["value"], index=ctx.raw.index, dtype="str"
    ),
    "equals_live": _equals_live,
    "strip_prefix": _strip_prefix,
    "phone_hash": _phone_hash,
    "brand": _brand,
    "national_category": _national_category,
    "first_category": _first_category,
}


# -- derived transforms: several columns at once ------------------------------------------


def _person_identity(fields: pd.DataFrame, spec: dict, ctx: ChunkContext) -> pd.DataFrame:
    """Certificate, gender, birth date and phone of a volunteer account.

    Clear numbers are normalized, hashed and dropped here; what is kept is what masking
    keeps (first/last characters) and what a valid resident ID says (birth date, gender).
    """

    index = fields.index
    if spec["cert_types"] == "national":
        cert_type = ids.cert_type_from_national(as_text(fields.get("cert_type")))
    else:
        cert_type = ids.cert_type_from_provincial(as_text(fields.get("cert_type")))
    cert_type = as_text(pd.Series(cert_type, index=index))
    raw_number = as_text(fields.get("cert_no", pd.Series(np.nan, index=index)))
    is_resident = cert_type.eq("resident_id").fillna(False)

    out = pd.DataFrame(index=index)
    out["cert_type"] = cert_type
    number = pd.Series(np.nan, index=index, dtype=object)
    for column in ("cert_masked", "cert_valid"):
        out[column] = pd.Series(False, index=index, dtype="boolean")
    for column in ("cert_prefix4", "cert_suffix4"):
        out[column] = pd.Series(np.nan, index=index, dtype="str")
    id_gender = pd.Series(np.nan, index=index, dtype="str")
    id_birth = pd.Series(pd.NaT, index=index, dtype="datetime64[s]")

    if is_resident.any():
        resident = ids.normalize_resident_id(raw_number[is_resident], today=ctx.as_of.date)
        resident.index = raw_number[is_resident].index
        number[is_resident] = resident["cert_no"].astype(object).to_numpy()
        out.loc[is_resident, "cert_masked"] = (
            resident["cert_masked"].fillna(False).astype(bool).to_numpy()
        )
        out.loc[is_resident, "cert_valid"] = (
            resident["cert_valid"].fillna(False).astype(bool).to_numpy()
        )
        out.loc[is_resident, "cert_prefix4"] = resident["cert_prefix4"].astype(object).to_numpy()
        out.loc[is_resident, "cert_suffix4"] = resident["cert_suffix4"].astype(object).to_numpy()
        id_gender[is_resident] = resident["gender"].astype(object).to_numpy()
        id_birth[is_resident] = pd.to_datetime(resident["birth_date"], errors="coerce").to_numpy()
    other = ~is_resident & raw_number.notna()
    if other.any():
        other_numbers = as_text(
            pd.Series(ids.normalize_other_cert(raw_number[other]), index=raw_number[other].index)
        )
        masked = raw_number[other].str.contains("*", regex=False).fillna(False)
        number[other] = other_numbers.where(~masked).astype(object).to_numpy()
        out.loc[other, "cert_masked"] = masked.to_numpy()
        visible = other_numbers.fillna(raw_number[other])
        out.loc[other, "cert_prefix4"] = visible.str.slice(0, 4).to_numpy()
        out.loc[other, "cert_suffix4"] = visible.str.slice(-4).to_numpy()
    clear = pd.Series(number, index=index).where(~out["cert_masked"].fillna(False).astype(bool))
    out["cert_hash"] = _hmac(as_text(clear), ctx)

    stated_gender = as_text(
        pd.Series(
            statuses.gender_from_code(
                as_text(fields.get("gender", pd.Series(np.nan, index=index)))
            ),
            index=index,
        )
    )
    if "birth_date" in fields:
        stated_birth_raw = fields["birth_date"]
        stated_birth = _with_fast_path(stated_birth_raw, "%Y-%m-%d", parse_date, utc=False)
        ctx.unparseable["birth_date"] = (_present(stated_birth_raw) & stated_birth.isna()).astype(
            bool
        )
    else:
        stated_birth = pd.Series(pd.NaT, index=index, dtype="datetime64[s]")
    id_birth = pd.to_datetime(id_birth, errors="coerce")
    trusted = out["cert_valid"].fillna(False).astype(bool)
    out["gender"] = id_gender.where(trusted & id_gender.notna(), stated_gender)
    out["birth_date"] = id_birth.where(trusted & id_birth.notna(), stated_birth)
    # only a valid number's gender and birth date can contradict what was stated
    conflicts = ids.identity_conflicts(
        id_gender.where(trusted), id_birth.where(trusted), stated_gender, stated_birth
    )
    out["gender_conflict"] = conflicts["gender_conflict"].to_numpy()
    out["birth_conflict"] = conflicts["birth_conflict"].to_numpy()

    raw_phone = fields.get("phone", pd.Series(np.nan, index=index))
    phone = phones.normalize_phone(as_text(raw_phone))
    phone.index = index
    phone_masked = phone["phone_masked"].fillna(False).astype(bool)
    phone_valid = phone["phone_valid"].fillna(False).astype(bool)
    out["phone_hash"] = _hmac(as_text(phone["phone"]).where(phone_valid & ~phone_masked), ctx)
    out["phone_masked"] = phone_masked
    out["phone_prefix3"] = as_text(phone["phone_prefix3"])
    out["phone_suffix4"] = as_text(phone["phone_suffix4"])
    ctx.add_soft("phone_invalid", _present(raw_phone) & ~phone_masked & ~phone_valid)
    return out


def _uscc(fields: pd.DataFrame, spec: dict, ctx: ChunkContext) -> pd.DataFrame:
    raw = as_text(fields["uscc"])
    result = ids.normalize_uscc(raw)
    result.index = fields.index
    out = pd.DataFrame(index=fields.index)
    out["uscc"] = as_text(result["uscc"])
    out["uscc_valid"] = result["uscc_valid"].fillna(False).astype(bool)
    return out


def _categories_frame(result: pd.DataFrame, index: pd.Index, ctx: ChunkContext) -> pd.DataFrame:
    result.index = index
    out = pd.DataFrame(index=index)
    out["categories"] = as_text(result["categories"])
    out["unmapped_categories"] = as_text(result["unmapped_categories"])
    return out


def _national_categories(fields: pd.DataFrame, spec: dict, ctx: ChunkContext) -> pd.DataFrame:
    codes = fields["codes"].map(
        lambda value: list(value) if isinstance(value, (list, np.ndarray)) else []
    )
    return _categories_frame(categories.national_codes_to_categories(codes), fields.index, ctx)


def _provincial_categories(fields: pd.DataFrame, spec: dict, ctx: ChunkContext) -> pd.DataFrame:
    return _categories_frame(
        categories.provincial_labels_to_categories(as_text(fields["labels"])), fields.index, ctx
    )


DERIVED: dict[str, Callable[[pd.DataFrame, dict, ChunkContext], pd.DataFrame]] = {
    "person_identity": _person_identity,
    "uscc": _uscc,
    "national_categories": _national_categories,
    "provincial_categories": _provincial_categories,
}


# -- one chunk ----------------------------------------------------------------------------


def _updated_at_utc(raw: pd.DataFrame) -> pd.Series:
    """The row's change time, as DuckDB parsed it for the dedup (landing.updated_at_utc_sql)."""
    return pd.to_datetime(raw["__updated_utc"], errors="coerce").dt.tz_localize("UTC")


def map_chunk(
    raw: pd.DataFrame, mapping: StreamMapping, settings: Settings, as_of: AsOf
) -> tuple[pd.DataFrame, ChunkContext]:
    """One chunk of extracted raw fields -> canonical columns (canonical order), plus context."""
    spec = table_spec(mapping.table)
    index = raw.index
    is_deleted = raw["__is_deleted"].fillna(False).astype(bool)
    canonical = pd.DataFrame(index=index)
    ctx = ChunkContext(
        mapping=mapping, settings=settings, as_of=as_of, raw=raw, is_deleted=is_deleted,
        canonical=canonical,
    )
    canonical["source"] = mapping.source
    canonical["source_id"] = as_text(raw[mapping.source_id_field])
    canonical["updated_at"] = _updated_at_utc(raw)
    canonical["is_deleted"] = is_deleted
    for column, column_spec in mapping.columns.items():
        via = column_spec.get("via", "text")
        if "column" in column_spec:
            values = canonical[column_spec["column"]]
        elif "field" in column_spec:
            values = raw[column_spec["field"]]
        else:
            values = pd.Series(np.nan, index=index, dtype="str")
        canonical[column] = pd.Series(
            TRANSFORMS[via](column, values, column_spec, ctx), index=index
        )
    for derived_spec in mapping.derived:
        fields = pd.DataFrame(
            {role: raw[name] for role, name in derived_spec["fields"].items() if name}, index=index
        )
        produced = DERIVED[derived_spec["via"]](fields, derived_spec, ctx)
        for column in derived_spec["into"]:
            canonical[column] = produced[column]
    for column in spec.column_names:
        if column not in canonical:
            canonical[column] = np.nan
    return canonical[spec.column_names], ctx


def _column_to_arrow(values: pd.Series, arrow_type: pa.DataType) -> pa.Array:
    if pa.types.is_date32(arrow_type):
        stamps = pd.to_datetime(values, errors="coerce")
        if isinstance(stamps.dtype, pd.DatetimeTZDtype):
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        return (
            pa.array(stamps.dt.normalize(), from_pandas=True)
            .cast(pa.timestamp("us"))
            .cast(arrow_type)
        )
    if pa.types.is_timestamp(arrow_type):
        stamps = pd.to_datetime(values, errors="coerce", utc=True)
        return pa.array(stamps, from_pandas=True).cast(arrow_type)
    if pa.types.is_boolean(arrow_type):
        return pa.array(values.astype("boolean"), from_pandas=True, type=arrow_type)
    if pa.types.is_integer(arrow_type):
        return pa.array(
            pd.to_numeric(values, errors="coerce").astype("Int64"),
            from_pandas=True,
            type=arrow_type,
        )
    if pa.types.is_floating(arrow_type):
        return pa.array(
            pd.to_numeric(values, errors="coerce").astype("float64"),
            from_pandas=True,
            type=arrow_type,
        )
    if pa.types.is_string(arrow_type):
        if pd.api.types.is_string_dtype(values.dtype) and values.dtype != object:
            return pa.array(values, from_pandas=True, type=arrow_type)
        text = values.astype(object).where(values.notna(), None)
        return pa.array(
            text.map(lambda v: v if v is None or isinstance(v, str) else str(v)), type=arrow_type
        )
    return pa.array(values, from_pandas=True, type=arrow_type)


def frame_to_arrow(frame: pd.DataFrame, table: str) -> pa.Table:
    """A canonical frame as an Arrow table of exactly the canonical schema."""
    schema = arrow_schema(table)
    arrays = [
        _column_to_arrow(
            frame[field_.name] if field_.name in frame else pd.Series(np.nan, index=frame.index),
            field_.type,
        )
        for field_ in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


# -- one table ----------------------------------------------------------------------------


def _previous_quarantine(settings: Settings, table: str, entity: str) -> pd.DataFrame | None:
    part = quarantine_part_path(settings, table)
    if part.exists():
        return pq.read_table(part).to_pandas()
    combined = quarantine_path(settings)
    if combined.exists():
        previous = pq.read_table(combined).to_pandas()
        return previous[previous["entity"] == entity]
    return None


def _add_counts(total: dict[str, int], more: dict[str, int]) -> None:
    for name, count in more.items():
        total[name] = total.get(name, 0) + int(count)


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
    result = StagedResult(
        table=table, entity=spec.entity, path=staged_path(settings, table), as_of=as_of
    )
    quarantine_parts: list[pd.DataFrame] = []

    def staged_tables() -> Iterator[pa.Table]:
        for mapping in mappings_for_table(table):
            for raw in raw_batches(mapping, settings, chunk_rows):
                canonical, ctx = map_chunk(raw, mapping, settings, as_of)
                inputs = RuleInputs(
                    table=table,
                    as_of=as_of.utc,
                    unparseable=ctx.unparseable,
                    unknown_codes=ctx.unknown_codes,
                )
                verdict = evaluate(canonical, inputs)
                rejected = verdict["rule"].notna()
                # a deleted row without its key cannot be identified: it is dropped, counted
                keyless_deleted = canonical["source_id"].isna() & canonical["is_deleted"]
                kept = ~rejected & ~keyless_deleted
                if rejected.any():
                    source_ids = canonical.loc[rejected, "source_id"].fillna(
                        raw.loc[rejected, "__id"]
                    )
                    quarantine_parts.append(
                        quarantine_rows.build_rows(
                            source=mapping.source,
                            entity=spec.entity,
                            source_ids=source_ids,
                            rules=verdict.loc[rejected, "rule"],
                            details=verdict.loc[rejected, "detail"],
                            records=raw.loc[rejected, "__record"],
                            seen_at=raw.loc[rejected, "__fetched_at"],
                        )
                    )
                kept_frame = canonical[kept]
                _add_counts(result.soft_flags, soft_flags(kept_frame, inputs))
                for name, mask in ctx.soft_masks.items():
                    _add_counts(result.soft_flags, {name: int((mask & kept).sum())})
                _add_counts(result.soft_flags, {"deleted_without_key": int(keyless_deleted.sum())})
                result.superseded_duplicates += int((raw.loc[kept, "__key_versions"] > 1).sum())
                result.rows_per_source[mapping.source] = result.rows_per_source.get(
                    mapping.source, 0
                ) + int(kept.sum())
                result.deleted_rows += int(kept_frame["is_deleted"].sum())
                yield frame_to_arrow(kept_frame, table)

    result.rows = write_parquet(result.path, staged_tables(), arrow_schema(table))
    result.soft_flags = {name: count for name, count in sorted(result.soft_flags.items()) if count}
    for source in {mapping.source for mapping in mappings_for_table(table)}:
        result.rows_per_source.setdefault(source, 0)

    current = (
        pd.concat(quarantine_parts, ignore_index=True)
        if quarantine_parts
        else quarantine_rows.empty_quarantine()
    )
    current = quarantine_rows.carry_first_seen(
        current, _previous_quarantine(settings, table, spec.entity)
    )
    current = quarantine_rows.sort_rows(current)
    write_parquet(quarantine_part_path(settings, table), quarantine_rows.to_arrow(current))
    result.quarantine = current
    result.quarantined_per_rule = quarantine_rows.counts_per_rule(current)
    if return_frame:
        result.frame = result.read()
    log.info(
        "staged %s: %d rows (%s), %d quarantined %s",
        table,
        result.rows,
        result.rows_per_source,
        result.quarantined,
        result.quarantined_per_rule,
    )
    return result


def combine_quarantine(settings: Settings, tables: list[str] | None = None) -> pd.DataFrame:
    """Stack the tables' quarantine parts into `DATA_DIR/staged/quarantine.parquet`."""
    parts = []
    for table in tables or table_names():
        part = quarantine_part_path(settings, table)
        if part.exists():
            parts.append(pq.read_table(part).to_pandas())
    combined = pd.concat(parts, ignore_index=True) if parts else quarantine_rows.empty_quarantine()
    combined = quarantine_rows.sort_rows(combined)
    write_parquet(quarantine_path(settings), quarantine_rows.to_arrow(combined))
    return combined


def stage_all(
    settings: Settings, as_of: AsOf | datetime, **options: Any
) -> dict[str, StagedResult]:
    """Stage every canonical table with one `as_of`, then combine the quarantine."""
    results = {table: stage_table(table, settings, as_of, **options) for table in table_names()}
    combine_quarantine(settings)
    return results
