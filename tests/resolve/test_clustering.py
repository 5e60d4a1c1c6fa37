"""Properties of constrained clustering and stable keys, on random graphs (hypothesis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.resolve.clustering import _walk_links, clusters_with_refusals, connected_components, constrained_clusters
from pipelines.resolve.keys import assign_stable_keys

# the run's instant stamped on key history and evidence (pipelines/clock.py)
SYNCED_AT = pd.Timestamp("2026-06-30T10:00:00Z")

graphs = st.integers(min_value=1, max_value=40).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=80),
        st.lists(st.integers(-1, 3), min_size=n, max_size=n),
    )
)


@settings(max_examples=60, deadline=None)
@given(graphs)
def test_no_cluster_ever_holds_two_different_valid_numbers(graph):
    n, edges, codes = graph
    left = np.array([a for a, _ in edges], dtype=np.int64)
    right = np.array([b for _, b in edges], dtype=np.int64)
    cluster, accepted = constrained_clusters(n, left, right, np.array(codes))
    frame = pd.DataFrame({"cluster": cluster, "code": codes})
    distinct = frame.loc[frame["code"] >= 0].groupby("cluster")["code"].nunique()
    assert (distinct <= 1).all()
    # every accepted link joins its two ends; the cluster id is the smallest member
    assert all(cluster[a] == cluster[b] for a, b, ok in zip(left, right, accepted) if ok)
    assert all(cluster[i] <= i for i in range(n))


@settings(max_examples=40, deadline=None)
@given(graphs)
def test_without_constraints_clusters_are_the_connected_components(graph):
    n, edges, _ = graph
    left = np.array([a for a, _ in edges], dtype=np.int64)
    right = np.array([b for _, b in edges], dtype=np.int64)
    cluster, accepted = constrained_clusters(n, left, right, np.full(n, -1))
    assert accepted.all()
    # reference: repeated relaxation to the smallest reachable index
    label = list(range(n))
    changed = True
    while changed:
        changed = False
        for a, b in edges:
            low = min(label[a], label[b])
            if label[a] != low or label[b] != low:
                label[a] = label[b] = low
                changed = True
    assert list(cluster) == label
    # the vectorized components (volunteers' deterministic components) agree, in any link order
    assert list(connected_components(n, left, right)) == label
    assert list(connected_components(n, left[::-1], right[::-1])) == label


def test_components_across_a_long_chain_are_its_smallest_account():
    # a path 0-1-...-(n-1) whose links come in a random order: labels travel the whole path
    n = 5_000
    order = np.random.default_rng(3).permutation(n - 1)
    labels = connected_components(n + 2, order + 1, order)  # two accounts left alone at the end
    assert (labels[:n] == 0).all() and list(labels[n:]) == [n, n + 1]


def test_cannot_link_holds_through_third_accounts():
    # 0-1 and 1-2 are links, but 0 and 2 must stay apart: the second link is refused
    cluster, accepted = constrained_clusters(3, np.array([0, 1]), np.array([1, 2]), np.full(3, -1), cannot_link=[(0, 2)])
    assert cluster[0] != cluster[2]
    assert accepted.tolist() == [True, False]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=30))
def test_keys_are_unchanged_by_a_second_identical_sync(assignment):
    clusters = pd.DataFrame({"source": "national", "source_id": [f"A{i}" for i in range(len(assignment))],
                             "cluster": assignment})
    keys, _ = assign_stable_keys(clusters, None, "V", synced_at=SYNCED_AT)
    keyed = clusters.merge(keys, on="cluster")
    previous = keyed[["source", "source_id", "key"]]
    again, history = assign_stable_keys(clusters, previous, "V", set(keys["key"]), synced_at=SYNCED_AT)
    rekeyed = clusters.merge(again, on="cluster")
    assert rekeyed.set_index("source_id")["key"].equals(keyed.set_index("source_id")["key"])
    assert history.empty


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=30))
def test_every_key_change_between_two_clusterings_is_logged(assignments):
    """Any reclustering of the same accounts (merges, splits, moves, all at once): every
    cluster gets one key, no key two clusters, an old key stays with at most one cluster, and
    every account whose key changed is explained by the history (invariants.py)."""
    from pipelines.resolve.invariants import unexplained_key_changes

    accounts = pd.DataFrame({"source": "national", "source_id": [f"A{i}" for i in range(len(assignments))]})
    before = accounts.assign(cluster=[b for b, _ in assignments])
    after = accounts.assign(cluster=[a for _, a in assignments])
    first, _ = assign_stable_keys(before, None, "V", synced_at=SYNCED_AT)
    previous = before.merge(first, on="cluster")[["source", "source_id", "key"]]
    keys, history = assign_stable_keys(after, previous, "V", set(first["key"]), synced_at=SYNCED_AT)
    assert keys["cluster"].is_unique and keys["key"].is_unique
    assert set(keys["cluster"]) == set(after["cluster"])
    current = after.merge(keys, on="cluster")[["source", "source_id", "key"]]
    found = unexplained_key_changes(previous.rename(columns={"key": "volunteer_key"}),
                                    current.rename(columns={"key": "volunteer_key"}), "volunteer_key", history)
    assert found["unexplained_key_changes"] == 0
    # each key made now is logged as made (created, or split from an old key), and only those
    made = set(keys["key"]) - set(first["key"])
    assert made == set(history.loc[history["event"].isin(["created", "split_from"]), "key"])


constrained_graphs = st.integers(min_value=1, max_value=30).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.booleans()), max_size=60),
        st.lists(st.integers(-1, 2), min_size=n, max_size=n),
        st.lists(st.integers(-1, 4), min_size=n, max_size=n),
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3),
    )
)


@settings(max_examples=150, deadline=None)
@given(constrained_graphs)
def test_only_contested_components_are_walked_and_the_answer_is_the_walk_over_every_link(graph):
    # clusters_with_refusals walks links one by one only inside components that hold two values
    # of a constraint or a cannot-link pair; its answer must be that of the walk over every link
    n, edges, numbers, ends, apart = graph
    left = np.array([a for a, _, _ in edges], dtype=np.int64)
    right = np.array([b for _, b, _ in edges], dtype=np.int64)
    exclusive = {"valid_number": np.array(numbers), "real_number_ends": np.array(ends)}
    applies_to = {"real_number_ends": np.array([checked for _, _, checked in edges], dtype=bool)}
    cluster, refused_by = clusters_with_refusals(n, left, right, exclusive, apart, applies_to)
    expected_cluster, expected_refused = _walk_links(n, left, right, exclusive, apart, applies_to)
    assert cluster.tolist() == expected_cluster.tolist()
    assert refused_by.tolist() == expected_refused.tolist()


def test_a_refusal_in_one_component_leaves_the_others_whole():
    # accounts 0-1-2 hold two valid numbers (0 and 2 differ): the second link is refused; 3-4
    # hold one number: linked without a walk
    numbers = np.array([7, -1, 8, 9, 9])
    cluster, refused_by = clusters_with_refusals(
        5, np.array([0, 1, 3]), np.array([1, 2, 4]), {"valid_number": numbers})
    assert cluster.tolist() == [0, 0, 2, 3, 3]
    assert refused_by.tolist() == ["", "valid_number", ""]


def test_a_cannot_link_pair_across_components_refuses_nothing():
    # 0-2-1 hold two numbers (a walked component); 3-4 are linked; "0 is not 3" spans the two
    # components, so no link can join them and none is refused for it
    numbers = np.array([7, 8, -1, -1, -1])
    cluster, refused_by = clusters_with_refusals(
        5, np.array([3, 0, 1]), np.array([4, 2, 2]), {"valid_number": numbers}, cannot_link=[(0, 3)])
    assert cluster.tolist() == [0, 1, 0, 3, 3]
    assert refused_by.tolist() == ["", "", "valid_number"]
