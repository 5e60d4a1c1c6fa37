"""Look for clear personal numbers in every text column of every table: of the build before
loading, and of the published warehouse afterwards.

The contract forbids a clear certificate number or phone anywhere in the warehouse. The build
only publishes hashed and masked forms, but text typed by people (organization and station
names, quarantine records) can carry a number, in any form people write one: in groups, with
dots or brackets, zero-width characters between the digits, full-width digits.

1. The database picks the values that could hold one (a run of 11 or more digits with the
   separators people type between them, as `pipelines.privacy` allows them: `LOOSE_PATTERN`,
   valid in DuckDB's RE2 and in PostgreSQL's ARE; asked only of values that long; 15 digits
   in identifier columns, where only an ID number counts: `ID_PATTERN`), with their row's key;
2. Python judges them with `pipelines.privacy.find_personal_numbers` (ID-shaped runs, and
   mobiles and fixed lines, both counted as phones). In identifier columns (`*_key`,
   `*source_id`, `uscc`), which a source may make long and numeric, only a real resident ID
   number counts (a province's code, a birth date and the check character right). Staging
   refuses every identifier that could be one (`pipelines.privacy.holds_a_personal_number`);
   a source's 15- or 18-digit record numbers, which start with no province's code or hold
   no date, pass both. `id_hash` holds hashes only: anything else in it is a finding.

A finding names the table, the column, what was found and the row's key, masked; never a
value. `ensure_no_personal_numbers(files)` runs before loading (publishing stops on any
finding); `scan_warehouse(engine, schema)` on what is published (the asset check).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import sqlalchemy as sa

from pipelines import duck
from pipelines.normalize.ids import could_be_a_resident_id, is_valid_resident_id
from pipelines.privacy import MAX_SEPARATORS, SEPARATOR, find_personal_numbers, mask_id
from pipelines.sql import quote
from pipelines.warehouse.spec import WarehouseSpec, load_spec
from pipelines.warehouse.verify import default_schema, published_columns, type_family

_DIGIT = "[0-9０-９]"
MIN_DIGITS = 11  # the shortest number looked for: a mobile phone or a fixed line
MIN_ID_DIGITS = 15  # the shortest resident ID number (issued before 1999; 18 characters since)


def _digit_run(digits: int) -> str:
    """A run of `digits` digits or more, with what `find_personal_numbers` allows between
    two (`privacy.SEPARATOR`, `MAX_SEPARATORS` of them at most)."""
    return f"{_DIGIT}(?:{SEPARATOR}{{0,{MAX_SEPARATORS}}}{_DIGIT}){{{digits - 1},}}"


LOOSE_PATTERN = _digit_run(MIN_DIGITS)
# identifier columns: only an ID number is a finding there, so only values that can hold one
# are fetched (the pipeline's own keys, a letter and 12 hex characters, and the sources'
# 14- and 16-digit record ids were millions of candidates at a million persons)
ID_PATTERN = _digit_run(MIN_ID_DIGITS)
SHORTEST_MATCH = {LOOSE_PATTERN: MIN_DIGITS, ID_PATTERN: MIN_ID_DIGITS}
HASH_PATTERN = "^[0-9a-f]{64}$"
HASH_COLUMNS = frozenset({"id_hash"})
# Every candidate is judged, fetched this many at a time: a cap (the first 10,000 of a column)
# let a column with many harmless long numbers (the ids in the quarantine's raw records) pass
# with the rest unjudged
CANDIDATE_BATCH_ROWS = 10_000
MAX_ROWS_NAMED = 3
# A scan errs on the side of finding: any real birth date counts, however late.
ANY_DAY = dt.date.max

# (source expression, key expression, column, pattern, match) -> every (key, value) fetched;
# `match` False asks for the values that do NOT match (a hash column holding something else)
CandidateQuery = Callable[[str, str, str, str, bool], Iterator[tuple[str, str]]]


class PersonalDataFound(RuntimeError):
    """A clear resident ID number or phone is in a column about to be published."""


@dataclass
class Finding:
    """What one column holds that it must not: counts, and the (masked) keys of some rows."""

    id_numbers: int = 0
    phones: int = 0
    not_hashes: int = 0
    rows: tuple[str, ...] = ()

    def describe(self, where: str) -> str:
        parts = [f"{count} {what}" for count, what in (
            (self.id_numbers, "ID number(s)"), (self.phones, "phone(s)"), (self.not_hashes, "value(s) that are no hash"),
        ) if count]
        return f"{where}: {', '.join(parts)} (rows {', '.join(self.rows)})"


def _fetch_condition(col: str, test: str, pattern: str, match: bool, digits_only: str) -> str:
    """SQL: the values of `col` a scan fetches, `test` being its regular expression's call. A
    value a digit run can match holds that many characters at least: shorter ones (codes,
    categories, dates, counties, keys) are passed over before the expression, which is the
    scan's cost (`length` counts characters in DuckDB and PostgreSQL alike)."""
    if not match:
        return f"{col} IS NOT NULL AND NOT {test}"
    condition = f"length({col}) >= {SHORTEST_MATCH[pattern]} AND {test}" if pattern in SHORTEST_MATCH else test
    if pattern == ID_PATTERN:
        # `digits_only`: the dialect's test for a value of ASCII digits alone. Such a value
        # holds an ID number only at an ID's length (no digit may stand beside one): a
        # source's 14- and 16-digit record numbers are not candidates
        condition += f" AND (length({col}) IN (15, 18) OR NOT {digits_only})"
    return condition


def is_identifier_column(name: str) -> bool:
    return name.endswith("_key") or name.endswith("source_id") or name == "uscc"


def _masked_key(key: object) -> str:
    return mask_id(str(key)) if key is not None else "?"


def _judge(column: str, candidates: Iterator[tuple[str, str]]) -> Finding | None:
    finding = Finding()
    rows: list[str] = []
    for key, value in candidates:
        numbers = find_personal_numbers(str(value))
        if is_identifier_column(column):
            numbers = [n for n in numbers if n.kind == "id" and could_be_a_resident_id(n.digits)
                       and is_valid_resident_id(n.digits.upper(), today=ANY_DAY)]
        if numbers:
            finding.id_numbers += sum(n.kind == "id" for n in numbers)
            finding.phones += sum(n.kind == "phone" for n in numbers)
            if len(rows) < MAX_ROWS_NAMED:
                rows.append(_masked_key(key))
    finding.rows = tuple(rows)
    return finding if rows else None


def _scan(
    sources: dict[str, tuple[str, str, list[str]]], candidates: CandidateQuery
) -> dict[str, Finding]:
    """`sources`: table -> (the SQL that reads it, its key expression, its text columns)."""
    findings: dict[str, Finding] = {}
    for name, (source, key, text_columns) in sources.items():
        for column in text_columns:
            if column in HASH_COLUMNS:
                others = Finding()
                for row_key, _ in candidates(source, key, column, HASH_PATTERN, False):
                    others.not_hashes += 1
                    if others.not_hashes <= MAX_ROWS_NAMED:
                        others.rows += (_masked_key(row_key),)
                if others.not_hashes:
                    findings[f"{name}.{column}"] = others
                continue
            pattern = ID_PATTERN if is_identifier_column(column) else LOOSE_PATTERN
            found = _judge(column, candidates(source, key, column, pattern, True))
            if found:
                findings[f"{name}.{column}"] = found
    return findings


def _key_expression(columns: list[str], key: tuple[str, ...]) -> str:
    """The row key a finding names: the table's key columns joined, else its first column."""
    parts = [c for c in key if c in columns] or columns[:1]
    return " || '/' || ".join(f"CAST({quote(c)} AS VARCHAR)" for c in parts) if parts else "''"


def scan_built_files(files: dict[str, Path], spec: WarehouseSpec | None = None) -> dict[str, Finding]:
    """{"table.column": Finding} for every text column of the built files where something
    is found."""
    spec = spec or load_spec()
    con = duck.connect()

    def candidates(source: str, key: str, column: str, pattern: str, match: bool) -> Iterator[tuple[str, str]]:
        col = quote(column)
        condition = _fetch_condition(col, f"regexp_matches({col}, ?)", pattern, match,
                                     digits_only=f"regexp_full_match({col}, '[0-9]+')")
        result = con.execute(f"SELECT {key}, {col} FROM {source} WHERE {condition}", [pattern])
        while batch := result.fetchmany(CANDIDATE_BATCH_ROWS):
            yield from batch

    sources = {}
    for name, path in files.items():
        view = f"_scan_{name}"
        con.read_parquet([str(path)]).create_view(view, replace=True)  # the path as data, not SQL
        sources[name] = (quote(view), _key_expression(spec[name].column_names, spec[name].key),
                         spec[name].text_columns)
    try:
        return _scan(sources, candidates)
    finally:
        con.close()


def scan_warehouse(engine: sa.Engine, schema: str | None = None) -> dict[str, Finding]:
    """The same scan over every table of the warehouse schema, as published (a column the
    spec does not know, added by hand or by an older build, is scanned too)."""
    dialect = engine.dialect.name
    schema = schema or default_schema(engine)
    prefix = f"{quote(schema)}." if schema else ""
    spec = load_spec()

    def candidates(source: str, key: str, column: str, pattern: str, match: bool) -> Iterator[tuple[str, str]]:
        col = quote(column)
        if dialect in ("duckdb", "postgresql"):
            if dialect == "duckdb":
                test, digits_only = f"regexp_matches({col}, :p)", f"regexp_full_match({col}, '[0-9]+')"
            else:
                test, digits_only = f"{col} ~ :p", f"{col} ~ '^[0-9]+$'"
            condition = _fetch_condition(col, test, pattern, match, digits_only)
            # PostgreSQL's rows come through a server-side cursor, a batch at a time
            with engine.connect().execution_options(yield_per=CANDIDATE_BATCH_ROWS) as connection:
                result = connection.execute(sa.text(f"SELECT {key}, {col} FROM {source} WHERE {condition}"), {"p": pattern})
                yield from (tuple(row) for row in result)
            return
        import re  # no regular expressions in SQL: look at the values here

        compiled, digits = re.compile(pattern), re.compile("[0-9]+")
        with engine.connect() as connection:
            rows = connection.execute(sa.text(f"SELECT {key}, {col} FROM {source} WHERE {col} IS NOT NULL"))
            yield from ((k, v) for k, v in rows if bool(compiled.search(v)) == match
                        and not (match and pattern == ID_PATTERN and digits.fullmatch(v) and len(v) not in (15, 18)))

    sources = {}
    for table, columns in published_columns(engine, schema).items():
        key = spec[table].key if table in spec.tables else ()
        sources[table] = (
            prefix + quote(table),
            _key_expression(list(columns), key),
            [c for c, kind in columns.items() if type_family(kind) == "text"],
        )
    return _scan(sources, candidates)


def describe_findings(findings: dict[str, Finding]) -> str:
    return "; ".join(finding.describe(where) for where, finding in sorted(findings.items()))


def ensure_no_personal_numbers(files: dict[str, Path], spec: WarehouseSpec | None = None) -> None:
    """Raise PersonalDataFound (naming tables, columns, counts and masked row keys, never
    values) when the scan of the built files finds any."""
    findings = scan_built_files(files, spec)
    if findings:
        raise PersonalDataFound(
            f"refusing to publish: clear personal numbers in {describe_findings(findings)}. "
            "Mask them upstream."
        )
