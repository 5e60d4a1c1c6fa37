"""The small pieces under the crash tests, tested directly: the kill point's matching, the
clear message of a disk that refuses, what a lock file says about its holder."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from pipelines.faults import CRASH_VARIABLE, crash_point
from pipelines.files import DataDirUnwritable, temp_path, unwritable_error, writer_pid
from pipelines.privacy import redact
from pipelines.locks import describe_holder

ROOT = Path(__file__).resolve().parents[2]

COUNTING = """
from pipelines.faults import crash_point
for n in range(1, 6):
    print(n, flush=True)
    crash_point("file.before_rename:/data/staged/volunteers.parquet")
"""


def _reached(spec: str) -> tuple[int, list[str]]:
    completed = subprocess.run([sys.executable, "-c", COUNTING], cwd=ROOT, capture_output=True,
                               text=True, env={**os.environ, CRASH_VARIABLE: spec}, timeout=60)
    return completed.returncode, completed.stdout.split()


def test_a_kill_point_kills_at_the_nth_match_only():
    assert _reached("file.before_rename:*/staged/*.parquet#3") == (-signal.SIGKILL, ["1", "2", "3"])
    assert _reached("file.before_rename:*/staged/*.parquet") == (-signal.SIGKILL, ["1"])
    assert _reached("file.after_rename:*") == (0, ["1", "2", "3", "4", "5"])


def test_an_unset_kill_point_does_nothing():
    os.environ.pop(CRASH_VARIABLE, None)
    crash_point("publish.built")  # still here


def test_a_refusing_disk_is_named_in_words_and_other_errors_pass():
    full = unwritable_error(Path("/data/raw/x.parquet"), OSError(errno.ENOSPC, "No space left on device"))
    assert isinstance(full, DataDirUnwritable) and full.errno == errno.ENOSPC
    assert "/data/raw/x.parquet" in str(full) and "the file system is full" in str(full)
    assert "run the sync again" in str(full)
    # pyarrow's and DuckDB's errors carry the words without the number
    worded = unwritable_error(Path("/d/f"), OSError(f"Error writing: {os.strerror(errno.EROFS)}"))
    assert worded is not None and "read-only" in str(worded)
    assert unwritable_error(Path("/d/f"), OSError(errno.ENOENT, "No such file")) is None


def test_temporary_and_build_names_tell_their_writer():
    assert writer_pid(".volunteers.parquet.4242-140000-0123abcd.tmp") == 4242
    assert writer_pid(".volunteers.parquet.4242-7f2a9c3e1b40-0123abcd.tmp") == 4242  # thread in hex
    assert writer_pid(".volunteers.parquet.18199-139816234567816-0123abcd.tmp") == 18199  # as before
    assert writer_pid(".warehouse.duckdb.17-1-deadbeef.tmp.wal") == 17
    assert writer_pid("build-99-0123abcd") == 99
    assert writer_pid("page-000001.parquet") is None


def test_a_temporary_name_survives_the_log_scrubber(monkeypatch):
    # a thread id in decimal has 15 digits, the shape of an old resident ID number: the
    # scrubber masked it, and the operator could not find the file a message named
    monkeypatch.setattr("threading.get_ident", lambda: 139816234567816)
    name = temp_path(Path("/data/state/staging_identities/provincial__service_logs/part-1.parquet")).name
    message = f'Could not write file "{name}": No space left on device'
    assert redact(message) == message
    assert writer_pid(name) == os.getpid()


def test_disk_errors_of_duckdb_and_pyarrow_are_named_in_words():
    import duckdb
    import pyarrow as pa

    duck = unwritable_error(Path("/d/part-1.parquet"), duckdb.IOException(
        'IO Error: Async write failed: Could not write file "/d/.part-1.parquet.1-7f-0123abcd.tmp": '
        "No space left on device"))
    assert isinstance(duck, DataDirUnwritable) and duck.errno == errno.ENOSPC
    assert "cannot write /d/part-1.parquet: the file system is full" in str(duck)
    assert "No space left" not in str(duck) and ".tmp" not in str(duck)
    arrow = unwritable_error(Path("/d/f"), pa.ArrowIOError("IOError: Permission denied"))
    assert arrow is not None and arrow.errno == errno.EACCES
    assert unwritable_error(Path("/d/f"), duckdb.IOException("IO Error: No files found")) is None
    already = DataDirUnwritable(errno.EROFS, "cannot write /d/inner: the file system is read-only")
    assert unwritable_error(Path("/d/outer"), already) is already  # names the file refused


def test_a_lock_file_says_who_holds_it():
    record = {"pid": 7, "host": "etl-1", "owner": "Dagster run abc", "since": "2026-12-04T02:00:00+00:00"}
    assert describe_holder(json.dumps(record)) == (
        "process 7 on etl-1, Dagster run abc, since 2026-12-04T02:00:00+00:00")
    assert describe_holder("") == "an unknown process"
