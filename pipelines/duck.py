"""DuckDB connections as the pipeline opens them: without DuckDB's progress bar.

DuckDB draws a progress bar on standard output for any query longer than two seconds. In a
step's log (a file, the Dagster UI's stdout view) it is noise: a province-size staging wrote
dozens of half-drawn bars between the step's events. Every DuckDB connection of the pipeline
is opened here, or is a SQLAlchemy engine passed through `quiet_engine` (tests/test_duck.py).
The setting is a session's, so it is set on each connection (DuckDB refuses it in `config`).
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import duckdb
import sqlalchemy as sa

from pipelines.files import private_dir, process_alive

QUIET = "SET enable_progress_bar = false"
# What a spilling connection's query may hold before it writes to its folder: a sort or join
# over a whole province's rows then costs the step this much, not a copy of the rows
SPILL_MEMORY_MB = 1000  # DuckDB's MB: 10^6 bytes (1 GB)
_spill_share = 1  # how many processes share the spill budget (share_spill_budget)


def share_spill_budget(processes: int) -> None:
    """Let this process's spilling connections hold 1/`processes` of SPILL_MEMORY_MB and of the
    machine's cores: processes working side by side (the staged step's, assets/staged.py) keep
    to one budget together. The cores too: each of DuckDB's threads pins its own blocks, so
    two threads sorting a province's service records in half the memory ran out of it (the
    4.3M sync of 5 Dec), where one thread spills."""
    global _spill_share
    _spill_share = max(1, processes)


def spill_memory_limit() -> str:
    return f"{SPILL_MEMORY_MB // _spill_share}MB"


def spill_threads() -> int:
    """DuckDB threads for a spilling connection: this process's share of the cores it may use."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // _spill_share)


def process_spill_dir(root: Path) -> Path:
    """This process's folder under `root` for DuckDB's spill files. DuckDB names them alike
    in every process, so processes spilling side by side (the staged step's children,
    assets/staged.py) each need their own; the folders of processes that are gone (killed
    mid-query), and spill files older code left loose in `root`, are removed on the way."""
    for entry in root.iterdir() if root.exists() else ():
        if entry.is_file():
            entry.unlink(missing_ok=True)
        elif entry.name.isdigit() and not process_alive(int(entry.name)):
            shutil.rmtree(entry, ignore_errors=True)
    return private_dir(root / str(os.getpid()))


def connect(database: str = ":memory:", read_only: bool = False, *,
            spill_to: Path | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to `database` (in memory by default) that draws no progress bar.

    With `spill_to` (a private folder), its queries hold at most `spill_memory_limit()` on
    `spill_threads()` threads and spill the rest into this process's folder under it
    (`process_spill_dir`; without one, DuckDB would spill into the working directory)."""
    con = duckdb.connect(database, read_only=read_only)
    con.execute(QUIET)
    if spill_to is not None:
        con.execute("SET temp_directory = ?", [str(process_spill_dir(spill_to))])
        con.execute("SET memory_limit = ?", [spill_memory_limit()])
        con.execute("SET threads = ?", [spill_threads()])
    return con


# this process's in-memory database that `scratch` connections share: (pid, its first connection)
_scratch_database: tuple[int, duckdb.DuckDBPyConnection] | None = None
_scratch_lock = threading.Lock()


def scratch() -> duckdb.DuckDBPyConnection:
    """A connection of its own to this process's shared in-memory database, for a short query
    over registered frames and temp tables (resolution opens dozens a sync).

    Opening a database costs 20-30 ms (its buffer pool, its threads); a connection to one
    already open, well under one (at a million persons resolution opened 36: about a second).
    What a query leaves is the connection's own: DuckDB keeps registered frames and TEMP
    tables and views per connection and drops them when it closes; a table or view created
    outside `temp` (a relation's `create_view` makes one) would be shared, and no caller of
    this makes one. Settings that are the database's (memory_limit, threads, temp_directory)
    are never set here: a spilling query opens its own database (`connect(spill_to=...)`).
    A child process made by fork gets a database of its own (the parent's is not carried
    over)."""
    global _scratch_database
    with _scratch_lock:
        if _scratch_database is None or _scratch_database[0] != os.getpid():
            _scratch_database = (os.getpid(), duckdb.connect(":memory:"))
        con = _scratch_database[1].cursor()
    con.execute(QUIET)
    return con


def quiet_engine(engine: sa.Engine) -> sa.Engine:
    """`engine`, each of whose new DuckDB connections draws no progress bar."""
    if engine.dialect.name == "duckdb":
        sa.event.listen(engine, "connect", lambda dbapi_connection, _record: dbapi_connection.execute(QUIET))
    return engine
