"""Hand-written source rows landed in the raw layout, for the staging tests.

The page files have exactly the landing columns (pipelines/landing.py PAGE_SCHEMA), so the
staging code reads them as it reads pages the connectors landed.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path

from stdnum.cn import ric, uscc

from pipelines.config import Settings
from pipelines.landing import page_table, write_page
from pipelines.sources import STREAMS

TEST_KEY = "staging-test-key-of-at-least-32-bytes"
FETCHED = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)
AS_OF = datetime(2026, 7, 1, 0, 0, tzinfo=UTC)  # 2026-07-01 08:00 Beijing


def settings_for(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, pii_hash_key=TEST_KEY)


def expected_hash(value: str) -> str:
    """The contract's id_hash: lowercase hex HMAC-SHA256 under PII_HASH_KEY (UTF-8)."""
    return hmac.new(TEST_KEY.encode("utf-8"), value.encode("utf-8"), sha256).hexdigest()


def resident_id(first17: str) -> str:
    """A valid 18-character resident ID from its first 17 digits."""
    # stdnum computes the check character of a full number: give it a placeholder
    return first17 + ric.calc_check_digit(first17 + "0")


def land(
    data_dir: Path,
    source: str,
    stream: str,
    rows: list[dict],
    *,
    sync_id: str = "sync-1",
    fetched_at: datetime = FETCHED,
    page: int = 1,
) -> Path:
    """Land one raw page of `rows` (source JSON rows) for a stream, the way the landing
    writes a page (pipelines.landing.page_table: ids, change times and problems judged)."""
    table = page_table(STREAMS[source][stream], rows, sync_id, fetched_at, page)
    return write_page(data_dir / "raw" / source / stream / sync_id, page, table)


def national_volunteer(row_id: str, number: str, **fields) -> dict:
    row = {
        "id": row_id,
        "albp0029": f"V{row_id}",
        "albp0003": "张小明",
        "albp0004": "01",
        "albp0005": number,
        "albp0006": "1",
        "albp0010": "13812345678",
        "albp0020": "520102",
        "albp0026": 1,
        "albp0034": "2020-05-01",
        "albp0089": 12.5,
        "albp0090": "1",
        "albp0093": 1.0,
        "albp0094": 2.0,
        "share_consent": True,
        "updated_at": "2026-06-01T10:00:00+08:00",
        "isdelete": 0,
    }
    row.update(fields)
    return row


def provincial_volunteer(row_id: int, number: str, **fields) -> dict:
    row = {
        "id": row_id,
        "realName": "李 娜",
        "certType": "身份证",
        "certNo": number,
        "sex": "女",
        "birthday": None,
        "mobile": "+86 139 0000 1111",
        "areaCode": "520102001001",
        "regTime": "2021-03-04 23:30:00",
        "skills": "急救,摄影",
        "serviceMinutes": 90,
        "starLevel": 0,
        "nationalVolunteerNo": None,
        "updateTime": "2026-06-01 10:00:00",
        "isDeleted": False,
    }
    row.update(fields)
    return row


def national_service(row_id: str, **fields) -> dict:
    row = {
        "id": row_id,
        "albx0175": "V1",
        "albx0001": "P1",
        "albe0001": "T1",
        "albx0181": "2026-03-02T07:00:00+08:00",
        "albx0182": "2026-03-02T10:30:00+08:00",
        "albx0172": 3.5,
        "albx0173": "1",
        "albx0174": "2",
        "origin": None,
        "updated_at": "2026-06-01T10:00:00+08:00",
        "isdelete": 0,
    }
    row.update(fields)
    return row


def provincial_log(row_id: int, **fields) -> dict:
    row = {
        "id": row_id,
        "userId": 7,
        "teamId": 3,
        "activityId": 11,
        "serviceDate": "2026/03/05",
        "durationMinutes": 90,
        "status": "已通过",
        "nationalRecordId": None,
        "updateTime": "2026-06-01 10:00:00",
        "isDeleted": False,
    }
    row.update(fields)
    return row


def uscc_code(first17: str) -> str:
    """A valid 18-character unified social credit code (GB 32100) from its first 17."""
    return first17 + uscc.calc_check_digit(first17)


# The other streams, one builder each, with the field names of the two interfaces
# (schemas/sources/national.openapi.yaml Team, Project, Evaluation; provincial.openapi.yaml
# Team, Activity, Station, Redemption). Defaults are a live, clean row.


def national_team(row_id: str, **fields) -> dict:
    row = {
        "id": row_id,
        "albe0001": f"T{row_id}",
        "albe0002": "贵阳市助老志愿服务协会",
        "albe0003": "2",
        "albe0008": None,
        "albe0009": "贵阳市民政局",
        "albe0011": None,
        "albe0012": "520102",
        "albe0014": ["0010", "0001"],
        "albe0018": "刘一",
        "albe0019": "13600001111",
        "albe0026": "1",
        "albe0046": "2015-03-01",
        "albe0056": 30,
        "updated_at": "2026-06-01T10:00:00+08:00",
        "isdelete": 0,
    }
    row.update(fields)
    return row


def provincial_team(row_id: int, **fields) -> dict:
    row = {
        "id": row_id,
        "teamName": "南明区红十字志愿服务队",
        "creditCode": None,
        "regStatus": "已登记",
        "level": "县级",
        "hub": False,
        "areaCode": "520102001001",
        "serviceTypes": "助残,应急",
        "foundDate": "2018/05/06",
        "leader": "王五",
        "leaderMobile": "136-0000-1111",
        "memberCount": 12,
        "nationalTeamNo": None,
        "creditStatus": "良好",
        "status": "正常",
        "updateTime": "2026-06-01 10:00:00",
        "isDeleted": False,
    }
    row.update(fields)
    return row


def national_project(row_id: str, **fields) -> dict:
    row = {
        "id": row_id,
        "albx0001": f"P{row_id}",
        "albx0002": "社区健康义诊",
        "albe0001": "T1",
        "albx0009": "0004",
        "albx0015": "2",
        "albx0021": "520102",
        "albx0031": "2026-01-02",
        "albx0040": "三关爱",
        "updated_at": "2026-06-01T10:00:00+08:00",
        "isdelete": 0,
    }
    row.update(fields)
    return row


def provincial_activity(row_id: int, **fields) -> dict:
    row = {
        "id": row_id,
        "teamId": 3,
        "title": "乡村支教",
        "serviceType": "支教,助老",
        "startTime": "2026-05-01 08:00:00",
        "endTime": "2026-05-01 12:00:00",
        "areaCode": "520102001001",
        "brandProject": "西部计划",
        "stationId": None,
        "updateTime": "2026-06-01 10:00:00",
        "isDeleted": False,
    }
    row.update(fields)
    return row


def national_evaluation(row_id: str, **fields) -> dict:
    row = {
        "id": row_id,
        "albe0001": "T1",
        "evaluator": "registration_authority",
        "score": 90,
        "period": "2025",
        "updated_at": "2026-06-01T10:00:00+08:00",
        "isdelete": 0,
    }
    row.update(fields)
    return row


def provincial_station(row_id: int, **fields) -> dict:
    row = {
        "id": row_id,
        "name": "南明区新华路志愿服务站",
        "stationType": "站",
        "hostType": "社区",
        "areaCode": "520102001001",
        "teamId": 3,
        "openedOn": "2020-01-01",
        "updateTime": "2026-06-01 10:00:00",
        "isDeleted": False,
    }
    row.update(fields)
    return row


def provincial_redemption(row_id: int, **fields) -> dict:
    row = {
        "id": row_id,
        "userId": 7,
        "minutes": 120,
        "purpose": "家政服务",
        "redeemedAt": "2026-05-01 10:00:00",
        "updateTime": "2026-06-01 10:00:00",
        "isDeleted": False,
    }
    row.update(fields)
    return row
