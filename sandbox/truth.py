"""The truth of a sandbox world: what each stored row really is, as Parquet under `truth/`.

- `accounts.parquet`: one row per valid stored row (every stream): `source`, `entity`,
  `stream`, `source_id` (the id the contract's source maps use), `true_id` (person P…,
  organization O…, project J…, service S…, station ST…, evaluation E…, redemption R…),
  `row_id` (the stored `id`), `updated_at` (Beijing wall clock), `is_deleted`, `status`
  (volunteers: active/deregistered/frozen), `dirt` (comma-separated tags of the spoiling
  the row got, e.g. `cert_15,name_traditional`).
- `persons.parquet`: the true persons, in clear (the world is synthetic), with `true_hours`
  (the sum of `hours` of their effective services) and the contract's expected `status`.
- `services.parquet`: the true services, a pushed one once with its national hours.
- `orgs.parquet`, `projects.parquet`: the true organizations and projects.
- `invalid_rows.parquet`: the planted rows a pipeline must quarantine, with the rule.
- `hostile_rows.parquet` (worlds generated with `hostile=True` only): the garbage rows of
  sandbox/hostile.py, their kind, the field spoiled, the personal values planted, and
  whether a careful pipeline quarantines them or stages them flagged.
Planted invalid and hostile rows appear only in their own file, never in `accounts.parquet`.

`world.json`, beside `truth/`, says how the world was made and what changed it since
(`read_world`, `write_world`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

TRUTH_DIR = "truth"
WORLD_FILE = "world.json"

# Where a planted row is: the first columns of invalid_rows and hostile_rows.
_PLANTED_ROW = [
    ("source", pa.string()),
    ("entity", pa.string()),
    ("stream", pa.string()),
    ("source_id", pa.string()),
    ("row_id", pa.string()),
]

SCHEMAS = {
    "accounts": pa.schema(
        [
            ("source", pa.string()),
            ("entity", pa.string()),
            ("stream", pa.string()),
            ("source_id", pa.string()),
            ("true_id", pa.string()),
            ("row_id", pa.string()),
            ("updated_at", pa.timestamp("s")),
            ("is_deleted", pa.bool_()),
            ("status", pa.string()),
            ("dirt", pa.string()),
        ]
    ),
    "persons": pa.schema(
        [
            ("person_id", pa.string()),
            ("name", pa.string()),
            ("gender", pa.string()),
            ("birth_date", pa.date32()),
            ("region_code", pa.string()),
            ("cert_no", pa.string()),
            ("phone", pa.string()),
            ("in_national", pa.bool_()),
            ("in_provincial", pa.bool_()),
            ("registered_on", pa.date32()),
            ("status", pa.string()),
            ("true_hours", pa.float64()),
            ("namesake_of", pa.string()),
        ]
    ),
    "services": pa.schema(
        [
            ("service_id", pa.string()),
            ("person_id", pa.string()),
            ("hours", pa.float64()),
            ("effective", pa.bool_()),
            ("national_source_id", pa.string()),
            ("provincial_source_id", pa.string()),
            ("service_date", pa.date32()),
            ("org_id", pa.string()),
            ("project_id", pa.string()),
            ("category", pa.string()),
        ]
    ),
    "invalid_rows": pa.schema([*_PLANTED_ROW, ("rule", pa.string())]),
}


# Truth files only some worlds have (written whole): hostile rows (sandbox/hostile.py), one
# row per planted row. `personal` lists every clear personal value the row carries.
OPTIONAL_SCHEMAS = {
    "hostile_rows": pa.schema(
        [
            *_PLANTED_ROW,
            ("kind", pa.string()),
            ("expected", pa.string()),
            ("field", pa.string()),
            ("planted", pa.string()),
            ("personal", pa.list_(pa.string())),
            ("updated_at", pa.timestamp("s")),
        ]
    ),
}


@dataclass
class Truth:
    """The truth frames of a world, and its world.json."""

    accounts: pd.DataFrame
    persons: pd.DataFrame
    services: pd.DataFrame
    orgs: pd.DataFrame
    projects: pd.DataFrame
    invalid_rows: pd.DataFrame
    world: dict
    hostile_rows: pd.DataFrame  # empty for a world generated without hostile rows


def read_world(world_dir: Path) -> dict:
    """A world's world.json."""
    return json.loads((Path(world_dir) / WORLD_FILE).read_text(encoding="utf-8"))


def write_world(world_dir: Path, world: dict) -> None:
    """Write (or rewrite after a change set) a world's world.json."""
    (Path(world_dir) / WORLD_FILE).write_text(
        json.dumps(world, ensure_ascii=False, indent=2), encoding="utf-8"
    )


def load_truth(world_dir: Path) -> Truth:
    """Read a world's truth files."""
    folder = Path(world_dir) / TRUTH_DIR
    frames = {
        name: pd.read_parquet(folder / f"{name}.parquet")
        for name in ("accounts", "persons", "services", "orgs", "projects", "invalid_rows")
    }
    for name, schema in OPTIONAL_SCHEMAS.items():
        path = folder / f"{name}.parquet"
        frames[name] = pd.read_parquet(path) if path.exists() else schema.empty_table().to_pandas()
    return Truth(world=read_world(world_dir), **frames)


def conform(frame: pd.DataFrame, name: str) -> pa.Table:
    """A frame as the truth file's fixed schema (missing columns null, extra ones dropped)."""
    schema = SCHEMAS[name] if name in SCHEMAS else OPTIONAL_SCHEMAS[name]
    columns = {}
    for f in schema:
        if f.name in frame:
            values = frame[f.name]
            if pa.types.is_timestamp(f.type) and np.issubdtype(values.dtype, np.integer):
                values = values.to_numpy().astype("datetime64[s]")
            columns[f.name] = pa.array(values, type=f.type, from_pandas=True)
        else:
            columns[f.name] = pa.nulls(len(frame), f.type)
    return pa.table(columns, schema=schema)


class TruthWriter:
    """Appends chunks to the streamed truth files (accounts, persons, services, invalid rows)."""

    def __init__(self, world_dir: Path) -> None:
        self.folder = Path(world_dir) / TRUTH_DIR
        self.folder.mkdir(parents=True, exist_ok=True)
        self.writers = {
            name: pq.ParquetWriter(self.folder / f"{name}.parquet", schema)
            for name, schema in SCHEMAS.items()
        }

    def append(self, name: str, frame: pd.DataFrame) -> None:
        if len(frame):
            self.writers[name].write_table(conform(frame, name))

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def write_whole(world_dir: Path, name: str, frame: pd.DataFrame) -> None:
    """Write a small truth file in one go (orgs, projects), or rewrite one after a change."""
    folder = Path(world_dir) / TRUTH_DIR
    folder.mkdir(parents=True, exist_ok=True)
    table = (
        conform(frame, name)
        if name in SCHEMAS or name in OPTIONAL_SCHEMAS
        else pa.Table.from_pandas(frame, preserve_index=False)
    )
    temporary = folder / f".{name}.parquet.tmp"
    pq.write_table(table, temporary)
    temporary.replace(folder / f"{name}.parquet")


def person_status(volunteer_accounts: pd.DataFrame) -> pd.Series:
    """The contract's dim_volunteer.status per person (true_id): `deleted` when every account
    is deleted, else the status of the most recently updated live account."""
    live = volunteer_accounts[~volunteer_accounts["is_deleted"]]
    latest = live.sort_values(["updated_at", "source"]).groupby("true_id")["status"].last()
    everyone = pd.Series(
        "deleted", index=pd.Index(volunteer_accounts["true_id"].unique(), name="true_id")
    )
    everyone.loc[latest.index] = latest
    return everyone


def true_hours(services: pd.DataFrame) -> pd.Series:
    """Hours per person over their effective services."""
    return services.loc[services["effective"]].groupby("person_id")["hours"].sum()
