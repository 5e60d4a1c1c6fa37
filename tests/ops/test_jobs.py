"""The jobs and schedules an operator turns on: the nightly incremental sync and the weekly
full reconciliation, both in Beijing time, both queued as syncs (one at a time)."""

import dagster as dg

from pipelines.definitions import defs
from pipelines.sources import STREAMS


def test_full_reconciliation_is_sync_all_with_every_stream_from_its_start():
    sync_all = defs.resolve_job_def("sync_all")
    full = defs.resolve_job_def("full_reconciliation")
    assert set(full.asset_layer.selected_asset_keys) == set(sync_all.asset_layer.selected_asset_keys)
    default = full.config_mapping.resolve_from_unvalidated_config({})["ops"]  # a launch with no config
    raw_ops = {f"raw__{source}_{stream}" for source, streams in STREAMS.items() for stream in streams}
    assert len(raw_ops) == 11
    assert {op for op, config in default.items() if (config.get("config") or {}).get("full_refresh")} == raw_ops
    assert sync_all.tags["run_queue"] == full.tags["run_queue"] == "sync"


def test_schedules_run_in_beijing_time():
    schedules = {s.name: s for s in defs.schedules}
    nightly, weekly = schedules["nightly_sync"], schedules["weekly_full_reconciliation"]
    assert (nightly.job_name, nightly.cron_schedule) == ("sync_all", "0 2 * * 1-6")
    assert (weekly.job_name, weekly.cron_schedule) == ("full_reconciliation", "0 2 * * 0")
    assert {s.execution_timezone for s in schedules.values()} == {"Asia/Shanghai"}
    assert all(s.default_status == dg.DefaultScheduleStatus.STOPPED for s in schedules.values())
