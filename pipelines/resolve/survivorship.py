"""Golden-record survivorship: one value per field from a cluster's accounts, by declared rule.

The rules are declared in schemas/survivorship.yaml, field by field; this module applies them
to a frame of accounts that already carries its cluster key. Vectorized with numpy: each rule
is an ordering of the accounts (live before deleted, then source preference, validity, most
recent first), computed once; a field takes, per key, the first non-null value in that order.
Rules fixed by the contract (status, registration_status) are passed in by the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from pipelines.normalize.regions import is_guizhou

ContractRule = Callable[[pd.DataFrame, str], pd.Series]


class Ranking:
    """Integer key codes and the sort keys of the accounts, shared by every field."""

    def __init__(self, accounts: pd.DataFrame, key: str, recency_with_nulls: bool | None = None) -> None:
        self.accounts = accounts.reset_index(drop=True)
        self.codes, self.keys = pd.factorize(self.accounts[key], sort=True)
        self.deleted = self.accounts["is_deleted"].fillna(False).to_numpy(dtype=bool)
        updated = pd.to_datetime(self.accounts["updated_at"], utc=True)
        # most recent first; unknown times last. Where a time is unknown, times are compared
        # as floats (ties at the nanosecond scale): a part of the accounts (golden records made
        # for some keys only) says whether the whole had one, to rank as the whole would
        if recency_with_nulls is None:
            recency_with_nulls = not updated.notna().all()
        self.recency = -updated.astype("int64").to_numpy() if not recency_with_nulls else -np.nan_to_num(
            updated.astype("float64").to_numpy(), nan=-np.inf)
        self.position = np.arange(len(self.accounts))  # accounts arrive sorted by (source, source_id)
        self._orders: dict[tuple, np.ndarray] = {}

    def order(self, source_order: tuple[str, ...] = (), valid_column: str | None = None) -> np.ndarray:
        """Positions sorted by key, live first, source preference, valid first, most recent first."""
        cache_key = (source_order, valid_column)
        if cache_key not in self._orders:
            sort_keys = [self.position, self.recency]  # np.lexsort: the last key is the primary one
            if valid_column:
                sort_keys.append(~self.accounts[valid_column].fillna(False).to_numpy(dtype=bool))
            if source_order:
                rank = {source: i for i, source in enumerate(source_order)}
                sort_keys.append(self.accounts["source"].map(rank).fillna(len(rank)).to_numpy(dtype=int))
            sort_keys += [self.deleted, self.codes]
            self._orders[cache_key] = np.lexsort(sort_keys)
        return self._orders[cache_key]

    def first_non_null(self, column: str, order: np.ndarray, allowed: np.ndarray | None = None) -> pd.Series:
        """Per key, the first non-null value of `column` in `order` (null where there is none)."""
        values = self.accounts[column]
        usable = values.notna().to_numpy().copy()
        if allowed is not None:
            usable &= allowed
        chosen = order[usable[order]]
        codes, first = np.unique(self.codes[chosen], return_index=True)
        picked = np.full(len(self.keys), None, dtype=object)
        picked[codes] = values.to_numpy(dtype=object)[chosen[first]]
        result = pd.Series(picked, index=pd.Index(self.keys, name="key"))
        try:  # keep the column's type where its missing value allows (not for plain bools)
            return result.astype(values.dtype)
        except (TypeError, ValueError):
            return result

    def per_key(self, values: np.ndarray, how: str) -> pd.Series:
        grouped = pd.Series(values).groupby(self.codes)
        result = getattr(grouped, how)()
        return pd.Series(result.to_numpy(), index=pd.Index(self.keys[result.index], name="key"))


def county_codes_only(codes: pd.Series) -> np.ndarray:
    """Which accounts' region codes may become a golden `region_code`: the contract makes it
    the current county code, so a code naming no current county of Guizhou (a prefecture's
    520100, the province's 520000, a code stdnum does not know) is skipped, and the next
    account's county is taken, or none."""
    return is_guizhou(codes).to_numpy(dtype=bool)


def apply_survivorship(
    accounts: pd.DataFrame,
    key: str,
    spec: dict[str, dict[str, Any]],
    contract_rules: dict[str, ContractRule] | None = None,
    derived_rules: dict[str, Callable[[pd.DataFrame], pd.Series]] | None = None,
    recency_with_nulls: bool | None = None,
) -> pd.DataFrame:
    """One golden row per `key`, each field by its rule in `spec` (a table of survivorship.yaml)."""
    contract_rules = contract_rules or {}
    derived_rules = derived_rules or {}
    ranking = Ranking(accounts, key, recency_with_nulls)
    golden = pd.DataFrame(index=pd.Index(ranking.keys, name=key))

    def put(field: str, values: pd.Series) -> None:
        golden[field] = values.reindex(golden.index).to_numpy() if not values.index.equals(golden.index) else values.to_numpy()

    for field, rule_spec in spec.items():
        rule = rule_spec["rule"]
        if rule == "derived":
            continue
        if rule == "contract":
            put(field, contract_rules[field](ranking.accounts, key))
        elif rule == "most_recent":
            put(field, ranking.first_non_null(field, ranking.order()))
        elif rule == "prefer_source":
            allowed = county_codes_only(ranking.accounts[field]) if rule_spec.get("county_only") else None
            put(field, ranking.first_non_null(field, ranking.order(tuple(rule_spec["order"])), allowed))
        elif rule == "valid_first":
            valid_column = rule_spec.get("valid_column", "cert_valid")
            allowed = None
            if rule_spec.get("then", "most_recent") == "none":
                allowed = ranking.accounts[valid_column].fillna(False).to_numpy(dtype=bool)
            put(field, ranking.first_non_null(field, ranking.order(valid_column=valid_column), allowed))
        elif rule in ("earliest", "latest"):
            put(field, ranking.per_key(ranking.accounts[field].to_numpy(), "min" if rule == "earliest" else "max"))
        elif rule == "any":
            put(field, ranking.per_key(ranking.accounts[field].fillna(False).to_numpy(dtype=bool), "any"))
        elif rule == "has_source":
            put(field, ranking.per_key((ranking.accounts["source"] == rule_spec["source"]).to_numpy(), "any"))
        elif rule == "union_categories":
            put(field, derived_rules[field](ranking.accounts))
        else:
            raise ValueError(f"unknown survivorship rule {rule!r} for {field}")
    for field, rule_spec in spec.items():
        if rule_spec["rule"] == "derived":
            golden[field] = derived_rules[field](golden)
    return golden.reset_index()
