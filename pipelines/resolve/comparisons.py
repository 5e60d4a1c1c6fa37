"""Field comparisons for volunteer matching: the columns they need, their levels, their weights.

Chinese names do not fit Latin-name similarity scores: a two-character name one character
apart scores 0.67 Jaro-Winkler. So a name compares as exact, same pinyin (homophones typed by
an input method: 小明 / 晓明), one character dropped, one character apart, or different — and
an exact name weighs by its own frequency (term frequency), so 王伟 counts for less than a
rare name. Levels and m/u come from schemas/matching.yaml; this module turns them into SQL
(DuckDB) and into log2 Bayes factors (numpy), both vectorized over all pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
from pypinyin import Style, lazy_pinyin

from pipelines.name_seal import unseal_name
from pipelines.resolve.rules import Comparison, MatchingRules
from pipelines.resolve.service_links import service_anchors

# The columns of an account that comparisons and blocking read (see add_match_columns).
MATCH_COLUMNS = [
    "idx", "source", "name", "name_pinyin", "surname", "name_tf", "birth_date", "birth_year", "birth_day",
    "gender", "phone_hash", "phone_prefix3", "phone_suffix4", "cert_hash", "cert_valid_hash", "cert_prefix4",
    "cert_suffix4", "region_code", "service_anchor",
]


def pinyin_of_names(names: pd.Series, name_key: str | None = None) -> pd.Series:
    """Toneless pinyin of each name, character by character ('晓明' -> 'xiaoming').

    Converted per distinct character (a few thousand), not per name, and joined per distinct
    name, then taken to each account by its name's code (a lookup of a million names in a
    dictionary by their text took most of a second at a million persons). Characters without
    a reading (Latin letters, digits) stay as they are. Names sealed under `name_key`
    (pipelines/name_seal.py, as staging keeps them) are read through it, a character at a
    time: the pinyin is held here only, never written.
    """
    codes, distinct_names = pd.factorize(names)  # -1 for a missing name
    return pinyin_by_code(codes, distinct_names, name_key, names.index)


def pinyin_by_code(codes: np.ndarray, distinct_names, name_key: str | None, index: pd.Index) -> pd.Series:
    """pinyin_of_names for names given as their codes into `distinct_names` (pd.factorize)."""
    chars = sorted({ch for name in distinct_names for ch in name})
    clear = {ch: unseal_name(ch, name_key) if name_key is not None else ch for ch in chars}
    reading = {ch: (lazy_pinyin(clear[ch], style=Style.NORMAL, errors="default") or [ch])[0] for ch in chars}
    distinct_pinyin = pd.array(["".join(reading[ch] for ch in name) for name in distinct_names], dtype="str")
    return pd.Series(distinct_pinyin.take(codes, allow_fill=True), index=index)


def add_match_columns(
    accounts: pd.DataFrame, min_accounts: int = 0, service_links: pd.DataFrame | None = None,
    name_key: str | None = None,
) -> pd.DataFrame:
    """Add the derived columns that blocking and comparisons use.

    idx: position (the pair tables hold positions, not source ids); surname: first character;
    name_pinyin; birth_year, and birth_day (month * 100 + day: a year typed wrong keeps it);
    name_tf: the name's share of all accounts, the u of an exact name match, counted over at
    least `min_accounts` accounts (a handful of test rows would otherwise make every name look
    common); cert_valid_hash: the hash where the number is a valid resident ID;
    service_anchor: what ties the account to another system's account through a pushed service
    (service_links.py; null for all when `service_links` is None). `name_key`: the key the
    names are sealed under (None: names in clear, as a test's frame holds them).
    """
    frame = accounts.reset_index(drop=True).copy()
    frame["idx"] = np.arange(len(frame), dtype=np.int64)
    frame["surname"] = frame["name"].str.slice(0, 1)
    # each distinct name once: its pinyin, and how many accounts hold it (one factorize for both)
    name_codes, distinct_names = pd.factorize(frame["name"])
    frame["name_pinyin"] = pinyin_by_code(name_codes, distinct_names, name_key, frame.index)
    holders = np.bincount(name_codes[name_codes >= 0], minlength=len(distinct_names)).astype("float64")
    name_counts = np.where(name_codes >= 0, holders[np.maximum(name_codes, 0)], np.nan)
    frame["name_tf"] = name_counts / max(len(frame), min_accounts, 1)
    births = pd.to_datetime(frame["birth_date"])
    frame["birth_year"] = births.dt.year.astype("Int64")
    frame["birth_day"] = (births.dt.month * 100 + births.dt.day).astype("Int64")
    valid = frame["cert_valid"].fillna(False).astype(bool)
    frame["cert_valid_hash"] = frame["cert_hash"].where(valid)
    frame["service_anchor"] = service_anchors(frame, service_links)
    return frame


def level_case_sql(comparison: Comparison) -> str:
    """CASE expression giving the index of the first level whose condition holds."""
    whens = " ".join(f"WHEN {level.sql} THEN {i}" for i, level in enumerate(comparison.levels))
    return f"CASE {whens} ELSE {len(comparison.levels) - 1} END"


def compute_levels(
    con: duckdb.DuckDBPyConnection, pairs_table: str, accounts_table: str, rules: MatchingRules
) -> pd.DataFrame:
    """The level of every comparison for every pair (l_idx, r_idx) of `pairs_table`."""
    level_columns = ",\n".join(
        f"CAST({level_case_sql(c)} AS TINYINT) AS {c.name}_level" for c in rules.comparisons
    )
    sql = f"""
        SELECT p.l_idx, p.r_idx, {level_columns}
        FROM {pairs_table} p
        JOIN {accounts_table} l ON l.idx = p.l_idx
        JOIN {accounts_table} r ON r.idx = p.r_idx
        ORDER BY p.l_idx, p.r_idx
    """
    return con.execute(sql).df()


@dataclass
class ModelParameters:
    """m and u per comparison level (None for null levels) and the prior log2-odds."""

    m: dict[str, list[float | None]]
    u: dict[str, list[float | None]]
    prior_log2_odds: float
    estimated_from: dict[str, int]

    def to_json(self) -> dict:
        return {
            "m": self.m, "u": self.u, "prior_log2_odds": self.prior_log2_odds,
            "estimated_from": self.estimated_from,
        }

    @classmethod
    def from_json(cls, data: dict) -> "ModelParameters":
        return cls(
            m=data["m"], u=data["u"], prior_log2_odds=float(data["prior_log2_odds"]),
            estimated_from=dict(data.get("estimated_from", {})),
        )


def prior_parameters(rules: MatchingRules, account_count: int) -> ModelParameters:
    """The m/u priors of matching.yaml and a prior from the expected accounts per person."""
    population = max(account_count, rules.min_accounts, 2)
    persons = population / rules.accounts_per_person
    # expected same-person pairs: the surplus accounts, each pairing with its person's first
    match_pairs = max(population - persons, 1.0)
    all_pairs = population * (population - 1) / 2
    prior = match_pairs / all_pairs
    return ModelParameters(
        m={c.name: [lv.m for lv in c.levels] for c in rules.comparisons},
        u={c.name: [lv.u for lv in c.levels] for c in rules.comparisons},
        prior_log2_odds=math.log2(prior / (1 - prior)),
        estimated_from={},
    )


def level_weights(
    levels: pd.DataFrame, accounts: pd.DataFrame, rules: MatchingRules, params: ModelParameters
) -> pd.DataFrame:
    """log2(m/u) per comparison for every pair, term-frequency adjusted where a level says `tf`.

    Returns one `<comparison>_weight` column per comparison (0 for null levels).
    """
    weights = pd.DataFrame(index=levels.index)
    for comparison in rules.comparisons:
        level_codes = levels[f"{comparison.name}_level"].to_numpy()
        table = np.array(
            [
                0.0 if lv.is_null else math.log2(params.m[comparison.name][i] / params.u[comparison.name][i])
                for i, lv in enumerate(comparison.levels)
            ]
        )
        weight = table[level_codes]
        for i, level in enumerate(comparison.levels):
            if level.tf_column is None:
                continue
            # u of an exact agreement on a value is that value's frequency (Splink's term
            # frequency adjustment): both sides hold the same value, take the left one's share.
            tf_column = f"{level.tf_column}_tf"
            left_tf = accounts[tf_column].to_numpy()[levels["l_idx"].to_numpy()]
            at_level = level_codes == i
            tf = np.clip(left_tf[at_level].astype(float), 1e-9, 1.0)
            weight[at_level] = np.log2(params.m[comparison.name][i] / tf)
        weights[f"{comparison.name}_weight"] = weight
    return weights


def match_probability(total_log2_odds: np.ndarray) -> np.ndarray:
    """Probability from log2-odds, stable for large magnitudes."""
    return 1.0 / (1.0 + np.exp2(-np.clip(total_log2_odds, -200, 200)))
