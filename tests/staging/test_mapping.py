"""Staging maps hand-written source rows (landed in the raw layout) to the canonical tables."""

from __future__ import annotations

import datetime as dt
import os
import stat

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipelines.name_seal import unseal_name, unseal_suffix, unsealed_names
from pipelines.schemas import arrow_schema, table_names
from pipelines.staging import read_staged, stage_all, stage_table, staged_path

from .rawpages import (
    AS_OF,
    expected_hash,
    land,
    national_service,
    national_volunteer,
    provincial_log,
    provincial_volunteer,
    resident_id,
    settings_for,
)

MALE_ID = resident_id("52010219900307123")  # born 1990-03-07, odd sequence digit: male
FEMALE_ID = resident_id("52010219851111002")  # born 1985-11-11, even: female


@pytest.fixture
def settings(tmp_path):
    return settings_for(tmp_path / "data")


def test_national_volunteer_is_mapped_hashed_and_never_clear(settings):
    land(
        settings.data_dir,
        "national",
        "volunteers",
        [national_volunteer("0001", MALE_ID, albp0020="520114")],
    )
    result = stage_table("volunteers", settings, as_of=AS_OF)

    staged = read_staged(settings, "volunteers")
    assert result.rows == 1 and result.quarantined == 0
    row = staged.iloc[0]
    assert (row["source"], row["source_id"], row["row_id"]) == ("national", "V0001", "0001")
    # kept sealed (pipelines/name_seal.py): no clear full name outside the raw landing
    assert row["name"] != "张小明" and unseal_name(row["name"], settings.pii_hash_key) == "张小明"
    assert row["cert_type"] == "resident_id"
    assert row["cert_hash"] == expected_hash(MALE_ID)
    assert bool(row["cert_valid"]) and not bool(row["cert_masked"])
    # the last four sealed too: beside the birth date, county and first four they are the number
    assert row["cert_prefix4"] == MALE_ID[:4] and row["cert_suffix4"] != MALE_ID[-4:]
    assert unseal_suffix(row["cert_suffix4"], settings.pii_hash_key) == MALE_ID[-4:]
    assert row["gender"] == "M" and row["birth_date"] == dt.date(1990, 3, 7)
    assert row["phone_hash"] == expected_hash("13812345678")
    assert (row["phone_prefix3"], row["phone_suffix4"]) == ("138", "5678")
    assert row["region_code"] == "520115"  # retired 520114 -> its successor
    assert row["registered_on"] == dt.date(2020, 5, 1)
    assert row["status"] == "active" and row["source_hours"] == 12.5
    assert row["updated_at"] == pd.Timestamp("2026-06-01T02:00:00Z")

    # the clear number and phone are nowhere in the staged file
    raw_bytes = staged_path(settings, "volunteers").read_bytes()
    table = pq.read_table(staged_path(settings, "volunteers"))
    text = " ".join(str(v) for column in table.columns for v in column.to_pylist())
    for secret in (MALE_ID, MALE_ID[:17], "13812345678"):
        assert secret not in text
        assert secret.encode() not in raw_bytes


def test_staged_files_have_the_canonical_schema_and_private_permissions(settings):
    land(settings.data_dir, "national", "volunteers", [national_volunteer("0001", MALE_ID)])
    stage_all(settings, as_of=AS_OF)
    for table in table_names():
        path = staged_path(settings, table)
        assert pq.read_schema(path).remove_metadata() == arrow_schema(table), table
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(settings.staged_dir).st_mode) == 0o700
    # streams that landed nothing give empty tables, not errors
    assert len(read_staged(settings, "redemptions")) == 0


def test_latest_version_of_a_row_wins_whatever_the_landing_order(settings):
    newer = national_volunteer(
        "0001", MALE_ID, albp0003="张大明", updated_at="2026-06-02T09:00:00+08:00"
    )
    older = national_volunteer(
        "0001", MALE_ID, albp0003="张小明", updated_at="2026-06-01T09:00:00+08:00"
    )
    land(settings.data_dir, "national", "volunteers", [newer], sync_id="a")
    # an overlapping later sync landed the older version again (e.g. a replayed window)
    land(settings.data_dir, "national", "volunteers", [older], sync_id="b", fetched_at=AS_OF)
    stage_table("volunteers", settings, as_of=AS_OF)
    staged = read_staged(settings, "volunteers")
    assert unsealed_names(staged["name"], settings.pii_hash_key).tolist() == ["张大明"]


def test_provincial_volunteer_legacy_fullwidth_number_and_stated_conflict(settings):
    legacy15 = MALE_ID[:6] + MALE_ID[8:17]  # the 15-digit form of the same person
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in FEMALE_ID)
    rows = [
        provincial_volunteer(1, legacy15, sex="女"),  # stated 女 but the ID says male
        provincial_volunteer(2, fullwidth, birthday="19851111"),
        provincial_volunteer(
            3, "5201**********123X", sex="男", birthday="1990/01/02", mobile="139****1111"
        ),
    ]
    land(settings.data_dir, "provincial", "volunteers", rows)
    result = stage_table("volunteers", settings, as_of=AS_OF)
    staged = read_staged(settings, "volunteers").set_index("source_id")

    assert result.quarantined == 0
    assert staged.loc["1", "cert_hash"] == expected_hash(MALE_ID)  # legacy converted, then hashed
    assert staged.loc["1", "gender"] == "M" and bool(staged.loc["1", "gender_conflict"])
    assert staged.loc["2", "cert_hash"] == expected_hash(FEMALE_ID)
    assert staged.loc["2", "birth_date"] == dt.date(1985, 11, 11)
    assert not bool(staged.loc["2", "birth_conflict"])
    masked = staged.loc["3"]
    assert (
        pd.isna(masked["cert_hash"])
        and bool(masked["cert_masked"])
        and not bool(masked["cert_valid"])
    )
    assert (masked["cert_prefix4"], unseal_suffix(masked["cert_suffix4"], settings.pii_hash_key)) == ("5201", "123X")
    assert masked["gender"] == "M" and masked["birth_date"] == dt.date(1990, 1, 2)  # as stated
    assert pd.isna(masked["phone_hash"]) and bool(masked["phone_masked"])
    assert staged.loc["1", "phone_hash"] == expected_hash("13900001111")
    assert staged.loc["1", "region_code"] == "520102"  # 12-digit areaCode cut to the county
    assert staged.loc["1", "registered_on"] == dt.date(2021, 3, 4)  # Beijing date of regTime
    assert staged.loc["1", "status"] == "active" and staged.loc["1", "source_hours"] == 1.5
    assert result.soft_flags.get("gender_conflict") == 1
    assert result.soft_flags.get("cert_masked") == 1


def test_invalid_id_is_kept_flagged_and_counted_not_quarantined(settings):
    typo = MALE_ID[:10] + str((int(MALE_ID[10]) + 1) % 10) + MALE_ID[11:]
    land(settings.data_dir, "national", "volunteers", [national_volunteer("0001", typo)])
    result = stage_table("volunteers", settings, as_of=AS_OF)
    staged = read_staged(settings, "volunteers")
    assert result.quarantined == 0 and len(staged) == 1
    assert not bool(staged.loc[0, "cert_valid"]) and staged.loc[0, "cert_hash"] == expected_hash(
        typo
    )
    assert result.soft_flags["cert_invalid"] == 1


def test_services_of_both_sources(settings):
    land(
        settings.data_dir,
        "national",
        "service_records",
        [
            national_service("R1", origin="provincial:55"),
            national_service(
                "R2", albx0174="2", isdelete=1, updated_at="2026-06-03T10:00:00+08:00"
            ),
            national_service("R3", albx0174="0"),
        ],
    )
    land(
        settings.data_dir,
        "provincial",
        "service_logs",
        [
            provincial_log(55, nationalRecordId="R1"),
            provincial_log(56, status="待审核", serviceDate="20260306"),
        ],
    )
    result = stage_table("services", settings, as_of=AS_OF)
    staged = read_staged(settings, "services").set_index(["source", "source_id"])
    assert result.rows_per_source == {"national": 3, "provincial": 2}

    r1 = staged.loc[("national", "R1")]
    assert (
        r1["volunteer_source_id"] == "V1"
        and r1["project_source_id"] == "P1"
        and r1["org_source_id"] == "T1"
    )
    assert r1["start_at"] == pd.Timestamp("2026-03-01T23:00:00Z")
    assert r1["service_date"] == dt.date(2026, 3, 2)  # the Beijing date the service started
    assert r1["hours"] == 3.5 and bool(r1["is_effective"]) and r1["status"] == "effective"
    assert r1["origin_log_id"] == "55"
    assert not bool(staged.loc[("national", "R2"), "is_effective"])  # deleted never counts
    assert bool(staged.loc[("national", "R2"), "is_deleted"])
    assert not bool(staged.loc[("national", "R3"), "is_effective"])

    p55 = staged.loc[("provincial", "55")]
    assert p55["hours"] == 1.5 and p55["service_date"] == dt.date(2026, 3, 5)
    assert (
        p55["volunteer_source_id"] == "7"
        and p55["national_record_id"] == "R1"
        and bool(p55["is_effective"])
    )
    p56 = staged.loc[("provincial", "56")]
    assert p56["status"] == "pending" and not bool(p56["is_effective"])
    assert p56["service_date"] == dt.date(2026, 3, 6)


def test_organizations_projects_stations_and_redemptions(settings):
    data = settings.data_dir
    land(
        data,
        "national",
        "teams",
        [
            {
                "id": "1",
                "albe0001": "T1",
                "albe0002": "贵阳市志愿者协会",
                "albe0003": "2",
                "albe0008": "51520100MJ0000000X",
                "albe0012": "520102",
                "albe0014": ["0010", "0001", "9999"],
                "albe0019": "13800000000",
                "albe0026": "1",
                "albe0046": "2015-01-01",
                "albe0056": 40,
                "updated_at": "2026-06-01T10:00:00+08:00",
                "isdelete": 0,
            }
        ],
    )
    land(
        data,
        "provincial",
        "teams",
        [
            {
                "id": 9,
                "teamName": "貴州省婦聯(lián)",
                "creditCode": None,
                "regStatus": "已备案",
                "level": "省级",
                "hub": True,
                "areaCode": "520102",
                "serviceTypes": "助残,应急,未知类",
                "foundDate": "2016/02/03",
                "leader": "王五",
                "leaderMobile": "138-0000-0000",
                "memberCount": 12,
                "nationalTeamNo": "T1",
                "creditStatus": "良好",
                "status": "退出",
                "updateTime": "2026-06-01 10:00:00",
                "isDeleted": False,
            }
        ],
    )
    land(
        data,
        "national",
        "projects",
        [
            {
                "id": "1",
                "albx0001": "P1",
                "albx0002": "关爱留守儿童",
                "albe0001": "T1",
                "albx0009": "0003",
                "albx0015": "2",
                "albx0021": "520102",
                "albx0031": "2026-01-02",
                "albx0040": "脱贫攻坚夜校",
                "updated_at": "2026-06-01T10:00:00+08:00",
                "isdelete": 0,
            }
        ],
    )
    land(
        data,
        "provincial",
        "activities",
        [
            {
                "id": 11,
                "teamId": 9,
                "title": "暖冬行动",
                "serviceType": "扶贫,助老",
                "startTime": "2026-01-05 09:00:00",
                "endTime": "2026-01-05 12:00:00",
                "areaCode": "520102",
                "brandProject": "暖冬行动",
                "stationId": 4,
                "updateTime": "2026-06-01 10:00:00",
                "isDeleted": False,
            }
        ],
    )
    land(
        data,
        "provincial",
        "stations",
        [
            {
                "id": 4,
                "name": "云岩区志愿服务站",
                "stationType": "站",
                "hostType": "社区",
                "areaCode": "520103",
                "teamId": 9,
                "openedOn": "20200101",
                "updateTime": "2026-06-01 10:00:00",
                "isDeleted": False,
            }
        ],
    )
    land(
        data,
        "provincial",
        "redemptions",
        [
            {
                "id": 1,
                "userId": 7,
                "minutes": 120,
                "purpose": "养老服务",
                "redeemedAt": "2026-05-01 08:00:00",
                "updateTime": "2026-06-01 10:00:00",
                "isDeleted": False,
            }
        ],
    )
    results = stage_all(settings, as_of=AS_OF)
    assert all(result.quarantined == 0 for result in results.values())

    orgs = read_staged(settings, "organizations").set_index("source")
    national = orgs.loc["national"]
    assert national["registration_status"] == "registered" and national["status"] == "active"
    assert national["categories"] == "社区服务,助老助残"  # national code order
    assert national["unmapped_categories"] == "9999"
    assert national["contact_phone_hash"] == expected_hash("13800000000")
    assert national["founded_on"] == dt.date(2015, 1, 1) and national["member_count"] == 40
    provincial = orgs.loc["provincial"]
    assert provincial["name"] == "贵州省妇联"
    assert provincial["registration_status"] == "filed" and provincial["status"] == "exited"
    assert (
        provincial["categories"] == "助老助残,应急救援"
        and provincial["unmapped_categories"] == "未知类"
    )
    assert (
        bool(provincial["is_hub"])
        and provincial["level"] == "省级"
        and provincial["national_team_no"] == "T1"
    )
    assert provincial["founded_on"] == dt.date(2016, 2, 3)
    assert results["organizations"].soft_flags["unmapped_category"] == 2

    projects = read_staged(settings, "projects").set_index("source")
    assert (
        projects.loc["national", "category"] == "支教助学"
        and projects.loc["national", "brand"] == "夜校"
    )
    assert (
        projects.loc["national", "org_source_id"] == "T1"
        and projects.loc["national", "status"] == "ongoing"
    )
    assert (
        projects.loc["provincial", "category"] == "扶贫减贫"
        and projects.loc["provincial", "brand"] == "暖冬行动"
    )
    assert projects.loc["provincial", "start_at"] == pd.Timestamp("2026-01-05T01:00:00Z")
    assert projects.loc["provincial", "station_source_id"] == "4"

    station = read_staged(settings, "stations").iloc[0]
    assert (station["station_type"], station["org_source_id"], station["opened_on"]) == (
        "站",
        "9",
        dt.date(2020, 1, 1),
    )
    redemption = read_staged(settings, "redemptions").iloc[0]
    assert redemption["hours"] == 2.0 and redemption["redeemed_at"] == pd.Timestamp(
        "2026-05-01T00:00:00Z"
    )


def test_an_origin_names_a_provincial_log_only_after_its_prefix(settings):
    """`origin` is 'provincial:<logId>' for a record pushed up (contract): the prefix's case,
    spaces and a full-width colon as written; a value without it (a bare number, another
    origin) names no log, or a record would be joined to an unrelated service."""
    origins = {"R1": "provincial:55", "R2": "PROVINCIAL:56", "R3": "Provincial：57", "R4": " provincial: 58 ",
               "R5": "59", "R6": "app", "R7": "provincial:"}
    land(settings.data_dir, "national", "service_records",
         [national_service(record, origin=origin) for record, origin in origins.items()])
    stage_table("services", settings, as_of=AS_OF)
    staged = read_staged(settings, "services").set_index("source_id")["origin_log_id"]
    assert {record: (None if pd.isna(log) else log) for record, log in staged.items()} == {
        "R1": "55", "R2": "56", "R3": "57", "R4": "58", "R5": None, "R6": None, "R7": None}
