"""Reading a published warehouse back the way an analyst would, for comparisons."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa


def hours_decimal(value: float) -> Decimal:
    """An hour figure as the warehouse's DECIMAL(18,6) holds it."""
    return Decimal(str(value)).quantize(Decimal("0.000001"))


def _normal(value):
    """One comparable form across DuckDB and PostgreSQL drivers."""
    if isinstance(value, Decimal):
        return value.normalize()
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc)
    return value


def table_rows(engine: sa.Engine, table: str) -> list[tuple]:
    """Every row of `table`, normalized and sorted in Python (collations differ per target)."""
    with engine.connect() as connection:
        rows = connection.execute(sa.text(f'SELECT * FROM "{table}"')).all()
    normalized = [tuple(_normal(v) for v in row) for row in rows]
    return sorted(normalized, key=lambda row: tuple((v is None, str(v)) for v in row))


def scalar(engine: sa.Engine, sql: str, **params):
    with engine.connect() as connection:
        return connection.execute(sa.text(sql), params).scalar_one()


def rows(engine: sa.Engine, sql: str, **params) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text(sql), params).all()]


def all_text_values(engine: sa.Engine, columns_by_table: dict[str, list[str]]) -> list[str]:
    """Every distinct non-null value of the given text columns."""
    values: set[str] = set()
    with engine.connect() as connection:
        for table, columns in columns_by_table.items():
            for column in columns:
                values.update(
                    v
                    for v in connection.execute(
                        sa.text(f'SELECT DISTINCT "{column}" FROM "{table}"')
                    ).scalars()
                    if v is not None
                )
    return sorted(values)


def text_columns(engine: sa.Engine, schema: str) -> dict[str, list[str]]:
    """Every text column of every table in `schema`, as the database reports them (not from
    our own spec: a column the spec forgot is scanned too)."""
    found: dict[str, list[str]] = {}
    with engine.connect() as connection:
        for table, column, data_type in connection.execute(
            sa.text(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = :schema"
            ),
            {"schema": schema},
        ):
            if str(data_type).lower() in ("varchar", "text", "character varying"):
                found.setdefault(table, []).append(column)
    return found
