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

from assets import raw, resolved, staged, warehouse
from pipelines.logging_privacy import install_log_redaction
from pipelines.resources import RESOURCES

install_log_redaction()

LAYERS = (raw, staged, resolved, warehouse)

all_assets = [asset for layer in LAYERS for asset in layer.assets]
freshness_checks = warehouse.asset_checks

# Two cores: the two source pulls run side by side, everything else one step at a time.
# Steps hand each other files under DATA_DIR, never pickled frames, so the executor's
# process boundary costs only the import of this module. The limits live in the job's own
# executor, so they hold in every instance, with or without a dagster.yaml: one step per
# source system at a time (never two walks against one system's rate limit).
pull_executor = dg.multiprocess_executor.configured(
    {
        "max_concurrent": 2,
        "tag_concurrency_limits": [
            {"key": "source", "value": source, "limit": 1} for source in ("national", "provincial")
        ],
    }
)

# The complete sync runs its steps in one process, one after another. A step process
# costs seconds of start-up and imports (the code location, pandas, DuckDB, Great
# Expectations) before any work; a nightly sync that changed little is almost nothing but
# those, and unchanged steps reuse their last output (pipelines/reuse.py). One step at a time
# keeps both limits (one step per source system, one warehouse writer); what it gives up is
# the two pulls side by side, minutes at the scale of the whole province (README, Benchmarks).
sync_all = dg.define_asset_job(
    name="sync_all",
    selection=dg.AssetSelection.all(),
    executor_def=dg.in_process_executor,
    description=(
        "One complete sync: pull both sources incrementally, stage and validate, resolve "
        "volunteers, organizations and services, publish the warehouse and its marts."
    ),
)

pull_raw = dg.define_asset_job(
    name="pull_raw",
    selection=dg.AssetSelection.groups("raw"),
    executor_def=pull_executor,
    description="Land new and changed rows from both sources without publishing (daytime top-ups).",
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
    jobs=[sync_all, pull_raw],
    schedules=[nightly_sync, hourly_pull],
    sensors=[freshness_sensor],
)
