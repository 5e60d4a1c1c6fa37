"""Stable keys for golden records (volunteer_key, org_key) and the history of their changes.

Rule (documented in docs/RESOLUTION.md):
- A cluster whose accounts held keys before takes the key held by the most of its accounts
  (tie: the smallest key, i.e. the oldest-sorting); each old key goes to one cluster only, the
  one holding most of its accounts (tie: the cluster whose first account sorts first).
- A cluster that gets no old key gets a new one: prefix + 12 hex of SHA-256 of its first account's
  "source:source_id" (so a first load of the same data always yields the same keys); a key ever
  issued is never issued again.
- History rows: created, merged_into (an old key no cluster kept, whose accounts joined
  another key's cluster), split_from (a new key made for accounts that left an old key's
  cluster), moved_to (accounts of an old key that joined another old key's cluster while
  their own key lived on), retired (an old key none of whose accounts exist any more). Every
  account whose key changed is covered by one of them.
Keys are opaque: they hash source identifiers, never personal data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import pandas as pd

from pipelines.resolve.vectorized import hashed_keys, is_in

HISTORY_COLUMNS = ["synced_at", "key", "event", "related_key", "accounts"]


def hashed_key(prefix: str, text: str) -> str:
    """prefix + the first 12 hex digits of SHA-256 of `text`: stable, and opaque (no source
    number can be read back from it)."""
    return prefix + hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def new_key(prefix: str, first_account: str, issued: set[str]) -> str:
    """prefix + 12 hex of the hash of the first account; rehashed with a counter on collision."""
    attempt = 0
    while True:
        seed = first_account if attempt == 0 else f"{first_account}#{attempt}"
        key = hashed_key(prefix, seed)
        if key not in issued:
            return key
        attempt += 1


def _greedy_assignment(votes: pd.DataFrame) -> dict[int, str]:
    """Old keys to clusters: most accounts first, then smallest key, then first cluster."""
    ordered = votes.sort_values(["accounts", "old_key", "cluster_first"], ascending=[False, True, True])
    taken_keys: set[str] = set()
    assignment: dict[int, str] = {}
    for cluster, old_key in zip(ordered["cluster"].tolist(), ordered["old_key"].tolist()):
        if cluster in assignment or old_key in taken_keys:
            continue
        assignment[cluster] = old_key
        taken_keys.add(old_key)
    return assignment


def assign_stable_keys(
    clusters: pd.DataFrame,
    previous_map: pd.DataFrame | None,
    prefix: str,
    issued_keys: Iterable[str] = (),
    *,
    synced_at: pd.Timestamp,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Give every cluster a key, keeping the keys of the previous sync where identity held.

    clusters: source, source_id, cluster (any integer id of this sync's clustering).
    previous_map: source, source_id, key (the previous sync's map) or None on a first load.
    Returns (cluster -> key frame with columns cluster, key) and the history rows of this sync.
    """
    accounts = clusters[["source", "source_id", "cluster"]].copy()
    accounts["account"] = accounts["source"].astype(str) + ":" + accounts["source_id"].astype(str)
    cluster_first = accounts.groupby("cluster")["account"].min().rename("cluster_first")
    if previous_map is not None and len(previous_map):
        accounts = accounts.merge(
            previous_map[["source", "source_id", "key"]].rename(columns={"key": "old_key"}),
            on=["source", "source_id"], how="left",
        )
    else:
        accounts["old_key"] = pd.Series(pd.NA, index=accounts.index, dtype="string")
    votes = (
        accounts.dropna(subset=["old_key"]).groupby(["cluster", "old_key"]).size().rename("accounts").reset_index()
    )
    votes = votes.merge(cluster_first.reset_index(), on="cluster")
    # the common case, vectorized: a key found in one cluster only, which holds no other key
    keys_per_cluster = votes.groupby("cluster")["old_key"].transform("size")
    clusters_per_key = votes.groupby("old_key")["cluster"].transform("size")
    simple = (keys_per_cluster == 1) & (clusters_per_key == 1)
    assignment = dict(zip(votes.loc[simple, "cluster"].tolist(), votes.loc[simple, "old_key"].tolist()))
    assignment.update(_greedy_assignment(votes.loc[~simple]))

    if not isinstance(issued_keys, pd.Series):
        issued_keys = pd.Series(list(issued_keys), dtype="string")
    issued = pd.concat([issued_keys.astype("string"), votes["old_key"].astype("string")], ignore_index=True)
    history: list[pd.DataFrame] = []
    unkeyed = cluster_first.loc[~cluster_first.index.isin(list(assignment))]
    # plurality old key of each unkeyed cluster (it split away from that key)
    split_source = (
        votes.loc[~votes["cluster"].isin(list(assignment))]
        .sort_values(["accounts", "old_key"], ascending=[False, True])
        .drop_duplicates("cluster")
        .set_index("cluster")["old_key"]
    )
    sizes = accounts.groupby("cluster").size()
    unkeyed = unkeyed.sort_values()
    candidate = hashed_keys(prefix, unkeyed)  # hashed_key of each, in one DuckDB call
    if not (is_in(candidate, issued).any() or candidate.duplicated().any()):
        fresh = candidate.tolist()  # the common case: no candidate was ever issued
    else:
        # rare: a key issued before (or twice now) gets rehashed, one cluster after another
        taken, fresh = set(issued.dropna().tolist()), []
        for first_account, key in zip(unkeyed.tolist(), candidate.tolist()):
            if key in taken:
                key = new_key(prefix, first_account, taken)
            taken.add(key)
            fresh.append(key)
    assignment.update(zip(unkeyed.index.tolist(), fresh))
    origin = split_source.reindex(unkeyed.index)
    history.append(pd.DataFrame({
        "key": fresh,
        "event": np.where(origin.notna().to_numpy(), "split_from", "created"),
        "related_key": origin.to_numpy(dtype=object),
        "accounts": sizes.reindex(unkeyed.index).to_numpy(dtype="int64"),
    }))
    # old keys that no cluster kept: merged into the key of the cluster holding most of their accounts
    kept = set(assignment.values())
    lost = votes.loc[~is_in(votes["old_key"], kept)].copy()
    if len(lost):
        lost["new_key"] = lost["cluster"].map(assignment)
        lost = lost.sort_values(["accounts", "new_key"], ascending=[False, True]).drop_duplicates("old_key")
        history.append(pd.DataFrame({"key": lost["old_key"].to_numpy(dtype=object), "event": "merged_into",
                                     "related_key": lost["new_key"].to_numpy(dtype=object),
                                     "accounts": lost["accounts"].to_numpy(dtype="int64")}))
    # every other move of accounts from one key to another (part of a cluster joining
    # another that kept its key): logged too, so every key change of an account is explained
    moves = votes.assign(new_key=votes["cluster"].map(assignment))
    moves = moves.loc[moves["new_key"] != moves["old_key"]]
    logged = {(old, new) for old, new in zip(origin.to_numpy(dtype=object), fresh)}
    if len(lost):
        logged |= set(zip(lost["old_key"], lost["new_key"]))
    unlogged = moves.loc[[pair not in logged for pair in zip(moves["old_key"], moves["new_key"])]]
    if len(unlogged):
        history.append(pd.DataFrame({"key": unlogged["old_key"].to_numpy(dtype=object), "event": "moved_to",
                                     "related_key": unlogged["new_key"].to_numpy(dtype=object),
                                     "accounts": unlogged["accounts"].to_numpy(dtype="int64")}))
    if previous_map is not None and len(previous_map):
        # one Arrow lookup (a Python set of a million boxed keys each was most of this step)
        before = pd.Series(previous_map["key"].dropna().unique())
        vanished = before.loc[~is_in(before, votes["old_key"])].astype(str).tolist()
        history.append(pd.DataFrame({"key": sorted(vanished), "event": "retired", "related_key": None, "accounts": 0}))
    keys = pd.DataFrame({"cluster": list(assignment), "key": list(assignment.values())})
    history_frame = pd.concat(
        [h for h in history if len(h)] or [pd.DataFrame(columns=HISTORY_COLUMNS[1:])], ignore_index=True
    )
    history_frame.insert(0, "synced_at", synced_at)
    return keys, history_frame[HISTORY_COLUMNS]
