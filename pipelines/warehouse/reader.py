"""Opening the published warehouse to read it: the report and the certificates read the
marts this way, on DuckDB and PostgreSQL alike.

A DuckDB file is opened read-only: a reader must never take the one writer's lock (a
publish running at the same time would fail on it), nor change the file by accident.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from pipelines import duck
from pipelines.sql import quote


def read_only_engine(url: str) -> sa.Engine:
    """A SQLAlchemy engine on the warehouse at `url`; DuckDB files are opened read-only."""
    if make_url(url).get_backend_name() == "duckdb":
        return duck.quiet_engine(sa.create_engine(url, connect_args={"read_only": True}))
    return sa.create_engine(url)


def table_name(table: str, schema: str | None) -> str:
    """`table` quoted, qualified by `schema` when one is named."""
    return f"{quote(schema)}.{quote(table)}" if schema else quote(table)
