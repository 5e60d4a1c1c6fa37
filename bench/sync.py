"""Whole-sync benchmark: the contract's `sync_all`, through Dagster, against sandbox worlds.

    .venv/bin/python bench/sync.py --persons 100000 --persons 1000000 [--persons 4300000]
    .venv/bin/python bench/sync.py --persons 1000000 --profile     # + pyinstrument profile

For each world size (generated once, kept under bench/out/, then copied so that the change
set leaves the kept world as it was), with both sandbox servers in their own process:

1. `full`: `dagster job execute -m pipelines.definitions -j sync_all` from an empty
   DATA_DIR and DAGSTER_HOME into a DuckDB warehouse, exactly as an operator runs it;
2. the floors, in the same run, against the same servers and files: a bare reader that
   fetches the same pages and throws them away (bench/pull.py's `bare` pass), and DuckDB
   reading every landed Parquet page and writing one table per stream (no processing);
3. `rerun, no change`: the same command again, nothing changed at the sources;
4. `rerun, 1% changed`: a change set (sandbox/changes.py: edits, additions, deletions) plus
   re-stamped rows so that 1% of every stream's rows come again, then the same command;
5. with `--reconcile`, `full reconciliation`: then `-j full_reconciliation`, the weekly job
   (every stream walked again from its start).

Each sync is timed on the wall clock from the command's start to its exit; per stage
(raw, staged, resolved, warehouse; `other`: the review workbook and the report) from the
Dagster instance's step records (the time during which one of the stage's steps ran,
overlapping steps counted once); peak memory is the largest sum of the resident
set sizes of the whole process tree (the CLI, the executor, its step processes), sampled
every 0.25 s from /proc; the sandbox servers' memory is reported apart. Results go to
<out>/sync.json and <out>/sync.md (and stdout); progress to stderr.

`--py-spy` records the timed full sync of the largest size itself with py-spy (`bench` extra):
every process of the tree sampled as it runs, 25 times a second (a few percent of overhead;
py-spy's own memory is left out of the peak), into <out>/sync-pyspy-p<N>.txt, folded by
bench/pyspy_summary.py into <out>/sync-pyspy-p<N>.md: each stage's share and, inside it,
the functions that held the CPU. The way to profile a size too large to sync twice.
`--py-spy-change` records the 1% change-set rerun instead (<out>/sync-pyspy-p<N>-change.*):
where a nightly sync's time goes.

`--replay KEPT` runs only the change-set sync of a folder kept by `--keep`, again, as it first
ran (DATA_DIR and DAGSTER_HOME put back as they were before it; the changed world served): a
change to the code compared with the code before it in minutes, not a world and a full sync
each time. The copies before the change set must be this code's: staging and resolution
redo in full what other code made. `--rebase` first makes them so, with a no-change sync
against the world as it was before the change set (`<out>/world-p<N>-s<seed>`); give each
version of the code a copy of the kept folder of its own (`cp -a`), rebase each once, then
alternate the replays. With `--py-spy-change`, the replay is recorded.

`--profile` instead runs the same full sync once more, in one process (`execute_in_process`,
so one profiler sees every step) under pyinstrument, at the largest size, and
writes <out>/sync-profile-p<N>.txt: where the time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from pull import ensure_world, serving  # noqa: E402
from pyspy_summary import summarize  # noqa: E402

STAGES = ("raw", "staged", "resolved", "warehouse")
CHANGED_SHARE = 0.01  # the "1% change set": share of every stream's rows that come again
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
SAMPLE_SECONDS = 0.25
# what --keep copies before the change set, and how: DATA_DIR hard-linked (the pipeline replaces
# its files by rename, never in place), DAGSTER_HOME copied (SQLite writes in place)
KEPT_COPIES = (("data", "-al"), ("dagster_home", "-a"))
PY_SPY_RATE = 25  # samples a second: enough for a sync of minutes, little overhead


# -- memory of a process tree ------------------------------------------------------------


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                # the command name is in parentheses and may hold spaces: split after it
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * PAGE_SIZE
    except OSError:
        return 0


def tree_rss(root: int, count_root: bool = True) -> int:
    """Resident bytes of `root` and every process under it, now."""
    children = _children_by_parent()
    total, stack = 0, [root] if count_root else list(children.get(root, ()))
    while stack:
        pid = stack.pop()
        total += _rss_bytes(pid)
        stack.extend(children.get(pid, ()))
    return total


class PeakSampler:
    """Samples the resident memory of a process tree in a thread; keeps the peak."""

    def __init__(self, pid: int, count_root: bool = True) -> None:
        self.pid, self.count_root, self.peak = pid, count_root, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(self.pid, self.count_root))
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def mib(n_bytes: int) -> int:
    return round(n_bytes / 2**20)


# -- one sync through Dagster --------------------------------------------------------------


def sync_env(work: Path, urls: tuple[str, str]) -> dict[str, str]:
    data_dir = work / "data"
    return {
        **os.environ,
        "GX_ANALYTICS_ENABLED": "false",
        "NATIONAL_API_URL": urls[0],
        "PROVINCIAL_API_URL": urls[1],
        "DATA_DIR": str(data_dir),
        "WAREHOUSE_URL": f"duckdb:///{data_dir / 'warehouse.duckdb'}",
        "DAGSTER_HOME": str(work / "dagster_home"),
    }


def stage_of(step_key: str) -> str:
    for stage in STAGES:
        if step_key.startswith(stage):
            return stage
    return "other"


def covered_seconds(spans: list[tuple[float, float]]) -> float:
    """Seconds covered by the union of (start, end) spans: overlapping steps (raw steps run
    side by side) count once, and a stage whose steps are apart (the review workbook before
    the publish, the report after it) does not count the time between them."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def stage_times(dagster_home: Path, run_id: str) -> dict[str, float]:
    """Per stage: seconds during which at least one of its steps ran."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        spans: dict[str, list[tuple[float, float]]] = {}
        for step in instance.get_run_step_stats(run_id):
            if step.start_time is None or step.end_time is None:
                continue
            spans.setdefault(stage_of(step.step_key), []).append((step.start_time, step.end_time))
    return {stage: round(covered_seconds(stage_spans), 2) for stage, stage_spans in spans.items()}


def latest_run_id(dagster_home: Path) -> str:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        return instance.get_runs(limit=1)[0].run_id


def parquet_rows(folder: Path, newer_than: float = 0.0) -> int:
    """Rows in the Parquet files under `folder` (only files written after `newer_than`)."""
    import pyarrow.parquet as pq

    total = 0
    for path in folder.rglob("*.parquet"):
        if path.stat().st_mtime > newer_than:
            total += pq.ParquetFile(path).metadata.num_rows
    return total


def staged_rows(staged_dir: Path) -> int:
    """Rows of the staged tables (not the quarantine, nor the prefecture parts)."""
    import pyarrow.parquet as pq

    return sum(
        pq.ParquetFile(path).metadata.num_rows
        for path in staged_dir.glob("*.parquet") if path.name != "quarantine.parquet"
    )


def warehouse_rows(data_dir: Path) -> int:
    import duckdb

    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_type = 'BASE TABLE'"
        ).fetchall()
        return sum(
            con.execute(f'select count(*) from "{schema}"."{name}"').fetchone()[0]
            for schema, name in tables
        )


def run_sync(work: Path, urls: tuple[str, str], label: str, py_spy: Path | None = None,
             job: str = "sync_all") -> dict:
    """One `job` (`sync_all`) as an operator runs it; `py_spy`: recorded by py-spy into that file."""
    env = sync_env(work, urls)
    home = work / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    data_dir = work / "data"
    began_at = time.time()
    print(f"[{label}] {job} ...", file=sys.stderr, flush=True)
    began, cpu_before = time.perf_counter(), children_cpu()
    log = open(work / f"{label.replace(' ', '_').replace(',', '').replace('%', 'pct')}.log", "w")
    command = [sys.executable, "-m", "dagster", "job", "execute",
               "-m", "pipelines.definitions", "-j", job]
    if py_spy is not None:
        command = [str(Path(sys.executable).with_name("py-spy")), "record", "--subprocesses",
                   "--function", "--format", "raw", "--rate", str(PY_SPY_RATE),
                   "-o", str(py_spy), "--", *command]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    with PeakSampler(process.pid, count_root=py_spy is None) as sampler:
        returncode = process.wait()
    seconds = time.perf_counter() - began
    cpu_seconds = children_cpu() - cpu_before
    log.close()
    if returncode != 0:
        raise RuntimeError(f"{job} failed ({returncode}): see {log.name}")
    run_id = latest_run_id(home)
    landed = parquet_rows(data_dir / "raw", newer_than=began_at)
    outcome = {
        "run": label,
        "seconds": round(seconds, 1),
        # CPU of the whole tree (every process waits for its children): steadier than the
        # wall clock on a shared machine
        "cpu_seconds": round(cpu_seconds, 1),
        "stages": stage_times(home, run_id),
        "rows_landed": landed,
        "rows_staged": staged_rows(data_dir / "staged"),
        "rows_published": warehouse_rows(data_dir),
        "peak_rss_mib": mib(sampler.peak),
    }
    if py_spy is not None:
        outcome["py_spy"] = str(summarize(py_spy))
    print(f"[{label}] {json.dumps(outcome)}", file=sys.stderr, flush=True)
    return outcome


# -- the floors ----------------------------------------------------------------------------


def bare_reader_floor(urls: tuple[str, str]) -> dict:
    """bench/pull.py's bare reader: the same pages fetched and thrown away."""
    with tempfile.TemporaryDirectory(prefix="sync-bare-") as scratch:
        child = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "pull.py"), "--child", "bare", *urls, scratch],
            cwd=ROOT, check=True, capture_output=True, text=True,
        )
    outcome = json.loads(child.stdout.strip().splitlines()[-1])
    return {"seconds": outcome["seconds"], "rows": outcome["rows"],
            "peak_rss_mib": outcome["peak_rss_mb"], "cpu_seconds": outcome["cpu_seconds"]}


DUCKDB_FLOOR = """
import json, resource, sys, time
from pathlib import Path
import duckdb
raw, target = Path(sys.argv[1]), sys.argv[2]
began = time.perf_counter()
rows = 0
with duckdb.connect(target) as con:
    for stream in sorted(p for p in raw.glob("*/*") if p.is_dir()):
        name = f"{stream.parent.name}_{stream.name}"
        con.execute(
            f"create table {name} as select * from read_parquet('{stream}/**/*.parquet', union_by_name=true)"
        )
        rows += con.execute(f"select count(*) from {name}").fetchone()[0]
seconds = time.perf_counter() - began
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": round(seconds, 2), "rows": rows, "peak_rss_mib": usage.ru_maxrss // 1024,
                  "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2)}))
"""


def duckdb_floor(data_dir: Path) -> dict:
    """DuckDB reads every landed page and writes one table per stream, nothing else."""
    with tempfile.TemporaryDirectory(prefix="sync-duckdb-", dir=data_dir.parent) as scratch:
        child = subprocess.run(
            [sys.executable, "-c", DUCKDB_FLOOR, str(data_dir / "raw"),
             str(Path(scratch) / "floor.duckdb")],
            cwd=ROOT, check=True, capture_output=True, text=True,
        )
    return json.loads(child.stdout.strip().splitlines()[-1])


# -- the change set --------------------------------------------------------------------------


CHANGE_ONE_PERCENT = """
import json, sys, sqlite3
import numpy as np
from sandbox.changes import apply_changeset, touch_rows
from sandbox.world_db import STREAMS, connect
world, share = sys.argv[1], float(sys.argv[2])
counts = apply_changeset(world, seed=1)
rng = np.random.default_rng(2026)
touched = {}
for source, streams in STREAMS.items():
    conn = connect(world, source)
    for stream in streams:
        rows = conn.execute(f"select count(*) from {stream}").fetchone()[0]
        touched[f"{source}.{stream}"] = len(touch_rows(conn, source, stream, round(rows * share), rng))
    conn.close()
print(json.dumps({"changeset": counts, "touched": touched}))
"""


def change_one_percent(world: Path) -> dict:
    """The change set and the touched rows, made in the world's databases; with the seconds
    it took (the sandbox's work, not the pipeline's: at 4.3M persons it is minutes)."""
    began = time.perf_counter()
    child = subprocess.run(
        [sys.executable, "-c", CHANGE_ONE_PERCENT, str(world), str(CHANGED_SHARE)],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    made = json.loads(child.stdout.strip().splitlines()[-1])
    return {**made, "seconds": round(time.perf_counter() - began, 1)}


# -- one world size --------------------------------------------------------------------------


def bench_size(persons: int, seed: int, out: Path, profile: bool, save, keep: bool = False,
               py_spy: str | None = None, reconcile: bool = False) -> dict:
    """One size's runs; `save(result)` after each, so a long run stopped keeps its part.
    `keep`: leave the work folder, with copies taken before the change set (`data-before-change/`
    hard-linked: the pipeline replaces its files by rename, never in place;
    `dagster_home-before-change/` copied: SQLite writes in place) and the changed `world/`, to
    replay the change-set sync. `py_spy`: which run py-spy records ("full" or "change").
    `reconcile`: a `full_reconciliation` last."""
    began = time.perf_counter()
    kept = ensure_world(persons, seed, out)
    generated = round(time.perf_counter() - began, 1)
    work = out / f"sync-p{persons}-s{seed}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    world = work / "world"
    shutil.copytree(kept, world)
    result: dict = {"persons": persons, "world_seconds": generated, "runs": []}
    with serving(world) as (server, urls):
        with PeakSampler(server.pid) as server_memory:
            recording = out / f"sync-pyspy-p{persons}.txt" if py_spy == "full" else None
            result["runs"].append(run_sync(work, urls, "full", recording))
            save(result)
            result["floors"] = {
                "bare_reader": bare_reader_floor(urls),
                "duckdb_copy": duckdb_floor(work / "data"),
            }
            print(f"floors {json.dumps(result['floors'])}", file=sys.stderr, flush=True)
            result["sandbox_peak_rss_mib"] = mib(server_memory.peak)
            save(result)
            result["runs"].append(run_sync(work, urls, "rerun, no change"))
            save(result)
            if keep:
                copy_kept(work, to_before_change=True)
            result["change_set"] = change_one_percent(world)
            recording = out / f"sync-pyspy-p{persons}-change.txt" if py_spy == "change" else None
            result["runs"].append(run_sync(work, urls, "rerun, 1% changed", recording))
            if reconcile:
                save(result)
                result["runs"].append(run_sync(work, urls, "full reconciliation", job="full_reconciliation"))
        result["sandbox_peak_rss_mib"] = mib(server_memory.peak)
        save(result)
        if profile:
            result["profile"] = str(profile_sync(work, urls, out, persons))
    # the warehouse and landed data are many GB at 4.3M: keep the results, not the copies
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return result


def copy_kept(work: Path, to_before_change: bool) -> None:
    """DATA_DIR and DAGSTER_HOME (`KEPT_COPIES`) copied to `<name>-before-change/`, or put back
    from there; what stood in the way is removed first."""
    for name, how in KEPT_COPIES:
        source, target = work / name, work / f"{name}-before-change"
        if not to_before_change:
            source, target = target, source
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run(["cp", how, str(source), str(target)], check=True)


def rebase_before_change(kept: Path) -> dict:
    """The folder's copies before the change set made again by this code: a no-change sync
    over them against the world before the change set (every step this code would not reuse
    is redone), then copied as they were by `bench_size`. The staging ledgers name the landed
    pages by absolute path, so a copy of the folder elsewhere is made right here too."""
    world = kept.parent / kept.name.replace("sync-", "world-", 1)
    if not world.is_dir():
        raise SystemExit(f"{world}: the world before the change set is not there")
    copy_kept(kept, to_before_change=False)
    with serving(world) as (_, urls):
        outcome = run_sync(kept, urls, "rebase, no change")
    copy_kept(kept, to_before_change=True)
    return outcome


def replay_change_set(kept: Path, py_spy: Path | None = None) -> dict:
    """The 1% change-set sync of a folder `bench_size(keep=True)` left, run again: `data/` and
    `dagster_home/` made again from the copies taken before it, in the same folder (the staging
    ledgers name the landed pages by absolute path: elsewhere every merge would restage in
    full), against the servers of its changed `world/`."""
    copy_kept(kept, to_before_change=False)
    with serving(kept / "world") as (_, urls):
        return run_sync(kept, urls, "replayed change set", py_spy)


# -- the profile -----------------------------------------------------------------------------


PROFILE_SYNC = """
import sys
from pyinstrument import Profiler
import dagster as dg
from pipelines.definitions import defs
profiler = Profiler(interval=0.01)
profiler.start()
# sync_all in process (execute_in_process runs every step in this one process)
result = defs.resolve_job_def("sync_all").execute_in_process(instance=dg.DagsterInstance.ephemeral())
profiler.stop()
assert result.success
with open(sys.argv[1], "w") as out:
    out.write(profiler.output_text(unicode=False, color=False, show_all=False))
"""


def profile_sync(work: Path, urls: tuple[str, str], out: Path, persons: int) -> Path:
    """The same full sync in one process under pyinstrument (fresh DATA_DIR)."""
    target = out / f"sync-profile-p{persons}.txt"
    profile_work = work / "profile"
    env = sync_env(profile_work, urls)
    print("[profile] in-process full sync under pyinstrument ...", file=sys.stderr, flush=True)
    subprocess.run(
        [sys.executable, "-c", PROFILE_SYNC, str(target)], cwd=ROOT, env=env, check=True
    )
    return target


# -- report ----------------------------------------------------------------------------------


def floors_seconds(result: dict) -> float:
    return result["floors"]["bare_reader"]["seconds"] + result["floors"]["duckdb_copy"]["seconds"]


def markdown(results: list[dict]) -> str:
    lines = [
        "| persons | run | wall s | CPU s | raw s | staged s | resolved s | warehouse s "
        "| rows landed | rows landed/s | peak RSS, all processes | of full sync | of floors |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        full = result["runs"][0]["seconds"]
        floors = floors_seconds(result) if "floors" in result else float("nan")
        for run in result["runs"]:
            stages = [run["stages"].get(stage) for stage in STAGES]
            lines.append(
                f"| {result['persons']:,} | {run['run']} | {run['seconds']:,.1f} | "
                f"{run.get('cpu_seconds', float('nan')):,.0f} | "
                + " | ".join("" if s is None else f"{s:,.1f}" for s in stages)
                + f" | {run['rows_landed']:,} | {run['rows_landed'] / run['seconds']:,.0f} | "
                f"{run['peak_rss_mib']:,} MiB | {run['seconds'] / full:.0%} | "
                + (f"{run['seconds'] / floors:.1f}× |" if floors == floors else "— |")
            )
    lines += [
        "",
        "| persons | bare reader (s, rows/s) | DuckDB copy of the landed pages (s, rows/s) "
        "| sum of floors | full sync / floors | sandbox peak RSS | world generated |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        if "floors" not in result:
            continue
        bare, copy = result["floors"]["bare_reader"], result["floors"]["duckdb_copy"]
        floors = floors_seconds(result)
        lines.append(
            f"| {result['persons']:,} | {bare['seconds']:,.1f} s, "
            f"{bare['rows'] / bare['seconds']:,.0f} | {copy['seconds']:,.1f} s, "
            f"{copy['rows'] / copy['seconds']:,.0f} | {floors:,.1f} s | "
            f"{result['runs'][0]['seconds'] / floors:.1f}× | "
            f"{result['sandbox_peak_rss_mib']:,} MiB | {result['world_seconds']:,.0f} s |"
        )
    if len(results) > 1:
        smallest = results[0]
        base = smallest["runs"][0]["seconds"] / smallest["persons"]
        lines += [
            "",
            "| persons | full sync s | s per 100k persons | growth against linear "
            f"(from {smallest['persons']:,}) |",
            "| ---: | ---: | ---: | ---: |",
        ]
        for result in results:
            seconds = result["runs"][0]["seconds"]
            per_person = seconds / result["persons"]
            lines.append(
                f"| {result['persons']:,} | {seconds:,.1f} | {per_person * 1e5:,.1f} | "
                f"{per_person / base:.2f}× |"
            )
    return "\n".join(lines)


def pyspy_run(args: argparse.Namespace) -> str | None:
    """Which run of the largest size py-spy records, if any."""
    return "change" if args.py_spy_change else "full" if args.py_spy else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, action="append", help="world size (repeatable)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--profile", action="store_true", help="profile the largest size too")
    parser.add_argument("--py-spy", action="store_true",
                        help="record the largest size's timed full sync with py-spy")
    parser.add_argument("--py-spy-change", action="store_true",
                        help="record the largest size's 1%% change-set rerun with py-spy instead")
    parser.add_argument("--profile-only", action="store_true",
                        help="only the profile, of each size (no timed runs)")
    parser.add_argument("--keep", action="store_true",
                        help="keep <out>/sync-p<N>-s<seed>/ with the data before the change set")
    parser.add_argument("--reconcile", action="store_true",
                        help="also time a full_reconciliation after the change set")
    parser.add_argument("--replay", type=Path, metavar="KEPT",
                        help="only the change-set sync of a --keep folder (sync-p<N>-s<seed>), again")
    parser.add_argument("--rebase", action="store_true",
                        help="with --replay: first make the folder's copies before the change set with this code")
    args = parser.parse_args()
    if args.replay:
        kept = args.replay.resolve()
        if args.rebase:
            print(json.dumps(rebase_before_change(kept)))
        recording = kept.parent / f"{kept.name}-replay-pyspy.txt" if args.py_spy_change else None
        print(json.dumps(replay_change_set(kept, recording)))
        return 0
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    sizes = sorted(args.persons or [100_000, 1_000_000])
    if args.profile_only:
        for persons in sizes:
            work = out / f"profile-p{persons}-s{args.seed}"
            shutil.rmtree(work, ignore_errors=True)
            try:
                with serving(ensure_world(persons, args.seed, out)) as (_, urls):
                    print(profile_sync(work, urls, out, persons))
            finally:
                shutil.rmtree(work, ignore_errors=True)
        return 0
    results: list[dict] = []

    def save(result: dict) -> None:
        if not results or results[-1] is not result:
            results.append(result)
        document = {"measured": datetime.now(UTC).isoformat(timespec="seconds"),
                    "load_average": os.getloadavg(), "results": results}
        (out / "sync.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
        (out / "sync.md").write_text(markdown(results) + "\n", encoding="utf-8")

    for persons in sizes:
        largest = persons == sizes[-1]
        save(bench_size(persons, args.seed, out, args.profile and largest, save, args.keep,
                        pyspy_run(args) if largest else None, args.reconcile))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    sys.exit(main())
