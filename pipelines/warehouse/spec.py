"""The published tables and marts as data, read from `schemas/warehouse.yaml`.

Every other part of the warehouse takes its table list, column order, column types and
descriptions from here: the build casts to these types, the loaders create these DDLs, the
comments in the database and the data dictionary repeat these descriptions. One file to
change, one place where a column can be missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources.abc import Traversable

import pyarrow as pa
import yaml

from schemas import schema_file

WAREHOUSE_SPEC_PATH = schema_file("warehouse.yaml")

_DECIMAL = re.compile(r"^decimal\((\d+),(\d+)\)$")
_SIMPLE_TYPES = {"text", "integer", "bigint", "double", "boolean", "date", "timestamp"}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    unit: str | None = None
    required: bool = False
    pii: str | None = None

    @property
    def decimal(self) -> tuple[int, int] | None:
        match = _DECIMAL.match(self.type)
        return (int(match[1]), int(match[2])) if match else None


@dataclass(frozen=True)
class Table:
    name: str
    kind: str  # "table" or "mart"
    contract: bool
    grain: str
    description: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    question: str | None = None

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [column.name for column in self.columns if column.required]

    @property
    def text_columns(self) -> list[str]:
        return [column.name for column in self.columns if column.type == "text"]


@dataclass(frozen=True)
class WarehouseSpec:
    title: str
    tables: dict[str, Table]  # contract and other tables first, then marts, in file order

    @property
    def base_tables(self) -> list[Table]:
        return [table for table in self.tables.values() if table.kind == "table"]

    @property
    def marts(self) -> list[Table]:
        return [table for table in self.tables.values() if table.kind == "mart"]

    @property
    def contract_tables(self) -> list[Table]:
        return [table for table in self.tables.values() if table.contract]

    def __getitem__(self, name: str) -> Table:
        return self.tables[name]


def _column(entry: dict) -> Column:
    column = Column(
        name=str(entry["name"]),
        type=str(entry["type"]).replace(" ", ""),
        description=str(entry.get("description", "")).strip(),
        unit=None if entry.get("unit") is None else str(entry["unit"]),
        required=bool(entry.get("required", False)),
        pii=entry.get("pii"),
    )
    if column.type not in _SIMPLE_TYPES and column.decimal is None:
        raise ValueError(f"column {column.name}: unknown type {column.type!r}")
    if not column.description:
        raise ValueError(f"column {column.name}: no description")
    return column


def _table(name: str, body: dict, kind: str) -> Table:
    columns = tuple(_column(entry) for entry in body["columns"])
    names = [column.name for column in columns]
    if len(names) != len(set(names)):
        raise ValueError(f"{name} declares a column twice")
    key = tuple(body.get("key") or ())
    if set(key) - set(names):
        raise ValueError(f"{name}: key columns {set(key) - set(names)} are not columns")
    if kind == "mart" and not body.get("question"):
        raise ValueError(f"mart {name} says no question it answers")
    return Table(
        name=name,
        kind=kind,
        contract=bool(body.get("contract", False)),
        grain=str(body.get("grain", "")).strip(),
        description=" ".join(str(body["description"]).split()),
        key=key,
        columns=columns,
        question=body.get("question"),
    )


@lru_cache(maxsize=None)
def load_spec(path: Traversable = WAREHOUSE_SPEC_PATH) -> WarehouseSpec:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    tables = {name: _table(name, body, "table") for name, body in document["tables"].items()}
    for name, body in document.get("marts", {}).items():
        if name in tables:
            raise ValueError(f"{name} is declared both as a table and as a mart")
        tables[name] = _table(name, body, "mart")
    return WarehouseSpec(title=str(document.get("title", "")), tables=tables)


# --- type mapping -------------------------------------------------------------------------


def duckdb_type(column: Column) -> str:
    if column.decimal:
        return "DECIMAL({},{})".format(*column.decimal)
    return {
        "text": "VARCHAR",
        "integer": "INTEGER",
        "bigint": "BIGINT",
        "double": "DOUBLE",
        "boolean": "BOOLEAN",
        "date": "DATE",
        "timestamp": "TIMESTAMPTZ",
    }[column.type]


def postgres_type(column: Column) -> str:
    if column.decimal:
        return "NUMERIC({},{})".format(*column.decimal)
    return {
        "text": "TEXT",
        "integer": "INTEGER",
        "bigint": "BIGINT",
        "double": "DOUBLE PRECISION",
        "boolean": "BOOLEAN",
        "date": "DATE",
        "timestamp": "TIMESTAMPTZ",
    }[column.type]


def arrow_type(column: Column) -> pa.DataType:
    if column.decimal:
        return pa.decimal128(*column.decimal)
    return {
        "text": pa.string(),
        "integer": pa.int32(),
        "bigint": pa.int64(),
        "double": pa.float64(),
        "boolean": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }[column.type]


def sqlalchemy_type(column: Column):
    """The SQLAlchemy type, for targets other than DuckDB and PostgreSQL."""
    import sqlalchemy as sa

    if column.decimal:
        return sa.Numeric(*column.decimal, asdecimal=True)
    return {
        "text": sa.Text(),
        "integer": sa.Integer(),
        "bigint": sa.BigInteger(),
        "double": sa.Float(),
        "boolean": sa.Boolean(),
        "date": sa.Date(),
        "timestamp": sa.DateTime(timezone=True),
    }[column.type]


def arrow_schema(table: Table) -> pa.Schema:
    return pa.schema([pa.field(column.name, arrow_type(column)) for column in table.columns])

