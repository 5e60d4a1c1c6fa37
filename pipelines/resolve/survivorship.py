"""Golden-record survivorship: one value per field from a cluster's accounts, by declared rule.

The rules are declared in schemas/survivorship.yaml, field by field; this module applies them
to a frame of accounts that already carries its cluster key, vectorized (sort, then the first
non-null value per key). Live accounts always come before deleted ones. Rules fixed by the
contract (status, registration_status) are passed in as functions by the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

ContractRule = Callable[[pd.DataFrame, str], pd.Series]


def first_non_null(accounts: pd.DataFrame, key: str, column: str, sort_by: list[tuple[str, bool]]) -> pd.Series:
    """Per key, the first non-null `column` after sorting by `sort_by` [(column, ascending)]."""
    columns = [c for c, _ in sort_by]
    ordered = accounts.sort_values(columns + ["source", "source_id"], ascending=[a for _, a in sort_by] + [True, True],
                                   kind="stable")
    return ordered.groupby(key, sort=False)[column].first()


def _with_ranks(accounts: pd.DataFrame, source_order: list[str] | None = None) -> pd.DataFrame:
    frame = accounts.copy()
    frame["_deleted"] = frame["is_deleted"].fillna(False).astype(bool)
    if source_order:
        rank = {source: i for i, source in enumerate(source_order)}
        frame["_source_rank"] = frame["source"].map(rank).fillna(len(rank)).astype(int)
    return frame


def apply_survivorship(
    accounts: pd.DataFrame,
    key: str,
    spec: dict[str, dict[str, Any]],
    contract_rules: dict[str, ContractRule] | None = None,
    derived_rules: dict[str, Callable[[pd.DataFrame], pd.Series]] | None = None,
) -> pd.DataFrame:
    """One golden row per `key`, each field by its rule in `spec` (a table of survivorship.yaml)."""
    contract_rules = contract_rules or {}
    derived_rules = derived_rules or {}
    golden = pd.DataFrame(index=pd.Index(sorted(accounts[key].unique()), name=key))
    recent = [("_deleted", True), ("updated_at", False)]
    base = _with_ranks(accounts)
    for field, rule_spec in spec.items():
        rule = rule_spec["rule"]
        if rule == "derived":
            continue
        if rule == "contract":
            golden[field] = contract_rules[field](accounts, key)
        elif rule == "most_recent":
            golden[field] = first_non_null(base, key, field, recent)
        elif rule == "prefer_source":
            ranked = _with_ranks(accounts, rule_spec["order"])
            golden[field] = first_non_null(ranked, key, field, [("_deleted", True), ("_source_rank", True), ("updated_at", False)])
        elif rule == "valid_first":
            valid = base[rule_spec.get("valid_column", "cert_valid")].fillna(False).astype(bool)
            ranked = base.assign(_valid=valid)
            if rule_spec.get("then", "most_recent") == "none":
                ranked = ranked.loc[valid]
            golden[field] = first_non_null(ranked, key, field, [("_valid", False)] + recent)
        elif rule == "earliest":
            golden[field] = base.groupby(key)[field].min()
        elif rule == "latest":
            golden[field] = base.groupby(key)[field].max()
        elif rule == "any":
            golden[field] = base[field].fillna(False).astype(bool).groupby(base[key]).any()
        elif rule == "has_source":
            golden[field] = (base["source"] == rule_spec["source"]).groupby(base[key]).any()
        elif rule == "union_categories":
            golden[field] = derived_rules[field](base)
        else:
            raise ValueError(f"unknown survivorship rule {rule!r} for {field}")
    for field, rule_spec in spec.items():
        if rule_spec["rule"] == "derived":
            golden[field] = derived_rules[field](golden)
    return golden.reset_index()
