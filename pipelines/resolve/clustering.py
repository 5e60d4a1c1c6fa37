"""Clusters from links, under constraints: union-find that refuses a merge it must not make.

A cluster may never hold two different valid resident ID numbers (contract: a valid number is
never a typo of another), so transitivity cannot sneak in a merge no single link would make:
A~B and B~C must not join A and C when A and C hold different valid numbers. Links are taken
strongest first (deterministic, then analyst decisions, then by match weight), so when a weak
link conflicts with a strong one the weak one is the one refused. Analysts' 'not same'
decisions are cannot-link constraints of the same kind.

Any number of such exclusive values can be enforced at once (`exclusive`): volunteers also
keep apart the kept ends (first 4 + last 4) of real numbers, so that a masked or mistyped
number cannot bridge two namesakes whose real numbers differ (volunteers.py says why).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

ACCEPTED = ""
CANNOT_LINK = "cannot_link"


def connected_components(account_count: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Plain connected components (no constraint, order immaterial): per account the smallest
    account index of its component, as `constrained_clusters` gives without constraints.

    Vectorized: each round lowers both ends of every link to the smaller of their labels, then
    jumps every label to its label's label until none moves; a label is always an account of
    the same component, no larger than the account, and the rounds stop when every link's
    ends agree, so each component ends labelled with its smallest account. A few rounds for
    the rule links' components, mostly pairs (the Python union-find took a second per million
    accounts, whatever the links)."""
    labels = np.arange(account_count, dtype=np.int64)
    left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
    while len(left):
        low = np.minimum(labels[left], labels[right])
        if (labels[left] == low).all() and (labels[right] == low).all():
            break
        np.minimum.at(labels, left, low)
        np.minimum.at(labels, right, low)
        while True:
            jumped = labels[labels]
            if (jumped == labels).all():
                break
            labels = jumped
    return labels


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
    cluster, refused_by = clusters_with_refusals(
        account_count, left, right, {"exclusive": exclusive_codes}, cannot_link
    )
    return cluster, refused_by == ACCEPTED


def clusters_with_refusals(
    account_count: int,
    left: np.ndarray,
    right: np.ndarray,
    exclusive: Mapping[str, np.ndarray],
    cannot_link: Iterable[tuple[int, int]] = (),
    applies_to: Mapping[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """As constrained_clusters, with several named exclusive values checked in their given order.

    applies_to[name], where given, says per link whether that constraint is checked for it: a
    constraint that only probabilistic links must respect (a rule's link is taken whatever it
    joins, and the cluster then holds one of its values, which later links must respect).
    Returns (cluster id per account, per link the name of the constraint that refused it:
    a key of `exclusive`, CANNOT_LINK, or ACCEPTED = '').

    Only a component of the links (taken all at once, unconstrained) that holds two values of
    a constraint, or both accounts of a cannot-link pair, can see a link refused; every other
    component is one cluster, all its links accepted. So the links are walked one by one (in
    Python) in those components alone, and the rest is `connected_components`: the same answer
    (a component's walk never reads another's), in a second at a million accounts less.
    """
    left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
    component = connected_components(account_count, left, right)
    contested = np.zeros(account_count, dtype=bool)  # by component label (its smallest account)
    for codes in exclusive.values():
        codes = np.asarray(codes, dtype=np.int64)
        held = codes >= 0
        low = np.full(account_count, np.iinfo(np.int64).max)
        high = np.full(account_count, -1)
        np.minimum.at(low, component[held], codes[held])
        np.maximum.at(high, component[held], codes[held])
        contested |= (high >= 0) & (low != high)
    # a cannot-link pair across components is kept apart by the links themselves
    cannot_link = [(a, b) for a, b in cannot_link if component[a] == component[b]]
    for a, _ in cannot_link:
        contested[component[a]] = True

    cluster = component.copy()
    refused_by = np.full(len(left), ACCEPTED, dtype=object)
    walked = np.flatnonzero(contested[component[left]]) if len(left) else np.zeros(0, dtype=np.int64)
    if len(walked):
        # the contested components' accounts, numbered in order (so a smallest member stays one)
        members = np.flatnonzero(contested[component])
        local = np.full(account_count, -1, dtype=np.int64)
        local[members] = np.arange(len(members))
        local_cluster, local_refused = _walk_links(
            len(members), local[left[walked]], local[right[walked]],
            {name: np.asarray(codes, dtype=np.int64)[members] for name, codes in exclusive.items()},
            [(local[a], local[b]) for a, b in cannot_link],
            None if applies_to is None else {name: np.asarray(checked, dtype=bool)[walked]
                                             for name, checked in applies_to.items()},
        )
        cluster[members] = members[local_cluster]
        refused_by[walked] = local_refused
    return cluster, refused_by


def _walk_links(
    account_count: int,
    left: np.ndarray,
    right: np.ndarray,
    exclusive: Mapping[str, np.ndarray],
    cannot_link: Iterable[tuple[int, int]],
    applies_to: Mapping[str, np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The union-find itself, link after link: clusters_with_refusals' answer for these links."""
    names = list(exclusive)
    scope = [None if applies_to is None or name not in applies_to else np.asarray(applies_to[name], dtype=bool).tolist()
             for name in names]
    parent = list(range(account_count))
    # the one value of each constraint held by each root (-1: none yet)
    root_codes = [np.asarray(exclusive[name], dtype=np.int64).tolist() for name in names]
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

    refused_by = np.full(len(left), ACCEPTED, dtype=object)
    for i, (a, b) in enumerate(zip(left.tolist(), right.tolist())):
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        conflict = None
        for name, codes, checked in zip(names, root_codes, scope):
            if checked is not None and not checked[i]:
                continue
            code_a, code_b = codes[ra], codes[rb]
            if code_a >= 0 and code_b >= 0 and code_a != code_b:
                conflict = name
                break
        if conflict is not None:
            refused_by[i] = conflict
            continue
        if forbidden:
            fa, fb = forbidden.get(ra), forbidden.get(rb)
            if (fa and any(find(x) == rb for x in fa)) or (fb and any(find(x) == ra for x in fb)):
                refused_by[i] = CANNOT_LINK
                continue
        keep, gone = (ra, rb) if ra < rb else (rb, ra)
        parent[gone] = keep
        for codes in root_codes:
            codes[keep] = max(codes[ra], codes[rb])
        if gone in forbidden:
            forbidden.setdefault(keep, set()).update(forbidden.pop(gone))
    return _smallest_members(np.asarray(parent, dtype=np.int64)), refused_by


def _smallest_members(parent: np.ndarray) -> np.ndarray:
    """Per account, the smallest account of its tree in the union-find's `parent` array: the
    roots found by jumping every pointer at once, then each root's smallest member (a merge
    keeps the smaller root, but a root is not always its tree's smallest account)."""
    while True:
        jumped = parent[parent]
        if (jumped == parent).all():
            break
        parent = jumped
    smallest = np.arange(len(parent), dtype=np.int64)
    np.minimum.at(smallest, parent, np.arange(len(parent), dtype=np.int64))
    return smallest[parent]
