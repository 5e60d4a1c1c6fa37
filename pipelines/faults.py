"""Named kill points: where a test (or an operator rehearsing a disaster) makes a sync die.

A sync must survive being killed anywhere: inside a page write, between landing and the
checkpoint, mid-staging, mid-resolution, mid-publish. To prove it, the code calls
`crash_point("<name>")` at the places that matter; with `PIPELINE_CRASH_AT` set to a
pattern (fnmatch) that matches the name, the process sends itself SIGKILL there — no
`finally`, no `atexit`, no flush: exactly what the kernel's OOM killer or a power cut does.
Unset (always, in production), a call is one dictionary look-up.

    PIPELINE_CRASH_AT='landing.page_written:national/volunteers'      the first time it is reached
    PIPELINE_CRASH_AT='file.before_rename:raw/*/page-000002.parquet#2' the second time, in this process

The points are listed in docs/RELIABILITY.md and driven by tests/crash/ and bench/crash.py.
This is a test hook, not a setting of the pipeline: it is read here, once per process, and
nowhere documented as configuration.
"""

from __future__ import annotations

import fnmatch
import os
import signal
import threading

CRASH_VARIABLE = "PIPELINE_CRASH_AT"

_hits = 0
_lock = threading.Lock()


def _target() -> tuple[str, int] | None:
    spec = os.environ.get(CRASH_VARIABLE, "")
    if not spec:
        return None
    pattern, _, nth = spec.partition("#")
    return pattern, int(nth or 1)


def crash_point(name: str) -> None:
    """Die here (SIGKILL) when PIPELINE_CRASH_AT names this point; otherwise nothing."""
    target = _target()
    if target is None:
        return
    pattern, nth = target
    if not fnmatch.fnmatchcase(name, pattern):
        return
    global _hits
    with _lock:
        _hits += 1
        if _hits < nth:
            return
    os.kill(os.getpid(), signal.SIGKILL)
