"""Streams declared once, and the one incremental walk every stream goes through.

A `Stream` is data: its source, its name, the path it is read from, the field that is its id,
the field that is its cursor (updated_at / updateTime), how deletion is flagged, and its page
size. Paging belongs to the source client (`SourceClient.iter_window`: national keyset,
provincial opaque cursor); everything above it is shared and lives here:

* `Checkpoint`: the last (updated_at, id) landed, plus the ids landed at exactly that
  updated_at (`boundary_ids`). Timestamps have one-second resolution, so a row can be stamped
  with the same second as the last row landed after we read that second; a walk that restarts
  strictly after (updated_at, id) would miss it forever. So a walk restarts *inclusive* of the
  boundary second and drops only the rows it already landed there.
* `walk`: walks a stream from a checkpoint to the end, yielding pages of new rows with the
  checkpoint each page establishes. When a pass ends it makes one more inclusive pass from the
  new checkpoint, which catches rows re-stamped during the walk at the boundary second; it
  stops when a pass brings nothing new. A cursor expiry (provincial 40010) restarts a pass
  from the checkpoint of the last row yielded (= landed, since the consumer writes a page
  before asking for the next).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any, Iterator, Mapping, Protocol

from pipelines.clock import BEIJING
from pipelines.sources.http import ClientStats, CursorExpired, SourceError

log = logging.getLogger("pipelines.sources")

# Above this many rows stamped in one second we stop remembering them one by one: the
# national walk then restarts strictly after (updated_at, id) and the provincial one lands
# the boundary rows again (removed downstream by dedup).
MAX_BOUNDARY_IDS = 20_000


class Paging(Enum):
    """How a source pages through a listing."""

    KEYSET = "keyset"  # national: updated_since + after_id, the last row fed back in
    CURSOR = "cursor"  # provincial: an opaque next_cursor, from modified_after


@dataclass(frozen=True)
class Stream:
    """One listing endpoint of a source system, declared once."""

    source: str  # "national" / "provincial"
    name: str  # snake_case stream name, also the landing folder
    path: str  # path under the API base URL
    paging: Paging
    id_field: str
    cursor_field: str
    deleted_field: str
    page_size: int

    # Rows are what a source sent: anything at all. None means "not usable", never an error.

    def row_id(self, row: Any) -> str | None:
        """The row's id as text, None when the row has no usable one."""
        value = row.get(self.id_field) if isinstance(row, Mapping) else None
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            return None
        text = str(value).strip()
        return text if text and text.isprintable() and _encodable(text) else None

    def row_cursor(self, row: Any) -> str | None:
        """The row's change time as the source wrote it, None unless it is a plausible time
        (it then moves the checkpoint, so a garbage value must never pass)."""
        value = row.get(self.cursor_field) if isinstance(row, Mapping) else None
        return value if isinstance(value, str) and change_time(value) is not None else None

    def row_deleted(self, row: Any) -> bool:
        # national: 0/1; provincial: true/false; a missing flag means a live row
        flag = row.get(self.deleted_field) if isinstance(row, Mapping) else None
        return flag is True or flag == 1 or flag == "1" or flag == "true"

    def row_problem(self, row: Any) -> str | None:
        """What makes a row unusable as a whole, as `kind` or `kind:field` (staging turns it
        into a quarantine rule), or None."""
        if not isinstance(row, Mapping):
            return "not_an_object"
        if row.get(self.cursor_field) is None:
            return f"no_cursor:{self.cursor_field}"
        if self.row_cursor(row) is None:
            return f"bad_cursor:{self.cursor_field}"
        if self.row_id(row) is None:
            return f"no_id:{self.id_field}"
        return None


def declare_streams(
    source: str,
    paths: Mapping[str, str],
    *,
    paging: Paging,
    id_field: str,
    cursor_field: str,
    deleted_field: str,
    page_size: int,
) -> dict[str, Stream]:
    """The streams of one source by name: every listing of a source pages, keys and flags
    deletion the same way, so only the name and the path differ."""
    return {
        name: Stream(source, name, path, paging, id_field, cursor_field, deleted_field, page_size)
        for name, path in paths.items()
    }


# A change time outside these bounds is no change time (a year 0001, a clock a century
# ahead): letting it through would move the checkpoint where no row will ever be again.
EARLIEST_CHANGE = datetime(1990, 1, 1, tzinfo=BEIJING)
CLOCK_SKEW = timedelta(days=1)


def _encodable(text: str) -> bool:
    """Whether `text` is valid Unicode (an unpaired surrogate is not, and cannot be written)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def change_time(text: str) -> datetime | None:
    """A source's change time as an aware instant (national ISO with its offset; provincial
    Beijing time without one), or None when the text is no plausible time."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except (ValueError, TypeError, AttributeError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=BEIJING)
    if not EARLIEST_CHANGE <= moment <= datetime.now(timezone.utc) + CLOCK_SKEW:
        return None
    return moment


@dataclass(frozen=True)
class Checkpoint:
    """Where a stream's walk stands: the last row landed and its same-second companions."""

    updated_at: str
    id: str
    boundary_ids: frozenset[str] = field(default_factory=frozenset)

    @property
    def has_boundary(self) -> bool:
        """Whether every id landed at `updated_at` is known (so an inclusive restart is safe)."""
        return bool(self.boundary_ids)

    def describe(self) -> str:
        """Text for logs and errors: no personal data (a timestamp and a row id)."""
        return f"updated_at={self.updated_at}, id={self.id}"

    def to_json(self) -> dict[str, Any]:
        return {
            "updated_at": self.updated_at,
            "id": self.id,
            "boundary_ids": sorted(self.boundary_ids),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Checkpoint":
        return cls(
            updated_at=str(data["updated_at"]),
            id=str(data["id"]),
            boundary_ids=frozenset(str(i) for i in data.get("boundary_ids") or ()),
        )


@dataclass(frozen=True)
class Page:
    """New rows from one source page, and the checkpoint once they are landed."""

    rows: list[Any]  # as the source sent them: objects, or whatever stood in their place
    checkpoint: Checkpoint | None  # None: no row so far could place the walk


class SourceClient(Protocol):
    """What `walk` needs from a source client."""

    system: str
    stats: ClientStats

    def iter_window(self, stream: Stream, start: Checkpoint | None) -> Iterator[list[dict]]:
        """Yield the raw rows of each page from `start` to the end of the stream, in
        (updated_at, id) order. With a checkpoint that `has_boundary`, the window includes
        rows stamped exactly `start.updated_at`; without one it may start strictly after
        (updated_at, id). May raise `CursorExpired` or `SourceError`."""
        ...


def fresh_rows(stream: Stream, rows: list[dict], checkpoint: Checkpoint | None) -> list[dict]:
    """`rows` minus those already landed at the checkpoint's boundary second."""
    if checkpoint is None or not checkpoint.boundary_ids:
        return rows
    return [
        row
        for row in rows
        if not (
            stream.row_cursor(row) == checkpoint.updated_at
            and stream.row_id(row) in checkpoint.boundary_ids
        )
    ]


def usable_rows(stream: Stream, rows: list[Any]) -> list[dict]:
    """The rows that can place a walk: an object with a usable id and change time."""
    return [row for row in rows if stream.row_id(row) is not None and stream.row_cursor(row) is not None]


def advance(stream: Stream, checkpoint: Checkpoint | None, rows: list[Any]) -> Checkpoint | None:
    """The checkpoint after landing `rows` (in source order) on top of `checkpoint`: the last
    row with a usable id and change time, never earlier than `checkpoint`. A row without
    them is landed (and quarantined by staging) but moves nothing."""
    usable = usable_rows(stream, rows)
    if not usable:
        return checkpoint
    last = usable[-1]
    last_cursor, last_id = stream.row_cursor(last), stream.row_id(last)
    if checkpoint is not None and change_time(last_cursor) < change_time(checkpoint.updated_at):
        return checkpoint  # a row dated before where the walk stands moves nothing back
    same_second = set()
    for row in reversed(usable):  # rows come in cursor order: the last second is at the end
        if stream.row_cursor(row) != last_cursor:
            break
        same_second.add(stream.row_id(row))
    if checkpoint is not None and checkpoint.updated_at == last_cursor:
        if not checkpoint.has_boundary:
            # the second's set overflowed earlier: it stays unknown. A set begun again from
            # this page would look complete, and the next pass, starting inclusive at this
            # second, would land every earlier row of it again (a bulk update of 21,453 rows
            # in one second was landed 20 times at 1M persons).
            return Checkpoint(last_cursor, last_id)
        same_second |= checkpoint.boundary_ids
    if len(same_second) > MAX_BOUNDARY_IDS:
        same_second = set()
    return Checkpoint(last_cursor, last_id, frozenset(same_second))


def count_progress(stream: Stream, rows: list[Any], pass_start: Checkpoint | None) -> int:
    """How many of `rows` are news to this pass (decides whether another pass is needed).

    Without a boundary set (too many rows in one second) an inclusive source hands the
    boundary rows back on every pass; they must not count, or the walk would never end. Nor
    do rows without a usable change time: the source hands them back on every pass too.
    """
    usable = usable_rows(stream, rows)
    if pass_start is None or pass_start.boundary_ids:
        return len(usable)
    return sum(1 for row in usable if stream.row_cursor(row) != pass_start.updated_at)


def walk(
    client: SourceClient,
    stream: Stream,
    start: Checkpoint | None,
    *,
    max_passes: int = 20,
    max_restarts_without_progress: int = 10,
) -> Iterator[Page]:
    """Yield pages of rows not landed before, from `start` (None: the beginning) to the end.

    The consumer must land a page durably before asking for the next one: a restart after a
    cursor expiry begins at the checkpoint of the last page yielded.
    """
    checkpoint = start
    passes = 0
    restarts_in_a_row = 0
    while True:
        new_in_pass = 0
        pass_start = checkpoint
        try:
            for raw_rows in client.iter_window(stream, checkpoint):
                rows = fresh_rows(stream, raw_rows, checkpoint)
                if not rows:
                    continue
                checkpoint = advance(stream, checkpoint, rows)
                new_in_pass += count_progress(stream, rows, pass_start)
                restarts_in_a_row = 0
                yield Page(rows=rows, checkpoint=checkpoint)
        except SourceError as failure:
            # name the last row actually landed, which is where a rerun will start
            raise type(failure)(
                failure.system,
                failure.endpoint,
                failure.reason,
                checkpoint.describe() if checkpoint else None,
            ) from None
        except CursorExpired:
            client.stats.restarts += 1
            restarts_in_a_row += 1
            if restarts_in_a_row > max_restarts_without_progress:
                raise SourceError(
                    client.system,
                    stream.path,
                    f"paging cursor expired {restarts_in_a_row} times without progress",
                    checkpoint.describe() if checkpoint else None,
                ) from None
            log.warning(
                "%s %s: cursor expired; walking again from %s",
                client.system,
                stream.path,
                checkpoint.describe() if checkpoint else "the beginning",
            )
            continue
        passes += 1
        if new_in_pass == 0:
            return
        if passes >= max_passes:
            # rows keep being re-stamped faster than we read them; the checkpoint is sound,
            # so the next sync carries on from here
            log.warning(
                "%s %s: still changing after %d passes; stopping at %s",
                client.system,
                stream.path,
                passes,
                checkpoint.describe() if checkpoint else "the beginning",
            )
            return
