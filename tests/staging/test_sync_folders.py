"""What staging has read, told per sync folder (`landing.sync_folders`, `landing.landed_since`):
the pages landed since are exactly those a look at every page finds, and a folder read before
that changed otherwise than by pages added while it was fresh is never passed over (the
staging then restages in full, or reads its identities again)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.landing import SETTLED_NS, landed_since, raw_stream_dir, sync_folders

STREAM = ("national", "volunteers")


def _page(data_dir: Path, sync: str, number: int, rows: int = 2) -> str:
    folder = raw_stream_dir(data_dir, *STREAM) / sync
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"page-{number:06d}.parquet"
    temp = folder / f".{path.name}.tmp"
    pq.write_table(pa.table({"id": [f"{sync}-{number}-{i}" for i in range(rows)]}), temp)
    temp.rename(path)  # as the landing writes a page
    return str(path)


def _settle(data_dir: Path) -> None:
    """Date every sync folder's last change back beyond SETTLED_NS, as an earlier night left it."""
    past = time.time_ns() - 10 * SETTLED_NS
    for folder in raw_stream_dir(data_dir, *STREAM).iterdir():
        os.utime(folder, ns=(past, past))


def _pages(data_dir: Path) -> dict[str, tuple]:
    """Every page and its state: what a look at each page sees."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in raw_stream_dir(data_dir, *STREAM).glob("*/page-*.parquet")}


def _folders(data_dir: Path) -> list[list]:
    return sync_folders(data_dir, *STREAM)


def test_a_settled_folder_is_kept_by_its_time(tmp_path):
    first = [_page(tmp_path, "sync-1", n) for n in (1, 2)]
    fresh = _folders(tmp_path)
    assert [state[0] for state in fresh[0][2]] == [Path(p).name for p in first]  # fresh: page by page
    _settle(tmp_path)
    settled = _folders(tmp_path)
    assert settled == [[str(Path(first[0]).parent), settled[0][1], None]]
    assert settled[0][1] < time.time_ns() - SETTLED_NS
    assert sync_folders(tmp_path, "national", "no_such_stream") == []
    # a folder kept fresh that has settled since, unchanged: nothing new
    assert landed_since(fresh, settled) == []
    assert landed_since(settled, settled) == []


def test_the_pages_landed_since_are_those_every_page_shows(tmp_path):
    _page(tmp_path, "sync-1", 1)
    _settle(tmp_path)
    before_pages, kept = _pages(tmp_path), _folders(tmp_path)
    _page(tmp_path, "sync-2", 1)  # a new sync: a fresh folder
    _page(tmp_path, "sync-2", 2)
    (raw_stream_dir(tmp_path, *STREAM) / "sync-3").mkdir()  # a sync that landed nothing
    now = _folders(tmp_path)
    assert sorted(landed_since(kept, now)) == sorted(set(_pages(tmp_path)) - set(before_pages))

    # kept while sync-2 was still fresh: a page it gains afterwards is new, the rest is not
    kept, before_pages = now, _pages(tmp_path)
    added = _page(tmp_path, "sync-2", 3)
    assert landed_since(kept, _folders(tmp_path)) == [added]
    assert set(_pages(tmp_path)) - set(before_pages) == {added}


def test_a_folder_read_before_that_changed_is_never_passed_over(tmp_path):
    first = _page(tmp_path, "sync-1", 1)
    _page(tmp_path, "sync-2", 1)

    # fresh when kept (its pages listed): a page rewritten or removed is seen
    kept = _folders(tmp_path)
    time.sleep(0.01)
    _page(tmp_path, "sync-1", 1, rows=3)  # rewritten by hand, by rename
    assert landed_since(kept, _folders(tmp_path)) is None
    kept = _folders(tmp_path)
    Path(first).unlink()
    assert landed_since(kept, _folders(tmp_path)) is None

    # settled when kept (its time only): any page added, removed or renamed in moves it
    _page(tmp_path, "sync-1", 1)
    _settle(tmp_path)
    kept = _folders(tmp_path)
    _page(tmp_path, "sync-1", 2)
    assert landed_since(kept, _folders(tmp_path)) is None  # restaged in full: never a page missed
    _settle(tmp_path)
    kept = _folders(tmp_path)
    _page(tmp_path, "sync-1", 2, rows=5)
    assert landed_since(kept, _folders(tmp_path)) is None
    _settle(tmp_path)
    kept = _folders(tmp_path)
    Path(_page(tmp_path, "sync-2", 1)).unlink()
    assert landed_since(kept, _folders(tmp_path)) is None

    # a whole sync folder gone
    _settle(tmp_path)
    kept = _folders(tmp_path)
    for page in (raw_stream_dir(tmp_path, *STREAM) / "sync-2").iterdir():
        page.unlink()
    (raw_stream_dir(tmp_path, *STREAM) / "sync-2").rmdir()
    assert landed_since(kept, _folders(tmp_path)) is None


def test_what_is_kept_does_not_grow_with_the_pages(tmp_path):
    """A settled sync folder is kept as its path and time, whatever it holds."""
    import json

    for number in range(1, 201):
        _page(tmp_path, "sync-1", number, rows=1)
    _settle(tmp_path)
    one_folder = len(json.dumps(_folders(tmp_path)))
    assert one_folder < 200
    for number in range(1, 201):
        _page(tmp_path, "sync-2", number, rows=1)
    fresh = len(json.dumps(_folders(tmp_path)))
    _settle(tmp_path)
    assert len(json.dumps(_folders(tmp_path))) < 2 * one_folder + 10 < fresh


def test_the_bytes_kept_per_folder_are_every_page_sized_again(tmp_path):
    """The staged step sizes each stream from each sync folder's bytes, kept with the folder's
    time (`tally_sync_folders`): always what sizing every page again gives."""
    from pipelines.landing import page_bytes, tally_sync_folders

    kept = tmp_path / "state" / "landed_bytes.json"

    def sized() -> dict:
        tallies = tally_sync_folders(tmp_path / "raw", page_bytes, 1, kept)
        return {stream: sum(size for size, in syncs.values()) for stream, syncs in tallies.items()}

    def every_page() -> dict:
        return {STREAM: sum(size for size, _ in _pages(tmp_path).values())}

    for number in (1, 2):
        _page(tmp_path, "sync-1", number)
    assert sized() == every_page()
    assert not kept.exists()  # a fresh folder is not kept
    _settle(tmp_path)
    assert sized() == every_page() and kept.exists()
    _page(tmp_path, "sync-1", 3, rows=50)  # its time moves: sized again
    _page(tmp_path, "sync-2", 1)
    assert sized() == every_page()
    _settle(tmp_path)
    Path(_page(tmp_path, "sync-2", 1, rows=9)).unlink()
    assert sized() == every_page()
