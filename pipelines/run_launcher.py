"""The production instance's run launcher: Dagster's own `DefaultRunLauncher` (each run a
process on this host, started by the code server), taught to tell run monitoring whether a
run's process is still alive.

Why: Dagster's default launcher cannot say, so run monitoring skips every STARTED run. A run
whose process died with the code server that started it (the daemon's process group killed,
`systemctl restart` of a hung daemon, a host reboot, the OOM killer taking the group) stays
STARTED for good: the UI shows it running, the failure alert never fires, and because the
instance queues one sync at a time (`run_queue: sync`, deploy/dagster.yaml) every later
`sync_all` and `full_reconciliation` waits behind it in the queue, night after night, in
silence. (A run process killed alone is reported by the code server that started it at
once; this covers the case where nobody is left to report it.)

How: the code server records the run's process id when it starts it ("Started process for
run (pid: N)", an engine event). The process is alive if a process with that id exists, is
not a zombie, and started no later than that event (after a reboot the id may belong to
another program). Judged on this host, which is where `DefaultRunLauncher` runs its runs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from dagster import DagsterEventType, DefaultRunLauncher

# Private to Dagster but the only way to answer run monitoring: the types its daemon reads.
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus

PROCESS_STARTED = "Started process for run"
# The code server writes the event just after the process has started: a process that
# started more than this after the event is another program that was given the same id.
START_SLACK_SECONDS = 30.0
RUNBOOK = "docs/RUNBOOK.md, 'A run killed'"


def run_process_id(instance, run_id: str) -> tuple[int, float] | None:
    """The process id the code server started `run_id` in, and when it said so (Unix
    seconds); None when no such event was recorded (a run of `dagster job execute`)."""
    found = None
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        if event is None or not (event.message or "").startswith(PROCESS_STARTED):
            continue
        pid = event.engine_event_data.metadata.get("pid")
        try:
            found = (int(pid.value), entry.timestamp)
        except (AttributeError, TypeError, ValueError):
            continue
    return found


def process_start_time(pid: int, proc: Path = Path("/proc")) -> float | None:
    """When process `pid` started (Unix seconds), from Linux's /proc; None when there is no
    such live process (gone, or a zombie: dead, its parent has not reaped it yet)."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
        boot = next(line for line in (proc / "stat").read_text().splitlines() if line.startswith("btime "))
    except (OSError, StopIteration):
        return None
    # the command name (field 2) may hold spaces and brackets: the fields after it follow
    # the last ')'; state is field 3, start time (clock ticks after boot) field 22
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(boot.split()[1]) + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def process_alive(pid: int, started_by: float) -> bool:
    """Whether the process `pid`, started by the instant `started_by`, still runs here."""
    if Path("/proc/self/stat").exists():
        start = process_start_time(pid)
        return start is not None and start <= started_by + START_SLACK_SECONDS
    try:  # no /proc (not Linux): existence alone
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def dead_run_message(pid: int, since: float) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(since))
    return (
        f"the run's process (pid {pid}, started {started}) is gone from this host without "
        "ending the run: killed (SIGKILL, the out-of-memory killer, the daemon's process group "
        "stopped) or the host restarted. Nothing is half-written: its files are whole or absent "
        "and the warehouse is the last published one. Launch the job again: it resumes from "
        f"the checkpoints ({RUNBOOK})."
    )


class LocalRunLauncher(DefaultRunLauncher):
    """`DefaultRunLauncher` with a health check, so run monitoring fails a dead run."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run) -> CheckRunHealthResult:
        started = run_process_id(self._instance, run.run_id)
        if started is None:
            # not started by a code server (or not yet): nothing to judge by, never a failure
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no process recorded for this run")
        pid, since = started
        if process_alive(pid, since):
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(pid))
        return CheckRunHealthResult(WorkerStatus.FAILED, dead_run_message(pid, since), run_worker_id=str(pid))
