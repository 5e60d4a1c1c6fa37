"""Every asset check of the staged tables has a case where it fails.

One set of raw rows of both sources, landed and staged for real (once per module), gives a
valid frame per staged table; every Great Expectations check passes on it. Then, for each
(table, check) that `expectations/<table>.json` declares, a breaker makes one small change a
real source could cause (a key sent twice, a blank field, a Beijing region, a clear number in
a hash column, a label nobody translated, a share above the warning bar, an end before its
start, a score of 120) and exactly that check fails, with its severity and the figure a
person needs (unexpected count, or observed share). A guard keeps the breaker table and the
suites in step: a check added without a breaker fails this module. And a share whose row
condition leaves nothing to count passes, as an empty table does.

The one staged check that is not Great Expectations, `quarantined_rows` (assets/staged.py),
is covered at the end by materializing the staged assets.

Every expected figure here is written by hand from the rows below; none is computed with
the code under test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg
import pandas as pd
import pytest

from assets import staged as staged_assets
from pipelines.quality import gx_runner
from pipelines.resources import PipelineSettings
from pipelines.schemas import table_names
from pipelines.staging import read_staged, stage_all
from tests.staging.rawpages import (
    AS_OF,
    TEST_KEY,
    land,
    national_evaluation,
    national_project,
    national_service,
    national_team,
    national_volunteer,
    provincial_activity,
    provincial_log,
    provincial_redemption,
    provincial_station,
    provincial_team,
    provincial_volunteer,
    resident_id,
    settings_for,
    uscc_code,
)

EVALUATORS = ("registration_authority", "funder", "beneficiary", "self", "third_party")

# Rows of each valid staged table (and none quarantined).
VALID_ROWS = {
    "volunteers": 10,  # national V0001..V0005, provincial 1..5
    "organizations": 10,  # national T0001..T0005, provincial 1..5 (4 and 5 without a USCC)
    "projects": 10,  # national P0001..P0005, provincial activities 1..5
    "services": 10,  # national R1..R5, provincial logs 1..5 (log 5 deleted)
    "evaluations": 5,  # national 000001..000005, one per evaluator
    "stations": 5,  # provincial 1..5
    "redemptions": 5,  # provincial 1..5
}


def land_valid_sources(data_dir) -> None:
    """Clean rows of every stream of both sources, as their interfaces send them."""
    # National volunteers: men (odd 17th digit, albp0006 "1"); provincial: women (even, 女).
    land(
        data_dir,
        "national",
        "volunteers",
        [
            national_volunteer(
                f"{i:04d}",
                resident_id(f"52010219900307{2 * i - 1:03d}"),
                albp0010=f"138123456{i:02d}",
            )
            for i in range(1, 6)
        ],
    )
    land(
        data_dir,
        "provincial",
        "volunteers",
        [
            provincial_volunteer(
                i,
                resident_id(f"52010319920611{2 * i:03d}"),
                sex="女",
                mobile=f"+86 139 0000 11{i:02d}",
            )
            for i in range(1, 6)
        ],
    )
    land(
        data_dir,
        "national",
        "teams",
        [
            national_team(f"{i:04d}", albe0008=uscc_code(f"51520102MJ00{i:05d}"))
            for i in range(1, 6)
        ],
    )
    land(
        data_dir,
        "provincial",
        "teams",
        [provincial_team(i, creditCode=uscc_code(f"52520103MJ00{i:05d}")) for i in (1, 2, 3)]
        + [provincial_team(i, regStatus="未登记") for i in (4, 5)],
    )
    land(data_dir, "national", "projects", [national_project(f"{i:04d}") for i in range(1, 6)])
    land(
        data_dir,
        "provincial",
        "activities",
        [
            provincial_activity(
                i, startTime=f"2026-05-0{i} 08:00:00", endTime=f"2026-05-0{i} 12:00:00"
            )
            for i in range(1, 6)
        ],
    )
    land(
        data_dir,
        "national",
        "service_records",
        [national_service(f"R{i}", albx0175=f"V{i:04d}") for i in range(1, 6)],
    )
    land(
        data_dir,
        "provincial",
        "service_logs",
        [provincial_log(i, userId=i, isDeleted=i == 5) for i in range(1, 6)],
    )
    land(
        data_dir,
        "national",
        "evaluations",
        [
            national_evaluation(f"{i:06d}", albe0001="T0001", evaluator=evaluator)
            for i, evaluator in enumerate(EVALUATORS, start=1)
        ],
    )
    land(
        data_dir,
        "provincial",
        "stations",
        [provincial_station(i, stationType=kind) for i, kind in enumerate("站点岗站点", start=1)],
    )
    land(
        data_dir,
        "provincial",
        "redemptions",
        [provincial_redemption(i, userId=i) for i in range(1, 6)],
    )


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> dict[str, pd.DataFrame]:
    settings = settings_for(tmp_path_factory.mktemp("every_check") / "data")
    land_valid_sources(settings.data_dir)
    results = stage_all(settings, as_of=AS_OF)
    assert {table: result.quarantined for table, result in results.items()} == dict.fromkeys(
        VALID_ROWS, 0
    )
    return {table: read_staged(settings, table) for table in table_names()}


def test_the_valid_frames_pass_every_check(staged):
    assert {table: len(frame) for table, frame in staged.items()} == VALID_ROWS
    for table, frame in staged.items():
        result = gx_runner.validate(table, frame)
        assert result.failed() == [], table
        assert result.success


def test_a_share_with_nothing_to_count_passes_like_an_empty_table(staged):
    """A share taken over the rows of a row condition has nothing to measure when no row
    meets it; GX then fails the mean with no observed value. Like an empty table, that is no
    drift: the warning passes, and shows no figure rather than a made-up one."""
    # no team sent a USCC (团体 and 未登记 teams carry none)
    teams = staged["organizations"].copy()
    teams["uscc"] = None
    teams["uscc_valid"] = False
    teams["registration_status"] = "unregistered"
    result = gx_runner.validate("organizations", teams)
    assert result.failed() == []
    assert "observed_uscc_valid" not in result.check("valid_uscc_share").metadata()

    # every certificate number came masked: that drift is masked_id_share's alone
    people = staged["volunteers"].copy()
    people["cert_masked"] = True
    people["cert_hash"] = None
    people["cert_valid"] = False
    result = gx_runner.validate("volunteers", people)
    assert result.failed() == ["masked_id_share"]
    assert result.check("masked_id_share").metadata()["observed_cert_masked"] == 1.0
    assert "observed_cert_valid" not in result.check("valid_id_share").metadata()


# -- breakers -----------------------------------------------------------------------------

Mutation = Callable[[pd.DataFrame], None]


def _rows(frame: pd.DataFrame, keys: tuple[str, ...]) -> list:
    """Index labels of the rows with keys 'source/source_id' (each must exist once)."""
    labels = []
    for key in keys:
        source, source_id = key.split("/", 1)
        hits = frame.index[(frame["source"] == source) & (frame["source_id"] == source_id)]
        assert len(hits) == 1, key
        labels.append(hits[0])
    return labels


def put(*keys: str, **values) -> Mutation:
    """Set columns of the rows with these keys."""

    def mutate(frame: pd.DataFrame) -> None:
        rows = _rows(frame, keys)
        for column, value in values.items():
            frame.loc[rows, column] = value

    return mutate


# 7 in 10 volunteer accounts, for the masking shares (warning above 0.6)
SEVEN_VOLUNTEERS = (
    "national/V0001",
    "national/V0002",
    "national/V0003",
    "national/V0004",
    "national/V0005",
    "provincial/1",
    "provincial/2",
)
CLEAR_NUMBER = resident_id("52010319920611008")  # provincial volunteer 4's number, in clear


@dataclass(frozen=True)
class Breaker:
    table: str
    check: str
    severity: str  # of the check: blocking | warning
    story: str  # what happened at the source
    mutate: Mutation
    failed: str  # the expectation that fails (metadata `failed_expectations`)
    figures: dict[str, float] = field(default_factory=dict)  # metadata the person needs


# One line per argument would hide the table: keep each breaker compact.
# fmt: off
BREAKERS = [
    # -- volunteers (10 rows) --
    Breaker(
        "volunteers", "key_unique", "blocking",
        "the platform re-created account 1 and the new row kept its id",
        put("provincial/2", source_id="1"),
        "expect_compound_columns_to_be_unique(source,source_id)",
        {"unexpected_source,source_id": 2},
    ),
    Breaker(
        "volunteers", "required_fields", "blocking",
        "a national account with 姓名 left blank",
        put("national/V0003", name=None),
        "expect_column_values_to_not_be_null(name)",
        {"unexpected_name": 1},
    ),
    Breaker(
        "volunteers", "region_in_guizhou", "blocking",
        "an account registered in Dongcheng, Beijing (110101)",
        put("national/V0002", region_code="110101"),
        "expect_column_values_to_match_regex(region_code)",
        {"unexpected_region_code": 1},
    ),
    Breaker(
        "volunteers", "no_clear_numbers", "blocking",
        "a clear 18-digit resident ID number where its hash belongs",
        put("provincial/4", cert_hash=CLEAR_NUMBER),
        "expect_column_values_to_match_regex(cert_hash)",
        {"unexpected_cert_hash": 1},
    ),
    Breaker(
        "volunteers", "valid_values", "blocking",
        "a sex label nobody translated (男 instead of M)",
        put("provincial/3", gender="男"),
        "expect_column_values_to_be_in_set(gender)",
        {"unexpected_gender": 1},
    ),
    Breaker(
        "volunteers", "valid_id_share", "warning",
        "one clear resident ID number in ten typed with a wrong check character",
        put("provincial/5", cert_valid=False),
        "expect_column_mean_to_be_between(cert_valid)",
        {"observed_cert_valid": 0.9},
    ),
    Breaker(
        "volunteers", "masked_id_share", "warning",
        "7 of 10 certificate numbers arrive masked (5201**********123X): no hash, not valid",
        put(*SEVEN_VOLUNTEERS, cert_masked=True, cert_hash=None, cert_valid=False),
        "expect_column_mean_to_be_between(cert_masked)",
        {"observed_cert_masked": 0.7},
    ),
    Breaker(
        "volunteers", "masked_phone_share", "warning",
        "7 of 10 phones arrive masked (138****5678): no hash",
        put(*SEVEN_VOLUNTEERS, phone_masked=True, phone_hash=None),
        "expect_column_mean_to_be_between(phone_masked)",
        {"observed_phone_masked": 0.7},
    ),
    Breaker(
        "volunteers", "identity_conflicts", "warning",
        "one account in ten states 男 while its valid ID number says female",
        put("provincial/1", gender_conflict=True),
        "expect_column_mean_to_be_between(gender_conflict)",
        {"observed_gender_conflict": 0.1},
    ),
    # -- organizations (10 rows; 8 carry a USCC) --
    Breaker(
        "organizations", "key_unique", "blocking",
        "two national teams sent under one team number (albe0001)",
        put("national/T0002", source_id="T0001"),
        "expect_compound_columns_to_be_unique(source,source_id)",
        {"unexpected_source,source_id": 2},
    ),
    Breaker(
        "organizations", "required_fields", "blocking",
        "a live national team whose name (albe0002) normalized to nothing",
        put("national/T0004", name=None),
        "expect_column_values_to_not_be_null(name)",
        {"unexpected_name": 1},
    ),
    Breaker(
        "organizations", "region_in_guizhou", "blocking",
        "a provincial team located in Wuhua, Kunming (530102)",
        put("provincial/3", region_code="530102"),
        "expect_column_values_to_match_regex(region_code)",
        {"unexpected_region_code": 1},
    ),
    Breaker(
        "organizations", "no_clear_numbers", "blocking",
        "a leader's mobile in clear where its hash belongs",
        put("national/T0005", contact_phone_hash="13600001111"),
        "expect_column_values_to_match_regex(contact_phone_hash)",
        {"unexpected_contact_phone_hash": 1},
    ),
    Breaker(
        "organizations", "valid_values", "blocking",
        "a member count of -1 (the platform's 'unknown')",
        put("provincial/2", member_count=-1),
        "expect_column_values_to_be_between(member_count)",
        {"unexpected_member_count": 1},
    ),
    Breaker(
        "organizations", "unmapped_category_share", "warning",
        "one team in ten lists 文化, which maps to no national category",
        put("provincial/4", unmapped_categories="文化"),
        "expect_column_values_to_be_null(unmapped_categories)",
        {"unexpected_unmapped_categories": 1, "unexpected_percent_unmapped_categories": 10.0},
    ),
    Breaker(
        "organizations", "valid_uscc_share", "warning",
        "one USCC of the 8 sent fails its GB 32100 check (7 of 8 valid)",
        put("national/T0003", uscc_valid=False),
        "expect_column_mean_to_be_between(uscc_valid)",
        {"observed_uscc_valid": 0.875},
    ),
    # -- projects (10 rows; only the provincial activities have start and end) --
    Breaker(
        "projects", "key_unique", "blocking",
        "activity 1 sent twice under one id",
        put("provincial/2", source_id="1"),
        "expect_compound_columns_to_be_unique(source,source_id)",
        {"unexpected_source,source_id": 2},
    ),
    Breaker(
        "projects", "required_fields", "blocking",
        "a national project with 项目名称 left blank",
        put("national/P0003", name=None),
        "expect_column_values_to_not_be_null(name)",
        {"unexpected_name": 1},
    ),
    Breaker(
        "projects", "region_in_guizhou", "blocking",
        "an activity located in Yuzhong, Chongqing (500103)",
        put("provincial/4", region_code="500103"),
        "expect_column_values_to_match_regex(region_code)",
        {"unexpected_region_code": 1},
    ),
    Breaker(
        "projects", "end_not_before_start", "blocking",
        "an activity starting 08:00 and ending 07:00 Beijing time the same day",
        put("provincial/3", end_at=pd.Timestamp("2026-05-02 23:00", tz="UTC")),
        "expect_column_pair_values_a_to_be_greater_than_b(end_at>start_at)",
        {"unexpected_end_at>start_at": 1},
    ),
    Breaker(
        "projects", "unmapped_category_share", "warning",
        "one project in ten with a category code outside the national list",
        put("national/P0005", category=None),
        "expect_column_values_to_not_be_null(category)",
        {"unexpected_category": 1, "unexpected_percent_category": 10.0},
    ),
    # -- services (10 rows; provincial log 5 deleted; only national records have times) --
    Breaker(
        "services", "key_unique", "blocking",
        "one national service record id sent for two records",
        put("national/R2", source_id="R1"),
        "expect_compound_columns_to_be_unique(source,source_id)",
        {"unexpected_source,source_id": 2},
    ),
    Breaker(
        "services", "required_fields", "blocking",
        "a live service log with serviceDate left blank",
        put("provincial/2", service_date=None),
        "expect_column_values_to_not_be_null(service_date)",
        {"unexpected_service_date": 1},
    ),
    Breaker(
        "services", "hours_in_range", "blocking",
        "a record signed in and out in the same minute: 0 hours",
        put("national/R3", hours=0.0),
        "expect_column_values_to_be_between(hours)",
        {"unexpected_hours": 1},
    ),
    Breaker(
        "services", "end_not_before_start", "blocking",
        "a record ending 06:00 Beijing, an hour before it starts at 07:00",
        put("national/R4", end_at=pd.Timestamp("2026-03-01 22:00", tz="UTC")),
        "expect_column_pair_values_a_to_be_greater_than_b(end_at>start_at)",
        {"unexpected_end_at>start_at": 1},
    ),
    Breaker(
        "services", "valid_values", "blocking",
        "a status label nobody translated (已通过 instead of effective)",
        put("provincial/3", status="已通过"),
        "expect_column_values_to_be_in_set(status)",
        {"unexpected_status": 1},
    ),
    Breaker(
        "services", "effective_share", "warning",
        "5 more records still pending review: 4 of 10 count",
        put(
            "national/R1", "national/R2", "national/R3", "national/R4", "provincial/1",
            status="pending", is_effective=False,
        ),
        "expect_column_mean_to_be_between(is_effective)",
        {"observed_is_effective": 0.4},
    ),
    # -- evaluations (5 rows) --
    Breaker(
        "evaluations", "key_unique", "blocking",
        "two evaluations sent under one id",
        put("national/000002", source_id="000001"),
        "expect_compound_columns_to_be_unique(source,source_id)",
        {"unexpected_source,source_id": 2},
    ),
    Breaker(
        "evaluations", "required_fields", "blocking",
        "an evaluation without its period",
        put("national/000004", period=None),
        "expect_column_values_to_not_be_null(period)",
        {"unexpected_period": 1},
    ),
    Breaker(
        "evaluations", "valid_values", "blocking",
        "an evaluator label nobody translated (服务对象 instead of beneficiary)",
        put("national/000003", evaluator="服务对象"),
        "expect_column_values_to_be_in_set(evaluator)",
        {"unexpected_evaluator": 1},
    ),
    Breaker(
        "evaluations", "score_in_range", "blocking",
        "a score of 120",
        put("national/000005", score=120.0),
        "expect_column_values_to_be_between(score)",
        {"unexpected_score": 1},
    ),
    # -- stations (5 rows) --
    Breaker(
        "stations", "key_unique", "blocking",
        "station 1 sent twice under one id",
        put("provincial/2", source_id="1"),
        "expect_compound_columns_to_be_unique(source,source_id)",
        {"unexpected_source,source_id": 2},
    ),
    Breaker(
        "stations", "required_fields", "blocking",
        "a station with its name left blank",
        put("provincial/3", name=None),
        "expect_column_values_to_not_be_null(name)",
        {"unexpected_name": 1},
    ),
    Breaker(
        "stations", "region_in_guizhou", "blocking",
        "a station located in Wuhua, Kunming (530102)",
        put("provincial/4", region_code="530102"),
        "expect_column_values_to_match_regex(region_code)",
        {"unexpected_region_code": 1},
    ),
    Breaker(
        "stations", "valid_values", "warning",
        "a station type typed as 服务站 instead of 站",
        put("provincial/5", station_type="服务站"),
        "expect_column_values_to_be_in_set(station_type)",
        {"unexpected_station_type": 1, "unexpected_percent_station_type": 20.0},
    ),
    # -- redemptions (5 rows) --
    Breaker(
        "redemptions", "key_unique", "blocking",
        "redemption 1 sent twice under one id",
        put("provincial/2", source_id="1"),
        "expect_compound_columns_to_be_unique(source,source_id)",
        {"unexpected_source,source_id": 2},
    ),
    Breaker(
        "redemptions", "required_fields", "blocking",
        "a live redemption without its volunteer (userId)",
        put("provincial/3", volunteer_source_id=None),
        "expect_column_values_to_not_be_null(volunteer_source_id)",
        {"unexpected_volunteer_source_id": 1},
    ),
    Breaker(
        "redemptions", "hours_in_range", "blocking",
        "a reversal booked as -120 minutes: -2 hours",
        put("provincial/4", hours=-2.0),
        "expect_column_values_to_be_between(hours)",
        {"unexpected_hours": 1},
    ),
]
# fmt: on


def test_every_check_has_exactly_one_breaker():
    declared = {
        (table, spec.name) for table in table_names() for spec in gx_runner.check_specs(table)
    }
    pairs = [(breaker.table, breaker.check) for breaker in BREAKERS]
    assert len(pairs) == len(set(pairs))
    assert set(pairs) == declared


@pytest.mark.parametrize(
    "breaker", [pytest.param(b, id=f"{b.table}.{b.check}") for b in BREAKERS]
)
def test_the_breaker_fails_exactly_its_check(staged, breaker):
    frame = staged[breaker.table].copy()
    breaker.mutate(frame)
    result = gx_runner.validate(breaker.table, frame)

    assert result.failed() == [breaker.check], breaker.story
    outcome = result.check(breaker.check)
    assert outcome.severity == breaker.severity
    assert result.success is (breaker.severity == "warning")  # only blocking stops downstream
    metadata = outcome.metadata()
    assert metadata["failed_expectations"] == breaker.failed
    for name, value in breaker.figures.items():
        assert metadata[name] == pytest.approx(value), name


# -- quarantined_rows: the one staged check outside Great Expectations --------------------


def test_quarantined_rows_warns_above_five_percent_with_counts_per_rule(tmp_path, monkeypatch):
    monkeypatch.setenv("PII_HASH_KEY", TEST_KEY)
    data = tmp_path / "data"
    # stations: 10 clean, one in Kunming, one opening in 2099 -> 2 of 12 quarantined (16.7%)
    land(
        data,
        "provincial",
        "stations",
        [provincial_station(i) for i in range(1, 11)]
        + [
            provincial_station(11, areaCode="530102001001"),
            provincial_station(12, openedOn="2099-01-01"),
        ],
    )
    # redemptions: 19 clean, one of 0 minutes -> 1 of 20 quarantined: 5%, not above the bar
    land(
        data,
        "provincial",
        "redemptions",
        [provincial_redemption(i) for i in range(1, 20)] + [provincial_redemption(20, minutes=0)],
    )
    result = dg.materialize(
        staged_assets.assets,
        selection=["staged/stations", "staged/redemptions"],
        resources={"pipeline_settings": PipelineSettings(data_dir=str(data))},
    )
    assert result.success
    evaluations = {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }
    assert [key for key, e in evaluations.items() if not e.passed] == [
        ("staged/stations", "quarantined_rows")
    ]

    stations = evaluations[("staged/stations", "quarantined_rows")]
    assert stations.severity == dg.AssetCheckSeverity.WARN
    assert {name: value.value for name, value in stations.metadata.items()} == {
        "quarantined": 2,
        "quarantined_share": 0.166667,
        "rule_future_date": 1,
        "rule_region_outside_province": 1,
    }

    redemptions = evaluations[("staged/redemptions", "quarantined_rows")]
    assert redemptions.passed
    assert {name: value.value for name, value in redemptions.metadata.items()} == {
        "quarantined": 1,
        "quarantined_share": 0.05,
        "rule_hours_out_of_range": 1,
    }


def test_a_validation_keeps_no_copy_of_the_frame(staged):
    """GX's execution engine would keep the last batch (a prepared copy of the whole table)
    and its metrics until the same table is validated again: a sync carried every staged
    table's copy into the resolution. The runner drops them after each run."""
    import gc

    def frames() -> set[int]:
        gc.collect()
        return {id(o) for o in gc.get_objects() if isinstance(o, pd.DataFrame)}

    gx_runner.validate("volunteers", staged["volunteers"])  # the definition made and cached
    before = frames()
    result = gx_runner.validate("volunteers", staged["volunteers"])
    assert result.success
    assert frames() - before == set()
    engine = gx_runner._validation_definition("volunteers").batch_definition.data_asset.datasource.get_execution_engine()
    assert not engine.batch_manager.batch_data_cache and not engine.batch_manager.batch_cache
