"""The publish of a change set alone (pipelines.warehouse.publish.publish), by phase.

Replays the warehouse step of bench/sync.py's "1% changed" sync from a work folder kept with
`bench/sync.py --keep`: a DATA_DIR laid anew under <work> from KEPT/data's resolved and
staged files (after the change set; hard-linked, publish only reads them) and a copy of the
warehouse before it (KEPT/data-before-change/warehouse.duckdb), then one publish into it at
the change-set sync's date, with the phases timed by wrapping the functions publish calls:
copying the published DuckDB file, reading the previous history back, building every table
(DuckDB over Parquet), comparing each table with the last publish's file, the privacy scan,
loading the built files, swapping the file in.

With `--previous-published`, the publish of the change set starts where a nightly sync does
(pipelines/warehouse/delta.py): the DATA_DIR is first laid from KEPT/data-before-change and
published by this code, untimed, a day before `--as-of` (its files and its record kept, as
the sync before the change set leaves them), then its resolved and staged files are replaced
by KEPT/data's and the publish of the change set is timed. Without it the publish starts
from the warehouse alone, as the code before the deltas always did, and loads every table.

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
BUILD_PHASES = ("diff_table",)  # inside build_warehouse; absent from the code before the deltas


def lay_inputs(kept_data: Path, data_dir: Path) -> None:
    for folder in ("resolved", "staged"):
        shutil.rmtree(data_dir / folder, ignore_errors=True)
        subprocess.run(["cp", "-al", str(kept_data / folder), str(data_dir / folder)], check=True)


def lay_data_dir(kept: Path, data_dir: Path, previous_published: bool) -> None:
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    lay_inputs(kept / ("data-before-change" if previous_published else "data"), data_dir)
    shutil.copy(kept / "data-before-change" / "warehouse.duckdb", data_dir / "warehouse.duckdb")


def settings_for(data_dir: Path):
    from pipelines.config import Settings

    os.environ["DATA_DIR"] = str(data_dir)
    os.environ["WAREHOUSE_URL"] = f"duckdb:///{data_dir / 'warehouse.duckdb'}"
    return Settings.from_env()


def publish_previous(data_dir: Path, as_of: str) -> None:
    """The sync before the change set's publish, a day before the measured one (untimed)."""
    import datetime as dt

    from pipelines.warehouse.publish import publish

    publish(settings_for(data_dir), as_of=dt.datetime.fromisoformat(as_of) - dt.timedelta(days=1))


def measure(data_dir: Path, as_of: str) -> dict:
    from pipelines.warehouse import build as building
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
    for name in BUILD_PHASES:
        if hasattr(building, name):
            setattr(building, name, wrap(name, getattr(building, name)))
    settings = settings_for(data_dir)
    wall, cpu = time.perf_counter(), time.process_time()
    result = publishing.publish(settings, as_of=__import__("datetime").datetime.fromisoformat(as_of))
    loads = getattr(result, "loads", {})
    return {"wall_s": round(time.perf_counter() - wall, 1), "cpu_s": round(time.process_time() - cpu, 1),
            "peak_rss_mb": round(int(next(line.split()[1] for line in Path("/proc/self/status").read_text().splitlines()
                                          if line.startswith("VmHWM:"))) / 1024),
            "tables": len(result.rows), "phases": phases,
            "loads": {kind: sum(k == kind for k in loads.values()) for kind in sorted(set(loads.values()))}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kept", type=Path, required=True, help="a `bench/sync.py --keep` work folder")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--as-of", default="2026-12-05T01:00:00+08:00", help="the publish's instant")
    parser.add_argument("--previous-published", action="store_true",
                        help="publish the inputs before the change set first (untimed), as a nightly sync finds it")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--setup", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    data_dir = args.work.resolve() / "data"
    if args.setup:
        publish_previous(data_dir, args.as_of)
        return
    if args.measure:
        print(json.dumps(measure(data_dir, args.as_of)))
        return
    kept = args.kept.resolve()
    lay_data_dir(kept, data_dir, args.previous_published)
    steps = (["--setup", "--measure"] if args.previous_published else ["--measure"])
    for step in steps:
        if step == "--measure" and args.previous_published:
            lay_inputs(kept / "data", data_dir)  # the change set's resolved and staged files
        completed = subprocess.run(
            [sys.executable, __file__, step, "--kept", str(args.kept), "--work", str(args.work), "--as-of", args.as_of],
            capture_output=True, text=True, cwd=ROOT, env={**os.environ, "GX_ANALYTICS_ENABLED": "false"},
        )
        if completed.returncode:
            raise SystemExit(completed.stderr[-3000:])
    print(completed.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
