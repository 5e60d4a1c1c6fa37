"""Rows that break a rule go to quarantine (and only there), under the right rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from pipelines.quality import gx_runner
from pipelines.quality.rules import RULE_ORDER
from pipelines.staging import (
    combine_quarantine,
    read_quarantine,
    read_staged,
    read_staged_head,
    stage_all,
    stage_table,
)

from .rawpages import (
    AS_OF,
    land,
    national_service,
    national_team,
    national_volunteer,
    provincial_log,
    provincial_station,
    provincial_team,
    provincial_volunteer,
    resident_id,
    settings_for,
)

NUMBER = resident_id("52010219900307123")


@pytest.fixture
def settings(tmp_path):
    return settings_for(tmp_path / "data")


def quarantined(settings) -> dict[tuple[str, str, str], str]:
    frame = read_quarantine(settings)
    return {(row.source, row.entity, row.source_id): row.rule for row in frame.itertuples()}


def test_each_rule_sends_its_row_to_quarantine_and_clean_rows_stay(settings):
    data = settings.data_dir
    land(
        data,
        "national",
        "volunteers",
        [
            national_volunteer("0001", NUMBER),
            national_volunteer("0002", NUMBER, albp0003="  "),  # no name
            national_volunteer("0003", NUMBER, albp0020="110101"),  # Beijing
            national_volunteer("0004", NUMBER, albp0034="2027-01-01"),  # registered after the sync
        ],
    )
    land(
        data,
        "provincial",
        "volunteers",
        [
            provincial_volunteer(1, NUMBER),
            provincial_volunteer(2, NUMBER, areaCode="330102001001"),  # Hangzhou, 12 digits
        ],
    )
    land(
        data,
        "national",
        "service_records",
        [
            national_service("R1"),
            national_service(
                "R2", albx0181="2026-03-02T10:00:00+08:00", albx0182="2026-03-02T08:00:00+08:00"
            ),
            national_service("R3", albx0172=30),
            national_service("R4", albx0172=0),
            national_service("R5", albx0175=None),
            national_service(
                "R6", albx0181="2026-08-01T09:00:00+08:00", albx0182="2026-08-01T10:00:00+08:00"
            ),
            national_service("R7", albx0181="not a time"),
        ],
    )
    land(
        data,
        "provincial",
        "service_logs",
        [
            provincial_log(1),
            provincial_log(2, durationMinutes=-30),
            provincial_log(3, durationMinutes=25 * 60),
            provincial_log(4, serviceDate="2026-12-31"),
            provincial_log(5, userId=None),
        ],
    )
    land(
        data,
        "provincial",
        "teams",
        [
            {
                "id": 1,
                "teamName": None,
                "regStatus": "未登记",
                "areaCode": "520102",
                "status": "正常",
                "updateTime": "2026-06-01 10:00:00",
                "isDeleted": False,
            }
        ],
    )
    results = stage_all(settings, as_of=AS_OF)

    assert quarantined(settings) == {
        ("national", "volunteer", "V0002"): "missing_required",
        ("national", "volunteer", "V0003"): "region_outside_province",
        ("national", "volunteer", "V0004"): "future_date",
        ("provincial", "volunteer", "2"): "region_outside_province",
        ("national", "service", "R2"): "end_before_start",
        ("national", "service", "R3"): "hours_out_of_range",
        ("national", "service", "R4"): "hours_out_of_range",
        ("national", "service", "R5"): "missing_required",
        ("national", "service", "R6"): "future_date",
        ("national", "service", "R7"): "unparseable_date",
        ("provincial", "service", "2"): "hours_out_of_range",
        ("provincial", "service", "3"): "hours_out_of_range",
        ("provincial", "service", "4"): "future_date",
        ("provincial", "service", "5"): "missing_required",
        ("provincial", "organization", "1"): "missing_required",
    }
    # a quarantined row is absent from its staged table; the clean ones are there
    volunteers = read_staged(settings, "volunteers")
    assert set(zip(volunteers["source"], volunteers["source_id"])) == {
        ("national", "V0001"),
        ("provincial", "1"),
    }
    services = read_staged(settings, "services")
    assert set(zip(services["source"], services["source_id"])) == {
        ("national", "R1"),
        ("provincial", "1"),
    }
    assert results["services"].quarantined_per_rule == {
        "end_before_start": 1,
        "future_date": 2,
        "hours_out_of_range": 4,
        "missing_required": 2,
        "unparseable_date": 1,
    }
    assert len(read_staged(settings, "organizations")) == 0


def test_detail_is_readable_and_the_record_masked(settings):
    land(
        settings.data_dir,
        "national",
        "volunteers",
        [national_volunteer("0009", NUMBER, albp0020="110101")],
    )
    stage_table("volunteers", settings, as_of=AS_OF)
    row = combine_quarantine(settings).iloc[0]
    # the rule and the field, never the value (it may be anything a person typed)
    assert row["detail"] == "region_code (albp0020) is outside Guizhou (does not start with 52)"
    record = json.loads(row["record"])
    assert record["albp0029"] == "V0009" and record["albp0020"] == "110101"
    for clear in (NUMBER, "13812345678", "张小明"):
        assert clear not in row["record"] and clear not in row["detail"]
    assert record["albp0005"].startswith(NUMBER[:4]) and record["albp0005"].endswith(NUMBER[-4:])
    assert record["albp0003"].startswith("张")


def test_a_quarantined_account_s_birth_date_keeps_its_year_alone(settings):
    """The record kept the birthday in full beside the number's first and last four and the
    county: 5201 + 02 (the county) + the birthday + the last four is the whole number. It
    keeps the year, as dim_volunteer does (birth_year)."""
    for birthday in ("1990-03-07", "1990/03/07", "19900307"):
        land(
            settings.data_dir,
            "provincial",
            "volunteers",
            [provincial_volunteer(7, NUMBER, areaCode="530102001001", birthday=birthday)],
        )
        stage_table("volunteers", settings, as_of=AS_OF)
        row = combine_quarantine(settings).iloc[0]
        record = json.loads(row["record"])
        assert record["birthday"] == birthday[:4] + "".join("*" if c.isdigit() else c for c in birthday[4:])
        assert "0307" not in row["record"].replace("-", "").replace("/", "")
        assert record["certNo"] == NUMBER[:4] + "*" * 10 + NUMBER[-4:]


def test_a_station_of_a_type_outside_the_contract_s_list_is_quarantined(settings):
    """dim_station.station_type is 站, 点 or 岗 (the contract's enum); a station typed 亭 was
    published as one, where an evaluator or a log status outside its list is quarantined."""
    land(
        settings.data_dir,
        "provincial",
        "stations",
        [provincial_station(1, stationType="亭"), provincial_station(2, stationType="岗"),
         provincial_station(3, stationType=" 点 ")],
    )
    stage_all(settings, as_of=AS_OF)
    assert quarantined(settings) == {("provincial", "station", "1"): "invalid_value"}
    staged = read_staged(settings, "stations")
    assert dict(zip(staged["source_id"], staged["station_type"])) == {"2": "岗", "3": "点"}


def test_a_row_breaking_several_rules_gets_the_first_in_order_and_names_the_rest(settings):
    # outside the province, ends before it starts, and 30 hours: one primary rule
    land(
        settings.data_dir,
        "national",
        "service_records",
        [
            national_service(
                "R1",
                albx0172=30,
                albx0181="2026-03-02T10:00:00+08:00",
                albx0182="2026-03-02T08:00:00+08:00",
            )
        ],
    )
    stage_table("services", settings, as_of=AS_OF)
    row = combine_quarantine(settings).iloc[0]
    assert RULE_ORDER.index("end_before_start") < RULE_ORDER.index("hours_out_of_range")
    assert row["rule"] == "end_before_start"
    assert "also broke: hours_out_of_range (hours (albx0172) out of range" in row["detail"]
    assert "30" not in row["detail"].replace("albx0", "")


def test_deleted_rows_are_not_quarantined_for_their_content(settings):
    land(
        settings.data_dir,
        "national",
        "service_records",
        [national_service("R1", albx0172=30, isdelete=1)],
    )
    result = stage_table("services", settings, as_of=AS_OF)
    assert result.quarantined == 0
    staged = read_staged(settings, "services")
    assert staged["source_id"].tolist() == ["R1"] and bool(staged.loc[0, "is_deleted"])
    assert not bool(staged.loc[0, "is_effective"])


def test_a_deleted_account_or_team_that_is_no_one_of_guizhou_s_stays_in_quarantine(settings):
    """Deleted volunteers and teams are published (status `deleted`): a tombstone with no name,
    or of a county outside Guizhou, was staged and published as a nameless person or a team of
    Chengdu; by the contract it goes to quarantine and nowhere else. A deleted service still
    is not judged by its content (it is published nowhere)."""
    other = resident_id("52010219850101123")
    land(
        settings.data_dir,
        "provincial",
        "volunteers",
        [
            provincial_volunteer(1, NUMBER, realName="", isDeleted=True),
            provincial_volunteer(2, other, areaCode="530102001001", isDeleted=True),
            provincial_volunteer(3, resident_id("52010219860101123"), isDeleted=True),  # a clean tombstone
        ],
    )
    land(
        settings.data_dir,
        "provincial",
        "teams",
        [provincial_team(11, teamName="", isDeleted=True), provincial_team(12, areaCode="510104", isDeleted=True)],
    )
    land(settings.data_dir, "national", "teams", [national_team("0001", albe0002=" ", isdelete=1)])
    land(settings.data_dir, "national", "service_records", [national_service("R1", albx0175="", isdelete=1)])
    stage_all(settings, as_of=AS_OF)
    assert quarantined(settings) == {
        ("provincial", "volunteer", "1"): "missing_required",
        ("provincial", "volunteer", "2"): "region_outside_province",
        ("provincial", "organization", "11"): "missing_required",
        ("provincial", "organization", "12"): "region_outside_province",
        ("national", "organization", "T0001"): "missing_required",
    }
    assert read_staged(settings, "volunteers")["source_id"].tolist() == ["3"]
    assert read_staged(settings, "organizations").empty
    assert read_staged(settings, "services")["source_id"].tolist() == ["R1"]


def test_invalid_id_and_gender_conflict_are_soft(settings):
    typo = NUMBER[:-2] + str((int(NUMBER[-2]) + 1) % 10) + NUMBER[-1]
    land(
        settings.data_dir,
        "provincial",
        "volunteers",
        [provincial_volunteer(1, typo), provincial_volunteer(2, NUMBER, sex="女")],
    )
    result = stage_table("volunteers", settings, as_of=AS_OF)
    assert result.quarantined == 0 and result.rows == 2
    assert result.soft_flags["cert_invalid"] == 1 and result.soft_flags["gender_conflict"] == 1


def test_a_status_the_source_did_not_send_is_staged_unknown_not_quarantined(settings):
    # albp0090 and the provincial team's status are optional in the interfaces; the contract's
    # missing_required covers a name and a service's volunteer only. albe0026 is required
    # there, but a null one is read like the provincial team's.
    without_status = national_volunteer("0001", NUMBER)
    del without_status["albp0090"]
    team_without_status = provincial_team(1)
    del team_without_status["status"]
    land(
        settings.data_dir,
        "national",
        "volunteers",
        [
            without_status,
            national_volunteer("0002", resident_id("52010219880512321"), albp0090=None),
            national_volunteer("0003", resident_id("52010219870412321"), albp0090="9"),  # unreadable
        ],
    )
    land(settings.data_dir, "provincial", "teams", [team_without_status, provincial_team(2, status=None)])
    land(settings.data_dir, "national", "teams", [national_team("0001", albe0026=None)])
    stage_all(settings, as_of=AS_OF)

    assert quarantined(settings) == {("national", "volunteer", "V0003"): "invalid_value"}
    volunteers = read_staged(settings, "volunteers").set_index("source_id")
    assert set(volunteers.index) == {"V0001", "V0002"}
    assert volunteers["status"].isna().all()
    teams = read_staged(settings, "organizations").set_index(["source", "source_id"])
    assert set(teams.index) == {("provincial", "1"), ("provincial", "2"), ("national", "T0001")}
    assert teams["status"].isna().all()
    # nor does a blocking expectation stop the sync for them
    for table, frame in (("volunteers", volunteers.reset_index()), ("organizations", teams.reset_index())):
        assert gx_runner.validate(table, frame).failed("blocking") == [], table


def test_first_seen_is_kept_and_a_row_fixed_at_the_source_leaves(settings):
    data = settings.data_dir
    first_fetch = datetime(2026, 6, 2, tzinfo=UTC)
    land(
        data,
        "national",
        "service_records",
        [national_service("R1", albx0172=30), national_service("R2", albx0172=40)],
        sync_id="s1",
        fetched_at=first_fetch,
    )
    stage_table("services", settings, as_of=AS_OF)
    combine_quarantine(settings)
    before = read_quarantine(settings).set_index("source_id")
    assert before.loc["R1", "first_seen_at"] == pd.Timestamp(first_fetch)

    # next sync: R1 fixed at the source, R2 changed but still broken
    second_fetch = first_fetch + timedelta(days=1)
    land(
        data,
        "national",
        "service_records",
        [
            national_service("R1", albx0172=3, updated_at="2026-06-02T12:00:00+08:00"),
            national_service("R2", albx0172=50, updated_at="2026-06-02T12:00:00+08:00"),
        ],
        sync_id="s2",
        fetched_at=second_fetch,
    )
    stage_table("services", settings, as_of=AS_OF)
    after = combine_quarantine(settings).set_index("source_id")
    assert list(after.index) == ["R2"]
    assert after.loc["R2", "first_seen_at"] == pd.Timestamp(first_fetch)
    assert after.loc["R2", "last_seen_at"] == pd.Timestamp(second_fetch)
    assert after.loc["R2", "detail"].startswith("hours (albx0172) out of range")
    assert "R1" in set(read_staged(settings, "services")["source_id"])


def test_restaging_without_change_writes_the_same_quarantine(settings):
    land(
        settings.data_dir,
        "national",
        "service_records",
        [
            national_service("R1", albx0172=30),
            national_service(
                "R2", albx0181="2026-08-01T09:00:00+08:00", albx0182="2026-08-01T10:00:00+08:00"
            ),
        ],
    )
    stage_all(settings, as_of=AS_OF)
    first = read_quarantine(settings)
    # a day later, nothing changed at the source: the same rows, rules, details and times
    stage_all(settings, as_of=AS_OF + timedelta(days=1))
    pd.testing.assert_frame_equal(first, read_quarantine(settings))
    assert first["rule"].tolist() == ["hours_out_of_range", "future_date"]


def test_an_unreadable_change_time_quarantines_the_row_and_nothing_else(settings):
    land(
        settings.data_dir,
        "provincial",
        "service_logs",
        [
            provincial_log(1),
            provincial_log(2, updateTime="yesterday"),
        ],
    )
    result = stage_table("services", settings, as_of=AS_OF)
    assert result.rows == 1
    frame = result.quarantine
    assert frame[["source_id", "rule"]].values.tolist() == [["2", "invalid_value"]]
    assert frame["detail"].iloc[0] == "updateTime: not a readable change time"


def test_a_preview_reads_the_first_rows_only_and_an_unstaged_table_is_empty(settings):
    assert read_staged_head(settings, "services", 5).empty
    land(settings.data_dir, "national", "service_records",
         [national_service(f"R{i}", albx0172=30, isdelete=1) for i in range(7)])
    stage_table("services", settings, as_of=AS_OF)
    head = read_staged_head(settings, "services", 5)
    assert head.equals(read_staged(settings, "services").head(5)) and len(head) == 5
