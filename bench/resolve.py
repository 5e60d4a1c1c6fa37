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
- splink_tuned: Splink 5 (DuckDBAPI, Linker) configured as its documentation recommends for
  this data: the same blocking including the masked-form rules (number ends, phone ends),
  Chinese-name levels (exact with term frequency / same pinyin / Levenshtein <= 1), a "two
  valid numbers differ" level, the prior from the deterministic rules and their estimated
  recall, u from 1e8 random pairs, EM on four blocks that leave every comparison estimated,
  and the threshold read off the match-weight histogram (its trough);
- splink_default: Splink 5's out-of-the-box comparisons (NameComparison, DateOfBirthComparison,
  ExactMatch), i.e. Latin-name thresholds, the same blocking, a lighter training (2e6 random
  pairs, EM on three blocks) and our match threshold (0.95).

Each engine's false pairs are also counted by cause (namesakes or not; what their numbers say),
and its missed pairs by what the two accounts' numbers are and, for ours, what became of the
pair (not a candidate, below the review band, in review) and the level of every comparison.

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

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BEIJING = timezone(timedelta(hours=8))
AS_OF = datetime(2026, 6, 30, 18, 0, tzinfo=BEIJING)
SPLINK_ENGINES = ("splink_tuned", "splink_default")
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


def run_ours(staged: pd.DataFrame, services_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Our clusters, and every pair we scored (with its levels: the misses' fate)."""
    from pipelines.config import Settings
    from pipelines.resolve.service_links import pushed_service_pairs
    from pipelines.resolve.volunteers import resolve_volunteers

    result = resolve_volunteers(staged, synced_at=pd.Timestamp(AS_OF), service_links=pushed_service_pairs(services_path),
                                name_key=Settings().pii_hash_key)
    return result.source_map.rename(columns={"volunteer_key": "cluster"}), result.scored_pairs


def splink_input(staged: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    from pipelines.config import Settings
    from pipelines.resolve.comparisons import add_match_columns
    from pipelines.resolve.volunteers import prepare_accounts

    accounts = add_match_columns(prepare_accounts(staged), name_key=Settings().pii_hash_key)
    frame = pd.DataFrame({
        "unique_id": accounts["idx"],
        "system": accounts["source"],
        "name": accounts["name"], "name_pinyin": accounts["name_pinyin"], "surname": accounts["surname"],
        "birth_date": pd.to_datetime(accounts["birth_date"]).dt.strftime("%Y-%m-%d"),
        "birth_year": accounts["birth_year"].astype("string"),
        "gender": accounts["gender"], "phone_hash": accounts["phone_hash"],
        "phone_ends": accounts["phone_prefix3"] + accounts["phone_suffix4"],
        "cert_valid_hash": accounts["cert_valid_hash"],
        # the masked form: what masking keeps of a number (first 4 + last 4), for every number
        "cert_ends": accounts["cert_prefix4"] + accounts["cert_suffix4"], "cert_suffix4": accounts["cert_suffix4"],
        "region_code": accounts["region_code"], "prefecture": accounts["region_code"].str.slice(0, 4),
        # the national-number rule as a column: national accounts' own number, provincial accounts' link
        "national_no": accounts["source_id"].where(accounts["source"] == "national", accounts["national_volunteer_no"]),
    })
    for column in frame.columns:
        if column != "unique_id":
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame, accounts


# Prediction blocking: ours (schemas/matching.yaml), plus the two deterministic keys, without
# our cap on the same name in one county (Splink has no per-rule cap: it gets every pair of
# those blocks, so name + county + birth day adds nothing). The masked-form rules (number
# ends, phone ends) are what finds a masked account's other account.
def splink_blocking(block_on) -> list:
    return [
        block_on("cert_valid_hash"), block_on("national_no"), block_on("name", "birth_date"),
        block_on("cert_ends", "surname"), block_on("cert_ends", "birth_date"), block_on("phone_hash"),
        block_on("phone_ends", "surname"), block_on("birth_date", "region_code"), block_on("name", "region_code"),
        block_on("name", "cert_suffix4"),
        block_on("name_pinyin", "birth_date"), block_on("name", "birth_year", "gender"),
    ]


def splink_settings(variant: str):
    """Splink settings. splink_tuned follows Splink's documentation for data like ours:
    Chinese-name levels (exact with term frequencies / same pinyin / Levenshtein <= 1), dates
    with a typo level, the number compared in its masked form with a 'two valid numbers differ'
    level of its own (Splink's only way to say 'never the same'), phones by hash then by their
    masked ends, the systems the two accounts come from. splink_default is the out-of-the-box
    configuration (Latin-name thresholds) on the same input and blocking."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    if variant == "splink_tuned":
        name = cl.CustomComparison(comparison_levels=[
            cll.NullLevel("name"),
            cll.ExactMatchLevel("name").configure(tf_adjustment_column="name"),
            cll.CustomLevel("name_pinyin_l = name_pinyin_r", label_for_charts="same pinyin"),
            cll.LevenshteinLevel("name", 1),
            cll.ElseLevel(),
        ], output_column_name="name")
        birth = cl.CustomComparison(comparison_levels=[
            cll.NullLevel("birth_date"),
            cll.ExactMatchLevel("birth_date"),
            cll.LevenshteinLevel("birth_date", 1),  # one digit of the date typed wrong
            cll.CustomLevel("abs(date_diff('day', try_cast(birth_date_l AS DATE), try_cast(birth_date_r AS DATE))) <= 1 "
                            "OR (substr(birth_date_l, 1, 4) = substr(birth_date_r, 1, 4) AND "
                            "substr(birth_date_l, 6, 2) = substr(birth_date_r, 9, 2) AND "
                            "substr(birth_date_l, 9, 2) = substr(birth_date_r, 6, 2))",
                            label_for_charts="a day off, or day and month swapped"),
            cll.ElseLevel(),
        ], output_column_name="birth_date")
        cert = cl.CustomComparison(comparison_levels=[
            cll.CustomLevel("cert_ends_l IS NULL OR cert_ends_r IS NULL").configure(is_null_level=True),
            cll.CustomLevel("cert_valid_hash_l = cert_valid_hash_r", label_for_charts="same valid number"),
            cll.CustomLevel("cert_valid_hash_l <> cert_valid_hash_r", label_for_charts="two valid numbers differ"),
            cll.ExactMatchLevel("cert_ends").configure(label_for_charts="masked form agrees"),
            cll.LevenshteinLevel("cert_ends", 1),  # a mistyped digit within the kept ends
            cll.ElseLevel(),
        ], output_column_name="cert")
        extra = [cl.ExactMatch("system")]
    else:
        name = cl.NameComparison("name")
        birth = cl.DateOfBirthComparison("birth_date", input_is_string=True)
        cert = cl.CustomComparison(comparison_levels=[
            cll.CustomLevel("cert_ends_l IS NULL OR cert_ends_r IS NULL").configure(is_null_level=True),
            cll.CustomLevel("cert_valid_hash_l = cert_valid_hash_r", label_for_charts="same valid number"),
            cll.CustomLevel("cert_valid_hash_l <> cert_valid_hash_r", label_for_charts="two valid numbers differ"),
            cll.ExactMatchLevel("cert_ends"),
            cll.ElseLevel(),
        ], output_column_name="cert")
        extra = []
    phone = cl.CustomComparison(comparison_levels=[
        cll.CustomLevel("(phone_hash_l IS NULL AND phone_ends_l IS NULL) OR (phone_hash_r IS NULL AND phone_ends_r IS NULL)").configure(is_null_level=True),
        cll.ExactMatchLevel("phone_hash"),
        cll.ExactMatchLevel("phone_ends"),
        cll.ElseLevel(),
    ], output_column_name="phone")
    region = cl.CustomComparison(comparison_levels=[
        cll.NullLevel("region_code"), cll.ExactMatchLevel("region_code"), cll.ExactMatchLevel("prefecture"), cll.ElseLevel(),
    ], output_column_name="region")
    national_no = cl.ExactMatch("national_no")
    return SettingsCreator(
        link_type="dedupe_only",
        comparisons=[name, birth, cl.ExactMatch("gender"), phone, cert, region, national_no, *extra],
        blocking_rules_to_generate_predictions=splink_blocking(block_on),
        retain_intermediate_calculation_columns=False,
    ), block_on


def deterministic_recall_estimate(frame: pd.DataFrame) -> float:
    """The share of true pairs the deterministic rules (equal valid number, national number)
    can find, from the input alone (no truth): a pair across the systems is found when both
    numbers are valid, or else when the provincial account carries the national number."""
    national, provincial = frame["system"] == "national", frame["system"] == "provincial"
    valid = frame["cert_valid_hash"].notna()
    both_valid = valid[national].mean() * valid[provincial].mean()
    carries = frame.loc[provincial & ~valid, "national_no"].notna().mean() if (provincial & ~valid).any() else 0.0
    return float(min(max(both_valid + (1 - both_valid) * carries, 0.05), 0.99))


def weight_threshold_from_histogram(weights: pd.Series, bin_bits: float = 1.0) -> float:
    """The match weight at the trough of the predictions' match-weight histogram (the chart
    Splink's documentation reads the threshold from): the emptiest bin between the non-match
    mode (below 0) and the match mode (above 0)."""
    bins = (weights // bin_bits).astype(int)
    counts = bins.value_counts().sort_index()
    counts = counts.reindex(range(counts.index.min(), counts.index.max() + 1), fill_value=0)
    low_mode = counts.loc[counts.index < 0].idxmax() if (counts.index < 0).any() else counts.index.min()
    if not (counts.index >= 0).any():  # no match mode at all (a tiny world): link nothing doubtful
        return float(counts.index.max() * bin_bits + bin_bits)
    high_mode = counts.loc[counts.index >= 0].idxmax()
    between = counts.loc[low_mode:high_mode]
    trough = between.loc[between == between.min()].index
    return float(trough[len(trough) // 2] * bin_bits + bin_bits / 2)


def run_splink(staged: pd.DataFrame, variant: str) -> tuple[pd.DataFrame, dict]:
    from splink import DuckDBAPI, Linker

    frame, accounts = splink_input(staged)
    settings, block_on = splink_settings(variant)
    db_api = DuckDBAPI()
    sdf = db_api.register(frame)
    linker = Linker(sdf, settings, log_level=None)
    details: dict = {}
    if variant == "splink_tuned":
        # the documented recipe: prior from deterministic rules with their estimated recall;
        # u from enough random pairs that every level is seen (the rare masked-form agreement
        # needs tens of millions); EM on blocks where matches are a fair share and that
        # together leave every comparison estimated at least once
        started = time.perf_counter()
        recall = deterministic_recall_estimate(frame)
        linker.training.estimate_probability_two_random_records_match(
            [block_on("cert_valid_hash"), block_on("national_no")], recall=recall)
        linker.training.estimate_u_using_random_sampling(max_pairs=1e8, seed=1)
        u_done = time.perf_counter()
        skipped_blocks = []
        for rule in (block_on("cert_ends"), block_on("name", "birth_date"), block_on("phone_ends"),
                     block_on("name", "region_code")):
            try:
                linker.training.estimate_parameters_using_expectation_maximisation(rule)
            except ValueError:
                # a tiny world (the --quick smoke run): EM drives a level unseen in the block
                # to m = 0, which Splink refuses; the other blocks still train that comparison
                skipped_blocks.append(rule.get_blocking_rule("duckdb").blocking_rule_sql)
        trained = time.perf_counter()
        predictions = linker.inference.predict(threshold_match_weight=-10)
        weights = predictions.as_pandas_dataframe()["match_weight"]
        threshold = weight_threshold_from_histogram(weights)
        predicted = time.perf_counter()
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
            predictions, threshold_match_weight=threshold).as_pandas_dataframe()
        details = {"deterministic_recall_estimate": round(recall, 3), "threshold_match_weight": threshold,
                   "threshold_match_probability": round(1 / (1 + 2 ** -threshold), 6),
                   "em_blocks_skipped": skipped_blocks,
                   "phase_seconds": {"prior_and_u": round(u_done - started, 1), "em": round(trained - u_done, 1),
                                     "predict": round(predicted - trained, 1),
                                     "cluster": round(time.perf_counter() - predicted, 1)}}
    else:
        linker.training.estimate_probability_two_random_records_match([block_on("cert_valid_hash")], recall=0.6)
        linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=1)
        for rule in (block_on("name", "birth_date"), block_on("cert_ends"), block_on("birth_date", "region_code")):
            linker.training.estimate_parameters_using_expectation_maximisation(rule)
        predictions = linker.inference.predict(threshold_match_probability=0.5)
        from pipelines.resolve.rules import load_matching_rules

        threshold = load_matching_rules().match_probability  # the same threshold as ours
        details = {"threshold_match_probability": threshold}
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, threshold).as_pandas_dataframe()
    cluster_of = clusters.set_index("unique_id")["cluster_id"]
    result = pd.DataFrame({"source": accounts["source"], "source_id": accounts["source_id"],
                           "cluster": accounts["idx"].map(cluster_of).astype(str)})
    return result, details


def false_pairs_by_cause(result: pd.DataFrame, truth: pd.DataFrame, staged: pd.DataFrame,
                         persons: pd.DataFrame | None = None) -> dict[str, int]:
    """False pairs (two persons' accounts in one cluster), counted by what held them together.

    For every two true persons sharing a cluster, their account pairs (size × size) are
    counted under: whether they are namesakes (same name, birth date and gender: the sandbox
    plants them), and what their numbers say — real numbers (valid, or masked by the national
    system) that share their kept ends; real numbers that differ; a mistyped number between
    them; or no number to compare. Counts only: no ids leave this function.
    """
    columns = ["source", "source_id", "cert_hash", "cert_valid", "cert_masked", "cert_prefix4", "cert_suffix4"]
    frame = result[["source", "source_id", "cluster"]].merge(
        truth[["source", "source_id", "true_id"]], on=["source", "source_id"]
    ).merge(staged[columns].astype({"source_id": str}), on=["source", "source_id"], how="left")
    mixed = frame.groupby("cluster")["true_id"].transform("nunique") > 1
    frame = frame.loc[mixed]
    namesake_of = {} if persons is None else dict(
        zip(persons["person_id"], persons["namesake_of"].where(persons["namesake_of"].notna(), None)))
    real = frame["cert_valid"].fillna(False).astype(bool) | frame["cert_masked"].fillna(False).astype(bool)
    frame = frame.assign(
        real_ends=(frame["cert_prefix4"] + frame["cert_suffix4"]).where(real),
        mistyped=frame["cert_hash"].notna() & ~frame["cert_valid"].fillna(False).astype(bool),
    )
    causes: dict[str, int] = {}
    for _, members in frame.groupby("cluster"):
        people = {person: group for person, group in members.groupby("true_id")}
        ids = sorted(people)
        for i, left in enumerate(ids):
            for right in ids[i + 1:]:
                a, b = people[left], people[right]
                namesakes = namesake_of.get(left) == right or namesake_of.get(right) == left
                ends_a, ends_b = set(a["real_ends"].dropna()), set(b["real_ends"].dropna())
                if ends_a & ends_b:
                    held = "real numbers share their kept ends (first 4 + last 4)"
                elif ends_a and ends_b:
                    held = "real numbers differ"
                elif a["mistyped"].any() or b["mistyped"].any():
                    held = "bridged by a mistyped number"
                else:
                    held = "no number to compare on one side"
                cause = ("namesakes" if namesakes else "other persons") + ": " + held
                causes[cause] = causes.get(cause, 0) + len(a) * len(b)
    return dict(sorted(causes.items(), key=lambda item: -item[1]))


def number_states(staged: pd.DataFrame) -> pd.Series:
    """Per account (indexed by source, source_id): what its certificate number is — valid,
    masked (the national export's first 4 + last 4), mistyped (present, not valid) or missing."""
    valid = staged["cert_valid"].fillna(False).astype(bool).to_numpy()
    masked = staged["cert_masked"].fillna(False).astype(bool).to_numpy()
    present = staged["cert_hash"].notna().to_numpy()
    state = np.select([valid, masked, present], ["valid", "masked", "mistyped"], "missing")
    index = pd.MultiIndex.from_arrays([staged["source"], staged["source_id"].astype(str)])
    return pd.Series(state, index=index)


EVIDENCE_FIELDS = ["name", "birth_date", "gender", "phone", "cert", "region", "service", "system"]


def missed_pairs_by_cause(result: pd.DataFrame, truth: pd.DataFrame, staged: pd.DataFrame,
                          scored: pd.DataFrame | None = None, match: float = 0.95, review: float = 0.5) -> dict:
    """Missed pairs (two accounts of one true person in two clusters), counted two ways.

    `by_numbers_and_fate`: the two sides' systems and numbers (valid / masked / mistyped /
    missing), and, for an engine whose scored pairs are given, what became of the pair: not a
    candidate (no blocking rule holds), scored below the review band, in the uncertain band,
    held back by the namesake guard, or refused by a cluster constraint (the last three go to
    the review table). `by_evidence` (scored pairs only): the level of every comparison.
    Counts only: no ids, names or numbers leave this function.
    """
    frame = result[["source", "source_id", "cluster"]].merge(truth[["source", "source_id", "true_id"]],
                                                             on=["source", "source_id"])
    pairs = frame.merge(frame, on="true_id", suffixes=("_l", "_r"))
    left_first = (pairs["source_l"] + ":" + pairs["source_id_l"]) < (pairs["source_r"] + ":" + pairs["source_id_r"])
    pairs = pairs.loc[left_first & (pairs["cluster_l"] != pairs["cluster_r"])]
    states = number_states(staged)
    side = lambda s: (pairs[f"source_{s}"].str.slice(0, 4) + " " +  # noqa: E731
                      states.reindex(pd.MultiIndex.from_arrays([pairs[f"source_{s}"], pairs[f"source_id_{s}"]])).to_numpy())
    sides = pd.DataFrame({"l": side("l").to_numpy(), "r": side("r").to_numpy()})
    numbers = sides.min(axis=1) + " / " + sides.max(axis=1)
    by_evidence: dict[str, int] = {}
    if scored is None:
        fate = pd.Series("", index=numbers.index)
    else:
        ids = ["left_source", "left_source_id", "right_source", "right_source_id"]
        levels = [f"{field}_level" for field in EVIDENCE_FIELDS if f"{field}_level" in scored]
        kept = scored[ids + levels + ["match_probability", "namesake_guard"]]
        forward = pd.DataFrame({"left_source": pairs["source_l"].to_numpy(), "left_source_id": pairs["source_id_l"].to_numpy(),
                                "right_source": pairs["source_r"].to_numpy(), "right_source_id": pairs["source_id_r"].to_numpy()})
        backward = forward.rename(columns={"left_source": "right_source", "left_source_id": "right_source_id",
                                           "right_source": "left_source", "right_source_id": "left_source_id"})
        found = forward.merge(kept, on=ids, how="left")
        found = found.where(found["match_probability"].notna(), backward.merge(kept, on=ids, how="left")[found.columns])
        p = found["match_probability"]
        fate = pd.Series(np.select(
            [p.isna(), p < review, p < match, found["namesake_guard"].fillna(False).astype(bool)],
            ["not a candidate pair", "scored below the review band", "uncertain band (review)",
             "namesake guard (review)"], "refused by a cluster constraint (review)"))
        signature = found.loc[p.notna(), levels].astype(str).apply(
            lambda row: ", ".join(f"{c.removesuffix('_level')} {v}" for c, v in row.items()), axis=1)
        by_evidence = {k: int(v) for k, v in signature.value_counts().items()}
    causes = (numbers.to_numpy() + np.where(fate.to_numpy() == "", "", ": " + fate.to_numpy()))
    counts = pd.Series(causes).value_counts()
    return {"by_numbers_and_fate": {k: int(v) for k, v in counts.items()}, "by_evidence": by_evidence}


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
    scored = None
    if engine == "ours":
        (result, scored), details = run_ours(staged, staged_path.parent / "services.parquet"), {}
    else:
        result, details = run_splink(staged, engine)
    seconds = time.perf_counter() - started
    truth = pd.read_parquet(truth_path)
    persons_path = truth_path.parent / "world" / "truth" / "persons.parquet"
    persons = pd.read_parquet(persons_path, columns=["person_id", "namesake_of"]) if persons_path.exists() else None
    metrics = pairwise_confusion(result, truth, "cluster", "true_id")
    metrics.update({
        "engine": engine, "accounts": len(staged), "seconds": round(seconds, 1),
        "peak_rss_mb": peak_rss_mb(), **details,
        "false_pairs_by_cause": false_pairs_by_cause(result, truth, staged, persons),
        "missed_pairs_by_cause": missed_pairs_by_cause(result, truth, staged, scored),
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
    parser.add_argument("--engines", default="ours,splink_tuned,splink_default")
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
    print("\nFalse pairs by cause (account pairs of two true persons in one cluster):\n")
    for r in results:
        if "error" in r:
            continue
        causes = "; ".join(f"{cause} {count}" for cause, count in r["false_pairs_by_cause"].items()) or "none"
        threshold = (f" (threshold: match weight {r['threshold_match_weight']:+.1f}, read off the match-weight histogram)"
                     if "threshold_match_weight" in r else "")
        print(f"- {r['engine']}{threshold}: {causes}")
    print("\nMissed pairs by cause (account pairs of one true person in two clusters):\n")
    for r in results:
        if "error" in r:
            continue
        missed = r["missed_pairs_by_cause"]
        print(f"- {r['engine']}: " + ("; ".join(f"{c} {n}" for c, n in missed["by_numbers_and_fate"].items()) or "none"))
        for signature, count in missed["by_evidence"].items():
            print(f"  - {signature}: {count}")
    if skipped:
        print("\n" + SPLINK_MISSING.format(engines=", ".join(skipped)))
    hours = summary.get("quality", {}).get("hours", {})
    print(f"\nhours: {json.dumps(hours)}\ntimings: {json.dumps(timings)}")


if __name__ == "__main__":
    main()
