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
from enum import Enum
from typing import Any, Iterator, Mapping, Protocol

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

    def row_id(self, row: Mapping[str, Any]) -> str:
        return str(row[self.id_field])

    def row_cursor(self, row: Mapping[str, Any]) -> str:
        return str(row[self.cursor_field])

    def row_deleted(self, row: Mapping[str, Any]) -> bool:
        # national: 0/1; provincial: true/false; a missing flag means a live row
        flag = row.get(self.deleted_field)
        return flag is True or flag == 1 or flag == "1" or flag == "true"


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

    rows: list[dict[str, Any]]
    checkpoint: Checkpoint


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


def advance(stream: Stream, checkpoint: Checkpoint | None, rows: list[dict]) -> Checkpoint:
    """The checkpoint after landing `rows` (non-empty, in source order) on top of `checkpoint`."""
    last = rows[-1]
    last_cursor, last_id = stream.row_cursor(last), stream.row_id(last)
    same_second = set()
    for row in reversed(rows):  # rows come in cursor order: the last second is at the end
        if stream.row_cursor(row) != last_cursor:
            break
        same_second.add(stream.row_id(row))
    if checkpoint is not None and checkpoint.updated_at == last_cursor:
        same_second |= checkpoint.boundary_ids
    if len(same_second) > MAX_BOUNDARY_IDS:
        same_second = set()
    return Checkpoint(last_cursor, last_id, frozenset(same_second))


def count_progress(stream: Stream, rows: list[dict], pass_start: Checkpoint | None) -> int:
    """How many of `rows` are news to this pass (decides whether another pass is needed).

    Without a boundary set (too many rows in one second) an inclusive source hands the
    boundary rows back on every pass; they must not count, or the walk would never end.
    """
    if pass_start is None or pass_start.boundary_ids:
        return len(rows)
    return sum(1 for row in rows if stream.row_cursor(row) != pass_start.updated_at)


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
