"""A source that failed for good, remembered for the rest of the run, so that its other
streams fail at once instead of each repeating the failure.

When a source refuses our credentials or signature (`AuthenticationError`), or cannot be
reached at all (`SourceUnreachable`: every attempt of a request refused, unreachable, DNS,
timed out), its other streams in the same run would fail the same way, each after its own
minute of attempts and Dagster's step retries, each with its own traceback: 40 minutes
before a full outage failed `sync_all`. So the first stream to fail so leaves a note,
`DATA_DIR/state/source_outages/<run id>/<source>.json`, and the source's other streams in
that run fail at once with one line that says so and why (`SourceSkipped`).

Why a file: `sync_all` runs its steps in one process, `pull_raw` in a process each; what
every step of a run shares is DATA_DIR (the run holds its lock). Why keyed by run id: a
later run, a re-execution included (it has its own id), tries every stream again.

The stream that left the note is not stopped by it: Dagster's retry of that step tries the
server again, and when it lands the note is removed, so the source's streams that have not
run yet go ahead. A stream skipped is not retried in the run (nothing could change for it
before the note goes); it lands with the next run, from its checkpoint.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipelines.files import private_dir, write_text
from pipelines.logging_privacy import scrub
from pipelines.sources.http import AuthenticationError, SourceError, SourceUnreachable
from pipelines.sources.streams import Stream

# Notes of runs that ended long ago are removed when a new one is written.
KEEP_NOTES_SECONDS = 7 * 24 * 3600.0

UNREACHABLE = "unreachable"
# How a skipped stream's message ends (the alert lists such streams on one line of their own)
SKIPPED_AFTER_OUTAGE = ": not tried again in this run"
REFUSED = "refused"


@dataclass(frozen=True)
class Outage:
    """What the first stream of a source to fail for good in a run says about it."""

    source: str
    stream: str  # the stream that failed (and may try again)
    kind: str  # UNREACHABLE or REFUSED
    endpoint: str
    reason: str  # the error's reason, scrubbed: what happened and what to check

    def skip_message(self) -> str:
        """The one line a skipped stream fails with."""
        what = "unreachable" if self.kind == UNREACHABLE else "refused our credentials"
        return (
            f"{self.source} source {what} earlier in this run (stream {self.stream}, "
            f"{self.endpoint}: {self.reason}){SKIPPED_AFTER_OUTAGE}"
        )


class SourceSkipped(Exception):
    """A stream not tried because its source failed for good earlier in the run."""

    def __init__(self, outage: Outage):
        self.outage = outage
        super().__init__(outage.skip_message())


def outage_dir(data_dir: Any, run_id: str) -> Path:
    return Path(data_dir) / "state" / "source_outages" / run_id


def outage_path(data_dir: Any, run_id: str, source: str) -> Path:
    return outage_dir(data_dir, run_id) / f"{source}.json"


def outage_of(failure: SourceError, stream: Stream) -> Outage | None:
    """The note a failure leaves, or None when the source's other streams may fare better
    (a 503, a body over the limit, a deadline: something about this stream or this moment)."""
    if isinstance(failure, AuthenticationError):
        kind = REFUSED
    elif isinstance(failure, SourceUnreachable):
        kind = UNREACHABLE
    else:
        return None
    return Outage(stream.source, stream.name, kind, failure.endpoint, scrub(failure.reason))


def read_outage(data_dir: Any, run_id: str, source: str) -> Outage | None:
    """The note left for `source` in run `run_id`, or None."""
    path = outage_path(data_dir, run_id, source)
    try:
        return Outage(**json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):  # a note half-written by a killed step means nothing
        return None


def record_outage(data_dir: Any, run_id: str, outage: Outage) -> None:
    """Leave the note (and remove the notes of runs long gone)."""
    _remove_old_notes(Path(data_dir) / "state" / "source_outages", keep=run_id)
    folder = private_dir(outage_dir(data_dir, run_id))
    write_text(folder / f"{outage.source}.json", json.dumps(asdict(outage), ensure_ascii=False))


def clear_outage(data_dir: Any, run_id: str, source: str) -> None:
    outage_path(data_dir, run_id, source).unlink(missing_ok=True)


def _remove_old_notes(root: Path, keep: str) -> None:
    if not root.is_dir():
        return
    cutoff = time.time() - KEEP_NOTES_SECONDS
    for folder in root.iterdir():
        if folder.name != keep and folder.is_dir() and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def outages_remembered(data_dir: Any, run_id: str, stream: Stream) -> Iterator[None]:
    """Land `stream` inside this, unless its source failed for good earlier in run `run_id`
    (then `SourceSkipped`, at once). A failure for good is noted for the source's other
    streams; the stream that noted it, landing at last, removes the note."""
    earlier = read_outage(data_dir, run_id, stream.source)
    if earlier is not None and earlier.stream != stream.name:
        raise SourceSkipped(earlier)
    try:
        yield
    except SourceError as failure:
        outage = outage_of(failure, stream)
        if outage is not None:
            record_outage(data_dir, run_id, outage)
        raise
    if earlier is not None:
        clear_outage(data_dir, run_id, stream.source)
