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
import pyarrow as pa

from pipelines import duck
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


def _cluster_votes(
    clusters: pd.DataFrame, previous_map: pd.DataFrame | None
) -> tuple[pa.Table, pd.DataFrame, pd.DataFrame, pd.Series]:
    """What the key rule reads, counted by DuckDB (pandas' string groupbys and merges over a
    million accounts were most of this step). A vote is (cluster, old key): how many of the
    cluster's accounts held the old key. Returns

    * settled: (cluster, key) of the simple votes, the common case (the old key is found in
      this cluster only, and the cluster holds no other old key), as Arrow: no Python object
      per cluster;
    * contested: every other vote (cluster, old_key, accounts, cluster_first);
    * unsettled: each cluster without a simple vote, its first account ("source:source_id",
      the smallest) and its size, by cluster; nothing is made for settled clusters (at a
      nightly change set, nearly all of them);
    * voted: every old key some account of this sync held."""
    con = duck.scratch()
    try:
        accounts = clusters[["source", "source_id"]].astype(str)
        con.register("accounts_in", pa.table({
            "source": pa.array(accounts["source"], pa.string()),
            "source_id": pa.array(accounts["source_id"], pa.string()),
            "cluster": pa.array(clusters["cluster"].to_numpy(dtype="int64")),
        }))
        previous = previous_map if previous_map is not None else pd.DataFrame(columns=["source", "source_id", "key"])
        before = previous[["source", "source_id", "key"]].astype("string")
        con.register("previous_in", pa.table({
            name: pa.array(before[name], pa.string()) for name in ["source", "source_id", "key"]}))
        con.execute("""
            CREATE TEMP TABLE votes AS
            WITH counted AS (
                SELECT a.cluster, p.key AS old_key, count(*) AS accounts
                FROM accounts_in a JOIN previous_in p ON p.source = a.source AND p.source_id = a.source_id
                WHERE p.key IS NOT NULL GROUP BY a.cluster, p.key
            )
            SELECT cluster, old_key, accounts,
                   count(*) OVER (PARTITION BY cluster) = 1 AND count(*) OVER (PARTITION BY old_key) = 1 AS simple
            FROM counted;
            CREATE TEMP TABLE unsettled AS
            SELECT cluster, min(source || ':' || source_id) AS cluster_first, count(*) AS size
            FROM accounts_in WHERE cluster NOT IN (SELECT cluster FROM votes WHERE simple)
            GROUP BY cluster""")
        settled = con.sql("SELECT cluster, old_key AS key FROM votes WHERE simple ORDER BY cluster").to_arrow_table()
        contested = con.execute("""
            SELECT v.cluster, v.old_key, v.accounts, u.cluster_first
            FROM votes v JOIN unsettled u USING (cluster) WHERE NOT v.simple
            ORDER BY v.cluster, v.old_key""").df()
        unsettled = con.execute("SELECT * FROM unsettled ORDER BY cluster").df()
        voted = con.sql("SELECT DISTINCT old_key FROM votes").to_arrow_table().column("old_key")
    finally:
        con.close()
    contested = contested.astype({"cluster": "int64", "accounts": "int64"})
    contested["old_key"] = contested["old_key"].astype("str")
    contested["cluster_first"] = contested["cluster_first"].astype("str")
    unsettled = unsettled.astype({"cluster": "int64", "size": "int64"}).set_index("cluster")
    unsettled["cluster_first"] = unsettled["cluster_first"].astype("str")
    return settled, contested, unsettled, pd.Series(voted.to_pandas(), dtype="string")


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
    settled, contested, unsettled, voted = _cluster_votes(clusters, previous_map)
    greedy = _greedy_assignment(contested)

    if not isinstance(issued_keys, pd.Series):
        issued_keys = pd.Series(list(issued_keys), dtype="string")
    issued = pd.concat([issued_keys.astype("string"), voted], ignore_index=True)
    history: list[pd.DataFrame] = []
    greedy_clusters = np.fromiter(greedy, dtype=np.int64, count=len(greedy))
    unkeyed = unsettled.loc[~np.isin(unsettled.index.to_numpy(), greedy_clusters), "cluster_first"]
    # plurality old key of each unkeyed cluster (it split away from that key)
    split_source = (
        contested.loc[~np.isin(contested["cluster"].to_numpy(), greedy_clusters)]
        .sort_values(["accounts", "old_key"], ascending=[False, True])
        .drop_duplicates("cluster")
        .set_index("cluster")["old_key"]
    )
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
    origin = split_source.reindex(unkeyed.index)
    history.append(pd.DataFrame({
        "key": fresh,
        "event": np.where(origin.notna().to_numpy(), "split_from", "created"),
        "related_key": origin.to_numpy(dtype=object),
        "accounts": unsettled["size"].reindex(unkeyed.index).to_numpy(dtype="int64"),
    }))
    # the keys the contested clusters took (an old key by the greedy rule, or a new one)
    fresh_of = dict(zip(unkeyed.index.tolist(), fresh)) if len(contested) else {}
    key_of_contested = {cluster: greedy.get(cluster, fresh_of.get(cluster)) for cluster in set(contested["cluster"].tolist())}
    # old keys that no cluster kept: merged into the key of the cluster holding most of their accounts
    # (a simple vote's key stays with its cluster: only contested keys can be lost, or move)
    lost = contested.loc[~contested["old_key"].isin(list(greedy.values()))].copy()
    if len(lost):
        lost["new_key"] = lost["cluster"].map(key_of_contested)
        lost = lost.sort_values(["accounts", "new_key"], ascending=[False, True]).drop_duplicates("old_key")
        history.append(pd.DataFrame({"key": lost["old_key"].to_numpy(dtype=object), "event": "merged_into",
                                     "related_key": lost["new_key"].to_numpy(dtype=object),
                                     "accounts": lost["accounts"].to_numpy(dtype="int64")}))
    # every other move of accounts from one key to another (part of a cluster joining
    # another that kept its key): logged too, so every key change of an account is explained
    moves = contested.assign(new_key=contested["cluster"].map(key_of_contested))
    moves = moves.loc[moves["new_key"] != moves["old_key"]]
    if len(moves):
        logged = {(old, new) for old, new in zip(origin.to_numpy(dtype=object), fresh)}
        if len(lost):
            logged |= set(zip(lost["old_key"], lost["new_key"]))
        moves = moves.loc[[pair not in logged for pair in zip(moves["old_key"], moves["new_key"])]]
    if len(moves):  # (now those no other event logged)
        history.append(pd.DataFrame({"key": moves["old_key"].to_numpy(dtype=object), "event": "moved_to",
                                     "related_key": moves["new_key"].to_numpy(dtype=object),
                                     "accounts": moves["accounts"].to_numpy(dtype="int64")}))
    if previous_map is not None and len(previous_map):
        # one Arrow lookup (a Python set of a million boxed keys each was most of this step)
        before = pd.Series(previous_map["key"].dropna().unique())
        vanished = before.loc[~is_in(before, voted)].astype(str).tolist()
        history.append(pd.DataFrame({"key": sorted(vanished), "event": "retired", "related_key": None, "accounts": 0}))
    keys = pd.DataFrame({
        "cluster": np.concatenate([settled.column("cluster").to_numpy(), greedy_clusters,
                                   unkeyed.index.to_numpy(dtype=np.int64)]),
        "key": pd.array(pa.concat_arrays([settled.column("key").combine_chunks().cast(pa.string()),
                                          pa.array(list(greedy.values()) + fresh, pa.string())]), dtype="str"),
    })
    history_frame = pd.concat(
        [h for h in history if len(h)] or [pd.DataFrame(columns=HISTORY_COLUMNS[1:])], ignore_index=True
    )
    history_frame.insert(0, "synced_at", synced_at)
    return keys, history_frame[HISTORY_COLUMNS]


def key_of_each(clusters: pd.Series, cluster_keys: pd.DataFrame) -> pd.Series:
    """The key of each account's cluster, from assign_stable_keys' (cluster, key) rows, aligned
    on `clusters` (a lookup by position: a merge of a million accounts on their clusters cost
    more than half a second, for the same column)."""
    at = pd.Index(cluster_keys["cluster"]).get_indexer(clusters.to_numpy())
    return pd.Series(cluster_keys["key"].array.take(at, allow_fill=True), index=clusters.index)
