"""The resolution step alone (pipelines.resolve.store.resolve_all): wall, CPU, peak RSS, per phase.

`sync_all`'s resolved step runs resolve_all in its own process; this times the same call on a
staged DATA_DIR built by bench/resolve.py's chain (sandbox world -> raw layout copied from the
world's SQLite -> pipelines.staging), with nothing else in the measuring process:

  .venv/bin/python bench/resolve_step.py --persons 100000 --work /work/bench-data/resolve-100k
  .venv/bin/python bench/resolve_step.py --persons 1000000 --work /work/bench-data/resolve-1m

A <work> folder that already holds staged tables is reused. Each run starts from an empty
resolve state (a first sync) unless --rerun (the state of the previous run is kept: the
incremental path of a nightly sync). The phases (volunteers, organizations, services, the
invariants, writing) are timed by wrapping the functions resolve_all calls; a sampler thread
reads VmRSS from /proc every 50 ms for each phase's peak, and notes where the call was (its
innermost frames of the project's code) when its RSS was highest (`where_highest`).
--copy-outputs DIR keeps a copy of DATA_DIR/resolved and the resolve state (to compare
before/after a change with bench/compare_resolved.py).

--change-set KEPT replays the resolution of bench/sync.py's "1% changed" sync (a work folder
kept with `bench/sync.py --keep`): <work>/data is laid anew from KEPT/data/staged (the staged
tables after the change set, hard-linked: resolution only reads them) and a copy of the
resolve state and outputs before it (KEPT/data-before-change), then resolved as a rerun.
--fresh-before makes that state this code's: KEPT/data-before-change's staged tables are
resolved first from an empty state (what a code change keeps across syncs is then there).
--causes (after a run, alone) counts its false and missed pairs by cause against the sandbox
truth, as bench/resolve.py counts an engine's. --profile FILE also writes a cProfile of the
call (cumulative, top functions) to FILE; the profiler slows the call down, so its times are
not the step's.
Results: one JSON line on stdout (also <work>/resolve-step.json).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


class Sampler(threading.Thread):
    """Peak RSS since the last `start_phase`, sampled every `interval` seconds; and where the
    step's own code was (its innermost project frames) when the whole call's RSS was highest."""

    def __init__(self, interval: float = 0.05):
        super().__init__(daemon=True)
        self.interval, self.peak, self.stop = interval, 0.0, threading.Event()
        self.watched = threading.main_thread().ident
        self.highest, self.where_highest = 0.0, []

    def run(self) -> None:
        while not self.stop.is_set():
            rss = rss_mb()
            self.peak = max(self.peak, rss)
            if rss > self.highest:
                self.highest, self.where_highest = rss, self.project_frames()
            time.sleep(self.interval)

    def project_frames(self) -> list[str]:
        """The innermost frames of the project's own code, and the innermost frame of all."""
        frame = sys._current_frames().get(self.watched)
        stack = traceback.extract_stack(frame) if frame is not None else []
        named = [f"{f.filename.rsplit('site-packages/', 1)[-1].removeprefix(str(ROOT) + '/')}:{f.lineno} {f.name}"
                 for f in stack]
        own = [name for name in named if name.startswith(("pipelines/", "assets/"))][-4:]
        return own + named[-1:] if named and named[-1] not in own else own

    def start_phase(self) -> float:
        self.peak = rss_mb()
        return self.peak


def instrument(phases: list[dict], sampler: Sampler) -> None:
    """Wrap what resolve_all calls so each call records its wall, CPU and RSS (start, peak, end)."""
    from pipelines.resolve import store

    def wrap(name: str, function):
        def timed(*args, **kwargs):
            start_rss = sampler.start_phase()
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                if name in ("resolve_volunteers", "resolve_services"):  # they free the staged
                    handed = [*args]  # table they are handed: the wrapper must not hold it
                    del args
                    return hand_over(function, handed, kwargs)
                return function(*args, **kwargs)
            finally:
                phases.append({
                    "phase": name, "wall_s": round(time.perf_counter() - wall, 2),
                    "cpu_s": round(time.process_time() - cpu, 2), "rss_start_mb": round(start_rss),
                    "rss_peak_mb": round(max(sampler.peak, rss_mb())), "rss_end_mb": round(rss_mb()),
                })
        return timed

    for name in ("read_staged", "resolve_volunteers", "resolve_organizations", "resolve_services",
                 "write_parquet", "parquet_bytes", "write_bytes", "account_key_problems", "unexplained_key_changes",
                 "service_count_problems", "evaluate_against_truth", "organization_check",
                 # made by a thread beside the invariants (its writes are timed inside it too)
                 "write_volunteer_outputs"):
        setattr(store, name, wrap(name, getattr(store, name)))


def hand_over(function, args: list, kwargs: dict):
    """function(*args, **kwargs) for resolve_volunteers / resolve_services, by a plain call: the
    callee then owns the first argument (a star call's tuple would hold it until it returns)."""
    box = [args.pop(0)]
    rest = tuple(args)
    del args
    return function(box.pop(), *rest, **kwargs)


def summarise(phases: list[dict]) -> list[dict]:
    """One row per phase name (write_parquet and read_staged are called once per file)."""
    merged: dict[str, dict] = {}
    for p in phases:
        row = merged.setdefault(p["phase"], {"phase": p["phase"], "calls": 0, "wall_s": 0.0, "cpu_s": 0.0,
                                             "rss_start_mb": p["rss_start_mb"], "rss_peak_mb": 0})
        row["calls"] += 1
        row["wall_s"] = round(row["wall_s"] + p["wall_s"], 2)
        row["cpu_s"] = round(row["cpu_s"] + p["cpu_s"], 2)
        row["rss_peak_mb"] = max(row["rss_peak_mb"], p["rss_peak_mb"])
        row["rss_end_mb"] = p["rss_end_mb"]
    return list(merged.values())


def link_staged(staged_from: Path, data_dir: Path) -> None:
    """<data_dir>/staged: the four tables resolution reads, hard-linked (it only reads them)."""
    shutil.rmtree(data_dir / "staged", ignore_errors=True)
    (data_dir / "staged").mkdir(parents=True)
    for table in ("volunteers", "organizations", "services", "projects"):
        source = staged_from / f"{table}.parquet"
        if source.exists():
            (data_dir / "staged" / source.name).hardlink_to(source)


def lay_change_set(kept: Path, data_dir: Path, fresh_before: bool) -> None:
    """<data_dir> as the resolved step of KEPT's change-set sync found it: the staged tables
    after the change set, the resolve state and outputs of the sync before it. With
    `fresh_before`, that state is this code's: the staged tables before the change set are
    resolved first, from an empty state (so that what the code keeps across syncs is there)."""
    shutil.rmtree(data_dir, ignore_errors=True)
    before = kept / "data-before-change"
    if fresh_before:
        link_staged(before / "staged", data_dir)
        run_child(data_dir.parent, rerun=False)
    else:
        shutil.copytree(before / "state" / "resolve", data_dir / "state" / "resolve")
        shutil.copytree(before / "resolved", data_dir / "resolved")
    link_staged(kept / "data" / "staged", data_dir)


def run_child(work: Path, rerun: bool, extra: list[str] = ()) -> dict:
    """resolve_all measured in a child process (so that its peak RSS is the step's own)."""
    command = [sys.executable, __file__, "--measure", "--work", str(work), *["--rerun"] * rerun, *extra]
    completed = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if completed.returncode:
        raise RuntimeError(f"resolve_all failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def measure(data_dir: Path, truth: Path | None, rerun: bool, copy_outputs: Path | None,
            profile: Path | None = None) -> dict:
    """In this (fresh) process: resolve_all once, with phases; the process's peak RSS. Arrow
    allocates as in the sync's step process (assets/step_process.py)."""
    from assets.step_process import allocate_arrow_from_the_system
    from bench.resolve import AS_OF
    from pipelines.config import Settings
    from pipelines.resolve.store import resolve_all

    allocate_arrow_from_the_system()
    if not rerun:
        shutil.rmtree(data_dir / "state" / "resolve", ignore_errors=True)
        shutil.rmtree(data_dir / "resolved", ignore_errors=True)
    sampler = Sampler()
    sampler.start()
    phases: list[dict] = []
    instrument(phases, sampler)
    settings = Settings(data_dir=data_dir, sandbox_truth_dir=str(truth) if truth else None)
    before_rss = rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        summary = profiler.runcall(resolve_all, settings, AS_OF)
        with profile.open("w") as out:
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(80)
        profiler.dump_stats(str(profile) + ".bin")
    else:
        summary = resolve_all(settings, AS_OF)
    result = {
        "mode": summary["volunteers"]["mode"], "accounts": summary["volunteers"]["accounts"],
        "service_records": summary["services"]["service_records"],
        "wall_s": round(time.perf_counter() - wall, 1), "cpu_s": round(time.process_time() - cpu, 1),
        "rss_after_imports_mb": round(before_rss), "peak_rss_mb": round(rss_mb("VmHWM")),
        "phases": summarise(phases),
        "where_highest": {"rss_mb": round(sampler.highest), "stack": sampler.where_highest},
    }
    if copy_outputs:
        shutil.rmtree(copy_outputs, ignore_errors=True)
        shutil.copytree(data_dir / "resolved", copy_outputs)
        shutil.copytree(data_dir / "state" / "resolve", copy_outputs / "state")
    return result


def pairs_by_cause(data_dir: Path, truth_dir: Path) -> dict:
    """The false and missed pairs of the step's own clusters (DATA_DIR/resolved) against the
    sandbox truth, counted by cause as bench/resolve.py counts an engine's (counts only)."""
    import pandas as pd

    from bench.resolve import false_pairs_by_cause, missed_pairs_by_cause, truth_of

    clusters = pd.read_parquet(data_dir / "resolved" / "volunteer_source_map.parquet",
                               columns=["source", "source_id", "volunteer_key"]).rename(columns={"volunteer_key": "cluster"})
    staged = pd.read_parquet(data_dir / "staged" / "volunteers.parquet", columns=[
        "source", "source_id", "cert_hash", "cert_valid", "cert_masked", "cert_prefix4", "cert_suffix4"])
    truth = truth_of(truth_dir.parent)
    persons = pd.read_parquet(truth_dir / "persons.parquet", columns=["person_id", "namesake_of"])
    return {"false_pairs_by_cause": false_pairs_by_cause(clusters, truth, staged, persons),
            "missed_pairs_by_cause": missed_pairs_by_cause(clusters, truth, staged)["by_numbers_and_fate"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--rerun", action="store_true", help="keep the previous run's resolve state")
    parser.add_argument("--truth", action="store_true", help="also score against the sandbox truth")
    parser.add_argument("--copy-outputs", type=Path, help="copy DATA_DIR/resolved here afterwards")
    parser.add_argument("--change-set", type=Path, metavar="KEPT",
                        help="replay the change-set resolution of a `bench/sync.py --keep` work folder")
    parser.add_argument("--fresh-before", action="store_true",
                        help="with --change-set: first resolve the data before the change set with this code")
    parser.add_argument("--profile", type=Path, metavar="FILE", help="also write a cProfile here")
    parser.add_argument("--causes", action="store_true",
                        help="only count the last run's false and missed pairs by cause (needs its --truth world)")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    work: Path = args.work
    data_dir = work / "data"
    truth = work / "world" / "truth" if args.truth else None
    if args.measure:
        print(json.dumps(measure(data_dir, truth, args.rerun, args.copy_outputs, args.profile)))
        return
    if args.causes:
        print(json.dumps(pairs_by_cause(data_dir, work / "world" / "truth"), ensure_ascii=False, indent=1))
        return

    from bench.resolve import build_world, land_from_sqlite, stage

    work.mkdir(parents=True, exist_ok=True)
    if args.change_set:
        lay_change_set(args.change_set.resolve(), data_dir, args.fresh_before)
        args.rerun = True
    elif not (data_dir / "staged" / "services.parquet").exists():
        world = build_world(work, args.persons, args.seed)
        started = time.perf_counter()
        land_from_sqlite(world, data_dir)
        stage(data_dir)
        print(f"landed and staged in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    # a child process, so that its peak RSS is the step's own (as in sync_all's step process)
    extra = ["--truth"] * args.truth
    extra += ["--copy-outputs", str(args.copy_outputs)] if args.copy_outputs else []
    extra += ["--profile", str(args.profile.resolve())] if args.profile else []
    result = run_child(work, args.rerun, extra)
    result.update({"persons": args.persons, "seed": args.seed})
    (work / "resolve-step.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    print("| phase | calls | wall (s) | CPU (s) | RSS start (MB) | RSS peak (MB) |", file=sys.stderr)
    for p in result["phases"]:
        print(f"| {p['phase']} | {p['calls']} | {p['wall_s']} | {p['cpu_s']} | {p['rss_start_mb']} | "
              f"{p['rss_peak_mb']} |", file=sys.stderr)


if __name__ == "__main__":
    main()
