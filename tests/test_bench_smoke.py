"""Smoke test of the benchmarks: `bench/run_all.py --quick` runs and every table says what a
user would check against the quick worlds.

The quick sizes are small (a 1,000-person world, 10,000 rows to normalize), so speed is not
judged here (`make bench` measures it); what the tables count is. Counts and scores are
checked against the sandbox truth of the worlds the benchmarks used (`truth/` under --out),
and the resolution scores are recounted here from the resolved files and the truth, not
taken from the benchmark's own scoring code.

Splink is a benchmark-only package: where it is not installed the resolve benchmark must
still run, report our engine, and say that Splink is missing; where it is, its two rows are
checked too.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sandbox import load_truth
from tests.reference import pair_confusion

ROOT = Path(__file__).resolve().parents[1]
# bench/run_all.py's QUICK sizes and seed
QUICK_PERSONS = 1_000
QUICK_PUBLISH_PERSONS, QUICK_PUBLISH_SERVICES = 500, 5_000
SEED = 7
# The project's resolution quality bar (as in tests/resolve/test_sandbox_chain.py).
OUR_PRECISION, OUR_RECALL = 0.995, 0.99
SPLINK_INSTALLED = importlib.util.find_spec("splink") is not None


def _number(text: str) -> float:
    return float(re.sub(r"[^0-9.]", "", text))


def _table_rows(section: str, first_header: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header starts with `| first_header |`."""
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> tuple[dict[str, str], Path]:
    out = tmp_path_factory.mktemp("bench")
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run_all.py"), "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:] + completed.stdout[-3000:]
    results = (out / "results.md").read_text(encoding="utf-8")
    parts = re.split(r"^## (\w+)$", results, flags=re.MULTILINE)
    found = dict(zip(parts[1::2], parts[2::2]))
    for section in found.values():  # printed as well as written
        assert section.strip() in completed.stdout
    return found, out


@pytest.fixture(scope="module")
def sections(bench) -> dict[str, str]:
    return bench[0]


def test_every_benchmark_reports(sections):
    assert set(sections) == {"pull", "normalize", "resolve", "publish"}
    for name, section in sections.items():
        assert "**failed**" not in section, name
        assert "load average" in section, name


def test_pull_lands_every_row_the_world_holds(bench):
    sections, out = bench
    (row,) = _table_rows(sections["pull"], "persons")
    persons, rows_pulled, bare_rate, landing_rate = row[:4]
    assert _number(persons) == QUICK_PERSONS
    # every stored row of the world is served and landed once: the valid ones (truth
    # accounts) and the planted invalid ones, less any the national interface filters out
    # by region (planted outside Guizhou)
    truth = load_truth(out / f"world-p{QUICK_PERSONS}-s{SEED}")
    invalid = truth.invalid_rows
    not_served = (invalid["source"] == "national") & (invalid["rule"] == "region_outside_province")
    assert _number(rows_pulled) == len(truth.accounts) + (~not_served).sum()
    assert _number(bare_rate) > 0 and _number(landing_rate) > 0
    assert 0 < _number(row[4]) <= 200  # landing / bare, in percent


def test_normalize_and_validate_steps(sections):
    section = sections["normalize"]
    rows = {row[0]: row for row in _table_rows(section, "step")}
    assert "names" in rows and "resident ID numbers" in rows
    assert any(label.startswith("quarantine rules") for label in rows)
    assert any(label.startswith("GX suite") for label in rows)
    assert "**normalizing and validating**" in rows
    for label, row in rows.items():
        assert _number(row[1]) > 0, label  # vectorized seconds
        assert _number(row[3].split(" s")[0]) > 0, label  # row-by-row seconds
        assert _number(row[5]) > 0, label  # speed-up
    # the baselines do the same work as the project's validators
    assert "agree with the project's validators on their 2,000-row sample: yes" in section
    quarantined = re.search(r"quarantined: ([^;]+);", section).group(1)
    assert "region_outside_province" in quarantined and "missing_required" in quarantined


@pytest.fixture(scope="module")
def resolve_world(bench):
    """The resolve benchmark's work folder, its world's truth and the truth's volunteer pairs."""
    _, out = bench
    work = out / f"resolve-p{QUICK_PERSONS}-s{SEED}"
    truth = load_truth(work / "world")
    accounts = truth.accounts.loc[truth.accounts["entity"] == "volunteer"]
    true_person = dict(zip(zip(accounts["source"], accounts["source_id"].astype(str)), accounts["true_id"]))
    sizes = accounts.groupby("true_id").size()
    true_pairs = int((sizes * (sizes - 1) // 2).sum())
    return work, truth, true_person, true_pairs


def test_resolve_scores_against_the_truth(sections, resolve_world):
    work, _, true_person, true_pairs = resolve_world
    section = sections["resolve"]
    rows = {row[0]: row for row in _table_rows(section, "engine")}
    if SPLINK_INSTALLED:
        assert set(rows) == {"ours", "splink_tuned", "splink_default"}
        assert "Splink is not installed" not in section
    else:
        assert set(rows) == {"ours"}
        assert "Splink is not installed" in section and "`make bench` installs it" in section
    assert true_pairs > 100  # the quick world has people in both systems
    for engine, row in rows.items():
        accounts, precision, recall, f1 = int(row[1]), float(row[4]), float(row[5]), float(row[6])
        tp, fp, fn = (int(cell) for cell in row[7:10])
        # every volunteer account of the world was staged and compared, and the pairs that
        # are really one person are split between found and missed
        assert accounts == len(true_person), engine
        assert tp + fn == true_pairs, engine
        assert precision == pytest.approx(tp / (tp + fp), abs=5e-5), engine
        assert recall == pytest.approx(tp / true_pairs, abs=5e-5), engine
        assert f1 == pytest.approx(2 * precision * recall / (precision + recall), abs=2e-4), engine
        if engine != "ours":  # Splink: runs and finds the people, no bar of ours to meet
            assert precision > 0.9 and recall > 0.9, engine
    ours = rows["ours"]
    assert float(ours[4]) >= OUR_PRECISION and float(ours[5]) >= OUR_RECALL, ours

    # recounted here: the whole resolution the benchmark ran (resolve_all, the same staged
    # accounts) against the truth, pair by pair
    source_map = pd.read_parquet(work / "data" / "resolved" / "volunteer_source_map.parquet")
    predicted = dict(zip(zip(source_map["source"], source_map["source_id"]), source_map["volunteer_key"]))
    recount = pair_confusion(predicted, true_person)
    assert recount["accounts"] == len(true_person)
    assert (recount["tp"], recount["fp"], recount["fn"]) == tuple(int(cell) for cell in ours[7:10])


def test_resolve_counts_every_persons_hours_once(sections, resolve_world):
    work, truth, true_person, _ = resolve_world
    true_hours = truth.persons.set_index("person_id")["true_hours"]
    # the benchmark's line, against the truth's total
    hours = json.loads(re.search(r"^hours: (\{.*\})$", sections["resolve"], flags=re.MULTILINE).group(1))
    assert hours["persons_checked"] == len(truth.persons) == QUICK_PERSONS
    assert hours["province_hours"] == pytest.approx(true_hours.sum(), abs=0.01)
    assert hours["persons_hours_wrong"] == 0 and hours["services_unattributed"] == 0
    # recounted here: each resolved person's service facts against the truth's hours
    source_map = pd.read_parquet(work / "data" / "resolved" / "volunteer_source_map.parquet")
    persons_of_key = (
        source_map.assign(person=[true_person[k] for k in zip(source_map["source"], source_map["source_id"])])
        .groupby("volunteer_key")["person"].unique()
    )
    assert persons_of_key.map(len).max() == 1  # no key stands for two people
    facts = pd.read_parquet(work / "data" / "resolved" / "services.parquet", columns=["volunteer_key", "hours"])
    assert facts["volunteer_key"].notna().all()
    per_person = facts.groupby(facts["volunteer_key"].map(persons_of_key.map(lambda people: people[0])))["hours"].sum()
    compared = pd.DataFrame({"truth": true_hours, "resolved": per_person}).fillna(0.0)
    assert ((compared["resolved"] - compared["truth"]).abs() <= 0.01).all()


def test_blocking_counts_the_resolutions_pairs_and_the_truths(resolve_world):
    """bench/blocking.py on the resolve benchmark's work folder: its pairs are the ones the
    resolution scored, rule by rule, and its true pairs add up against the truth."""
    work, _, true_person, true_pairs = resolve_world
    completed = subprocess.run([sys.executable, str(ROOT / "bench" / "blocking.py"), "--work", str(work)],
                               cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    counted = json.loads(completed.stdout)
    summary = json.loads((work / "data" / "resolved" / "summary.json").read_text(encoding="utf-8"))
    assert {r["rule"]: r["pairs_added"] for r in counted["by_rule"]} == summary["volunteers"]["pairs_by_blocking_rule"]
    assert counted["accounts"] == len(true_person)
    # the true pairs the model must find (across deterministic components) are some of all
    assert 0 < counted["true_pairs"] <= true_pairs
    assert counted["true_pairs_found"] + counted["true_pairs_missed"] == counted["true_pairs"]
    assert counted["true_pairs_found"] == sum(r["true_pairs_added"] for r in counted["by_rule"])
    for rule in counted["by_rule"]:
        assert rule["true_pairs_added"] <= min(rule["pairs_added"], rule["true_pairs_held"])
        assert rule["true_pairs_only_this_rule"] <= rule["true_pairs_held"] <= counted["true_pairs_found"]


def test_publish_rates_and_rows(sections):
    section = sections["publish"]
    rows = {row[0]: row for row in _table_rows(section, "phase")}
    build = rows["build (29 tables and marts -> Parquet)"]
    load = rows["load DuckDB (one transaction)"]
    for row in (build, load):
        assert _number(row[1]) > 0 and _number(row[2]) > 0
    built = {
        name: int(count.replace(",", ""))
        for name, count in re.findall(r"(\w+) ([\d,]+)", section.split("Rows built:", 1)[1])
    }
    # the quick publish world (tests/warehouse/world.py): 500 persons, 40 organizations,
    # 5,000 services plus 182 that push five persons over the star thresholds
    # (1600/20 + 1000/20 + 650/20 + 320/20 + 99.5//20 = 80 + 50 + 32 + 16 + 4); Guizhou's 88 counties
    assert built["dim_region"] == 88
    assert built["dim_volunteer"] == QUICK_PUBLISH_PERSONS
    assert built["dim_organization"] == 40
    assert built["fact_service"] == QUICK_PUBLISH_SERVICES + 182
