"""The kill-point harness: syncs killed with SIGKILL at named points, rerun, and compared
table by table (content hash) with a clean sync of the same sandbox world.

Run as a process of its own (`python -m tests.crash.harness PLAN.json`), next to sandbox
servers someone else runs: it imports the pipeline once, then forks one child per run, so
a run costs its work, not the imports. Each child runs a job of the code location's own
assets, checks and resources in process (`execute_in_process`) with the scenario's
`PIPELINE_CRASH_AT`; the kernel's SIGKILL is the only way a killed child ends.

The plan (JSON): `env` (the sandbox's URLs and keys), `work_dir`, `page_size`, and steps:

    {"kind": "reference", "name": "clean"}
        a clean first sync from an empty DATA_DIR; its warehouse's hashes are the reference
    {"kind": "chain", "name": ..., "start": "empty" | "landed" | "staged" | "resolved" | "published",
     "warehouse_url": "" (DuckDB in DATA_DIR) or a URL, "kills": [[point, layers], ...],
     "rerun": layers}
        from a copy of the reference's DATA_DIR cut back to `start`: each kill runs the
        layers given (e.g. "staged") and must die at its point; then one rerun of the layers
        (what Dagster's "re-execute from failure" runs: the failed step and everything
        downstream; "all" is the whole sync); then the warehouse's hashes and leftovers.
    {"kind": "landing", "name": ..., "kill": point}
        from an empty DATA_DIR: the landing (`raw`) killed at the point, then run again; then
        the raw layer's content as staging reads it, per stream (`raw_hashes`)
    {"kind": "raw", "name": ..., "data_dir": path, "layers": "raw", "warehouse_url": url}:
        the layers given (the landing unless said) once, in that folder as it is (into the
        warehouse given, else the plan's)
    {"kind": "shell", "command": [...]}: between runs (mount a small file system, remount it)
    bench/crash.py runs every point as a chain of one, from a clean start each time.

Prints one JSON line per step. Used by tests/crash/ and bench/crash.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

AS_OF_TAG = "2026-11-01T12:00:00+08:00"  # every sync of a plan shares one instant
KILLED = -signal.SIGKILL
# When the pipeline received a quarantined row: the fetch time, which differs between any
# two syncs of one world (a rerun fetches again). Everything else must be identical.
WHEN_RECEIVED = {("quarantine", "first_seen_at"), ("quarantine", "last_seen_at")}


LAYERS = ("raw", "staged", "resolved", "warehouse")
# what a DATA_DIR holds once each layer is done (a reference cut back to `start`)
KEPT = {
    "empty": (),
    "landed": ("raw", "state/national", "state/provincial"),
    "staged": ("raw", "state/national", "state/provincial", "staged"),
    "resolved": ("raw", "state/national", "state/provincial", "staged", "resolved", "state/resolve"),
    "published": None,  # everything, the warehouse included
}


def definitions(page_size: int, layers: str):
    """The code location's own assets, checks and resources (small pages, so that a stream
    has several and "the second page" exists), with one job over the layers named
    ("all", or groups joined by "+": "resolved+warehouse")."""
    import dagster as dg

    from pipelines import definitions as location
    from pipelines.resources import RESOURCES, NationalSource, ProvincialSource, SourceApis

    sources = SourceApis(
        national=NationalSource(page_size=page_size), provincial=ProvincialSource(page_size=page_size)
    )
    groups = LAYERS if layers == "all" else tuple(layers.split("+"))
    job = dg.define_asset_job("crash_run", selection=dg.AssetSelection.groups(*groups))
    return dg.Definitions(
        assets=location.all_assets,
        asset_checks=location.freshness_checks,
        resources={**RESOURCES, "sources": sources},
        jobs=[job],
    )


def _child_run(env: dict[str, str], page_size: int, layers: str) -> None:
    """In the forked child: one run, in process; exits 0 on success, 1 on failure."""
    os.environ.update(env)
    code = 1
    try:
        job = definitions(page_size, layers).resolve_job_def("crash_run")
        result = job.execute_in_process(tags={"as_of": AS_OF_TAG}, raise_on_error=False)
        code = 0 if result.success else 1
        if not result.success:
            for event in result.all_events:
                if event.is_failure:
                    sys.stderr.write(f"{event.step_key}: {event.message}\n")
    except BaseException:  # noqa: BLE001 - reported, then the child ends
        import traceback

        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def run(env: dict[str, str], page_size: int, layers: str = "all") -> int:
    """Fork, run in the child, return its exit code (-9: killed by SIGKILL)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        _child_run(env, page_size, layers)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def cut_back(reference: Path, target: Path, start: str) -> None:
    """A copy of the reference's DATA_DIR holding only what exists once `start` is done."""
    shutil.rmtree(target, ignore_errors=True)
    kept = KEPT[start]
    if kept is None:
        shutil.copytree(reference, target)
        return
    target.mkdir(parents=True, mode=0o700)
    for part in kept:
        if (reference / part).exists():
            shutil.copytree(reference / part, target / part)


def table_hashes(url: str, schema: str | None = None) -> dict[str, str]:
    """Each published table's content hash: its rows as text, sorted (row order is not
    content), hashed. Tables are those of schemas/warehouse.yaml, every column but the two
    that say when a quarantined row was received (WHEN_RECEIVED)."""
    from pipelines.warehouse.spec import load_spec

    spec = load_spec()
    engine = sa.create_engine(url)
    hashes = {}
    try:
        with engine.connect() as connection:
            for name in spec.tables:
                target = f'"{schema}"."{name}"' if schema else f'"{name}"'
                columns = [c.name for c in spec[name].columns if (name, c.name) not in WHEN_RECEIVED]
                listed = ", ".join(f'"{c}"' for c in columns)
                rows = connection.execute(sa.text(f"SELECT {listed} FROM {target}")).fetchall()
                lines = sorted("\x1f".join(map(repr, row)) for row in rows)
                digest = hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()
                hashes[name] = f"{len(rows)}:{digest[:16]}"
    finally:
        engine.dispose()
    return hashes


def raw_hashes(data_dir: Path) -> dict[str, str]:
    """Each stream's landed content as staging reads it: the distinct (id, updated_at, row,
    problem) of every page (a row landed twice by a rerun is one row to staging), plus the
    stream's checkpoint (without the sync id that wrote it)."""
    import duckdb

    hashes = {}
    con = duckdb.connect()
    for stream_dir in sorted((data_dir / "raw").glob("*/*")):
        source, stream = stream_dir.parent.name, stream_dir.name
        rows = con.sql(
            "SELECT DISTINCT id, updated_at, is_deleted, record, problem FROM read_parquet("
            f"'{stream_dir}/*/page-*.parquet') ORDER BY ALL"
        ).fetchall()
        digest = hashlib.sha256(repr(rows).encode("utf-8")).hexdigest()
        state = json.loads((data_dir / "state" / source / f"{stream}.json").read_text())
        state.pop("sync_id", None)
        hashes[f"{source}/{stream}"] = f"{len(rows)}:{digest[:16]}:{json.dumps(state, sort_keys=True)}"
    con.close()
    return hashes


def raw_integrity(data_dir: Path) -> dict[str, int]:
    """Whether what a failed landing left is sound: every page file readable Parquet, every
    checkpoint readable JSON and naming a row landed in its stream (never ahead of the data)."""
    import duckdb
    import pyarrow.parquet as pq

    pages = broken = states = ahead = 0
    con = duckdb.connect()
    for page in (data_dir / "raw").glob("*/*/*/page-*.parquet"):
        pages += 1
        try:
            pq.read_table(page)
        except Exception:  # noqa: BLE001 - counted
            broken += 1
    for state in (data_dir / "state").glob("*/*.json"):
        states += 1
        try:
            checkpoint = json.loads(state.read_text())
        except ValueError:
            broken += 1
            continue
        stream_dir = data_dir / "raw" / state.parent.name / state.stem
        landed = 0
        if list(stream_dir.glob("*/page-*.parquet")):
            landed = con.execute(
                f"SELECT count(*) FROM read_parquet('{stream_dir}/*/page-*.parquet') WHERE id = ?",
                [str(checkpoint.get("id"))],
            ).fetchone()[0]
        ahead += landed == 0
    con.close()
    return {"pages": pages, "broken": broken, "states": states, "states_ahead": ahead}


def leftovers(data_dir: Path, url: str) -> list[str]:
    """What a killed sync may have left that nothing cleans: temporary files, build folders,
    staging schemas. After a rerun there must be none."""
    found = [str(p.relative_to(data_dir)) for p in data_dir.rglob("*.tmp*")]
    found += [str(p.relative_to(data_dir)) for p in (data_dir / "state" / "warehouse").glob("build*")]
    if url.startswith("postgresql"):
        engine = sa.create_engine(url)
        try:
            with engine.connect() as connection:
                found += [
                    row[0]
                    for row in connection.execute(
                        sa.text("SELECT nspname FROM pg_namespace WHERE nspname LIKE '\\_staging\\_%'")
                    )
                ]
        finally:
            engine.dispose()
    return found


def run_plan(world: Path, steps: list[dict], folder: Path, timeout: int) -> subprocess.CompletedProcess:
    """Run `steps` in a harness process of their own (the one a SIGKILL may hit) against
    sandbox servers over `world`; the plan and the work under `folder`."""
    from sandbox import Faults, SandboxServers

    with SandboxServers(world, faults=Faults(retry_after=0)) as servers:
        plan = {"env": {**servers.env(), "PII_HASH_KEY": "crash-test-key-of-at-least-32-bytes"},
                "work_dir": str(folder / "work"), "page_size": 40, "steps": steps}
        (folder / "plan.json").write_text(json.dumps(plan))
        return subprocess.run(
            [sys.executable, "-m", "tests.crash.harness", str(folder / "plan.json")],
            cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=timeout,
        )


def main(plan_path: str) -> None:
    plan = json.loads(Path(plan_path).read_text())
    base_env: dict[str, str] = plan["env"]
    work = Path(plan["work_dir"])
    page_size = int(plan.get("page_size", 50))
    reference = work / "reference"
    import great_expectations  # noqa: F401 - the checks' import, warmed for every child

    import pipelines.definitions  # noqa: F401 - imported once, before the forks

    for step in plan["steps"]:
        began = time.monotonic()
        if step["kind"] == "reference":
            shutil.rmtree(reference, ignore_errors=True)
            code = run({**base_env, "DATA_DIR": str(reference), "WAREHOUSE_URL": ""}, page_size)
            published = f"duckdb:///{reference / 'warehouse.duckdb'}"
            print(json.dumps({"reference": True, "code": code,
                              "hashes": table_hashes(published) if code == 0 else {},
                              "raw": raw_hashes(reference) if code == 0 else {},
                              "seconds": round(time.monotonic() - began, 2)}), flush=True)
            continue
        if step["kind"] == "shell":  # e.g. mount, remount, umount between two runs
            completed = subprocess.run(step["command"], capture_output=True, text=True)
            print(json.dumps({"shell": step["command"], "code": completed.returncode,
                              "stderr": completed.stderr[-500:]}), flush=True)
            continue
        if step["kind"] == "raw":  # the landing (or the layers given) once, in a DATA_DIR kept as it is
            data_dir = Path(step["data_dir"])
            warehouse = {"WAREHOUSE_URL": step["warehouse_url"]} if "warehouse_url" in step else {}
            code = run({**base_env, "DATA_DIR": str(data_dir), **warehouse}, page_size, step.get("layers", "raw"))
            print(json.dumps({"raw_run": step["name"], "code": code, **raw_integrity(data_dir),
                              "raw": raw_hashes(data_dir) if code == 0 else {},
                              "seconds": round(time.monotonic() - began, 2)}), flush=True)
            continue
        data_dir = work / step["name"]
        cut_back(reference, data_dir, step.get("start", "empty"))
        if step["kind"] == "landing":  # one kill, then the landing again: the raw layer
            env = {**base_env, "DATA_DIR": str(data_dir)}
            code = run({**env, "PIPELINE_CRASH_AT": step["kill"]}, page_size, "raw")
            rerun = run(env, page_size, "raw")
            print(json.dumps({
                "landing": step["name"], "point": step["kill"], "code": code, "rerun_code": rerun,
                "raw": raw_hashes(data_dir) if rerun == 0 else {},
                "leftovers": leftovers(data_dir, "") if rerun == 0 else [],
                "seconds": round(time.monotonic() - began, 2),
            }), flush=True)
            shutil.rmtree(data_dir, ignore_errors=True)
            continue
        url = step.get("warehouse_url", "")
        published = url or f"duckdb:///{data_dir / 'warehouse.duckdb'}"
        env = {**base_env, "DATA_DIR": str(data_dir), "WAREHOUSE_URL": url}
        killed = []
        for point, layers in step.get("kills", []):
            code = run({**env, "PIPELINE_CRASH_AT": point}, page_size, layers)
            entry = {"point": point, "code": code}
            if step.get("check_after_kill") and code == KILLED:
                entry["hashes"] = table_hashes(published)  # what readers see right then
            killed.append(entry)
        rerun = run(env, page_size, step.get("rerun", "all"))
        record = {
            "chain": step["name"],
            "kills": killed,
            "rerun_code": rerun,
            "hashes": table_hashes(published) if rerun == 0 else {},
            "leftovers": leftovers(data_dir, published) if rerun == 0 else [],
            "raw": raw_hashes(data_dir) if rerun == 0 else {},
            "seconds": round(time.monotonic() - began, 2),
        }
        print(json.dumps(record), flush=True)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1])
