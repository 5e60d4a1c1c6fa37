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

from assets import alerts, certificates, prefectures, raw, reports, resolved, review, staged, warehouse
from pipelines.logging_privacy import install_log_redaction
from pipelines.resources import RESOURCES, PipelineSettings

install_log_redaction()

LAYERS = (raw, staged, resolved, warehouse, review, reports, prefectures)

all_assets = [asset for layer in LAYERS for asset in layer.assets]
freshness_checks = warehouse.asset_checks

# Two cores: the two source pulls run side by side, everything else one step at a time.
# Steps hand each other files under DATA_DIR, never pickled frames, so the executor's
# process boundary costs only the import of this module. The limits live in the job's own
# executor, so they hold in every instance, with or without a dagster.yaml: one step per
# source system at a time (never two walks against one system's rate limit), and the run
# holds DATA_DIR's lock from its first step to its last (pipelines/locks.py): two runs on
# one DATA_DIR never interleave, whoever launched them. The warehouse has its own lock,
# taken by the publish itself (one writer per warehouse, whatever the instance says).
SYNC_LOCK_WAIT_TAG = "sync_lock_wait_seconds"
SYNC_LOCK_WAIT_SECONDS = 1800.0  # a nightly run waits out a manual one, within reason


class _DataDirLockedExecutor(dg.Executor):
    """An executor run while holding the run's DATA_DIR lock. The lock is held by the run's
    orchestrating process (the one that runs or launches the steps), so it lasts exactly as
    long as the run, and the kernel frees it if that process dies."""

    def __init__(self, inner: dg.Executor):
        self._inner = inner

    @property
    def retries(self):
        return self._inner.retries

    def execute(self, plan_context, execution_plan):
        from pipelines.guard import ensure_publishable
        from pipelines.locks import held_lock, run_process_noted, sync_lock_path

        pipeline = plan_context.run_config.get("resources", {}).get("pipeline_settings", {})
        settings = PipelineSettings(**(pipeline.get("config") or {})).settings()
        if publishes(execution_plan.step_keys_to_execute):
            # refused now, not after a night of landing, staging and resolving (guard.py)
            ensure_publishable(settings)
        wait = float(plan_context.dagster_run.tags.get(SYNC_LOCK_WAIT_TAG, SYNC_LOCK_WAIT_SECONDS))
        with held_lock(
            sync_lock_path(settings.data_dir.resolve()),
            what=f"DATA_DIR {settings.data_dir.resolve()}",
            owner=f"{RUN_OWNER}{plan_context.run_id}",
            wait_seconds=wait,
            say=plan_context.log.warning,
        ) as left_behind:
            if left_behind is not None:
                fail_run_left_behind(plan_context.instance, left_behind, plan_context.log.warning)
            with run_process_noted():  # step processes die with this one (locks.die_with_the_run)
                yield from self._inner.execute(plan_context, execution_plan)


RUN_OWNER = "Dagster run "  # what a run's DATA_DIR lock says of its holder, before the run id


def fail_run_left_behind(instance: dg.DagsterInstance, record: dict, say) -> None:
    """A run killed while it held DATA_DIR's lock (SIGKILL, out of memory, a reboot) never
    said it ended: run by `dagster job execute`, its record in the instance says STARTED for
    good, and the dashboard shows it running. The run that takes the lock after it marks it
    failed (under the daemon, run monitoring has already done so: nothing to do).

    Killed inside a step, it also never gave back that step's pool slot (one per source
    system and for the warehouse, in every instance's dagster.yaml): the slot stays taken
    for good, whoever marked the run failed, and this run would wait at that pool forever
    ("Step blocked by limit for pool national") holding DATA_DIR's lock. Its process is gone
    (the lock is ours), so its slots are given back here."""
    from pipelines.locks import describe_record

    say(f"the last run on this DATA_DIR ended without letting it go: {describe_record(record)}")
    owner = str(record.get("owner") or "")
    if not owner.startswith(RUN_OWNER):
        return
    run_id = owner.removeprefix(RUN_OWNER)
    run = instance.get_run_by_id(run_id)
    if run is not None and not run.is_finished:
        instance.report_run_failed(run, message=(
            "This run's process ended without finishing it (killed while it held DATA_DIR's "
            "lock); marked failed by the next run on the same DATA_DIR. The files its steps "
            "wrote are whole or absent: the next run redoes what it left."))
    if instance.event_log_storage.supports_global_concurrency_limits:
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)


def publishes(step_keys: list[str]) -> bool:
    """Whether a run of these steps writes the warehouse (the asset `warehouse/publish`)."""
    return warehouse.PUBLISH.to_python_identifier() in step_keys


def _locked(inner: dg.ExecutorDefinition, name: str) -> dg.ExecutorDefinition:
    @dg.executor(name=name, config_schema=inner.config_schema, requirements=inner.get_requirements({}))
    def locked_executor(init_context):
        return _DataDirLockedExecutor(inner.executor_creation_fn(init_context))

    return locked_executor


# The complete sync runs its steps in one process, one after another. A step process
# costs seconds of start-up and imports (the code location, pandas, DuckDB, Great
# Expectations) before any work; a nightly sync that changed little is almost nothing but
# those, and unchanged steps reuse their last output (pipelines/reuse.py). One step at a time
# keeps both limits (one step per source system, one warehouse writer); what it gives up is
# the two pulls side by side, minutes at the scale of the whole province (README, Benchmarks).
sync_in_one_process = _locked(dg.in_process_executor, "sync_in_one_process")

sync_executor = _locked(dg.multiprocess_executor, "sync_executor").configured(
    {
        "max_concurrent": 2,
        "tag_concurrency_limits": [
            {"key": "source", "value": source, "limit": 1} for source in ("national", "provincial")
        ],
    }
)

# Runs that write the warehouse carry this tag; the production instance (deploy/dagster.yaml)
# queues them one at a time, so a scheduled night and a re-run by hand never overlap.
SYNC_RUN_TAGS = {"run_queue": "sync"}

# The partitioned staging (assets/prefectures.py) is its own job: a job holds assets of
# one partitioning only.
by_prefecture = dg.AssetSelection.assets(prefectures.PARTS_KEY)

sync_all = dg.define_asset_job(
    name="sync_all",
    selection=dg.AssetSelection.all() - by_prefecture,
    executor_def=sync_in_one_process,
    tags=SYNC_RUN_TAGS,
    description=(
        "One complete sync: pull both sources incrementally, stage and validate, resolve "
        "volunteers, organizations and services, publish the warehouse and its marts."
    ),
)

# The weekly full reconciliation: the same sync, every raw stream walked again from its
# start under a new sync id (deletions and edits the incremental cursors cannot see come
# back); staging keeps the newest version of each row, resolution and publishing as nightly.
full_reconciliation = dg.define_asset_job(
    name="full_reconciliation",
    selection=dg.AssetSelection.all() - by_prefecture,
    executor_def=sync_in_one_process,
    tags=SYNC_RUN_TAGS,
    config={"ops": raw.full_refresh_run_config()},
    description=(
        "sync_all with every source stream re-pulled from the start (full_refresh on every "
        "raw asset): the weekly reconciliation against the sources."
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
    selection=dg.AssetSelection.groups("staged", "resolved", "warehouse", "review", "reports"),
    executor_def=sync_executor,
    tags=SYNC_RUN_TAGS,
    config={"ops": {"staged": {"config": {"from_prefecture_parts": True}}}},
    description=(
        "After `pull_raw` and every partition of `stage_by_prefecture`: combine the parts "
        "into the staged tables (every check), resolve the whole province, publish."
    ),
)

def _beijing_schedule(name: str, job, cron: str, description: str) -> dg.ScheduleDefinition:
    """A schedule on Beijing time, shipped stopped: an operator turns it on in the UI."""
    return dg.ScheduleDefinition(
        name=name,
        job=job,
        cron_schedule=cron,
        execution_timezone="Asia/Shanghai",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=description,
    )


nightly_sync = _beijing_schedule(
    "nightly_sync", sync_all, "0 2 * * 1-6",
    "The nightly incremental sync, Monday to Saturday at 02:00 Beijing time.",
)
weekly_full_reconciliation = _beijing_schedule(
    "weekly_full_reconciliation", full_reconciliation, "0 2 * * 0",
    "The weekly full reconciliation, Sundays at 02:00 Beijing time (in place of that night's sync).",
)
hourly_pull = _beijing_schedule(
    "hourly_pull", pull_raw, "30 8-20 * * *",
    "Keep the raw landing zone fresh during office hours; publishing waits for the night.",
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
    jobs=[sync_all, pull_raw, full_reconciliation, stage_by_prefecture, sync_from_prefectures,
          *certificates.jobs],
    schedules=[nightly_sync, hourly_pull, weekly_full_reconciliation],
    sensors=[freshness_sensor, *alerts.sensors, *review.sensors],
    executor=sync_executor,  # runs launched from the UI (any selection) hold the lock too
)
