"""Staging one table alone, in full (`stage_table`) or merged after a change set (`merge_stage`):
wall, CPU and peak RSS, per phase, in a fresh process.

Input: a whole-sync folder kept by `bench/sync.py --keep` (`data-before-change/`: DATA_DIR after
the no-change rerun, with its staging and ledgers; `data/`: after the 1% change-set sync). The
measured DATA_DIR is `<work>/data`, made again before every run: `data-before-change/` hard-
linked (`cp -al`: the pipeline replaces files by rename, never in place, so the kept folder is
never written), the pages the change-set sync landed linked in beside them, and the ledger's
page paths rewritten to the copy's (the ledger names pages by absolute path). That is the
DATA_DIR the change-set sync's staged step started from.

  nice -n 10 .venv/bin/python bench/staging_step.py --kept bench/out/sync-p1000000-s7 \\
      --work /work/bench-data/staging/1m --table services --mode merge --mode full [--validate]

`--warm`: the pages' identities that a full staging (or a merge) of this code keeps are made
for the before-change pages first (not measured), as the previous staging would have left
them. `--mode merge`: the change set merged into the last staging (what the 1% rerun's staged step
does); `--mode full`: the same pages staged in full; `--compare`: after both, the staged table,
the quarantine part and the ledger of the merge and of the full staging must be equal (the
merge's outputs are kept in `<work>/merged/` for that). `--validate` also times the Great
Expectations suite over the staged table, as the asset runs it (after a merge: carried from
the last validation, whose counts are made first, unmeasured). `--profile FILE`: cProfile of
the measured call (the top functions by cumulative time printed to stderr). Results: one JSON
line per run on stdout, and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from resolve_step import Sampler, rss_mb  # noqa: E402  (one RSS sampler for the step benchmarks)

# the functions whose wall, CPU and RSS peak are reported as phases (those that exist)
PHASES = {
    "pipelines.staging.incremental": [
        "_check_previous", "_winners", "_keep_and_pick", "_restage", "_order",
        "_write_merged", "_merge_quarantine", "_count",
    ],
    "pipelines.staging.extract": ["identity_parts", "load_identities", "versions_per_sync", "landed_per_sync"],
    "pipelines.quality.gx_runner": ["validate"],
    "pipelines.staging.validation": ["validate_staged"],
}


def instrument(phases: list[dict], sampler: Sampler) -> None:
    """Wrap the PHASES functions so each call records its wall, CPU and RSS peak. A call made
    from inside another measured call is recorded too (nested: its peak is within the outer's)."""
    import importlib

    def wrap(module, name: str, function):
        def timed(*args, **kwargs):
            start = sampler.start_phase()
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                phases.append({
                    "phase": name, "wall_s": round(time.perf_counter() - wall, 2),
                    "cpu_s": round(time.process_time() - cpu, 2), "rss_start_mb": round(start),
                    "rss_peak_mb": round(max(sampler.peak, rss_mb())),
                })
        return timed

    for module_name, names in PHASES.items():
        module = importlib.import_module(module_name)
        for name in names:
            if hasattr(module, name):
                setattr(module, name, wrap(module, name, getattr(module, name)))


def summarise(phases: list[dict]) -> list[dict]:
    merged: dict[str, dict] = {}
    for p in phases:
        row = merged.setdefault(p["phase"], {"phase": p["phase"], "calls": 0, "wall_s": 0.0,
                                             "cpu_s": 0.0, "rss_peak_mb": 0})
        row["calls"] += 1
        row["wall_s"] = round(row["wall_s"] + p["wall_s"], 2)
        row["cpu_s"] = round(row["cpu_s"] + p["cpu_s"], 2)
        row["rss_peak_mb"] = max(row["rss_peak_mb"], p["rss_peak_mb"])
    return list(merged.values())


# -- the measured process ---------------------------------------------------------------------


def tallies(data_dir: Path, table: str) -> dict | None:
    """The suite's row tallies of the staged table as it is (what its staging's record keeps
    for the next merge: a record made by older code has none)."""
    from pipelines.config import Settings
    from pipelines.quality import gx_runner
    from pipelines.staging import read_staged

    frame = read_staged(Settings(data_dir=data_dir), table, columns=gx_runner.suite_columns(table))
    return gx_runner.row_tallies(gx_runner.validate(table, frame), frame)


def measure(data_dir: Path, table: str, mode: str, as_of: str, validate: bool, profile: str | None,
            carried: dict | None = None) -> dict:
    """In this (fresh) process: one staging of `table`, and the GX suite if `validate` (after a
    merge carried from `carried`, the last validation's tallies)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    from pipelines.clock import AsOf
    from pipelines.config import Settings
    from pipelines.quality import gx_runner
    from pipelines.staging import incremental, tables, validation

    sampler = Sampler()
    sampler.start()
    phases: list[dict] = []
    instrument(phases, sampler)
    settings = Settings(data_dir=data_dir)
    instant = AsOf.parse(as_of)
    if validate:
        gx_runner._validation_definition(table)  # GX's import and setup are not the work measured
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    before = rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    if mode == "merge":
        staged = incremental.merge_stage(table, settings, instant)
    else:
        staged = tables.stage_table(table, settings, instant)
    stage_wall, stage_cpu = time.perf_counter() - wall, time.process_time() - cpu
    stage_peak = rss_mb("VmHWM")
    if validate:
        # as the asset validates: after a merge, carried (pipelines/staging/validation.py)
        checked = validation.validate_staged(table, settings, staged, carried)
        failed, judged = checked.suite.failed(), checked.rows_judged
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)
    return {
        "table": table, "mode": mode, "rows": staged.rows, "quarantined": staged.quarantined,
        "restaged": staged.restaged if mode == "merge" else staged.rows + staged.quarantined,
        "incremental": staged.incremental,
        "stage_wall_s": round(stage_wall, 1), "stage_cpu_s": round(stage_cpu, 1),
        "stage_peak_rss_mb": round(stage_peak),
        "wall_s": round(time.perf_counter() - wall, 1), "cpu_s": round(time.process_time() - cpu, 1),
        "rss_after_imports_mb": round(before), "peak_rss_mb": round(rss_mb("VmHWM")),
        **({"checks_failed": failed, "gx_rows_judged": judged} if validate else {}),
        "phases": summarise(phases),
    }


# -- the DATA_DIR of the change-set sync's staged step ----------------------------------------------


def prepare(kept: Path, data: Path, warm: list[str]) -> None:
    """`data` = kept/data-before-change hard-linked, plus the change-set sync's new pages, the
    ledgers' page paths pointing into `data`. `warm`: tables whose streams' page identities
    are kept as a full staging now keeps them (pipelines/staging/extract.py
    `load_identities`), made before the new pages come (a folder kept by older code has none)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from pipelines.files import write_parquet
    from pipelines.staging.tables import LEDGER_DIR, LEDGER_SCHEMA

    shutil.rmtree(data, ignore_errors=True)
    data.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-al", str(kept / "data-before-change"), str(data)], check=True)
    if warm:
        from pipelines.config import Settings
        from pipelines.schemas import mappings_for_table
        from pipelines.staging.extract import versions_per_sync

        for table in warm:
            for mapping in mappings_for_table(table):
                versions_per_sync(mapping, Settings(data_dir=data))
    after, before = kept / "data" / "raw", kept / "data-before-change" / "raw"
    for page in after.rglob("*.parquet"):
        relative = page.relative_to(after)
        if not (before / relative).exists():
            (data / "raw" / relative).parent.mkdir(parents=True, exist_ok=True)
            os.link(page, data / "raw" / relative)
    # the ledger was written with the kept DATA_DIR's path (kept/data)
    old_prefix, new_prefix = str(kept / "data") + "/", str(data) + "/"
    for ledger in (data / "state" / LEDGER_DIR).glob("*.parquet"):
        table = pq.read_table(ledger, schema=LEDGER_SCHEMA)
        names = pc.replace_substring_regex(table["filename"], "^" + _regex_escape(old_prefix), new_prefix)
        write_parquet(ledger, table.set_column(table.schema.get_field_index("filename"), "filename", names),
                      LEDGER_SCHEMA)


def _regex_escape(text: str) -> str:
    import re

    return re.escape(text)


def compare(merged: Path, full: Path, table: str) -> dict:
    """The merge's outputs against the full staging's (one table at a time). Both ran in the same
    DATA_DIR (<work>/data; the merge's was moved aside after), so their ledgers name the same
    page paths."""
    import pyarrow.parquet as pq

    from pipelines.config import Settings
    from pipelines.staging.tables import ledger_path, quarantine_part_path, staged_path

    found = {}
    for name, where in (("staged", staged_path), ("quarantine", quarantine_part_path), ("ledger", ledger_path)):
        a, b = pq.read_table(where(Settings(data_dir=merged), table)), pq.read_table(where(Settings(data_dir=full), table))
        found[name] = bool(a.equals(b))
        del a, b
    return found


def child(args: list[str]) -> dict:
    run = subprocess.run([sys.executable, __file__, *args], cwd=ROOT, check=True, capture_output=True, text=True)
    sys.stderr.write(run.stderr[-4000:])
    return json.loads(run.stdout.strip().splitlines()[-1])


def markdown(results: list[dict]) -> str:
    lines = ["| table | mode | rows | restaged | stage wall s | stage CPU s | stage peak RSS MiB | "
             "with GX: wall s | peak RSS MiB |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['table']} | {r['mode']} | {r['rows']:,} | {r['restaged']:,} | {r['stage_wall_s']} | "
                     f"{r['stage_cpu_s']} | {r['stage_peak_rss_mb']:,} | {r['wall_s']} | {r['peak_rss_mb']:,} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kept", type=Path, help="a bench/sync.py --keep folder")
    parser.add_argument("--work", type=Path, help="where the measured DATA_DIR is made")
    parser.add_argument("--table", action="append", help="table (repeatable; default services)")
    parser.add_argument("--mode", action="append", choices=["merge", "full"], help="repeatable (default both)")
    parser.add_argument("--as-of", default=datetime.now(UTC).isoformat(timespec="seconds"))
    parser.add_argument("--validate", action="store_true", help="also run the GX suite")
    parser.add_argument("--warm", action="store_true",
                        help="the before-change pages' identities kept, as a staging by this code keeps them")
    parser.add_argument("--compare", action="store_true", help="merge and full outputs must be equal")
    parser.add_argument("--profile", type=Path, help="cProfile stats file (per run: <file>.<table>.<mode>)")
    parser.add_argument("--measure", nargs=3, metavar=("DATA", "TABLE", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--tallies", nargs=2, metavar=("DATA", "TABLE"), help=argparse.SUPPRESS)
    parser.add_argument("--carried", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--compare-only", nargs=3, metavar=("MERGED", "FULL", "TABLE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        data, table, mode = args.measure
        carried = json.loads(args.carried.read_text()) if args.carried else None
        print(json.dumps(measure(Path(data), table, mode, args.as_of, args.validate,
                                 str(args.profile) if args.profile else None, carried)))
        return 0
    if args.tallies:
        print(json.dumps(tallies(Path(args.tallies[0]), args.tallies[1])))
        return 0
    if args.compare_only:
        merged, full, table = args.compare_only
        print(json.dumps(compare(Path(merged), Path(full), table)))
        return 0
    kept, work = args.kept.resolve(), args.work.resolve()
    results = []
    for table in args.table or ["services"]:
        for mode in args.mode or ["merge", "full"]:
            data = work / "data"
            prepare(kept, data, [table] if args.warm else [])
            extra = ["--as-of", args.as_of] + (["--validate"] if args.validate else [])
            if args.profile:
                extra += ["--profile", f"{args.profile}.{table}.{mode}"]
            if args.validate and mode == "merge":
                # what the last staging's record would hold, made before the measured child
                carried = work / f"carried-{table}.json"
                carried.write_text(json.dumps(child(["--tallies", str(data), table])))
                extra += ["--carried", str(carried)]
            load = os.getloadavg()
            result = child(["--measure", str(data), table, mode, *extra])
            result["load_average"] = [round(x, 1) for x in load + os.getloadavg()]
            if args.profile:
                import pstats

                pstats.Stats(f"{args.profile}.{table}.{mode}", stream=sys.stderr).sort_stats(
                    "cumulative").print_stats(35)
            print(json.dumps(result), flush=True)
            results.append(result)
            if mode == "merge" and args.compare:
                shutil.rmtree(work / "merged", ignore_errors=True)
                data.rename(work / "merged")
        if args.compare:
            result = child(["--compare-only", str(work / "merged"), str(work / "data"), table])
            print(json.dumps({"table": table, "equal": result}), flush=True)
            if not all(result.values()):
                print(f"{table}: the merge and the full staging differ: {result}", file=sys.stderr)
                return 1
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
