"""Blocking that does not grow with the square of a county's namesakes: a common name's block in
one county is skipped above its cap, and the pairs that can still be linked there are found by
the evidence they carry (the birth day of a mistyped year, the kept end of a mistyped number)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from pipelines.resolve.rules import load_matching_rules
from pipelines.resolve.volunteers import resolve_volunteers
from tests.resolve.conftest import account, with_background
from tests.resolve.synthetic import make_cert

SYNCED_AT = pd.Timestamp("2026-06-30T10:00:00Z")
COUNTY = "520102"
NAME = "韦秀英"  # not common enough for the namesake guard (schemas/matching.yaml) even with its crowd


def namesakes(count: int) -> list[dict]:
    """`count` different people of one name in one county, each with a national account whose
    number is masked (as the national export masks it): birth dates and number ends differ."""
    rows = []
    for i in range(count):
        birth = date(1950 + i, 1 + i % 12, 1 + i % 28)
        rows.append(account("national", f"NS{i}", NAME, birth, "M", COUNTY,
                            cert=make_cert(COUNTY, birth, 300 + i), cert_masked=True))
    return rows


def pair_rule(result, a: str, b: str) -> str | None:
    pairs = result.scored_pairs
    row = pairs.loc[((pairs["left_source_id"] == a) & (pairs["right_source_id"] == b))
                    | ((pairs["left_source_id"] == b) & (pairs["right_source_id"] == a))]
    return row["blocking_rule"].iloc[0] if len(row) else None


def key_of(result, source_id: str) -> str:
    return result.source_map.set_index("source_id").loc[source_id, "volunteer_key"]


def crowded_rows(cap: int) -> list[dict]:
    born = date(1985, 7, 1)
    number = make_cert(COUNTY, born, 512)
    return namesakes(cap + 5) + [
        # one person: the provincial account typed the year wrong and has no number
        account("national", "Y1", NAME, born, "M", COUNTY, cert=number, cert_masked=True),
        account("provincial", "Y1p", NAME, date(1986, 7, 1), "M", COUNTY),
        # one person: the provincial number mistyped in its first four digits, no birth date
        account("national", "C1", NAME, date(1991, 2, 3), "M", COUNTY,
                cert=make_cert(COUNTY, date(1991, 2, 3), 77), cert_masked=True),
        account("provincial", "C1p", NAME, None, "M", COUNTY,
                cert="5301" + make_cert(COUNTY, date(1991, 2, 3), 77)[4:], cert_valid=False),
    ]


@pytest.fixture(scope="module")
def crowded_county(background):
    cap = {rule.name: rule.max_block_size for rule in load_matching_rules().blocking_rules}["name_region"]
    return cap, resolve_volunteers(with_background(background, crowded_rows(cap)), synced_at=SYNCED_AT)


def test_a_county_block_over_its_cap_gives_no_pairs_of_namesakes(crowded_county):
    cap, result = crowded_county
    crowd = {f"NS{i}" for i in range(cap + 5)}
    pairs = result.scored_pairs
    inside = pairs["left_source_id"].isin(crowd) & pairs["right_source_id"].isin(crowd)
    assert inside.sum() == 0
    assert result.summary["pairs_by_blocking_rule"]["name_region"] < (cap + 9) * (cap + 8) // 2


def test_a_mistyped_year_in_a_crowded_county_is_found_by_the_birth_day(crowded_county):
    _, result = crowded_county
    assert pair_rule(result, "Y1", "Y1p") == "name_region_birth_day"
    assert key_of(result, "Y1") == key_of(result, "Y1p")


def test_a_mistyped_number_in_a_crowded_county_is_found_by_its_kept_end(crowded_county):
    _, result = crowded_county
    assert pair_rule(result, "C1", "C1p") == "name_cert_suffix"
    assert key_of(result, "C1") == key_of(result, "C1p")


def test_each_rule_reads_its_own_cap_or_the_default():
    rules = load_matching_rules()
    caps = {rule.name: rule.max_block_size for rule in rules.blocking_rules}
    assert caps["name_region"] < caps["name_birth"] == rules.raw["max_block_size"]


def test_an_incremental_sync_blocks_a_changed_account_as_a_full_run_does(crowded_county, background):
    # An incremental sync sizes only the blocks that hold a changed account, but over all their
    # accounts: a changed namesake's crowded block is still over its cap, and the changed
    # accounts get the pairs (and the rules) a full run gives them.
    cap, first = crowded_county
    rows = crowded_rows(cap)
    edits = {"NS3": {"gender": "F"}, "C1p": {"phone_hash": "a phone added"}}  # a namesake, the mistyped number
    for row in rows:
        row.update(edits.get(row["source_id"], {}))
    changed = with_background(background, rows)
    incremental = resolve_volunteers(changed, previous=first.state, synced_at=SYNCED_AT)
    full = resolve_volunteers(changed, synced_at=SYNCED_AT)
    assert incremental.summary["mode"] == "incremental" and incremental.summary["changed_accounts"] == 2

    def pairs_of(result, source_ids) -> set[tuple]:
        pairs = result.scored_pairs
        touching = pairs["left_source_id"].isin(source_ids) | pairs["right_source_id"].isin(source_ids)
        return set(pairs.loc[touching, ["left_source_id", "right_source_id", "blocking_rule"]]
                   .itertuples(index=False, name=None))

    assert pairs_of(incremental, ["NS3", "C1p"]) == pairs_of(full, ["NS3", "C1p"])
    assert not any(a.startswith("NS") and b.startswith("NS") for a, b, _ in pairs_of(incremental, ["NS3"]))
