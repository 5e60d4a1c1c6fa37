"""The files the warehouse is built from, opened as DuckDB views with the columns it expects.

Resolved files (`DATA_DIR/resolved/`) are required: without them there is nothing to publish.
Staged files (`DATA_DIR/staged/`) for stations, evaluations, redemptions, projects and
quarantine may be absent on a first sync; they then read as empty. A column the warehouse
expects but a file lacks reads as NULL of the expected type, so an upstream file that gains
or loses an optional column does not break the build; a column of the wrong type fails the
cast loudly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.schemas import load_canonical
from pipelines.sql import quote

log = logging.getLogger(__name__)

_CANONICAL_TO_DUCKDB = {
    "string": "VARCHAR",
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMPTZ",
    "list": "VARCHAR[]",
}

# The resolved files (docs/DESIGN.md "Resolved"), with the columns the warehouse reads.
RESOLVED_COLUMNS: dict[str, dict[str, str]] = {
    "volunteers": {
        "volunteer_key": "VARCHAR",
        "cert_hash": "VARCHAR",
        "cert_prefix4": "VARCHAR",
        "cert_suffix4": "VARCHAR",
        "name": "VARCHAR",
        "gender": "VARCHAR",
        "birth_date": "DATE",
        "birth_year": "INTEGER",
        "region_code": "VARCHAR",
        "registered_on": "DATE",
        "in_national": "BOOLEAN",
        "in_provincial": "BOOLEAN",
        "status": "VARCHAR",
    },
    "volunteer_source_map": {
        "source": "VARCHAR",
        "source_id": "VARCHAR",
        "volunteer_key": "VARCHAR",
        "match_method": "VARCHAR",
        "match_probability": "DOUBLE",
    },
    "organizations": {
        "org_key": "VARCHAR",
        "uscc": "VARCHAR",
        "name": "VARCHAR",
        "registration_status": "VARCHAR",
        "level": "VARCHAR",
        "is_hub": "BOOLEAN",
        "region_code": "VARCHAR",
        "categories": "VARCHAR",
        "founded_on": "DATE",
        "member_count": "INTEGER",
        "status": "VARCHAR",
        "credit_status": "VARCHAR",
        "in_national": "BOOLEAN",
        "in_provincial": "BOOLEAN",
    },
    "organization_source_map": {
        "source": "VARCHAR",
        "source_id": "VARCHAR",
        "org_key": "VARCHAR",
        "match_method": "VARCHAR",
    },
    "services": {
        "service_key": "VARCHAR",
        "volunteer_key": "VARCHAR",
        "org_key": "VARCHAR",
        "project_key": "VARCHAR",
        "project_source": "VARCHAR",
        "project_source_id": "VARCHAR",
        "service_date": "DATE",
        "hours": "DOUBLE",
        "category": "VARCHAR",
        "source": "VARCHAR",
        "national_source_id": "VARCHAR",
        "provincial_source_id": "VARCHAR",
    },
}

QUARANTINE_COLUMNS = {
    "source": "VARCHAR",
    "entity": "VARCHAR",
    "source_id": "VARCHAR",
    "rule": "VARCHAR",
    "detail": "VARCHAR",
    "record": "VARCHAR",
    "first_seen_at": "TIMESTAMPTZ",
    "last_seen_at": "TIMESTAMPTZ",
}

# staged tables the warehouse reads (quarantine is not a canonical table: declared above)
STAGED_TABLES = (
    "volunteers",
    "organizations",
    "projects",
    "evaluations",
    "stations",
    "redemptions",
)


@dataclass(frozen=True)
class InputFiles:
    resolved_dir: Path
    staged_dir: Path

    def resolved(self, name: str) -> Path:
        return self.resolved_dir / f"{name}.parquet"

    def staged(self, name: str) -> Path:
        return self.staged_dir / f"{name}.parquet"


def staged_columns(table: str) -> dict[str, str]:
    if table == "quarantine":
        return dict(QUARANTINE_COLUMNS)
    spec = load_canonical()[table]
    return {column.name: _CANONICAL_TO_DUCKDB[column.type] for column in spec.columns}


def _select_expression(name: str, wanted_type: str, actual_type: str | None) -> str:
    quoted = f'"{name}"'
    if actual_type is None:
        return f"CAST(NULL AS {wanted_type}) AS {quoted}"
    if wanted_type == "VARCHAR" and actual_type.endswith("[]"):
        # a list of labels (categories) published as text joined by ',' in list order
        return f"array_to_string({quoted}, ',') AS {quoted}"
    return f"CAST({quoted} AS {wanted_type}) AS {quoted}"


def register_view(
    con: duckdb.DuckDBPyConnection,
    view: str,
    path: Path,
    columns: dict[str, str],
    *,
    required: bool,
) -> int:
    """Create `view` over the Parquet file with exactly `columns`; returns its row count."""
    if not path.exists():
        if required:
            raise FileNotFoundError(
                f"the warehouse needs {path}: run the upstream assets first"
            )
        log.warning("%s is absent: %s is published empty", path.name, view)
        select = ", ".join(f'CAST(NULL AS {t}) AS "{c}"' for c, t in columns.items())
        con.execute(f'CREATE OR REPLACE VIEW "{view}" AS SELECT {select} WHERE false')
        return 0
    # a relation, not SQL text: a view cannot take its path as a parameter, and the path is
    # a list (never a glob), so any DATA_DIR is read as the folder it is
    source = con.read_parquet([str(path)])
    actual = dict(zip(source.columns, (str(kind) for kind in source.types)))
    select = ", ".join(
        _select_expression(name, wanted, actual.get(name)) for name, wanted in columns.items()
    )
    source.project(select).create_view(view, replace=True)
    return con.execute(f"SELECT count(*) FROM {quote(view)}").fetchall()[0][0]


def register_inputs(con: duckdb.DuckDBPyConnection, files: InputFiles) -> dict[str, int]:
    """Views `in_<resolved name>` and `in_staged_<table>`; returns the row count of each."""
    counts: dict[str, int] = {}
    for name, columns in RESOLVED_COLUMNS.items():
        view = f"in_{name}"
        counts[view] = register_view(con, view, files.resolved(name), columns, required=True)
    for table in (*STAGED_TABLES, "quarantine"):
        view = f"in_staged_{table}"
        counts[view] = register_view(
            con, view, files.staged(table), staged_columns(table), required=False
        )
    return counts
