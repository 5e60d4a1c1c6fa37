"""A volunteer's service record, read from the published warehouse.

The person is found by `id_hash` (the keyed hash of the normalized resident ID number:
`lookup_hash`), never by the number itself: the clear number is hashed in memory and
dropped. Hours come from `fact_service`, where a service present in both systems is one
row, so every hour counts once; they are summed by organization, project and year up to a
cut-off date, so the same record can be recomputed later to verify a certificate.
No Dagster here.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa

from pipelines.normalize.ids import CERT_TYPES, is_valid_resident_id, normalize_resident_id_one
from pipelines.privacy import hmac_hex, redact
from pipelines.warehouse.reader import table_name

HOURS_QUANTUM = Decimal("0.01")  # a certificate states hours to the hundredth
ID_HASH = re.compile(r"[0-9a-f]{64}")


class CertificateError(ValueError):
    """The person cannot be looked up; the message never holds the number."""


def lookup_hash(cert_type: str, number: str, pii_key: str, *, today: dt.date) -> str:
    """The warehouse's `id_hash` of a certificate number: HMAC-SHA256 of the normalized
    18-character resident ID under PII_HASH_KEY (the contract's rule). Only resident ID
    numbers are hashed in the warehouse; other certificate types cannot be looked up."""
    if cert_type not in CERT_TYPES:
        raise CertificateError(f"unknown certificate type; one of {', '.join(CERT_TYPES)}")
    if cert_type != "resident_id":
        raise CertificateError(
            "the warehouse identifies persons by resident ID number only: "
            f"a {cert_type} certificate cannot be looked up"
        )
    if not is_valid_resident_id(number, today=today):
        raise CertificateError("not a valid 18-character resident ID number (check character or birth date)")
    return hmac_hex(normalize_resident_id_one(number), pii_key)


ACCOUNT = re.compile(r"(national|provincial)\s*[:：]\s*([0-9A-Za-z_-]{1,40})")


def parse_account(text: str) -> tuple[str, str]:
    """(source, source_id) of a source account written `national:<志愿者编号>` or
    `provincial:<账号 id>`: the way to a volunteer whose ID number no source holds in clear
    (masked at the source, or missing), who has no `id_hash` to be found by. An account id
    that holds a personal number is refused: a clerk may type the ID number there. The
    message never echoes what was typed."""
    from pipelines.privacy import holds_a_personal_number

    match = ACCOUNT.fullmatch((text or "").strip())
    if not match:
        raise CertificateError("an account is written national:<volunteer number> or provincial:<account id>")
    source, source_id = match.group(1), match.group(2)
    if holds_a_personal_number(source_id):
        raise CertificateError("an account id is the source's own number, not a certificate or phone number")
    return source, source_id


def check_issue_date(issued_on: dt.date, today: dt.date) -> dt.date:
    """`issued_on` if it is not after `today` (Beijing): a certificate states the hours up to
    the day it is issued, so a later date (a typo, 2030 for 2026) would certify service not
    yet given, under a valid code."""
    if issued_on > today:
        raise CertificateError(
            "出具日期不能晚于今天 / the issue date is after today (Beijing): a certificate states "
            "the hours up to the day it is issued")
    return issued_on


def check_id_hash(value: str) -> str:
    """`value` if it is an id_hash (64 lowercase hex), else an error that does not echo it."""
    text = (value or "").strip().lower()
    if not ID_HASH.fullmatch(text):
        raise CertificateError("an id_hash is 64 hexadecimal characters (make one with the `hash` command)")
    return text


def hours_text(value) -> str:
    """Hours as a certificate states them, exactly (Decimal, to the hundredth)."""
    return str(Decimal(str(value if value is not None else 0)).quantize(HOURS_QUANTUM))


@dataclass
class ServiceRecord:
    volunteer_key: str
    name_masked: str
    id_masked: str
    registered_on: str | None
    total_hours: str
    services: int
    services_in_both_systems: int
    by_organization: list[dict] = field(default_factory=list)
    by_project: list[dict] = field(default_factory=list)
    by_year: list[dict] = field(default_factory=list)


def _rows(connection, sql: str, **params) -> list[dict]:
    return [dict(row._mapping) for row in connection.execute(sa.text(sql), params)]


def find_volunteer(engine: sa.Engine, id_hash: str, schema: str | None = None) -> str | None:
    """The volunteer_key of the person with this id_hash (None: not in the warehouse)."""
    sql = f"SELECT volunteer_key FROM {table_name('dim_volunteer', schema)} WHERE id_hash = :h AND status <> 'deleted'"
    with engine.connect() as connection:
        keys = [row[0] for row in connection.execute(sa.text(sql), {"h": id_hash})]
    return keys[0] if keys else None


def find_volunteer_by_account(engine: sa.Engine, source: str, source_id: str, schema: str | None = None) -> str | None:
    """The volunteer_key of the person a source account belongs to (None: no such account,
    or its person is deleted)."""
    sql = (
        f"SELECT m.volunteer_key FROM {table_name('volunteer_source_map', schema)} m "
        f"JOIN {table_name('dim_volunteer', schema)} v ON v.volunteer_key = m.volunteer_key "
        "WHERE m.source = :s AND m.source_id = :i AND v.status <> 'deleted'"
    )
    with engine.connect() as connection:
        keys = [row[0] for row in connection.execute(sa.text(sql), {"s": source, "i": source_id})]
    return keys[0] if keys else None


def read_service_record(
    engine: sa.Engine, volunteer_key: str, through: dt.date, schema: str | None = None
) -> ServiceRecord:
    """The person's services dated up to `through` (inclusive), summed three ways."""
    volunteers = table_name("dim_volunteer", schema)
    services = table_name("fact_service", schema)
    organizations = table_name("dim_organization", schema)
    projects = table_name("dim_project", schema)
    scope = f"FROM {services} s WHERE s.volunteer_key = :key AND s.service_date <= :through"
    params = {"key": volunteer_key, "through": through}
    with engine.connect() as connection:
        person = _rows(
            connection,
            f"SELECT volunteer_key, name_masked, id_masked, registered_on FROM {volunteers} WHERE volunteer_key = :key",
            key=volunteer_key,
        )
        if not person:
            raise CertificateError("no such volunteer in the warehouse")
        totals = _rows(
            connection,
            f"SELECT count(*) AS services, coalesce(sum(s.hours), 0) AS hours, "
            f"sum(CASE WHEN s.source = 'both' THEN 1 ELSE 0 END) AS in_both {scope}",
            **params,
        )[0]
        by_org = _rows(
            connection,
            f"SELECT s.org_key, o.name, count(*) AS services, sum(s.hours) AS hours "
            f"FROM {services} s LEFT JOIN {organizations} o ON o.org_key = s.org_key "
            f"WHERE s.volunteer_key = :key AND s.service_date <= :through "
            f"GROUP BY s.org_key, o.name",
            **params,
        )
        by_project = _rows(
            connection,
            f"SELECT s.project_key, p.name, o.name AS organization, count(*) AS services, sum(s.hours) AS hours "
            f"FROM {services} s LEFT JOIN {projects} p ON p.project_key = s.project_key "
            f"LEFT JOIN {organizations} o ON o.org_key = s.org_key "
            f"WHERE s.volunteer_key = :key AND s.service_date <= :through "
            f"GROUP BY s.project_key, p.name, o.name",
            **params,
        )
        by_year = _rows(
            connection,
            f"SELECT CAST(EXTRACT(YEAR FROM s.service_date) AS INTEGER) AS year, count(*) AS services, "
            f"sum(s.hours) AS hours {scope} GROUP BY CAST(EXTRACT(YEAR FROM s.service_date) AS INTEGER)",
            **params,
        )

    def name(value) -> str:
        return redact(str(value)) if value is not None else "未知"

    # Sorted in Python, hours first then key: the same order on every target and every day.
    organizations_out = sorted(
        ({"org_key": r["org_key"], "name": name(r["name"]), "services": int(r["services"]), "hours": hours_text(r["hours"])}
         for r in by_org),
        key=lambda r: (-Decimal(r["hours"]), str(r["org_key"])),
    )
    projects_out = sorted(
        ({"project_key": r["project_key"], "name": name(r["name"]) if r["project_key"] else "未关联项目",
          "organization": name(r["organization"]), "services": int(r["services"]), "hours": hours_text(r["hours"])}
         for r in by_project),
        key=lambda r: (-Decimal(r["hours"]), str(r["project_key"]), r["organization"]),
    )
    years_out = sorted(
        ({"year": int(r["year"]), "services": int(r["services"]), "hours": hours_text(r["hours"])} for r in by_year),
        key=lambda r: r["year"],
    )
    registered = person[0]["registered_on"]
    return ServiceRecord(
        volunteer_key=volunteer_key,
        name_masked=person[0]["name_masked"] or "*",
        id_masked=person[0]["id_masked"] or "",
        registered_on=registered.isoformat() if registered is not None else None,
        total_hours=hours_text(totals["hours"]),
        services=int(totals["services"]),
        services_in_both_systems=int(totals["in_both"] or 0),
        by_organization=organizations_out,
        by_project=projects_out,
        by_year=years_out,
    )


# An organization that has exited (退出) or is deleted (national 逻辑删除) issues nothing in its name
CANNOT_ISSUE = ("exited", "deleted")


def organization_statuses(engine: sa.Engine, org_keys: list[str], schema: str | None = None) -> dict[str, str]:
    """Each organization's status (active, suspended, exited, deleted) by org_key."""
    if not org_keys:
        return {}
    sql = sa.text(f"SELECT org_key, status FROM {table_name('dim_organization', schema)} WHERE org_key IN :keys")
    sql = sql.bindparams(sa.bindparam("keys", expanding=True))
    with engine.connect() as connection:
        return {row[0]: row[1] for row in connection.execute(sql, {"keys": list(org_keys)})}


def default_issuer(by_organization: list[dict], statuses: dict[str, str]) -> str | None:
    """The organization the person served most hours with among those active now: the one
    they served most with may have exited (6% of the sandbox's volunteers) or be suspended,
    and a certificate in its name would be stamped by an organization that cannot issue."""
    for organization in by_organization:  # most hours first
        if statuses.get(organization["org_key"]) == "active":
            return organization["org_key"]
    return None


def organization_name(engine: sa.Engine, org_key: str, schema: str | None = None) -> str | None:
    sql = f"SELECT name FROM {table_name('dim_organization', schema)} WHERE org_key = :k"
    with engine.connect() as connection:
        names = [row[0] for row in connection.execute(sa.text(sql), {"k": org_key})]
    return redact(str(names[0])) if names and names[0] is not None else None
