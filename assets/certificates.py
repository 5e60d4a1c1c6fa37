"""The `issue_certificate` job: one service record certificate, with run config.

Run config is stored and shown in the UI, so it never holds a clear certificate number:
it takes the person's `id_hash`, which `python -m pipelines.certificates hash` prints from
the number read on standard input. Thin over `pipelines.certificates.issue`; the output's
metadata names the serial, the verification code and the files, nothing personal.
"""

from typing import Optional

from dagster import Config, MetadataValue, OpExecutionContext, Output, job, op

from assets.run import errors_scrubbed, run_as_of, safe_metadata
from pipelines.resources import PipelineSettings


class CertificateRequest(Config):
    id_hash: Optional[str] = None  # 64 hex: `python -m pipelines.certificates hash`, never the number itself
    # or, for a volunteer whose number no source holds in clear: national:<volunteer number>
    # or provincial:<account id>
    account: Optional[str] = None
    cert_type: str = "resident_id"
    issuer_org_key: Optional[str] = None  # default: the organization served most hours with
    issued_on: Optional[str] = None  # YYYY-MM-DD; default: the run's Beijing date
    pdf: bool = True


@op(description="Issue one volunteer's service record certificate (HTML and PDF) from the warehouse.")
def issue_service_certificate(
    context: OpExecutionContext, config: CertificateRequest, pipeline_settings: PipelineSettings
) -> Output[str]:
    import datetime as dt

    from pipelines.certificates import issue

    settings = pipeline_settings.settings()
    today = run_as_of(context).date
    with errors_scrubbed():
        issued = issue(
            settings,
            id_hash=config.id_hash,
            account=config.account,
            cert_type=config.cert_type,
            issuer_org_key=config.issuer_org_key,
            issued_on=dt.date.fromisoformat(config.issued_on) if config.issued_on else today,
            today=today,
            schema=pipeline_settings.warehouse_schema,
            pdf=config.pdf,
        )
    context.log.info("certificate %s issued", issued.certificate.serial)
    for warning in issued.warnings:
        context.log.warning(warning)
    metadata = {
        "serial": MetadataValue.text(issued.certificate.serial),
        "verification_code": MetadataValue.text(issued.certificate.code),
        "html": MetadataValue.path(str(issued.html_path.resolve())),
        "total_hours": MetadataValue.text(issued.certificate.contents["record"]["total_hours"]),
    }
    if issued.pdf_path:
        metadata["pdf"] = MetadataValue.path(str(issued.pdf_path.resolve()))
    if issued.warnings:
        metadata["warnings"] = MetadataValue.text("; ".join(issued.warnings))
    return Output(str(issued.html_path), metadata=safe_metadata(metadata))


@job(description="Issue a service record certificate (志愿服务记录证明) for one volunteer, by id_hash or by account.")
def issue_certificate():
    issue_service_certificate()


jobs = [issue_certificate]
