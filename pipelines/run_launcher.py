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
run (pid: N)", an engine event). A run started before this host last booted is dead. Else
its process is alive if a process with that id exists, is not a zombie, and started no later
than that event (give or take a clock correction). Judged on this host, where the daemon's
own code server runs its runs (workspace.yaml's `python_module`); a run started by a code
server on another host (a `grpc_server` entry) is never judged: it is left to Dagster as before.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from dagster import DagsterEventType, DefaultRunLauncher

# Private to Dagster but the only way to answer run monitoring: the types its daemon reads,
# and the run tag where DefaultRunLauncher notes the code server it launched the run through.
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG

PROCESS_STARTED = "Started process for run"
# The code server writes the event just after the process has started. A clock corrected
# by NTP moves "now" but not what was written: times are compared with this much play. A
# healthy run is never judged dead by a small step; a process that started minutes after
# the event is another program that was given the same id.
CLOCK_SLACK_SECONDS = 300.0
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", ""}
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


def started_on_this_host(run) -> bool:
    """Whether the run was launched through a code server on this host (a local socket or a
    loopback port): only then is its process one of this host's."""
    try:
        grpc = json.loads(run.tags.get(GRPC_INFO_TAG) or "{}")
    except ValueError:
        return False
    return bool(grpc.get("socket")) or str(grpc.get("host") or "") in LOCAL_HOSTS | {socket.gethostname()}


def boot_time(proc: Path = Path("/proc")) -> float | None:
    """When this host last booted (Unix seconds), from Linux's /proc/stat."""
    try:
        line = next(line for line in (proc / "stat").read_text().splitlines() if line.startswith("btime "))
    except (OSError, StopIteration):
        return None
    return float(line.split()[1])


def process_start_time(pid: int, proc: Path = Path("/proc")) -> float | None:
    """When process `pid` started (Unix seconds), from Linux's /proc; None when there is no
    such live process (gone, or a zombie: dead, its parent has not reaped it yet)."""
    boot = boot_time(proc)
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    if boot is None:
        return None
    # the command name (field 2) may hold spaces and brackets: the fields after it follow
    # the last ')'; state is field 3, start time (clock ticks after boot) field 22
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def process_alive(pid: int, started_by: float) -> bool:
    """Whether the process `pid`, started by the instant `started_by`, still runs here."""
    boot = boot_time()
    if boot is not None:
        if started_by < boot - CLOCK_SLACK_SECONDS:
            return False  # started before this host's last boot: nothing of it survived
        start = process_start_time(pid)
        return start is not None and start <= started_by + CLOCK_SLACK_SECONDS
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
        started = run_process_id(self._instance, run.run_id) if started_on_this_host(run) else None
        if started is None:
            # not started by a code server (or not yet): nothing to judge by, never a failure
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no process recorded for this run")
        pid, since = started
        if process_alive(pid, since):
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(pid))
        return CheckRunHealthResult(WorkerStatus.FAILED, dead_run_message(pid, since), run_worker_id=str(pid))
