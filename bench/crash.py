"""The reliability figures of the README: every kill point on its own, kills combined with
each other and with source faults, and concurrent publishes to one warehouse.

    .venv/bin/python bench/crash.py [--persons 120] [--concurrent 30] [--no-postgres]

Kill matrix: the sandbox world synced clean once (the reference); then each named point of
tests/crash/test_kill_points.py on its own, from a clean start: the run is killed there
(SIGKILL), rerun (after a landing crash the whole sync, otherwise the failed layer and what
follows, as "re-execute from failure" does), and the warehouse compared table by table
(content hash) with the reference; leftovers (temporary files, build folders, staging
schemas) counted. Fault combinations: the test's chains (several kills in a row before the
rerun) and every landing point again with the sources failing (429, 5xx, truncated bodies).
Concurrency: N processes publish the reference's files to one DuckDB file (and one
PostgreSQL schema) at once; each must succeed (the publish lock queues them) and the
warehouse must equal the reference. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox import Faults, SandboxServers, generate_world  # noqa: E402
from tests.crash import test_kill_points as matrix  # noqa: E402
from tests.crash.harness import KILLED, table_hashes  # noqa: E402

PG_ADMIN = "host=127.0.0.1 port=5432 dbname=test user=postgres"
LAYER_START = {"raw": ("empty", "all"), "staged": ("landed", "staged+resolved+warehouse"),
               "resolved": ("staged", "resolved+warehouse"), "warehouse": ("published", "warehouse")}


def postgres_listens() -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", 5432)) == 0


def run_plan(world: Path, work: Path, steps: list[dict], faults: Faults) -> list[dict]:
    with SandboxServers(world, faults=faults) as servers:
        plan = {"env": {**servers.env(), "PII_HASH_KEY": "crash-bench-key-of-at-least-32-bytes"},
                "work_dir": str(work), "page_size": 40, "steps": steps}
        plan_path = work.parent / f"plan-{uuid.uuid4().hex[:6]}.json"
        plan_path.write_text(json.dumps(plan))
        completed = subprocess.run([sys.executable, "-m", "tests.crash.harness", str(plan_path)],
                                   cwd=ROOT, capture_output=True, text=True)
    if completed.returncode:
        raise SystemExit(completed.stderr[-4000:])
    return [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]


def survived(line: dict, reference: dict) -> bool:
    kills = line["kills"]
    return (all(k["code"] == KILLED for k in kills) and line["rerun_code"] == 0
            and line["hashes"] == reference and not line["leftovers"])


PUBLISHER = """
import sys, datetime
from pathlib import Path
from pipelines.config import Settings
from pipelines.warehouse.publish import publish
settings = Settings(data_dir=Path(sys.argv[1]), warehouse_url=sys.argv[2], pii_hash_key="crash-bench-key-of-at-least-32-bytes")
publish(settings, as_of=datetime.date(2026, 11, 1), lock_wait_seconds=3600)
"""


def concurrent_publishes(data_dir: Path, url: str, count: int) -> tuple[int, float]:
    began = time.monotonic()
    runs = [subprocess.Popen([sys.executable, "-c", PUBLISHER, str(data_dir), url], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for _ in range(count)]
    failed = 0
    for process in runs:
        _, err = process.communicate()
        if process.returncode:
            failed += 1
            print(err[-1500:], file=sys.stderr)
    return failed, time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=120)
    parser.add_argument("--concurrent", type=int, default=30)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    use_postgres = not args.no_postgres and postgres_listens()
    began = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="crash-bench-"))
    world = generate_world(root / "world", persons=args.persons, seed=5, as_of=datetime(2026, 11, 1, 12))
    database = f"test_crash_{uuid.uuid4().hex[:10]}"
    if use_postgres:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{database}"')
        with psycopg.connect(PG_ADMIN.replace("dbname=test", f"dbname={database}"), autocommit=True) as own:
            own.execute("CREATE SCHEMA warehouse")
            own.execute("CREATE SCHEMA concurrent")
    pg_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}?options=-csearch_path%3D"
    try:
        singles = [(point, layers) for point, layers in
                   matrix.LANDING + matrix.STAGING + matrix.RESOLUTION + matrix.PUBLISH_DUCKDB]
        steps: list[dict] = [{"kind": "reference"}]
        for number, (point, layers) in enumerate(singles):
            start, rerun = LAYER_START[layers]
            steps.append({"kind": "chain", "name": f"single_{number}", "start": start,
                          "kills": [(point, layers)], "rerun": rerun})
        if use_postgres:
            for number, (point, layers) in enumerate(matrix.PUBLISH_POSTGRES):
                steps.append({"kind": "chain", "name": f"pg_{number}", "start": "resolved",
                              "warehouse_url": pg_url + "warehouse",
                              "kills": [("publish.done", "warehouse"), (point, layers)],
                              "rerun": "warehouse", "check_after_kill": True})
        # (the landing chain is the suite's, tests/crash/test_kill_points.py; here the landing
        # points are combined with source faults below)
        for chain, points in (("staging", matrix.STAGING), ("resolution", matrix.RESOLUTION),
                              ("publish", matrix.PUBLISH_DUCKDB)):
            start, rerun = LAYER_START[points[0][1]]
            steps.append({"kind": "chain", "name": f"combined_{chain}", "start": start,
                          "kills": points, "rerun": rerun})
        lines = run_plan(world, root / "work", steps, Faults(retry_after=0))
        reference = lines[0]["hashes"]
        results = {line["chain"]: line for line in lines if "chain" in line}
        single_ok = sum(survived(results[f"single_{n}"], reference) for n in range(len(singles)))
        pg_ok = pg_tried = 0
        for number in range(len(matrix.PUBLISH_POSTGRES) if use_postgres else 0):
            line = results[f"pg_{number}"]
            clean = line["kills"][0]["hashes"]
            pg_tried += 1
            pg_ok += (line["kills"][1]["code"] == KILLED and line["kills"][1]["hashes"] == clean
                      and line["rerun_code"] == 0 and line["hashes"] == clean and not line["leftovers"])
        combined = [results[f"combined_{c}"] for c in ("staging", "resolution", "publish")]
        combined_ok = sum(survived(line, reference) for line in combined)

        # every landing point again while the sources fail now and then
        faulty = Faults(rate_limit=0.05, server_error=0.05, truncated=0.05, retry_after=0)
        fault_steps = [{"kind": "reference"}] + [
            {"kind": "chain", "name": f"faulty_{n}", "start": "empty", "kills": [(point, "raw")], "rerun": "all"}
            for n, (point, _) in enumerate(matrix.LANDING)]
        fault_lines = run_plan(world, root / "work-faults", fault_steps, faulty)
        faulty_ok = sum(survived(line, reference) for line in fault_lines if "chain" in line)
        for line in lines + fault_lines:  # say which, if any, did not survive
            if "chain" in line and not line["chain"].startswith("pg_") and not survived(line, reference):
                print(f"NOT SURVIVED: {line['chain']}: kills {[(k['point'], k['code']) for k in line['kills']]}, "
                      f"rerun {line['rerun_code']}, leftovers {line['leftovers']}", file=sys.stderr)

        # concurrent publishes of the reference's files to one warehouse
        reference_dir = root / "work" / "reference"
        duck_url = f"duckdb:///{root / 'concurrent.duckdb'}"
        duck_failed, duck_seconds = concurrent_publishes(reference_dir, duck_url, args.concurrent)
        duck_same = table_hashes(duck_url) == reference
        pg_failed = pg_seconds = None
        if use_postgres:
            pg_failed, pg_seconds = concurrent_publishes(reference_dir, pg_url + "concurrent", args.concurrent)
    finally:
        if use_postgres:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    total_points = len(singles) + pg_tried
    print(f"\n### Reliability ({args.persons} persons, {datetime.now():%d %b %Y}, "
          f"{time.monotonic() - began:.0f} s)\n")
    print("| what | tried | survived | command |")
    print("| --- | ---: | ---: | --- |")
    print(f"| kill points, each on its own (SIGKILL, rerun, warehouse hash = clean sync's) | "
          f"{total_points} | {single_ok + pg_ok} | `.venv/bin/python bench/crash.py` |")
    print(f"| fault combinations (a layer killed at every point in a row; every landing point "
          f"with 429/5xx/truncated bodies) | {len(combined) + len(matrix.LANDING)} | "
          f"{combined_ok + faulty_ok} | `.venv/bin/python bench/crash.py` |")
    print(f"| concurrent publishes to one DuckDB file | {args.concurrent} | "
          f"{args.concurrent - duck_failed}{'' if duck_same else ' (content differs!)'} | "
          f"`.venv/bin/python bench/crash.py --concurrent {args.concurrent}` ({duck_seconds:.0f} s) |")
    if pg_failed is not None:
        print(f"| concurrent publishes to one PostgreSQL schema | {args.concurrent} | "
              f"{args.concurrent - pg_failed} | same ({pg_seconds:.0f} s) |")


if __name__ == "__main__":
    main()
