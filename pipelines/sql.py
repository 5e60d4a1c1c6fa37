"""SQL text built in one place: identifiers, and the few literals SQL cannot take as parameters.

Paths and values go to the database as bound parameters (`read_parquet(?)`,
`SET temp_directory = ?`, `COPY ... TO ?`), or as data through DuckDB's relation API where a
statement cannot be prepared (a view over a Parquet file: `con.read_parquet([path])`); page
files are passed as a list, never as a glob, so a DATA_DIR holding `'`, `"`, `[` or `*` is
read as the folder it is. Where no parameter is possible — PostgreSQL's `COMMENT ON`, a
JSON path or a constant inside generated SQL — `literal` writes the text with its quotes
doubled (tests/test_sql_paths.py). Identifiers are always `quote`d.
"""

from __future__ import annotations


def quote(identifier: str) -> str:
    """A double-quoted SQL identifier (DuckDB, PostgreSQL and standard SQL agree)."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A single-quoted SQL string literal: quotes inside are doubled."""
    return "'" + text.replace("'", "''") + "'"
