"""What a rerun costs next to a full sync: no change at the sources, then a change set.

    .venv/bin/python bench/incremental.py --persons 20000 [--persons 100000] [--changesets 1] [--out DIR]

For each size: a world (generated once into bench/out/, copied so the change sets leave it
as it was), both sandbox servers in this process, and the contract's sync command
(`dagster job execute -m pipelines.definitions -j sync_all`) into a fresh DATA_DIR with the
default DuckDB warehouse:

1. full: the first sync;
2. no change: again, nothing changed at the sources;
3. change set: after `--changesets` change sets (sandbox/changes.py);
4. change set, reuse off: the same sync from a copy of DATA_DIR taken before 3, with
   `pipeline_settings.reuse_unchanged: false` (every step runs); the two warehouses are
   compared table by table (content hashes).

`--code DIR` runs the sync command from another checkout (an earlier commit, for "before";
step 4 is skipped where that code has no reuse).

Per run: wall time of the command and the time of each step from the run's step events
(process start-up included), the rows landed. Markdown on stdout, JSON in OUT.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox import Faults, SandboxServers, generate_world  # noqa: E402

REUSE_OFF = "resources:\n  pipeline_settings:\n    config:\n      reuse_unchanged: false\n"


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def world_for(persons: int, seed: int, out: Path) -> Path:
    kept = out / f"world-p{persons}-s{seed}"
    if not (kept / "world.json").exists():
        progress(f"generating a world of {persons:,} persons ...")
        generate_world(kept, persons=persons, seed=seed)
    return kept


def step_seconds(dagster_home: Path, run_id: str) -> dict[str, float]:
    """Seconds of each step of the run, from its STEP_START and STEP_SUCCESS/FAILURE events."""
    from dagster import DagsterEventType, DagsterInstance

    instance = DagsterInstance.from_config(str(dagster_home))
    try:
        started, ended = {}, {}
        for entry in instance.all_logs(run_id):
            event = entry.dagster_event
            if event is None or not entry.step_key:
                continue
            if event.event_type == DagsterEventType.STEP_START:
                started[entry.step_key] = entry.timestamp
            elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                ended[entry.step_key] = entry.timestamp
        return {step: round(ended[step] - started[step], 2) for step in sorted(started) if step in ended}
    finally:
        instance.dispose()


def latest_run_id(dagster_home: Path) -> str:
    from dagster import DagsterInstance

    instance = DagsterInstance.from_config(str(dagster_home))
    try:
        return instance.get_runs(limit=1)[0].run_id
    finally:
        instance.dispose()


def landed_rows(data_dir: Path) -> int:
    import duckdb

    pages = data_dir / "raw"
    if not any(pages.glob("*/*/*/*.parquet")):
        return 0
    return duckdb.sql(f"select count(*) from read_parquet('{pages}/*/*/*/*.parquet')").fetchall()[0][0]


def sync(servers: SandboxServers, data_dir: Path, dagster_home: Path, reuse: bool, code: Path = ROOT) -> dict:
    env = {**os.environ, **servers.env(), "DATA_DIR": str(data_dir), "DAGSTER_HOME": str(dagster_home)}
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    command = [sys.executable, "-m", "dagster", "job", "execute", "-m", "pipelines.definitions", "-j", "sync_all"]
    if not reuse:
        config = dagster_home / "reuse_off.yaml"
        config.write_text(REUSE_OFF)
        command += ["-c", str(config)]
    rows_before = landed_rows(data_dir)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=code, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"sync_all failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    steps = step_seconds(dagster_home, latest_run_id(dagster_home))
    return {"seconds": round(seconds, 2), "steps": steps,
            "rows_landed": landed_rows(data_dir) - rows_before, "rows_total": landed_rows(data_dir)}


def warehouse_hashes(path: Path) -> dict[str, str]:
    """A content hash per table of a DuckDB warehouse: its rows, sorted, as text."""
    import duckdb

    hashes = {}
    with duckdb.connect(str(path), read_only=True) as con:
        tables = [r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'main'").fetchall()]
        for table in sorted(tables):
            rows = sorted(repr(row) for row in con.execute(f'select * from "{table}"').fetchall())
            hashes[table] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return hashes


def grouped(steps: dict[str, float]) -> dict[str, float]:
    """Step seconds by layer: raw (the sum of the stream steps), staged, resolved, publish."""
    layers = {"raw": 0.0, "staged": 0.0, "resolved": 0.0, "publish": 0.0}
    for step, seconds in steps.items():
        if step.startswith("raw"):
            layers["raw"] += seconds
        elif step.startswith("staged"):
            layers["staged"] += seconds
        elif step.startswith("resolved"):
            layers["resolved"] += seconds
        elif "publish" in step:
            layers["publish"] += seconds
    return {k: round(v, 2) for k, v in layers.items()}


def measure(persons: int, seed: int, changesets: int, out: Path, code: Path, compare: bool = True) -> dict:
    # code from before pipelines/reuse.py knows no `reuse_unchanged`: no rebuild to compare
    compare = compare and (code / "pipelines" / "reuse.py").exists()
    with tempfile.TemporaryDirectory(prefix=f"incr-{persons}-", dir=out) as work:
        work = Path(work)
        world = work / "world"
        shutil.copytree(world_for(persons, seed, out), world)
        runs = {}
        with SandboxServers(world, faults=Faults(retry_after=0)) as servers:
            data, home = work / "data", work / "home"
            for label in ("full", "no change"):
                progress(f"{persons:,} persons: {label} ...")
                runs[label] = sync(servers, data, home, True, code)
                progress(f"  {runs[label]['seconds']} s {grouped(runs[label]['steps'])}")
            changed = {}
            for n in range(changesets):
                for name, count in servers.apply_changeset(seed=100 + n).items():
                    changed[name] = changed.get(name, 0) + count
            if compare:
                shutil.copytree(data, work / "data_off")
                shutil.copytree(home, work / "home_off")
            progress(f"{persons:,} persons: change set {changed} ...")
            runs["change set"] = sync(servers, data, home, True, code)
            progress(f"  {runs['change set']['seconds']} s {grouped(runs['change set']['steps'])}")
            if compare:
                runs["change set, reuse off"] = sync(servers, work / "data_off", work / "home_off", False, code)
                progress(f"  reuse off: {runs['change set, reuse off']['seconds']} s")
        differing, compared = [], 0
        if compare:
            reused = warehouse_hashes(data / "warehouse.duckdb")
            rebuilt = warehouse_hashes(work / "data_off" / "warehouse.duckdb")
            differing = sorted(t for t in reused.keys() | rebuilt.keys() if reused.get(t) != rebuilt.get(t))
            compared = len(reused)
    return {"persons": persons, "seed": seed, "changesets": changesets, "changed": changed, "code": str(code),
            "runs": runs, "tables_compared": compared, "tables_differing": differing}


def markdown(results: list[dict]) -> str:
    lines = [
        "| persons | run | rows landed | wall (s) | of full | raw steps (s) | staged (s) | resolved (s) | publish (s) |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        full = result["runs"]["full"]["seconds"]
        for label, run in result["runs"].items():
            layers = grouped(run["steps"])
            share = f"{run['seconds'] / full:.0%}" if label != "full" else ""
            lines.append(
                f"| {result['persons']:,} | {label} | {run['rows_landed']:,} | {run['seconds']:.1f} | {share} | "
                f"{layers['raw']:.1f} | {layers['staged']:.1f} | {layers['resolved']:.1f} | {layers['publish']:.1f} |"
            )
    for result in results:
        change = result["runs"]["change set"]
        share = change["rows_landed"] / max(1, change["rows_total"] - change["rows_landed"])
        lines.append("")
        compared = (
            f"; warehouses after the change set, reused vs rebuilt: "
            f"{result['tables_compared'] - len(result['tables_differing'])} of {result['tables_compared']} tables equal"
            + (f" (differ: {', '.join(result['tables_differing'])})" if result["tables_differing"] else "")
        ) if result["tables_compared"] else ""
        lines.append(
            f"{result['persons']:,} persons: {result['changesets']} change set(s), {change['rows_landed']:,} rows "
            f"landed ({share:.2%} of the landed rows){compared}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, action="append")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--changesets", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--code", type=Path, default=ROOT,
                        help="run the sync command from this checkout (e.g. `git worktree add` of an "
                             "earlier commit, to measure before and after)")
    parser.add_argument("--label", default="incremental", help="name of the JSON result in OUT")
    parser.add_argument("--no-rebuild", action="store_true", help="skip step 4 (the rebuild and the comparison)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = [measure(p, args.seed, args.changesets, args.out, args.code.resolve(), not args.no_rebuild)
               for p in args.persons or [20_000]]
    (args.out / f"{args.label}.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(markdown(results))


if __name__ == "__main__":
    main()
