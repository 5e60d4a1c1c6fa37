"""The world's storage: one SQLite file per source system, rows kept as the servers send them.

Each table holds `id` (national: fixed-width TEXT, so text order is numeric order;
provincial: INTEGER), `updated_at` (Beijing time as text: national
`YYYY-MM-DDTHH:MM:SS+08:00`, provincial `YYYY-MM-DD HH:MM:SS`, so text order is time order),
`region` (the 6-digit code the national interface filters on; provincial: the row's
areaCode or '') and `body` (the row's JSON exactly as served). An index on (updated_at, id)
lets a server page in keyset order without sorting, and the rows are stored in that order
(a page is one sequential read); WAL journaling lets a change set be
applied while the servers read.

Bodies are assembled column-wise with Arrow (each field rendered as a JSON literal, then
joined), which is what keeps a million persons within a minute. Generated text never holds
a quote, backslash or control character, so quoting a string is wrapping it in quotes (the
hostile rows of sandbox/hostile.py, which do hold them, are encoded there and stored as bytes).

The builders (sandbox/teams.py, people.py, …) hand the writer `Built` values: `stored_rows`
frames every body the way its source does (`id` first, the update stamp and the deletion
flag last, the stamp also in the `updated_at` column), `account_frame` and `invalid_frame`
say what those rows are in the truth.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sandbox.store import NATIONAL_LAYOUT, PROVINCIAL_LAYOUT

NATIONAL = "national"
PROVINCIAL = "provincial"
# Tables and the body's copy of updated_at as the servers read them (sandbox/store.py).
STREAMS = {NATIONAL: NATIONAL_LAYOUT.tables, PROVINCIAL: PROVINCIAL_LAYOUT.tables}
UPDATED_FIELD = {
    NATIONAL: NATIONAL_LAYOUT.body_time_field,
    PROVINCIAL: PROVINCIAL_LAYOUT.body_time_field,
}
DB_FILES = {NATIONAL: "national.sqlite", PROVINCIAL: "provincial.sqlite"}
DELETED_FIELD = {NATIONAL: "isdelete", PROVINCIAL: "isDeleted"}

BEIJING = timezone(timedelta(hours=8))
_EPOCH = datetime(1970, 1, 1)


# --- time: every instant of the world is a count of Beijing wall-clock seconds -------------


def beijing_seconds(moment: datetime) -> int:
    """Beijing wall-clock seconds since 1970-01-01 00:00; a naive datetime is Beijing time."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(BEIJING).replace(tzinfo=None)
    return int((moment - _EPOCH).total_seconds())


def beijing_datetime(seconds: int) -> datetime:
    """The aware Beijing datetime of a world instant."""
    return (_EPOCH + timedelta(seconds=int(seconds))).replace(tzinfo=BEIJING)


def _timestamps(seconds: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(seconds, dtype="int64").astype("datetime64[s]"))


# Arrow's cast to text is ~70x faster than its strftime: format by casting, then splice.
def provincial_times(seconds: np.ndarray) -> pa.Array:
    """'yyyy-MM-dd HH:mm:ss' Beijing time with no offset, as the provincial platform writes."""
    return pc.cast(_timestamps(seconds), pa.string())


def national_times(seconds: np.ndarray) -> pa.Array:
    """ISO 8601 with the +08:00 offset, as the national interface writes timestamps."""
    return pc.binary_join_element_wise(
        pc.utf8_replace_slice(provincial_times(seconds), 10, 11, "T"), "+08:00", ""
    )


def source_times(source: str, seconds: np.ndarray) -> pa.Array:
    """Timestamps as `source` writes them."""
    return national_times(seconds) if source == NATIONAL else provincial_times(seconds)


def source_time(source: str, seconds: int) -> str:
    """One timestamp as `source` writes it."""
    return source_times(source, np.array([seconds]))[0].as_py()


def iso_dates(seconds: np.ndarray) -> pa.Array:
    """YYYY-MM-DD dates of world instants."""
    return pc.cast(pc.cast(_timestamps(seconds), pa.date32()), pa.string())


def provincial_dates(seconds: np.ndarray, rng: np.random.Generator) -> pa.Array:
    """Dates in whichever of the platform's three formats each row's client app used."""
    format_index = rng.integers(0, 3, len(seconds))
    dashed = iso_dates(seconds)
    rendered = [
        dashed,
        pc.replace_substring(dashed, "-", "/"),
        pc.replace_substring(dashed, "-", ""),
    ]
    return pc.choose(pa.array(np.asarray(format_index, dtype="int8")), *rendered)


# --- JSON literals, column-wise -------------------------------------------------------------


def _as_array(values) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    return pa.array(values, from_pandas=True)


def j_str(values) -> pa.Array:
    """JSON string literals; nulls become `null`."""
    array = pc.cast(_as_array(values), pa.string())
    quoted = pc.binary_join_element_wise('"', array, '"', "")
    return pc.fill_null(quoted, "null")


def j_num(values) -> pa.Array:
    """JSON number literals (integers or floats); nulls become `null`."""
    return pc.fill_null(pc.cast(_as_array(values), pa.string()), "null")


def j_bool(values) -> pa.Array:
    array = _as_array(np.asarray(values, dtype=bool))
    return pc.if_else(array, "true", "false")


def j_list(rows: list[list[str] | None]) -> pa.Array:
    """JSON arrays of strings, one per row (small columns only: built in Python)."""
    return pa.array(
        ["null" if r is None else "[" + ",".join(f'"{v}"' for v in r) + "]" for r in rows]
    )


def nulls_where(values, mask) -> pa.Array:
    """Text values with null where `mask`: a field some rows leave empty."""
    return pa.array(
        [None if m else v for v, m in zip(_as_array(values).to_pylist(), mask)], pa.string()
    )


def json_bodies(fields: list[tuple[str, pa.Array]]) -> pa.Array:
    """One compact JSON object per row from (key, JSON literal column) pairs, keys in order."""
    parts: list = []
    for i, (key, literal) in enumerate(fields):
        parts.append(("{" if i == 0 else ",") + f'"{key}":')
        parts.append(literal)
    parts.append("}")
    return pc.binary_join_element_wise(*parts, "")


# --- SQLite ---------------------------------------------------------------------------------


def db_path(world_dir: Path, source: str) -> Path:
    return Path(world_dir) / DB_FILES[source]


def remove_database(path: Path) -> None:
    """Delete a database file and its WAL companions, where they exist."""
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)


def _create_table(conn: sqlite3.Connection, table: str, source: str) -> None:
    # `id` is a column of its own, not SQLite's rowid, so that rows can be stored in
    # (updated_at, id) order: the order every page is read in (finish_database)
    id_type = "TEXT" if source == NATIONAL else "INTEGER"
    conn.execute(
        f"CREATE TABLE {table} (id {id_type} NOT NULL, updated_at TEXT NOT NULL, "
        "region TEXT NOT NULL, body TEXT NOT NULL)"
    )


def create_database(path: Path, source: str) -> sqlite3.Connection:
    """A fresh database for one source at `path`, tuned for a bulk load (indexes come last)."""
    remove_database(path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    for table in STREAMS[source]:
        _create_table(conn, table, source)
    return conn


def finish_database(conn: sqlite3.Connection, source: str) -> None:
    """Write every table's rows, in (updated_at, id) order, into a fresh file that replaces
    the load file; index them on (updated_at, id) and on id (unique); switch to WAL; close.

    Rows are generated person by person, their stamps spread over years; a page of 1,000
    rows in key order would otherwise touch up to 1,000 table pages scattered over the
    file (a 4.3M-person world is ~10 GB). Stored in key order, a page is one short
    sequential read, and rowids are dense (change sets pick random rows by rowid). A fresh
    file rather than a sorted copy in place: one write of the data, no VACUUM after.
    """
    path = Path(next(row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"))
    ordered = path.with_name(path.name + ".ordered")
    remove_database(ordered)
    conn.execute("PRAGMA temp_store=FILE")  # the sort spills to disk, not to memory
    conn.execute("ATTACH DATABASE ? AS ordered", (str(ordered),))
    conn.execute("PRAGMA ordered.journal_mode=OFF")
    conn.execute("PRAGMA ordered.synchronous=OFF")
    for table in STREAMS[source]:
        _create_table(conn, f"ordered.{table}", source)
        conn.execute(f"INSERT INTO ordered.{table} SELECT * FROM main.{table} ORDER BY updated_at, id")
        conn.execute(f"CREATE INDEX ordered.ix_{table}_updated ON {table} (updated_at, id)")
        conn.execute(f"CREATE UNIQUE INDEX ordered.ux_{table}_id ON {table} (id)")
        conn.commit()
    conn.execute("DETACH DATABASE ordered")
    conn.close()
    ordered.replace(path)
    finished = sqlite3.connect(path)
    finished.execute("PRAGMA journal_mode=WAL")
    finished.close()


def connect(world_dir: Path, source: str) -> sqlite3.Connection:
    """A connection for reading or changing a finished world while servers read it."""
    conn = sqlite3.connect(db_path(world_dir, source), timeout=30)
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


_ROWS_PER_STATEMENT = 100  # multi-row VALUES: half the per-row cost of executemany


def insert_rows(conns: dict[str, sqlite3.Connection], rows: Rows) -> int:
    """Insert built rows into their source's database; returns how many."""
    n = len(rows)
    cells = np.empty((n, 4), dtype=object)
    for column, values in enumerate((rows.ids, rows.updated_at, rows.region, rows.body)):
        cells[:, column] = _as_array(values).to_pylist()
    conn, table = conns[rows.source], rows.table
    whole = n - n % _ROWS_PER_STATEMENT
    if whole:
        statement = f"INSERT INTO {table} VALUES " + ",".join(
            ["(?, ?, ?, ?)"] * _ROWS_PER_STATEMENT
        )
        batches = cells[:whole].reshape(-1, 4 * _ROWS_PER_STATEMENT)
        conn.executemany(statement, (batch.tolist() for batch in batches))
    conn.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?)", cells[whole:].tolist())
    return n


# --- ids ------------------------------------------------------------------------------------


def take_ids(next_ids: dict[str, int], counter: str, count: int) -> np.ndarray:
    """The next `count` numbers of one id counter (world.json's `next_ids`), advancing it."""
    first = next_ids[counter]
    next_ids[counter] = first + count
    return first + np.arange(count)


def number_entities(
    entities: pd.DataFrame, national_number: str, provincial_base: int
) -> tuple[np.ndarray, np.ndarray]:
    """Give true entities their ids in each system they appear in, in frame order.

    Adds `national_row` (the counter of the national row id), `national_no`
    (`national_number` formatted with that counter) and `provincial_id` (`provincial_base`
    plus a counter), -1 or null where the entity is absent. Returns the index labels of the
    entities in the national system and on the provincial platform.
    """
    nat = entities.index[entities["in_national"]].to_numpy()
    prov = entities.index[entities["in_provincial"]].to_numpy()
    entities["national_row"] = -1
    entities.loc[nat, "national_row"] = np.arange(1, len(nat) + 1)
    entities["national_no"] = pd.array([None] * len(entities), dtype="str")
    entities.loc[nat, "national_no"] = [national_number.format(k) for k in range(1, len(nat) + 1)]
    entities["provincial_id"] = -1
    entities.loc[prov, "provincial_id"] = provincial_base + np.arange(1, len(prov) + 1)
    return nat, prov


def fixed_width_ids(counter: np.ndarray) -> pa.Array:
    """National row ids: 16-digit decimal text, so text order is numeric order."""
    return pc.cast(pa.array(np.int64(10**15) + np.asarray(counter, dtype="int64")), pa.string())


# --- what the builders hand the writer ------------------------------------------------------


@dataclass
class Rows:
    """Rows of one stored table, column-wise, ready to insert."""

    source: str
    table: str
    ids: pa.Array
    updated_at: pa.Array
    region: pa.Array
    body: pa.Array

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, rows: slice) -> Rows:
        """A run of these rows (e.g. the planted invalid ones, stored after the valid ones)."""
        return Rows(
            self.source,
            self.table,
            self.ids[rows],
            self.updated_at[rows],
            self.region[rows],
            self.body[rows],
        )

    def text_ids(self) -> list[str]:
        """The stored ids as text, as the truth files hold them."""
        return pc.cast(self.ids, pa.string()).to_pylist()


def stored_rows(source, table, ids, fields, updated, deleted, region) -> Rows:
    """Rows of one table with bodies as `source` writes them: `id`, then `fields`, then the
    last-update stamp and the deletion flag.

    The updated_at column holds the body's own stamp: the servers page on the column and
    serve the body, so the two must never disagree.
    """
    times = source_times(source, updated)
    if source == NATIONAL:
        id_literal, deleted_literal = j_str(ids), j_num(np.asarray(deleted).astype(int))
    else:
        id_literal, deleted_literal = j_num(ids), j_bool(deleted)
    body = json_bodies(
        [
            ("id", id_literal),
            *fields,
            (UPDATED_FIELD[source], j_str(times)),
            (DELETED_FIELD[source], deleted_literal),
        ]
    )
    return Rows(source, table, _as_array(ids), times, _as_array(region), body)


INVALID_SHARE = 0.0015


@dataclass
class Built:
    """What a builder hands the writer: stored rows, truth account rows, invalid rows."""

    rows: list[Rows] = field(default_factory=list)
    accounts: list[pd.DataFrame] = field(default_factory=list)
    invalid: list[pd.DataFrame] = field(default_factory=list)

    def extend(self, other: Built) -> None:
        self.rows += other.rows
        self.accounts += other.accounts
        self.invalid += other.invalid


def objects(values) -> pd.Series:
    """Text as plain Python objects: building pandas' Arrow strings chunk by chunk is slow."""
    if isinstance(values, pd.Series):
        values = values.to_numpy(dtype=object)
    return pd.Series(np.asarray(values, dtype=object), dtype=object)


def account_frame(
    rows: Rows, entity, true_ids, updated, deleted, source_ids=None, **extra
) -> pd.DataFrame:
    """Truth rows mapping stored rows to the true entity they are.

    `source_ids`: the id the contract's source maps use (albp0029, albe0001, albx0001), when
    it is not the stored id itself.
    """
    row_ids = rows.text_ids()
    frame = pd.DataFrame(
        {
            "source": rows.source,
            "entity": entity,
            "stream": rows.table,
            "source_id": objects(row_ids if source_ids is None else source_ids),
            "true_id": objects(true_ids),
            "row_id": objects(row_ids),
            "updated_at": np.asarray(updated, dtype=np.int64),
            "is_deleted": np.asarray(deleted, dtype=bool),
        }
    )
    for name, values in extra.items():
        frame[name] = objects(values)
    return frame


def invalid_frame(rows: Rows, entity, rules, source_ids=None) -> pd.DataFrame:
    """Truth rows naming the quarantine rule each planted row breaks."""
    row_ids = rows.text_ids()
    return pd.DataFrame(
        {
            "source": rows.source,
            "entity": entity,
            "stream": rows.table,
            "source_id": objects(row_ids if source_ids is None else source_ids),
            "row_id": objects(row_ids),
            "rule": objects(rules),
        }
    )


def invalid_count(rng: np.random.Generator, rows: int, share: float = INVALID_SHARE) -> int:
    """How many invalid rows of one kind to plant: a small share, and at least one."""
    return max(1, int(rng.binomial(rows, share)))


def join_tags(*columns) -> list[str]:
    """Per row, the non-empty dirt tags of each column, joined by ','."""
    return [",".join(tag for tag in row if tag) for row in zip(*columns)]
