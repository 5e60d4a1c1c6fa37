"""Checks on the published warehouse itself, read back through SQLAlchemy after a publish.

* `contract_problems`: every table of the spec is there with every declared column, of the
  declared type family (text, integer, decimal, boolean, date, ...), as the target reports it.
* `hours_reconciliation`: the province's total hours equal the sum of the persons' totals
  plus the hours no person is known for.

Used by the Dagster asset checks and by the tests; both read what a dashboard would read.
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from pipelines.sql import quote
from pipelines.warehouse.spec import WarehouseSpec, load_spec


def default_schema(engine: sa.Engine) -> str | None:
    """The schema tables go to when none is named: DuckDB `main`; PostgreSQL the connection's
    current schema (the first of its search_path that exists, `public` unless the URL or the
    role says otherwise); other targets their default (None)."""
    if engine.dialect.name == "duckdb":
        return "main"
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            current = connection.execute(sa.text("SELECT current_schema()")).scalar_one()
            if current:
                return current
            search_path = connection.execute(sa.text("SHOW search_path")).scalar_one()
        return first_named_schema(search_path) or "public"
    return None


def first_named_schema(search_path: str) -> str | None:
    """The first schema a PostgreSQL search_path names, unquoted, "$user" aside: where a
    CREATE TABLE would go once it exists. When none of the path exists yet (a login set to
    `search_path = warehouse` before the first publish), the publish makes that one rather
    than fill `public`, which the login's readers would not look in."""
    for entry in search_path.split(","):
        name = entry.strip()
        if name.startswith('"') and name.endswith('"') and len(name) >= 2:
            name = name[1:-1].replace('""', '"')
        if name and name != "$user":
            return name
    return None


def published_columns(engine: sa.Engine, schema: str | None = None) -> dict[str, dict[str, str]]:
    """{table: {column: declared type, lower case}} as the target reports it.

    DuckDB and PostgreSQL answer from information_schema (duckdb-engine's reflection does not
    work on DuckDB 2); other targets through SQLAlchemy's inspector.
    """
    columns: dict[str, dict[str, str]] = {}
    if engine.dialect.name in ("duckdb", "postgresql"):
        schema = schema or default_schema(engine)
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT table_name, column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = :schema ORDER BY table_name, ordinal_position"
                ),
                {"schema": schema},
            ).all()
        for table, column, data_type in rows:
            columns.setdefault(table, {})[column] = str(data_type).lower()
        return columns
    inspector = sa.inspect(engine)
    for table in inspector.get_table_names(schema=schema):
        columns[table] = {
            c["name"]: str(c["type"]).lower() for c in inspector.get_columns(table, schema=schema)
        }
    return columns


def type_family(declared: str) -> str:
    """The spec type family (text, integer, bigint, double, decimal, boolean, date, timestamp)
    of a type name as DuckDB, PostgreSQL or SQLite declare it."""
    declared = declared.lower()
    if declared.startswith(("decimal", "numeric")):
        return "decimal"
    if declared.startswith("timestamp") or declared == "datetime":
        return "timestamp"
    if declared.startswith(("varchar", "text", "character varying", "string")):
        return "text"
    return {
        "integer": "integer",
        "int": "integer",
        "int4": "integer",
        "bigint": "bigint",
        "int8": "bigint",
        "double": "double",
        "double precision": "double",
        "float": "double",
        "float8": "double",
        "boolean": "boolean",
        "bool": "boolean",
        "date": "date",
    }.get(declared, declared)


def contract_problems(
    engine: sa.Engine, schema: str | None = None, spec: WarehouseSpec | None = None
) -> list[str]:
    """What is missing or mistyped in the warehouse (empty when every table is right)."""
    spec = spec or load_spec()
    published = published_columns(engine, schema)
    problems: list[str] = []
    for table in spec.tables.values():
        if table.name not in published:
            problems.append(f"{table.name}: missing")
            continue
        for column in table.columns:
            declared = published[table.name].get(column.name)
            if declared is None:
                problems.append(f"{table.name}.{column.name}: missing")
                continue
            expected = "decimal" if column.decimal else column.type
            if type_family(declared) != expected:
                problems.append(f"{table.name}.{column.name}: {declared}, expected {expected}")
    return problems


def hours_reconciliation(engine: sa.Engine, schema: str | None = None) -> dict[str, Decimal]:
    """Total hours of fact_service against dim_volunteer.total_hours + unattributed hours."""
    schema = schema or default_schema(engine)
    prefix = f"{quote(schema)}." if schema else ""
    with engine.connect() as connection:
        total, unattributed = connection.execute(
            sa.text(
                "SELECT coalesce(sum(hours), 0), "
                "coalesce(sum(CASE WHEN volunteer_key IS NULL THEN hours END), 0) "
                f"FROM {prefix}fact_service"
            )
        ).one()
        persons = connection.execute(
            sa.text(f"SELECT coalesce(sum(total_hours), 0) FROM {prefix}dim_volunteer")
        ).scalar_one()
        # hours of services whose person is not in dim_volunteer would fall through the sum
        orphaned = connection.execute(
            sa.text(
                f"SELECT coalesce(sum(f.hours), 0) FROM {prefix}fact_service f "
                f"WHERE f.volunteer_key IS NOT NULL AND NOT EXISTS "
                f"(SELECT 1 FROM {prefix}dim_volunteer v WHERE v.volunteer_key = f.volunteer_key)"
            )
        ).scalar_one()
    total, unattributed, persons, orphaned = (
        Decimal(str(v)) for v in (total, unattributed, persons, orphaned)
    )
    return {
        "total_hours": total,
        "volunteer_hours": persons,
        "unattributed_hours": unattributed,
        "orphaned_hours": orphaned,
        "difference": total - persons - unattributed,
    }
