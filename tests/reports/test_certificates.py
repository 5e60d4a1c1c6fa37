"""Service record certificates, issued and verified the way an organization's clerk does:
the commands (`python -m pipelines.certificates hash|issue|verify`) and the Dagster job,
against the shared synced warehouse; the truth of the sandbox world says what the hours are.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from pipelines.certificates.certificate import read_certificate_page, render_html, sign
from tests.reference import resident_id
from tests.reports.conftest import AS_OF

ROOT = Path(__file__).resolve().parents[2]
ISSUED_ON = AS_OF.date()  # every service of the world is dated before it


def command(synced, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    """`python -m pipelines.certificates ARGS` in a process of its own, as a clerk runs it."""
    return subprocess.run(
        [sys.executable, "-m", "pipelines.certificates", *args],
        cwd=ROOT, env={**os.environ, **synced.env}, input=stdin, capture_output=True, text=True,
        timeout=120,
    )


def same_command(synced, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    """The same command's entry point (`main`) run in this process: what it prints and its
    exit status, without another interpreter's start-up."""
    import contextlib
    import io

    from pipelines.certificates.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in synced.env.items():
            patch.setenv(name, value)
        patch.setattr(sys, "stdin", io.StringIO(stdin))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(list(args))
    return subprocess.CompletedProcess(args, status, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def person_in_both_systems(synced):
    """A true person with accounts in both systems, a valid number and services recorded in
    both systems (a provincial log pushed to the national system: one service, two rows)."""
    truth = synced.truth
    services = truth.services[truth.services["effective"]]
    pushed = services[services["national_source_id"].notna() & services["provincial_source_id"].notna()]
    persons = truth.persons[
        truth.persons["in_national"] & truth.persons["in_provincial"]
        & (truth.persons["status"] != "deleted") & (truth.persons["cert_no"].str.len() == 18)
        & truth.persons["person_id"].isin(pushed["person_id"])
    ]
    person = persons.sort_values("person_id").iloc[0]
    own = services[services["person_id"] == person["person_id"]]
    return {
        "cert_no": person["cert_no"], "name": person["name"], "phone": person["phone"],
        "true_hours": Decimal(str(round(own["hours"].sum(), 2))).quantize(Decimal("0.01")),
        # what adding each system's own records would give: a pushed service twice
        "both_systems_added": Decimal(str(round(own["hours"].sum() + own.loc[
            own["national_source_id"].notna() & own["provincial_source_id"].notna(), "hours"].sum(), 2))),
        "pushed": int((own["national_source_id"].notna() & own["provincial_source_id"].notna()).sum()),
    }


@pytest.fixture(scope="module")
def issued(synced, person_in_both_systems, tmp_path_factory):
    out = tmp_path_factory.mktemp("certificates")
    result = command(
        synced, "issue", "--type", "resident_id", "--date", ISSUED_ON.isoformat(), "--pdf",
        "--out", str(out), stdin=person_in_both_systems["cert_no"] + "\n",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    html_path = Path(re.search(r"^html: (.+)$", result.stdout, re.M).group(1))
    pdf_path = Path(re.search(r"^pdf: (.+)$", result.stdout, re.M).group(1))
    return {"stdout": result.stdout + result.stderr, "html": html_path, "pdf": pdf_path,
            "page": html_path.read_text(encoding="utf-8")}


def test_a_volunteer_in_both_systems_gets_hours_counted_once(person_in_both_systems, issued):
    certificate = read_certificate_page(issued["page"])
    record = certificate.contents["record"]
    assert person_in_both_systems["pushed"] > 0
    assert Decimal(record["total_hours"]) == person_in_both_systems["true_hours"]
    assert Decimal(record["total_hours"]) < person_in_both_systems["both_systems_added"]
    assert record["services_in_both_systems"] >= 1
    # the three breakdowns add up to the total (each line rounded to the hundredth)
    for breakdown in ("by_organization", "by_project", "by_year"):
        rows = record[breakdown]
        difference = abs(sum(Decimal(row["hours"]) for row in rows) - Decimal(record["total_hours"]))
        assert difference <= Decimal("0.005") * len(rows), breakdown
        assert sum(row["services"] for row in rows) == record["services"], breakdown
    assert f"<b>{record['total_hours']}</b> 小时" in issued["page"]
    assert certificate.contents["issued_on"] == ISSUED_ON.isoformat()
    assert certificate.contents["issuer"]["name"] in issued["page"]
    assert re.fullmatch(r"GZZYFW-\d{8}-[0-9A-F]{10}", certificate.serial)
    pdf = issued["pdf"].read_bytes()
    assert pdf.startswith(b"%PDF")
    # the Chinese is drawn with a Chinese font, not a box per character (.ci/run installs
    # fonts-noto-cjk; a machine without one gets the warning tested below)
    assert re.search(rb"/FontName\s*/[A-Z]{6}\+[\w-]*(CJK|WenQuanYi|SourceHan)", pdf), (
        "the certificate's PDF embeds no Chinese font: install one (Debian: fonts-noto-cjk)")


def test_no_clear_number_name_or_phone_in_the_certificate_or_the_output(person_in_both_systems, issued):
    person = person_in_both_systems
    certificate = read_certificate_page(issued["page"])
    assert certificate.contents["record"]["name_masked"].startswith(person["name"][0])
    assert certificate.contents["record"]["id_masked"][:4] == person["cert_no"][:4]
    for text in (issued["page"], issued["stdout"]):
        for value in (person["cert_no"], person["name"], person["phone"]):
            assert value not in text


def test_verify_accepts_the_certificate_and_refuses_a_tampered_one(synced, issued, tmp_path):
    ok = command(synced, "verify", str(issued["html"]))
    assert ok.returncode == 0 and "AUTHENTIC" in ok.stdout, ok.stdout + ok.stderr

    certificate = read_certificate_page(issued["page"])
    total = certificate.contents["record"]["total_hours"]
    more = str(Decimal(total) + 100)
    # 1. the figure changed on the page only
    edited_page = tmp_path / "edited-page.html"
    edited_page.write_text(issued["page"].replace(f"<b>{total}</b>", f"<b>{more}</b>"), encoding="utf-8")
    # 2. the figure changed in the data and the page alike, the code kept
    contents = json.loads(json.dumps(certificate.contents))
    contents["record"]["total_hours"] = more
    forged = type(certificate)(contents=contents, code=certificate.code)
    edited_data = tmp_path / "edited-data.html"
    edited_data.write_text(render_html(forged), encoding="utf-8")
    # 3. a new code made with another key
    wrong_key = tmp_path / "wrong-key.html"
    wrong_key.write_text(render_html(sign(contents, "somebody-else's-key")), encoding="utf-8")
    for tampered in (edited_page, edited_data, wrong_key):
        result = same_command(synced, "verify", str(tampered))
        assert result.returncode == 1 and "NOT AUTHENTIC" in result.stdout, tampered.name


def test_hash_command_and_the_dagster_job_issue_the_same_certificate(synced, person_in_both_systems, issued):
    from pipelines.definitions import defs

    hashed = same_command(synced, "hash", "--type", "resident_id", stdin=person_in_both_systems["cert_no"])
    id_hash = hashed.stdout.strip()
    assert hashed.returncode == 0 and re.fullmatch(r"[0-9a-f]{64}", id_hash)
    config = {"ops": {"issue_service_certificate": {"config": {
        "id_hash": id_hash, "issued_on": ISSUED_ON.isoformat(), "pdf": False}}}}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in synced.env.items():
            patch.setenv(name, value)
        result = defs.resolve_job_def("issue_certificate").execute_in_process(
            run_config=config, instance=synced.instance)
    assert result.success
    html_path = Path(result.output_for_node("issue_service_certificate"))
    from_job = read_certificate_page(html_path.read_text(encoding="utf-8"))
    assert from_job.contents == read_certificate_page(issued["page"]).contents
    assert from_job.code == read_certificate_page(issued["page"]).code
    run_config_text = json.dumps(synced.instance.get_run_by_id(result.run_id).run_config)
    assert person_in_both_systems["cert_no"] not in run_config_text


def test_a_number_not_in_the_warehouse_is_refused_without_echoing_it(synced):
    missing = resident_id("11010119900307001")  # valid, of nobody in the world (a Beijing number)
    result = same_command(synced, "issue", "--date", ISSUED_ON.isoformat(), stdin=missing)
    assert result.returncode == 1 and "no volunteer" in result.stderr
    assert missing not in result.stdout + result.stderr
    wrong_check = missing[:17] + ("0" if missing[17] != "0" else "1")
    invalid = same_command(synced, "hash", stdin=wrong_check)
    assert invalid.returncode == 1 and wrong_check not in invalid.stdout + invalid.stderr



def test_the_public_development_key_signs_nothing_for_a_remote_warehouse():
    from pipelines.certificates import ensure_signing_key
    from pipelines.certificates.record import CertificateError
    from pipelines.config import Settings

    remote = Settings(warehouse_url="postgresql+psycopg://etl@warehouse.gov.internal/warehouse")
    with pytest.raises(CertificateError, match="CERTIFICATE_KEY"):
        ensure_signing_key(remote)
    ensure_signing_key(Settings(warehouse_url=remote.warehouse_url, certificate_key="a-production-secret"))
    ensure_signing_key(Settings())  # a DuckDB file on this machine: the development key will do


def test_a_volunteer_whose_number_no_source_holds_in_clear_is_issued_by_account(synced, tmp_path):
    """A number masked at the source (or missing) gives the person no id_hash: by number, the
    clerk was told only "no volunteer" (one volunteer in seven in the sandbox, whatever their
    hours); by a source account the certificate is issued, hours counted once."""
    truth = synced.truth
    accounts = truth.accounts[(truth.accounts["entity"] == "volunteer") & ~truth.accounts["is_deleted"]]
    hidden = accounts["dirt"].fillna("").str.contains("masked|cert_missing")
    only_hidden = hidden.groupby(accounts["true_id"]).all()
    services = truth.services[truth.services["effective"]]
    hours = services.groupby("person_id")["hours"].sum()
    persons = truth.persons[truth.persons["person_id"].isin(only_hidden[only_hidden].index)
                            & (truth.persons["status"] != "deleted")
                            & truth.persons["person_id"].isin(hours[hours > 0].index)]
    assert len(persons), "the world has no volunteer known by a masked number alone"
    person = persons.sort_values("person_id").iloc[0]

    by_number = same_command(synced, "issue", "--date", ISSUED_ON.isoformat(), stdin=person["cert_no"])
    assert by_number.returncode == 1 and "--account" in by_number.stderr
    assert person["cert_no"] not in by_number.stdout + by_number.stderr

    account = accounts[accounts["true_id"] == person["person_id"]].sort_values(["source", "source_id"]).iloc[0]
    issued = same_command(synced, "issue", "--account", f"{account['source']}:{account['source_id']}",
                          "--date", ISSUED_ON.isoformat(), "--out", str(tmp_path))
    assert issued.returncode == 0, issued.stderr[-2000:]
    page = Path(re.search(r"^html: (.+)$", issued.stdout, re.M).group(1)).read_text(encoding="utf-8")
    total = Decimal(read_certificate_page(page).contents["record"]["total_hours"])
    assert total == Decimal(str(round(hours[person["person_id"]], 2))).quantize(Decimal("0.01"))
    assert person["name"] not in page and person["cert_no"] not in page


def test_an_account_that_is_no_account_is_refused_without_echoing_it(synced):
    number = resident_id("52010219900101123")
    for typed in (f"national:{number}", number, "provincial:99999999"):
        result = same_command(synced, "issue", "--account", typed, "--date", ISSUED_ON.isoformat())
        assert result.returncode == 1 and result.stderr.startswith("error: "), typed
        assert number not in result.stdout + result.stderr


def test_issuing_a_pdf_without_a_chinese_font_warns_the_clerk(synced, person_in_both_systems, tmp_path, monkeypatch):
    from tests.reports.test_parts import _fake_fc_list

    monkeypatch.setenv("PATH", _fake_fc_list(tmp_path, "") + os.pathsep + os.environ["PATH"])
    result = same_command(synced, "issue", "--date", ISSUED_ON.isoformat(), "--pdf", "--out", str(tmp_path),
                          stdin=person_in_both_systems["cert_no"] + "\n")
    assert result.returncode == 0 and "pdf: " in result.stdout
    assert "warning: 没有中文字体 / no Chinese font on this machine" in result.stderr
