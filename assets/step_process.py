"""A step's heavy data work in a fresh child process, so that the sync's process stays small.

`sync_all` runs every step in one process (pipelines/definitions.py, `sync_in_one_process`):
no step pays a process start-up, and a rerun that reuses its steps costs milliseconds each.
But what a step leaves in that process (Python's and glibc's arenas, DuckDB's allocator,
Great Expectations imported) is not given back to the system, so the resolution ran on top
of what landing and staging had left: at 1M persons the sync peaked 1.3–1.9 GiB above the
resolution alone. A step that has real work to do on a large input hands it to a child
process here; the child's memory goes back to the system when it exits, and the sync's
peak becomes the largest step's plus the orchestrating process's baseline.

The child is spawned (not forked: a fork would share, and copy on write, the very memory we
want gone), imports only what the work needs, and returns a small picklable result (a
summary, metadata and check results as plain JSON). Across the boundary:

- log records: the child installs the same log redaction (`install_log_redaction`) and sends
  its records, already scrubbed, through a queue; the parent hands each to the logger of the
  same name, so they end where they went when the work ran in process;
- an exception: caught in the child, scrubbed (message and traceback) and returned as text;
  the parent raises it as a Dagster `Failure`, so the step fails as before, with no personal
  number in the event log (a full or read-only disk is not retried, as `errors_scrubbed`);
- the child's death (SIGKILL from the OOM killer or a kill point): the step fails, naming
  the signal; what the child wrote is what a killed step leaves (files replaced by rename,
  docs/RELIABILITY.md), and the rerun redoes the step;
- the parent's death: the child is killed with it (PR_SET_PDEATHSIG), so nothing writes
  DATA_DIR after the run's lock is gone.

Small inputs stay in process (`PipelineSettings.step_process_min_mb`): the child's start and
imports (1–5 s) would cost more than the memory it saves, and tests on small worlds keep
their speed.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import os
import queue
import signal
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pipelines.logging_privacy import scrub

POLL_SECONDS = 0.2


def input_megabytes(paths: Iterable[Path]) -> float:
    """Size of the files a step reads (missing ones count nothing), in MiB."""
    total = 0
    for path in paths:
        try:
            total += Path(path).stat().st_size
        except OSError:
            continue
    return total / 2**20


def worth_a_process(megabytes: float, min_mb: float) -> bool:
    """Whether a step's data work should run in a child: its input of `megabytes` MiB at
    least `min_mb` MiB (0: always; negative: never)."""
    if min_mb < 0:
        return False
    return min_mb == 0 or megabytes >= min_mb


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux; elsewhere a no-op)."""
    from pipelines.locks import die_with_parent

    die_with_parent()


def allocate_arrow_from_the_system() -> None:
    """Arrow's buffers (pandas' string columns among them) from the C library's allocator,
    not mimalloc's pool: glibc gives a large freed buffer back to the system at once, the
    pool keeps it for later. The child exists to bound a large step's memory; there this
    lowered the resolution's peak at 1M persons from 2,632 to 2,338 MB with the same CPU
    seconds (bench/resolve_step.py, which calls this too)."""
    import pyarrow

    pyarrow.set_memory_pool(pyarrow.system_memory_pool())


def _child_main(connection, log_queue, parent_pid: int, log_level: int) -> None:
    """The child: serve calls from the parent until told to stop."""
    _die_with_parent()
    if os.getppid() != parent_pid:  # the parent died before prctl took hold
        os._exit(1)
    allocate_arrow_from_the_system()
    from pipelines.logging_privacy import install_log_redaction

    install_log_redaction()  # every record made here is scrubbed before it leaves
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(log_queue)]
    root.setLevel(log_level)
    while True:
        try:
            call = connection.recv()
        except EOFError:
            return
        if call is None:
            return
        function, args, kwargs = call
        try:
            outcome = ("ok", function(*args, **kwargs))
        except BaseException as error:  # noqa: BLE001 - crosses the boundary as scrubbed text
            outcome = ("error", type(error).__name__, scrub(f"{type(error).__name__}: {error}"),
                       scrub(traceback.format_exc()))
        try:
            connection.send(outcome)
        except Exception as error:  # noqa: BLE001 - a result that cannot be pickled
            connection.send(("error", type(error).__name__, scrub(f"{type(error).__name__}: {error}"),
                             scrub(traceback.format_exc())))


def _signal_name(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return signal.Signals(-exitcode).name
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"


class StepProcess:
    """One spawned child that runs calls one after another (a step's tables share its imports).
    Use as a context manager: the child ends with the block."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._process = None

    def __enter__(self) -> StepProcess:
        return self

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._log_queue = context.Queue()
        self._connection, child_end = context.Pipe()
        self._process = context.Process(
            target=_child_main,
            args=(child_end, self._log_queue, os.getpid(), logging.getLogger().getEffectiveLevel()),
            name=f"step:{self.what}",
            daemon=True,
        )
        self._process.start()
        child_end.close()

    def _forward_logs(self) -> None:
        while True:
            try:
                record = self._log_queue.get_nowait()
            except queue.Empty:
                return
            logger = logging.getLogger(record.name)
            if logger.isEnabledFor(record.levelno):
                logger.handle(record)

    def call(self, function: Callable[..., Any], *args, **kwargs) -> Any:
        """`function(*args, **kwargs)` in the child (started on first use); its result, or a
        scrubbed Failure."""
        # imported here, not at the top: the child imports this module, and Dagster (~60 MiB)
        # has no business in it
        from dagster import Failure, MetadataValue

        if self._process is None:
            self._start()
        self._connection.send((function, args, kwargs))
        while not self._connection.poll(POLL_SECONDS):
            self._forward_logs()
        try:
            outcome = self._connection.recv()
        except EOFError:  # the child died: its end of the pipe closed with no answer
            self._process.join(timeout=5)
            self._forward_logs()
            raise Failure(
                description=f"{self.what}: its process died ({_signal_name(self._process.exitcode)}; "
                "out of memory? see the system log); the rerun redoes the step",
            ) from None
        self._forward_logs()
        if outcome[0] == "ok":
            return outcome[1]
        _, kind, message, trace = outcome
        raise Failure(
            description=message,
            metadata={"traceback": MetadataValue.text(trace)},
            # a full or read-only disk: retrying in a minute won't help (as errors_scrubbed)
            allow_retries=kind != "DataDirUnwritable",
        )

    def __exit__(self, *exc) -> None:
        if self._process is None:
            return
        try:
            if self._process.is_alive():
                self._connection.send(None)
                self._process.join(timeout=30)
        except (BrokenPipeError, OSError):
            pass
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._forward_logs()
        self._connection.close()
        self._log_queue.close()
        self._log_queue.join_thread()


class InProcess:
    """The same interface as StepProcess, in this process (small inputs)."""

    def __enter__(self) -> InProcess:
        return self

    def call(self, function: Callable[..., Any], *args, **kwargs) -> Any:
        return function(*args, **kwargs)

    def __exit__(self, *exc) -> None:
        return None
