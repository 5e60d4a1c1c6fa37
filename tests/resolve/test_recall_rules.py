"""The evidence that closes thin pairs, and the constraint that keeps them honest:
a pushed service (the `service` comparison), an account already linked by a rule in the other
system (the `system` comparison's `across_linked_elsewhere`), and never two national accounts
in one person through a probabilistic link."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from pipelines.resolve.clustering import clusters_with_refusals
from pipelines.resolve.service_links import pushed_service_pairs, service_anchors
from pipelines.resolve.volunteers import national_accounts, other_system_linked, resolve_volunteers
from tests.resolve.conftest import account, with_background
from tests.resolve.synthetic import make_cert

SYNCED_AT = pd.Timestamp("2026-06-30T10:00:00Z")


def key_of(result, source: str, source_id: str) -> str:
    row = result.source_map.loc[(result.source_map["source"] == source) & (result.source_map["source_id"] == source_id)]
    assert len(row) == 1
    return row["volunteer_key"].iloc[0]


def pair_row(frame: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    return frame.loc[((frame["left_source_id"] == a) & (frame["right_source_id"] == b))
                     | ((frame["left_source_id"] == b) & (frame["right_source_id"] == a))]


# ------------------------------------------------------------------ pushed services

def services_file(tmp_path, rows: list[dict]):
    columns = ["source", "source_id", "volunteer_source_id", "national_record_id", "origin_log_id"]
    frame = pd.DataFrame(rows, columns=columns).astype("string")
    path = tmp_path / "services.parquet"
    frame.to_parquet(path)
    return path


def test_pushed_service_pairs_by_record_id_and_by_origin(tmp_path):
    path = services_file(tmp_path, [
        # a log carrying the national record's id
        {"source": "provincial", "source_id": "L1", "volunteer_source_id": "P1", "national_record_id": "R1"},
        {"source": "national", "source_id": "R1", "volunteer_source_id": "N1"},
        # a national record naming the provincial log it came from
        {"source": "provincial", "source_id": "L2", "volunteer_source_id": "P2"},
        {"source": "national", "source_id": "R2", "volunteer_source_id": "N2", "origin_log_id": "L2"},
        # the same pair again, and a record with no volunteer: one pair, no more
        {"source": "provincial", "source_id": "L3", "volunteer_source_id": "P1", "national_record_id": "R3"},
        {"source": "national", "source_id": "R3", "volunteer_source_id": "N1"},
        {"source": "provincial", "source_id": "L4", "volunteer_source_id": "P4", "national_record_id": "R4"},
        {"source": "national", "source_id": "R4", "volunteer_source_id": None},
        # services in one system only tie nothing
        {"source": "national", "source_id": "R5", "volunteer_source_id": "N5"},
        {"source": "provincial", "source_id": "L5", "volunteer_source_id": "P5"},
    ])
    pairs = pushed_service_pairs(path)
    assert sorted(map(tuple, pairs[["provincial_id", "national_id"]].to_numpy().tolist())) == [("P1", "N1"), ("P2", "N2")]


def test_no_staged_services_means_no_pairs(tmp_path):
    assert pushed_service_pairs(tmp_path / "missing.parquet") is None


def test_service_anchor_is_the_national_account_for_both_sides():
    accounts = pd.DataFrame({"source": ["national", "provincial", "provincial", "national", "provincial"],
                             "source_id": ["N1", "P1", "P1b", "N9", "P9"]})
    pairs = pd.DataFrame({"provincial_id": ["P1", "P1b"], "national_id": ["N1", "N1"]})
    anchors = service_anchors(accounts, pairs)
    assert anchors.tolist()[:3] == ["N1", "N1", "N1"]
    assert anchors.iloc[3:].isna().all()  # no pushed service names them
    assert service_anchors(accounts, None).isna().all()


@pytest.fixture(scope="module")
def thin_pairs(background):
    """Masked national accounts and provincial accounts without a number: name, gender and
    county alike, nothing else to compare (no birth date nationally, different phones)."""
    rows = [
        # S: the two accounts share a pushed service
        account("national", "S1", "岑秋月", None, "F", "520103", cert=make_cert("520103", date(1991, 4, 2), 40),
                cert_masked=True, phone="13600001111", phone_masked=True),
        account("provincial", "S1p", "岑秋月", date(1991, 4, 2), "F", "520103", phone="13900002222"),
        # U: the same thin evidence, no service in common
        account("national", "U1", "岑春燕", None, "F", "520103", cert=make_cert("520103", date(1988, 9, 9), 42),
                cert_masked=True, phone="13600003333", phone_masked=True),
        account("provincial", "U1p", "岑春燕", date(1988, 9, 9), "F", "520103", phone="13900004444"),
        # X: a service in common, but names and birth dates that disagree: a misfiled record
        account("national", "X1", "龙光明", date(1970, 1, 5), "M", "522601", cert=make_cert("522601", date(1970, 1, 5), 51)),
        account("provincial", "X1p", "杨丽华", date(1995, 6, 30), "F", "520201", phone="13900005555"),
    ]
    services = pd.DataFrame({"provincial_id": ["S1p", "X1p"], "national_id": ["S1", "X1"]})
    return resolve_volunteers(with_background(background, rows), synced_at=SYNCED_AT, service_links=services)


def test_a_pushed_service_links_accounts_with_thin_evidence(thin_pairs):
    assert key_of(thin_pairs, "national", "S1") == key_of(thin_pairs, "provincial", "S1p")
    scored = pair_row(thin_pairs.scored_pairs, "S1", "S1p")
    assert scored["service_level"].tolist() == ["same_service"]
    assert "service same_service" in scored["evidence"].iloc[0]


def test_without_the_service_the_same_evidence_is_not_enough(thin_pairs):
    assert key_of(thin_pairs, "national", "U1") != key_of(thin_pairs, "provincial", "U1p")


def test_a_service_does_not_outweigh_a_different_person(thin_pairs):
    assert key_of(thin_pairs, "national", "X1") != key_of(thin_pairs, "provincial", "X1p")


# ------------------------------------------------------------------ one national account per person

def test_national_accounts_each_hold_a_code_of_their_own():
    accounts = pd.DataFrame({"source": ["national", "provincial", "national"]})
    assert national_accounts(accounts).tolist() == [0, -1, 2]


def test_a_constraint_scoped_to_some_links_leaves_the_others_alone():
    # accounts 0 and 1 are national, 2 provincial; link 0 (a rule) joins the two national
    # accounts, link 1 (probabilistic) would join the provincial one to a cluster of two
    codes = {"national": np.array([0, 1, -1])}
    left, right = np.array([0, 1]), np.array([1, 2])
    cluster, refused = clusters_with_refusals(3, left, right, codes, applies_to={"national": np.array([False, True])})
    assert refused.tolist() == ["", ""]  # the provincial account holds no national code
    assert len(set(cluster.tolist())) == 1
    cluster, refused = clusters_with_refusals(3, np.array([0, 2]), np.array([2, 1]), codes,
                                              applies_to={"national": np.array([False, True])})
    assert refused.tolist() == ["", "national"]  # 0+2 then 1: two national accounts, refused
    # unscoped, the rule's link is refused too
    _, refused = clusters_with_refusals(3, left, right, codes)
    assert refused.tolist()[0] == "national"


@pytest.fixture(scope="module")
def second_national(background):
    birth = date(1986, 3, 3)
    cert_a = make_cert("520102", birth, 15)
    # another woman's number that keeps the same first 4 and last 4 (other county and birth date,
    # same order code and check character): masking cannot tell the two numbers apart
    cert_b = next(c for c in (make_cert("520111", date(1990, m, d), 15) for m in range(1, 13) for d in range(1, 29))
                  if c[-4:] == cert_a[-4:])
    rows = [
        # A in both systems, valid number in clear: one person by the rule
        account("national", "A1", "罗敏", birth, "F", "520102", cert=cert_a),
        account("provincial", "A1p", "罗敏", birth, "F", "520281", cert=cert_a, phone="13911112222"),
        # B: a masked national account with A's name, gender and kept number ends
        account("national", "B1", "罗敏", None, "F", "520281", cert=cert_b, cert_masked=True,
                phone="13911112222", phone_masked=True),
        # C: two national accounts with equal valid numbers (a duplicate): the rule still joins them
        account("national", "C1", "韦海燕", date(1979, 5, 5), "F", "522701", cert=make_cert("522701", date(1979, 5, 5), 30)),
        account("national", "C2", "韦海燕", date(1979, 5, 5), "F", "522701", cert=make_cert("522701", date(1979, 5, 5), 30)),
    ]
    return resolve_volunteers(with_background(background, rows), synced_at=SYNCED_AT)


def test_a_masked_national_account_never_joins_a_person_who_has_one(second_national):
    assert key_of(second_national, "national", "A1") == key_of(second_national, "provincial", "A1p")
    assert key_of(second_national, "national", "B1") != key_of(second_national, "national", "A1")


def test_the_pair_kept_apart_goes_to_review(second_national):
    review = pair_row(second_national.review, "B1", "A1p")
    if len(review):  # strong enough to be refused: reviewed with the constraint's reason
        assert review["reason"].iloc[0] in {"two_national_accounts", "uncertain"}
    scored = pair_row(second_national.scored_pairs, "B1", "A1p")
    # the provincial account is already linked to its national account by a rule
    assert scored["system_level"].tolist() == ["across_linked_elsewhere"]


def test_rules_still_join_two_national_accounts_with_one_valid_number(second_national):
    assert key_of(second_national, "national", "C1") == key_of(second_national, "national", "C2")


# ------------------------------------------------------------------ the other system, already linked

def test_other_system_linked_counts_the_rule_linked_accounts_of_the_other_system():
    accounts = pd.DataFrame({"source": ["national", "provincial", "provincial", "national", "provincial"],
                             "det_component": [0, 0, 0, 3, 4]})
    assert other_system_linked(accounts).tolist() == [2, 1, 1, 0, 0]


def test_a_free_pair_across_the_systems_weighs_more_than_one_linked_elsewhere(second_national):
    model = second_national.summary["model"]["system"]
    across, linked_elsewhere, within = model
    assert across > 0 > linked_elsewhere
    assert within < 0
