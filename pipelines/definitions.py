"""The Dagster code location: every asset, check, resource, job, schedule and sensor,
assembled once.

Cross-cutting policy lives here, not on each asset: the resources (pipelines/resources.py),
the executor and its concurrency limits, the jobs, the schedules and sensors, the privacy
filter on log output. Loading this module must stay cheap (no network, no Great
Expectations, no data): the webserver, the daemon and every run step import it.
"""

from __future__ import annotations

import warnings

import dagster as dg

from assets import prefectures, raw, resolved, staged, warehouse
from pipelines.logging_privacy import install_log_redaction
from pipelines.resources import RESOURCES

install_log_redaction()

LAYERS = (raw, staged, resolved, warehouse, prefectures)

all_assets = [asset for layer in LAYERS for asset in layer.assets]
freshness_checks = warehouse.asset_checks

# Two cores: the two source pulls run side by side, everything else one step at a time.
# Steps hand each other files under DATA_DIR, never pickled frames, so the executor's
# process boundary costs only the import of this module. The limits live in the job's own
# executor, so they hold in every instance, with or without a dagster.yaml: one step per
# source system at a time (never two walks against one system's rate limit).
sync_executor = dg.multiprocess_executor.configured(
    {
        "max_concurrent": 2,
        "tag_concurrency_limits": [
            {"key": "source", "value": source, "limit": 1} for source in ("national", "provincial")
        ],
    }
)

# The partitioned staging (assets/prefectures.py) is its own job: a job holds assets of
# one partitioning only.
by_prefecture = dg.AssetSelection.assets(prefectures.PARTS_KEY)

sync_all = dg.define_asset_job(
    name="sync_all",
    selection=dg.AssetSelection.all() - by_prefecture,
    executor_def=sync_executor,
    description=(
        "One complete sync: pull both sources incrementally, stage and validate, resolve "
        "volunteers, organizations and services, publish the warehouse and its marts."
    ),
)

pull_raw = dg.define_asset_job(
    name="pull_raw",
    selection=dg.AssetSelection.groups("raw"),
    executor_def=sync_executor,
    description="Land new and changed rows from both sources without publishing (daytime top-ups).",
)

stage_by_prefecture = dg.define_asset_job(
    name="stage_by_prefecture",
    selection=by_prefecture,
    partitions_def=prefectures.PREFECTURE_PARTITIONS,
    executor_def=sync_executor,
    description=(
        "The staged layer's row work for one prefecture (9 static partitions): run as a "
        "backfill after `pull_raw`, then `sync_from_prefectures`."
    ),
)

sync_from_prefectures = dg.define_asset_job(
    name="sync_from_prefectures",
    selection=dg.AssetSelection.groups("staged", "resolved", "warehouse"),
    executor_def=sync_executor,
    config={"ops": {"staged": {"config": {"from_prefecture_parts": True}}}},
    description=(
        "After `pull_raw` and every partition of `stage_by_prefecture`: combine the parts "
        "into the staged tables (every check), resolve the whole province, publish."
    ),
)

nightly_sync = dg.ScheduleDefinition(
    name="nightly_sync",
    job=sync_all,
    cron_schedule="0 2 * * *",
    execution_timezone="Asia/Shanghai",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="The nightly complete sync, at 02:00 Beijing time.",
)

hourly_pull = dg.ScheduleDefinition(
    name="hourly_pull",
    job=pull_raw,
    cron_schedule="30 8-20 * * *",
    execution_timezone="Asia/Shanghai",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Keep the raw landing zone fresh during office hours; publishing waits for the night.",
)

# Evaluates the marts' freshness check every 30 minutes, whether or not a sync ran (the
# check, not a FreshnessPolicy: see assets/warehouse.py).
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.SupersessionWarning)
    freshness_sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=freshness_checks,
        minimum_interval_seconds=1800,
        name="marts_freshness",
        default_status=dg.DefaultSensorStatus.STOPPED,
    )

defs = dg.Definitions(
    assets=all_assets,
    asset_checks=freshness_checks,
    resources=RESOURCES,
    jobs=[sync_all, pull_raw, stage_by_prefecture, sync_from_prefectures],
    schedules=[nightly_sync, hourly_pull],
    sensors=[freshness_sensor],
)
