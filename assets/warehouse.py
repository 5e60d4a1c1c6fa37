"""Warehouse layer: publish the contract tables and the statistics marts, as one Dagster asset.

One writer (`["warehouse", "publish"]`, pool `warehouse`: DuckDB takes one writer at a time)
builds every table and mart from the resolved and staged files and swaps them into the
warehouse atomically (pipelines/warehouse/publish.py). Its checks read back what was
published: every table and column of schemas/warehouse.yaml with its type, no clear ID number
or phone in any text column, and the province's hours adding up. Metadata: rows per table,
the key figures officials ask for, the warehouse URL (password hidden) and the data
dictionary. Metadata holds counts and figures only, never a name, number or id.
"""



import warnings
from datetime import timedelta

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    SupersessionWarning,
    asset,
    build_last_update_freshness_checks,
)

from assets.reuse import checks_from_json, checks_to_json, metadata_from_json, metadata_to_json
from assets.run import errors_scrubbed, run_as_of, safe_metadata
from pipelines.config import Settings
from pipelines.resources import PipelineSettings

PUBLISH = AssetKey(["warehouse", "publish"])
UPSTREAM = [
    AssetKey(["resolved", "volunteers"]),
    AssetKey(["resolved", "organizations"]),
    AssetKey(["resolved", "services"]),
    AssetKey(["staged", "quarantine"]),
    AssetKey(["staged", "stations"]),
    AssetKey(["staged", "evaluations"]),
    AssetKey(["staged", "redemptions"]),
    AssetKey(["staged", "projects"]),
]
CHECK_COLUMNS = "tables_and_columns"
CHECK_PRIVACY = "no_clear_personal_numbers"
CHECK_HOURS = "hours_add_up"


def _rows_markdown(rows: dict[str, int]) -> str:
    lines = ["| table | rows |", "| --- | ---: |"]
    lines += [f"| `{name}` | {count:,} |" for name, count in rows.items()]
    return "\n".join(lines)


def _figure(value):
    if value is None:
        return MetadataValue.text("n/a")
    if isinstance(value, float):
        return MetadataValue.float(round(value, 4))
    return MetadataValue.int(int(value))


def warehouse_checks(settings: Settings, schema: str) -> list[AssetCheckResult]:
    """The publish asset's checks, read back from the warehouse as published."""
    import sqlalchemy as sa

    from pipelines.warehouse.privacy_scan import describe_findings, scan_warehouse
    from pipelines.warehouse.verify import contract_problems, hours_reconciliation

    url = settings.resolved_warehouse_url
    # read-only on DuckDB: an analyst holding the file open must not fail the checks either
    read_only = {"read_only": True} if url.startswith("duckdb") else {}
    engine = sa.create_engine(url, connect_args=read_only)
    try:
        problems = contract_problems(engine, schema)
        findings = scan_warehouse(engine, schema)
        hours = hours_reconciliation(engine, schema)
    finally:
        engine.dispose()
    return [
        AssetCheckResult(
            check_name=CHECK_COLUMNS,
            passed=not problems,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "problems": MetadataValue.int(len(problems)),
                "details": MetadataValue.text("; ".join(problems[:50]) or "none"),
            },
        ),
        AssetCheckResult(
            check_name=CHECK_PRIVACY,
            passed=not findings,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "columns_with_findings": MetadataValue.int(len(findings)),
                "details": MetadataValue.text(describe_findings(findings) or "none"),
            },
        ),
        AssetCheckResult(
            check_name=CHECK_HOURS,
            passed=hours["difference"] == 0 and hours["orphaned_hours"] == 0,
            severity=AssetCheckSeverity.ERROR,
            metadata={name: MetadataValue.float(float(value)) for name, value in hours.items()},
        ),
    ]


@asset(
    key=PUBLISH,
    group_name="warehouse",
    pool="warehouse",
    deps=UPSTREAM,
    description=(
        "Every contract table (dim_region, dim_volunteer, volunteer_source_map, "
        "dim_organization, organization_source_map, fact_service, dim_station, quarantine), "
        "the organization status history and the statistics marts, published to WAREHOUSE_URL "
        "in one transaction. See docs/DATA_DICTIONARY.md."
    ),
    check_specs=[
        AssetCheckSpec(CHECK_COLUMNS, asset=PUBLISH, description="every table and column of schemas/warehouse.yaml, with its type"),
        AssetCheckSpec(CHECK_PRIVACY, asset=PUBLISH, description="no clear resident ID number or phone in any text column"),
        AssetCheckSpec(CHECK_HOURS, asset=PUBLISH, description="total hours = sum of dim_volunteer.total_hours + unattributed hours"),
    ],
)
def warehouse_publish(context: AssetExecutionContext, pipeline_settings: PipelineSettings) -> MaterializeResult:
    from pipelines import reuse

    settings = pipeline_settings.settings()
    as_of = run_as_of(context)
    schema = pipeline_settings.warehouse_schema
    with errors_scrubbed():
        fingerprint = _publish_fingerprint(settings, schema)
        record = reuse.load_record(settings, PUBLISH_STEP)
        if (pipeline_settings.reuse_unchanged and reuse.reusable(record, fingerprint, as_of)
                and _still_published(settings, record)):
            context.log.info(f"publish: inputs unchanged since {record.as_of}, warehouse as published: reused")
            return MaterializeResult(
                metadata={**metadata_from_json(record.report["metadata"]), "reused_from_as_of": record.as_of},
                check_results=checks_from_json(record.report["checks"]),
            )
        rebuild = None
        if pipeline_settings.reuse_unchanged and _only_the_date_moved(settings, record, fingerprint):
            from pipelines.warehouse.build import date_dependent

            rebuild = date_dependent()
            context.log.info(f"publish: inputs unchanged since {record.as_of}, a new date: "
                             f"rebuilding the {len(rebuild)} tables that follow the date")
        reuse.forget(settings, PUBLISH_STEP)
        materialization = _publish(context, settings, as_of, schema, rebuild,
                                   incremental=pipeline_settings.reuse_unchanged)
        reuse.save_record(settings, reuse.ReuseRecord(
            step=PUBLISH_STEP, fingerprint=fingerprint, as_of=as_of.isoformat(),
            # ages, age bands and the history's closing date follow the Beijing date
            valid_until=reuse.end_of_beijing_day(as_of).isoformat(),
            # the tables' files as published: a date refresh carries them, so they must be
            # the ones this record describes
            outputs=reuse.files_manifest(_kept_build_files(settings)),
            report={"metadata": metadata_to_json(materialization.metadata),
                    "checks": checks_to_json(materialization.check_results),
                    "schema": materialization.metadata["schema"].value,
                    "rows": _published_rows(materialization)},
        ))
        return materialization


PUBLISH_STEP = "warehouse/publish"


def _publish_fingerprint(settings: Settings, schema: str | None) -> str:
    """What the publish reads: every resolved and staged file, the warehouse it writes to."""
    from pipelines import reuse

    inputs = {
        "resolved": reuse.folder_manifest(settings.resolved_dir, "*.parquet"),
        "staged": reuse.folder_manifest(settings.staged_dir, "*.parquet"),
        "schema": schema,
    }
    return reuse.fingerprint(PUBLISH_STEP, inputs=inputs, settings=settings, warehouse=True)


def _published_rows(materialization: MaterializeResult) -> dict[str, int]:
    return {
        name: int(count)
        for name, count in materialization.metadata.get("row_counts", MetadataValue.json({})).value.items()
    }


def _kept_build_files(settings: Settings) -> list:
    from pipelines.warehouse.publish import published_build_dir

    return sorted(published_build_dir(settings).glob("*.parquet"))


def _only_the_date_moved(settings: Settings, record, fingerprint: str) -> bool:
    """Whether the last publish read the same inputs as this one, and its tables, as
    published and as kept beside DATA_DIR's state, are untouched since: then only the tables
    that follow the date can differ from a full publish."""
    from pipelines import reuse

    return (record is not None and record.fingerprint == fingerprint and bool(record.outputs)
            and reuse.outputs_untouched(record)
            and _still_published(settings, record))


def _still_published(settings: Settings, record) -> bool:
    """Whether the warehouse still holds what the record's publish wrote (every table with its
    row count): a warehouse restored, emptied or written by someone else is published again."""
    import sqlalchemy as sa

    from pipelines.sql import quote

    expected = record.report.get("rows") or {}
    if not expected:
        return False
    engine = sa.create_engine(settings.resolved_warehouse_url)
    try:
        with engine.connect() as con:
            for table, rows in expected.items():
                found = con.execute(sa.text(f"select count(*) from {quote(record.report['schema'])}.{quote(table)}")).scalar()
                if found != rows:
                    return False
    except sa.exc.SQLAlchemyError:
        return False
    finally:
        engine.dispose()
    return True


def _publish(context: AssetExecutionContext, settings: Settings, as_of, schema: str | None,
             rebuild: list[str] | None, *, incremental: bool = True) -> MaterializeResult:
    from pipelines.warehouse.dictionary import render_dictionary
    from pipelines.warehouse.publish import publish

    result = publish(settings, as_of=as_of, schema=schema, rebuild=rebuild, incremental=incremental)
    checks = warehouse_checks(settings, result.schema)
    context.log.info(
        "published %d tables and marts to %s", len(result.rows), result.warehouse
    )
    figures = result.figures
    metadata = {
        "warehouse": MetadataValue.text(result.warehouse),
        "schema": MetadataValue.text(result.schema),
        "as_of": MetadataValue.text(result.as_of.isoformat()),
        "tables": MetadataValue.int(len(result.rows)),
        # all of them, or (a rerun on a new day with the same inputs) those that follow the date
        "tables_built": MetadataValue.int(len(result.tables_built)),
        # of those, the ones the warehouse already held as built (not loaded), and those loaded
        # as a delta (the rows that changed deleted and inserted); the others were replaced
        "tables_unchanged": MetadataValue.int(sum(kind == "unchanged" for kind in result.loads.values())),
        "tables_loaded_as_delta": MetadataValue.int(sum(kind == "delta" for kind in result.loads.values())),
        "rows": MetadataValue.md(_rows_markdown(result.rows)),
        "row_counts": MetadataValue.json(dict(result.rows)),
        **{name: _figure(value) for name, value in figures.items()},
        "data_dictionary": MetadataValue.md(render_dictionary()),
    }
    return MaterializeResult(metadata=safe_metadata(metadata), check_results=checks)


# The marts' publish time, checked on its own (by the sensor definitions.py declares): the
# nightly sync runs at 02:00 Beijing time, so by 08:00 the marts officials open must be from
# the last 24 hours; otherwise the dashboard says so instead of showing yesterday's figures
# as today's.
PUBLISH_DEADLINE_CRON = "0 8 * * *"
PUBLISH_MAX_AGE = timedelta(hours=24)


def marts_freshness_checks(
    max_age: timedelta = PUBLISH_MAX_AGE, deadline_cron: str | None = PUBLISH_DEADLINE_CRON
):
    # A check (shown with the asset's other checks, with its overdue time) rather than a
    # FreshnessPolicy, which Dagster now prefers but shows only as a state, with no check
    # history an official can read.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SupersessionWarning)
        return build_last_update_freshness_checks(
            assets=[PUBLISH], lower_bound_delta=max_age, deadline_cron=deadline_cron,
            timezone="Asia/Shanghai", severity=AssetCheckSeverity.WARN,
        )


assets = [warehouse_publish]
asset_checks = marts_freshness_checks()
