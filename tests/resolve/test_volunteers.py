"""Volunteer resolution on hand-made hard cases hidden in a synthetic crowd, and on a whole synthetic world."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from pipelines.name_seal import unseal_suffix
from pipelines.resolve import volunteers
from pipelines.resolve.volunteers import resolve_volunteers
from pipelines.staging import read_staged, stage_table
from tests.resolve.conftest import _hash, account, with_background
from tests.resolve.synthetic import make_cert, make_world, pairwise_confusion
from tests.staging.rawpages import AS_OF, land, national_volunteer, resident_id, settings_for

# the run's instant stamped on key history and evidence (pipelines/clock.py)
SYNCED_AT = pd.Timestamp("2026-06-30T10:00:00Z")


def key_of(result, source: str, source_id: str) -> str:
    row = result.source_map.loc[(result.source_map["source"] == source) & (result.source_map["source_id"] == source_id)]
    assert len(row) == 1
    return row["volunteer_key"].iloc[0]


def same_person(result, a: tuple[str, str], b: tuple[str, str]) -> bool:
    return key_of(result, *a) == key_of(result, *b)


BIRTH = date(1990, 3, 14)
CERT_XM = make_cert("520102", BIRTH, 123)
CERT_TWIN_A = make_cert("520102", date(1985, 7, 1), 11)
CERT_TWIN_B = make_cert("520102", date(1985, 7, 1), 13)


def hard_case_accounts(background: pd.DataFrame) -> pd.DataFrame:
    rows = [
        # homophone given name, national number masked, provincial in clear
        account("national", "H1", "张小明", BIRTH, "M", "520102", cert=CERT_XM, cert_masked=True, phone="13800001111", phone_masked=True),
        account("provincial", "H1p", "张晓明", BIRTH, "M", "520102", cert=CERT_XM, phone="13800001111"),
        # dropped character, masked number, other phone, moved county
        account("national", "D1", "欧阳娜娜", date(1979, 11, 2), "F", "520103",
                cert=make_cert("520103", date(1979, 11, 2), 22), cert_masked=True, phone="13900002222", phone_masked=True),
        account("provincial", "D1p", "欧阳娜", date(1979, 11, 2), "F", "520281",
                cert=make_cert("520103", date(1979, 11, 2), 22), phone="13600009999"),
        # mistyped birth date stated next to a masked number
        account("national", "B1", "龙飞燕", date(1968, 5, 21), "F", "522601",
                cert=make_cert("522601", date(1968, 5, 21), 40), cert_masked=True),
        account("provincial", "B1p", "龙飞燕", date(1968, 5, 27), "F", "522601",
                cert=make_cert("522601", date(1968, 5, 21), 40)),
        # 王伟 twins: same birth, same county, valid different numbers; a masked third account
        # that looks like both must not bridge them (the masked one is national, as masking is:
        # twin A's other account is provincial, the national system holding one per number)
        account("provincial", "T1", "王伟", date(1985, 7, 1), "M", "520102", cert=CERT_TWIN_A, phone="13711112222"),
        account("provincial", "T2", "王伟", date(1985, 7, 1), "M", "520102", cert=CERT_TWIN_B, phone="13711113333"),
        account("national", "T3", "王伟", date(1985, 7, 1), "M", "520102", cert=CERT_TWIN_A, cert_masked=True),
        # namesakes born the same day in one county, both masked, different numbers
        account("national", "N1", "李娟", date(1992, 1, 9), "F", "520111",
                cert=make_cert("520111", date(1992, 1, 9), 100), cert_masked=True, phone="15000001111", phone_masked=True),
        account("provincial", "N2", "李娟", date(1992, 1, 9), "F", "520111",
                cert=make_cert("520111", date(1992, 1, 9), 202), cert_masked=True, phone="15000002222", phone_masked=True),
        # deterministic: provincial account carrying the national number, nothing else alike
        account("national", "K1", "赵一", date(1970, 1, 1), "M", "520201"),
        account("provincial", "K1p", "赵壹", None, None, "520303", national_volunteer_no="K1"),
        # deterministic: equal valid numbers despite a different name
        account("national", "C1", "钱多多", date(2000, 2, 2), "F", "520302", cert=make_cert("520302", date(2000, 2, 2), 8)),
        account("provincial", "C1p", "钱朵朵", date(2000, 2, 2), "F", "520402", cert=make_cert("520302", date(2000, 2, 2), 8)),
    ]
    return with_background(background, rows)


@pytest.fixture(scope="module")
def hard_cases(background):
    return resolve_volunteers(hard_case_accounts(background), synced_at=SYNCED_AT)


def test_homophone_given_name_is_one_person(hard_cases):
    assert same_person(hard_cases, ("national", "H1"), ("provincial", "H1p"))


def test_dropped_character_and_moved_county_is_one_person(hard_cases):
    assert same_person(hard_cases, ("national", "D1"), ("provincial", "D1p"))


def test_mistyped_birth_date_behind_masked_number_is_one_person(hard_cases):
    assert same_person(hard_cases, ("national", "B1"), ("provincial", "B1p"))


def test_twins_with_valid_different_numbers_stay_apart_even_through_a_bridge(hard_cases):
    assert not same_person(hard_cases, ("provincial", "T1"), ("provincial", "T2"))
    assert same_person(hard_cases, ("provincial", "T1"), ("national", "T3"))


def test_namesakes_with_masked_different_numbers_are_not_merged(hard_cases):
    assert not same_person(hard_cases, ("national", "N1"), ("provincial", "N2"))


def test_deterministic_links_and_their_methods(hard_cases):
    source_map = hard_cases.source_map.set_index(["source", "source_id"])
    assert same_person(hard_cases, ("national", "K1"), ("provincial", "K1p"))
    assert source_map.loc[("provincial", "K1p"), "match_method"] == "national_volunteer_no"
    assert same_person(hard_cases, ("national", "C1"), ("provincial", "C1p"))
    assert source_map.loc[("provincial", "C1p"), "match_method"] == "cert_number"
    assert source_map.loc[("provincial", "C1p"), "match_probability"] == 1.0
    assert source_map.loc[("provincial", "H1p"), "match_method"] == "probabilistic"
    assert source_map.loc[("provincial", "H1p"), "match_probability"] >= 0.99


def test_every_cluster_holds_at_most_one_valid_number(hard_cases):
    assert hard_cases.summary["persons_with_two_valid_numbers"] == 0


def test_link_evidence_reads_field_by_field_without_personal_data(hard_cases):
    links = hard_cases.links
    row = links.loc[(links["right_source_id"] == "H1p") | (links["left_source_id"] == "H1p")].iloc[0]
    assert row["name_level"] == "same_pinyin"
    assert "name same_pinyin" in row["evidence"] and "birth_date exact" in row["evidence"]
    assert "prior" in row["evidence"] and "=> weight" in row["evidence"]
    for text in links["evidence"].dropna():
        assert "张" not in text and "13800001111" not in text


def test_golden_record_takes_the_valid_number_and_national_name(hard_cases):
    golden = hard_cases.golden.set_index("volunteer_key")
    person = golden.loc[key_of(hard_cases, "national", "H1")]
    assert person["name"] == "张小明"  # survivorship: national name first
    # the national number is masked: the provincial clear one is the valid one kept
    assert person["cert_hash"] == _hash(CERT_XM)
    assert person["birth_year"] == 1990
    assert bool(person["in_national"]) and bool(person["in_provincial"])
    twin = golden.loc[key_of(hard_cases, "provincial", "T2")]
    assert twin["account_count"] == 1


def test_common_name_weighs_less_than_a_rare_one(background):
    rows = [account("national", f"W{i}", "王伟", date(1960 + i % 40, 1 + i % 12, 1 + i % 28), "M", "520102") for i in range(40)]
    rows += [account("national", "R1", "黎雨轩", date(1990, 1, 1), "M", "520102"),
             account("provincial", "R1p", "黎雨轩", date(1990, 1, 2), "M", "520103"),
             account("provincial", "W0p", "王伟", date(1960, 1, 2), "M", "520103")]
    result = resolve_volunteers(with_background(background, rows), synced_at=SYNCED_AT)
    scored = result.scored_pairs
    rare = scored.loc[(scored["left_source_id"] == "R1") & (scored["right_source_id"] == "R1p"), "name_weight"]
    common = scored.loc[(scored["left_source_id"] == "W0") & (scored["right_source_id"] == "W0p"), "name_weight"]
    assert len(rare) == 1 and len(common) == 1
    assert rare.iloc[0] > common.iloc[0] + 3


def test_deleted_everywhere_means_deleted_else_latest_live_status(background):
    cert = make_cert("520102", date(1995, 5, 5), 55)
    rows = [
        account("national", "S1", "周周", date(1995, 5, 5), "F", "520102", cert=cert, status="frozen", updated="2026-01-01"),
        account("provincial", "S1p", "周周", date(1995, 5, 5), "F", "520102", cert=cert, updated="2026-03-01", is_deleted=True),
        account("national", "S2", "吴桐", date(1991, 6, 6), "M", "520102", is_deleted=True, status="active"),
    ]
    result = resolve_volunteers(with_background(background, rows), synced_at=SYNCED_AT)
    golden = result.golden.set_index("volunteer_key")
    assert golden.loc[key_of(result, "national", "S1"), "status"] == "frozen"
    assert golden.loc[key_of(result, "national", "S2"), "status"] == "deleted"


def test_a_live_account_without_a_status_counts_as_active_and_the_latest_account_decides(background):
    # albp0090 is optional: a national account sent without it is staged with status null
    cert_a = make_cert("520102", date(1993, 2, 2), 21)
    cert_b = make_cert("520102", date(1994, 3, 3), 23)
    rows = [
        account("national", "N1", "钱多", date(1992, 1, 1), "M", "520102", status=None),
        # one valid number, two national accounts: the one updated last decides, status or none
        account("national", "N2", "孙立", date(1993, 2, 2), "M", "520102", cert=cert_a, status="deregistered",
                updated="2026-01-01"),
        account("national", "N2b", "孙立", date(1993, 2, 2), "M", "520102", cert=cert_a, status=None,
                updated="2026-03-01"),
        account("national", "N3", "李青", date(1994, 3, 3), "F", "520102", cert=cert_b, status=None,
                updated="2026-01-01"),
        account("national", "N3b", "李青", date(1994, 3, 3), "F", "520102", cert=cert_b, status="deregistered",
                updated="2026-03-01"),
        account("provincial", "N3p", "李青", date(1994, 3, 3), "F", "520102", cert=cert_b, updated="2026-02-01"),
    ]
    result = resolve_volunteers(with_background(background, rows), synced_at=SYNCED_AT)
    golden = result.golden.set_index("volunteer_key")
    assert same_person(result, ("national", "N2"), ("national", "N2b"))
    assert same_person(result, ("national", "N3"), ("national", "N3b"))
    assert golden.loc[key_of(result, "national", "N1"), "status"] == "active"
    assert golden.loc[key_of(result, "national", "N2"), "status"] == "active"
    assert golden.loc[key_of(result, "national", "N3"), "status"] == "deregistered"
    assert golden["status"].notna().all()


def test_staged_accounts_without_albp0090_resolve_to_active(tmp_path, background):
    settings = settings_for(tmp_path / "data")
    without_status = national_volunteer("0001", resident_id("52010219900307123"))
    del without_status["albp0090"]
    land(settings.data_dir, "national", "volunteers",
         [without_status, national_volunteer("0002", resident_id("52010219880512321"), albp0090=None)])
    stage_table("volunteers", settings, as_of=AS_OF)
    staged = read_staged(settings, "volunteers")
    assert staged["status"].isna().all()
    result = resolve_volunteers(pd.concat([background.drop(columns=["person_id"]), staged], ignore_index=True),
                                synced_at=SYNCED_AT)
    golden = result.golden.set_index("volunteer_key")
    for source_id in ("V0001", "V0002"):
        assert golden.loc[key_of(result, "national", source_id), "status"] == "active"


def test_a_short_masked_national_number_keeps_its_ends_through_resolution(tmp_path, background):
    # the interface fixes a mask's 4 + 4 ends, not its number of stars; the warehouse
    # publishes id_masked from these ends (4 + 10 '*' + 4)
    settings = settings_for(tmp_path / "data")
    land(settings.data_dir, "national", "volunteers",
         [national_volunteer("0001", "5201**123X", share_consent=False),
          national_volunteer("0002", "5201*******1234", share_consent=False, albp0003="赵强")])
    stage_table("volunteers", settings, as_of=AS_OF)
    staged = read_staged(settings, "volunteers").set_index("source_id")
    assert staged["cert_masked"].all() and staged["cert_hash"].isna().all()
    result = resolve_volunteers(pd.concat([background.drop(columns=["person_id"]), staged.reset_index()],
                                          ignore_index=True), synced_at=SYNCED_AT)
    golden = result.golden.set_index("volunteer_key")
    short = golden.loc[key_of(result, "national", "V0001")]
    legacy = golden.loc[key_of(result, "national", "V0002")]
    # the last four are kept sealed (pipelines/name_seal.py) and unsealed only where shown
    assert (short["cert_prefix4"], unseal_suffix(short["cert_suffix4"], settings.pii_hash_key)) == ("5201", "123X")
    assert (legacy["cert_prefix4"], unseal_suffix(legacy["cert_suffix4"], settings.pii_hash_key)) == ("5201", "1234")


def test_synthetic_world_meets_the_quality_bar():
    accounts, _ = make_world(3000, seed=5)
    result = resolve_volunteers(accounts.drop(columns=["person_id"]), synced_at=SYNCED_AT)
    confusion = pairwise_confusion(result.source_map, accounts)
    precision = confusion["tp"] / (confusion["tp"] + confusion["fp"])
    recall = confusion["tp"] / (confusion["tp"] + confusion["fn"])
    assert precision >= 0.995, confusion
    assert recall >= 0.99, confusion


def test_the_step_letting_go_of_unused_scored_pairs_makes_the_same_outputs(background, hard_cases, monkeypatch):
    # the sync's step scores the pairs a chunk at a time and keeps only those that can reach
    # an output; an analyst's `same` on a pair scored below the review band still carries
    # that pair's levels
    monkeypatch.setattr(volunteers, "SCORE_CHUNK_PAIRS", 50)
    accounts = hard_case_accounts(background)
    below_band = hard_cases.scored_pairs.loc[hard_cases.scored_pairs["match_probability"] < 0.5].iloc[0]
    decisions = pd.DataFrame([{**below_band[["left_source", "left_source_id", "right_source", "right_source_id"]],
                               "decision": "same"}])
    every = resolve_volunteers(accounts, review_decisions=decisions, synced_at=SYNCED_AT)
    kept = resolve_volunteers(accounts, review_decisions=decisions, synced_at=SYNCED_AT, every_scored_pair=False)
    assert kept.scored_pairs is None
    decided = every.links.loc[every.links["method"] == "review_same"]
    assert len(decided) == 1 and decided["name_level"].notna().all()
    for output in ("source_map", "golden", "links", "review", "key_history"):
        pd.testing.assert_frame_equal(getattr(kept, output), getattr(every, output), obj=output)
    for part in ("source_map", "fingerprints", "scored_pairs", "key_history", "account_rows"):
        pd.testing.assert_frame_equal(getattr(kept.state, part), getattr(every.state, part), obj=part)
    assert kept.summary == every.summary


def test_persons_with_two_valid_numbers_counts_keys_not_accounts():
    # Va holds two different valid numbers (three accounts), Vb one number twice, Vc one number
    # and an account without any; a missing key counts for nobody
    accounts = pd.DataFrame({
        "volunteer_key": ["Va", "Va", "Va", "Vb", "Vb", "Vc", "Vc", None, None],
        "cert_valid_hash": ["h1", "h2", "h1", "h3", "h3", "h4", None, "h5", "h6"],
    })
    assert volunteers.persons_with_two_valid_numbers(accounts) == 1
    assert volunteers.persons_with_two_valid_numbers(accounts.iloc[3:]) == 0


def test_accounts_are_one_row_each_in_source_order_whatever_order_they_come_in():
    """Staging writes one row per account in (source, source_id) order, and preparing them
    then only checks it; rows out of order or an account twice (the last row wins) come out
    as from sorted, unique input."""
    staged, _ = make_world(persons=60, seed=5)
    in_order = volunteers.prepare_accounts(staged)
    accounts = list(zip(in_order["source"], in_order["source_id"]))
    assert accounts == sorted(set(accounts)) and len(accounts) == len(staged)
    shuffled = staged.sample(frac=1.0, random_state=2)
    repeated = staged.iloc[[4]].assign(name="后来的名字")  # the same account again, later
    pd.testing.assert_frame_equal(volunteers.prepare_accounts(shuffled), in_order)
    again = volunteers.prepare_accounts(pd.concat([staged, repeated], ignore_index=True))
    key = (staged["source"].iloc[4], str(staged["source_id"].iloc[4]))
    assert len(again) == len(in_order)
    assert again.set_index(["source", "source_id"]).loc[key, "name"] == "后来的名字"


def test_evidence_text_formats_every_weight_as_python_does():
    """The waterfall formats each distinct weight once; the text is what formatting each
    pair's own numbers gives (signs of zero, NaN and rounding included)."""
    from pipelines.resolve.evidence import waterfall_text
    from pipelines.resolve.rules import load_matching_rules

    rules = load_matching_rules()
    weights = [0.0, -0.0, 0.04, -0.04, 0.05, 9.25, float("nan"), 16.349, 0.0]
    scored = pd.DataFrame({"match_weight": weights, "match_probability": [w / 100 for w in weights]})
    for comparison in rules.comparisons:
        scored[f"{comparison.name}_level"] = comparison.levels[0].label
        scored[f"{comparison.name}_weight"] = weights[::-1]
    text = waterfall_text(scored, rules, -19.94)
    for row, line in zip(scored.itertuples(index=False), text):
        row = row._asdict()
        parts = [f"prior {-19.94:+.1f}"] + [
            f"{c.name} {row[f'{c.name}_level']} {row[f'{c.name}_weight']:+.1f}" for c in rules.comparisons
        ]
        assert line == " | ".join(parts) + f" => weight {row['match_weight']:+.1f}, p {row['match_probability']:.6f}"


def test_each_account_takes_the_method_of_its_strongest_accepted_link():
    """A rule beats a probability, a higher probability a lower one, the first edge a tie;
    refused links count for nothing; an account alone in its cluster is a singleton."""
    accounts = pd.DataFrame({"idx": range(6)})
    edges = pd.DataFrame([
        (0, 1, "probabilistic", 0.97, True),
        (1, 2, "probabilistic", 0.99, True),
        (0, 2, "cert_number", 1.0, True),
        (3, 4, "probabilistic", 0.95, True),
        (3, 4, "probabilistic", 0.95, True),
        (4, 5, "cert_number", 1.0, False),  # refused: 5 stays alone
    ], columns=["l_idx", "r_idx", "method", "match_probability", "accepted"])
    cluster = pd.Series([0, 0, 0, 1, 1, 2]).to_numpy()
    methods = volunteers._account_methods(accounts, edges, cluster)
    assert methods["match_method"].tolist() == [
        "cert_number", "probabilistic", "cert_number", "probabilistic", "probabilistic", "singleton"]
    assert methods["match_probability"].tolist()[:5] == [1.0, 0.99, 1.0, 0.95, 0.95]
    assert pd.isna(methods["match_probability"].iloc[5])


@pytest.mark.parametrize("others", [0, 2, 40])
def test_a_masked_and_a_clear_number_are_one_person_in_the_smallest_input(others):
    """The contract's third rule (the evidence of name, birth date, gender and region, where a
    number is masked) holds in a pilot county's or a test's handful of accounts too. Drawn
    from so few accounts, random pairs measured those few pairs, not the population: with two
    accounts their one pair was the pair being judged, every level it agreed on looked
    common, and the two were kept apart (p 0.16)."""
    cert = make_cert("520102", date(1990, 1, 1), 11)
    accounts = [account("national", "N1", "张三丰", date(1990, 1, 1), "M", "520102", cert=cert, cert_masked=True),
                account("provincial", "1", "张三丰", date(1990, 1, 1), "M", "520102", cert=cert)]
    accounts += [account("provincial", str(100 + n), f"李{'一二三四五六七八九十'[n % 10]}{n}",
                         date(1960 + n % 40, 1 + n % 12, 1 + n % 28), "F", "520103",
                         cert=make_cert("520103", date(1960 + n % 40, 1 + n % 12, 1 + n % 28), 200 + n))
                 for n in range(others)]
    result = resolve_volunteers(pd.DataFrame(accounts), synced_at=SYNCED_AT)
    assert same_person(result, ("national", "N1"), ("provincial", "1"))
    if others:
        assert not same_person(result, ("national", "N1"), ("provincial", "100"))
