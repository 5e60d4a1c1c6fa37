"""A month of nightly publishes: does the warehouse stay small and its publish fast?

    .venv/bin/python bench/nights.py [--persons 20000] [--nights 30] [--postgres URL] [--out DIR]
    .venv/bin/python bench/nights.py --replay [...]   # the publishes again, on the kept inputs

On a sandbox world (generated once under OUT, copied), with both sandbox servers in their own
process (bench/pull.py's `serving`):

* night 0: the first sync (`sync_all` through Dagster, as bench/sync.py's `run_sync` runs it);
* nights 1..N: the 1% change set of bench/sync.py (`change_one_percent`: a sandbox change set
  plus 1% of every stream's rows stamped again) made in the world, then the same sync.

After each sync its resolved and staged files (what the publish reads) are kept, hard-linked,
under <work>/inputs/night-NN, and published by `pipelines.warehouse.publish.publish` (the
function the sync's publish step calls, incremental as there) into a warehouse of each target,
a DATA_DIR of its own per target (its own kept files and record), one day later each night:
DuckDB (a file) and, with `--postgres`, PostgreSQL (schema `nightly` of that database). A
nightly publish of night n finds the kept files and record of night n-1, so the large tables
that changed are loaded as deltas (DELETE the changed keys, INSERT the new rows) exactly as
in a nightly sync. `--replay` publishes the kept inputs again into fresh warehouses (no
sync): a change to the publish measured over the same month in minutes.

Per night: the publish's wall and CPU seconds, how many tables were unchanged / loaded as a
delta / in full, the DuckDB file's size with its used and free blocks, and on PostgreSQL the
tables' total size (`pg_total_relation_size`, indexes and TOAST included), their dead tuples
(`n_dead_tup`) and the (auto)vacuums run so far. At the end, the last night's inputs are
published in full into a fresh warehouse of each target (DuckDB: a new file; PostgreSQL:
schema `rebuilt`), starting from the nightly warehouse's organization history, which a
warehouse carries from sync to sync; its size, and each table compared with the nightly
warehouse's (tests/crash/harness.py's content hashes, as the delta tests compare them).

JSON and Markdown in OUT (nights-p<N>.json, nights-p<N>.md); progress on stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from publish_step import lay_inputs  # noqa: E402
from pull import ensure_world, serving  # noqa: E402
from sync import OUT, change_one_percent, run_sync  # noqa: E402

# the first night's publish instant; each night one day later (the nightly sync runs at 02:00)
FIRST_NIGHT = dt.datetime(2026, 12, 9, 2, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
NIGHTLY_SCHEMA, REBUILT_SCHEMA = "nightly", "rebuilt"


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def settings_for(data_dir: Path, warehouse_url: str):
    from pipelines.config import Settings

    return Settings.from_env({**os.environ, "DATA_DIR": str(data_dir), "WAREHOUSE_URL": warehouse_url})


def duckdb_url(data_dir: Path) -> str:
    return f"duckdb:///{data_dir / 'warehouse.duckdb'}"


# -- what a warehouse holds ------------------------------------------------------------------


def duckdb_size(database: Path) -> dict:
    """The file's bytes, and its blocks used and free (PRAGMA database_size)."""
    import duckdb

    with duckdb.connect(str(database), read_only=True) as con:
        blocks, used, free = con.execute(
            "SELECT total_blocks, used_blocks, free_blocks FROM pragma_database_size()").fetchone()
    return {"file_bytes": database.stat().st_size, "total_blocks": blocks, "used_blocks": used,
            "free_blocks": free}


def postgres_size(url: str, schema: str) -> dict:
    """The schema's tables: total bytes (indexes, TOAST), live and dead tuples, vacuums so far."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as con:
            con.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
            total, live, dead, vacuums, autovacuums = con.execute(sa.text(
                "SELECT coalesce(sum(pg_total_relation_size(relid)), 0), coalesce(sum(n_live_tup), 0), "
                "coalesce(sum(n_dead_tup), 0), coalesce(sum(vacuum_count), 0), "
                "coalesce(sum(autovacuum_count), 0) FROM pg_stat_user_tables WHERE schemaname = :schema"),
                {"schema": schema}).one()
    finally:
        engine.dispose()
    return {"total_bytes": int(total), "live_tuples": int(live), "dead_tuples": int(dead),
            "vacuums": int(vacuums), "autovacuums": int(autovacuums)}


def size_of(target: dict) -> dict:
    if target["name"] == "duckdb":
        return duckdb_size(target["data_dir"] / "warehouse.duckdb")
    return postgres_size(target["url"], target["schema"])


# -- one publish -----------------------------------------------------------------------------


def publish_night(target: dict, inputs: Path, as_of: dt.datetime, incremental: bool = True) -> dict:
    """The night's inputs laid into the target's DATA_DIR and published there, timed."""
    from pipelines.warehouse.publish import publish

    lay_inputs(inputs, target["data_dir"])
    settings = settings_for(target["data_dir"], target["url"])
    wall, cpu = time.perf_counter(), time.process_time()
    result = publish(settings, as_of=as_of, schema=target["schema"], incremental=incremental)
    outcome = {"wall_s": round(time.perf_counter() - wall, 2), "cpu_s": round(time.process_time() - cpu, 2)}
    kinds = list(result.loads.values())
    outcome.update({kind: kinds.count(kind) for kind in ("unchanged", "delta", "full")})
    outcome["delta_tables"] = sorted(name for name, kind in result.loads.items() if kind == "delta")
    outcome["rows"] = sum(result.rows.values())
    outcome.update(size_of(target))
    return outcome


def targets_in(work: Path, postgres: str | None, label: str) -> list[dict]:
    """A DATA_DIR per target under <work>/<label>-<target>, emptied; the PostgreSQL schema dropped."""
    targets = []
    for name in ("duckdb", "postgresql") if postgres else ("duckdb",):
        data_dir = work / f"{label}-{name}"
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.mkdir(parents=True)
        if name == "duckdb":
            targets.append({"name": name, "data_dir": data_dir, "url": duckdb_url(data_dir), "schema": None})
        else:
            schema = NIGHTLY_SCHEMA if label == "nightly" else REBUILT_SCHEMA
            drop_schema(postgres, schema)
            targets.append({"name": name, "data_dir": data_dir, "url": postgres, "schema": schema})
    return targets


def drop_schema(url: str, schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.begin() as con:
            con.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        engine.dispose()


# -- the rebuild -----------------------------------------------------------------------------


def seed_history(nightly: dict, rebuilt: dict) -> None:
    """The fresh warehouse starts with the nightly one's organization history (a warehouse
    carries it from publish to publish: without it the rebuild would date every status anew)."""
    import sqlalchemy as sa

    from pipelines.warehouse.history import HISTORY_TABLE

    if nightly["name"] == "duckdb":
        import duckdb

        with duckdb.connect(str(rebuilt["data_dir"] / "warehouse.duckdb")) as con:
            con.execute("ATTACH ? AS nightly (READ_ONLY)", [str(nightly["data_dir"] / "warehouse.duckdb")])
            con.execute(f'CREATE TABLE main."{HISTORY_TABLE}" AS SELECT * FROM nightly.main."{HISTORY_TABLE}"')
        return
    engine = sa.create_engine(rebuilt["url"])
    try:
        with engine.begin() as con:
            con.execute(sa.text(f'CREATE SCHEMA "{rebuilt["schema"]}"'))
            con.execute(sa.text(f'CREATE TABLE "{rebuilt["schema"]}"."{HISTORY_TABLE}" AS '
                                f'SELECT * FROM "{nightly["schema"]}"."{HISTORY_TABLE}"'))
    finally:
        engine.dispose()


def rebuild_and_compare(work: Path, nightly: list[dict], postgres: str | None, inputs: Path,
                        as_of: dt.datetime) -> dict:
    from tests.crash.harness import table_hashes

    outcome = {}
    for night_target, fresh in zip(nightly, targets_in(work, postgres, "rebuilt")):
        seed_history(night_target, fresh)
        published = publish_night(fresh, inputs, as_of, incremental=False)
        ours = table_hashes(night_target["url"], night_target["schema"])
        theirs = table_hashes(fresh["url"], fresh["schema"])
        published["tables_compared"] = len(ours)
        published["tables_differing"] = sorted(t for t in ours.keys() | theirs.keys() if ours.get(t) != theirs.get(t))
        outcome[fresh["name"]] = published
        progress(f"rebuilt {fresh['name']}: {json.dumps(published)}")
    return outcome


# -- the month -------------------------------------------------------------------------------


def keep_inputs(data_dir: Path, inputs: Path) -> None:
    """The sync's resolved and staged files, hard-linked (the pipeline replaces its files by
    rename, never in place, so the next night leaves these as they are)."""
    shutil.rmtree(inputs, ignore_errors=True)
    inputs.mkdir(parents=True)
    for folder in ("resolved", "staged"):
        subprocess.run(["cp", "-al", str(data_dir / folder), str(inputs / folder)], check=True)


def night_instant(night: int) -> dt.datetime:
    return FIRST_NIGHT + dt.timedelta(days=night)


def run_month(persons: int, seed: int, nights: int, out: Path, postgres: str | None, replay: bool, save) -> dict:
    work = out / f"nights-p{persons}-s{seed}"
    result: dict = {"persons": persons, "seed": seed, "nights": [], "replay": replay,
                    "load_average": [os.getloadavg()[0]]}
    if replay:
        if not (work / "inputs" / f"night-{nights:02d}").is_dir():
            raise SystemExit(f"{work}: no kept inputs for {nights} nights: run without --replay first")
    else:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    targets = targets_in(work, postgres, "nightly")

    def publish_all(night: int, sync: dict | None) -> None:
        row: dict = {"night": night, "as_of": night_instant(night).isoformat()}
        if sync is not None:
            row["sync"] = sync
        for target in targets:
            row[target["name"]] = publish_night(target, work / "inputs" / f"night-{night:02d}", night_instant(night))
        result["nights"].append(row)
        result["load_average"].append(os.getloadavg()[0])
        progress(f"night {night}: {json.dumps({k: v for k, v in row.items() if k != 'sync'})}")
        save(result)

    if replay:
        for night in range(nights + 1):
            publish_all(night, None)
    else:
        world = work / "world"
        shutil.copytree(ensure_world(persons, seed, out), world)
        with serving(world) as (_, urls):
            for night in range(nights + 1):
                changed = change_one_percent(world)["changeset"] if night else None
                sync = run_sync(work, urls, f"night {night}")
                sync = {"seconds": sync["seconds"], "cpu_seconds": sync["cpu_seconds"],
                        "warehouse_s": sync["stages"].get("warehouse"), "changeset": changed,
                        "sync_warehouse_bytes": (work / "data" / "warehouse.duckdb").stat().st_size}
                keep_inputs(work / "data", work / "inputs" / f"night-{night:02d}")
                publish_all(night, sync)
    result["rebuilt"] = rebuild_and_compare(work, targets, postgres, work / "inputs" / f"night-{nights:02d}",
                                            night_instant(nights))
    save(result)
    return result


# -- the report ------------------------------------------------------------------------------


def mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.1f}"


def markdown(result: dict) -> str:
    has_pg = any("postgresql" in row for row in result["nights"])
    head = ("| night | DuckDB wall s | CPU s | unchanged / delta / full | file MiB | used / free blocks |"
            + (" PG wall s | CPU s | unchanged / delta / full | tables MiB | dead tuples | autovacuums |" if has_pg else ""))
    lines = [head, "|" + " ---: |" * (head.count("|") - 1)]
    for row in result["nights"]:
        d = row["duckdb"]
        line = (f"| {row['night']} | {d['wall_s']:.2f} | {d['cpu_s']:.2f} | {d['unchanged']} / {d['delta']} / {d['full']} "
                f"| {mib(d['file_bytes'])} | {d['used_blocks']:,} / {d['free_blocks']:,} |")
        if has_pg:
            p = row["postgresql"]
            line += (f" {p['wall_s']:.2f} | {p['cpu_s']:.2f} | {p['unchanged']} / {p['delta']} / {p['full']} "
                     f"| {mib(p['total_bytes'])} | {p['dead_tuples']:,} | {p['autovacuums']} |")
        lines.append(line)
    rebuilt = result.get("rebuilt", {})
    last = result["nights"][-1]
    for name, fresh in rebuilt.items():
        size_key = "file_bytes" if name == "duckdb" else "total_bytes"
        nightly = last[name][size_key]
        differing = fresh["tables_differing"]
        lines += ["", (
            f"{name}: the last night's inputs published in full into a fresh warehouse: {mib(fresh[size_key])} MiB "
            f"(the nightly one: {mib(nightly)} MiB, {nightly / fresh[size_key] - 1:+.0%}), "
            f"{fresh['wall_s']:.2f} s wall, {fresh['cpu_s']:.2f} s CPU; "
            f"{fresh['tables_compared'] - len(differing)} of {fresh['tables_compared']} tables equal"
            + (f" (differ: {', '.join(differing)})" if differing else ""))]
    syncs = [row["sync"]["seconds"] for row in result["nights"] if "sync" in row]
    if syncs:
        lines += ["", f"syncs: first {syncs[0]:.1f} s, nights {min(syncs[1:] or [0]):.1f}–{max(syncs[1:] or [0]):.1f} s"]
    loads = result["load_average"]
    lines += ["", f"load average (1 min) during the run: {min(loads):.1f}–{max(loads):.1f}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--nights", type=int, default=30, help="nights after the first sync")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--postgres", help="a PostgreSQL database to publish into too (schemas "
                                           f"{NIGHTLY_SCHEMA} and {REBUILT_SCHEMA}, dropped first)")
    parser.add_argument("--replay", action="store_true",
                        help="no syncs: publish the inputs kept by an earlier run again, into fresh warehouses")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--label", default="", help="suffix of the result files' names")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"nights-p{args.persons}{args.label}"

    def save(result: dict) -> None:
        (args.out / f"{name}.json").write_text(json.dumps(result, indent=1, default=str))

    result = run_month(args.persons, args.seed, args.nights, args.out.resolve(), args.postgres, args.replay, save)
    report = markdown(result)
    (args.out / f"{name}.md").write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
