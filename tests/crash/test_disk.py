"""DATA_DIR full or read-only: the sync stops with a clear message, leaves nothing corrupt
(every page file whole, no checkpoint ahead of the data), and the next run, once there is
room, lands exactly what a clean run lands.

A real file system: a small tmpfs mounted over the test's DATA_DIR (root, as CI runs), then
grown or remounted read-write, as an operator would free space.
"""

from __future__ import annotations

import gc
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from pipelines.files import DataDirUnwritable, atomic_path, write_parquet
from pipelines.locks import held_lock, sync_lock_path
from pipelines.staging.tables import ledger_writer
from sandbox import generate_world
from tests.crash.harness import run_plan

ROOT = Path(__file__).resolve().parents[2]
ADVICE = "Free space (or make the folder writable) and run the sync again"

def _can_mount(folder: Path) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
                             capture_output=True)
    if mounted.returncode == 0:
        subprocess.run(["umount", str(folder)], check=True)
    return mounted.returncode == 0


def test_a_full_or_read_only_data_dir_is_said_plainly_and_the_next_run_recovers(tmp_path):
    full, read_only = tmp_path / "full", tmp_path / "read_only"
    if not _can_mount(full):
        pytest.skip("mounting a file system needs root (CI runs as root)")
    read_only.mkdir()
    world = generate_world(tmp_path / "world", persons=120, seed=5, as_of=datetime(2026, 11, 1, 12))
    steps = [
        {"kind": "raw", "name": "clean", "data_dir": str(tmp_path / "clean")},
        {"kind": "shell", "command": ["mount", "-t", "tmpfs", "-o", "size=96k,mode=0700", "tmpfs", str(full)]},
        {"kind": "raw", "name": "full", "data_dir": str(full)},
        {"kind": "shell", "command": ["mount", "-o", "remount,size=64m", str(full)]},
        {"kind": "raw", "name": "full_then_room", "data_dir": str(full)},
        {"kind": "shell", "command": ["mount", "-t", "tmpfs", "-o", "ro,mode=0700", "tmpfs", str(read_only)]},
        {"kind": "raw", "name": "read_only", "data_dir": str(read_only)},
        {"kind": "shell", "command": ["mount", "-o", "remount,rw", str(read_only)]},
        {"kind": "raw", "name": "read_only_then_writable", "data_dir": str(read_only)},
    ]
    try:
        completed = run_plan(world, steps, tmp_path, timeout=900)
    finally:
        for folder in (full, read_only):
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    assert all(line["code"] == 0 for line in lines if "shell" in line), lines
    runs = {line["raw_run"]: line for line in lines if "raw_run" in line}
    clean = runs["clean"]
    assert clean["code"] == 0 and clean["raw"]

    # full: stopped, said so, and what it left is sound
    assert runs["full"]["code"] == 1
    assert runs["full"]["pages"] > 0  # it had started landing: the disk filled mid-way
    assert runs["full"]["broken"] == 0 and runs["full"]["states_ahead"] == 0
    assert "the file system is full" in completed.stderr
    assert "Free space" in completed.stderr
    assert runs["full_then_room"]["code"] == 0
    assert runs["full_then_room"]["raw"] == clean["raw"]  # every row, every checkpoint

    assert runs["read_only"]["code"] == 1
    assert "the file system is read-only" in completed.stderr
    assert runs["read_only_then_writable"]["code"] == 0
    assert runs["read_only_then_writable"]["raw"] == clean["raw"]


@contextmanager
def tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted over `folder` for the block (skips the test where mounting is not allowed)."""
    if not _can_mount(folder):
        pytest.skip("mounting a file system needs root (CI runs as root)")
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path, leave: int = 0) -> None:
    """Fill the file system holding `folder` but `leave` bytes."""
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    subprocess.run(["fallocate", "-l", str(max(free - leave, 4096)), str(folder / "filler")], check=True)


def remount_read_only(folder: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)


@pytest.fixture
def unraisable(monkeypatch):
    """What Python would print as "Exception ignored in ..." (a finalizer's error), collected."""
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda report: seen.append(report))
    return seen


def _said_plainly(error: DataDirUnwritable, names: Path, reason: str) -> None:
    text = str(error)
    assert f"cannot write {names}: {reason}" in text and ADVICE in text
    assert ".tmp" not in text  # the file the operator knows, not a temporary name
    assert error.__cause__ is None and error.__suppress_context__  # no second traceback


def test_a_duckdb_write_on_a_full_disk_is_said_plainly(tmp_path):
    # DuckDB's IOException is no OSError: it was passed on raw ("IO Error: Async write failed")
    with tmpfs(tmp_path / "data", "size=1m,mode=0700") as data_dir:
        target = data_dir / "state" / "staging_identities" / "part-1.parquet"
        target.parent.mkdir(parents=True)
        fill(data_dir, leave=16 * 1024)
        con = duckdb.connect()
        with pytest.raises(DataDirUnwritable) as raised, atomic_path(target) as temp:
            con.execute("COPY (SELECT range AS n, md5(range::VARCHAR) AS h FROM range(200000)) "
                        "TO $temp (FORMAT parquet)", {"temp": str(temp)})
        _said_plainly(raised.value, target, "the file system is full")
        assert list(target.parent.iterdir()) == []  # nothing half-written kept


def test_a_failed_parquet_stream_leaves_no_finalizer_noise(tmp_path, unraisable):
    # pyarrow's writer, left open when the write failed, was finalized later on a closed file:
    # "Exception ignored in ParquetWriter.__del__ ... ValueError: write to closed file"
    with tmpfs(tmp_path / "data", "size=1m,mode=0700") as data_dir:
        target = data_dir / "staged" / "volunteers.parquet"
        target.parent.mkdir()
        fill(data_dir, leave=64 * 1024)
        chunk = pa.table({"n": pa.array(range(50_000)), "h": pa.array([f"{n:032x}" for n in range(50_000)])})

        def chunks():  # what staging yields: chunk after chunk, until the disk is full
            while True:
                yield chunk

        with pytest.raises(DataDirUnwritable) as raised:
            write_parquet(target, chunks())
        _said_plainly(raised.value, target, "the file system is full")
        # a stream that fails for another reason (DuckDB, reading the landed pages) likewise
        def failing():
            yield chunk.slice(0, 10)
            raise duckdb.IOException("IO Error: Could not read file: No such file or directory")

        with pytest.raises(duckdb.IOException):
            write_parquet(data_dir / "other.parquet", failing())
        gc.collect()
    assert unraisable == []


def test_a_read_only_folder_is_named_not_the_file_written_around_it(tmp_path):
    # the staged file is written inside the ledger's write: its refusal was wrapped again by
    # the ledger's, which named state/staging_ledger (writable) instead of staged/ (read-only)
    data_dir = tmp_path / "data"
    (data_dir / "staged").mkdir(parents=True)
    with tmpfs(data_dir / "staged", "ro,mode=0700"):
        ledger = data_dir / "state" / "staging_ledger" / "volunteers.parquet"
        staged = data_dir / "staged" / "volunteers.parquet"
        with pytest.raises(DataDirUnwritable) as raised, ledger_writer(ledger):
            write_parquet(staged, pa.table({"n": [1, 2, 3]}))
        _said_plainly(raised.value, staged, "the file system is read-only")
        assert "staging_ledger" not in str(raised.value)
        assert list(ledger.parent.iterdir()) == []  # the ledger's temporary file removed


def test_a_read_only_data_dir_is_said_plainly_at_the_lock(tmp_path):
    # the lock is a run's first write to DATA_DIR: it failed with a bare "[Errno 30]"
    with tmpfs(tmp_path / "data", "size=1m,mode=0700") as data_dir:
        (data_dir / "state").mkdir()  # a DATA_DIR of earlier runs, remounted read-only
        remount_read_only(data_dir)
        lock = sync_lock_path(data_dir)
        with pytest.raises(DataDirUnwritable) as raised, held_lock(lock, what="DATA_DIR"):
            pass
        _said_plainly(raised.value, lock, "the file system is read-only")

        # and so the operator reads it, from the contract's command (the executor takes the lock)
        env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
        env.update({"DATA_DIR": str(data_dir), "NATIONAL_API_URL": "http://127.0.0.1:9",
                    "PROVINCIAL_API_URL": "http://127.0.0.1:9", "PYTHONPATH": str(ROOT)})
        completed = subprocess.run(
            [sys.executable, "-m", "dagster", "job", "execute", "-m", "pipelines.definitions", "-j", "pull_raw"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
        )
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0
    assert f"DataDirUnwritable: [Errno 30] cannot write {lock}: the file system is read-only" in output
    assert ADVICE in output
    assert "Read-only file system" not in output  # the system's bare words: gone
    assert "STEP_START" not in output


def _fill_step(folder: Path) -> dict:
    """A plan step that fills the file system holding `folder` but a page (`fill`, between
    two runs of a plan)."""
    free = f'$(( $(df --output=avail -B1 "{folder}" | tail -1) - 4096 ))'
    return {"kind": "shell", "command": ["sh", "-c", f'fallocate -l {free} "{folder}/filler"']}


def _runs_on_a_mount(world: Path, steps: list[dict], tmp_path: Path, mounted: Path) -> tuple[dict[str, int], str]:
    """The plan run (`mounted` unmounted after it, whatever happened): each run's exit code by
    name, and what the runs said (stderr)."""
    try:
        completed = run_plan(world, steps, tmp_path, timeout=900)
    finally:
        subprocess.run(["umount", "-l", str(mounted)], capture_output=True)
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    assert all(line["code"] == 0 for line in lines if "shell" in line), lines
    return {line["raw_run"]: line["code"] for line in lines if "raw_run" in line}, completed.stderr


def test_a_disk_filling_during_staging_is_said_plainly_and_the_next_run_recovers(tmp_path):
    # what the operator ran into: DuckDB's raw "IO Error: Async write failed ... No space left
    # on device" writing state/staging_identities, then "Exception ignored in ParquetWriter.__del__"
    data_dir = tmp_path / "data"
    if not _can_mount(data_dir):
        pytest.skip("mounting a file system needs root (CI runs as root)")
    world = generate_world(tmp_path / "world", persons=120, seed=5, as_of=datetime(2026, 11, 1, 12))
    steps = [
        {"kind": "shell", "command": ["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", str(data_dir)]},
        {"kind": "raw", "name": "landed", "data_dir": str(data_dir)},
        _fill_step(data_dir),
        {"kind": "raw", "name": "staged_on_a_full_disk", "data_dir": str(data_dir), "layers": "staged"},
        {"kind": "shell", "command": ["rm", f"{data_dir}/filler"]},
        {"kind": "raw", "name": "staged_with_room", "data_dir": str(data_dir), "layers": "staged"},
    ]
    runs, said = _runs_on_a_mount(world, steps, tmp_path, data_dir)
    assert runs == {"landed": 0, "staged_on_a_full_disk": 1, "staged_with_room": 0}
    # a page of room: the first write to need more names its file, whichever of the tables
    # staged side by side gets there first (DuckDB's, of the landed rows' identities, on a
    # quiet machine; a ledger's Parquet or a staged table's under load)
    written = re.escape(f"{data_dir}/")
    assert re.search(f"DataDirUnwritable: \\[Errno 28\\] cannot write {written}\\S+: the file system is full", said)
    assert ADVICE in said
    for noise in ("IOException", "No space left on device", "Exception ignored", "write to closed file"):
        assert noise not in said, noise


def test_a_warehouse_on_a_full_disk_is_said_plainly_and_the_next_publish_recovers(tmp_path):
    # DuckDB's refusal met by the load comes wrapped by SQLAlchemy: it was passed on raw
    # ("OperationalError ... IO Error ... No space left on device")
    data_dir, warehouse_dir = tmp_path / "data", tmp_path / "warehouse"
    if not _can_mount(warehouse_dir):
        pytest.skip("mounting a file system needs root (CI runs as root)")
    world = generate_world(tmp_path / "world", persons=120, seed=5, as_of=datetime(2026, 11, 1, 12))
    url = f"duckdb:///{warehouse_dir / 'warehouse.duckdb'}"
    steps = [
        {"kind": "raw", "name": "resolved", "data_dir": str(data_dir), "layers": "raw+staged+resolved"},
        {"kind": "shell", "command": ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs",
                                      str(warehouse_dir)]},
        _fill_step(warehouse_dir),
        {"kind": "raw", "name": "published_on_a_full_disk", "data_dir": str(data_dir), "layers": "warehouse",
         "warehouse_url": url},
        {"kind": "shell", "command": ["rm", f"{warehouse_dir}/filler"]},
        {"kind": "shell", "command": ["mount", "-o", "remount,size=256m", str(warehouse_dir)]},
        {"kind": "raw", "name": "published_with_room", "data_dir": str(data_dir), "layers": "warehouse",
         "warehouse_url": url},
    ]
    runs, said = _runs_on_a_mount(world, steps, tmp_path, warehouse_dir)
    assert runs == {"resolved": 0, "published_on_a_full_disk": 1, "published_with_room": 0}
    assert f"DataDirUnwritable: [Errno 28] cannot write {warehouse_dir / 'warehouse.duckdb'}" in said
    assert "the file system is full" in said and ADVICE in said
    for noise in ("IOException", "OperationalError", "No space left on device"):
        assert noise not in said, noise
