"""What the model measures rather than assumes: the birth date's m on the links whose two numbers
are not both valid (a date typed by hand on one side), not on the links by equal valid numbers,
where the two dates agree by construction; and the u of a masked phone's kept ends, counted
from the accounts (random pairs are too few to show a one-in-a-million agreement)."""

from __future__ import annotations

import math
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from pipelines.resolve.rules import load_matching_rules
from pipelines.resolve.volunteers import agreeing_pair_share, resolve_volunteers
from tests.resolve.conftest import account, with_background
from tests.resolve.synthetic import COUNTIES, GIVEN, SURNAMES, make_cert

SYNCED_AT = pd.Timestamp("2026-06-30T10:00:00Z")
LINKED_BY_NUMBER, TYPED_WRONG = 240, 96  # persons linked by the national number; of them, a year typed wrong


def names():
    for surname in SURNAMES:
        for first in GIVEN:
            for second in GIVEN:
                yield surname + first + second


@pytest.fixture(scope="module")
def linked() -> pd.DataFrame:
    """Persons linked by equal valid numbers (dates equal), and persons whose provincial account
    has no number but carries the national volunteer number (a year typed wrong in 40% of them)."""
    rows, unique = [], names()
    for i in range(2 * LINKED_BY_NUMBER):
        name, county = next(unique), COUNTIES[i % len(COUNTIES)]
        born = date(1960, 1, 1) + timedelta(days=37 * i)
        number = make_cert(county, born, 100 + i % 800)
        rows.append(account("national", f"N{i}", name, born, "F", county, cert=number))
        if i < LINKED_BY_NUMBER:  # the provincial account typed by hand, carrying the national number
            typed = born.replace(year=born.year + 1) if i < TYPED_WRONG else born
            rows.append(account("provincial", f"P{i}", name, typed, "F", county, national_volunteer_no=f"N{i}"))
        else:
            rows.append(account("provincial", f"P{i}", name, born, "F", county, cert=number))
    return pd.DataFrame(rows)


def birth_weights(result) -> dict[str, float]:
    rules = load_matching_rules()
    labels = [level.label for level in next(c for c in rules.comparisons if c.name == "birth_date").levels]
    return dict(zip(labels, result.summary["model"]["birth_date"]))


def test_the_birth_dates_m_is_measured_on_the_links_without_two_valid_numbers(linked):
    rules = load_matching_rules()
    prior_only = rules.with_overrides(estimation={**rules.estimation, "m_from_links_not_both_valid": []})
    measured = resolve_volunteers(linked, rules, synced_at=SYNCED_AT)
    assumed = resolve_volunteers(linked, prior_only, synced_at=SYNCED_AT)
    # the same random pairs give the same u: the weights differ by log2(m measured / m prior)
    prior_m = {level.label: level.m for level in next(c for c in rules.comparisons if c.name == "birth_date").levels}
    pseudo = rules.estimation["pseudo_count"]
    expected = {
        "one_typo": (TYPED_WRONG + pseudo * prior_m["one_typo"]) / (LINKED_BY_NUMBER + pseudo),
        "exact": (LINKED_BY_NUMBER - TYPED_WRONG + pseudo * prior_m["exact"]) / (LINKED_BY_NUMBER + pseudo),
    }
    for label, m in expected.items():
        shift = birth_weights(measured)[label] - birth_weights(assumed)[label]
        assert shift == pytest.approx(math.log2(m / prior_m[label]), abs=0.02), label
    assert birth_weights(measured)["one_typo"] > birth_weights(assumed)["one_typo"] + 2


def test_a_pair_told_apart_only_by_a_typed_date_is_linked_once_typing_is_measured(linked, background):
    """One person found only by the model, among the synthetic crowd: a national account with a
    valid number and a provincial account with none, in the next county, born a day apart on
    paper."""
    name, county, born = "岑晓彤", "520102", date(1979, 3, 14)
    world = with_background(background, linked.to_dict("records") + [
        account("national", "T1", name, born, "M", county, cert=make_cert(county, born, 123), phone="13900001111"),
        account("provincial", "T1p", name, born + timedelta(days=1), "M", "520103", phone="18600002222"),
    ])
    rules = load_matching_rules()
    prior_only = rules.with_overrides(estimation={**rules.estimation, "m_from_links_not_both_valid": []})

    def keys(result):
        return result.source_map.set_index("source_id").loc[["T1", "T1p"], "volunteer_key"]

    assert keys(resolve_volunteers(world, rules, synced_at=SYNCED_AT)).nunique() == 1
    assumed = resolve_volunteers(world, prior_only, synced_at=SYNCED_AT)
    assert keys(assumed).nunique() == 2  # with the prior's 4% of typos: the review band
    assert {"T1", "T1p"} <= set(assumed.review[["left_source_id", "right_source_id"]].stack())


def test_a_masked_phones_kept_ends_agree_as_often_as_the_accounts_say():
    """u of the phone's `ends_agree` level is counted from the accounts, exactly: the same share
    as every pair of accounts put through the level's own condition."""
    rng = np.random.default_rng(5)
    count = 400
    frame = pd.DataFrame({
        "phone_prefix3": rng.choice(["139", "186", None], count, p=[0.45, 0.45, 0.1]),
        "phone_suffix4": rng.choice(["1111", "2222", "3333"], count),
        "phone_hash": np.where(rng.random(count) < 0.5, [f"h{i % 7}" for i in range(count)], None),
    })
    con = duckdb.connect()
    con.register("acc", frame)
    level = next(lv for c in load_matching_rules().comparisons if c.name == "phone"
                 for lv in c.levels if lv.label == "ends_agree")
    share = agreeing_pair_share(con, level.u_equal, level.u_unless_both, count)

    left, right = np.triu_indices(count, k=1)
    l, r = frame.iloc[left].reset_index(drop=True), frame.iloc[right].reset_index(drop=True)
    agree = ((l["phone_hash"].isna() | r["phone_hash"].isna())
             & (l["phone_prefix3"] == r["phone_prefix3"]) & (l["phone_suffix4"] == r["phone_suffix4"]))
    assert share == pytest.approx(agree.sum() / len(left))
    assert agree.sum() > 1000  # (the frame is crowded on purpose)
