"""What each blocking rule costs and finds: candidate pairs against the sandbox truth.

For the staged volunteers of a `bench/resolve_step.py` work folder (or a `bench/sync.py
--keep` one, with its world linked as <work>/world) and the blocking rules of a matching.yaml
(the project's, or another given with --rules to try a change), per rule: the pairs it adds
(as `candidate_pairs` makes them: after the earlier rules, the size cap, the deterministic
components and the hard constraint), the true pairs among them, and the true pairs that rule
alone finds. A true pair here is two accounts of one person in two deterministic components:
the pairs the model must find. Also: the true pairs no rule finds, and those of them that a
block over the size cap would have held. Counts only: no ids, names or numbers are printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.config import Settings  # noqa: E402
from pipelines.resolve.comparisons import add_match_columns  # noqa: E402
from pipelines.resolve.quality import truth_accounts  # noqa: E402
from pipelines.resolve.rules import MATCHING_PATH, load_matching_rules  # noqa: E402
from pipelines.resolve.service_links import pushed_service_pairs  # noqa: E402
from pipelines.resolve.volunteers import (  # noqa: E402
    _components, _register_accounts, candidate_pairs, deterministic_links, prepare_accounts, sized_blocks_sql,
)


def true_pairs(con: duckdb.DuckDBPyConnection, accounts: pd.DataFrame, truth: pd.DataFrame) -> None:
    """Temp table `truth_pairs` (l_idx < r_idx): two accounts of one person, two components."""
    person = accounts[["source", "source_id", "idx", "det_component"]].merge(
        truth[["source", "source_id", "true_id"]], on=["source", "source_id"])
    con.register("person_frame", person[["idx", "det_component", "true_id"]])
    con.execute("""
        CREATE OR REPLACE TEMP TABLE truth_pairs AS
        SELECT a.idx AS l_idx, b.idx AS r_idx FROM person_frame a JOIN person_frame b
          ON a.true_id = b.true_id AND a.idx < b.idx AND a.det_component <> b.det_component
    """)
    con.unregister("person_frame")


def held_pairs(pairs_table: str, keys: tuple[str, ...], block_sizes: str) -> str:
    """SQL: the pairs of `pairs_table` whose two accounts are equal on `keys`, in a block whose
    size satisfies `block_sizes` (a condition on `block_size`)."""
    equal = " AND ".join(f"l.{k} = r.{k}" for k in keys)
    return f"""
        WITH sized AS ({sized_blocks_sql(keys)})
        SELECT t.l_idx, t.r_idx FROM {pairs_table} t JOIN sized l ON l.idx = t.l_idx JOIN sized r ON r.idx = t.r_idx
        WHERE {equal} AND l.block_size {block_sizes}
    """


def analyse(work: Path, rules_path: Path) -> dict:
    rules = load_matching_rules(rules_path)
    staged = pd.read_parquet(work / "data" / "staged" / "volunteers.parquet")
    links = pushed_service_pairs(work / "data" / "staged" / "services.parquet")
    accounts = add_match_columns(prepare_accounts(staged), rules.min_accounts, links, Settings().pii_hash_key)
    del staged
    accounts["det_component"] = _components(len(accounts), deterministic_links(accounts))
    accounts["other_system_linked"] = 0  # not read by blocking
    truth = truth_accounts(work / "world" / "truth", "volunteer", ["entity", "source", "source_id", "true_id"])
    con = duckdb.connect()
    _register_accounts(con, accounts, None)
    true_pairs(con, accounts, truth)
    started = time.perf_counter()
    added = candidate_pairs(con, rules, changed_only=False)
    blocking_s = time.perf_counter() - started
    con.execute("CREATE TEMP TABLE found AS SELECT p.* FROM pairs p JOIN truth_pairs USING (l_idx, r_idx)")
    con.execute("CREATE TEMP TABLE missed AS SELECT * FROM truth_pairs ANTI JOIN found USING (l_idx, r_idx)")
    per_rule = []
    for rule in rules.blocking_rules:
        # the true pairs found that this rule's keys hold (within its cap), whichever rule found them
        con.execute(f"CREATE OR REPLACE TEMP TABLE held_{rule.name} AS "
                    f"{held_pairs('found', rule.keys, f'<= {rule.max_block_size}')}")
        over_cap = held_pairs("missed", rule.keys, f"> {rule.max_block_size}")
        per_rule.append({
            "rule": rule.name, "max_block_size": rule.max_block_size, "pairs_added": added[rule.name],
            "true_pairs_added": con.execute("SELECT count(*) FROM found WHERE blocking_rule = $r",
                                            {"r": rule.name}).fetchone()[0],
            "true_pairs_held": con.execute(f"SELECT count(*) FROM held_{rule.name}").fetchone()[0],
            "missed_over_cap": con.execute(f"SELECT count(*) FROM ({over_cap})").fetchone()[0],
        })
    for row in per_rule:
        others = " UNION ".join(f"SELECT * FROM held_{r['rule']}" for r in per_rule if r["rule"] != row["rule"])
        row["true_pairs_only_this_rule"] = con.execute(
            f"SELECT count(*) FROM (SELECT * FROM held_{row['rule']} EXCEPT ({others}))").fetchone()[0]
    return {
        "rules": str(rules_path), "accounts": len(accounts),
        "pairs": sum(added.values()), "blocking_s": round(blocking_s, 1),
        "true_pairs": con.execute("SELECT count(*) FROM truth_pairs").fetchone()[0],
        "true_pairs_found": con.execute("SELECT count(*) FROM found").fetchone()[0],
        "true_pairs_missed": con.execute("SELECT count(*) FROM missed").fetchone()[0],
        "by_rule": per_rule,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="holds data/staged and world/truth")
    parser.add_argument("--rules", type=Path, default=Path(str(MATCHING_PATH)), help="a matching.yaml")
    args = parser.parse_args()
    result = analyse(args.work, args.rules)
    print(json.dumps(result, indent=1))
    print(f"\n{result['accounts']:,} accounts, {result['pairs']:,} pairs in {result['blocking_s']} s; "
          f"true pairs {result['true_pairs']:,}: found {result['true_pairs_found']:,}, "
          f"missed {result['true_pairs_missed']:,}", file=sys.stderr)
    columns = ["rule", "max_block_size", "pairs_added", "true_pairs_added", "true_pairs_held",
               "true_pairs_only_this_rule", "missed_over_cap"]
    print("| rule | block cap | pairs added | true added | true held | only this rule | missed over the cap |",
          file=sys.stderr)
    for row in result["by_rule"]:
        print("| " + " | ".join(f"{row[c]:,}" if c != "rule" else row[c] for c in columns) + " |", file=sys.stderr)

if __name__ == "__main__":
    main()
