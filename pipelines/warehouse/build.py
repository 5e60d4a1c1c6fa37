"""Build every published table and mart from the resolved and staged files, as Parquet.

The build runs in a private in-memory DuckDB (spilling to disk when the data outgrows
memory) and writes one Parquet file per table under `DATA_DIR/state/warehouse/build/`, with
exactly the columns, types and row order of `schemas/warehouse.yaml`. Publishing then only
loads files (publish.py), the same files into DuckDB or PostgreSQL, so both targets hold the
same content, and the same inputs always give the same files (idempotent publishing).

Personal data: the one clear field the build reads is the resolved volunteer name, which is
masked (pipelines.privacy.mask_names) before it meets any other table; certificate numbers
arrive only as their HMAC (`cert_hash` = `id_hash`) and the 4 + 4 characters masking keeps.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import shutil
from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import duck
from pipelines.clock import BEIJING_SQL_ZONE
from pipelines.files import atomic_path
from pipelines.normalize.categories import NATIONAL_CATEGORIES, brand_programmes, measure_fields
from pipelines.normalize.regions import guizhou_counties
from pipelines.sql import literal, quote
from pipelines.warehouse.delta import TableChange, diff_table
from pipelines.warehouse.history import HISTORY_SQL, HISTORY_TABLE, build_history
from pipelines.warehouse.inputs import InputFiles, register_inputs
from pipelines.warehouse.marts import mart_sql
from pipelines.warehouse.spec import Table, WarehouseSpec, duckdb_type, load_spec

log = logging.getLogger(__name__)

NAME_MASK_BATCH_ROWS = 200_000

# Per organization, each evaluator type's mean score in the latest period that has any
# evaluation: dim_organization.evaluation_score and mart_organization_evaluation both use it.
EVALUATION_TYPE_SCORES_SQL = """
CREATE OR REPLACE TEMP TABLE evaluation_type_scores AS
WITH evaluations AS (
    SELECT m.org_key, e.evaluator, e.score, e.period
    FROM in_staged_evaluations e
    JOIN in_organization_source_map m ON m.source = e.source AND m.source_id = e.org_source_id
    WHERE NOT coalesce(e.is_deleted, false) AND e.score IS NOT NULL AND e.period IS NOT NULL
), latest AS (
    SELECT org_key, max(period) AS period FROM evaluations GROUP BY org_key
)
SELECT e.org_key, e.period, e.evaluator, avg(e.score) AS type_score, count(*) AS evaluations
FROM evaluations e JOIN latest l ON l.org_key = e.org_key AND l.period = e.period
GROUP BY e.org_key, e.period, e.evaluator
"""

# fact_service.hours, six decimals, with each person's rounding carried from one service to
# the next (in service_key order): a row's hours are the person's running total rounded with
# it minus the running total rounded before it. Rounding each row alone let a person's sum
# drift below the truth: seven provincial logs of 857, ..., 858 minutes are 100 hours, but
# 6 x 14.283333 + 14.3 = 99.999998 and the person lost the star that 100 hours earn.
# Carried, a person's rows sum to the exact total rounded (each row within 0.000001 of its
# own minutes / 60), so dim_volunteer.total_hours is both the sum of its fact rows and the
# true figure.
CARRIED_HOURS_SQL = """
    SELECT s.*,
           CASE WHEN s.hours IS NOT NULL THEN
               CAST(round(sum(s.hours) OVER person_so_far, 6) AS DECIMAL(18,6))
               - CAST(coalesce(round(sum(s.hours) OVER (
                     person_so_far ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 6), 0)
                   AS DECIMAL(18,6))
           END AS carried_hours
    FROM in_services s
    -- one window, so one sort of the services (two windows took 1.5x as long on 4.1M rows)
    WINDOW person_so_far AS (PARTITION BY s.volunteer_key ORDER BY s.service_key)
"""

# Each table's draft: a SELECT over the input views and the tables built before it (the
# order of this dict). finalize() casts it to the declared columns and orders it by key.
TABLE_SQL: dict[str, str] = {
    # is_deleted: whether the account is deleted at its source, so that "in both systems"
    # can be asked of live accounts (dim_volunteer.in_national / in_provincial stay true
    # after a deletion, and status is deleted only when every account is)
    "volunteer_source_map": """
        SELECT m.source, m.source_id, m.volunteer_key, m.match_method, m.match_probability,
               coalesce(s.is_deleted, false) AS is_deleted
        FROM in_volunteer_source_map m
        LEFT JOIN in_staged_volunteers s ON s.source = m.source AND s.source_id = m.source_id
    """,
    "organization_source_map": """
        SELECT m.source, m.source_id, m.org_key, m.match_method,
               coalesce(s.is_deleted, false) AS is_deleted
        FROM in_organization_source_map m
        LEFT JOIN in_staged_organizations s ON s.source = m.source AND s.source_id = m.source_id
    """,
    "dim_project": """
        SELECT k.project_key, p.source, p.source_id, p.name,
               m.org_key, p.category, p.brand, p.region_code,
               beijing_date(p.start_at) AS start_on,
               beijing_date(p.end_at) AS end_on,
               p.published_on, p.status
        FROM in_staged_projects p
        JOIN project_keys k ON k.source = p.source AND k.source_id = p.source_id
        LEFT JOIN in_organization_source_map m
               ON m.source = p.source AND m.source_id = p.org_source_id
        WHERE NOT coalesce(p.is_deleted, false)
    """,
    "fact_service": f"""
        WITH carried AS ({CARRIED_HOURS_SQL})
        SELECT s.service_key, s.volunteer_key, s.org_key, s.service_date,
               s.carried_hours AS hours, s.category, s.source, s.project_key,
               coalesce(p.region_code, o.region_code, v.region_code) AS region_code,
               s.national_source_id, s.provincial_source_id
        FROM carried s
        LEFT JOIN dim_project p ON p.project_key = s.project_key
        LEFT JOIN in_organizations o ON o.org_key = s.org_key
        LEFT JOIN in_volunteers v ON v.volunteer_key = s.volunteer_key
    """,
    "dim_volunteer": """
        WITH served AS (
            SELECT volunteer_key, sum(hours) AS total_hours, count(*) AS service_count,
                   max(service_date) AS last_service_on
            FROM fact_service WHERE volunteer_key IS NOT NULL GROUP BY volunteer_key
        ), totals AS (
            SELECT v.* EXCLUDE (cert_suffix4), n.name_masked, n.cert_suffix4,
                   CAST(coalesce(h.total_hours, 0) AS DECIMAL(18,6)) AS total_hours,
                   coalesce(h.service_count, 0) AS service_count, h.last_service_on
            FROM in_volunteers v
            LEFT JOIN volunteer_masks n ON n.volunteer_key = v.volunteer_key
            LEFT JOIN served h ON h.volunteer_key = v.volunteer_key
        )
        SELECT volunteer_key,
               cert_hash AS id_hash,
               CASE WHEN cert_prefix4 IS NULL AND cert_suffix4 IS NULL THEN NULL
                    ELSE coalesce(cert_prefix4, '****') || '**********' || coalesce(cert_suffix4, '****')
               END AS id_masked,
               name_masked, gender,
               coalesce(birth_year, year(birth_date)) AS birth_year,
               region_code, registered_on, in_national, in_provincial, status,
               total_hours,
               CASE WHEN total_hours >= 1500 THEN 5 WHEN total_hours >= 1000 THEN 4
                    WHEN total_hours >= 600 THEN 3 WHEN total_hours >= 300 THEN 2
                    WHEN total_hours >= 100 THEN 1 ELSE 0 END AS star_level,
               service_count, last_service_on
        FROM totals
    """,
    "dim_organization": """
        WITH composite AS (
            SELECT org_key, period, avg(type_score) AS evaluation_score
            FROM evaluation_type_scores GROUP BY org_key, period
        )
        SELECT o.org_key, o.uscc, o.name, o.registration_status, o.level, o.is_hub,
               o.region_code, o.categories, o.founded_on, o.member_count, o.status,
               o.credit_status, c.evaluation_score, o.in_national, o.in_provincial,
               c.period AS evaluation_period
        FROM in_organizations o LEFT JOIN composite c ON c.org_key = o.org_key
    """,
    # every live evaluation, so that evaluations can be counted by evaluator and by any
    # attribute of the organization (prefecture, level); the same rows as
    # mart_evaluations_by_evaluator: deleted evaluations and those of deleted organizations out
    "fact_evaluation": """
        SELECT e.source || ':' || e.source_id AS evaluation_key, m.org_key, e.period,
               e.evaluator, e.score, e.source, e.source_id
        FROM in_staged_evaluations e
        LEFT JOIN organization_source_map m ON m.source = e.source AND m.source_id = e.org_source_id
        LEFT JOIN dim_organization o ON o.org_key = m.org_key
        WHERE NOT coalesce(e.is_deleted, false) AND e.score IS NOT NULL
          AND o.status IS DISTINCT FROM 'deleted'
    """,
    "fact_redemption": """
        SELECT r.source || ':' || r.source_id AS redemption_key, m.volunteer_key,
               beijing_date(r.redeemed_at) AS redeemed_on,
               CAST(r.hours AS DECIMAL(18,6)) AS hours, r.purpose, r.source, r.source_id
        FROM in_staged_redemptions r
        LEFT JOIN in_volunteer_source_map m
               ON m.source = r.source AND m.source_id = r.volunteer_source_id
        WHERE NOT coalesce(r.is_deleted, false)
    """,
    "dim_station": """
        SELECT s.source || ':' || s.source_id AS station_key, s.name, s.station_type,
               s.host_type,
               -- the contract's region_code is a current county: a prefecture's or an
               -- unknown code is kept in staging (flagged unknown_county), not published
               CASE WHEN s.region_code IN (SELECT region_code FROM _dim_region_arrow)
                    THEN s.region_code END AS region_code,
               m.org_key, s.opened_on, s.source, s.source_id
        FROM in_staged_stations s
        LEFT JOIN in_organization_source_map m
               ON m.source = s.source AND m.source_id = s.org_source_id
        WHERE NOT coalesce(s.is_deleted, false)
    """,
    "quarantine": """
        SELECT source, entity, source_id, rule, detail, record, first_seen_at, last_seen_at
        FROM in_staged_quarantine
    """,
}


@dataclass
class BuiltWarehouse:
    """The Parquet files of one build, in publishing order, with their row counts.
    `files` are the tables built (to load); `directory` also holds the carried ones."""

    directory: Path
    files: dict[str, Path]
    rows: dict[str, int]
    figures: dict[str, float | int | None] = field(default_factory=dict)
    # per table built, how it reaches the warehouse (delta.py); empty: every one in full
    changes: dict[str, TableChange] = field(default_factory=dict)

    @property
    def delta_dir(self) -> Path:
        """The deltas' files: removed before the build is kept (they describe one publish)."""
        return self.directory / "_delta"


def _register_volunteer_masks(con: duckdb.DuckDBPyConnection, volunteers_path: Path, name_key: str | None) -> None:
    """Table `volunteer_masks(volunteer_key, name_masked, cert_suffix4)`: the only use of
    clear names and of the ID numbers' clear last four, unsealed here (`name_key`: the key
    they are sealed under, pipelines/name_seal.py; None for a test's clear frame), the names
    masked at once, the last four for `id_masked` alone."""
    from pipelines.name_seal import unsealed_names, unsealed_suffixes
    from pipelines.privacy import mask_names

    con.execute(
        "CREATE OR REPLACE TEMP TABLE volunteer_masks "
        "(volunteer_key VARCHAR, name_masked VARCHAR, cert_suffix4 VARCHAR)"
    )
    parquet = pq.ParquetFile(volunteers_path)
    present = [c for c in ("name", "cert_suffix4") if c in parquet.schema_arrow.names]
    for batch in parquet.iter_batches(batch_size=NAME_MASK_BATCH_ROWS, columns=["volunteer_key", *present]):
        frame = batch.to_pandas()
        for absent in {"name", "cert_suffix4"} - set(present):  # an input without them: none to show
            frame[absent] = None
        names, suffixes = frame["name"], frame["cert_suffix4"]
        if name_key is not None:
            names, suffixes = unsealed_names(names, name_key), unsealed_suffixes(suffixes, name_key)
        masked = pa.table(
            {
                "volunteer_key": pa.array(frame["volunteer_key"].astype("string"), pa.string()),
                "name_masked": pa.array(mask_names(names), pa.string()),
                "cert_suffix4": pa.array(suffixes.astype("string"), pa.string()),
            }
        )
        con.register("_volunteer_mask_batch", masked)
        con.execute("INSERT INTO volunteer_masks SELECT * FROM _volunteer_mask_batch")
        con.unregister("_volunteer_mask_batch")


def _service_categories() -> pa.Table:
    """dim_service_category's rows: the national list in its order, with each label's
    professional field of the measures (schemas/categories.yaml)."""
    fields = measure_fields()
    return pa.table(
        {
            "category": list(NATIONAL_CATEGORIES.values()),
            "category_code": list(NATIONAL_CATEGORIES),
            "measure_field": [fields.get(label) for label in NATIONAL_CATEGORIES.values()],
            "position": list(range(1, len(NATIONAL_CATEGORIES) + 1)),
        }
    )


def _register_project_keys(con: duckdb.DuckDBPyConnection) -> None:
    """Table `project_keys(source, source_id, project_key)` with the resolver's own key rule,
    so that fact_service.project_key (made by pipelines.resolve.services) joins dim_project."""
    from pipelines.resolve.services import opaque_key

    projects = con.sql(
        "SELECT DISTINCT source, source_id FROM in_staged_projects ORDER BY source, source_id"
    ).to_arrow_table()
    basis = (
        projects.column("source").to_pandas().astype("string")
        + ":"
        + projects.column("source_id").to_pandas().astype("string")
    )
    keys = opaque_key("P", basis.astype(str)) if len(basis) else basis
    con.register(
        "project_keys",
        projects.append_column("project_key", pa.array(keys.astype("string"), pa.string())),
    )


def finalize(con: duckdb.DuckDBPyConnection, table: Table, draft_sql: str) -> int:
    """Create `table` from `draft_sql` with its declared columns, types and row order.

    Raises when the draft lacks a declared column or repeats a key: a broken key must stop
    the publish, not reach the dashboards.
    """
    con.execute(f"CREATE OR REPLACE TEMP VIEW _draft AS {draft_sql}")
    draft_columns = {row[0] for row in con.execute("DESCRIBE _draft").fetchall()}
    missing = [c for c in table.column_names if c not in draft_columns]
    if missing:
        raise ValueError(f"{table.name}: the build does not produce columns {missing}")
    select = ", ".join(
        f"CAST({quote(c.name)} AS {duckdb_type(c)}) AS {quote(c.name)}" for c in table.columns
    )
    # a total order, so reruns write identical files: the key alone is one, since a repeated
    # key stops the publish below (sorting by every column after it carried each row's whole
    # width through the sort); a table without a key is sorted by every column
    order = list(table.key) or table.column_names
    order_by = ", ".join(f"{quote(c)} NULLS FIRST" for c in order)
    con.execute(
        f"CREATE OR REPLACE TABLE {quote(table.name)} AS "
        f"SELECT {select} FROM _draft ORDER BY {order_by}"
    )
    if table.key:
        key_list = ", ".join(quote(c) for c in table.key)
        repeated = con.execute(
            f"SELECT count(*) FROM (SELECT {key_list} FROM {quote(table.name)} "
            f"GROUP BY {key_list} HAVING count(*) > 1)"
        ).fetchall()[0][0]
        if repeated:
            raise ValueError(f"{table.name}: {repeated} key values ({key_list}) occur more than once")
    return con.execute(f"SELECT count(*) FROM {quote(table.name)}").fetchall()[0][0]


def _write_parquet(con: duckdb.DuckDBPyConnection, table: str, path: Path) -> None:
    with atomic_path(path) as temp:
        con.execute(
            f"COPY (SELECT * FROM {quote(table)}) TO ? (FORMAT parquet, COMPRESSION zstd)",
            [str(temp)],
        )


def _key_figures(con: duckdb.DuckDBPyConnection) -> dict[str, float | int | None]:
    def one(sql: str):
        value = con.execute(sql).fetchall()[0][0]
        return float(value) if isinstance(value, Decimal) else value

    return {
        "volunteers": one("SELECT count(*) FROM dim_volunteer WHERE status <> 'deleted'"),
        "active_volunteers": one("SELECT count(*) FROM dim_volunteer WHERE status = 'active'"),
        "organizations": one("SELECT count(*) FROM dim_organization WHERE status <> 'deleted'"),
        "total_hours": one("SELECT coalesce(sum(hours), 0) FROM fact_service"),
        "unattributed_hours": one(
            "SELECT coalesce(sum(hours), 0) FROM fact_service WHERE volunteer_key IS NULL"
        ),
        "registration_rate": one(
            "SELECT registration_rate FROM mart_organization_registration_rate "
            "WHERE area_level = 'province'"
        ),
        "stations": one("SELECT count(*) FROM dim_station"),
        "counties_without_station": one(
            "SELECT count(*) FROM mart_station_coverage_by_county WHERE NOT has_station"
        ),
        "quarantined_rows": one("SELECT count(*) FROM quarantine"),
    }


def open_build_connection(temp_dir: Path) -> duckdb.DuckDBPyConnection:
    con = duck.connect()
    # UTC session: timestamps keep their instant; Beijing dates are asked for explicitly,
    # with the one Beijing offset of pipelines/clock.py
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        f"CREATE MACRO beijing_date(ts) AS CAST(timezone({literal(BEIJING_SQL_ZONE)}, ts) AS DATE)"
    )
    con.execute("SET temp_directory = ?", [str(temp_dir)])
    return con


AS_OF_VARIABLE = "getvariable('as_of')"
VOLUNTEER_MASKS = "volunteer_masks"


def _draft_sql(spec: WarehouseSpec) -> dict[str, str]:
    """Each table's SQL as text, to see what it reads (the history's is in history.py)."""
    texts = {"dim_region": "", "dim_service_category": "", **TABLE_SQL, HISTORY_TABLE: HISTORY_SQL}
    return {**texts, **{mart.name: mart_sql(mart.name) for mart in spec.marts}}


def date_dependent(spec: WarehouseSpec | None = None) -> list[str]:
    """The tables a new Beijing date alone changes, in publishing order: those whose SQL
    reads the date (ages, the history's closing date), and every table built from one of
    them. With the same inputs on another day, only these differ from the last build."""
    spec = spec or load_spec()
    sql = _draft_sql(spec)
    dependent = {name for name, text in sql.items() if AS_OF_VARIABLE in text}
    while True:
        reads = {name for name, text in sql.items() if name not in dependent
                 and any(re.search(rf"\b{re.escape(d)}\b", text) for d in dependent)}
        if not reads:
            return [name for name in spec.tables if name in dependent]
        dependent |= reads


def build_warehouse(
    inputs: InputFiles,
    out_dir: Path,
    *,
    as_of: dt.date,
    previous_history: pa.Table | None = None,
    spec: WarehouseSpec | None = None,
    rebuild: Collection[str] | None = None,
    carried_from: Path | None = None,
    name_key: str | None = None,
    previous: Path | None = None,
    churn: dict[str, int] | None = None,
) -> BuiltWarehouse:
    """Build every table and mart of `spec` into `out_dir` (replaced); returns the files.

    With `rebuild`, only those tables are built; every other one is the file of the same
    name in `carried_from` (a previous build of the same inputs), hard-linked into `out_dir`
    and read from there by the tables built over it. `name_key`: the key the resolved names and
    ID numbers' last four are sealed under (pipelines/name_seal.py; None for them in clear).
    `previous`: the files of the last publish, known to be what the warehouse holds: each
    table built is compared with its file there (delta.diff_table) and `changes` says how it
    reaches the warehouse; None: every table in full. `churn`: per table, the rows the deltas
    since its last full load changed (the last publish's record; delta.DELTA_CHURN_SHARE)."""
    spec = spec or load_spec()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, mode=0o700)
    temp_dir = out_dir / "_spill"
    temp_dir.mkdir(mode=0o700)
    built = [name for name in spec.tables if rebuild is None or name in rebuild]
    sql = _draft_sql(spec)
    con = open_build_connection(temp_dir)
    try:
        con.execute("SET VARIABLE as_of = ?", [as_of])  # a date parameter: a DATE variable
        input_rows = register_inputs(con, inputs)
        log.info("warehouse inputs: %s", input_rows)
        rows: dict[str, int] = {}
        for name in spec.tables:
            if name not in built:
                carried = out_dir / f"{name}.parquet"
                os.link(carried_from / f"{name}.parquet", carried)
                con.read_parquet(str(carried)).create_view(name)  # the path as a value, not SQL
                rows[name] = pq.read_metadata(carried).num_rows
        if any(VOLUNTEER_MASKS in sql[name] for name in built):  # the one read of clear names and ends
            _register_volunteer_masks(con, inputs.resolved("volunteers"), name_key)
        # the current county list with year ranges, maintained in python-stdnum's loc.dat
        con.register("_dim_region_arrow", pa.Table.from_pandas(guizhou_counties(), preserve_index=False))
        programmes = brand_programmes()
        con.register("in_brand_programmes", pa.table(
            {"brand": list(programmes), "position": list(range(1, len(programmes) + 1))}))
        con.execute(EVALUATION_TYPE_SCORES_SQL)
        _register_project_keys(con)

        con.register("_service_categories_arrow", _service_categories())
        drafts = {
            "dim_region": "SELECT * FROM _dim_region_arrow",
            "dim_service_category": "SELECT * FROM _service_categories_arrow",
            **TABLE_SQL,
        }
        for name, draft_sql in drafts.items():
            if name in built:
                rows[name] = finalize(con, spec[name], draft_sql)
        if HISTORY_TABLE in built:
            history_draft = build_history(con, previous_history, as_of)
            rows[HISTORY_TABLE] = finalize(con, spec[HISTORY_TABLE], history_draft)
        for mart in spec.marts:
            if mart.name in built:
                rows[mart.name] = finalize(con, mart, mart_sql(mart.name))

        unbuilt = [t.name for t in spec.tables.values() if t.name not in rows]
        if unbuilt:
            raise ValueError(f"schemas/warehouse.yaml declares tables the build does not make: {unbuilt}")
        files: dict[str, Path] = {}
        changes: dict[str, TableChange] = {}
        for name in built:  # publishing order = the order of the spec
            files[name] = out_dir / f"{name}.parquet"
            _write_parquet(con, name, files[name])
            if previous is not None:
                changes[name] = diff_table(con, spec[name], rows[name], previous / f"{name}.parquet",
                                           out_dir / "_delta", churn=(churn or {}).get(name, 0))
        figures = _key_figures(con)
    finally:
        con.close()
        shutil.rmtree(temp_dir, ignore_errors=True)
    return BuiltWarehouse(
        directory=out_dir, files=files, rows={n: rows[n] for n in spec.tables}, figures=figures,
        changes=changes,
    )
