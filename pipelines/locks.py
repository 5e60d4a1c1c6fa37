"""Cross-process locks: two syncs on one DATA_DIR, or two publishes to one warehouse, never
interleave.

A province runs the nightly sync from the daemon while somebody may launch another by hand,
on a shared server. Whatever the Dagster instance says (its pools hold only where its
`dagster.yaml` is), these locks hold: the second run waits a bounded time, then stops with
a message that says who holds the lock (process, host, run, since when).

* `held_lock(path)`: an exclusive `flock` on a file (`DATA_DIR/state/sync.lock` for a run,
  a `.<name>.lock` beside a DuckDB warehouse for a publish). The kernel releases it when
  the holder dies, however it dies (SIGKILL included): there is no stale lock to clear.
* PostgreSQL publishes take an advisory lock instead (pipelines/warehouse/publish.py),
  released by the server when the session ends.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from pipelines.files import private_dir, unwritable_error

POLL_SECONDS = 0.2


class LockBusy(RuntimeError):
    """Another process holds the lock, and kept it longer than we were willing to wait."""


def describe_holder(text: str) -> str:
    """What a lock file says about its holder, in words."""
    holder = _record_of(text)
    return "an unknown process" if holder is None else describe_record(holder)


def describe_record(holder: dict) -> str:
    """A holder's record (`held_lock`), in words."""
    parts = [f"process {holder.get('pid')} on {holder.get('host')}"]
    if holder.get("owner"):
        parts.append(str(holder["owner"]))
    if holder.get("since"):
        parts.append(f"since {holder['since']}")
    return ", ".join(parts)


@contextmanager
def held_lock(path: Path, *, what: str, owner: str = "", wait_seconds: float = 0.0,
              say: Callable[[str], None] | None = None) -> Iterator[dict | None]:
    """Hold an exclusive lock on `path` (created 0600) for the block.

    Waits at most `wait_seconds`, then raises `LockBusy` naming `what` is locked and by whom;
    `say` is told once when the wait starts, who holds it and for how long it will wait (a run
    that waits half an hour in silence looks hung). Gives the record a holder left when it
    died holding the lock (killed: a holder that lets go empties the file first), else None.
    Not re-entrant: a process that already holds `path` must not ask again.
    """
    private_dir(path.parent)
    fd = _refusal_said_plainly(path, lambda: os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    try:
        deadline = time.monotonic() + max(wait_seconds, 0.0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockBusy(
                        f"{what} is in use by {_holder(path)} (lock {path}); waited {wait_seconds:g} s. "
                        "Two runs on the same data never interleave: let the other finish and "
                        "run again."
                    ) from None
                if say is not None:
                    say(f"{what} is in use by {_holder(path)} (lock {path}): waiting up to {wait_seconds:g} s")
                    say = None
                time.sleep(POLL_SECONDS)
        left_behind = _record_of(_holder_text(path))
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "owner": owner,
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        _refusal_said_plainly(path, lambda: _write_record(fd, record))
        try:
            yield left_behind
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder_text(path: Path) -> str:
    return Path(path).read_text(encoding="utf-8", errors="replace")


def _holder(path: Path) -> str:
    return describe_holder(_holder_text(path))


def _record_of(text: str) -> dict | None:
    try:
        record = json.loads(text)
    except ValueError:  # empty: let go as it should be
        return None
    return record if isinstance(record, dict) else None


def _write_record(fd: int, record: dict) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode("utf-8"), 0)


def _refusal_said_plainly(path: Path, write):
    """`write()`'s result; a disk that refuses (a read-only or full DATA_DIR: the lock is the
    run's first write there) raises `DataDirUnwritable`, naming the lock file and what to do,
    not the system's bare error."""
    try:
        return write()
    except OSError as error:
        clear = unwritable_error(path, error)
        if clear is None:
            raise
        raise clear from None


def sync_lock_path(data_dir: Path) -> Path:
    """The lock a run holds on its DATA_DIR from its first step to its last."""
    return Path(data_dir) / "state" / "sync.lock"


# The run's process notes its id here for the step processes it starts (Dagster's
# multiprocess executor: `pull_raw`, the prefecture jobs). Not configuration: a message from
# a process to its children, which inherit the environment.
RUN_PROCESS_VARIABLE = "PIPELINE_RUN_PROCESS_ID"
_PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when the thread that made it dies


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux; elsewhere a no-op)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return


@contextmanager
def run_process_noted() -> Iterator[None]:
    """Around the steps of a run, in its process (the one that holds DATA_DIR's lock): its
    step processes learn which process they must not outlive (`die_with_the_run`)."""
    before = os.environ.get(RUN_PROCESS_VARIABLE)
    os.environ[RUN_PROCESS_VARIABLE] = str(os.getpid())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(RUN_PROCESS_VARIABLE, None)
        else:
            os.environ[RUN_PROCESS_VARIABLE] = before


def die_with_the_run() -> None:
    """In a step process that the run's process started: be killed with it.

    Dagster's multiprocess executor starts each step in a child process that outlives the
    run's process when that is killed (seen: a `pull_raw` step went on landing and moving its
    checkpoint after its run was SIGKILLed and marked failed, its DATA_DIR lock already free
    for the next run). Elsewhere (the run's own process, a sensor, a test) nothing is done."""
    noted = os.environ.get(RUN_PROCESS_VARIABLE, "")
    started_by = multiprocessing.parent_process()  # who started us, even if it died since
    if not noted.isdigit() or started_by is None or started_by.pid != int(noted):
        return
    die_with_parent()
    if os.getppid() != int(noted):  # the run's process died before prctl took hold (or
        os._exit(1)                 # while this process was still starting): do nothing
