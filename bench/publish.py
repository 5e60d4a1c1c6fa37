"""How fast the warehouse publishes: build (DuckDB over Parquet) and load (DuckDB, PostgreSQL COPY).

    .venv/bin/python bench/publish.py --persons 20000 --services 200000 [--postgres]

Writes a synthetic resolved + staged world (tests/warehouse/world.py) to a temporary folder,
publishes it twice to each target (the second run is the idempotent rerun, with the history
read back) and prints a Markdown table of seconds per phase and fact rows per second on
stdout (progress on stderr; bench/run_all.py collects stdout). PostgreSQL is the server
on 127.0.0.1:5432 (database test), in a throwaway schema.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.config import Settings
from pipelines.warehouse.build import build_warehouse
from pipelines.warehouse.inputs import InputFiles
from pipelines.warehouse.privacy_scan import ensure_no_personal_numbers
from pipelines.warehouse.publish import load_files, publish
from tests.warehouse.world import make_world

AS_OF = dt.date(2026, 3, 1)
KEY = "bench-pii-key"


def timed(phases: list[tuple[str, float, int | None]], label: str, fn, *args, facts: int | None = None, **kwargs):
    """Run fn, note (label, seconds, fact rows it handled) in phases, report progress on stderr."""
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    seconds = time.perf_counter() - start
    phases.append((label, seconds, facts))
    print(f"{label:<42} {seconds:8.2f} s", file=sys.stderr, flush=True)
    return value, seconds


def table(phases: list[tuple[str, float, int | None]]) -> str:
    lines = ["| phase | seconds | fact rows/s |", "| --- | ---: | ---: |"]
    for label, seconds, facts in phases:
        rate = f"{facts / seconds:,.0f}" if facts and seconds > 0 else ""
        lines.append(f"| {label} | {seconds:.2f} | {rate} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--services", type=int, default=200_000)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    phases: list[tuple[str, float, int | None]] = []

    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        timed(phases, "generate world (not publishing)", make_world, data_dir, persons=args.persons,
              organizations=max(40, args.persons // 50), services=args.services, key=KEY)
        settings = Settings(data_dir=data_dir, pii_hash_key=KEY)
        inputs = InputFiles(settings.resolved_dir, settings.staged_dir)
        started = time.perf_counter()
        built = build_warehouse(inputs, data_dir / "bench-build", as_of=AS_OF, name_key=KEY)
        build_s = time.perf_counter() - started
        facts = built.rows["fact_service"]
        phases.append(("build (29 tables and marts -> Parquet)", build_s, facts))
        print(f"{'build':<42} {build_s:8.2f} s", file=sys.stderr, flush=True)
        timed(phases, "privacy scan of the built files", ensure_no_personal_numbers, built.files)
        engine = sa.create_engine(settings.resolved_warehouse_url)
        timed(phases, "load DuckDB (one transaction)", load_files, engine, built.files, facts=facts)
        engine.dispose()
        timed(phases, "whole publish to DuckDB, rerun", publish, settings, as_of=AS_OF, facts=facts)

        if args.postgres:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            url = f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
            with psycopg.connect("host=127.0.0.1 dbname=test user=postgres", autocommit=True) as admin:
                admin.execute(f'CREATE SCHEMA "{schema}"')
            try:
                engine = sa.create_engine(url)
                timed(phases, "load PostgreSQL (COPY + swap)", load_files, engine, built.files, facts=facts)
                engine.dispose()
                pg_settings = Settings(data_dir=data_dir, pii_hash_key=KEY, warehouse_url=url)
                timed(phases, "whole publish to PostgreSQL, rerun", publish, pg_settings, as_of=AS_OF,
                      facts=facts)
            finally:
                with psycopg.connect("host=127.0.0.1 dbname=test user=postgres", autocommit=True) as admin:
                    admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        counts = ", ".join(f"{name} {count:,}" for name, count in built.rows.items() if not name.startswith("mart_"))
        print(f"Publishing a synthetic world of {args.persons:,} persons and {facts:,} service facts "
              f"(tests/warehouse/world.py); PostgreSQL {'included' if args.postgres else 'not run'}.\n")
        print(table(phases))
        print(f"\nRows built: {counts}.")


if __name__ == "__main__":
    main()
