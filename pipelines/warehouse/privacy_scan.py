"""Look for clear personal numbers in every text column: of the build before loading, and of
the published warehouse afterwards.

The contract forbids a clear certificate number or phone anywhere in the warehouse. The build
only publishes hashed and masked forms, but text typed by people (organization and station
names, quarantine details) can carry a number. A regular expression finds candidates in the
database (DuckDB RE2 or PostgreSQL ARE: the patterns are valid in both), then Python confirms
them: an 18-character number counts only when its check character and birth date are right,
so a long numeric identifier is not taken for one. Reports name tables and columns with
counts, never a value.

* `ensure_no_personal_numbers(files)`: before loading; publishing stops on any finding.
* `scan_warehouse(engine, schema)`: what is actually published (the asset check).

Identifier columns (`*_key`, `source_id`, `*_source_id`, `id_hash`) are exempt from the phone
pattern: they are opaque ids a source may make 11 digits long; they are still checked for
resident ID numbers.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Callable

import duckdb
import sqlalchemy as sa

from pipelines.normalize.ids import is_valid_resident_id
from pipelines.sql import literal, quote
from pipelines.warehouse.spec import WarehouseSpec, load_spec
from pipelines.warehouse.verify import default_schema, published_columns, type_family

# Bounded so that part of a longer identifier or of a hex hash is not a match; group 1 is
# the number. Full-width digits count: people type them.
_NOT_ALNUM = "[^0-9A-Za-z０-９]"
ID_PATTERN = f"(?:^|{_NOT_ALNUM})([0-9０-９]{{17}}[0-9Xx０-９Ｘｘ])(?:$|{_NOT_ALNUM})"
PHONE_PATTERN = f"(?:^|{_NOT_ALNUM})([1１][3-9３-９][0-9０-９]{{9}})(?:$|{_NOT_ALNUM})"
MAX_CANDIDATES = 10_000
# A scan errs on the side of finding: any real birth date counts, however late.
ANY_DAY = dt.date.max

# (source expression, column, pattern) -> distinct candidate numbers
CandidateQuery = Callable[[str, str, str], list[str]]


class PersonalDataFound(RuntimeError):
    """A clear resident ID number or phone is in a column about to be published."""


def is_identifier_column(name: str) -> bool:
    return name.endswith("_key") or name.endswith("source_id") or name == "id_hash"


def _scan(
    sources: dict[str, tuple[str, list[str]]], candidates: CandidateQuery
) -> dict[str, dict[str, int]]:
    """`sources`: table name -> (the SQL that reads it, its text columns)."""
    findings: dict[str, dict[str, int]] = {}
    for name, (source, text_columns) in sources.items():
        for column in text_columns:
            ids = [c for c in candidates(source, column, ID_PATTERN) if is_valid_resident_id(c, today=ANY_DAY)]
            phones = [] if is_identifier_column(column) else candidates(source, column, PHONE_PATTERN)
            if ids or phones:
                findings[f"{name}.{column}"] = {"id_numbers": len(ids), "phones": len(phones)}
    return findings


def scan_built_files(
    files: dict[str, Path], spec: WarehouseSpec | None = None
) -> dict[str, dict[str, int]]:
    """{"table.column": {"id_numbers": n, "phones": m}} for every column of the built files
    where something is found (distinct values, up to MAX_CANDIDATES per column and pattern)."""
    con = duckdb.connect(":memory:")

    def candidates(source: str, column: str, pattern: str) -> list[str]:
        rows = con.execute(
            f"SELECT DISTINCT regexp_extract({quote(column)}, ?, 1) FROM {source} "
            f"WHERE regexp_matches({quote(column)}, ?) LIMIT {MAX_CANDIDATES}",
            [pattern, pattern],
        ).fetchall()
        return [row[0] for row in rows]

    spec = spec or load_spec()
    sources = {
        name: (f"read_parquet({literal(str(path))})", spec[name].text_columns)
        for name, path in files.items()
    }
    try:
        return _scan(sources, candidates)
    finally:
        con.close()


def scan_warehouse(engine: sa.Engine, schema: str | None = None) -> dict[str, dict[str, int]]:
    """The same scan over every table of the warehouse schema."""
    dialect = engine.dialect.name
    schema = schema or default_schema(engine)
    prefix = f"{quote(schema)}." if schema else ""

    def candidates(source: str, column: str, pattern: str) -> list[str]:
        col = quote(column)
        if dialect == "duckdb":
            sql = (
                f"SELECT DISTINCT regexp_extract({col}, :p, 1) FROM {source} "
                f"WHERE regexp_matches({col}, :p) LIMIT {MAX_CANDIDATES}"
            )
        elif dialect == "postgresql":
            sql = (
                f"SELECT DISTINCT substring({col} from :p) FROM {source} "
                f"WHERE {col} ~ :p LIMIT {MAX_CANDIDATES}"
            )
        else:  # no regular expressions in SQL: look at the values here
            with engine.connect() as connection:
                values = connection.execute(sa.text(f"SELECT DISTINCT {col} FROM {source}")).scalars()
                compiled = re.compile(pattern)
                return sorted({m.group(1) for v in values if v for m in compiled.finditer(v)})
        with engine.connect() as connection:
            return list(connection.execute(sa.text(sql), {"p": pattern}).scalars())

    # every text column of every table as published, not as the spec says: a column the
    # spec does not know (added by hand, or by an older build) is scanned too
    sources = {
        table: (prefix + quote(table), [c for c, kind in columns.items() if type_family(kind) == "text"])
        for table, columns in published_columns(engine, schema).items()
    }
    return _scan(sources, candidates)


def describe_findings(findings: dict[str, dict[str, int]]) -> str:
    return "; ".join(
        f"{column}: {found['id_numbers']} ID number(s), {found['phones']} phone(s)"
        for column, found in sorted(findings.items())
    )


def ensure_no_personal_numbers(files: dict[str, Path], spec: WarehouseSpec | None = None) -> None:
    """Raise PersonalDataFound (naming columns and counts, never values) when the scan finds any."""
    findings = scan_built_files(files, spec)
    if findings:
        raise PersonalDataFound(
            f"refusing to publish: clear personal numbers in {describe_findings(findings)}. "
            "Mask them upstream."
        )
