"""DATA_DIR full or read-only: the sync stops with a clear message, leaves nothing corrupt
(every page file whole, no checkpoint ahead of the data), and the next run, once there is
room, lands exactly what a clean run lands.

A real file system: a small tmpfs mounted over the test's DATA_DIR (root, as CI runs), then
grown or remounted read-write, as an operator would free space.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from sandbox import generate_world
from tests.crash.harness import run_plan



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
