"""How fast the warehouse publishes: build (DuckDB over Parquet) and load (DuckDB, PostgreSQL COPY).

    .venv/bin/python bench/publish.py --persons 20000 --services 200000 [--postgres]

Writes a synthetic resolved + staged world (tests/warehouse/world.py) to a temporary folder,
publishes it twice to each target (the second run is the idempotent rerun, with the history
read back) and prints seconds per phase and fact rows per second. PostgreSQL is the server
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

from pipelines.config import Settings  # noqa: E402
from pipelines.warehouse.build import build_warehouse  # noqa: E402
from pipelines.warehouse.inputs import InputFiles  # noqa: E402
from pipelines.warehouse.privacy_scan import ensure_no_personal_numbers  # noqa: E402
from pipelines.warehouse.publish import load_files, publish  # noqa: E402
from tests.warehouse.world import make_world  # noqa: E402

AS_OF = dt.date(2026, 3, 1)
KEY = "bench-pii-key"


def timed(label: str, fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    seconds = time.perf_counter() - start
    print(f"{label:<42} {seconds:8.2f} s")
    return value, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--services", type=int, default=200_000)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        timed("generate world", make_world, data_dir, persons=args.persons,
              organizations=max(40, args.persons // 50), services=args.services, key=KEY)
        settings = Settings(data_dir=data_dir, pii_hash_key=KEY)
        inputs = InputFiles(settings.resolved_dir, settings.staged_dir)
        built, build_s = timed("build (29 tables and marts -> Parquet)", build_warehouse,
                               inputs, data_dir / "bench-build", as_of=AS_OF)
        facts = built.rows["fact_service"]
        print(f"{'':<42} {facts / build_s:8.0f} fact rows/s")
        timed("privacy scan of the built files", ensure_no_personal_numbers, built.files)
        engine = sa.create_engine(settings.resolved_warehouse_url)
        _, load_s = timed("load DuckDB (one transaction)", load_files, engine, built.files)
        engine.dispose()
        print(f"{'':<42} {facts / load_s:8.0f} fact rows/s")
        timed("whole publish to DuckDB, rerun", publish, settings, as_of=AS_OF)

        if args.postgres:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            url = f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
            with psycopg.connect("host=127.0.0.1 dbname=test user=postgres", autocommit=True) as admin:
                admin.execute(f'CREATE SCHEMA "{schema}"')
            try:
                engine = sa.create_engine(url)
                _, load_s = timed("load PostgreSQL (COPY + swap)", load_files, engine, built.files)
                engine.dispose()
                print(f"{'':<42} {facts / load_s:8.0f} fact rows/s")
                pg_settings = Settings(data_dir=data_dir, pii_hash_key=KEY, warehouse_url=url)
                timed("whole publish to PostgreSQL, rerun", publish, pg_settings, as_of=AS_OF)
            finally:
                with psycopg.connect("host=127.0.0.1 dbname=test user=postgres", autocommit=True) as admin:
                    admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        print({name: count for name, count in built.rows.items() if not name.startswith("mart_")})


if __name__ == "__main__":
    main()
