"""Files under DATA_DIR, written one way by every layer: private, atomic, durable.

* Private: folders 0700, files 0600. DATA_DIR holds source rows as they came, personal
  numbers included, and the staged names matching needs.
* Atomic: a file is written under a temporary name unique to this process and thread (two
  overlapping runs never share one), flushed and fsynced, then renamed over its target: a
  reader sees the old file or the new one, never half of one; a killed writer leaves only a
  temporary file, which `remove_partial_writes` clears.
* Durable: the folder is fsynced after the rename (unless the caller batches that, see
  `durable`), so a state file can never survive a crash that lost the data it points to;
  every new folder is fsynced into its parent as well.
* Clear when the disk says no: a full, read-only or forbidden DATA_DIR raises
  `DataDirUnwritable`, naming the file and what to do; the temporary file is removed and
  the target keeps its previous content, so the next run, once there is room, recovers.

Kill points (`pipelines.faults`) sit in every write: `file.partial:<path>` (half the
content written), `file.before_rename:<path>` (complete, not yet in place) and
`file.after_rename:<path>` (in place, folder not yet fsynced).
"""

from __future__ import annotations

import errno
import os
import re
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.faults import crash_point

TEMP_SUFFIX = ".tmp"

# What the operating system says when the disk, not the code, is the problem.
_UNWRITABLE = {
    errno.ENOSPC: "the file system is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EFBIG: "the file is larger than this process may write",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


class DataDirUnwritable(OSError):
    """DATA_DIR (or the warehouse's folder) cannot take a write: full, read-only, forbidden."""


def unwritable_error(target: Path, error: OSError) -> DataDirUnwritable | None:
    """The clear error for an OSError that means "the disk refuses", None for any other."""
    reason = _UNWRITABLE.get(error.errno or 0)
    if reason is None:  # pyarrow's and DuckDB's errors carry the system's words, not the number
        text = str(error)
        reason = next((why for code, why in _UNWRITABLE.items() if os.strerror(code) in text), None)
    if reason is None:
        return None
    return DataDirUnwritable(
        error.errno,
        f"cannot write {target}: {reason}. Nothing half-written was kept: the previous version "
        "of the file and every checkpoint still stand. Free space (or make the folder "
        "writable) and run the sync again; it resumes from the last checkpoint.",
    )


def private_dir(path: Path) -> Path:
    """Create `path` and missing parents as 0700 folders (the owner alone may read them);
    each new folder entry is fsynced into its parent."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
            os.chmod(folder, 0o700)  # mkdir's mode is cut by the umask; say it outright
            fsync_path(folder.parent)
        except OSError as error:
            clear = unwritable_error(folder, error)
            if clear is None:
                raise
            raise clear from None
    return path


def fsync_path(path: Path) -> None:
    """Make a file's content, or a folder's entries (renames, new files), survive a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path(target: Path) -> Path:
    """A temporary name beside `target`, unique to this process, thread and call (it starts
    with the writer's process id, so a cleaner can tell a dead writer's leftovers from a
    live writer's work)."""
    unique = f"{os.getpid()}-{threading.get_ident()}-{uuid.uuid4().hex[:8]}"
    return target.with_name(f".{target.name}.{unique}{TEMP_SUFFIX}")


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (ours counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process: alive
        return True
    return True


_WRITER_PID = re.compile(rf"\.(\d+)-\d+-[0-9a-f]{{8}}\{TEMP_SUFFIX}|^build-(\d+)-")


def writer_pid(name: str) -> int | None:
    """The process id a temporary or build name carries (`.x.<pid>-...tmp`, `build-<pid>-...`)."""
    found = _WRITER_PID.search(name)
    return int(found.group(1) or found.group(2)) if found else None


def remove_dead_writers_temps(target: Path) -> None:
    """Temporary files of `target` left by writers that were killed (their process is gone)."""
    for temp in target.parent.glob(f".{target.name}.*{TEMP_SUFFIX}*"):
        pid = writer_pid(temp.name)
        if pid is not None and not process_alive(pid):
            temp.unlink(missing_ok=True)


@contextmanager
def atomic_path(target: Path, *, durable: bool = True, tidy: bool = True) -> Iterator[Path]:
    """A temporary path to write `target` through (by any writer, DuckDB's COPY included);
    on success it is fsynced, made 0600 and renamed over `target`; on failure removed.

    `durable=False` leaves the folder's fsync to the caller, who must do it before anything
    that relies on the rename (the landing fsyncs once per commit, not once per page).
    `tidy` first removes what killed writers of `target` left (the landing, which writes
    thousands of pages to a folder, does that once per folder instead).
    """
    private_dir(target.parent)
    if tidy:
        remove_dead_writers_temps(target)
    temp = temp_path(target)
    try:
        yield temp
        fsync_path(temp)
        os.chmod(temp, 0o600)
        crash_point(f"file.before_rename:{target}")
        os.replace(temp, target)
    except OSError as error:
        temp.unlink(missing_ok=True)
        clear = unwritable_error(target, error)
        if clear is None:
            raise
        raise clear from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    crash_point(f"file.after_rename:{target}")
    if durable:
        fsync_path(target.parent)


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
    tidy: bool = True,
) -> int:
    """Write a table, a frame, or a stream of tables (of `schema`) as one zstd Parquet file;
    returns the rows written. A stream is written batch by batch, never held whole."""
    if isinstance(data, pd.DataFrame):
        data = pa.Table.from_pandas(data, schema=schema, preserve_index=False)
    tables = [data] if isinstance(data, pa.Table) else data
    rows = 0
    with atomic_path(target, durable=durable, tidy=tidy) as temp:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            writer = None
            for table in tables:
                if writer is None:
                    writer = pq.ParquetWriter(handle, schema or table.schema, compression="zstd")
                if table.num_rows:
                    writer.write_table(table)
                    rows += table.num_rows
                    crash_point(f"file.partial:{target}")  # rows out, no footer yet
            if writer is None:  # nothing came: an empty file of the schema
                writer = pq.ParquetWriter(handle, schema, compression="zstd")
            writer.close()
    return rows


def remove_partial_writes(folder: Path) -> None:
    """Temporary files left by a process killed mid-write: nothing relies on them. A live
    process's temporary file is its work in progress (an overlapping run): left alone."""
    for temp in folder.glob(f".*{TEMP_SUFFIX}*"):  # DuckDB adds `.wal` to a database's name
        pid = writer_pid(temp.name)
        if pid is None or not process_alive(pid):
            temp.unlink(missing_ok=True)
