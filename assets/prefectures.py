"""Staging by prefecture: the staged layer's row work as 9 static partitions.

`staged/prefecture_parts` (group `staged_by_prefecture`), one partition per prefecture of
Guizhou, stages its prefecture's rows of the big tables (accounts and services) from the
landed pages (`pipelines.staging.partitions.stage_prefecture`). The partitions are independent runs, so
a backfill of the 9 spreads over as many run workers as the instance has (Kubernetes pods
with the K8sRunLauncher). The job `sync_from_prefectures` then stacks the parts into the
staged tables (`staged` with `from_prefecture_parts`, every check as in `sync_all`),
resolves the whole province and publishes: the same warehouse as `sync_all`.

    pull_raw  ->  stage_by_prefecture (9 partitions)  ->  sync_from_prefectures

Launch the backfill and the finishing run with one `as_of` tag, so every part judges dates
against the same instant the finishing run stamps.
"""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    StaticPartitionsDefinition,
    asset,
)

from assets.raw import assets as raw_assets
from assets.run import errors_scrubbed, run_as_of, safe_metadata
from pipelines.resources import PipelineSettings
from pipelines.staging.partitions import PREFECTURES

PREFECTURE_PARTITIONS = StaticPartitionsDefinition(list(PREFECTURES))
PARTS_KEY = AssetKey(["staged", "prefecture_parts"])


@asset(
    key=PARTS_KEY,
    partitions_def=PREFECTURE_PARTITIONS,
    deps=[key for raw_asset in raw_assets for key in raw_asset.keys],
    group_name="staged_by_prefecture",
    kinds={"python", "parquet"},
    description=(
        "One prefecture's rows of the big tables (volunteers, services), mapped, normalized and judged: "
        "DATA_DIR/staged/prefectures/<code>/. Job `sync_from_prefectures` combines the 9 "
        "parts into the staged tables."
    ),
)
def prefecture_parts(
    context: AssetExecutionContext, pipeline_settings: PipelineSettings
) -> MaterializeResult:
    from pipelines.staging.partitions import stage_prefecture

    with errors_scrubbed():
        rows = stage_prefecture(pipeline_settings.settings(), run_as_of(context), context.partition_key)
    context.log.info(f"prefecture {context.partition_key}: {sum(rows.values())} rows staged")
    return MaterializeResult(
        metadata=safe_metadata({
            "dagster/row_count": sum(rows.values()),
            "rows_per_table": MetadataValue.json(rows),
        })
    )


assets = [prefecture_parts]
