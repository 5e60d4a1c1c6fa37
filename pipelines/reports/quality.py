"""The data-quality panel of the officials' report: what the sync landed, rejected, matched
and checked, and how fresh the warehouse is.

The warehouse holds the quarantine and the match methods (read with the other figures,
`pipelines/reports/figures.py`); what only the landing zone or the resolver know (rows
landed per source, the review queue) is counted here from their files' Parquet footers,
without reading the rows (each sync folder's footers once: `landed_rows`); the check results
and the publish time come from Dagster and are passed in by the asset. No Dagster here.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from pipelines.files import write_text

REVIEW_FILE = "volunteer_match_review.parquet"


@dataclass(frozen=True)
class CheckOutcome:
    """The latest result of one asset check: `passed` None when it has not run."""

    asset: str
    check: str
    passed: bool | None
    blocking: bool


@dataclass
class DataQuality:
    landed_rows: pd.DataFrame  # source, stream, syncs, row_count
    review_queue: int | None  # uncertain pairs awaiting an analyst; None: no review file
    checks: list[CheckOutcome] = field(default_factory=list)
    published_at: dt.datetime | None = None  # when the warehouse was last published (UTC)

    def checks_failed(self) -> list[CheckOutcome]:
        return [check for check in self.checks if check.passed is False]


# A sync folder's counts are kept between reports (`landed_rows`' `counted` file) and read
# back while the folder's modification time is the one counted: pages are only ever added
# to a folder or taken out of it (written under a temporary name and renamed, or removed),
# and each moves that time. A folder changed in the last SETTLED_NS is not kept, since the
# file system's clock is coarse (two changes within one of its ticks leave one time).
SETTLED_NS = 2_000_000_000
COUNTS_VERSION = 1


def landed_rows(raw_dir: Path, counted: Path | None = None) -> pd.DataFrame:
    """Rows landed per source and stream over every sync (raw/<source>/<stream>/<sync>/page-*),
    from the Parquet footers.

    With `counted` (a file this function keeps), each sync folder's footers are read once,
    not at every report: the landing zone keeps every sync, so reading them all again grew
    with the history (at 4.3M persons after one sync, 37,046 footers: 22 s with a cold page
    cache, 3 s warm; each weekly reconciliation lands the province again)."""
    known = _read_counts(counted) if counted is not None else {}
    now = time.time_ns()
    kept: dict[str, list[int]] = {}
    rows = []
    for stream_dir in sorted(p for p in raw_dir.glob("*/*") if p.is_dir()):
        syncs = row_count = 0
        for sync_dir in sorted(p for p in stream_dir.iterdir() if p.is_dir()):
            name = f"{stream_dir.parent.name}/{stream_dir.name}/{sync_dir.name}"
            modified = sync_dir.stat().st_mtime_ns
            counts = known.get(name)
            if counts is None or counts[0] != modified:
                pages = list(sync_dir.glob("*.parquet"))
                counts = [modified, len(pages), sum(pq.ParquetFile(page).metadata.num_rows for page in pages)]
            if now - modified >= SETTLED_NS:
                kept[name] = counts
            syncs += counts[1] > 0
            row_count += counts[2]
        rows.append({"source": stream_dir.parent.name, "stream": stream_dir.name,
                     "syncs": syncs, "row_count": row_count})
    if counted is not None and kept != known:
        # not fsynced: a write lost in a crash only means the next report counts again
        write_text(counted, json.dumps({"version": COUNTS_VERSION, "folders": kept}), durable=False)
    return pd.DataFrame(rows, columns=["source", "stream", "syncs", "row_count"])


def _read_counts(path: Path) -> dict[str, list[int]]:
    """Each sync folder's [modification time, pages, rows] as the last report kept them;
    none when the file is missing, unreadable or of another version."""
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
        folders = kept["folders"] if kept.get("version") == COUNTS_VERSION else {}
    except (OSError, ValueError, AttributeError, KeyError):
        return {}
    if not isinstance(folders, dict):
        return {}
    return {name: counts for name, counts in folders.items()
            if isinstance(counts, list) and len(counts) == 3 and all(type(n) is int for n in counts)}


def review_queue_size(resolved_dir: Path) -> int | None:
    """Pairs of accounts the resolver could not decide and no analyst has decided yet."""
    path = resolved_dir / REVIEW_FILE
    if not path.exists():
        return None
    decisions = pq.read_table(path, columns=["decision"]).column("decision")
    return int(decisions.null_count)


def collect_quality(
    raw_dir: Path,
    resolved_dir: Path,
    checks: list[CheckOutcome] | None = None,
    published_at: dt.datetime | None = None,
    landed_counts: Path | None = None,
) -> DataQuality:
    """The panel's figures; `landed_counts`: where `landed_rows` keeps each sync folder's."""
    return DataQuality(
        landed_rows=landed_rows(raw_dir, landed_counts),
        review_queue=review_queue_size(resolved_dir),
        checks=list(checks or []),
        published_at=published_at,
    )
