"""Two runs on one DATA_DIR never interleave, in the configuration a user runs: the
contract's command (`dagster job execute`), no `DAGSTER_HOME`, no `dagster.yaml`. The run
holds DATA_DIR's lock from its first step to its last (its executor, pipelines/definitions.py);
a second run waits a bounded time (run tag `sync_lock_wait_seconds`), then stops saying who
holds it. Temporary names are unique per writer, and a cleaner never takes a live writer's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg

from pipelines.definitions import sync_executor
from pipelines.files import remove_partial_writes, temp_path, write_text
from pipelines.locks import held_lock, sync_lock_path
from pipelines.resources import PipelineSettings

ROOT = Path(__file__).resolve().parents[2]

HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from pipelines.locks import held_lock
    with held_lock(Path(sys.argv[1]), what="DATA_DIR", owner="Dagster run nightly-0200"):
        print("held", flush=True)
        sys.stdin.readline()
""")


def test_a_second_run_on_the_same_data_dir_stops_with_a_clear_message(tmp_path):
    data_dir = tmp_path / "data"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(sync_lock_path(data_dir.resolve()))],
                              cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
        env.update({"DATA_DIR": str(data_dir), "NATIONAL_API_URL": "http://127.0.0.1:9",
                    "PROVINCIAL_API_URL": "http://127.0.0.1:9", "PYTHONPATH": str(ROOT)})  # this checkout's code
        second = subprocess.run(
            [sys.executable, "-m", "dagster", "job", "execute", "-m", "pipelines.definitions",
             "-j", "pull_raw", "--tags", '{"sync_lock_wait_seconds": "1"}'],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
        )
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    output = second.stdout + second.stderr
    assert second.returncode != 0
    assert f"DATA_DIR {data_dir.resolve()} is in use by process {holder.pid}" in output
    assert "Dagster run nightly-0200" in output
    # and said so when it started to wait, not only when it gave up
    assert f"DATA_DIR {data_dir.resolve()} is in use by process {holder.pid}" in output.split("LockBusy")[0]
    assert "waiting up to 1 s" in output
    # it stopped before its first step: nothing landed, no source was called
    assert not (data_dir / "raw").exists()
    assert "STEP_START" not in output


def test_temporary_names_are_unique_and_live_writers_keep_theirs(tmp_path):
    target = tmp_path / "staged" / "volunteers.parquet"
    names = {temp_path(target).name for _ in range(1000)}
    assert len(names) == 1000
    # a writer that is alive (this process) and one that is gone
    target.parent.mkdir()
    live = temp_path(target)
    live.write_text("in progress")
    dead = target.with_name(f".{target.name}.999999999-1-0123abcd.tmp")
    dead.write_text("left by a killed run")
    remove_partial_writes(target.parent)
    assert live.exists() and not dead.exists()
    dead.write_text("left by a killed run")
    write_text(target, "new")  # the next write of the file tidies what dead writers left
    assert live.exists() and not dead.exists() and target.read_text() == "new"


def test_a_holder_killed_with_the_lock_leaves_its_record_and_one_that_lets_go_does_not(tmp_path):
    path = sync_lock_path(tmp_path / "data")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)],
                              cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()  # SIGKILL: no `finally` runs
    holder.wait(timeout=60)
    with held_lock(path, what="DATA_DIR", owner="Dagster run next") as left_behind:
        assert left_behind["pid"] == holder.pid and left_behind["owner"] == "Dagster run nightly-0200"
    with held_lock(path, what="DATA_DIR") as left_behind:
        assert left_behind is None  # the run before let go


def test_a_run_killed_holding_the_lock_is_marked_failed_by_the_next_run(tmp_path):
    """`dagster job execute` killed mid-run leaves its run STARTED in DAGSTER_HOME for good;
    the next run on the same DATA_DIR takes the lock, finds its record, and marks it failed."""
    from dagster import DagsterInstance, DagsterRunStatus
    from dagster._core.storage.dagster_run import DagsterRun

    from pipelines.definitions import RUN_OWNER, fail_run_left_behind

    (tmp_path / "dagster_home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "dagster_home")) as instance:
        killed = instance.add_run(DagsterRun(job_name="sync_all", run_id="killed-run", status=DagsterRunStatus.STARTED))
        done = instance.add_run(DagsterRun(job_name="sync_all", run_id="done-run", status=DagsterRunStatus.SUCCESS))
        # each was killed inside a step of a pool (dagster.yaml: one slot per pool), holding its slot
        pools = instance.event_log_storage
        for pool, run_id, step in (("national", "killed-run", "raw__national_teams"),
                                   ("warehouse", "done-run", "warehouse__publish")):
            pools.set_concurrency_slots(pool, 1)
            assert pools.claim_concurrency_slot(pool, run_id, step).is_claimed
        next_step = pools.claim_concurrency_slot("national", "next-run", "raw__national_volunteers")
        assert not next_step.is_claimed  # the next run would wait here for good
        said: list[str] = []
        fail_run_left_behind(instance, {"pid": 4242, "host": "etl-1", "owner": f"{RUN_OWNER}{killed.run_id}"},
                             said.append)
        fail_run_left_behind(instance, {"pid": 4243, "host": "etl-1", "owner": f"{RUN_OWNER}{done.run_id}"},
                             said.append)
        assert instance.get_run_by_id(killed.run_id).status == DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(done.run_id).status == DagsterRunStatus.SUCCESS  # left as it ended
        assert "process 4242 on etl-1, Dagster run killed-run" in said[0]
        failure = [e for e in instance.all_logs(killed.run_id) if e.dagster_event and e.dagster_event.is_run_failure]
        assert "killed while it held DATA_DIR's lock" in failure[0].message
        # their pool slots are given back: the next run's steps go on
        assert pools.get_concurrency_info("national").claimed_slots == []
        assert pools.get_concurrency_info("warehouse").claimed_slots == []
        assert pools.claim_concurrency_slot("national", "next-run", "raw__national_volunteers").is_claimed


@dg.op
def land_slowly(pipeline_settings: PipelineSettings):
    """A step that says it started (its process id, in DATA_DIR) and then works for a minute."""
    data_dir = pipeline_settings.settings().data_dir
    (data_dir / "step.pid").write_text(str(os.getpid()))
    time.sleep(60)
    (data_dir / "written after the run died").write_text("too late")


@dg.job(executor_def=sync_executor, resource_defs={"pipeline_settings": PipelineSettings()})
def pull_in_step_processes():  # as pull_raw: each step in a process of its own
    land_slowly()


RUN = textwrap.dedent("""
    import sys
    import dagster as dg
    from tests.crash.test_overlap import pull_in_step_processes
    with dg.DagsterInstance.local_temp(sys.argv[1]) as instance:
        dg.execute_job(dg.reconstructable(pull_in_step_processes), instance=instance)
""")


def test_a_step_process_dies_with_its_run(tmp_path):
    """The run's process killed (SIGKILL) while a step runs in a process of its own: the step
    process is killed with it, so nothing writes DATA_DIR once the run's lock is free."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = {**os.environ, "DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    env.pop("DAGSTER_HOME", None)
    (tmp_path / "dagster_home").mkdir()
    run = subprocess.Popen([sys.executable, "-c", RUN, str(tmp_path / "dagster_home")], cwd=tmp_path, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    step_pid_file = data_dir / "step.pid"
    deadline = time.monotonic() + 120
    while not step_pid_file.exists() and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.2)
    assert step_pid_file.exists(), "the step never started"
    step_pid = int(step_pid_file.read_text())
    assert step_pid != run.pid  # a process of its own
    run.kill()
    run.wait()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{step_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Path(f"/proc/{step_pid}").exists(), "the step's process outlived its run"
    with held_lock(sync_lock_path(data_dir.resolve()), what="DATA_DIR") as left_behind:
        assert left_behind["pid"] == run.pid  # the next run finds the lock free, and who held it


STEP_STILL_STARTING = textwrap.dedent("""
    import multiprocessing, sys, time
    from pathlib import Path
    from pipelines.locks import run_process_noted
    from tests.crash.test_overlap import step_that_starts_late

    if __name__ == "__main__":
        with run_process_noted():
            step = multiprocessing.get_context("spawn").Process(target=step_that_starts_late, args=(sys.argv[1],))
            step.start()
        print(step.pid, flush=True)
        time.sleep(60)
""")


def step_that_starts_late(folder: str) -> None:
    """A step process still starting (imports) when its run's process is killed."""
    from pipelines.locks import die_with_the_run

    while not (Path(folder) / "go").exists():
        time.sleep(0.05)
    die_with_the_run()
    (Path(folder) / "worked after the run died").write_text("too late")


def test_a_step_process_still_starting_when_its_run_died_does_nothing(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(STEP_STILL_STARTING)
    run = subprocess.Popen([sys.executable, str(script), str(tmp_path)], cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    step_pid = int(run.stdout.readline())
    run.kill()
    run.wait()
    (tmp_path / "go").write_text("")  # the step gets going only now, its run gone
    deadline = time.monotonic() + 30
    while Path(f"/proc/{step_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{step_pid}").exists()
    assert not (tmp_path / "worked after the run died").exists()
