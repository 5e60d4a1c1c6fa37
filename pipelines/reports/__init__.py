"""The officials' statistics report: figures read from the marts (`figures.py`), the
data-quality panel (`quality.py`), one self-contained HTML file (`render.py`).

`write_report` is what the Dagster asset (assets/reports.py) calls once per sync: it keeps
every sync's report under `DATA_DIR/reports/`, named by the sync's instant and run, so a
past figure can always be shown as it was published.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines.clock import AsOf
from pipelines.config import Settings
from pipelines.files import atomic_path
from pipelines.reports.quality import CheckOutcome, collect_quality

REPORT_PREFIX = "statistics-"
LANDED_COUNTS_FILE = "landed_rows.json"  # under DATA_DIR/state/reports (quality.landed_rows)


@dataclass(frozen=True)
class WrittenReport:
    path: Path
    charts: int
    key_figures: dict[str, float | int | None]
    summary_markdown: str  # the headline figures, labelled in Chinese


def report_path(settings: Settings, as_of: AsOf, run_id: str) -> Path:
    """One file per sync: the sync's Beijing instant, then the run's id (two runs as of the
    same instant, a replay and the original, keep both)."""
    return settings.reports_dir / f"{REPORT_PREFIX}{as_of.instant:%Y%m%dT%H%M%S}-{run_id[:8]}.html"


def report_link(settings: Settings, path: Path) -> str:
    """Where an official's browser opens the report: under REPORTS_URL (DATA_DIR/reports/ as
    the reverse proxy serves it), else the file on this host. A browser refuses to follow a
    file:// link from the Dagster UI's http page ("Not allowed to load local resource"), and
    on another machine it would name that machine's disk: without REPORTS_URL the link is
    for whoever fetches the file from the server by its `path`."""
    from urllib.parse import quote

    if settings.reports_url:
        return f"{settings.reports_url}/{quote(path.name)}"
    return path.resolve().as_uri()


def write_report(
    settings: Settings,
    *,
    as_of: AsOf,
    run_id: str,
    schema: str | None = None,
    checks: list[CheckOutcome] | None = None,
    published_at=None,
) -> WrittenReport:
    """Read the warehouse, render the report and write it (atomically) under DATA_DIR/reports."""
    from pipelines.reports.figures import read_figures
    from pipelines.reports.render import key_figures_markdown, render_report
    from pipelines.warehouse.reader import read_only_engine

    engine = read_only_engine(settings.resolved_warehouse_url)
    try:
        figures = read_figures(engine, schema)
    finally:
        engine.dispose()
    quality = collect_quality(settings.raw_dir, settings.resolved_dir, checks, published_at,
                              landed_counts=settings.state_dir / "reports" / LANDED_COUNTS_FILE)
    page = render_report(figures, quality, as_of=as_of)
    path = report_path(settings, as_of, run_id)
    with atomic_path(path) as temp:
        temp.write_text(page, encoding="utf-8")
    return WrittenReport(
        path=path, charts=page.count('<figure class="chart">'), key_figures=figures.key_figures(),
        summary_markdown=key_figures_markdown(figures),
    )
