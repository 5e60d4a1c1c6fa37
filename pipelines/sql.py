"""SQL text built in one place: identifiers and the few literals SQL cannot take as parameters.

Values go to the database as bound parameters wherever the statement allows one. Some do
not: DuckDB's `SET` and `COPY ... TO`, `COMMENT ON`, a JSON path inside a generated SELECT.
There, and only there, `literal` writes the value, with its quotes doubled, so a DATA_DIR
named `O'Brien` or a comment with an apostrophe is still one literal.
"""

from __future__ import annotations


def quote(identifier: str) -> str:
    """A double-quoted SQL identifier (DuckDB, PostgreSQL and standard SQL agree)."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A single-quoted SQL string literal: quotes inside are doubled."""
    return "'" + text.replace("'", "''") + "'"
