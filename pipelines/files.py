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
  `DataDirUnwritable`, naming the file and what to do, whoever wrote (Python, pyarrow,
  DuckDB); the temporary file is removed and the target keeps its previous content, so the
  next run, once there is room, recovers. A refusal met by a write inside another
  (`atomic_path` in `atomic_path`) keeps naming its own file.

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

import duckdb
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


# The errors a write under DATA_DIR may end in: the system's own, pyarrow's (ArrowIOError is
# an OSError) and DuckDB's (its IOException is not an OSError, and carries no errno).
WRITE_ERRORS = (OSError, duckdb.Error)


def refusal_code(error: BaseException) -> int | None:
    """The errno of an error that means "the disk refuses" (`_UNWRITABLE`), None for any other.
    pyarrow's and DuckDB's errors often carry only the system's words ("No space left on
    device"), not the number: those are read from the message."""
    number = getattr(error, "errno", None)
    if number in _UNWRITABLE:
        return number
    text = str(error)
    return next((code for code in _UNWRITABLE if os.strerror(code) in text), None)


def unwritable_error(target: Path, error: BaseException) -> DataDirUnwritable | None:
    """The clear error for a write error (`WRITE_ERRORS`) that means "the disk refuses", None
    for any other. It names `target`, never a temporary name, and not the system's words."""
    if isinstance(error, DataDirUnwritable):
        return error  # already clear, and naming the file that was refused
    code = refusal_code(error)
    if code is None:
        return None
    return DataDirUnwritable(
        code,
        f"cannot write {target}: {_UNWRITABLE[code]}. Nothing half-written was kept: the previous version "
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
    # the thread id in hex: in decimal it has 15 digits, the shape of an old resident ID
    # number, and the log scrubber would mask it out of the very message naming the file
    unique = f"{os.getpid()}-{threading.get_ident():x}-{uuid.uuid4().hex[:8]}"
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


# the thread id is hex since the names left the scrubber's way (decimal before: still read,
# a killed writer's leftovers from before then are cleared like any other)
_WRITER_PID = re.compile(rf"\.(\d+)-[0-9a-f]+-[0-9a-f]{{8}}\{TEMP_SUFFIX}|^build-(\d+)-")


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


def discard_temp(temp: Path) -> None:
    """Remove a failed write's temporary file. A read-only file system refuses even the
    removal of a file that is not there (EROFS before it looks): nothing could be written
    there, so nothing is left, and the write's own error is the one to report."""
    try:
        temp.unlink(missing_ok=True)
    except OSError as error:
        if refusal_code(error) is None:
            raise


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
    except WRITE_ERRORS as error:
        discard_temp(temp)
        # a refusal already made clear (a file written inside the block, e.g. the staged
        # file inside the ledger's write) names its own file: passed on unchanged
        clear = unwritable_error(target, error)
        if clear is None:
            raise
        raise clear from None
    except BaseException:
        discard_temp(temp)
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
            try:
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
            except BaseException:
                if writer is not None:
                    discard_writer(writer)
                raise
    return rows


def discard_writer(writer: pq.ParquetWriter) -> None:
    """Close a Parquet writer whose file is thrown away (its write failed). An error closing
    it (the same full disk, again) says nothing new and is dropped; the writer is marked
    closed either way, or pyarrow's finalizer would try again later, on a file closed by
    then ("Exception ignored in ParquetWriter.__del__ ... write to closed file")."""
    try:
        writer.close()
    except Exception:  # noqa: BLE001 - the write's own error is the one reported
        writer.is_open = False
        if writer.file_handle is not None:
            try:
                writer.file_handle.close()
            except Exception:  # noqa: BLE001 - as above
                pass


@contextmanager
def parquet_writer(path: Path, schema: pa.Schema) -> Iterator[pq.ParquetWriter]:
    """A zstd Parquet writer of `path` for a block: closed when it ends, discarded
    (`discard_writer`) when it fails, so the block's error is the one raised."""
    writer = pq.ParquetWriter(path, schema, compression="zstd")
    try:
        yield writer
    except BaseException:
        discard_writer(writer)
        raise
    writer.close()


def remove_partial_writes(folder: Path) -> None:
    """Temporary files left by a process killed mid-write: nothing relies on them. A live
    process's temporary file is its work in progress (an overlapping run): left alone."""
    for temp in folder.glob(f".*{TEMP_SUFFIX}*"):  # DuckDB adds `.wal` to a database's name
        pid = writer_pid(temp.name)
        if pid is None or not process_alive(pid):
            temp.unlink(missing_ok=True)
