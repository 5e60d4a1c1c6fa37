"""Streams declared once, and the one incremental walk every stream goes through.

A `Stream` is data: its source, its name, the path it is read from, the field that is its id,
the field that is its cursor (updated_at / updateTime), how deletion is flagged, and its page
size. Paging belongs to the source client (`SourceClient.iter_window`: national keyset,
provincial opaque cursor); everything above it is shared and lives here:

* `Checkpoint`: the last (updated_at, id) landed, plus the ids landed at exactly that
  updated_at (`boundary_ids`) and a fingerprint of the version of each landed
  (`boundary_versions`). Timestamps have one-second resolution, so a row can be stamped
  with the same second as the last row landed after we read that second; a walk that restarts
  strictly after (updated_at, id) would miss it forever. So a walk restarts *inclusive* of the
  boundary second and drops only the rows it already landed there, as they were landed: a row
  changed again within that second keeps its change time, and only its content tells the new
  version from the landed one.
* `walk`: walks a stream from a checkpoint to the end, yielding pages of new rows with the
  checkpoint each page establishes. When a pass ends it makes one more inclusive pass from the
  new checkpoint, which catches rows re-stamped during the walk at the boundary second; it
  stops when a pass brings nothing new. A cursor expiry (provincial 40010) restarts a pass
  from the checkpoint of the last row yielded (= landed, since the consumer writes a page
  before asking for the next).
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any, NamedTuple, Protocol

import orjson

from pipelines.clock import BEIJING
from pipelines.normalize import without_invisible
from pipelines.sources.http import ClientStats, CursorExpired, SourceError, record_text

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
    # the contract's ids are integers (provincial `id`): 4.0 and "4.0" are the row 4
    integer_ids: bool = False

    # Rows are what a source sent: anything at all. None means "not usable", never an error.

    def row_facts(self, row: Any, latest: datetime | None = None) -> "RowFacts":
        """Everything the walk and the landing read from a row, parsed once: its id, change
        time, deletion flag and problem. `latest`: the newest plausible change time (now +
        skew; computed once per page by the caller)."""
        if type(row) is not dict and not isinstance(row, Mapping):
            return RowFacts(None, None, False, "not_an_object")
        row_id, id_problem = _read_id(row.get(self.id_field), self.integer_ids)
        value = row.get(self.cursor_field)
        plausible = isinstance(value, str) and is_change_time(value, latest or latest_change_time())
        cursor = value if plausible else None
        deleted = flags_a_deletion(row.get(self.deleted_field))
        if value is None:
            problem = f"no_cursor:{self.cursor_field}"
        elif cursor is None:
            problem = f"bad_cursor:{self.cursor_field}"
        elif row_id is None:
            problem = f"{id_problem}:{self.id_field}"
        else:
            problem = None
        return RowFacts(row_id, cursor, deleted, problem)

    def page_facts(self, rows: list[Any]) -> list["RowFacts"]:
        """`row_facts` of every row of a page, with one clock reading for the page."""
        latest = latest_change_time()
        return [self.row_facts(row, latest) for row in rows]

    def row_id(self, row: Any) -> str | None:
        """The row's id as text, None when the row has no usable one."""
        return _read_id(row.get(self.id_field), self.integer_ids)[0] if isinstance(row, Mapping) else None

    def row_cursor(self, row: Any) -> str | None:
        """The row's change time as the source wrote it, None unless it is a plausible time
        (it then moves the checkpoint, so a garbage value must never pass)."""
        return self.row_facts(row).cursor

    def row_deleted(self, row: Any) -> bool:
        return self.row_facts(row).deleted

    def row_problem(self, row: Any) -> str | None:
        """What makes a row unusable as a whole, as `kind` or `kind:field` (staging turns it
        into a quarantine rule), or None."""
        return self.row_facts(row).problem


# A deletion flag written as text, as an export or another serializer writes true or 1 (any
# case, spaces, a full-width digit, 1.0, 是): read as deleted, else a deleted record's hours
# counted as a live one's. Anything else is a live row.
DELETED_TEXTS = frozenset({"1", "1.0", "true", "t", "yes", "y", "是"})
_FULL_WIDTH_ONE = str.maketrans("１", "1")


def flags_a_deletion(flag: Any) -> bool:
    """Whether a row's deletion flag says deleted (national 0/1, provincial true/false; a
    missing flag means a live row)."""
    if flag is True or flag is False or flag is None:
        return flag is True
    if isinstance(flag, str):
        return flag.strip().translate(_FULL_WIDTH_ONE).lower() in DELETED_TEXTS
    return isinstance(flag, (int, float)) and flag == 1


class RowFacts(NamedTuple):
    """What one row says about itself, parsed once (`Stream.row_facts`). A named tuple: a walk
    makes one per row, and a tuple is made several times faster than a frozen dataclass."""

    id: str | None  # None: no usable id
    cursor: str | None  # the change time as written; None unless plausible
    deleted: bool
    problem: str | None  # what makes the row unusable as a whole, or None

    @property
    def moment(self) -> datetime | None:
        """The change time as an aware instant (made when asked: the walk needs it for the
        last row of a page only)."""
        return None if self.cursor is None else _instant(self.cursor)

    @property
    def usable(self) -> bool:
        """Whether the row can place a walk (a usable id and change time)."""
        return self.id is not None and self.cursor is not None


# Whole numbers a float is exact for (JSON numbers are read as doubles by most serializers).
EXACT_INTEGERS = 2**53
# An integer written as a decimal ("4.0", "4.00"), where the contract's ids are integers; and
# any decimal, for telling "4.5" (a number, not whole) from text ids of other shapes.
# (The patterns are staging's too: pipelines/staging/extract.py reads keys the same way.)
WHOLE_DECIMAL_PATTERN = r"([0-9]+)\.0*"
DECIMAL_PATTERN = r"[+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_WHOLE_DECIMAL = re.compile(WHOLE_DECIMAL_PATTERN)
_DECIMAL = re.compile(DECIMAL_PATTERN)


def _read_id(value: Any, integer_ids: bool = False) -> tuple[str | None, str]:
    """A row's id as text, or None and why: `no_id` (none there: absent, null, blank, not a
    scalar) or `not_whole_id` (a number with a fraction, or one too large for a float to hold
    exactly). A float that is a whole number (4.0: an integer a serializer wrote as a float)
    is that integer, as an integer is; where the contract's ids are integers, so is the text
    "4.0". Text is otherwise kept as sent, strip aside and the invisible characters a paste
    carries (`normalize.without_invisible`: "4" + U+200B is the row 4, as staging reads it)."""
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < EXACT_INTEGERS:
            return str(int(value)), ""
        return None, "not_whole_id"
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None, "no_id"
    text = without_invisible(str(value)).strip()
    if integer_ids and isinstance(value, str):
        whole = _WHOLE_DECIMAL.fullmatch(text)
        if whole is not None:
            text = whole.group(1)
        elif _DECIMAL.fullmatch(text):
            return None, "not_whole_id"
    return (text, "") if text and text.isprintable() and _encodable(text) else (None, "no_id")


def declare_streams(
    source: str,
    paths: Mapping[str, str],
    *,
    paging: Paging,
    id_field: str,
    cursor_field: str,
    deleted_field: str,
    page_size: int,
    integer_ids: bool = False,
) -> dict[str, Stream]:
    """The streams of one source by name: every listing of a source pages, keys and flags
    deletion the same way, so only the name and the path differ."""
    return {
        name: Stream(source, name, path, paging, id_field, cursor_field, deleted_field, page_size, integer_ids)
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


def latest_change_time() -> datetime:
    """The newest plausible change time: now, plus the clock skew a source may have."""
    return datetime.now(timezone.utc) + CLOCK_SKEW


# The change times a row may carry, one definition for the landing (here) and for staging's
# SQL (`landing.updated_at_utc_sql`), which read a text by the same groups: ISO 8601 in its
# extended (2026-06-01T10:00:00) or basic (20260601T100000) form, a space or T before the
# time, the time to the hour, minute or second with a fraction after `.` or `,`, an offset
# (Z, +08, +0800, +08:00) or none (Beijing time). Python's `fromisoformat` alone read forms
# DuckDB's cast does not (the basic form moved the checkpoint while staging quarantined its
# row), and DuckDB's read forms no source writes (2026/6/1, 24:00). Written for Python's re and
# RE2 alike (explicit classes, numbered groups).
CHANGE_TIME_PATTERN = (
    r"([0-9]{4})-?([0-9]{2})-?([0-9]{2})"
    r"(?:(?:T| +)([01][0-9]|2[0-3])(?::?([0-5][0-9])(?::?([0-5][0-9])(?:[.,]([0-9]+))?)?)?)?"
    r" *(?:([Zz])|([+-])([01][0-9]|2[0-3])(?::?([0-5][0-9]))?)?"
)
CHANGE_TIME_GROUPS = ("year", "month", "day", "hour", "minute", "second", "fraction", "zulu", "sign",
                      "offset_hours", "offset_minutes")
_CHANGE_TIME = re.compile(CHANGE_TIME_PATTERN)


def canonical_change_time(text: str) -> str | None:
    """A change time as `fromisoformat` and DuckDB both read it (`yyyy-MM-ddTHH:mm:ss[.ffffff]`
    and `+HH:MM` where an offset is written), or None when the text is none of
    CHANGE_TIME_PATTERN's forms. The day itself is not checked here (2026-02-30 reads as no
    time in both)."""
    match = _CHANGE_TIME.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zulu, sign, offset_hours, offset_minutes = match.groups()
    canonical = f"{year}-{month}-{day}T{hour or '00'}:{minute or '00'}:{second or '00'}"
    if fraction:
        canonical += "." + fraction[:6].ljust(6, "0")
    if zulu:
        canonical += "+00:00"
    elif sign:
        canonical += f"{sign}{offset_hours}:{offset_minutes or '00'}"
    return canonical


def _parsed(text: str) -> datetime | None:
    """Change-time text as written (aware when it carries an offset), or None."""
    canonical = canonical_change_time(text)
    if canonical is None:
        return None
    try:
        return datetime.fromisoformat(canonical)
    except ValueError:  # no such day (2026-02-30)
        return None


def _instant(text: str) -> datetime | None:
    """Change-time text as an aware instant (national ISO with its offset; provincial Beijing
    time without one), or None when it is no time at all."""
    moment = _parsed(text)
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=BEIJING)


def change_time(text: str, latest: datetime | None = None) -> datetime | None:
    """A source's change time as an aware instant, or None when the text is no plausible time
    (before 1990, or after `latest`, by default now + skew)."""
    moment = _instant(text)
    if moment is None or not EARLIEST_CHANGE <= moment <= (latest or latest_change_time()):
        return None
    return moment


# No UTC offset moves an instant by a day, so a change time whose own date lies two days
# inside the bounds is inside them whatever its offset.
_SURELY_AFTER_EARLIEST = EARLIEST_CHANGE.toordinal() + 2


def is_change_time(text: str, latest: datetime) -> bool:
    """Whether `change_time(text, latest)` is a time. Most rows' dates decide it alone:
    comparing instants across offsets (and attaching Beijing's to provincial text) cost more
    than the rest of a row's facts together, so only dates near a bound pay for it."""
    moment = _parsed(text)
    if moment is None:
        return False
    if _SURELY_AFTER_EARLIEST <= moment.toordinal() <= latest.toordinal() - 2:
        return True
    return change_time(text, latest) is not None


def row_version(row: Any) -> str:
    """A short fingerprint of a row's content, whatever the order of its keys: what tells a
    row changed again within the second its landed version carries from that version (both
    have the same change time)."""
    try:
        content = orjson.dumps(row, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError):  # text that is not valid Unicode, a huge int
        content = record_text(row)[0].encode("utf-8")
    return hashlib.blake2b(content, digest_size=8).hexdigest()


@dataclass(frozen=True)
class Checkpoint:
    """Where a stream's walk stands: the last row landed and its same-second companions."""

    updated_at: str
    id: str
    boundary_ids: frozenset[str] = field(default_factory=frozenset)
    # id -> `row_version` of the version landed at `updated_at`. An id without one (a state
    # written before versions were kept) counts as landed whatever its content, as it did.
    # Not part of where the walk stands: two checkpoints at one row and second are equal.
    boundary_versions: Mapping[str, str] = field(default_factory=dict, compare=False)

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
            "boundary_versions": dict(sorted(self.boundary_versions.items())),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Checkpoint":
        return cls(
            updated_at=str(data["updated_at"]),
            id=str(data["id"]),
            boundary_ids=frozenset(str(i) for i in data.get("boundary_ids") or ()),
            boundary_versions={
                str(i): str(v) for i, v in (data.get("boundary_versions") or {}).items()
            },
        )


@dataclass(frozen=True)
class Page:
    """New rows from one source page, and the checkpoint once they are landed."""

    rows: list[Any]  # as the source sent them: objects, or whatever stood in their place
    checkpoint: Checkpoint | None  # None: no row so far could place the walk
    facts: list[RowFacts] | None = None  # per row, as the walk parsed it (None: not parsed)


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
    """`rows` minus those already landed, as they are, at the checkpoint's boundary second."""
    return [row for row, _ in _fresh(list(zip(rows, stream.page_facts(rows))), checkpoint)]


def usable_rows(stream: Stream, rows: list[Any]) -> list[dict]:
    """The rows that can place a walk: an object with a usable id and change time."""
    return [row for row, facts in zip(rows, stream.page_facts(rows)) if facts.usable]


def last_usable(stream: Stream, rows: list[Any]) -> Any | None:
    """The last row that can place a walk (what a keyset client pages on), or None; reads
    from the end, so a page is not parsed whole for it."""
    latest = latest_change_time()
    return next((row for row in reversed(rows) if stream.row_facts(row, latest).usable), None)


def advance(stream: Stream, checkpoint: Checkpoint | None, rows: list[Any]) -> Checkpoint | None:
    """The checkpoint after landing `rows` (in source order) on top of `checkpoint`: the last
    row with a usable id and change time, never earlier than `checkpoint`. A row without
    them is landed (and quarantined by staging) but moves nothing."""
    return _advance(checkpoint, stream.page_facts(rows), rows)


def count_progress(stream: Stream, rows: list[Any], pass_start: Checkpoint | None) -> int:
    """How many of `rows` are news to this pass (decides whether another pass is needed).

    Without a boundary set (too many rows in one second) an inclusive source hands the
    boundary rows back on every pass; they must not count, or the walk would never end. Nor
    do rows without a usable change time: the source hands them back on every pass too.
    """
    return _count_progress(stream.page_facts(rows), pass_start)


# The same, over rows parsed once per page (`Stream.page_facts`): the walk's own path.


def _fresh(rows: list[tuple[Any, RowFacts]], checkpoint: Checkpoint | None) -> list[tuple[Any, RowFacts]]:
    if checkpoint is None or not checkpoint.boundary_ids:
        return rows
    boundary, ids = checkpoint.updated_at, checkpoint.boundary_ids
    return [
        (row, facts)
        for row, facts in rows
        if not (facts.cursor == boundary and facts.id in ids and _landed_as_is(row, facts.id, checkpoint))
    ]


def _landed_as_is(row: Any, row_id: str, checkpoint: Checkpoint) -> bool:
    """Whether `row`, stamped with the checkpoint's second, is the version landed there."""
    landed = checkpoint.boundary_versions.get(row_id)
    return landed is None or landed == row_version(row)


def _advance(checkpoint: Checkpoint | None, facts: list[RowFacts], rows: list[Any]) -> Checkpoint | None:
    usable = [(f, row) for f, row in zip(facts, rows) if f.usable]
    if not usable:
        return checkpoint
    last = usable[-1][0]
    if checkpoint is not None and last.moment < change_time(checkpoint.updated_at):
        return checkpoint  # a row dated before where the walk stands moves nothing back
    versions: dict[str, str] = {}
    # rows come in cursor order: the last second is at the end (a row given twice: its last)
    for row_facts, row in reversed(usable):
        if row_facts.cursor != last.cursor:
            break
        versions.setdefault(row_facts.id, row_version(row))
    same_second = set(versions)
    if checkpoint is not None and checkpoint.updated_at == last.cursor:
        if not checkpoint.has_boundary:
            # the second's set overflowed earlier: it stays unknown. A set begun again from
            # this page would look complete, and the next pass, starting inclusive at this
            # second, would land every earlier row of it again (a bulk update of 21,453 rows
            # in one second was landed 20 times at 1M persons).
            return Checkpoint(last.cursor, last.id)
        same_second |= checkpoint.boundary_ids
        versions = {**checkpoint.boundary_versions, **versions}
    if len(same_second) > MAX_BOUNDARY_IDS:
        return Checkpoint(last.cursor, last.id)
    return Checkpoint(last.cursor, last.id, frozenset(same_second), versions)


def _count_progress(facts: list[RowFacts], pass_start: Checkpoint | None) -> int:
    usable = [f for f in facts if f.usable]
    if pass_start is None or pass_start.boundary_ids:
        return len(usable)
    return sum(1 for f in usable if f.cursor != pass_start.updated_at)


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
                # each row parsed once: the window, checkpoint, progress and landing share it
                fresh = _fresh(list(zip(raw_rows, stream.page_facts(raw_rows))), checkpoint)
                if not fresh:
                    continue
                facts = [f for _, f in fresh]
                checkpoint = _advance(checkpoint, facts, [row for row, _ in fresh])
                new_in_pass += _count_progress(facts, pass_start)
                restarts_in_a_row = 0
                yield Page(rows=[row for row, _ in fresh], checkpoint=checkpoint, facts=facts)
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
