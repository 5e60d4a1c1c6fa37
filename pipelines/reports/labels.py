"""Chinese labels for the codes the warehouse stores, and the one way the report writes a
number. An unknown code is shown as it is (a new value at the source must not break the
report)."""

from __future__ import annotations

import math

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
STARS = ["未达一星", "一星", "二星", "三星", "四星", "五星"]
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
    """A ratio 0-1 as a percentage with one decimal: 45.2%."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value) * 100:.1f}%"
