"""The statistics marts: one SQL file per mart, next to this module.

Each `<mart>.sql` is a SELECT over the published tables (DuckDB dialect), run by the build
(pipelines/warehouse/build.py) after the tables it reads; its columns, types, key and the
question it answers are declared in `schemas/warehouse.yaml` under `marts:`. They read
`getvariable('as_of')` for the publishing date (age bands). Marts are published as tables,
in the same transaction as everything else, so they never disagree with the tables.
"""

from __future__ import annotations

from pathlib import Path

MARTS_DIR = Path(__file__).resolve().parent


def mart_sql(name: str) -> str:
    """The SELECT that builds mart `name`."""
    path = MARTS_DIR / f"{name}.sql"
    if not path.exists():
        raise FileNotFoundError(f"mart {name} has no SQL file ({path.name})")
    return path.read_text(encoding="utf-8").strip().rstrip(";")
