"""How fast the officials' report renders and a certificate is issued and verified.

    .venv/bin/python bench/report.py --persons 20000 --services 200000 [--certificates 20]

Writes the synthetic resolved + staged world of tests/warehouse/world.py to a temporary
folder, publishes it to DuckDB, then times reading the report's figures from the marts,
rendering the HTML (plotly.js inlined) and writing it, and issuing and verifying
certificates (HTML only; printing a PDF is Chromium's time, not ours). Prints a Markdown
table on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.certificates import issue, verify_page
from pipelines.clock import AsOf
from pipelines.config import Settings
from pipelines.reports import write_report
from pipelines.reports.figures import read_figures
from pipelines.warehouse.publish import publish
from pipelines.warehouse.reader import read_only_engine
from tests.warehouse.world import make_world

AS_OF = dt.date(2026, 3, 1)
KEY = "bench-pii-key-of-at-least-32-bytes"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--services", type=int, default=200_000)
    parser.add_argument("--certificates", type=int, default=20)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-report-") as folder:
        data_dir = Path(folder)
        world = make_world(data_dir, persons=args.persons, services=args.services,
                           organizations=max(40, args.persons // 50), key=KEY)
        settings = Settings(data_dir=data_dir, pii_hash_key=KEY, certificate_key="bench-certificate-key-of-at-least-32-bytes")
        publish(settings, as_of=AS_OF)
        print("published", file=sys.stderr, flush=True)

        engine = read_only_engine(settings.resolved_warehouse_url)
        start = time.perf_counter()
        read_figures(engine)
        rows.append(("read the report's figures from the marts", time.perf_counter() - start, ""))
        engine.dispose()

        start = time.perf_counter()
        written = write_report(settings, as_of=AsOf.of(AS_OF), run_id="bench000")
        rows.append(("whole report: figures, quality panel, HTML, write", time.perf_counter() - start,
                     f"{written.charts} charts, {written.path.stat().st_size / 1e6:.1f} MB"))

        hashes = world.frames["resolved/volunteers"]["cert_hash"].dropna().head(args.certificates).tolist()
        start = time.perf_counter()
        issued = [issue(settings, id_hash=h, issued_on=AS_OF) for h in hashes]
        per_issue = (time.perf_counter() - start) / max(1, len(issued))
        rows.append(("issue one certificate (HTML)", per_issue, f"mean of {len(issued)}"))
        start = time.perf_counter()
        results = [verify_page(settings, i.html_path.read_text(encoding="utf-8")) for i in issued]
        per_verify = (time.perf_counter() - start) / max(1, len(results))
        assert all(r.authentic and r.warehouse_matches for r in results)
        rows.append(("verify one certificate (code, page, warehouse)", per_verify, f"mean of {len(results)}"))
    print(f"| step ({args.persons:,} persons, {args.services:,} services) | seconds | note |")
    print("| --- | ---: | --- |")
    for label, seconds, note in rows:
        print(f"| {label} | {seconds:.2f} | {note} |")


if __name__ == "__main__":
    main()
