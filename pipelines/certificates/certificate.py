"""The service record certificate (志愿服务记录证明): its contents, its verification code,
its HTML page, and the verification of a certificate someone hands in.

A certificate's contents are a small JSON document (`contents`): the masked name and
number, the hours counted once by organization, project and year up to the issue date,
the issuing organization, a serial and the date. Its verification code is a keyed hash
(HMAC-SHA256 under CERTIFICATE_KEY) over the canonical JSON of those contents, so nobody
without the key can make a code for other contents. The page carries the contents it was
rendered from; verifying a page checks (1) the code against the contents, (2) the page
against the contents (a changed figure on the page fails), and (3) the contents against the
warehouse (the same hours up to the same date). No Dagster here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import html
import json
import re
from dataclasses import asdict, dataclass

from pipelines.certificates.record import ServiceRecord

TITLE = "志愿服务记录证明"
FORMAT_VERSION = 1
CODE_LENGTH = 20  # hex characters shown: 80 bits, in four groups of five
DATA_ELEMENT = "certificate-data"
CERT_TYPE_LABELS = {
    "resident_id": "居民身份证", "hk_macao": "港澳居民证件", "taiwan": "台湾居民证件",
    "passport": "护照", "military": "军人证件", "other": "其他证件",
}


def canonical_json(contents: dict) -> str:
    return json.dumps(contents, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def verification_code(contents: dict, key: str) -> str:
    """XXXXX-XXXXX-XXXXX-XXXXX: the first 80 bits of HMAC-SHA256(key, canonical contents)."""
    digest = hmac.new(key.encode("utf-8"), canonical_json(contents).encode("utf-8"), hashlib.sha256)
    text = digest.hexdigest()[:CODE_LENGTH].upper()
    return "-".join(text[i:i + 5] for i in range(0, CODE_LENGTH, 5))


def serial_number(volunteer_key: str, issuer_org_key: str, issued_on: dt.date) -> str:
    """GZZYFW-YYYYMMDD-XXXXXXXXXX: one serial per person, issuer and day (re-issuing the same
    day gives the same certificate)."""
    digest = hashlib.sha256(f"{volunteer_key}|{issuer_org_key}|{issued_on.isoformat()}".encode()).hexdigest()
    return f"GZZYFW-{issued_on:%Y%m%d}-{digest[:10].upper()}"


def contents(record: ServiceRecord, *, cert_type: str, issuer_org_key: str, issuer_name: str,
             issued_on: dt.date) -> dict:
    """What a certificate states, as data (every value text or an integer: exact, and the
    same JSON on every machine)."""
    return {
        "format": FORMAT_VERSION,
        "serial": serial_number(record.volunteer_key, issuer_org_key, issued_on),
        "issued_on": issued_on.isoformat(),
        "records_through": issued_on.isoformat(),
        "cert_type": cert_type,
        "issuer": {"org_key": issuer_org_key, "name": issuer_name},
        "record": asdict(record),
    }


@dataclass(frozen=True)
class Certificate:
    contents: dict
    code: str

    @property
    def serial(self) -> str:
        return self.contents["serial"]


def sign(certificate_contents: dict, key: str) -> Certificate:
    return Certificate(contents=certificate_contents, code=verification_code(certificate_contents, key))


# --- the page --------------------------------------------------------------------------------

STYLE = """
@page { size: A4; margin: 18mm; }
body { font-family: "Noto Serif CJK SC", "Noto Sans CJK SC", "Source Han Serif SC", "SimSun", "Songti SC", serif;
       color: #111; max-width: 700px; margin: 0 auto; line-height: 1.7; font-size: 14px; }
h1 { text-align: center; font-size: 26px; letter-spacing: 8px; margin: 12px 0 4px; }
.serial { text-align: right; font-size: 12px; }
table { border-collapse: collapse; width: 100%; font-size: 12px; margin: 4px 0 12px; }
th, td { border: 1px solid #999; padding: 2px 6px; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
h2 { font-size: 15px; margin: 14px 0 2px; }
.sign { margin-top: 24px; text-align: right; }
.code { font-family: monospace; font-size: 15px; letter-spacing: 1px; }
.note { font-size: 11px; color: #444; }
tr { page-break-inside: avoid; }
"""


def _e(value) -> str:
    return html.escape(str(value))


def _table(headers: list[str], rows: list[list], numeric_from: int) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="n">{_e(v)}</td>' if i >= numeric_from else f"<td>{_e(v)}</td>" for i, v in enumerate(row)
        ) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _chinese_date(iso: str) -> str:
    day = dt.date.fromisoformat(iso)
    return f"{day.year}年{day.month}月{day.day}日"


def render_html(certificate: Certificate) -> str:
    """The certificate page: what it states, in Chinese, with its contents embedded (for
    verification) and no script to run."""
    c = certificate.contents
    r = c["record"]
    registered = f"于{_chinese_date(r['registered_on'])}注册，" if r.get("registered_on") else ""
    body = [
        f"<h1>{TITLE}</h1>",
        f'<p class="serial">证明编号：{_e(c["serial"])}</p>',
        "<p>兹证明志愿者 <b>{name}</b>（{cert_label}号码 {number}）{registered}"
        "截至{through}，在全国志愿服务信息系统和“志愿贵州”平台共有有效志愿服务记录 <b>{services}</b> 条，"
        "累计志愿服务时长 <b>{hours}</b> 小时。同一服务在两个系统中均有记录的（{both} 条）只计一次。</p>".format(
            name=_e(r["name_masked"]), cert_label=_e(CERT_TYPE_LABELS.get(c["cert_type"], "证件")),
            number=_e(r["id_masked"]), registered=_e(registered), through=_e(_chinese_date(c["records_through"])),
            services=r["services"], hours=_e(r["total_hours"]), both=r["services_in_both_systems"],
        ),
        "<h2>按服务组织</h2>",
        _table(["服务组织", "服务记录（条）", "服务时长（小时）"],
               [[o["name"], o["services"], o["hours"]] for o in r["by_organization"]], 1),
        "<h2>按服务项目</h2>",
        _table(["服务项目", "服务组织", "服务记录（条）", "服务时长（小时）"],
               [[p["name"], p["organization"], p["services"], p["hours"]] for p in r["by_project"]], 2),
        "<h2>按年度</h2>",
        _table(["年度", "服务记录（条）", "服务时长（小时）"],
               [[f"{y['year']}年", y["services"], y["hours"]] for y in r["by_year"]], 1),
        '<div class="sign">',
        f"<p>出具组织：{_e(c['issuer']['name'])}（盖章）</p>",
        f"<p>出具日期：{_e(_chinese_date(c['issued_on']))}</p>",
        "</div>",
        f'<p>验证码：<span class="code">{_e(certificate.code)}</span></p>',
        '<p class="note">本证明依据《志愿服务记录与证明出具办法》免费出具，内容以贵州志愿服务数据平台的记录为准。'
        "分项时长分别四舍五入至0.01小时。可凭证明编号和验证码向出具组织或平台核验真伪。</p>",
    ]
    # no "<" at all inside the data block (JSON's \u003c): no text can end it or open a tag
    data = canonical_json({"contents": c, "code": certificate.code}).replace("<", "\\u003c")
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{TITLE} {_e(c['serial'])}</title><style>{STYLE}</style>"
        f'<script type="application/json" id="{DATA_ELEMENT}">{data}</script></head><body>'
        + "\n".join(body) + "</body></html>\n"
    )


# --- verification ----------------------------------------------------------------------------

_DATA = re.compile(
    rf'<script type="application/json" id="{DATA_ELEMENT}">(.*?)</script>', re.DOTALL
)


class UnreadableCertificate(ValueError):
    """The file is not a certificate page of this platform."""


def read_certificate_page(page: str) -> Certificate:
    match = _DATA.search(page)
    if not match:
        raise UnreadableCertificate("no certificate data in the page")
    try:
        data = json.loads(match.group(1))
        return Certificate(contents=data["contents"], code=str(data["code"]))
    except (ValueError, KeyError, TypeError) as error:
        raise UnreadableCertificate(f"certificate data unreadable: {type(error).__name__}") from None


@dataclass(frozen=True)
class Verification:
    code_valid: bool  # the code was made with the key over these contents
    page_matches: bool | None  # the page shows exactly these contents (None: no page given)
    warehouse_matches: bool | None  # the warehouse gives the same record (None: not checked)
    problems: tuple[str, ...] = ()

    @property
    def authentic(self) -> bool:
        return self.code_valid and self.page_matches is not False


def verify_contents(certificate: Certificate, key: str, page: str | None = None,
                    current_record: ServiceRecord | None = None) -> Verification:
    """Check a certificate: its code, the page it came in (when given), and the warehouse's
    record of the same person up to the same date (when given)."""
    problems = []
    code_valid = hmac.compare_digest(verification_code(certificate.contents, key), certificate.code.strip().upper())
    if not code_valid:
        problems.append("验证码与证明内容不符：内容被改动，或不是本平台出具的证明")
    page_matches = None
    if page is not None:
        page_matches = page == render_html(certificate)
        if not page_matches:
            problems.append("页面显示的内容与证明数据不一致：页面被改动")
    warehouse_matches = None
    if current_record is not None:
        warehouse_matches = asdict(current_record) == certificate.contents.get("record")
        if not warehouse_matches:
            problems.append("数据仓库中该志愿者截至出具日期的记录与证明不一致")
    return Verification(code_valid, page_matches, warehouse_matches, tuple(problems))
