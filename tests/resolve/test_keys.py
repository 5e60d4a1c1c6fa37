"""Stable keys across syncs, the key-history rule, incremental syncs and analysts' decisions."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from pipelines.resolve.keys import assign_stable_keys
from pipelines.resolve.volunteers import resolve_volunteers
from tests.resolve.conftest import account, with_background
from tests.resolve.synthetic import make_cert

# the run's instant stamped on key history and evidence (pipelines/clock.py)
SYNCED_AT = pd.Timestamp("2026-06-30T10:00:00Z")


def clusters(*groups: list[str]) -> pd.DataFrame:
    rows = [{"source": "national", "source_id": sid, "cluster": i} for i, group in enumerate(groups) for sid in group]
    return pd.DataFrame(rows)


def keyed(frame: pd.DataFrame, keys: pd.DataFrame) -> dict[str, str]:
    merged = frame.merge(keys, on="cluster")
    return dict(zip(merged["source_id"], merged["key"]))


def test_first_load_keys_are_opaque_and_reproducible():
    first, _ = assign_stable_keys(clusters(["a", "b"], ["c"]), None, "V", synced_at=SYNCED_AT)
    again, _ = assign_stable_keys(clusters(["c"], ["a", "b"]), None, "V", synced_at=SYNCED_AT)
    assert set(first["key"]) == set(again["key"])
    assert all(k.startswith("V") and len(k) == 13 for k in first["key"])


def test_merge_keeps_the_key_of_most_accounts_and_records_the_other():
    before_frame = clusters(["a", "b"], ["c"])
    before_keys, _ = assign_stable_keys(before_frame, None, "V", synced_at=SYNCED_AT)
    before = keyed(before_frame, before_keys)
    previous = pd.DataFrame({"source": "national", "source_id": list(before), "key": list(before.values())})
    after_frame = clusters(["a", "b", "c"])
    after_keys, history = assign_stable_keys(after_frame, previous, "V", set(before.values()), synced_at=SYNCED_AT)
    after = keyed(after_frame, after_keys)
    assert after["c"] == before["a"]
    merged = history.loc[history["event"] == "merged_into"]
    assert merged[["key", "related_key"]].values.tolist() == [[before["c"], before["a"]]]


def test_split_keeps_the_key_for_the_larger_part_and_gives_the_other_a_new_one():
    before_frame = clusters(["a", "b", "c"])
    before_keys, _ = assign_stable_keys(before_frame, None, "V", synced_at=SYNCED_AT)
    old_key = before_keys["key"].iloc[0]
    previous = pd.DataFrame({"source": "national", "source_id": ["a", "b", "c"], "key": old_key})
    after_frame = clusters(["a"], ["b", "c"])
    after_keys, history = assign_stable_keys(after_frame, previous, "V", {old_key}, synced_at=SYNCED_AT)
    after = keyed(after_frame, after_keys)
    assert after["b"] == after["c"] == old_key
    assert after["a"] != old_key
    split = history.loc[history["event"] == "split_from"]
    assert split[["key", "related_key"]].values.tolist() == [[after["a"], old_key]]


def test_a_retired_key_is_never_issued_again():
    frame = clusters(["a"])
    first, _ = assign_stable_keys(frame, None, "V", synced_at=SYNCED_AT)
    again, _ = assign_stable_keys(frame, None, "V", issued_keys=set(first["key"]), synced_at=SYNCED_AT)
    assert again["key"].iloc[0] != first["key"].iloc[0]


@pytest.fixture(scope="module")
def first_sync(background):
    accounts = background.drop(columns=["person_id"])
    return accounts, resolve_volunteers(accounts, synced_at=SYNCED_AT)


def test_reloading_the_same_data_changes_no_key(first_sync):
    accounts, first = first_sync
    second = resolve_volunteers(accounts, previous=first.state, synced_at=SYNCED_AT)
    merged = first.source_map.merge(second.source_map, on=["source", "source_id"], suffixes=("_1", "_2"))
    assert len(merged) == len(accounts)
    assert (merged["volunteer_key_1"] == merged["volunteer_key_2"]).all()
    assert second.summary["mode"] == "incremental"
    assert second.summary["pairs_scored"] == 0
    assert second.summary["key_changes"] == 0


def test_a_new_account_joins_its_person_incrementally_without_changing_keys(first_sync):
    accounts, first = first_sync
    national = accounts.loc[(accounts["source"] == "national") & accounts["cert_valid"]].iloc[0]
    newcomer = national.copy()
    newcomer["source"], newcomer["source_id"] = "provincial", "NEW-1"
    newcomer["cert_hash"], newcomer["cert_valid"], newcomer["cert_masked"] = None, False, True
    newcomer["phone_hash"] = None
    grown = pd.concat([accounts, newcomer.to_frame().T], ignore_index=True)
    grown["is_deleted"] = grown["is_deleted"].astype(bool)
    second = resolve_volunteers(grown, previous=first.state, synced_at=SYNCED_AT)
    assert second.summary["mode"] == "incremental"
    assert 0 < second.summary["pairs_scored"] < 50
    merged = first.source_map.merge(second.source_map, on=["source", "source_id"], suffixes=("_1", "_2"))
    assert (merged["volunteer_key_1"] == merged["volunteer_key_2"]).all()
    new_key = second.source_map.set_index(["source", "source_id"]).loc[("provincial", "NEW-1"), "volunteer_key"]
    old_key = first.source_map.set_index(["source", "source_id"]).loc[("national", national["source_id"]), "volunteer_key"]
    assert new_key == old_key


def test_review_decisions_are_honoured_on_every_sync(background):
    birth = date(1988, 8, 8)
    rows = [
        account("national", "A1", "陶然", birth, "M", "520102", cert=make_cert("520102", birth, 71), cert_masked=True),
        account("provincial", "A1p", "陶然", birth, "M", "520102"),
        account("national", "Z1", "温良", date(1977, 7, 7), "F", "520111"),
        account("provincial", "Z1p", "温亮", date(1977, 7, 17), "F", "520112"),
    ]
    accounts = with_background(background, rows)
    before = resolve_volunteers(accounts, synced_at=SYNCED_AT)
    keys = before.source_map.set_index(["source", "source_id"])["volunteer_key"]
    assert keys[("national", "A1")] == keys[("provincial", "A1p")]
    assert keys[("national", "Z1")] != keys[("provincial", "Z1p")]
    decisions = pd.DataFrame([
        {"left_source": "provincial", "left_source_id": "A1p", "right_source": "national", "right_source_id": "A1", "decision": "not_same"},
        {"left_source": "national", "left_source_id": "Z1", "right_source": "provincial", "right_source_id": "Z1p", "decision": "same"},
    ])
    for previous in (None, before.state):
        after = resolve_volunteers(accounts, previous=previous, review_decisions=decisions, synced_at=SYNCED_AT)
        keys = after.source_map.set_index(["source", "source_id"])
        assert keys.loc[("national", "A1"), "volunteer_key"] != keys.loc[("provincial", "A1p"), "volunteer_key"]
        assert keys.loc[("national", "Z1"), "volunteer_key"] == keys.loc[("provincial", "Z1p"), "volunteer_key"]
        assert keys.loc[("provincial", "Z1p"), "match_method"] == "review_same"
    # on the sync with state: A1/A1p split (one keeps the key), Z1/Z1p merge (one key retires)
    assert sorted(after.key_history["event"]) == ["merged_into", "split_from"]


def test_a_same_decision_a_constraint_refuses_comes_back_for_review_saying_so(background):
    """Two accounts with two different valid numbers cannot be one person: a steward's `same`
    on them is refused. It was counted among the decisions applied and the pair left the
    review for good, still apart, with nothing to tell the steward."""
    birth = date(1990, 3, 3)
    rows = [
        account("national", "B1", "简宁", birth, "F", "520102", cert=make_cert("520102", birth, 12)),
        account("provincial", "B1p", "简宁", birth, "F", "520102", cert=make_cert("520102", birth, 14)),
    ]
    accounts = with_background(background, rows)
    decisions = pd.DataFrame([{"left_source": "national", "left_source_id": "B1", "right_source": "provincial",
                               "right_source_id": "B1p", "decision": "same"}])
    after = resolve_volunteers(accounts, review_decisions=decisions, synced_at=SYNCED_AT)
    keys = after.source_map.set_index(["source", "source_id"])["volunteer_key"]
    assert keys[("national", "B1")] != keys[("provincial", "B1p")]
    assert after.summary["decisions_refused"] == 1 and after.summary["decisions_applied"] == 0
    pair = after.review.loc[(after.review["left_source_id"] == "B1") & (after.review["right_source_id"] == "B1p")]
    assert list(pair["reason"]) == ["decided_same_but_refused_conflicting_valid_numbers"]
