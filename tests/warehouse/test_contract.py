"""The published tables are the contract's: names, required columns and column types.

The expectations are read from the contract page itself (docs/CONTRACT.md, its "Published
warehouse tables" table and its rule on column types), not from our schemas/warehouse.yaml, so
a column the spec forgot or mistyped fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.warehouse.spec import load_spec
from pipelines.warehouse.verify import contract_problems, published_columns, type_family

REPO = Path(__file__).resolve().parents[2]
CONTRACT_PAGE = REPO / "docs" / "CONTRACT.md"


def contract_tables() -> dict[str, list[str]]:
    """{table: [required columns]} from the contract page's warehouse table."""
    text = CONTRACT_PAGE.read_text(encoding="utf-8")
    section = text.split("## Published warehouse tables", 1)[1].split("Rules behind the columns", 1)[0]
    tables: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        # a column is a backticked name not inside parentheses (those list its values)
        columns_text = re.sub(r"\([^)]*\)", "", cells[2])
        tables[cells[0].strip("`")] = re.findall(r"`([a-z_0-9]+)`", columns_text)
    return tables


def contract_type(column: str) -> str | None:
    """The type family the contract's rules give a column (None: the rules say nothing)."""
    if column in ("hours", "total_hours", "evaluation_score"):
        return "decimal"
    if column.startswith("in_") or column == "is_hub":
        return "boolean"
    if column in ("registered_on", "founded_on", "service_date"):
        return "date"
    if column.endswith("_key") or column.endswith("_code") or column in ("source_id", "categories", "category"):
        return "text"
    return None


def test_the_contract_readme_lists_eight_tables():
    tables = contract_tables()
    assert set(tables) == {
        "dim_region", "dim_volunteer", "volunteer_source_map", "dim_organization",
        "organization_source_map", "fact_service", "dim_station", "quarantine",
    }
    assert "star_level" in tables["dim_volunteer"] and "record" in tables["quarantine"]


def test_the_spec_marks_every_contract_column_required():
    spec = load_spec()
    for table, columns in contract_tables().items():
        assert spec[table].contract, table
        assert set(spec[table].required_columns) == set(columns), table


def test_published_tables_have_every_required_column_with_the_contract_type(published):
    engine, result = published
    found = published_columns(engine, result.schema)
    for table, columns in contract_tables().items():
        assert table in found, f"{table} is not published"
        for column in columns:
            assert column in found[table], f"{table}.{column} is missing"
            expected = contract_type(column)
            if expected:
                assert type_family(found[table][column]) == expected, f"{table}.{column}"


def test_every_declared_table_and_column_is_published_with_its_type(published):
    engine, result = published
    assert contract_problems(engine, result.schema) == []


def test_marts_are_published_with_a_description(published):
    engine, result = published
    spec = load_spec()
    assert len(spec.marts) >= 15
    for mart in spec.marts:
        assert mart.question and mart.description
        assert result.rows[mart.name] >= 1, f"{mart.name} is empty on the test world"
