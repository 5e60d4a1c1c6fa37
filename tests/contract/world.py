"""A small hand-written world in the exact shapes of the two contracts, with its expected
warehouse. Every row is here to test one clause of docs/CONTRACT.md; the comment
next to it says which.

Persons:
- A: national V5200000001 (frozen, older) + provincial 101 (live, newer: active), same
  resident ID typed with full-width digits; regTime 2019-12-31 23:30 Beijing is the earliest
  registration; 张小明 / 張小明 -> 张**.
- B: national V5200000002 (number masked, frozen, newer) + provincial 102 (valid number,
  carries nationalVolunteerNo); 欧阳娜娜 -> 欧阳**; region 520114 (retired) -> 520115.
- C: provincial 103 only, 15-digit legacy number, 司马光明 -> 司马**, 100 hours -> 1 star,
  areaCode 520221 (retired) -> 520204, regTime just after midnight Beijing.
- D: deleted in both systems -> status deleted.
- E: national only, albp0090 2 -> deregistered; 王五 -> 王*.
- F: national account deleted (newer) + live provincial account: not deleted, active.
- I: national V5200000012 with a prefecture's code (520100, 贵阳市: no county) + provincial
  110 in 520103: region_code is the current county code, so the provincial county.
"""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal

from stdnum.cn import ric, uscc


def resident_id(body17: str) -> str:
    # stdnum's calc_check_digit expects the number with a check character in place
    return body17 + ric.calc_check_digit(body17 + "0")


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in text)


def id_hash(key: str, number: str) -> str:
    return hmac.new(key.encode("utf-8"), number.encode("utf-8"), hashlib.sha256).hexdigest()


CERT_A = resident_id("52010219900307001")
CERT_B = "52010319950508122X"
assert resident_id(CERT_B[:17]) == CERT_B
CERT_C_15 = "520102800101003"  # legacy: 520102 + 800101 + 003 -> 520102 19800101 003 + check
CERT_C = resident_id("52010219800101003")
CERT_D = resident_id("52010119851111002")
CERT_E = resident_id("52030219700101005")
CERT_F = resident_id("52040219880808004")
_H_VALID = resident_id("52010319870612002")
CERT_I = resident_id("52010219960606006")
CERT_H_INVALID = _H_VALID[:17] + ("0" if _H_VALID[17] != "0" else "1")  # wrong check character
USCC_1 = "51520102MJ" + "0012345"
USCC_1 = USCC_1 + uscc.calc_check_digit(USCC_1)
PHONE_A = "13812345678"
PHONE_C = "13987654321"
FULL_NAMES = ["张小明", "張小明", "欧阳娜娜", "司马光明", "赵六", "王五", "钱七", "孙八", "周九", "吴志强",
              "郑秀英", "冯十"]
CLEAR_NUMBERS = [CERT_A, CERT_B, CERT_C, CERT_C_15, CERT_D, CERT_E, CERT_F, CERT_H_INVALID, CERT_I,
                 PHONE_A, PHONE_C]

T0 = "2026-10-01T10:00:00+08:00"


def nv(row_id, number, name, cert, *, region="520102", reg="2020-01-15", status="1",
       updated=T0, deleted=0, gender="1", phone=None, consent=True, cert_type="01"):
    """A national volunteer (LBP01) as the contract's Volunteer schema."""
    return {
        "id": row_id, "albp0029": number, "albp0003": name, "albp0004": cert_type,
        "albp0005": cert, "albp0006": gender, "albp0010": phone, "albp0020": region,
        "albp0026": 0, "albp0034": reg, "albp0089": 999.0, "albp0090": status,
        "albp0093": 0, "albp0094": 0, "share_consent": consent, "updated_at": updated,
        "isdelete": deleted,
    }


def pv(row_id, name, cert, *, area="520102001001", reg="2020-01-01 10:00:00",
       updated="2026-10-01 10:00:00", deleted=False, sex="男", birthday=None, mobile=None,
       national_no=None, cert_type="身份证"):
    """A provincial volunteer as the contract's Volunteer schema."""
    return {
        "id": row_id, "realName": name, "certType": cert_type, "certNo": cert, "sex": sex,
        "birthday": birthday, "mobile": mobile, "areaCode": area, "regTime": reg,
        "skills": "急救", "serviceMinutes": 99999, "starLevel": 5,
        "nationalVolunteerNo": national_no, "updateTime": updated, "isDeleted": deleted,
    }


NATIONAL_VOLUNTEERS = [
    # A: frozen, updated before the provincial account
    nv("000001", "V5200000001", "张小明", CERT_A, status="3", phone=PHONE_A,
       updated="2026-10-01T10:00:00+08:00"),
    # B: masked number (no consent), frozen and the most recently updated account
    nv("000002", "V5200000002", "欧阳娜娜", "5201**********122X", region="520114",
       reg="2021-06-01", status="3", gender="2", phone="138****5678", consent=False,
       updated="2026-10-03T10:00:00+08:00"),
    # D: deleted
    nv("000004", "V5200000004", "赵六", CERT_D, deleted=1, updated="2026-10-01T10:00:00+08:00"),
    # E: deregistered
    nv("000005", "V5200000005", "王五", CERT_E, region="520302", status="2",
       updated="2026-10-01T10:00:00+08:00"),
    # F: deleted national account, more recent than the live provincial one
    nv("000006", "V5200000006", "钱七", CERT_F, status="3", deleted=1, region="520402",
       updated="2026-10-04T10:00:00+08:00"),
    # G: national only, number masked: no id_hash, the contract's masked form kept
    nv("000011", "V5200000011", "吴志强", "5201**********123X", consent=False, region="520103",
       updated="2026-10-01T10:00:00+08:00"),
    # I: a prefecture's code, not a county's: the golden record takes the provincial county
    nv("000012", "V5200000012", "冯十", CERT_I, region="520100", updated="2026-10-03T10:00:00+08:00"),
    # missing_required: no name
    nv("000008", "V5200000008", "", resident_id("52010219920202002"),
       updated="2026-10-01T10:00:00+08:00"),
    # future_date: registered after the sync
    nv("000009", "V5200000009", "孙八", resident_id("52010219930303003"), reg="2099-01-01",
       updated="2026-10-01T10:00:00+08:00"),
    # another province: the server never hands it out for region 52
    nv("000010", "V5300000010", "周九", resident_id("53010219940404004"), region="530102",
       updated="2026-10-01T10:00:00+08:00"),
]

PROVINCIAL_VOLUNTEERS = [
    # A: traditional characters and a stray space; full-width digits; newer than national
    pv(101, "張小明 ", full_width(CERT_A), reg="2019-12-31 23:30:00", birthday="1990/03/07",
       mobile="+86 138 1234 5678", updated="2026-10-02 09:00:00"),
    # B: valid number, linked by the national volunteer number, older
    pv(102, "欧阳娜娜", CERT_B, sex="女", reg="2021-05-31 08:00:00", national_no="V5200000002",
       area="520103001001", updated="2026-09-01 08:00:00"),
    # C: provincial only, 15-digit legacy number, retired county code
    pv(103, "司马光明", CERT_C_15, reg="2022-03-04 00:10:00", area="520221", mobile=PHONE_C,
       updated="2026-10-01 10:00:00"),
    # D: deleted here too
    pv(104, "赵六", CERT_D, deleted=True, updated="2026-10-01 11:00:00"),
    # F: live provincial account
    pv(106, "钱七", CERT_F, area="520402001001", updated="2026-09-20 10:00:00"),
    # H: provincial only, a number whose check character is wrong: no id_hash
    pv(109, "郑秀英", CERT_H_INVALID, sex="女",
       area="520103001001", updated="2026-10-01 10:00:00"),
    # I: the county the national account does not name
    pv(110, "冯十", CERT_I, area="520103001001", updated="2026-10-01 10:00:00"),
    # region_outside_province (12-digit code of Yunnan)
    pv(108, "周九", resident_id("53010219940404014"), area="530102001001",
       updated="2026-10-01 10:00:00"),
]


def nt(row_id, number, name, team_type, status, *, region="520102", codes=("0001",),
       uscc_code=None, founded="2015-03-01", members=30, deleted=0, updated=T0):
    return {
        "id": row_id, "albe0001": number, "albe0002": name, "albe0003": team_type,
        "albe0008": uscc_code, "albe0009": "贵阳市民政局", "albe0011": None, "albe0012": region,
        "albe0014": list(codes), "albe0018": "刘一", "albe0019": "13600001111",
        "albe0026": status, "albe0046": founded, "albe0056": members, "updated_at": updated,
        "isdelete": deleted,
    }


def pt(row_id, name, reg_status, status, *, area="520102000000", types="助残", credit=None,
       level="县级", hub=False, national_no=None, found="2018-05-06", deleted=False,
       updated="2026-10-01 10:00:00"):
    return {
        "id": row_id, "teamName": name, "creditCode": credit, "regStatus": reg_status,
        "level": level, "hub": hub, "areaCode": area, "serviceTypes": types,
        "foundDate": found, "leader": "刘一", "leaderMobile": "136-0000-1111",
        "memberCount": 12, "nationalTeamNo": national_no, "creditStatus": "良好",
        "status": status, "updateTime": updated, "isDeleted": deleted,
    }


NATIONAL_TEAMS = [
    # registered (2), active (1); categories given out of code order
    nt("000001", "T5200000001", "贵阳市助老志愿服务协会", "2", "1", codes=("0010", "0001"),
       uscc_code=USCC_1),
    nt("000002", "T5200000002", "盘州市青年志愿服务队", "1", "5", region="520222",
       codes=("0099",)),  # 系统锁定 -> suspended; retired county
    nt("000003", "T5200000003", "遵义市法律志愿服务队", "3", "2", region="520302",
       codes=("0005",)),  # 其它法人组织 -> registered; 待审 -> active
    nt("000004", "T5200000004", "已删除志愿队", "2", "4", region="520302"),  # 4 -> deleted
    nt("000005", "T5200000005", "六盘水不通过志愿队", "1", "0", region="520201"),  # 0 -> suspended
    nt("000006", "T5200000006", "", "1", "1"),  # missing_required: no team name
    # a city-level team with its prefecture's code: no county, so region_code null
    nt("000007", "T5200000007", "贵阳市志愿服务联合会", "2", "1", region="520100"),
]

PROVINCIAL_TEAMS = [
    # the same organization as national T5200000001: 退出 wins over active; 已备案 loses
    # to national registered; categories add 应急救援
    pt(201, "贵阳市助老志愿服务协会", "已备案", "退出", types="应急,助老", level="市级", hub=True,
       credit=USCC_1.lower()[:6] + " " + USCC_1.lower()[6:], national_no="T5200000001",
       found="20150301"),
    # filed + suspended; synonyms map to national labels in code order; retired 520522
    pt(202, "黔西市文旅志愿服务队", "已备案", "停用", area="520522001001", types="文旅,卫健"),
    pt(203, "花溪区社区志愿服务队", "未登记", "正常", area="520111000000", types="扶贫,乡村振兴"),
    pt(204, "南明区红十字志愿服务队", "已登记", "正常", area="520102", types="应急"),
    # region_outside_province
    pt(205, "昆明市志愿服务队", "未登记", "正常", area="530102000000"),
]

NATIONAL_PROJECTS = [
    {"id": "000001", "albx0001": "X5200000001", "albx0002": "社区健康义诊", "albe0001": "T5200000001",
     "albx0009": "0004", "albx0015": "2", "albx0021": "520102", "albx0031": "2026-01-01",
     "albx0040": "三关爱", "updated_at": T0, "isdelete": 0},
    {"id": "000002", "albx0001": "X5200000002", "albx0002": "敬老院陪伴", "albe0001": "T5200000003",
     "albx0009": "0010", "albx0015": "2", "albx0021": "520302", "albx0031": "2026-01-02",
     "albx0040": None, "updated_at": T0, "isdelete": 0},
]

PROVINCIAL_ACTIVITIES = [
    {"id": 301, "teamId": 201, "title": "乡村支教", "serviceType": "支教,助老",
     "startTime": "2026-05-01 08:00:00", "endTime": "2026-06-30 18:00:00",
     "areaCode": "520102001001", "brandProject": "西部计划", "stationId": 501,
     "updateTime": "2026-10-01 10:00:00", "isDeleted": False},
    {"id": 302, "teamId": 203, "title": "脱贫夜校", "serviceType": "扶贫",
     "startTime": "2026-04-01 19:00:00", "endTime": "2026-04-30 21:00:00",
     "areaCode": "520111000000", "brandProject": "脱贫攻坚夜校", "stationId": None,
     "updateTime": "2026-10-01 10:00:00", "isDeleted": False},
]

# Every service record shares one updated_at second: the keyset walk must carry after_id
SR_TIME = "2026-10-05T12:00:00+08:00"


def sr(row_id, volunteer, project, start, end, hours, status="2", *, deleted=0, origin=None,
       team="T5200000001"):
    row = {
        "id": row_id, "albx0175": volunteer, "albx0001": project, "albe0001": team,
        "albx0181": start, "albx0182": end, "albx0172": hours, "albx0173": "1",
        "albx0174": status, "origin": origin, "updated_at": SR_TIME, "isdelete": deleted,
    }
    if volunteer is None:
        del row["albx0175"]
    return row


NATIONAL_SERVICES = [
    # A, counted once with provincial 401 (nationalRecordId) with the national hours; starts
    # 00:30 Beijing = the previous day in UTC
    sr("000001", "V5200000001", "X5200000001", "2026-03-01T00:30:00+08:00",
       "2026-03-01T03:00:00+08:00", 2.5),
    # A, counted once with provincial 402 (origin)
    sr("000002", "V5200000001", "X5200000002", "2026-03-05T09:00:00+08:00",
       "2026-03-05T10:30:00+08:00", 1.5, origin="provincial:402", team="T5200000003"),
    sr("000003", "V5200000001", "X5200000001", "2026-03-06T09:00:00+08:00",
       "2026-03-06T12:00:00+08:00", 3.0, status="0"),  # 申请中: not counted
    sr("000004", "V5200000001", "X5200000001", "2026-03-07T09:00:00+08:00",
       "2026-03-07T12:00:00+08:00", 3.0, deleted=1),  # deleted: not counted
    sr("000005", "V5200000001", "X5200000001", "2026-03-08T09:00:00+08:00",
       "2026-03-08T09:00:00+08:00", 0),  # hours_out_of_range (zero)
    sr("000006", "V5200000001", "X5200000001", "2026-03-09T09:00:00+08:00",
       "2026-03-10T10:00:00+08:00", 25.0),  # hours_out_of_range (> 24)
    sr("000007", "V5200000001", "X5200000001", "2026-03-11T09:00:00+08:00",
       "2026-03-11T08:00:00+08:00", 1.0),  # end_before_start
    sr("000008", "V5200000001", "X5200000001", "2099-03-12T09:00:00+08:00",
       "2099-03-12T10:00:00+08:00", 1.0),  # future_date
    sr("000009", None, "X5200000001", "2026-03-13T09:00:00+08:00",
       "2026-03-13T10:00:00+08:00", 1.0),  # missing_required: no volunteer
    sr("000010", "V5200000001", "X5200000001", "2026-03-14T09:00:00+08:00",
       "2026-03-14T10:00:00+08:00", -1.0),  # hours_out_of_range (negative)
    # B: starts 07:00 Beijing on the 11th = the 10th in UTC
    sr("000011", "V5200000002", "X5200000001", "2026-04-11T07:00:00+08:00",
       "2026-04-11T11:00:00+08:00", 4.0),
]

NATIONAL_EVALUATIONS = [
    # T5200000001: latest period 2025: registration_authority 90; beneficiary (60, 80) -> 70;
    # mean of type means 80 (the plain mean would be 76.67); 2024 is ignored; the 2026 row is
    # deleted. Ids of 18 digits (the contract fixes their width, not which): zero-padded, not
    # resident ID numbers, so kept as they are
    {"id": "000000000000000001", "albe0001": "T5200000001", "evaluator": "registration_authority",
     "score": 90, "period": "2025", "updated_at": T0, "isdelete": 0},
    {"id": "000000000000000002", "albe0001": "T5200000001", "evaluator": "beneficiary", "score": 60,
     "period": "2025", "updated_at": T0, "isdelete": 0},
    {"id": "000000000000000003", "albe0001": "T5200000001", "evaluator": "beneficiary", "score": 80,
     "period": "2025", "updated_at": T0, "isdelete": 0},
    {"id": "000000000000000004", "albe0001": "T5200000001", "evaluator": "self", "score": 10,
     "period": "2024", "updated_at": T0, "isdelete": 0},
    {"id": "000000000000000005", "albe0001": "T5200000001", "evaluator": "third_party", "score": 0,
     "period": "2026", "updated_at": T0, "isdelete": 1},
]

LOG_TIME = "2026-10-06 12:00:00"


def sl(row_id, user, minutes, date, status="已通过", *, team=201, activity=301, deleted=False,
       national_record=None):
    return {
        "id": row_id, "userId": user, "teamId": team, "activityId": activity,
        "serviceDate": date, "durationMinutes": minutes, "status": status,
        "nationalRecordId": national_record, "updateTime": LOG_TIME, "isDeleted": deleted,
    }


PROVINCIAL_SERVICE_LOGS = [
    sl(401, 101, 160, "2026-03-01", national_record="000001"),  # both: national 2.5 h
    sl(402, 101, 100, "2026-03-05", activity=None),  # both via national origin: 1.5 h
    sl(403, 101, 45, "2026/04/02", team=203, activity=302),  # 0.75 h, 扶贫减贫
    sl(404, 101, 60, "2026-04-03", status="待审核"),
    sl(405, 101, 60, "2026-04-04", deleted=True),
    sl(406, 101, 0, "2026-04-05"),  # hours_out_of_range
    sl(407, 101, 60, "20990101"),  # future_date
    sl(408, 101, 1500, "2026-04-06"),  # hours_out_of_range (25 h)
    sl(409, 101, 60, "2026-04-07", status="已驳回"),
    *[sl(410 + i, 103, 1200, f"202605{10 + i:02d}") for i in range(5)],  # C: 100 h
]

PROVINCIAL_STATIONS = [
    {"id": 501, "name": "南明区新华路志愿服务站", "stationType": "站", "hostType": "社区",
     "areaCode": "520102001001", "teamId": 201, "openedOn": "2020-01-01",
     "updateTime": "2026-10-01 10:00:00", "isDeleted": False},
    {"id": 502, "name": "已撤销服务点", "stationType": "点", "hostType": "车站",
     "areaCode": "520102001001", "teamId": 201, "openedOn": "2020-01-01",
     "updateTime": "2026-10-01 10:00:00", "isDeleted": True},
    {"id": 503, "name": "观山湖区图书馆服务岗", "stationType": "岗", "hostType": "图书馆",
     "areaCode": "520114001002", "teamId": None, "openedOn": "2021/02/03",
     "updateTime": "2026-10-01 10:00:00", "isDeleted": False},
    {"id": 504, "name": "昆明服务站", "stationType": "站", "hostType": "社区",
     "areaCode": "530102", "teamId": None, "openedOn": None,
     "updateTime": "2026-10-01 10:00:00", "isDeleted": False},  # region_outside_province
    {"id": 505, "name": "贵阳市级服务站", "stationType": "站", "hostType": "社区",
     "areaCode": "520100", "teamId": None, "openedOn": None,
     "updateTime": "2026-10-01 10:00:00", "isDeleted": False},  # a prefecture's code: no county
]

PROVINCIAL_REDEMPTIONS = [
    {"id": 601, "userId": 101, "minutes": 120, "purpose": "家政服务",
     "redeemedAt": "2026-05-01 10:00:00", "updateTime": "2026-10-01 10:00:00",
     "isDeleted": False},
]


def national_rows() -> dict[str, list[dict]]:
    return {
        "volunteers": [dict(r) for r in NATIONAL_VOLUNTEERS],
        "teams": [dict(r) for r in NATIONAL_TEAMS],
        "projects": [dict(r) for r in NATIONAL_PROJECTS],
        "service_records": [dict(r) for r in NATIONAL_SERVICES],
        "evaluations": [dict(r) for r in NATIONAL_EVALUATIONS],
    }


def provincial_rows() -> dict[str, list[dict]]:
    return {
        "teams": [dict(r) for r in PROVINCIAL_TEAMS],
        "volunteers": [dict(r) for r in PROVINCIAL_VOLUNTEERS],
        "activities": [dict(r) for r in PROVINCIAL_ACTIVITIES],
        "service_logs": [dict(r) for r in PROVINCIAL_SERVICE_LOGS],
        "stations": [dict(r) for r in PROVINCIAL_STATIONS],
        "redemptions": [dict(r) for r in PROVINCIAL_REDEMPTIONS],
    }


# -- what the warehouse must say -------------------------------------------------------

EXPECTED_QUARANTINE = {
    ("national", "volunteer", "V5200000008", "missing_required"),
    ("national", "volunteer", "V5200000009", "future_date"),
    ("provincial", "volunteer", "108", "region_outside_province"),
    ("national", "organization", "T5200000006", "missing_required"),
    ("provincial", "organization", "205", "region_outside_province"),
    ("national", "service", "000005", "hours_out_of_range"),
    ("national", "service", "000006", "hours_out_of_range"),
    ("national", "service", "000007", "end_before_start"),
    ("national", "service", "000008", "future_date"),
    ("national", "service", "000009", "missing_required"),
    ("national", "service", "000010", "hours_out_of_range"),
    ("provincial", "service", "406", "hours_out_of_range"),
    ("provincial", "service", "407", "future_date"),
    ("provincial", "service", "408", "hours_out_of_range"),
    ("provincial", "station", "504", "region_outside_province"),
}

# volunteer_source_map source_id -> person
PERSON_OF = {
    ("national", "V5200000001"): "A", ("provincial", "101"): "A",
    ("national", "V5200000002"): "B", ("provincial", "102"): "B",
    ("provincial", "103"): "C",
    ("national", "V5200000004"): "D", ("provincial", "104"): "D",
    ("national", "V5200000005"): "E",
    ("national", "V5200000006"): "F", ("provincial", "106"): "F",
    ("national", "V5200000011"): "G", ("provincial", "109"): "H",
    ("national", "V5200000012"): "I", ("provincial", "110"): "I",
}

EXPECTED_PERSONS = {
    #   id_hash source, id_masked, name_masked, gender, birth_year, region, registered_on,
    #   status, total_hours, star_level
    "A": dict(cert=CERT_A, id_masked=CERT_A[:4] + "*" * 10 + CERT_A[-4:], name_masked="张**",
              gender="M", birth_year=1990, region_code="520102", registered_on="2019-12-31",
              status="active", total_hours=Decimal("4.75"), star_level=0),
    "B": dict(cert=CERT_B, id_masked="5201**********122X", name_masked="欧阳**", gender="F",
              birth_year=1995, region_code="520115", registered_on="2021-05-31",
              status="frozen", total_hours=Decimal("4"), star_level=0),
    "C": dict(cert=CERT_C, id_masked=CERT_C[:4] + "*" * 10 + CERT_C[-4:], name_masked="司马**",
              gender="M", birth_year=1980, region_code="520204", registered_on="2022-03-04",
              status="active", total_hours=Decimal("100"), star_level=1),
    "D": dict(status="deleted"),
    "E": dict(status="deregistered", name_masked="王*", region_code="520302"),
    "F": dict(status="active"),
    "G": dict(id_hash=None, id_masked="5201**********123X", name_masked="吴**", status="active"),
    "H": dict(id_hash=None, name_masked="郑**", status="active"),
    "I": dict(cert=CERT_I, name_masked="冯*", region_code="520103", status="active"),
}

# organization_source_map source_id -> organization
ORG_OF = {
    ("national", "T5200000001"): "O1", ("provincial", "201"): "O1",
    ("national", "T5200000002"): "O2", ("national", "T5200000003"): "O3",
    ("national", "T5200000004"): "O4", ("national", "T5200000005"): "O5",
    ("provincial", "202"): "O6", ("provincial", "203"): "O7", ("provincial", "204"): "O8",
    ("national", "T5200000007"): "O9",
}

EXPECTED_ORGS = {
    "O1": dict(uscc=USCC_1, registration_status="registered", status="exited",
               categories="社区服务,助老助残,应急救援", region_code="520102", is_hub=True,
               level="市级", founded_on="2015-03-01", evaluation_score=Decimal("80"),
               in_national=True, in_provincial=True),
    "O2": dict(registration_status="unregistered", status="suspended", categories="其他",
               region_code="520281", in_national=True, in_provincial=False),
    "O3": dict(registration_status="registered", status="active", categories="法律服务",
               evaluation_score=None),
    "O4": dict(status="deleted"),
    "O5": dict(status="suspended"),
    "O6": dict(registration_status="filed", status="suspended", categories="卫生健康,文化旅游",
               region_code="520581", in_national=False, in_provincial=True),
    "O7": dict(registration_status="unregistered", status="active", categories="扶贫减贫"),
    "O8": dict(registration_status="registered", status="active", categories="应急救援"),
    "O9": dict(region_code=None, status="active", in_national=True, in_provincial=False),
}

# fact_service: (national id or None, provincial id or None) -> expected row
EXPECTED_SERVICES = [
    dict(national="000001", provincial="401", person="A", date="2026-03-01",
         hours=Decimal("2.5"), category="卫生健康", source="both", org="O1"),
    dict(national="000002", provincial="402", person="A", date="2026-03-05",
         hours=Decimal("1.5"), category="助老助残", source="both", org="O3"),
    dict(national="000011", provincial=None, person="B", date="2026-04-11",
         hours=Decimal("4"), category="卫生健康", source="national", org="O1"),
    dict(national=None, provincial="403", person="A", date="2026-04-02",
         hours=Decimal("0.75"), category="扶贫减贫", source="provincial", org="O7"),
    *[dict(national=None, provincial=str(410 + i), person="C", date=f"2026-05-{10 + i:02d}",
           hours=Decimal("20"), category="支教助学", source="provincial", org="O1")
      for i in range(5)],
]
