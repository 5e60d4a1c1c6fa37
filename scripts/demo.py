"""`make demo`: start both sandbox servers, run `sync_all` into the default warehouse, report.

The pipeline meets the sandbox only over HTTP, as it will meet the real systems: this
script starts `python -m sandbox serve` as a separate process and runs the contract's
sync command (`dagster job execute -m pipelines.definitions -j sync_all`) against it.
The run is recorded in `.dagster_home`, so `make dev` shows it in the dashboard afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NATIONAL_PORT, PROVINCIAL_PORT = 8601, 8602


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for_ports(server: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the sandbox servers exited early (code {server.returncode})")
        if port_open(NATIONAL_PORT) and port_open(PROVINCIAL_PORT):
            return
        time.sleep(0.5)
    server.terminate()
    sys.exit(f"the sandbox servers did not answer within {timeout_s:.0f} s")


def landed_rows(data_dir: Path) -> list[tuple[str, str, int]]:
    """Rows landed per source and stream, read back from the raw Parquet pages."""
    import duckdb

    counts = []
    raw = data_dir / "raw"
    for stream_dir in sorted(p for p in raw.glob("*/*") if p.is_dir()):
        files = list(stream_dir.glob("*/*.parquet"))
        n = 0
        if files:
            n = duckdb.sql(f"select count(*) from read_parquet('{stream_dir}/*/*.parquet')").fetchall()[0][0]
        counts.append((stream_dir.parent.name, stream_dir.name, n))
    return counts


def warehouse_rows(warehouse: Path) -> list[tuple[str, int]]:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = [r[0] for r in con.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'main' order by table_name").fetchall()]
        return [(t, con.execute(f'select count(*) from "{t}"').fetchone()[0]) for t in tables]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    data_dir = ROOT / "data"
    world_dir = data_dir / "sandbox" / f"world-p{args.persons}-s{args.seed}"
    dagster_home = ROOT / ".dagster_home"
    dagster_home.mkdir(exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")

    for port in (NATIONAL_PORT, PROVINCIAL_PORT):
        if port_open(port):
            sys.exit(f"port {port} is already in use: stop whatever serves it and run again")

    print(f"starting the sandbox servers ({args.persons} persons, seed {args.seed}) ...", flush=True)
    server = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--persons", str(args.persons),
         "--seed", str(args.seed), "--world", str(world_dir),
         "--national-port", str(NATIONAL_PORT), "--provincial-port", str(PROVINCIAL_PORT)],
        cwd=ROOT,
    )
    try:
        wait_for_ports(server, timeout_s=600)
        env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "DATA_DIR": str(data_dir)}
        print("running sync_all ...", flush=True)
        started = time.monotonic()
        sync = subprocess.run(
            [sys.executable, "-m", "dagster", "job", "execute",
             "-m", "pipelines.definitions", "-j", "sync_all"],
            cwd=ROOT, env=env,
        )
        elapsed = time.monotonic() - started
    finally:
        server.terminate()
        server.wait(timeout=30)
        print("sandbox servers stopped", flush=True)
    if sync.returncode != 0:
        sys.exit(f"sync_all failed (exit {sync.returncode}); the run's logs are in the dashboard: make dev")

    warehouse = data_dir / "warehouse.duckdb"
    print(f"\nsync_all finished in {elapsed:.0f} s\n")
    print("rows landed (all syncs so far), per source and stream:")
    for source, stream, n in landed_rows(data_dir):
        print(f"  {source:<11} {stream:<16} {n:>9,}")
    print(f"\nwarehouse: {warehouse}")
    for table, n in warehouse_rows(warehouse):
        print(f"  {table:<40} {n:>9,}")
    reports = sorted((data_dir / "reports").glob("statistics-*.html"))
    if reports:
        print(f"\nthe officials' report (open in a browser, no network needed): {reports[-1]}")
    print("\nthe dashboard: make dev, then open http://127.0.0.1:3000 (runs, checks, figures)")
    print(f"query the warehouse: .venv/bin/python -c \"import duckdb; "
          f"print(duckdb.connect('{warehouse}', read_only=True).sql('from dim_region limit 5'))\"")


if __name__ == "__main__":
    main()
