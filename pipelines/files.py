"""Files under DATA_DIR, written one way by every layer: private, atomic, durable.

* Private: folders 0700, files 0600. DATA_DIR holds source rows as they came, personal
  numbers included, and the staged names matching needs.
* Atomic: a file is written under a temporary name unique to this process and thread (two
  overlapping runs never share one), flushed and fsynced, then renamed over its target: a
  reader sees the old file or the new one, never half of one; a killed writer leaves only a
  temporary file, which `remove_partial_writes` clears.
* Durable: the folder is fsynced after the rename (unless the caller batches that, see
  `durable`), so a state file can never survive a crash that lost the data it points to.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

TEMP_SUFFIX = ".tmp"


def private_dir(path: Path) -> Path:
    """Create `path` and missing parents as 0700 folders (the owner alone may read them);
    each new folder entry is fsynced into its parent."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode is cut by the umask; say it outright
        fsync_dir(folder.parent)
    return path


def fsync_dir(folder: Path) -> None:
    """Make the entries of `folder` (renames, new files) survive a crash."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path(target: Path) -> Path:
    """A temporary name beside `target`, unique to this process, thread and call."""
    unique = f"{os.getpid()}-{threading.get_ident()}-{uuid.uuid4().hex[:8]}"
    return target.with_name(f".{target.name}.{unique}{TEMP_SUFFIX}")


@contextmanager
def atomic_path(target: Path, *, durable: bool = True) -> Iterator[Path]:
    """A temporary path to write `target` through (by any writer, DuckDB's COPY included);
    on success it is fsynced, made 0600 and renamed over `target`; on failure removed.

    `durable=False` leaves the folder's fsync to the caller, who must do it before anything
    that relies on the rename (the landing fsyncs once per commit, not once per page).
    """
    private_dir(target.parent)
    temp = temp_path(target)
    try:
        yield temp
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(temp, 0o600)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(target.parent)


def write_bytes(target: Path, data: bytes, *, durable: bool = True) -> None:
    with atomic_path(target, durable=durable) as temp:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)


def write_text(target: Path, text: str, *, durable: bool = True) -> None:
    write_bytes(target, text.encode("utf-8"), durable=durable)


def write_parquet(
    target: Path,
    data: pa.Table | pd.DataFrame | Iterable[pa.Table],
    schema: pa.Schema | None = None,
    *,
    durable: bool = True,
) -> int:
    """Write a table, a frame, or a stream of tables (of `schema`) as one zstd Parquet file;
    returns the rows written. A stream is written batch by batch, never held whole."""
    if isinstance(data, pd.DataFrame):
        data = pa.Table.from_pandas(data, schema=schema, preserve_index=False)
    tables = [data] if isinstance(data, pa.Table) else data
    rows = 0
    with atomic_path(target, durable=durable) as temp:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            writer = None
            for table in tables:
                if writer is None:
                    writer = pq.ParquetWriter(handle, schema or table.schema, compression="zstd")
                if table.num_rows:
                    writer.write_table(table)
                    rows += table.num_rows
            if writer is None:  # nothing came: an empty file of the schema
                writer = pq.ParquetWriter(handle, schema, compression="zstd")
            writer.close()
    return rows


def remove_partial_writes(folder: Path) -> None:
    """Temporary files left by a process killed mid-write: nothing relies on them."""
    for temp in folder.glob(f".*{TEMP_SUFFIX}"):
        temp.unlink(missing_ok=True)
