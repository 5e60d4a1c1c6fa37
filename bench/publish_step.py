"""The publish of a change set alone (pipelines.warehouse.publish.publish), by phase.

Replays the warehouse step of bench/sync.py's "1% changed" sync from a work folder kept with
`bench/sync.py --keep`: a DATA_DIR laid anew under <work> from KEPT/data's resolved and
staged files (after the change set; hard-linked, publish only reads them) and a copy of the
warehouse before it (KEPT/data-before-change/warehouse.duckdb), then one publish into it at
the change-set sync's date, with the phases timed by wrapping the functions publish calls:
copying the published DuckDB file, reading the previous history back, building every table
(DuckDB over Parquet), the privacy scan, loading the built files, swapping the file in.

  .venv/bin/python bench/publish_step.py --kept bench/out/sync-p1000000-s7 --work /tmp/publish-1m

One JSON line on stdout (wall and CPU per phase, the process's peak RSS).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PHASES = ("copy_published_duckdb", "read_previous_history", "build_warehouse", "ensure_no_personal_numbers",
          "load_files", "swap_in_duckdb")


def lay_data_dir(kept: Path, data_dir: Path) -> None:
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    for folder in ("resolved", "staged"):
        subprocess.run(["cp", "-al", str(kept / "data" / folder), str(data_dir / folder)], check=True)
    shutil.copy(kept / "data-before-change" / "warehouse.duckdb", data_dir / "warehouse.duckdb")


def measure(data_dir: Path, as_of: str) -> dict:
    from pipelines.config import Settings
    from pipelines.warehouse import publish as publishing

    phases: dict[str, dict] = {}

    def wrap(name, function):
        def timed(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                row = phases.setdefault(name, {"calls": 0, "wall_s": 0.0, "cpu_s": 0.0})
                row["calls"] += 1
                row["wall_s"] = round(row["wall_s"] + time.perf_counter() - wall, 2)
                row["cpu_s"] = round(row["cpu_s"] + time.process_time() - cpu, 2)
        return timed

    for name in PHASES:
        setattr(publishing, name, wrap(name, getattr(publishing, name)))
    os.environ["DATA_DIR"] = str(data_dir)
    os.environ["WAREHOUSE_URL"] = f"duckdb:///{data_dir / 'warehouse.duckdb'}"
    settings = Settings.from_env()
    wall, cpu = time.perf_counter(), time.process_time()
    result = publishing.publish(settings, as_of=__import__("datetime").datetime.fromisoformat(as_of))
    return {"wall_s": round(time.perf_counter() - wall, 1), "cpu_s": round(time.process_time() - cpu, 1),
            "peak_rss_mb": round(int(next(line.split()[1] for line in Path("/proc/self/status").read_text().splitlines()
                                          if line.startswith("VmHWM:"))) / 1024),
            "tables": len(result.rows), "phases": phases}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kept", type=Path, required=True, help="a `bench/sync.py --keep` work folder")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--as-of", default="2026-12-05T01:00:00+08:00", help="the publish's instant")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    data_dir = args.work.resolve() / "data"
    if args.measure:
        print(json.dumps(measure(data_dir, args.as_of)))
        return
    lay_data_dir(args.kept.resolve(), data_dir)
    completed = subprocess.run(
        [sys.executable, __file__, "--measure", "--kept", str(args.kept), "--work", str(args.work), "--as-of", args.as_of],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "GX_ANALYTICS_ENABLED": "false"},
    )
    if completed.returncode:
        raise SystemExit(completed.stderr[-3000:])
    print(completed.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
