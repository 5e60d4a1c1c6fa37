"""Chinese labels for the codes the warehouse stores, and the one way the report writes a
number. An unknown code is shown as it is (a new value at the source must not break the
report)."""

from __future__ import annotations

import math

from pipelines.normalize.categories import measure_fields

SOURCES = {"national": "全国志愿服务信息系统", "provincial": "志愿贵州"}
STREAMS = {
    "volunteers": "志愿者", "teams": "队伍", "projects": "项目", "service_records": "服务记录",
    "evaluations": "评估", "activities": "活动", "service_logs": "服务记录", "stations": "站点",
    "redemptions": "时间兑换",
}
ENTITIES = {
    "volunteer": "志愿者", "organization": "组织", "project": "项目", "service": "服务记录",
    "evaluation": "评估", "station": "站点", "redemption": "时间兑换",
}
RULES = {
    "region_outside_province": "行政区划不在贵州", "end_before_start": "结束早于开始",
    "hours_out_of_range": "时长超出范围", "future_date": "日期晚于同步时间",
    "missing_required": "缺少必填项", "unreadable_row": "无法读取", "invalid_value": "取值无效",
    "unparseable_date": "日期无法解析", "invalid_region": "区划代码无效",
}
MATCH_METHODS = {
    "cert_number": "证件号码相同", "national_volunteer_no": "关联全国志愿者编号",
    "review_same": "人工复核确认", "probabilistic": "概率匹配", "singleton": "仅一个账号",
}
REGISTRATION = {"registered": "已登记", "filed": "已备案", "unregistered": "未登记"}
EVALUATORS = {
    "registration_authority": "登记管理机关", "funder": "资助方", "beneficiary": "服务对象",
    "self": "组织自评", "third_party": "第三方机构",
}
# What each asset check looks at, as the data-quality panel says it beside the check's code
CHECKS = {
    "newest_update_age": "最新变更是否及时", "schema_drift": "来源字段是否有变动",
    "every_row_accounted": "每一落地行均有去向", "key_unique": "主键不重复", "required_fields": "必填项齐全",
    "valid_values": "代码取值有效", "quarantined_rows": "隔离行占比", "score_in_range": "评估得分在范围内",
    "no_clear_numbers": "无明文证件号码或手机号", "region_in_guizhou": "行政区划在贵州省内",
    "unmapped_category_share": "未能归类的服务类别占比", "valid_uscc_share": "有效统一社会信用代码占比",
    "end_not_before_start": "结束不早于开始", "hours_in_range": "时长在合理范围内",
    "effective_share": "有效服务记录占比", "identity_conflicts": "身份信息相互矛盾的账号",
    "masked_id_share": "来源已打码的证件号码占比", "masked_phone_share": "来源已打码的手机号占比",
    "valid_id_share": "有效身份证号码占比", "every_account_one_key": "每个账号只归属一人（一个组织）",
    "keys_stable": "主键保持稳定", "counted_once": "每次服务只计一次",
    "one_valid_number_per_person": "每人只有一个有效证件号码", "tables_and_columns": "表与字段齐全",
    "no_clear_personal_numbers": "数据仓库无明文个人号码", "hours_add_up": "时长合计一致",
    "freshness_check": "数据仓库按时发布",
}
# The professional fields the provincial measures name (网络文明、司法 … 支教), by the national
# service category each is counted under: schemas/categories.yaml, as dim_service_category
# publishes them.
MEASURE_FIELDS = measure_fields()
# Where a station may be hosted (the provincial interface's hostType, in its order): the
# community and the public facilities the measures ask to set up stations in (图书馆, 博物馆 …
# 车站, 码头, 空港, 医院, 景区, 高速公路服务区), then the others.
STATION_HOSTS = [
    "社区", "图书馆", "博物馆", "文化馆", "美术馆", "科技馆", "纪念馆", "车站", "码头", "空港", "医院",
    "景区", "高速公路服务区", "学校", "村委会", "物业", "其他",
]
STATION_TYPES = ["站", "点", "岗"]
# The composite evaluation's score bands, by their lower bound (figures.py)
SCORE_BANDS = {90: "90分及以上", 80: "80–89.9分", 70: "70–79.9分", 60: "60–69.9分", 0: "60分以下"}
STARS = ["未达一星", "一星", "二星", "三星", "四星", "五星"]
# hours for one to five stars, as dim_volunteer.star_level counts them (warehouse/build.py)
STAR_HOURS = [100, 300, 600, 1000, 1500]
UNKNOWN = "未知"


def label(labels: dict[str, str], code) -> str:
    if code is None or (isinstance(code, float) and math.isnan(code)):
        return UNKNOWN
    return labels.get(str(code), str(code))


def count(value) -> str:
    """A count as the report writes it: 12,345 (— where there is none to give)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{int(value):,}"


def hours(value) -> str:
    """Hours as the report writes them: one decimal, 12,345.6."""
    return f"{float(value or 0):,.1f}"


def score(value) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{float(value):.1f}"


def share(value) -> str:
    """A ratio 0-1 as a percentage with one decimal: 45.2%; a share too small to show is
    <0.1% (1 account in 2,245 read 0.0%, as if there were none), and one short of all >99.9%."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    value = float(value)
    if 0 < value < 0.0005:
        return "<0.1%"
    if 0.9995 <= value < 1:
        return ">99.9%"
    return f"{value * 100:.1f}%"
