"""The data-quality panel of the officials' report: what the sync landed, rejected, matched
and checked, and how fresh the warehouse is.

The warehouse holds the quarantine and the match methods (read with the other figures,
`pipelines/reports/figures.py`); what only the landing zone or the resolver know (rows
landed per source, the review queue) is counted here from their files' Parquet footers,
without reading the rows; the check results and the publish time come from Dagster and are
passed in by the asset. No Dagster here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

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


def landed_rows(raw_dir: Path) -> pd.DataFrame:
    """Rows landed per source and stream over every sync (raw/<source>/<stream>/<sync>/page-*),
    from the Parquet footers."""
    rows = []
    for stream_dir in sorted(p for p in raw_dir.glob("*/*") if p.is_dir()):
        pages = sorted(stream_dir.glob("*/*.parquet"))
        rows.append(
            {
                "source": stream_dir.parent.name,
                "stream": stream_dir.name,
                "syncs": len({page.parent.name for page in pages}),
                "row_count": sum(pq.ParquetFile(page).metadata.num_rows for page in pages),
            }
        )
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
) -> DataQuality:
    return DataQuality(
        landed_rows=landed_rows(raw_dir),
        review_queue=review_queue_size(resolved_dir),
        checks=list(checks or []),
        published_at=published_at,
    )
