"""Volunteer entity resolution: which source accounts are one natural person.

Steps, each a pure function over frames (DuckDB does the pair work):
1. deterministic links: equal valid resident ID numbers; a provincial account carrying the
   national volunteer number;
2. candidate pairs by blocking (schemas/matching.yaml), minus pairs the hard constraint forbids
   (two different valid numbers) and pairs already joined deterministically;
3. a Fellegi–Sunter score per pair (comparisons.py), m estimated from national-number links,
   u from random pairs, name agreement weighted by the name's frequency;
4. clusters by constrained union-find (clustering.py), strongest links first, analysts'
   decisions honoured; the uncertain band goes to the review table;
5. stable keys (keys.py) and golden records (survivorship.py).

Incremental: with the previous sync's state, only pairs touching a new or changed account are
scored again; the other scored pairs are reused, and the model parameters stay frozen. The
golden records are made again only for the keys whose accounts changed (a field of an account,
or which accounts the key holds); the others are the previous sync's rows, carried.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines import duck
from pipelines.resolve.clustering import CANNOT_LINK, clusters_with_refusals, connected_components
from pipelines.resolve.comparisons import (
    ModelParameters,
    add_match_columns,
    compute_levels,
    level_weights,
    match_probability,
    prior_parameters,
)
from pipelines.resolve.evidence import DETERMINISTIC_EXPLANATIONS, level_labels, waterfall_text
from pipelines.resolve.keys import assign_stable_keys, key_of_each
from pipelines.resolve.rules import MatchingRules, load_matching_rules, load_survivorship
from pipelines.resolve.survivorship import apply_survivorship
from pipelines.resolve.vectorized import (
    NotTheFullAnswer,
    as_string_array,
    is_in,
    strictly_increasing,
    with_full_run_types,
)

ACCOUNT_COLUMNS = [
    "source", "source_id", "updated_at", "is_deleted", "name", "cert_type", "cert_hash", "cert_valid",
    "cert_masked", "cert_prefix4", "cert_suffix4", "gender", "birth_date", "phone_hash",
    "phone_prefix3", "phone_suffix4", "region_code", "registered_on", "status",
    "national_volunteer_no",
]
# what the match of an account depends on: a change here re-scores the account's pairs
FINGERPRINT_COLUMNS = [
    "name", "cert_hash", "cert_valid", "cert_prefix4", "cert_suffix4", "gender", "birth_date",
    "phone_hash", "phone_prefix3", "phone_suffix4", "region_code", "national_volunteer_no",
    "service_anchor", "other_system_linked",
]
SCORE_CHUNK_PAIRS = 2_000_000  # pairs scored at once where only those reaching an output are kept
METHOD_PRIORITY = ["cert_number", "national_volunteer_no", "review_same", "probabilistic"]
SOURCE_MAP_COLUMNS = ["source", "source_id", "volunteer_key", "match_method", "match_probability"]
GOLDEN_COLUMNS = [
    "volunteer_key", "cert_hash", "cert_prefix4", "cert_suffix4", "name", "gender", "birth_date",
    "birth_year", "region_code", "registered_on", "in_national", "in_provincial", "status",
    "account_count",
]
PAIR_ID_COLUMNS = ["left_source", "left_source_id", "right_source", "right_source_id"]
DECISION_COLUMNS = PAIR_ID_COLUMNS + ["decision"]
# why clustering refused a link: the constraint's name -> the link's outcome and review reason
REFUSALS = {
    "valid_number": ("refused_conflicting_valid_numbers", "refused_by_constraint"),
    "real_number_ends": ("refused_bridge_between_different_numbers", "bridged_by_masked_or_invalid_number"),
    "national_account": ("refused_two_national_accounts", "two_national_accounts"),
    CANNOT_LINK: ("refused_by_decision", "refused_by_constraint"),
}


@dataclass
class VolunteerState:
    """What one sync hands the next (DATA_DIR/state/resolve/)."""

    source_map: pd.DataFrame  # source, source_id, volunteer_key, ...
    fingerprints: pd.DataFrame  # source, source_id, fingerprint
    scored_pairs: pd.DataFrame  # PAIR_ID_COLUMNS + levels, weights, match_weight, blocking_rule
    params: ModelParameters | None
    rules_fingerprint: str
    key_history: pd.DataFrame  # all history rows so far
    # source, source_id, row_fingerprint (of every ACCOUNT_COLUMNS field survivorship may read)
    account_rows: pd.DataFrame | None = None
    # the previous golden records: set by the loader only when they are the ones made with
    # this state's source map and account rows, by this code (else every golden row is made)
    golden: pd.DataFrame | None = None


@dataclass
class VolunteerResolution:
    source_map: pd.DataFrame
    golden: pd.DataFrame
    links: pd.DataFrame
    review: pd.DataFrame
    key_history: pd.DataFrame  # this sync's rows
    state: VolunteerState
    summary: dict = field(default_factory=dict)
    scored_pairs: pd.DataFrame | None = None  # every pair scored this sync (evidence from the review band up), if asked
    work: dict = field(default_factory=dict)


# ---------------------------------------------------------------- inputs

def prepare_accounts(staged_volunteers: pd.DataFrame) -> pd.DataFrame:
    """The staged columns matching reads, one row per account, in (source, source_id) order."""
    # only the columns matching reads, copied once
    frame = staged_volunteers[[c for c in ACCOUNT_COLUMNS if c in staged_volunteers]].copy()
    for column in ACCOUNT_COLUMNS:
        if column not in frame:
            frame[column] = pd.NA
    frame = frame[ACCOUNT_COLUMNS]
    frame["source_id"] = frame["source_id"].astype(str)
    frame["is_deleted"] = frame["is_deleted"].fillna(False).astype(bool)
    frame["cert_valid"] = frame["cert_valid"].fillna(False).astype(bool)
    for column in ["birth_date", "registered_on"]:
        frame[column] = pd.to_datetime(frame[column], errors="coerce").dt.normalize()
    frame["updated_at"] = pd.to_datetime(frame["updated_at"], utc=True, errors="coerce")
    # staging writes one row per account in this order already: checked in one pass, the
    # dedup and the sort (a second at a million persons) are needed only where it did not
    if not strictly_increasing(frame["source"], frame["source_id"]):
        frame = frame.drop_duplicates(["source", "source_id"], keep="last")
        frame = frame.sort_values(["source", "source_id"], kind="stable")
    return frame.reset_index(drop=True)


def fingerprints(accounts: pd.DataFrame) -> pd.Series:
    """A hash of the fields matching reads, per account (detects changed accounts): DuckDB's
    hash over each row, one pass (pandas' hash of every value made text took seconds at a
    million persons)."""
    con = duck.scratch()
    try:
        matched = pa.Table.from_pandas(accounts[FINGERPRINT_COLUMNS], preserve_index=False)
        con.register("matched", matched.append_column("row_at", pa.array(np.arange(len(accounts), dtype=np.int64))))
        hashed = con.execute(
            f"SELECT hash({', '.join(FINGERPRINT_COLUMNS)}) AS fingerprint FROM matched ORDER BY row_at").fetchnumpy()
    finally:
        con.close()
    return pd.Series(hashed["fingerprint"], index=accounts.index, dtype="uint64")


def changed_since(accounts: pd.DataFrame, before: pd.DataFrame) -> np.ndarray:
    """Per account, in order: whether it is new or its fingerprint differs from the one
    `before` (source, source_id, fingerprint: the last sync's) holds. One DuckDB join (a
    pandas merge of a million accounts was most of a second)."""
    con = duck.scratch()
    try:
        con.register("now_fp", pa.table({
            "row_at": np.arange(len(accounts), dtype=np.int64),
            "source": as_string_array(accounts["source"]), "source_id": as_string_array(accounts["source_id"]),
            "fingerprint": pa.array(accounts["fingerprint"].to_numpy(dtype="uint64")),
        }))
        con.register("before_fp", pa.table({
            "source": as_string_array(before["source"]), "source_id": as_string_array(before["source_id"]),
            "fingerprint": pa.array(before["fingerprint"].to_numpy(dtype="uint64")),
        }))
        changed = con.execute("""
            SELECT n.row_at, bool_or(b.fingerprint IS DISTINCT FROM n.fingerprint) AS changed
            FROM now_fp n LEFT JOIN before_fp b ON b.source = n.source AND b.source_id = n.source_id
            GROUP BY n.row_at ORDER BY n.row_at
        """).fetchnumpy()["changed"]
    finally:
        con.close()
    return np.asarray(changed, dtype=bool)


def normalize_decisions(decisions: pd.DataFrame | None) -> pd.DataFrame:
    """Analysts' review decisions, last word per pair, both orientations collapsed."""
    if decisions is None or not len(decisions):
        return pd.DataFrame(columns=DECISION_COLUMNS)
    frame = decisions[DECISION_COLUMNS].astype(str).copy()
    frame["decision"] = frame["decision"].str.strip().str.lower().str.replace(" ", "_").str.replace("-", "_")
    frame = frame.loc[frame["decision"].isin(["same", "not_same"])]
    return frame.drop_duplicates(PAIR_ID_COLUMNS, keep="last")


# ---------------------------------------------------------------- deterministic links

def deterministic_links(accounts: pd.DataFrame) -> pd.DataFrame:
    """Links that need no model: l_idx, r_idx (l < r), method. Equal valid numbers link each
    account to the first account holding its number (`cert_number`); a provincial account
    carrying a national volunteer number links to that national account
    (`national_volunteer_no`); a pair both rules link is a `cert_number` link. In accounts'
    order, one DuckDB pass (pandas' string groupby and merge took seconds at a million)."""
    columns = ["idx", "source", "source_id", "cert_valid_hash", "national_volunteer_no"]
    con = duck.scratch()
    try:
        con.register("linked_accounts", pa.Table.from_pandas(accounts[columns].astype(
            {c: "string" for c in columns if c != "idx"}), preserve_index=False))
        links = con.execute("""
            WITH by_rule AS (
                SELECT min(idx) OVER (PARTITION BY cert_valid_hash) AS a, idx AS b,
                       'cert_number' AS method, 0 AS rule, idx AS first_order, 0 AS then_order
                FROM linked_accounts WHERE cert_valid_hash IS NOT NULL
                UNION ALL
                SELECT n.idx, p.idx, 'national_volunteer_no', 1, p.idx, n.idx
                FROM linked_accounts p JOIN linked_accounts n
                  ON n.source = 'national' AND n.source_id = p.national_volunteer_no
                WHERE p.source = 'provincial'
            )
            SELECT least(a, b) AS l_idx, greatest(a, b) AS r_idx, method FROM by_rule WHERE a <> b
            QUALIFY row_number() OVER (PARTITION BY least(a, b), greatest(a, b)
                                       ORDER BY rule, first_order, then_order) = 1
            ORDER BY rule, first_order, then_order
        """).df()
    finally:
        con.close()
    return links.astype({"l_idx": "int64", "r_idx": "int64", "method": "str"})


def real_number_ends(accounts: pd.DataFrame) -> np.ndarray:
    """Per account, a code of the kept ends (first 4 + last 4) of a real resident ID number, -1 if none.

    Real: valid, or masked by the national system (which holds the verified number). Two real
    numbers whose ends differ are two people, so a cluster holds at most one such code: an
    account with a mistyped, missing or masked number that looks like two namesakes (same name,
    birth date, gender, county) cannot bridge them, and the link goes to review instead.
    Mistyped (invalid) numbers take no part: their ends may be one character off.
    """
    resident = accounts["cert_type"].isna() | (accounts["cert_type"] == "resident_id")
    real = accounts["cert_valid"].fillna(False).astype(bool) | (
        accounts["cert_masked"].fillna(False).astype(bool) & resident
    )
    ends = (accounts["cert_prefix4"] + accounts["cert_suffix4"]).where(real)
    return pd.factorize(ends)[0]


def national_accounts(accounts: pd.DataFrame) -> np.ndarray:
    """Per account, a code of its own for a national account, -1 for a provincial one.

    The national system registers a volunteer under the certificate number it verifies: one
    account per number, so one per person. A probabilistic link never joins two national
    accounts (the pair goes to review as `two_national_accounts`): a provincial account that
    resembles a masked national account but already holds its own national account (by a
    rule, or a stronger link) belongs to someone else. Rules are not held to it: equal valid
    numbers are one person whatever their accounts.
    """
    return np.where((accounts["source"] == "national").to_numpy(), np.arange(len(accounts)), -1)


def other_system_linked(accounts: pd.DataFrame) -> np.ndarray:
    """Per account, how many accounts of the other system a rule (equal valid numbers, the
    carried national number) already links it to: its deterministic component's accounts of
    the other system. A person holds one account per system but for rare second provincial
    registrations, so a candidate from the other system for an account already linked to one
    there is most often someone else (the `system` comparison's `across_linked_elsewhere`)."""
    component = accounts["det_component"].to_numpy()
    national = (accounts["source"] == "national").to_numpy()
    per_component = pd.DataFrame({"component": component, "national": national, "provincial": ~national})
    counts = per_component.groupby("component")[["national", "provincial"]].transform("sum")
    return np.where(national, counts["provincial"].to_numpy(), counts["national"].to_numpy()).astype(np.int64)


def _components(account_count: int, links: pd.DataFrame) -> np.ndarray:
    """Plain connected components (no constraints): which pairs need no scoring."""
    return connected_components(account_count, links["l_idx"].to_numpy(), links["r_idx"].to_numpy())


# ---------------------------------------------------------------- candidate pairs

def _register_accounts(con: duckdb.DuckDBPyConnection, accounts: pd.DataFrame, changed: np.ndarray | None) -> None:
    from pipelines.resolve.comparisons import MATCH_COLUMNS

    table = accounts[MATCH_COLUMNS].copy()
    table["det_component"] = accounts["det_component"].to_numpy()
    table["other_system_linked"] = accounts["other_system_linked"].to_numpy()
    table["changed"] = True if changed is None else changed
    # as Arrow (DuckDB scans a pandas frame of Arrow-backed strings at half the speed)
    con.register("acc_frame", pa.Table.from_pandas(table, preserve_index=False))
    con.execute("CREATE OR REPLACE TEMP TABLE acc AS SELECT * FROM acc_frame")
    con.unregister("acc_frame")


def sized_blocks_sql(keys: tuple[str, ...], changed_blocks_only: bool = False) -> str:
    """SQL: the accounts of temp table `acc` whose `keys` are all present, each with the size of
    its block (`block_size`: how many accounts share its keys). `changed_blocks_only`: only the
    blocks holding a changed account (every account of such a block, so its size is the same);
    the others can give no pair with a changed account."""
    key_list = ", ".join(keys)
    not_null = " AND ".join(f"{k} IS NOT NULL" for k in keys)
    accounts = "acc"
    if changed_blocks_only:
        accounts = f"(SELECT * FROM acc SEMI JOIN (SELECT DISTINCT {key_list} FROM acc WHERE changed) USING ({key_list}))"
    return f"SELECT *, count(*) OVER (PARTITION BY {key_list}) AS block_size FROM {accounts} WHERE {not_null}"


def candidate_pairs(con: duckdb.DuckDBPyConnection, rules: MatchingRules, changed_only: bool) -> dict[str, int]:
    """Create temp table `pairs` (l_idx < r_idx, blocking_rule) from the blocking rules.

    With changed_only, a pair needs at least one changed account (incremental sync). Returns
    the number of new pairs each rule contributed.
    """
    con.execute("CREATE OR REPLACE TEMP TABLE pairs (l_idx BIGINT, r_idx BIGINT, blocking_rule VARCHAR)")
    contributed: dict[str, int] = {}
    for rule in rules.blocking_rules:
        equal = " AND ".join(f"a.{k} = c.{k}" for k in rule.keys)
        changed_filter = "WHERE changed" if changed_only else ""
        # the hard constraint and deterministic components are filtered before scoring
        sql = f"""
            WITH blocked AS (
                SELECT idx, changed, det_component, cert_valid_hash, {", ".join(rule.keys)}
                FROM ({sized_blocks_sql(rule.keys, changed_blocks_only=changed_only)})
                WHERE block_size BETWEEN 2 AND {rule.max_block_size}
            ),
            found AS (
                SELECT least(c.idx, a.idx) AS l_idx, greatest(c.idx, a.idx) AS r_idx
                FROM (SELECT * FROM blocked {changed_filter}) c
                JOIN blocked a ON {equal}
                WHERE c.idx <> a.idx AND (NOT a.changed OR c.idx < a.idx)
                  AND c.det_component <> a.det_component
                  AND NOT (c.cert_valid_hash IS NOT NULL AND a.cert_valid_hash IS NOT NULL
                           AND c.cert_valid_hash <> a.cert_valid_hash)
            )
            INSERT INTO pairs
            SELECT DISTINCT f.l_idx, f.r_idx, CAST($rule AS VARCHAR) FROM found f
            WHERE NOT EXISTS (SELECT 1 FROM pairs p WHERE p.l_idx = f.l_idx AND p.r_idx = f.r_idx)
        """
        before = con.execute("SELECT count(*) FROM pairs").fetchone()[0]
        con.execute(sql, {"rule": rule.name})
        contributed[rule.name] = con.execute("SELECT count(*) FROM pairs").fetchone()[0] - before
    return contributed


# ---------------------------------------------------------------- model

def _level_shares(levels: pd.DataFrame, rules: MatchingRules) -> dict[str, tuple[np.ndarray, int]]:
    """Per comparison: counts per level among non-null levels, and their total."""
    shares = {}
    for comparison in rules.comparisons:
        codes = levels[f"{comparison.name}_level"].to_numpy()
        counts = np.bincount(codes, minlength=len(comparison.levels)).astype(float)
        for i, level in enumerate(comparison.levels):
            if level.is_null:
                counts[i] = 0
        shares[comparison.name] = (counts, int(counts.sum()))
    return shares


def estimate_parameters(
    con: duckdb.DuckDBPyConnection, accounts: pd.DataFrame, det_links: pd.DataFrame, rules: MatchingRules
) -> ModelParameters:
    """m from deterministic links (for the comparisons matching.yaml names), u from random pairs
    (or, for a level with `u_from_counts`, counted exactly from the accounts) once the accounts
    hold more distinct pairs than the draws (`random_pairs`; below, u keeps its priors).

    m is smoothed towards the priors of matching.yaml; a level too rare to measure keeps its
    prior.
    """
    params = prior_parameters(rules, len(accounts))
    settings = rules.estimation
    if not settings.get("enabled", False) or len(accounts) < 2:
        return params
    pseudo = float(settings.get("pseudo_count", 50))
    min_pairs = int(settings.get("min_pairs", 200))
    m_floor = float(settings.get("m_floor", 0.0))

    # deterministic links: for the comparisons matching.yaml names, each from its own sample
    # of them (see `estimation` there)
    valid = accounts["cert_valid_hash"].notna().to_numpy()
    not_both_valid = ~(valid[det_links["l_idx"].to_numpy()] & valid[det_links["r_idx"].to_numpy()])
    samples = {
        "m_pairs": (det_links[["l_idx", "r_idx"]], set(settings.get("m_from_links", []))),
        "m_pairs_not_both_valid": (det_links.loc[not_both_valid, ["l_idx", "r_idx"]],
                                   set(settings.get("m_from_links_not_both_valid", []))),
    }
    for sample_name, (m_pairs, estimated) in samples.items():
        if not estimated or not len(m_pairs):
            continue
        con.register("m_pairs", m_pairs)
        m_levels = compute_levels(con, "m_pairs", "acc", rules)
        con.unregister("m_pairs")
        for name, (counts, total) in _level_shares(m_levels, rules).items():
            if name not in estimated or total < min_pairs:  # too few pairs to measure: the priors
                continue
            params.m[name] = [
                None if prior is None else max((counts[i] + pseudo * prior) / (total + pseudo), m_floor)
                for i, prior in enumerate(params.m[name])
            ]
        params.estimated_from[sample_name] = int(len(m_pairs))

    sample = int(settings.get("random_pairs", 400_000))
    if len(accounts) * (len(accounts) - 1) // 2 < sample:
        # Fewer distinct pairs than draws: the draws would measure those few pairs, not the
        # population (two accounts' one pair is the very pair being judged, and every level
        # it agrees on would look common): u keeps its priors, as the prior keeps its size.
        return params
    rng = np.random.default_rng(int(settings.get("seed", 20)))
    left = rng.integers(0, len(accounts), sample)
    right = rng.integers(0, len(accounts), sample)
    keep = left != right
    u_pairs = pd.DataFrame({"l_idx": np.minimum(left, right)[keep], "r_idx": np.maximum(left, right)[keep]})
    con.register("u_pairs", u_pairs)
    u_levels = compute_levels(con, "u_pairs", "acc", rules)
    con.unregister("u_pairs")
    shares = _level_shares(u_levels, rules)
    for comparison in rules.comparisons:
        counts, total = shares[comparison.name]
        u = params.u[comparison.name]
        for i, level in enumerate(comparison.levels):
            if u[i] is None:
                continue
            if level.u_equal and total:
                # counted over every account; a share of the pairs the comparison is not null for
                agreeing = agreeing_pair_share(con, level.u_equal, level.u_unless_both, len(accounts))
                if agreeing is not None:
                    u[i] = agreeing / (total / len(u_pairs))
            elif counts[i] >= 20 and total:  # a level seen fewer times is too rare to measure
                u[i] = counts[i] / total
    params.estimated_from["u_pairs"] = int(len(u_pairs))
    return params


def agreeing_pair_share(con: duckdb.DuckDBPyConnection, equal: tuple[str, ...], unless_both: str | None,
                        account_count: int, min_pairs: int = 20) -> float | None:
    """The share of all pairs of accounts equal on `equal` (all set), leaving out the pairs where
    both sides carry `unless_both`: counted exactly from each value's accounts, for a level so
    rare that random pairs would need millions to show it (a masked phone's kept ends: about
    one pair in a million). None below `min_pairs` such pairs (a handful of test rows)."""
    keys = ", ".join(equal)
    clear = f"count({unless_both})" if unless_both else "0"
    pairs = con.execute(f"""
        SELECT coalesce(sum(n * (n - 1) - k * (k - 1)), 0) / 2 FROM (
            SELECT count(*)::DOUBLE AS n, {clear}::DOUBLE AS k FROM acc
            WHERE {" AND ".join(f"{c} IS NOT NULL" for c in equal)} GROUP BY {keys})""").fetchone()[0]
    if pairs < min_pairs:
        return None
    return pairs / (account_count * (account_count - 1) / 2)


def score_pairs(
    con: duckdb.DuckDBPyConnection, accounts: pd.DataFrame, rules: MatchingRules, params: ModelParameters,
    pairs_table: str = "pairs",
) -> pd.DataFrame:
    """Levels, weights, match weight and probability of every pair of temp table `pairs`."""
    levels = compute_levels(con, pairs_table, "acc", rules)
    rule_of_pair = con.execute(f"SELECT l_idx, r_idx, blocking_rule FROM {pairs_table}").df()
    levels = levels.merge(rule_of_pair, on=["l_idx", "r_idx"], how="left")
    weights = level_weights(levels, accounts, rules, params)
    scored = pd.concat([levels[["l_idx", "r_idx", "blocking_rule"]], level_labels(levels, rules), weights], axis=1)
    scored["match_weight"] = params.prior_log2_odds + weights.sum(axis=1)
    scored["match_probability"] = match_probability(scored["match_weight"].to_numpy())
    scored["namesake_guard"] = namesake_guard(scored, accounts, rules)
    return scored


def score_pairs_kept(
    con: duckdb.DuckDBPyConnection, accounts: pd.DataFrame, rules: MatchingRules, params: ModelParameters,
    keep,
) -> tuple[pd.DataFrame, int]:
    """score_pairs SCORE_CHUNK_PAIRS pairs of `pairs` at a time, keeping the rows that
    `keep(scored)` selects; and how many were scored. The candidates grow faster than the
    accounts (10.9M pairs at 4.3M persons; 27.6M before a county's namesakes were capped),
    and their levels, labels and weights all at once were the resolution's peak there
    (14.5 GB)."""
    total = con.execute("SELECT count(*) FROM pairs").fetchone()[0]
    kept = []
    for start in range(0, max(total, 1), SCORE_CHUNK_PAIRS):  # (one empty chunk: the columns)
        # rowid: the pairs' insertion order (the table is only ever inserted into)
        con.execute(f"CREATE OR REPLACE TEMP TABLE pairs_chunk AS SELECT * FROM pairs "
                    f"WHERE rowid >= {start} AND rowid < {start + SCORE_CHUNK_PAIRS}")
        scored = score_pairs(con, accounts, rules, params, "pairs_chunk")
        kept.append(scored.loc[keep(scored)])
        del scored
    con.execute("DROP TABLE pairs_chunk")
    return pd.concat(kept, ignore_index=True), total


def namesake_guard(scored: pd.DataFrame, accounts: pd.DataFrame, rules: MatchingRules) -> np.ndarray:
    """Pairs with a common name and no agreeing identifier: never linked without an analyst."""
    common = accounts["name_tf"].to_numpy()[scored["l_idx"].to_numpy()] >= rules.common_name_share
    identified = np.zeros(len(scored), dtype=bool)
    for comparison, labels in rules.identifier_levels:
        identified |= scored[f"{comparison}_level"].isin(labels).to_numpy()
    return common & (scored["name_level"] == "exact").to_numpy() & ~identified


# ---------------------------------------------------------------- the whole resolution

def _pairs_to_ids(pairs: pd.DataFrame, accounts: pd.DataFrame) -> pd.DataFrame:
    frame = pairs.copy(deep=False)  # copy on write: `pairs` is untouched, its columns not copied
    left, right = pairs["l_idx"].to_numpy(), pairs["r_idx"].to_numpy()
    # taken from the columns' arrays, as they are typed (a NumPy copy of a string column makes
    # a Python object of every value, four per scored pair, only for pandas to convert back)
    frame.insert(0, "left_source", accounts["source"].array.take(left))
    frame.insert(1, "left_source_id", accounts["source_id"].array.take(left))
    frame.insert(2, "right_source", accounts["source"].array.take(right))
    frame.insert(3, "right_source_id", accounts["source_id"].array.take(right))
    return frame


def _ids_to_idx(frame: pd.DataFrame, accounts: pd.DataFrame) -> pd.DataFrame:
    """Attach l_idx / r_idx to a frame keyed by PAIR_ID_COLUMNS, in its order; drops pairs of
    vanished accounts. Both ends found by one DuckDB join (two pandas merges of the last
    sync's pairs with a million accounts were most of a second)."""
    con = duck.scratch()
    try:
        con.register("pairs_in", pa.table({
            "row_at": np.arange(len(frame), dtype=np.int64),
            **{column: as_string_array(frame[column]) for column in PAIR_ID_COLUMNS},
        }))
        con.register("accounts_in", pa.table({
            "source": as_string_array(accounts["source"]), "source_id": as_string_array(accounts["source_id"]),
            "idx": accounts["idx"].to_numpy(dtype=np.int64),
        }))
        found = con.execute("""
            SELECT p.row_at, a.idx AS a_idx, b.idx AS b_idx FROM pairs_in p
            JOIN accounts_in a ON a.source = p.left_source AND a.source_id = p.left_source_id
            JOIN accounts_in b ON b.source = p.right_source AND b.source_id = p.right_source_id
            ORDER BY p.row_at
        """).fetchnumpy()
    finally:
        con.close()
    out = frame.iloc[found["row_at"]].reset_index(drop=True)
    out["l_idx"] = np.minimum(found["a_idx"], found["b_idx"])
    out["r_idx"] = np.maximum(found["a_idx"], found["b_idx"])
    return out


def _account_methods(accounts: pd.DataFrame, edges: pd.DataFrame, cluster: np.ndarray) -> pd.DataFrame:
    """match_method / match_probability per account: its strongest accepted link (the first
    method of METHOD_PRIORITY, then the highest probability, then the first edge); an account
    alone in its cluster is a singleton. The link ends sorted by NumPy over method codes
    (pandas' sort and merge of every link end took most of a second at a million persons)."""
    accepted = edges.loc[edges["accepted"]]
    code, names = pd.factorize(accepted["method"])
    names = np.asarray(names, dtype=object)
    rank = np.array([METHOD_PRIORITY.index(n) if n in METHOD_PRIORITY else len(METHOD_PRIORITY) for n in names],
                    dtype=np.int64)
    ends = np.concatenate([accepted["l_idx"].to_numpy("int64"), accepted["r_idx"].to_numpy("int64")])
    code = np.tile(code, 2)
    probability = np.tile(accepted["match_probability"].to_numpy(dtype="float64"), 2)
    order = np.lexsort((-probability, rank[code], ends))  # stable: ties keep the edges' order
    by_account = ends[order]
    best = order[np.flatnonzero(np.r_[True, by_account[1:] != by_account[:-1]])] if len(order) else order
    # an account's idx is its position (add_match_columns): the winners are written in place
    account_method = np.full(len(accounts), np.nan, dtype=object)
    account_probability = np.full(len(accounts), np.nan)
    account_method[ends[best]] = names[code[best]]
    account_probability[ends[best]] = probability[best]
    singleton = np.bincount(cluster)[cluster] == 1 if len(cluster) else np.zeros(0, dtype=bool)
    account_method[singleton] = "singleton"
    account_probability[singleton] = np.nan
    return pd.DataFrame({"idx": accounts["idx"].to_numpy(), "match_method": account_method,
                         "match_probability": account_probability})


def persons_with_two_valid_numbers(accounts: pd.DataFrame) -> int:
    """Keys whose accounts hold two or more different valid numbers (one DuckDB aggregate:
    pandas' groupby over a million string keys was this step's peak, its factorizing seconds)."""
    con = duck.scratch()
    try:
        con.register("held", pa.table({
            "volunteer_key": pa.array(accounts["volunteer_key"].astype("string"), pa.string()),
            "number": pa.array(accounts["cert_valid_hash"].astype("string"), pa.string()),
        }))
        return int(con.execute("""
            SELECT count(*) FROM (
                SELECT volunteer_key FROM held WHERE volunteer_key IS NOT NULL AND number IS NOT NULL
                GROUP BY volunteer_key HAVING count(DISTINCT number) > 1)
        """).fetchone()[0])
    finally:
        con.close()


def _volunteer_status(accounts: pd.DataFrame, key: str) -> pd.Series:
    """Contract: deleted only when every account is deleted; else the latest live account's status."""
    codes, keys = pd.factorize(accounts[key], sort=True)
    live = ~accounts["is_deleted"].to_numpy(dtype=bool)
    # the provincial platform has no status field: a live provincial account is active; a
    # live national account sent without albp0090 (optional there) has no status of its own
    # either and counts as active the same way, filled before the latest account is picked
    status = np.where(accounts["source"].to_numpy() == "provincial", "active",
                      accounts["status"].fillna("active").to_numpy(dtype=object))
    recency = -pd.to_datetime(accounts["updated_at"], utc=True).astype("int64").to_numpy()
    order = np.lexsort([np.arange(len(accounts)), recency, codes])  # by key, most recent first
    order = order[live[order]]
    found, first = np.unique(codes[order], return_index=True)
    result = np.full(len(keys), "deleted", dtype=object)
    result[found] = status[order[first]]
    return pd.Series(result, index=pd.Index(keys, name=key))


def account_row_fingerprints(accounts: pd.DataFrame) -> pd.DataFrame:
    """source, source_id and a 64-bit hash of every other ACCOUNT_COLUMNS field of each
    prepared account (DuckDB's hash over the row: one pass, no Python per row)."""
    values = [c for c in ACCOUNT_COLUMNS if c not in ("source", "source_id")]
    con = duck.scratch()
    try:
        con.register("accounts_rows", pa.Table.from_pandas(accounts[ACCOUNT_COLUMNS], preserve_index=False))
        return con.execute(
            f"SELECT source, source_id, hash({', '.join(values)}) AS row_fingerprint FROM accounts_rows"
        ).df()
    finally:
        con.close()


def golden_keys_to_remake(
    accounts: pd.DataFrame, rows: pd.DataFrame, previous: VolunteerState
) -> pd.Series:
    """The keys whose golden record may differ from the previous sync's: a key holding an
    account that is new, changed (any field) or came from another key, and a key an account
    left. Every other key holds the same accounts with the same fields: the same golden row."""
    con = duck.scratch()
    try:
        con.register("now_keys", pa.Table.from_pandas(
            accounts[["source", "source_id", "volunteer_key"]].astype("string"), preserve_index=False))
        con.register("now_rows", pa.Table.from_pandas(rows, preserve_index=False))
        con.register("before_rows", pa.Table.from_pandas(previous.account_rows, preserve_index=False))
        con.register("before_keys", pa.Table.from_pandas(
            previous.source_map[["source", "source_id", "volunteer_key"]].astype("string"), preserve_index=False))
        return con.execute("""
            SELECT n.volunteer_key FROM now_keys n
            JOIN now_rows r ON r.source = n.source AND r.source_id = n.source_id
            LEFT JOIN before_rows b ON b.source = n.source AND b.source_id = n.source_id
            LEFT JOIN before_keys k ON k.source = n.source AND k.source_id = n.source_id
            WHERE b.row_fingerprint IS DISTINCT FROM r.row_fingerprint OR k.volunteer_key IS DISTINCT FROM n.volunteer_key
            UNION
            SELECT k.volunteer_key FROM before_keys k
            LEFT JOIN now_keys n ON n.source = k.source AND n.source_id = k.source_id
            WHERE n.volunteer_key IS DISTINCT FROM k.volunteer_key
        """).df()["volunteer_key"].dropna()
    finally:
        con.close()


def golden_carried_over(
    accounts_with_keys: pd.DataFrame, rows: pd.DataFrame, previous: VolunteerState
) -> tuple[pd.DataFrame, int]:
    """golden_volunteers(accounts_with_keys), made only for golden_keys_to_remake and the
    previous rows for the other keys; and how many keys were made."""
    remake = golden_keys_to_remake(accounts_with_keys, rows, previous)
    keys = accounts_with_keys["volunteer_key"]
    recency_with_nulls = bool(pd.to_datetime(accounts_with_keys["updated_at"], utc=True).isna().any())
    chosen = is_in(keys, remake)
    fresh = golden_volunteers(accounts_with_keys.loc[chosen], recency_with_nulls) if chosen.any() else \
        pd.DataFrame(columns=GOLDEN_COLUMNS)
    before = previous.golden
    carried = before.loc[~is_in(before["volunteer_key"], remake) & is_in(before["volunteer_key"], keys)]
    golden = with_full_run_types(carried, fresh, GOLDEN_COLUMNS)
    return golden.sort_values("volunteer_key", kind="stable").reset_index(drop=True), len(fresh)


def golden_adds_up(golden: pd.DataFrame, account_keys: pd.Series) -> bool:
    """One golden row per key the accounts hold, and none else."""
    keys = golden["volunteer_key"]
    return bool(keys.is_unique and len(keys) == account_keys.nunique() and is_in(keys, account_keys).all())


def golden_volunteers(accounts_with_keys: pd.DataFrame, recency_with_nulls: bool | None = None) -> pd.DataFrame:
    """One row per volunteer_key, by schemas/survivorship.yaml. `recency_with_nulls`: see
    Ranking (for a part of the accounts, whether the whole has an account of unknown time)."""
    spec = load_survivorship()["volunteers"]
    golden = apply_survivorship(
        accounts_with_keys,
        "volunteer_key",
        spec,
        contract_rules={"status": _volunteer_status},
        derived_rules={"birth_year": lambda g: pd.to_datetime(g["birth_date"]).dt.year.astype("Int64")},
        recency_with_nulls=recency_with_nulls,
    )
    golden["account_count"] = golden["volunteer_key"].map(accounts_with_keys["volunteer_key"].value_counts()).astype("int64")
    for column in ["birth_date", "registered_on"]:
        golden[column] = pd.to_datetime(golden[column]).dt.date
    return golden[GOLDEN_COLUMNS]


def resolve_volunteers(
    staged_volunteers: pd.DataFrame,
    rules: MatchingRules | None = None,
    previous: VolunteerState | None = None,
    review_decisions: pd.DataFrame | None = None,
    *,
    synced_at: pd.Timestamp,
    service_links: pd.DataFrame | None = None,
    every_scored_pair: bool = True,
    name_key: str | None = None,
) -> VolunteerResolution:
    """Resolve staged volunteer accounts into persons; see the module docstring.
    `synced_at` is the run's instant (pipelines/clock.py), stamped on history and evidence.
    `service_links`: (provincial_id, national_id) of the services present in both systems
    (service_links.pushed_service_pairs), evidence for the `service` comparison.
    `every_scored_pair`: return every pair scored (`scored_pairs`: the tests and the
    benchmark's account of missed pairs read them); the step writes only those that reach an
    output, and without them holds less. `name_key`: the key staging sealed the names under
    (pipelines/name_seal.py; None for names in clear): matching reads their pinyin through it."""
    rules = rules or load_matching_rules()
    accounts = add_match_columns(prepare_accounts(staged_volunteers), rules.min_accounts, service_links, name_key)
    del staged_volunteers  # freed here when the caller handed it over (store.resolve_all)
    account_rows = account_row_fingerprints(accounts)
    account_count = len(accounts)

    det_links = deterministic_links(accounts)
    accounts["det_component"] = _components(account_count, det_links)
    accounts["other_system_linked"] = other_system_linked(accounts)
    # after the components: which accounts a rule links an account to is evidence for its pairs
    accounts["fingerprint"] = fingerprints(accounts) if account_count else pd.Series(dtype="uint64")

    # incremental only when the rules are unchanged and the change is small
    changed = None
    mode = "full"
    if previous is not None and previous.params is not None and previous.rules_fingerprint == rules.fingerprint:
        changed = changed_since(accounts, previous.fingerprints)
        if changed.mean() <= rules.full_rescore_share if account_count else True:
            mode = "incremental"
        else:
            changed = None

    # analysts' decisions: 'same' forces a link, 'not_same' cuts one and forbids the merge
    decisions = normalize_decisions(review_decisions)
    decided = _ids_to_idx(decisions, accounts) if len(decisions) else pd.DataFrame(columns=DECISION_COLUMNS + ["l_idx", "r_idx"])
    not_same = decided.loc[decided["decision"] == "not_same", ["l_idx", "r_idx"]]
    same = decided.loc[decided["decision"] == "same", ["l_idx", "r_idx"]]
    not_same_keys = set(zip(not_same["l_idx"].tolist(), not_same["r_idx"].tolist()))

    con = duck.scratch()
    try:
        _register_accounts(con, accounts, changed)
        if mode == "incremental":
            params = previous.params
        else:
            params = estimate_parameters(con, accounts, det_links, rules)
        blocked = candidate_pairs(con, rules, changed_only=mode == "incremental")
        # unless every pair is asked for, only those that can reach an output are kept: links
        # and refusals (p >= match), the review band, and the analysts' `same` pairs (their
        # levels go with the link); the pairs kept from the last sync are of the band and above
        floor = 0.0 if every_scored_pair else min(rules.review_probability, rules.match_probability)
        same_code = same["l_idx"].to_numpy("int64") * account_count + same["r_idx"].to_numpy("int64")

        def reaches_an_output(scored: pd.DataFrame) -> np.ndarray:
            pair_code = scored["l_idx"].to_numpy() * account_count + scored["r_idx"].to_numpy()
            return (scored["match_probability"] >= floor).to_numpy() | np.isin(pair_code, same_code)

        new_scored, pairs_scored = score_pairs_kept(con, accounts, rules, params, reaches_an_output)
    finally:
        con.close()

    scored = new_scored
    reused = 0
    if mode == "incremental" and len(previous.scored_pairs):
        old = _ids_to_idx(previous.scored_pairs, accounts)
        unchanged = ~changed[old["l_idx"].to_numpy()] & ~changed[old["r_idx"].to_numpy()]
        same_component = accounts["det_component"].to_numpy()
        unchanged &= same_component[old["l_idx"].to_numpy()] != same_component[old["r_idx"].to_numpy()]
        old = old.loc[unchanged, new_scored.columns]
        reused = len(old)
        scored = pd.concat([old, new_scored], ignore_index=True)
    scored = scored.sort_values(["l_idx", "r_idx"]).reset_index(drop=True)
    del new_scored  # (scored holds its rows, sorted: at a million persons each is ~340 MB)

    scored_is_cut = pd.Series(
        [pair in not_same_keys for pair in zip(scored["l_idx"].tolist(), scored["r_idx"].tolist())], dtype=bool
    ) if not_same_keys else pd.Series(False, index=scored.index)

    probable = scored.loc[
        (scored["match_probability"] >= rules.match_probability) & ~scored_is_cut & ~scored["namesake_guard"]
    ]
    probable = probable.sort_values(["match_weight", "l_idx", "r_idx"], ascending=[False, True, True])
    det_ordered = det_links.assign(priority=det_links["method"].map({m: i for i, m in enumerate(METHOD_PRIORITY)}))
    det_ordered = det_ordered.sort_values(["priority", "l_idx", "r_idx"])
    edges = pd.concat(
        [
            det_ordered.assign(match_probability=1.0)[["l_idx", "r_idx", "method", "match_probability"]],
            same.assign(method="review_same", match_probability=1.0)[["l_idx", "r_idx", "method", "match_probability"]],
            probable.assign(method="probabilistic")[["l_idx", "r_idx", "method", "match_probability"]],
        ],
        ignore_index=True,
    ).astype({"l_idx": "int64", "r_idx": "int64"})
    # three constraints, checked in this order: different valid numbers, different real-number
    # ends, and (probabilistic links only) two national accounts
    exclusive = {
        "valid_number": pd.factorize(accounts["cert_valid_hash"])[0],
        "real_number_ends": real_number_ends(accounts),
        "national_account": national_accounts(accounts),
    }
    cluster, refused_by = clusters_with_refusals(
        account_count, edges["l_idx"].to_numpy(), edges["r_idx"].to_numpy(), exclusive,
        cannot_link=not_same_keys, applies_to={"national_account": (edges["method"] == "probabilistic").to_numpy()},
    )
    edges["accepted"] = refused_by == ""
    edges["refused_by"] = refused_by

    # stable keys
    accounts["cluster"] = cluster
    previous_map = None
    issued: pd.Series | set[str] = set()
    if previous is not None:
        previous_map = previous.source_map.rename(columns={"volunteer_key": "key"})
        # as one column (a Python set of a million boxed keys cost seconds): see assign_stable_keys
        issued = pd.concat([previous.key_history["key"].astype("string"), previous_map["key"].astype("string")]).dropna()
    cluster_keys, history = assign_stable_keys(accounts, previous_map, "V", issued, synced_at=synced_at)
    accounts["volunteer_key"] = key_of_each(accounts["cluster"], cluster_keys)

    methods = _account_methods(accounts, edges, cluster)
    source_map = accounts[["source", "source_id", "volunteer_key"]].copy()
    source_map["match_method"] = methods["match_method"].to_numpy()
    source_map["match_probability"] = methods["match_probability"].astype("float64").to_numpy()
    source_map = source_map[SOURCE_MAP_COLUMNS]  # (the output and the state: one frame, one file's bytes)

    golden_remade = None
    if previous is not None and previous.golden is not None and previous.account_rows is not None:
        try:
            golden, golden_remade = golden_carried_over(accounts, account_rows, previous)
            if not golden_adds_up(golden, accounts["volunteer_key"]):
                raise NotTheFullAnswer("carried golden records do not add up")
        except NotTheFullAnswer:
            golden_remade = None
    if golden_remade is None:
        golden = golden_volunteers(accounts)
    if previous is not None:  # a million rows each, not needed again
        previous.golden = previous.account_rows = None
    # what is read of the accounts from here on: their matching columns go (most of the memory
    # held at the end of this function, when the links, review and state are all made)
    accounts = accounts[["source", "source_id", "volunteer_key", "fingerprint", "cert_valid_hash"]]

    # evidence of every link used or refused
    scored_labelled = _pairs_to_ids(scored, accounts)
    # evidence text for the pairs it can reach: links (p >= match), review (the band) and the
    # refused links; below the band a pair is dropped, and its text was most of this step's
    # time and memory at a million persons (one Python string per scored pair)
    reaches_output = (scored_labelled["match_probability"] >= min(rules.review_probability, rules.match_probability)).to_numpy()
    scored_labelled["evidence"] = waterfall_text(
        scored_labelled.loc[reaches_output], rules, params.prior_log2_odds
    ).reindex(scored_labelled.index)
    key_of = accounts["volunteer_key"].to_numpy()
    link_rows = _pairs_to_ids(edges, accounts)
    link_rows = link_rows.merge(
        scored_labelled.drop(columns=PAIR_ID_COLUMNS + ["match_probability"]), on=["l_idx", "r_idx"], how="left"
    )
    deterministic = link_rows["method"] != "probabilistic"
    link_rows.loc[deterministic, "evidence"] = link_rows.loc[deterministic, "method"].map(DETERMINISTIC_EXPLANATIONS)
    link_rows["outcome"] = link_rows["refused_by"].map({k: v[0] for k, v in REFUSALS.items()}).fillna("linked")
    link_rows["volunteer_key"] = np.where(link_rows["accepted"], key_of[link_rows["l_idx"].to_numpy()], None)
    link_rows["synced_at"] = synced_at

    # review: the uncertain band between clusters, and strong pairs the constraints refused
    in_band = (scored["match_probability"] >= rules.review_probability) & (
        scored["match_probability"] < rules.match_probability
    )
    apart = cluster[scored["l_idx"].to_numpy()] != cluster[scored["r_idx"].to_numpy()]
    guarded = (scored["match_probability"] >= rules.match_probability) & scored["namesake_guard"]
    review = scored_labelled.loc[((in_band | guarded) & apart & ~scored_is_cut).to_numpy()].copy()
    review["reason"] = np.where(guarded.to_numpy()[review.index], "common_name_without_identifier", "uncertain")
    refused = link_rows.loc[~link_rows["accepted"] & (link_rows["method"] == "probabilistic")]
    refused_review = scored_labelled.merge(refused[["l_idx", "r_idx", "refused_by"]], on=["l_idx", "r_idx"])
    refused_review["reason"] = refused_review["refused_by"].map({k: v[1] for k, v in REFUSALS.items()})
    # a steward's `same` that a constraint refuses (two different valid numbers...) comes back
    # to the workbook saying so: it was counted applied and the pair left the review, apart
    # (its row is the link's: such a pair may never have been scored)
    same_refused = link_rows.loc[~link_rows["accepted"] & (link_rows["method"] == "review_same")].copy()
    same_refused["reason"] = "decided_same_but_" + same_refused["outcome"].astype(str)
    same_refused["match_probability"] = np.nan
    refused_review = pd.concat([refused_review, same_refused], ignore_index=True)
    review = pd.concat([review, refused_review], ignore_index=True)
    review["left_volunteer_key"] = key_of[review["l_idx"].to_numpy()] if len(review) else []
    review["right_volunteer_key"] = key_of[review["r_idx"].to_numpy()] if len(review) else []
    review["decision"] = pd.Series(pd.NA, index=review.index, dtype="string")
    review["synced_at"] = synced_at

    # state for the next sync: pairs worth keeping (the band and above)
    keep_pairs = scored_labelled.loc[scored_labelled["match_probability"] >= rules.review_probability]
    state_pairs = keep_pairs.drop(columns=["l_idx", "r_idx", "evidence"])
    # (not concatenated to an empty frame: its untyped columns made every value a Python
    # object, the change times Timestamps, 3x the memory at a first sync)
    earlier_history = previous.key_history if previous is not None else None
    all_history = history if earlier_history is None or not len(earlier_history) else pd.concat(
        [earlier_history, history], ignore_index=True
    )
    state = VolunteerState(
        source_map=source_map,
        fingerprints=accounts[["source", "source_id", "fingerprint"]].copy(),
        scored_pairs=state_pairs.reset_index(drop=True),
        params=params,
        rules_fingerprint=rules.fingerprint,
        key_history=all_history,
        account_rows=account_rows,
    )
    link_columns = ["volunteer_key"] + PAIR_ID_COLUMNS + [
        "method", "blocking_rule", "match_probability", "match_weight",
    ] + [f"{c.name}_level" for c in rules.comparisons] + [f"{c.name}_weight" for c in rules.comparisons] + [
        "evidence", "accepted", "outcome", "synced_at",
    ]
    review_columns = PAIR_ID_COLUMNS + ["left_volunteer_key", "right_volunteer_key", "reason", "blocking_rule",
                                        "match_probability", "match_weight"] + [
        f"{c.name}_level" for c in rules.comparisons] + [f"{c.name}_weight" for c in rules.comparisons] + [
        "evidence", "decision", "synced_at"]
    key_changes = int(history["event"].isin(["merged_into", "split_from"]).sum())
    summary = {
        "mode": mode,
        "accounts": account_count,
        "persons": int(golden.shape[0]),
        "changed_accounts": int(changed.sum()) if changed is not None else account_count,
        "pairs_scored": int(pairs_scored),
        "pairs_reused": int(reused),
        "pairs_by_blocking_rule": {k: int(v) for k, v in blocked.items()},
        "accounts_by_method": {k: int(v) for k, v in source_map["match_method"].value_counts().items()},
        "links_by_method": {k: int(v) for k, v in edges.loc[edges["accepted"], "method"].value_counts().items()},
        "links_refused": int((~edges["accepted"]).sum()),
        "links_refused_by": {k: int(v) for k, v in edges.loc[~edges["accepted"], "refused_by"].value_counts().items()},
        "review_pairs": int(len(review)),
        "decisions_applied": int(len(decided)) - len(same_refused),
        "decisions_refused": int(len(same_refused)),
        "key_changes": key_changes,
        "persons_with_two_valid_numbers": persons_with_two_valid_numbers(accounts),
        "keys_created": int((history["event"] == "created").sum()),
        "prior_log2_odds": round(params.prior_log2_odds, 3),
        "model": {
            name: [None if (m is None or u is None) else round(math.log2(m / u), 2)
                   for m, u in zip(params.m[name], params.u[name])]
            for name in params.m
        },
    }
    resolution = VolunteerResolution(
        source_map=source_map,
        golden=golden,
        links=link_rows[link_columns].reset_index(drop=True),
        review=review[review_columns].reset_index(drop=True),
        key_history=history,
        state=state,
        summary=summary,
        scored_pairs=scored_labelled.drop(columns=["l_idx", "r_idx"]) if every_scored_pair else None,
    )
    # how the golden records were made (not what they are: the summary is the same either way)
    resolution.work = {"golden": "full" if golden_remade is None else "carried over",
                       "golden_made": int(len(golden) if golden_remade is None else golden_remade)}
    return resolution
