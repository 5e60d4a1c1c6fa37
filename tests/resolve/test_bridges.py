"""A cluster that only a masked or mistyped number holds together, while its other accounts
carry a different real number, goes to review instead of merging — and a genuine person whose
number is masked on one account still merges when the rest of the evidence agrees."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.resolve.clustering import clusters_with_refusals
from pipelines.resolve.volunteers import real_number_ends, resolve_volunteers
from tests.resolve.conftest import account, with_background
from tests.resolve.synthetic import make_cert

SYNCED_AT = pd.Timestamp("2026-06-30T10:00:00Z")
BIRTH = date(1985, 7, 1)
# two namesakes (王伟, same birth date, gender and county): real numbers differ in their last 4
CERT_A = make_cert("520102", BIRTH, 11)
CERT_B = make_cert("520102", BIRTH, 13)
# what A typed on the provincial platform: a number one digit off B's, so its ends are B's
# (the check character fails: invalid) — the kind of number that looks like the other namesake
MISTYPED_LIKE_B = CERT_B[:10] + str((int(CERT_B[10]) + 1) % 10) + CERT_B[11:]
CERT_C = make_cert("520103", date(1979, 11, 2), 22)


def key_of(result, source: str, source_id: str) -> str:
    row = result.source_map.loc[(result.source_map["source"] == source) & (result.source_map["source_id"] == source_id)]
    return row["volunteer_key"].iloc[0]


@pytest.fixture(scope="module")
def bridged(background):
    rows = [
        # namesake A: national number masked, provincial number mistyped; the provincial
        # account carries A's national volunteer number, so A's two accounts are one person
        account("national", "A1", "王伟", BIRTH, "M", "520102", cert=CERT_A, cert_masked=True,
                phone="13711112222", phone_masked=True),
        account("provincial", "A1p", "王伟", BIRTH, "M", "520102", cert=MISTYPED_LIKE_B, cert_valid=False,
                phone="13711112222", national_volunteer_no="A1"),
        # namesake B: the valid number, in both systems
        account("national", "B1", "王伟", BIRTH, "M", "520102", cert=CERT_B, phone="13900003333"),
        account("provincial", "B1p", "王伟", BIRTH, "M", "520102", cert=CERT_B, phone="13900003333"),
        # a genuine person: masked number and phone nationally, a mistyped number on one
        # provincial account (ends intact) and the valid number on a second registration
        account("national", "C1", "欧阳娜娜", date(1979, 11, 2), "F", "520103", cert=CERT_C, cert_masked=True,
                phone="13600009999", phone_masked=True),
        account("provincial", "C1p", "欧阳娜娜", date(1979, 11, 2), "F", "520103",
                cert=CERT_C[:8] + str((int(CERT_C[8]) + 3) % 10) + CERT_C[9:], cert_valid=False, phone="13600009999"),
        account("provincial", "C2p", "欧阳娜娜", date(1979, 11, 2), "F", "520281", cert=CERT_C, phone="13600009999"),
    ]
    return resolve_volunteers(with_background(background, rows), synced_at=SYNCED_AT)


def test_the_mistyped_number_really_looks_like_the_other_namesake():
    assert MISTYPED_LIKE_B[-4:] == CERT_B[-4:] and MISTYPED_LIKE_B[:4] == CERT_B[:4]
    assert CERT_A[-4:] != CERT_B[-4:]


def test_namesakes_bridged_by_a_masked_and_a_mistyped_number_stay_two_people(bridged):
    assert key_of(bridged, "national", "A1") == key_of(bridged, "provincial", "A1p")
    assert key_of(bridged, "national", "B1") == key_of(bridged, "provincial", "B1p")
    assert key_of(bridged, "provincial", "A1p") != key_of(bridged, "provincial", "B1p")
    assert bridged.summary["links_refused_by"].get("real_number_ends", 0) >= 1


def test_the_refused_bridge_goes_to_review_with_its_reason(bridged):
    review = bridged.review
    bridge = review.loc[(review["reason"] == "bridged_by_masked_or_invalid_number")
                        & ((review["left_source_id"] == "A1p") | (review["right_source_id"] == "A1p"))]
    assert len(bridge) >= 1
    # the evidence says why the link looked strong on its own: the number's ends agree
    assert (bridge["cert_level"] == "ends_agree").all()
    assert bridge["decision"].isna().all()
    links = bridged.links
    refused = links.loc[~links["accepted"] & ((links["left_source_id"] == "A1p") | (links["right_source_id"] == "A1p"))]
    assert set(refused["outcome"]) == {"refused_bridge_between_different_numbers"}


def test_a_genuine_person_with_a_masked_and_a_mistyped_number_still_merges(bridged):
    keys = {key_of(bridged, "national", "C1"), key_of(bridged, "provincial", "C1p"), key_of(bridged, "provincial", "C2p")}
    assert len(keys) == 1
    review = bridged.review
    assert not ((review["left_source_id"].isin(["C1", "C1p", "C2p"])) & (review["reason"] == "bridged_by_masked_or_invalid_number")).any()


def test_real_number_ends_count_valid_and_masked_numbers_only():
    frame = pd.DataFrame([
        account("national", "1", "甲", BIRTH, "M", "520102", cert=CERT_A, cert_masked=True),
        account("provincial", "2", "甲", BIRTH, "M", "520102", cert=CERT_A),
        account("provincial", "3", "甲", BIRTH, "M", "520102", cert=MISTYPED_LIKE_B, cert_valid=False),
        account("provincial", "4", "甲", BIRTH, "M", "520102"),
        account("national", "5", "甲", BIRTH, "M", "520102", cert=CERT_B, cert_masked=True),
    ])
    frame["cert_type"] = "resident_id"
    codes = real_number_ends(frame)
    assert codes[0] == codes[1] >= 0  # masked and clear forms of one number
    assert codes[2] == -1 and codes[3] == -1  # mistyped, missing: no part in the constraint
    assert codes[4] >= 0 and codes[4] != codes[0]


graphs = st.integers(min_value=1, max_value=30).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=60),
        st.lists(st.integers(-1, 2), min_size=n, max_size=n),
        st.lists(st.integers(-1, 2), min_size=n, max_size=n),
    )
)


@settings(max_examples=40, deadline=None)
@given(graphs)
def test_no_cluster_holds_two_values_of_any_constraint_and_refusals_name_theirs(graph):
    n, edges, valid, ends = graph
    left = np.array([a for a, _ in edges], dtype=np.int64)
    right = np.array([b for _, b in edges], dtype=np.int64)
    cluster, refused_by = clusters_with_refusals(
        n, left, right, {"valid_number": np.array(valid), "real_number_ends": np.array(ends)})
    frame = pd.DataFrame({"cluster": cluster, "valid": valid, "ends": ends})
    for column in ("valid", "ends"):
        assert (frame.loc[frame[column] >= 0].groupby("cluster")[column].nunique() <= 1).all()
    assert set(refused_by) <= {"", "valid_number", "real_number_ends"}
    # a refused link's ends really are in two clusters, an accepted one's in one
    for a, b, why in zip(left, right, refused_by):
        assert (cluster[a] == cluster[b]) == (why == "")
