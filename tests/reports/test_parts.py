"""The small pure parts of the report and the certificates, tested directly: the lookup hash
is the contract's `id_hash`, the code changes with any content, hostile texts stay text,
numbers are written one way."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from pipelines.certificates.certificate import (
    Certificate,
    read_certificate_page,
    render_html,
    sign,
    verification_code,
    verify_contents,
)
from pipelines.certificates.record import CertificateError, ServiceRecord, check_id_hash, lookup_hash
from pipelines.reports import labels
from pipelines.reports.render import Column, table_html
from tests.reference import id_hash, resident_id

KEY = "unit-test-key"
TODAY = dt.date(2026, 6, 30)
NUMBER = resident_id("52010219900101123")


def test_lookup_hash_is_the_contracts_id_hash_of_the_normalized_number():
    assert lookup_hash("resident_id", NUMBER, KEY, today=TODAY) == id_hash(NUMBER, KEY)
    written = " " + NUMBER[:6] + " " + NUMBER[6:].lower().replace("x", "ｘ") + " "
    assert lookup_hash("resident_id", written, KEY, today=TODAY) == id_hash(NUMBER, KEY)
    legacy = "520102900101123"  # 15 digits: 19 inserted, check character computed
    assert lookup_hash("resident_id", legacy, KEY, today=TODAY) == id_hash(resident_id("52010219900101123"), KEY)


@pytest.mark.parametrize("cert_type, number", [
    ("resident_id", NUMBER[:17] + ("1" if NUMBER[17] != "1" else "2")),  # check character wrong
    ("resident_id", resident_id("52010230000101123")),  # born in the future
    ("passport", "E12345678"),  # not hashed in the warehouse
    ("driving_licence", NUMBER),
])
def test_numbers_that_cannot_be_looked_up_are_refused_without_being_echoed(cert_type, number):
    with pytest.raises(CertificateError) as refused:
        lookup_hash(cert_type, number, KEY, today=TODAY)
    assert number not in str(refused.value)
    with pytest.raises(CertificateError) as not_a_hash:
        check_id_hash(NUMBER)
    assert NUMBER not in str(not_a_hash.value)


def _record(**changes) -> ServiceRecord:
    record = ServiceRecord(
        volunteer_key="V1", name_masked="张**", id_masked="5201**********123X", registered_on="2020-01-02",
        total_hours="12.50", services=3, services_in_both_systems=1,
        by_organization=[{"org_key": "O1", "name": "贵阳市志愿服务队</script><script>alert(1)</script>",
                          "services": 3, "hours": "12.50"}],
        by_project=[{"project_key": "P1", "name": "暖冬行动 & <b>", "organization": "贵阳市志愿服务队",
                     "services": 3, "hours": "12.50"}],
        by_year=[{"year": 2025, "services": 3, "hours": "12.50"}],
    )
    for name, value in changes.items():
        setattr(record, name, value)
    return record


def _contents(record: ServiceRecord) -> dict:
    from pipelines.certificates.certificate import contents

    return contents(record, cert_type="resident_id", issuer_org_key="O1", issuer_name="贵阳市志愿服务队",
                    issued_on=TODAY)


def test_the_code_depends_on_every_content_and_the_key_not_on_key_order():
    base = _contents(_record())
    code = verification_code(base, KEY)
    assert code == verification_code(dict(reversed(list(base.items()))), KEY)
    assert code != verification_code(base, KEY + "x")
    for changed in (_record(total_hours="12.51"), _record(name_masked="李**"), _record(services=4)):
        assert verification_code(_contents(changed), KEY) != code
    assert len(code) == 23 and code.count("-") == 3


def test_a_page_with_hostile_names_reads_back_as_issued_and_runs_nothing():
    certificate = sign(_contents(_record()), KEY)
    page = render_html(certificate)
    assert "<script>alert" not in page and "&lt;/script&gt;" in page
    assert page.count("<script") == 1  # the certificate data, which no browser runs
    back = read_certificate_page(page)
    assert back == certificate
    assert verify_contents(back, KEY, page).authentic
    assert not verify_contents(Certificate(back.contents, "00000-00000-00000-00000"), KEY, page).authentic


def test_report_tables_escape_and_redact_what_the_warehouse_holds():
    frame = pd.DataFrame({"brand": [f"夜校（联系 {NUMBER}）", "<img src=x onerror=alert(1)>", None],
                          "hours": [1234.56, 0.04, None], "projects": [1200, 3, None]})
    page = table_html(frame, [Column("品牌", "brand"), Column("时长", "hours", "hours"),
                              Column("项目", "projects", "count")], "t")
    assert NUMBER not in page and "5201" in page
    assert "<img" not in page and "&lt;img" in page
    assert "<td>未知</td>" in page
    assert "1,234.6" in page and "1,200" in page and "—" in page


def test_numbers_are_written_one_way():
    assert (labels.count(12345), labels.hours(1234.56), labels.share(0.4523), labels.score(87.25)) == (
        "12,345", "1,234.6", "45.2%", "87.2")
    assert labels.share(None) == labels.count(None) == labels.score(float("nan")) == "—"
    assert labels.label(labels.RULES, "future_date") == "日期晚于同步时间"
    assert labels.label(labels.RULES, "a_new_rule") == "a_new_rule"


@pytest.mark.parametrize("made", ["missing", "pdf", "folder"])
def test_verify_says_plainly_what_a_file_that_is_no_certificate_page_is(tmp_path, made, capsys):
    """A clerk handed the PDF (the certificate is issued as both), or a mistyped path, got
    a Python traceback; the message never names the file (it may be named after the person)."""
    from pipelines.certificates.__main__ import main

    path = tmp_path / f"{NUMBER}.pdf"
    if made == "pdf":
        path.write_bytes(b"%PDF-1.4\n\xd3\xeb\xff\x00 binary")
    elif made == "folder":
        path.mkdir()
    assert main(["verify", "--no-warehouse", str(path)]) == 1
    said = capsys.readouterr()
    assert said.err.startswith("error: ") and ("/ " in said.err)
    assert NUMBER not in said.out + said.err


def test_a_certificate_dated_after_today_is_refused(monkeypatch, capsys, tmp_path):
    """`issue --date 2030-01-01` (a typo for 2026) issued a certificate of the hours "up to"
    a day to come, under a valid code."""
    import io
    import sys

    from pipelines.certificates import issue
    from pipelines.certificates.__main__ import main
    from pipelines.certificates.record import check_issue_date
    from pipelines.config import Settings

    assert check_issue_date(TODAY, TODAY) == TODAY
    with pytest.raises(CertificateError, match="after today"):
        check_issue_date(TODAY + dt.timedelta(days=1), TODAY)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    with pytest.raises(CertificateError, match="after today"):  # whoever calls it: the job, the CLI
        issue(Settings.from_env(), id_hash="0" * 64, issued_on=TODAY + dt.timedelta(days=1), today=TODAY)
    monkeypatch.setattr(sys, "stdin", io.StringIO(NUMBER + "\n"))
    assert main(["issue", "--date", "2999-01-01", "--out", str(tmp_path)]) == 1
    said = capsys.readouterr()
    assert "after today" in said.err and NUMBER not in said.out + said.err
    assert not list(tmp_path.glob("*.html"))


def test_the_default_issuer_is_the_active_organization_served_most_with(tmp_path):
    """The organization a volunteer served most hours with may have exited (退出): the
    certificate named it as the issuer, to be stamped by an organization that cannot issue
    (109 of the 3,000-person sandbox's volunteers, 6%)."""
    from pipelines.certificates import issue
    from pipelines.config import Settings
    from tests.reports.test_report_sections import warehouse

    id_hash = "a" * 64
    services = [{"service_key": f"S{i}", "volunteer_key": "V1", "org_key": org, "service_date": dt.date(2026, 5, i + 1),
                 "hours": hours, "source": "national"}
                for i, (org, hours) in enumerate([("O1", 10.0), ("O3", 7.0), ("O2", 5.0)])]
    url = warehouse(tmp_path / "w.duckdb", {
        "dim_volunteer": [{"volunteer_key": "V1", "id_hash": id_hash, "name_masked": "张*", "status": "active"}],
        "dim_organization": [{"org_key": "O1", "name": "已退出的队", "status": "exited"},
                             {"org_key": "O3", "name": "暂停的队", "status": "suspended"},
                             {"org_key": "O2", "name": "在册的队", "status": "active"}],
        "fact_service": services,
    })
    settings = Settings(data_dir=tmp_path, warehouse_url=url, certificate_key=KEY + "-of-at-least-32-bytes!!")
    issued = issue(settings, id_hash=id_hash, issued_on=TODAY, out_dir=tmp_path)
    assert issued.certificate.contents["issuer"]["org_key"] == "O2"
    assert issued.certificate.contents["record"]["total_hours"] == "22.00"
    with pytest.raises(CertificateError, match="exited"):
        issue(settings, id_hash=id_hash, issued_on=TODAY, out_dir=tmp_path, issuer_org_key="O1")


def _fake_fc_list(folder, families: str):
    script = folder / "fc-list"
    script.write_text(f"#!/bin/sh\nprintf '{families}'\n", encoding="utf-8")
    script.chmod(0o755)
    return str(folder)


def test_a_machine_without_a_chinese_font_is_told(tmp_path, monkeypatch):
    """Chromium prints every Chinese character of a certificate as a box when fontconfig knows
    no Chinese font, and exits 0: the clerk handed the volunteer a PDF nobody can read."""
    import os

    from pipelines.certificates.pdf import NO_CHINESE_FONT, chinese_fonts_missing

    monkeypatch.setenv("PATH", _fake_fc_list(tmp_path, "") + os.pathsep + os.environ["PATH"])
    assert chinese_fonts_missing()
    assert "fonts-noto-cjk" in NO_CHINESE_FONT
    (tmp_path / "cjk").mkdir()
    monkeypatch.setenv("PATH", _fake_fc_list(tmp_path / "cjk", "Noto Sans CJK SC\\n") + os.pathsep + os.environ["PATH"])
    assert not chinese_fonts_missing()
