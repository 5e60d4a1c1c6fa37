"""A run whose process died with nobody left to report it (the daemon's process group killed,
a host restart) is marked failed by run monitoring, saying what happened and what to do, and
the pool slot it held is given back.

Seen on the production instance (deploy/dagster.yaml) before pipelines/run_launcher.py: the
run stayed STARTED for good, no alert, and every later sync waited behind it in the queue
(`run_queue: sync`, limit 1). Here the real `dagster-daemon` runs over a PostgreSQL instance
made from deploy/dagster.yaml (its poll shortened), with a STARTED run whose process is gone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.events import EngineEventData
from dagster._core.launcher.base import WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG

from pipelines.run_launcher import LocalRunLauncher, process_alive, run_process_id
from tests.ops.deployment import ROOT, postgres_database, process, wait_until

pytestmark = pytest.mark.timeout(180)


def dead_process_id() -> int:
    """The id of a process that existed a moment ago and is gone (reaped)."""
    child = subprocess.Popen(["sleep", "60"])
    child.kill()
    child.wait()
    return child.pid


LOCAL_CODE_SERVER = json.dumps({"host": "localhost", "socket": "/tmp/code-server.sock"})


def started_run(instance: dg.DagsterInstance, pid: int, job: str = "sync_all",
                code_server: str = LOCAL_CODE_SERVER) -> dg.DagsterRun:
    """A STARTED run of `job` whose code server (as DefaultRunLauncher notes it) said it
    started it in process `pid`."""
    tags = {"run_queue": "sync", GRPC_INFO_TAG: code_server}
    run = instance.add_run(dg.DagsterRun(job_name=job, run_id=str(uuid.uuid4()),
                                         status=dg.DagsterRunStatus.STARTED, tags=tags))
    instance.report_engine_event(f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid))
    return run


def test_a_process_is_alive_only_while_it_runs_and_only_if_it_is_the_one_started():
    with dg.instance_for_test() as instance:
        child = subprocess.Popen(["sleep", "60"])
        try:
            run = started_run(instance, child.pid)
            pid, since = run_process_id(instance, run.run_id)
            assert pid == child.pid and process_alive(pid, since)
            # the same id, given after a reboot to a program started later, is not the run
            assert not process_alive(pid, since - 3600)
        finally:
            child.kill()
            child.wait()
        assert not process_alive(pid, since)


def test_only_runs_of_this_hosts_code_servers_are_judged():
    launcher = {"run_launcher": {"module": "pipelines.run_launcher", "class": "LocalRunLauncher"}}
    with dg.instance_for_test(overrides=launcher) as instance:
        here = started_run(instance, dead_process_id())
        elsewhere = started_run(instance, dead_process_id(),
                                code_server=json.dumps({"host": "etl-code-2.internal", "port": 4000}))
        health = instance.run_launcher.check_run_worker_health
        assert health(here).status == WorkerStatus.FAILED
        assert "is gone from this host" in health(here).msg
        # its process id means nothing here: left to Dagster, as with its own launcher
        assert health(elsewhere).status == WorkerStatus.RUNNING


def test_the_daemon_fails_a_run_whose_process_is_gone(tmp_path: Path, monkeypatch):
    config = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    assert config["run_launcher"] == {"module": "pipelines.run_launcher", "class": "LocalRunLauncher"}
    config["run_monitoring"]["poll_interval_seconds"] = 1  # production: 60
    config["run_monitoring"]["free_slots_after_run_end_seconds"] = 1  # production: 60
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    with postgres_database("oncall_monitoring") as database:
        instance_db = {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_USER": "postgres",
                       "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_DB": database}
        for name, value in instance_db.items():
            monkeypatch.setenv(name, value)
        env = {**os.environ, "DAGSTER_HOME": str(home), "DATA_DIR": str(tmp_path / "data")}
        instance = dg.DagsterInstance.from_config(str(home))
        assert isinstance(instance.run_launcher, LocalRunLauncher)
        alive = subprocess.Popen(["sleep", "120"])
        try:
            dead = started_run(instance, dead_process_id(), job="full_reconciliation")
            running = started_run(instance, alive.pid)
            # the dead run was killed inside a national step, holding the pool's one slot
            pools = instance.event_log_storage
            pools.set_concurrency_slots("national", 1)
            assert pools.claim_concurrency_slot("national", dead.run_id, "raw__national_teams").is_claimed
            daemon = [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"]
            with process(daemon, env, tmp_path / "daemon.log"):
                failed = wait_until(
                    lambda: (r := instance.get_run_by_id(dead.run_id)).status == dg.DagsterRunStatus.FAILURE and r,
                    "run monitoring to fail the dead run", timeout=120)
                assert failed.status == dg.DagsterRunStatus.FAILURE
                # its slot is given back, or every later run would wait at the pool for good
                wait_until(lambda: pools.get_concurrency_info("national").claimed_slots == [],
                           "the dead run's pool slot to be freed", timeout=60)
                # the live run's process was checked too, and left alone
                assert instance.get_run_by_id(running.run_id).status == dg.DagsterRunStatus.STARTED
            message = next(e.message for e in instance.all_logs(dead.run_id)
                           if e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.RUN_FAILURE)
            assert "is gone from this host" in message and "Launch the job again" in message
            assert "docs/RUNBOOK.md" in message
        finally:
            alive.kill()
            alive.wait()
            instance.dispose()
