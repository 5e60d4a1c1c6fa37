"""Paths and values reach SQL as parameters, and the one quoting helper holds where they cannot.

The whole sync through a DATA_DIR named with a quote, a double quote, spaces, brackets, a
star and Chinese characters is `tests/contract/test_sync_contract.py` (its DATA_DIR). Here:
the helper `pipelines.sql.literal` / `quote` against both real databases, the default
warehouse URL under such a DATA_DIR, and a scan of the code for SQL text that pastes a
path or a value in.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from pipelines.config import ConfigurationError, Settings
from pipelines.sql import literal, quote

ROOT = Path(__file__).resolve().parents[1]
HOSTILE_TEXTS = [
    "O'Brien", 'say "hi"', "it's \"both\"", "back\\slash\\", "line\nbreak", "数据 目录",
    "'; DROP TABLE t; --", "$$dollar$$", "tab\there", "",
]
HOSTILE_FOLDER = "it's \"quoted\" [1] 数据 * #%"


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_literal_and_quote_round_trip_in_duckdb(text):
    con = duckdb.connect()
    try:
        assert con.execute(f"SELECT {literal(text)}").fetchone()[0] == text
        con.execute(f"CREATE TABLE {quote(text or 'empty')} ({quote(text + 'c')} VARCHAR)")
        con.execute(f"INSERT INTO {quote(text or 'empty')} VALUES (?)", [text])
        assert con.execute(f"SELECT {quote(text + 'c')} FROM {quote(text or 'empty')}").fetchone()[0] == text
    finally:
        con.close()


def test_literal_round_trips_in_postgresql():
    engine = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    try:
        with engine.connect() as connection:
            for text in HOSTILE_TEXTS:
                assert connection.execute(sa.text(f"SELECT {literal(text)}::text")).scalar_one() == text
    finally:
        engine.dispose()


def test_the_default_warehouse_lands_in_a_data_dir_of_any_name(tmp_path):
    data_dir = tmp_path / HOSTILE_FOLDER
    settings = Settings(data_dir=data_dir, pii_hash_key="k" * 32)
    data_dir.mkdir()
    engine = sa.create_engine(settings.resolved_warehouse_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE t AS SELECT 1 AS one"))
    finally:
        engine.dispose()
    assert [p.name for p in data_dir.iterdir()] == ["warehouse.duckdb"]
    assert settings.warehouse_display.endswith("/warehouse.duckdb")
    # DuckDB itself reads a '?' in a file name as options: said plainly, not a lost file
    with pytest.raises(ConfigurationError, match="DATA_DIR"):
        Settings(data_dir=tmp_path / "why?", pii_hash_key="k" * 32).resolved_warehouse_url


# SQL text that pastes a path or a value in: a parameter (or the relation API) instead
PASTED = re.compile(r"read_parquet\(\{|\bTO \{(?!quote)|\bSET [\w ]+= *\{|'\{[^}]*\}'")


def test_no_sql_pastes_a_path_or_a_value_in():
    pasted = []
    for path in sorted([*ROOT.glob("pipelines/**/*.py"), *ROOT.glob("assets/*.py")]):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if PASTED.search(line):
                pasted.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not pasted, "\n".join(pasted)
