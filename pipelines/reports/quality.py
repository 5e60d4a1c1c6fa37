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
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from pipelines.landing import tally_sync_folders

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


def landed_rows(raw_dir: Path, counted: Path | None = None) -> pd.DataFrame:
    """Rows landed per source and stream over every sync (raw/<source>/<stream>/<sync>/page-*),
    from the Parquet footers.

    With `counted` (a file this function keeps), each sync folder's footers are read once,
    not at every report (`landing.tally_sync_folders`): the landing zone keeps every sync, so
    reading them all again grew with the history (at 4.3M persons after one sync, 37,046
    footers: 22 s with a cold page cache, 3 s warm; each weekly reconciliation lands the
    province again)."""
    def pages_and_rows(pages: list[Path]) -> list[int]:
        return [len(pages), sum(pq.ParquetFile(page).metadata.num_rows for page in pages)]

    tallies = tally_sync_folders(raw_dir, pages_and_rows, 2, counted)
    rows = [{"source": source, "stream": stream,
             "syncs": sum(pages > 0 for pages, _ in syncs.values()),
             "row_count": sum(landed for _, landed in syncs.values())}
            for (source, stream), syncs in tallies.items()]
    return pd.DataFrame(rows, columns=["source", "stream", "syncs", "row_count"])


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
