"""What staging's bookkeeping of the pages it has read costs as the landing zone's history grows.

    .venv/bin/python bench/landing_history.py --syncs 1 52 --pages 8855 [--work DIR]

The landing zone keeps every sync (it is the replayable record), and the weekly reconciliation
lands the whole province again: after a year at a million persons, ~52 × 8,855 pages. Before
every staging, staging tells what it has read from what is landed now: once for the record
that decides whether the step is reused or merged (assets/staged.py), and once per stream for
the identities' parts (pipelines/staging/extract.py), and keeps what it saw. This measures one
such look at one stream of `pages` pages per sync (files named and laid out as the landing
lays them; their contents do not matter to a look), two ways:

* per page, as staging did until 7 Dec 2026: a `stat` of every page (`reuse.folder_manifest`)
  and the page states kept (~200 bytes each);
* per sync folder, as it does now: `landing.sync_folders` (one `stat` per settled folder)
  and `landing.landed_since` against the state kept.

The staged step also sizes what is landed per stream (to choose its lanes): a `stat` of every
page until 7 Dec 2026 (the per-page look again, over every stream), now each settled sync
folder's bytes kept with its time (`landing.tally_sync_folders`): timed once the sizes are kept.

Prints a Markdown table on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.landing import SETTLED_NS, landed_since, page_bytes, raw_stream_dir, sync_folders, tally_sync_folders
from pipelines.reuse import folder_manifest

STREAM = ("national", "service_records")


def _grow_to(data_dir: Path, syncs: int, pages: int) -> None:
    """Sync folders up to `syncs`, each of `pages` page files, settled (dated an hour back)."""
    stream_dir = raw_stream_dir(data_dir, *STREAM)
    past = time.time_ns() - 1800 * SETTLED_NS
    for sync in range(len(list(stream_dir.glob("*"))) if stream_dir.exists() else 0, syncs):
        folder = stream_dir / f"sync-{sync:04d}"
        folder.mkdir(parents=True)
        for page in range(1, pages + 1):
            (folder / f"page-{page:06d}.parquet").touch()
        os.utime(folder, ns=(past, past))


def _best_of(runs: int, look) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        result = look()
        best = min(best, time.perf_counter() - started)
    return best, result


def measure(data_dir: Path, runs: int) -> dict:
    stream_dir = raw_stream_dir(data_dir, *STREAM)
    per_page_s, manifest = _best_of(runs, lambda: folder_manifest(stream_dir))
    per_folder_s, folders = _best_of(runs, lambda: sync_folders(data_dir, *STREAM))
    compare_s, new = _best_of(runs, lambda: landed_since(folders, sync_folders(data_dir, *STREAM)))
    assert new == []
    kept = data_dir / "landed_bytes.json"
    tally_sync_folders(data_dir / "raw", page_bytes, 1, kept)  # each folder sized once, then kept
    sizing_s, sizes = _best_of(runs, lambda: tally_sync_folders(data_dir / "raw", page_bytes, 1, kept))
    assert len(sizes[STREAM]) == len(folders)
    return {
        "pages": len(manifest),
        "per_page_s": per_page_s,
        "per_page_kept_bytes": len(json.dumps(manifest)),
        "per_folder_s": per_folder_s,
        "per_folder_compare_s": compare_s,
        "per_folder_kept_bytes": len(json.dumps(folders)),
        "sizing_kept_s": sizing_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--syncs", type=int, nargs="+", default=[1, 52])
    parser.add_argument("--pages", type=int, default=8855, help="pages per sync (8,855 at 1M persons)")
    parser.add_argument("--runs", type=int, default=3, help="looks per measure (the best is kept)")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="landing-history-", dir=args.work))
    rows = []
    try:
        for syncs in sorted(args.syncs):
            print(f"growing to {syncs} syncs of {args.pages} pages", file=sys.stderr)
            _grow_to(work, syncs, args.pages)
            rows.append({"syncs": syncs, **measure(work, args.runs)})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("| syncs | pages | per page: look | kept | per folder: look | look and compare | kept | sizing, kept |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['syncs']} | {row['pages']:,} | {row['per_page_s']:.3f} s | "
              f"{row['per_page_kept_bytes'] / 2**20:.1f} MiB | {row['per_folder_s'] * 1000:.2f} ms | "
              f"{row['per_folder_compare_s'] * 1000:.2f} ms | {row['per_folder_kept_bytes']:,} B | "
              f"{row['sizing_kept_s'] * 1000:.2f} ms |")


if __name__ == "__main__":
    main()
