"""The canonical (staged) tables and the source mappings, read from `schemas/` as data.

`schemas/canonical.yaml` declares each staged table's columns (the contract between staging
and resolution); `schemas/mapping/<source>.yaml` declares which source stream feeds which
table and how each field becomes a canonical column. This module loads both once per
process, flattens the YAML anchor of the common columns, and gives an Arrow schema per
table so every writer produces the same column types (dates as date32, timestamps UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib.resources.abc import Traversable
from typing import Any, Iterable

import pyarrow as pa
import yaml

from schemas import schema_file

CANONICAL_PATH = schema_file("canonical.yaml")
MAPPING_DIR = schema_file("mapping")
SOURCES = ("national", "provincial")
# What a mapping may do with a value that is there but unusable (pipelines/staging/adapter.py).
ON_ERROR = ("quarantine", "flag")
# Mapping transforms that read a number: their fields are extracted as DOUBLE by DuckDB.
NUMERIC_TRANSFORMS = frozenset({"float", "int", "minutes_to_hours"})

# Canonical type name -> Arrow type. Timestamps are tz-aware UTC so nobody guesses the zone.
ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "list": pa.list_(pa.string()),
}


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str
    required: bool = False
    pii: bool = False
    description: str = ""


@dataclass(frozen=True)
class TableSpec:
    name: str
    entity: str
    key: tuple[str, ...]
    columns: tuple[ColumnSpec, ...]
    description: str = ""

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [column.name for column in self.columns if column.required]

    def column(self, name: str) -> ColumnSpec:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.name} has no column {name!r}")


@dataclass(frozen=True)
class StreamMapping:
    """How one source stream becomes rows of one canonical table (see schemas/mapping/)."""

    source: str
    stream: str
    table: str
    deleted_field: str
    source_id_field: str
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    derived: tuple[dict[str, Any], ...] = ()
    ignored_fields: frozenset[str] = frozenset()  # fields of the interface deliberately not read
    identifier_kinds: frozenset[str] = frozenset({"text", "number"})  # JSON kinds of ids
    integer_ids: bool = False  # the contract's row ids are integers: 4.0 and "4.0" are the row 4

    def drift(self, fields_seen: Iterable[str], bookkeeping: Iterable[str]) -> tuple[list[str], list[str]]:
        """Schema drift in rows the source sent: (fields this mapping neither reads nor
        ignores on purpose, fields it reads that no row carried). `bookkeeping` are the
        fields the landing itself reads (row id, cursor, deletion flag)."""
        seen = set(fields_seen)
        known = set(self.raw_fields) | self.ignored_fields | set(bookkeeping)
        return sorted(seen - known), sorted(set(self.raw_fields) - seen)

    @property
    def raw_fields(self) -> dict[str, str]:
        """Every JSON key the mapping reads -> how to extract it: "list", "text", or
        "number" (a field read only by numeric transforms)."""
        precedence = {"number": 0, "text": 1, "list": 2}
        wanted: dict[str, str] = {self.source_id_field: "text", self.deleted_field: "text"}
        for spec in [*self.columns.values(), *self.derived]:
            if spec.get("list"):
                kind = "list"
            elif spec.get("via") in NUMERIC_TRANSFORMS:
                kind = "number"
            else:
                kind = "text"
            for raw_field in _fields_of(spec):
                current = wanted.get(raw_field)
                if current is None or precedence[kind] > precedence[current]:
                    wanted[raw_field] = kind
        return wanted


def _fields_of(spec: dict[str, Any]) -> list[str]:
    fields: list[str] = []
    if spec.get("field"):
        fields.append(spec["field"])
    for value in (spec.get("fields") or {}).values():
        if value:
            fields.append(value)
    return fields


def _flatten(columns: list[Any]) -> list[dict[str, Any]]:
    """The YAML `*common` alias arrives as a nested list inside the column list."""
    flat: list[dict[str, Any]] = []
    for item in columns:
        if isinstance(item, list):
            flat.extend(_flatten(item))
        else:
            flat.append(item)
    return flat


@cache
def load_canonical(path: Traversable = CANONICAL_PATH) -> dict[str, TableSpec]:
    """All canonical tables by name, in the order of the YAML file."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    tables: dict[str, TableSpec] = {}
    for table_name, table in document["tables"].items():
        columns = tuple(
            ColumnSpec(
                name=column["name"],
                type=column["type"],
                required=bool(column.get("required", False)),
                pii=bool(column.get("pii", False)),
                description=column.get("description", ""),
            )
            for column in _flatten(table["columns"])
        )
        names = [column.name for column in columns]
        if len(names) != len(set(names)):
            raise ValueError(f"canonical table {table_name} declares a column twice")
        unknown_types = {column.type for column in columns} - set(ARROW_TYPES)
        if unknown_types:
            raise ValueError(f"canonical table {table_name} uses unknown types {unknown_types}")
        tables[table_name] = TableSpec(
            name=table_name,
            entity=table["entity"],
            key=tuple(table["key"]),
            columns=columns,
            description=table.get("description", ""),
        )
    return tables


def table_names() -> list[str]:
    return list(load_canonical())


def table_spec(table: str) -> TableSpec:
    tables = load_canonical()
    if table not in tables:
        raise KeyError(f"unknown canonical table {table!r}; known: {', '.join(tables)}")
    return tables[table]


def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of a staged table, columns in canonical order."""
    return pa.schema(
        [pa.field(column.name, ARROW_TYPES[column.type]) for column in table_spec(table).columns]
    )


@cache
def load_mapping(source: str, mapping_dir: Traversable = MAPPING_DIR) -> dict[str, StreamMapping]:
    """One source's stream mappings by stream name."""
    document = yaml.safe_load((mapping_dir / f"{source}.yaml").read_text(encoding="utf-8"))
    if document.get("source") != source:
        raise ValueError(f"mapping/{source}.yaml declares source {document.get('source')!r}")
    canonical = load_canonical()
    mappings: dict[str, StreamMapping] = {}
    for stream_name, stream in document["streams"].items():
        mapping = StreamMapping(
            source=source,
            stream=stream_name,
            table=stream["table"],
            deleted_field=document["deleted_field"],
            source_id_field=stream["source_id"],
            columns=dict(stream.get("columns") or {}),
            derived=tuple(stream.get("derived") or ()),
            ignored_fields=frozenset(stream.get("ignored") or ()),
            identifier_kinds=frozenset(document.get("identifier_kinds") or ("text", "number")),
            integer_ids=bool(document.get("integer_ids", False)),
        )
        if mapping.table not in canonical:
            raise ValueError(f"{source}.{stream_name} maps to unknown table {mapping.table!r}")
        known = set(canonical[mapping.table].column_names)
        declared = set(mapping.columns) | {
            name for spec in mapping.derived for name in spec.get("into", [])
        }
        if declared - known:
            raise ValueError(
                f"{source}.{stream_name} maps to columns {sorted(declared - known)} "
                f"that {mapping.table} does not have"
            )
        undecided = [
            name for name, spec in [*mapping.columns.items(), *((s["via"], s) for s in mapping.derived)]
            if _fields_of(spec) + ([spec["column"]] if "column" in spec else [])
            and spec.get("on_error") not in ON_ERROR
        ]
        if undecided:  # what to do with an unusable value is a decision the file must state
            raise ValueError(f"{source}.{stream_name}: {undecided} need on_error: quarantine or flag")
        mappings[stream_name] = mapping
    return mappings


def mappings_for_table(table: str) -> list[StreamMapping]:
    """Every (source, stream) that feeds a canonical table, national first."""
    return [mapping for mapping in all_stream_mappings() if mapping.table == table]


def all_stream_mappings() -> list[StreamMapping]:
    return [mapping for source in SOURCES for mapping in load_mapping(source).values()]
