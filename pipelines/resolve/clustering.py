"""Clusters from links, under constraints: union-find that refuses a merge it must not make.

A cluster may never hold two different valid resident ID numbers (contract: a valid number is
never a typo of another), so transitivity cannot sneak in a merge no single link would make:
A~B and B~C must not join A and C when A and C hold different valid numbers. Links are taken
strongest first (deterministic, then analyst decisions, then by match weight), so when a weak
link conflicts with a strong one the weak one is the one refused. Analysts' 'not same'
decisions are cannot-link constraints of the same kind.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd


def constrained_clusters(
    account_count: int,
    left: np.ndarray,
    right: np.ndarray,
    exclusive_codes: np.ndarray,
    cannot_link: Iterable[tuple[int, int]] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster `account_count` accounts by the links (left[i], right[i]), taken in the given order.

    exclusive_codes[a] >= 0 is a value no cluster may hold twice (the factorized valid cert
    hash), -1 for none. cannot_link: pairs of accounts that must end in different clusters.
    Returns (cluster id per account = smallest account index in its cluster, accepted flag per link).
    """
    parent = list(range(account_count))
    cluster_code = [int(c) for c in exclusive_codes]  # the one exclusive value of each root
    forbidden: dict[int, set[int]] = {}  # root -> accounts it must never join
    for a, b in cannot_link:
        forbidden.setdefault(a, set()).add(b)
        forbidden.setdefault(b, set()).add(a)

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    accepted = np.zeros(len(left), dtype=bool)
    for i, (a, b) in enumerate(zip(left.tolist(), right.tolist())):
        ra, rb = find(a), find(b)
        if ra == rb:
            accepted[i] = True
            continue
        code_a, code_b = cluster_code[ra], cluster_code[rb]
        if code_a >= 0 and code_b >= 0 and code_a != code_b:
            continue
        if forbidden:
            fa, fb = forbidden.get(ra), forbidden.get(rb)
            if (fa and any(find(x) == rb for x in fa)) or (fb and any(find(x) == ra for x in fb)):
                continue
        keep, gone = (ra, rb) if ra < rb else (rb, ra)
        parent[gone] = keep
        cluster_code[keep] = max(code_a, code_b)
        if gone in forbidden:
            forbidden.setdefault(keep, set()).update(forbidden.pop(gone))
        accepted[i] = True
    roots = np.fromiter((find(x) for x in range(account_count)), dtype=np.int64, count=account_count)
    # the root is not always the smallest member (a merge keeps the smaller root only)
    smallest = pd.Series(np.arange(account_count)).groupby(roots).transform("min").to_numpy()
    return smallest, accepted
