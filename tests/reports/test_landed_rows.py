"""The report's rows landed per stream, counted from the pages' footers once per sync folder:
kept between reports, always the count of every footer (`landed_rows` without a kept file),
whatever was added, removed or garbled since."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.landing import SETTLED_NS
from pipelines.reports.quality import landed_rows


def _page(folder: Path, number: int, rows: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"page-{number:06d}.parquet"
    pq.write_table(pa.table({"id": [str(i) for i in range(rows)]}), path)
    return path


def _settle(*folders: Path) -> None:
    """Date the folders' last change back beyond SETTLED_NS, as an earlier sync left them."""
    past = time.time_ns() - 10 * SETTLED_NS
    for folder in folders:
        os.utime(folder, ns=(past, past))


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    for number, rows in enumerate([5, 7], start=1):
        _page(raw / "national" / "volunteers" / "sync-1", number, rows)
    _page(raw / "national" / "volunteers" / "sync-2", 1, 3)
    _page(raw / "provincial" / "service_logs" / "sync-1", 1, 11)
    (raw / "provincial" / "service_logs" / "sync-empty").mkdir()  # a sync that found nothing
    _settle(*raw.glob("*/*/*"))
    return raw


def _counted(raw: Path, kept: Path) -> dict[tuple[str, str], tuple[int, int]]:
    """The kept count, checked against every footer read again (the definition)."""
    frame = landed_rows(raw, kept)
    assert frame.equals(landed_rows(raw)), "kept counts must be the footers' counts"
    return {(r.source, r.stream): (r.syncs, r.row_count) for r in frame.itertuples()}


def test_each_folder_is_counted_once_then_read_back_while_it_is_unchanged(raw: Path, tmp_path: Path):
    kept = tmp_path / "state" / "reports" / "landed_rows.json"
    assert _counted(raw, kept) == {("national", "volunteers"): (2, 15), ("provincial", "service_logs"): (1, 11)}
    assert len(json.loads(kept.read_text())["folders"]) == 4

    # a page garbled in place leaves its folder's time as it was: the kept count is read back,
    # where reading every footer again fails
    garbled = raw / "national" / "volunteers" / "sync-1" / "page-000002.parquet"
    stamp = os.stat(garbled.parent).st_mtime_ns
    garbled.write_bytes(b"not parquet")
    assert os.stat(garbled.parent).st_mtime_ns == stamp
    assert landed_rows(raw, kept)["row_count"].tolist() == [15, 11]
    with pytest.raises(pa.ArrowInvalid):
        landed_rows(raw)


def test_pages_added_folders_new_and_gone_are_counted_again(raw: Path, tmp_path: Path):
    kept = tmp_path / "landed_rows.json"
    _counted(raw, kept)

    _page(raw / "national" / "volunteers" / "sync-2", 2, 4)  # a retried run adds a page
    _page(raw / "national" / "volunteers" / "sync-3", 1, 6)  # the next sync
    (raw / "provincial" / "service_logs" / "sync-1" / "page-000001.parquet").unlink()
    assert _counted(raw, kept) == {("national", "volunteers"): (3, 25), ("provincial", "service_logs"): (0, 0)}
    # folders changed within SETTLED_NS are not kept: the file system's clock may not have
    # moved yet for a change still to come in the same tick
    folders = json.loads(kept.read_text())["folders"]
    assert "national/volunteers/sync-3" not in folders and "national/volunteers/sync-2" not in folders

    _settle(*raw.glob("*/*/*"))
    assert _counted(raw, kept) == {("national", "volunteers"): (3, 25), ("provincial", "service_logs"): (0, 0)}
    assert "national/volunteers/sync-3" in json.loads(kept.read_text())["folders"]

    for page in (raw / "national" / "volunteers" / "sync-3").iterdir():
        page.unlink()
    (raw / "national" / "volunteers" / "sync-3").rmdir()
    assert _counted(raw, kept)[("national", "volunteers")] == (2, 19)
    assert "national/volunteers/sync-3" not in json.loads(kept.read_text())["folders"]


@pytest.mark.parametrize("content", [
    "{not json", "[]", '{"version": 0, "folders": {}}', '{"version": 1, "folders": []}',
    '{"version": 1, "folders": {"national/volunteers/sync-1": [1, 2]}}',
    '{"version": 1, "folders": {"national/volunteers/sync-1": ["a", 2, 3]}}',
])
def test_a_kept_file_that_is_not_this_format_is_counted_anew(raw: Path, tmp_path: Path, content: str):
    kept = tmp_path / "landed_rows.json"
    kept.write_text(content)
    assert _counted(raw, kept) == {("national", "volunteers"): (2, 15), ("provincial", "service_logs"): (1, 11)}
    assert json.loads(kept.read_text())["version"] == 1


def test_a_kept_count_whose_folder_time_moved_is_not_used(raw: Path, tmp_path: Path):
    kept = tmp_path / "landed_rows.json"
    _counted(raw, kept)
    folders = json.loads(kept.read_text())["folders"]
    folders["national/volunteers/sync-1"][2] = 1_000  # as if the folder had held other pages
    kept.write_text(json.dumps({"version": 1, "folders": folders}))
    assert landed_rows(raw, kept)["row_count"].tolist() == [1_003, 11]  # trusted while unchanged
    _settle(raw / "national" / "volunteers" / "sync-1")  # its time moves (to another past one)
    assert _counted(raw, kept)[("national", "volunteers")] == (2, 15)
