"""Service record certificates (志愿服务记录证明): issued free from the warehouse for one
volunteer, checked by anyone with the verification command.

`issue` looks the person up by `id_hash` (the clear number is hashed before anything else,
`pipelines.certificates.record.lookup_hash`), reads their hours counted once, signs the
contents with CERTIFICATE_KEY and writes the page (and a PDF) under
`DATA_DIR/certificates/<serial>.html`; `verify_page` checks a page. The command line is
`python -m pipelines.certificates hash|issue|verify`; the Dagster job `issue_certificate`
(assets/certificates.py) runs `issue` with run config.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from pipelines.certificates.certificate import (
    Certificate,
    Verification,
    contents,
    read_certificate_page,
    render_html,
    sign,
    verify_contents,
)
from pipelines.certificates.record import (
    CANNOT_ISSUE,
    CertificateError,
    check_id_hash,
    check_issue_date,
    default_issuer,
    find_volunteer,
    find_volunteer_by_account,
    organization_name,
    organization_statuses,
    parse_account,
    read_service_record,
)
from pipelines.clock import AsOf
from pipelines.config import Settings
from pipelines.files import atomic_path

# What a counter clerk reads when a volunteer cannot be issued one, and what to do instead
NOT_FOUND = (
    "no volunteer with this certificate number in the warehouse (未找到该证件号码的志愿者): "
    "a volunteer whose number the sources hold masked or not at all is found by an account "
    "instead (--account national:<volunteer number> or provincial:<account id>)"
)
NO_SERVICE = (
    "the volunteer has no service with any organization (该志愿者尚无服务记录): name the "
    "issuing organization (--issuer ORG_KEY, or issuer_org_key in the job's run config)"
)
NO_ACTIVE_ISSUER = (
    "no organization the volunteer served with is active now (服务过的组织均已退出、删除或暂停): "
    "name the issuing organization (--issuer ORG_KEY, or issuer_org_key in the job's run config)"
)


def ensure_signing_key(settings: Settings) -> None:
    """Refuse to sign with the public development CERTIFICATE_KEY for a warehouse that is not
    on this machine: anyone could then make a valid code for any contents."""
    from pipelines.config import DEVELOPMENT_CERTIFICATE_KEY
    from pipelines.warehouse.publish import is_local_warehouse

    if settings.certificate_key == DEVELOPMENT_CERTIFICATE_KEY and not is_local_warehouse(
        settings.resolved_warehouse_url
    ):
        raise CertificateError(
            "refusing to issue certificates with the development CERTIFICATE_KEY: set "
            "CERTIFICATE_KEY to the production secret (codes made with the public key prove nothing)"
        )


@dataclass(frozen=True)
class IssuedCertificate:
    certificate: Certificate
    html_path: Path
    pdf_path: Path | None
    warnings: tuple[str, ...] = ()  # said to the clerk: a PDF printed without a Chinese font


def issue(
    settings: Settings,
    *,
    id_hash: str | None = None,
    account: str | None = None,
    issued_on: dt.date,
    today: dt.date | None = None,
    cert_type: str = "resident_id",
    issuer_org_key: str | None = None,
    schema: str | None = None,
    pdf: bool = False,
    out_dir: Path | None = None,
) -> IssuedCertificate:
    """Issue the certificate of the person with `id_hash`, or of the person a source `account`
    belongs to (`national:<volunteer number>`, `provincial:<account id>`), dated `issued_on`
    (their hours up to that day; never after `today`, Beijing's by default). The issuer
    defaults to the active organization they served most hours with; an exited or
    deleted one issues nothing."""
    from pipelines.warehouse.reader import read_only_engine

    ensure_signing_key(settings)
    check_issue_date(issued_on, today or AsOf.now().date)
    if (id_hash is None) == (account is None):
        raise CertificateError("name the volunteer by id_hash or by account, one of the two")
    wanted = check_id_hash(id_hash) if id_hash is not None else parse_account(account)
    engine = read_only_engine(settings.resolved_warehouse_url)
    try:
        if id_hash is not None:
            volunteer_key = find_volunteer(engine, wanted, schema)
            if volunteer_key is None:
                raise CertificateError(NOT_FOUND)
        else:
            volunteer_key = find_volunteer_by_account(engine, *wanted, schema)
            if volunteer_key is None:
                raise CertificateError("no volunteer with this account in the warehouse (未找到该账号的志愿者)")
        record = read_service_record(engine, volunteer_key, issued_on, schema)
        if issuer_org_key is None and not record.by_organization:
            raise CertificateError(NO_SERVICE)
        served_with = [o["org_key"] for o in record.by_organization]
        statuses = organization_statuses(engine, served_with + ([issuer_org_key] if issuer_org_key else []), schema)
        issuer = issuer_org_key or default_issuer(record.by_organization, statuses)
        if issuer is None:
            raise CertificateError(NO_ACTIVE_ISSUER)
        if statuses.get(issuer) in CANNOT_ISSUE:
            raise CertificateError("the issuing organization has exited or is deleted (该组织已退出或已删除)")
        issuer_name = organization_name(engine, issuer, schema)
        if issuer_name is None:
            raise CertificateError("the issuing organization is not in the warehouse")
    finally:
        engine.dispose()
    certificate = sign(
        contents(record, cert_type=cert_type, issuer_org_key=issuer, issuer_name=issuer_name, issued_on=issued_on),
        settings.certificate_key,
    )
    folder = out_dir or settings.certificates_dir
    html_path = folder / f"{certificate.serial}.html"
    with atomic_path(html_path) as temp:
        temp.write_text(render_html(certificate), encoding="utf-8")
    pdf_path, warnings = None, ()
    if pdf:
        from pipelines.certificates.pdf import NO_CHINESE_FONT, chinese_fonts_missing, print_pdf

        pdf_path = print_pdf(html_path, html_path.with_suffix(".pdf"))
        if chinese_fonts_missing():
            warnings = (NO_CHINESE_FONT,)
    return IssuedCertificate(certificate, html_path, pdf_path, warnings)


def verify_page(settings: Settings, page: str, *, schema: str | None = None,
                against_warehouse: bool = True) -> Verification:
    """Verify a certificate page: its code, its text, and (by default) the warehouse."""
    certificate = read_certificate_page(page)
    current = None
    if against_warehouse:
        from pipelines.warehouse.reader import read_only_engine

        record = certificate.contents.get("record") or {}
        engine = read_only_engine(settings.resolved_warehouse_url)
        try:
            current = read_service_record(
                engine, str(record.get("volunteer_key")),
                dt.date.fromisoformat(certificate.contents["records_through"]), schema,
            )
        except (CertificateError, KeyError, ValueError):
            current = None
        finally:
            engine.dispose()
        if current is None:
            verification = verify_contents(certificate, settings.certificate_key, page)
            return Verification(verification.code_valid, verification.page_matches, False,
                                verification.problems + ("数据仓库中没有该志愿者",))
    return verify_contents(certificate, settings.certificate_key, page, current)
