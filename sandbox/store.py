"""Read side of a world's SQLite files, as the two sandbox servers serve them.

Every table of a world (see sandbox/README.md) has `id`, `updated_at`, `region`, `body` and
an index on (updated_at, id). A page is one index range scan on that index, never a sort or
a full scan, so a 1M-person world pages as fast as a small one.

National pages also report `total` = rows after the key. Counting the whole remaining range
per page would make a walk quadratic (and the region filter needs the table, not just the
index: ~1.3 s per count at 300k rows), so `KeyHistogram` keeps the key of every
`BUCKET_ROWS`-th index entry: a count is one short scan (to the next bucket boundary) plus
a sum of bucket counts. Changes the servers make themselves ("rows updated during the walk")
adjust the buckets in place; changes made by anyone else (a change set applied while
serving) are seen through `PRAGMA data_version` and throw the buckets away.

Threads: one reader connection per serving thread; one maintenance connection (under a
lock) for the histograms and the server's own writes, so `data_version` on it moves only
for other writers.
"""

from __future__ import annotations

import bisect
import re
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Sequence

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

# Rows per histogram bucket: a count scans at most this many index entries.
BUCKET_ROWS = 256

# The lowest possible id for each id kind, so "updated_at >= since" is the key
# (since, LOWEST) with a strict ">" (SQLite orders every INTEGER before every TEXT).
LOWEST_TEXT_ID = ""
LOWEST_INT_ID = -(2**63)

Key = tuple  # (updated_at text, id)


@dataclass(frozen=True)
class StoreLayout:
    """How one source's tables look: id kind, timestamp text format, body time field."""

    tables: tuple[str, ...]
    integer_ids: bool
    time_format: str  # strftime pattern of updated_at (Beijing time)
    body_time_field: str  # the body's copy of updated_at, kept in sync on writes

    @property
    def lowest_id(self):
        return LOWEST_INT_ID if self.integer_ids else LOWEST_TEXT_ID

    def format_time(self, moment: datetime) -> str:
        return moment.astimezone(BEIJING).strftime(self.time_format)

    def parse_time(self, text: str) -> datetime:
        return datetime.strptime(text, self.time_format).replace(tzinfo=BEIJING)


# The one list of each source's tables: the generator writes them (sandbox/world_db.py).
NATIONAL_LAYOUT = StoreLayout(
    tables=("volunteers", "teams", "projects", "service_records", "evaluations"),
    integer_ids=False,
    time_format="%Y-%m-%dT%H:%M:%S+08:00",
    body_time_field="updated_at",
)
PROVINCIAL_LAYOUT = StoreLayout(
    tables=("teams", "volunteers", "activities", "service_logs", "stations", "redemptions"),
    integer_ids=True,
    time_format="%Y-%m-%d %H:%M:%S",
    body_time_field="updateTime",
)


def restamp_body(body: str | bytes, field: str, stamp: str) -> str | bytes:
    """The body with its first `"field":"…"` set to `stamp`, as text or as the bytes it is.

    A textual substitution, not a JSON edit: it works on the hostile rows' bodies that no
    JSON parser accepts (stored as bytes, sandbox/hostile.py) and leaves a body whose stamp
    is missing, null or not a string as it is.
    """
    old, new = f'"{field}":"[^"]*"', f'"{field}":"{stamp}"'
    if isinstance(body, bytes):
        return re.sub(old.encode(), new.encode(), body, count=1)
    return re.sub(old, new, body, count=1)


def region_pattern(region_prefix: str | None) -> str:
    """GLOB pattern for a region prefix (digits only, checked by the caller)."""
    return "*" if not region_prefix else f"{region_prefix}*"


@dataclass
class KeyHistogram:
    """Bucket boundaries over the (updated_at, id) order of one table and region filter.

    counts[i] holds the rows with boundaries[i-1] < key <= boundaries[i]; the last entry,
    counts[len(boundaries)], the rows after the last boundary.
    """

    boundaries: list[Key] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    outside_rows: int = 0  # rows the region filter leaves out (0: the filter is a no-op)

    def bucket_of(self, key: Key) -> int:
        return bisect.bisect_left(self.boundaries, key)

    def move(self, old_key: Key | None, new_key: Key | None) -> None:
        if old_key is not None:
            self.counts[self.bucket_of(old_key)] -= 1
        if new_key is not None:
            self.counts[self.bucket_of(new_key)] += 1


class WorldStore:
    """One source's SQLite file: pages, counts after a key, and the server's own writes."""

    def __init__(self, db_path: Path, layout: StoreLayout) -> None:
        self.db_path = Path(db_path)
        if not self.db_path.exists():
            raise FileNotFoundError(f"no world database at {self.db_path}")
        self.layout = layout
        self._local = threading.local()
        self._maintenance = self._connect(read_only=False, any_thread=True)
        self._maintenance_lock = threading.Lock()
        self._data_version = self._read_data_version()
        self._histograms: dict[tuple[str, str], KeyHistogram] = {}
        missing = set(layout.tables) - self._existing_tables()
        if missing:
            raise ValueError(f"{self.db_path.name} lacks tables {sorted(missing)}")

    # -- connections -------------------------------------------------------------------

    def _connect(self, read_only: bool, any_thread: bool = False) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.db_path, timeout=10.0, isolation_level=None, check_same_thread=not any_thread
        )
        connection.execute("PRAGMA busy_timeout = 10000")
        if read_only:
            connection.execute("PRAGMA query_only = 1")
        return connection

    def reader(self) -> sqlite3.Connection:
        """This thread's read connection (autocommit: each query sees the latest commit)."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect(read_only=True)
            self._local.connection = connection
        return connection

    def release_reader(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def close(self) -> None:
        self.release_reader()
        with self._maintenance_lock:
            self._maintenance.close()

    def _existing_tables(self) -> set[str]:
        with self._maintenance_lock:
            rows = self._maintenance.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            ).fetchall()
        return {name for (name,) in rows}

    def _read_data_version(self) -> int:
        return self._maintenance.execute("PRAGMA data_version").fetchone()[0]

    # -- reading -----------------------------------------------------------------------

    def lowest_key(self, since: str | None = None) -> Key:
        """The key just before every row updated at or after `since` (or before all rows)."""
        return (since or "", self.layout.lowest_id)

    def page(
        self,
        table: str,
        after_key: Key,
        limit: int,
        offset: int = 0,
        region_prefix: str | None = None,
    ) -> list[tuple]:
        """Rows (id, updated_at, body as UTF-8 bytes) with (updated_at, id) > after_key.

        Bodies come as bytes (CAST AS BLOB): they go to the socket as they are, without a
        decode to str and an encode back (a quarter of the page's cost).
        """
        self._check_table(table)
        sql = (
            f"SELECT id, updated_at, CAST(body AS BLOB) FROM {table} "
            "WHERE (updated_at, id) > (?, ?)"
            + (" AND region GLOB ?" if region_prefix else "")
            + " ORDER BY updated_at, id LIMIT ? OFFSET ?"
        )
        params: list = [after_key[0], after_key[1]]
        if region_prefix:
            params.append(region_pattern(region_prefix))
        params += [limit, offset]
        return self.reader().execute(sql, params).fetchall()

    def count_after(self, table: str, after_key: Key, region_prefix: str | None = None) -> int:
        """Rows with (updated_at, id) > after_key (and the region prefix), exactly."""
        self._check_table(table)
        histogram = self._histogram(table, region_prefix)
        bucket = histogram.bucket_of(after_key)
        upper = histogram.boundaries[bucket] if bucket < len(histogram.boundaries) else None
        # With no row outside the prefix the count needs the index alone, not the table.
        filter_prefix = region_prefix if histogram.outside_rows else None
        partial = self._count_between(table, after_key, upper, filter_prefix)
        return partial + sum(histogram.counts[bucket + 1 :])

    def _count_between(
        self, table: str, lower: Key, upper: Key | None, region_prefix: str | None
    ) -> int:
        sql = f"SELECT count(*) FROM {table} WHERE (updated_at, id) > (?, ?)"
        params: list = [lower[0], lower[1]]
        if upper is not None:
            sql += " AND (updated_at, id) <= (?, ?)"
            params += [upper[0], upper[1]]
        if region_prefix:
            sql += " AND region GLOB ?"
            params.append(region_pattern(region_prefix))
        return self.reader().execute(sql, params).fetchone()[0]

    def _histogram(self, table: str, region_prefix: str | None) -> KeyHistogram:
        with self._maintenance_lock:
            self._forget_if_changed_elsewhere()
            cache_key = (table, region_prefix or "")
            histogram = self._histograms.get(cache_key)
            if histogram is None:
                histogram = self._build_histogram(table, region_prefix)
                self._histograms[cache_key] = histogram
            return histogram

    def _build_histogram(self, table: str, region_prefix: str | None) -> KeyHistogram:
        """Boundaries every BUCKET_ROWS index entries, then the region filter's exceptions.

        Skipping BUCKET_ROWS entries with OFFSET walks the (updated_at, id) index alone,
        never the table: ~0.2 µs a row. Rows outside the region prefix (few, for the
        province's own "52") are then found with one sequential pass over the table and
        taken off their buckets.
        """
        bucket_rows = BUCKET_ROWS
        connection = self._maintenance
        boundaries: list[Key] = []
        key = self.lowest_key()
        while True:
            row = connection.execute(
                f"SELECT updated_at, id FROM {table} WHERE (updated_at, id) > (?, ?) "
                "ORDER BY updated_at, id LIMIT 1 OFFSET ?",
                (key[0], key[1], bucket_rows - 1),
            ).fetchone()
            if row is None:
                break
            key = (row[0], row[1])
            boundaries.append(key)
        total = connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        histogram = KeyHistogram(
            boundaries=boundaries,
            counts=[bucket_rows] * len(boundaries) + [total - bucket_rows * len(boundaries)],
        )
        if region_prefix:
            outside = connection.execute(
                f"SELECT updated_at, id FROM {table} WHERE NOT (region GLOB ?)",
                (region_pattern(region_prefix),),
            )
            for updated_at, row_id in outside:
                histogram.move((updated_at, row_id), None)
                histogram.outside_rows += 1
        return histogram

    def warm(self, region_prefix: str | None, stop: threading.Event | None = None) -> None:
        """Build every table's histogram ahead of the first request (server start)."""
        for table in self.layout.tables:
            if stop is not None and stop.is_set():
                return
            self._histogram(table, region_prefix)

    def _forget_if_changed_elsewhere(self) -> None:
        """Drop the histograms when another connection committed (caller holds the lock)."""
        version = self._read_data_version()
        if version != self._data_version:
            self._data_version = version
            self._histograms.clear()

    def forget_counts(self) -> None:
        """Drop the histograms (after a change set applied through the harness)."""
        with self._maintenance_lock:
            self._histograms.clear()
            self._data_version = self._read_data_version()

    def _check_table(self, table: str) -> None:
        # Table names reach SQL text: only the layout's own names pass.
        if table not in self.layout.tables:
            raise ValueError(f"unknown table {table!r}")

    # -- the server's own writes ("rows updated while a client walks") ----------------

    def touch_random_rows(
        self, table: str, n: int, pick: Callable[[int, int], int], now: datetime | None = None
    ) -> list:
        """Re-stamp n random rows of a table as updated now; returns their ids.

        The new updated_at is strictly after every stamp in the table, so the rows move
        to the end of the (updated_at, id) order whatever their id: a keyset walk meets
        them again, an offset walk shifts by one for each one that was behind it.
        `pick(low, high)` is the server's seeded randint.
        """
        self._check_table(table)
        with self._maintenance_lock:
            self._forget_if_changed_elsewhere()
            connection = self._maintenance
            highest_rowid = connection.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0]
            if highest_rowid is None:
                return []
            chosen: dict = {}
            for _ in range(n):
                row = connection.execute(
                    f"SELECT rowid, id, updated_at, region FROM {table} WHERE rowid >= ? "
                    "ORDER BY rowid LIMIT 1",
                    (pick(1, highest_rowid),),
                ).fetchone()
                if row is not None:
                    chosen[row[0]] = row
            if not chosen:
                return []
            stamp = self._stamp_after_all(connection, table, now)
            connection.execute("BEGIN IMMEDIATE")
            try:
                self._restamp(connection, table, list(chosen), stamp)
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            self._move_in_histograms(table, list(chosen.values()), stamp)
            # Our own commit does not move data_version on this connection; read it anyway
            # in case someone else committed in between (then the buckets must go).
            self._forget_if_changed_elsewhere()
            return [row[1] for row in chosen.values()]

    def _restamp(
        self, connection: sqlite3.Connection, table: str, rowids: list[int], stamp: str
    ) -> None:
        """Set the column and the body's copy of updated_at of these rows to `stamp`.

        Bodies stored as text are edited with SQLite's json_set; bodies stored as bytes (the
        hostile rows, which SQLite's JSON functions may refuse or re-encode) get a textual
        substitution, so they change in their stamp and nowhere else.
        """
        field = self.layout.body_time_field
        marks = ",".join("?" * len(rowids))
        blobs = connection.execute(
            f"SELECT rowid, body FROM {table} WHERE rowid IN ({marks}) AND typeof(body) = 'blob'",
            rowids,
        ).fetchall()
        connection.executemany(
            f"UPDATE {table} SET updated_at = ?, body = ? WHERE rowid = ?",
            [(stamp, restamp_body(body, field, stamp), rowid) for rowid, body in blobs],
        )
        stored_as_bytes = {rowid for rowid, _ in blobs}
        connection.executemany(
            f"UPDATE {table} SET updated_at = ?, body = json_set(body, '$.{field}', ?) "
            "WHERE rowid = ?",
            [(stamp, stamp, rowid) for rowid in rowids if rowid not in stored_as_bytes],
        )

    def _stamp_after_all(
        self, connection: sqlite3.Connection, table: str, now: datetime | None
    ) -> str:
        now_text = self.layout.format_time(now or datetime.now(BEIJING))
        latest = connection.execute(f"SELECT max(updated_at) FROM {table}").fetchone()[0]
        if latest is None or now_text > latest:
            return now_text
        # Same second as (or behind) the latest stamp: one second later keeps the touched
        # rows after every key a client may already hold.
        return self.layout.format_time(self.layout.parse_time(latest) + timedelta(seconds=1))

    def _move_in_histograms(self, table: str, rows: Sequence[tuple], stamp: str) -> None:
        for (cached_table, region_prefix), histogram in self._histograms.items():
            if cached_table != table:
                continue
            for _rowid, row_id, old_updated_at, region in rows:
                if region_prefix and not (region or "").startswith(region_prefix):
                    continue
                histogram.move((old_updated_at, row_id), (stamp, row_id))
