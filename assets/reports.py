"""Reports layer: the officials' statistics report, one self-contained HTML file per sync.

Thin over `pipelines/reports/`: the asset reads the published marts (read-only), adds what
only Dagster knows for the data-quality panel (the latest result of every asset check, when
the warehouse was published) and links the file in its metadata, so officials open it from
the asset's page in the UI. Metadata holds the path and figures only, never a name or number.
"""


import datetime as dt

from dagster import (
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.run import errors_scrubbed, run_as_of, safe_metadata
from assets.warehouse import PUBLISH
from pipelines.resources import PipelineSettings

STATISTICS_REPORT = AssetKey(["reports", "statistics"])


def latest_check_outcomes(context: AssetExecutionContext) -> list:
    """The latest result of every asset check the run's job knows (None: never ran)."""
    from dagster import AssetCheckSeverity

    from pipelines.reports.quality import CheckOutcome

    # the job's asset graph: a run launched from the UI, and a test's execute_in_process,
    # both have it (the repository is not set on an in-process run's context)
    graph = context.job_def.asset_layer.asset_graph
    keys = sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name))
    latest = context.instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    outcomes = []
    for key in keys:
        record = latest.get(key)
        evaluation = None
        if record is not None and record.event is not None and record.event.dagster_event is not None:
            evaluation = record.event.dagster_event.event_specific_data
        passed = getattr(evaluation, "passed", None)
        severity = getattr(evaluation, "severity", None)
        outcomes.append(
            CheckOutcome(
                asset=key.asset_key.to_user_string(),
                check=key.name,
                passed=passed,
                blocking=bool(graph.get_check_spec(key).blocking or severity == AssetCheckSeverity.ERROR),
            )
        )
    return outcomes


def last_published_at(context: AssetExecutionContext) -> dt.datetime | None:
    event = context.instance.get_latest_materialization_event(PUBLISH)
    return dt.datetime.fromtimestamp(event.timestamp, dt.timezone.utc) if event else None


@asset(
    key=STATISTICS_REPORT,
    group_name="reports",
    deps=[PUBLISH],
    description=(
        "贵州省志愿服务统计报告: the officials' statistics report, one self-contained HTML file "
        "(charts and styles inside, works with no network, prints on A4), every figure read "
        "from the marts; one file per sync under DATA_DIR/reports/."
    ),
)
def statistics_report(context: AssetExecutionContext, pipeline_settings: PipelineSettings) -> MaterializeResult:
    from pipelines.reports import report_link, write_report

    settings = pipeline_settings.settings()
    with errors_scrubbed():
        written = write_report(
            settings,
            as_of=run_as_of(context),
            run_id=context.run_id,
            schema=pipeline_settings.warehouse_schema,
            checks=latest_check_outcomes(context),
            published_at=last_published_at(context),
        )
    context.log.info("statistics report written: %d charts", written.charts)
    path = str(written.path.resolve())
    metadata = {
        # the report as the officials' browsers reach it (REPORTS_URL), and the path for
        # whoever fetches the file from the server; the headline figures show in the UI itself
        "report": MetadataValue.url(report_link(settings, written.path)),
        "figures": MetadataValue.md(written.summary_markdown),
        "path": MetadataValue.path(path),
        "charts": MetadataValue.int(written.charts),
        "size_bytes": MetadataValue.int(written.path.stat().st_size),
        **{
            name: MetadataValue.float(round(float(value), 4)) if isinstance(value, float) else MetadataValue.int(int(value))
            for name, value in written.key_figures.items() if value is not None
        },
    }
    return MaterializeResult(metadata=safe_metadata(metadata))


assets = [statistics_report]
