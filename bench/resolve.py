"""Benchmark of volunteer resolution: this project's resolver against Splink 5 on DuckDB.

Builds the input through the real chain — a sandbox world (sandbox.generate_world), its rows
landed as raw pages (over HTTP with the real clients, or, for the largest worlds, copied
straight from the world's SQLite into the same raw layout), staged by pipelines.staging — then
resolves the staged volunteers with each engine in its own process (so peak memory is each
engine's own) and scores every engine on the sandbox truth: pairwise precision, recall, F1 and
the confusion counts, wall time and peak RSS. The full resolve_all (volunteers, organizations,
services) also runs once, for the hours check (per person and province, within 0.01 h).

Engines:
- ours: pipelines.resolve (blocking + Fellegi–Sunter with Chinese-name levels, m from
  national-number links, u from random pairs, term frequencies, constrained clustering);
- splink_chinese: Splink 5 (DuckDBAPI, Linker) with the same blocking and Chinese-name levels
  (exact with term frequency / same pinyin / Levenshtein 1), trained the documented way
  (random-sampling u, EM on blocks), clustered at the same match threshold (schemas/matching.yaml);
- splink_default: Splink 5's out-of-the-box comparisons (NameComparison, DateOfBirthComparison,
  ExactMatch), i.e. Latin-name thresholds, same blocking, training and threshold.

Splink is a benchmark-only package (the `bench` extra; `make bench` installs it). Without it
the Splink engines are left out with a line saying so, and ours is still measured.

Usage:
  .venv/bin/python bench/resolve.py --persons 100000 --work /tmp/bench-100k [--land sqlite|http]
  .venv/bin/python bench/resolve.py --persons 1000000 --work /tmp/bench-1m --land sqlite
Results: <work>/results.json and a Markdown table on stdout (copied into docs/RESOLUTION.md);
progress on stderr. A <work> folder that already holds a world and its staged volunteers is
reused (only the engines and resolve_all run again).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BEIJING = timezone(timedelta(hours=8))
AS_OF = datetime(2026, 6, 30, 18, 0, tzinfo=BEIJING)
SPLINK_ENGINES = ("splink_chinese", "splink_default")
SPLINK_MISSING = ("Splink is not installed: the {engines} engine(s) were not run "
                  "(`make bench` installs it, with the `bench` extra).")


def splink_installed() -> bool:
    return importlib.util.find_spec("splink") is not None


# ------------------------------------------------------------------ building the input

def build_world(work: Path, persons: int, seed: int) -> Path:
    from sandbox import generate_world

    world = work / "world"
    if not (world / "truth" / "accounts.parquet").exists():
        started = time.perf_counter()
        generate_world(world, persons=persons, seed=seed, as_of=AS_OF)
        print(f"world generated in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    return world


def land_over_http(world: Path, data_dir: Path) -> None:
    from pipelines.landing import land_stream
    from pipelines.sources import NATIONAL_STREAMS, PROVINCIAL_STREAMS, NationalApi, ProvincialApi
    from sandbox import SandboxServers

    with SandboxServers(world) as servers:
        apis = {
            "national": NationalApi(servers.national_url, servers.national_client_id, servers.national_client_secret, "52"),
            "provincial": ProvincialApi(servers.provincial_url, servers.provincial_app_key, servers.provincial_app_secret),
        }
        for source, streams in (("national", NATIONAL_STREAMS), ("provincial", PROVINCIAL_STREAMS)):
            for stream in streams:
                land_stream(apis[source], stream, data_dir, "bench")


def land_from_sqlite(world: Path, data_dir: Path, page_rows: int = 200_000) -> None:
    """The raw layout of pipelines/landing.py, written straight from the world's tables.

    The HTTP walk of a million-person world takes longer than the resolution being measured;
    the rows and their bodies are exactly what the servers would serve (national: region 52).
    """
    from pipelines.landing import page_table, private_dir, raw_stream_dir, write_page
    from pipelines.sources import NATIONAL_STREAMS, PROVINCIAL_STREAMS

    fetched_at = datetime.now(UTC)
    for source, streams in (("national", NATIONAL_STREAMS), ("provincial", PROVINCIAL_STREAMS)):
        con = sqlite3.connect(world / f"{source}.sqlite")
        for name, stream in streams.items():
            where = " WHERE region GLOB '52*'" if source == "national" else ""
            cursor = con.execute(f"SELECT body FROM {name}{where} ORDER BY updated_at, id")
            sync_dir = raw_stream_dir(data_dir, source, name) / "bench"
            sync_dir.mkdir(parents=True, exist_ok=True)
            private_dir(sync_dir)
            page = 0
            while True:
                bodies = cursor.fetchmany(page_rows)
                if not bodies:
                    break
                page += 1
                records = [json.loads(body) for (body,) in bodies]
                write_page(sync_dir, page, page_table(stream, records, "bench", fetched_at, page))
        con.close()


def stage(data_dir: Path) -> None:
    from pipelines.config import Settings
    from pipelines.staging import stage_all

    stage_all(Settings(data_dir=data_dir), as_of=AS_OF)


# ------------------------------------------------------------------ engines (child processes)

def truth_of(world: Path) -> pd.DataFrame:
    from pipelines.resolve.quality import truth_accounts

    return truth_accounts(world / "truth", "volunteer")


def run_ours(staged: pd.DataFrame) -> pd.DataFrame:
    from pipelines.resolve.volunteers import resolve_volunteers

    result = resolve_volunteers(staged, synced_at=pd.Timestamp(AS_OF))
    return result.source_map.rename(columns={"volunteer_key": "cluster"})


def splink_input(staged: pd.DataFrame) -> pd.DataFrame:
    from pipelines.resolve.comparisons import add_match_columns
    from pipelines.resolve.volunteers import prepare_accounts

    accounts = add_match_columns(prepare_accounts(staged))
    frame = pd.DataFrame({
        "unique_id": accounts["idx"],
        "name": accounts["name"], "name_pinyin": accounts["name_pinyin"], "surname": accounts["surname"],
        "birth_date": pd.to_datetime(accounts["birth_date"]).dt.strftime("%Y-%m-%d"),
        "birth_year": accounts["birth_year"].astype("string"),
        "gender": accounts["gender"], "phone_hash": accounts["phone_hash"],
        "phone_ends": accounts["phone_prefix3"] + accounts["phone_suffix4"],
        "cert_valid_hash": accounts["cert_valid_hash"],
        "cert_ends": accounts["cert_prefix4"] + accounts["cert_suffix4"],
        "region_code": accounts["region_code"], "prefecture": accounts["region_code"].str.slice(0, 4),
        # the national-number rule as a column: national accounts' own number, provincial accounts' link
        "national_no": accounts["source_id"].where(accounts["source"] == "national", accounts["national_volunteer_no"]),
    })
    for column in frame.columns:
        if column != "unique_id":
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame, accounts


def splink_settings(variant: str):
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    if variant == "splink_chinese":
        name = cl.CustomComparison(comparison_levels=[
            cll.NullLevel("name"),
            cll.ExactMatchLevel("name").configure(tf_adjustment_column="name"),
            cll.CustomLevel("name_pinyin_l = name_pinyin_r", label_for_charts="same pinyin"),
            cll.LevenshteinLevel("name", 1),
            cll.ElseLevel(),
        ], output_column_name="name")
        birth = cl.DateOfBirthComparison("birth_date", input_is_string=True, datetime_thresholds=[1, 1], datetime_metrics=["month", "year"])
    else:
        name = cl.NameComparison("name")
        birth = cl.DateOfBirthComparison("birth_date", input_is_string=True)
    phone = cl.CustomComparison(comparison_levels=[
        cll.CustomLevel("(phone_hash_l IS NULL AND phone_ends_l IS NULL) OR (phone_hash_r IS NULL AND phone_ends_r IS NULL)").configure(is_null_level=True),
        cll.ExactMatchLevel("phone_hash"),
        cll.ExactMatchLevel("phone_ends"),
        cll.ElseLevel(),
    ], output_column_name="phone")
    cert = cl.CustomComparison(comparison_levels=[
        cll.CustomLevel("cert_ends_l IS NULL OR cert_ends_r IS NULL").configure(is_null_level=True),
        cll.CustomLevel("cert_valid_hash_l = cert_valid_hash_r", label_for_charts="same valid number"),
        cll.CustomLevel("cert_valid_hash_l <> cert_valid_hash_r", label_for_charts="different valid numbers"),
        cll.ExactMatchLevel("cert_ends"),
        cll.ElseLevel(),
    ], output_column_name="cert")
    region = cl.CustomComparison(comparison_levels=[
        cll.NullLevel("region_code"), cll.ExactMatchLevel("region_code"), cll.ExactMatchLevel("prefecture"), cll.ElseLevel(),
    ], output_column_name="region")
    national_no = cl.ExactMatch("national_no")
    blocking = [
        block_on("cert_valid_hash"), block_on("national_no"), block_on("name", "birth_date"),
        block_on("cert_ends", "surname"), block_on("cert_ends", "birth_date"), block_on("phone_hash"),
        block_on("phone_ends", "surname"), block_on("birth_date", "region_code"), block_on("name", "region_code"),
        block_on("name_pinyin", "birth_date"), block_on("name", "birth_year", "gender"),
    ]
    return SettingsCreator(
        link_type="dedupe_only",
        comparisons=[name, birth, cl.ExactMatch("gender"), phone, cert, region, national_no],
        blocking_rules_to_generate_predictions=blocking,
        retain_intermediate_calculation_columns=False,
    ), block_on


def run_splink(staged: pd.DataFrame, variant: str) -> pd.DataFrame:
    from splink import DuckDBAPI, Linker

    frame, accounts = splink_input(staged)
    settings, block_on = splink_settings(variant)
    db_api = DuckDBAPI()
    sdf = db_api.register(frame)
    linker = Linker(sdf, settings, log_level=None)
    linker.training.estimate_probability_two_random_records_match([block_on("cert_valid_hash")], recall=0.6)
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=1)
    for rule in (block_on("name", "birth_date"), block_on("cert_ends"), block_on("birth_date", "region_code")):
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    from pipelines.resolve.rules import load_matching_rules

    threshold = load_matching_rules().match_probability  # the same threshold as ours
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, threshold).as_pandas_dataframe()
    cluster_of = clusters.set_index("unique_id")["cluster_id"]
    return pd.DataFrame({"source": accounts["source"], "source_id": accounts["source_id"],
                         "cluster": accounts["idx"].map(cluster_of).astype(str)})


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: reset by exec, unlike ru_maxrss, which a
    child inherits from the parent it was forked from)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 0)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0)


def engine_main(engine: str, staged_path: Path, truth_path: Path, out: Path) -> None:
    from pipelines.resolve.quality import pairwise_confusion

    staged = pd.read_parquet(staged_path)
    started = time.perf_counter()
    result = run_ours(staged) if engine == "ours" else run_splink(staged, engine)
    seconds = time.perf_counter() - started
    truth = pd.read_parquet(truth_path)
    metrics = pairwise_confusion(result, truth, "cluster", "true_id")
    metrics.update({
        "engine": engine, "accounts": len(staged), "seconds": round(seconds, 1),
        "peak_rss_mb": peak_rss_mb(),
    })
    out.write_text(json.dumps(metrics))


# ------------------------------------------------------------------ driver

def run_engine(engine: str, work: Path) -> dict:
    out = work / f"engine-{engine}.json"
    command = [sys.executable, __file__, "--engine", engine, "--work", str(work)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        return {"engine": engine, "error": completed.stderr[-2000:]}
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--land", choices=["http", "sqlite"], default="sqlite")
    parser.add_argument("--engines", default="ours,splink_chinese,splink_default")
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    args = parser.parse_args()
    work: Path = args.work
    data_dir = work / "data"
    if args.engine:
        engine_main(args.engine, data_dir / "staged" / "volunteers.parquet", work / "truth_volunteers.parquet",
                    work / f"engine-{args.engine}.json")
        return

    work.mkdir(parents=True, exist_ok=True)
    timings = {}
    started = time.perf_counter()
    world = build_world(work, args.persons, args.seed)
    timings["generate_s"] = round(time.perf_counter() - started, 1)
    if not (data_dir / "staged" / "volunteers.parquet").exists():
        started = time.perf_counter()
        (land_over_http if args.land == "http" else land_from_sqlite)(world, data_dir)
        timings["land_s"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        stage(data_dir)
        timings["stage_s"] = round(time.perf_counter() - started, 1)
    truth_of(world).to_parquet(work / "truth_volunteers.parquet")

    engines = [engine for engine in args.engines.split(",") if engine]
    skipped = [] if splink_installed() else [engine for engine in engines if engine in SPLINK_ENGINES]
    if skipped:
        print(SPLINK_MISSING.format(engines=", ".join(skipped)), file=sys.stderr)
    results = [run_engine(engine, work) for engine in engines if engine not in skipped]

    # the whole resolution once more, with services, for the hours figures
    from pipelines.config import Settings
    from pipelines.resolve.store import resolve_all

    started = time.perf_counter()
    summary = resolve_all(Settings(data_dir=data_dir, sandbox_truth_dir=str(world / "truth")), AS_OF)
    timings["resolve_all_s"] = round(time.perf_counter() - started, 1)
    report = {"persons": args.persons, "seed": args.seed, "land": args.land, "timings": timings,
              "engines": results, "engines_not_run": skipped, "resolve_all": summary}
    (work / "results.json").write_text(json.dumps(report, ensure_ascii=False, indent=1, default=str))
    print(f"Resolving the volunteer accounts of a {args.persons:,}-person sandbox world (seed {args.seed}, "
          f"landed via {args.land}, staged by pipelines.staging); scores against the sandbox truth.\n")
    print("| engine | accounts | time (s) | peak RSS (MB) | precision | recall | F1 | TP | FP | FN |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['engine']} | error: {r['error'].splitlines()[-1] if r['error'] else ''} |")
            continue
        print(f"| {r['engine']} | {r['accounts']} | {r['seconds']} | {r['peak_rss_mb']:.0f} | {r['precision']:.4f} | "
              f"{r['recall']:.4f} | {r['f1']:.4f} | {r['true_positive_pairs']} | {r['false_positive_pairs']} | "
              f"{r['false_negative_pairs']} |")
    if skipped:
        print("\n" + SPLINK_MISSING.format(engines=", ".join(skipped)))
    hours = summary.get("quality", {}).get("hours", {})
    print(f"\nhours: {json.dumps(hours)}\ntimings: {json.dumps(timings)}")


if __name__ == "__main__":
    main()
