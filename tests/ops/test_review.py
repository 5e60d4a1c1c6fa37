"""The stewards' review: uncertain pairs out as a workbook, decisions back through the inbox
sensor, honoured by the next resolution; a wrong workbook refused whole with a clear message.

A small synthetic staged world (tests/resolve/) with planted uncertain pairs: the same name,
a birth date one digit apart, a county in another prefecture, no number to decide by. (With a
neighbouring county such a pair now links: neither account has a counterpart in the other
system yet, which the `system` comparison counts for it.)
"""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from openpyxl import load_workbook

from assets.review import review_workbooks, volunteer_match_workbook
from pipelines.config import Settings
from pipelines.resolve.store import resolve_all
from pipelines.resources import PipelineSettings
from pipelines.review import WORKBOOK_NAME, inbox_dir, outbox_dir, read_workbook
from tests.resolve.conftest import account
from tests.resolve.test_resolved_assets import AS_OF, write_staged_world

# (name, birth date, the other account's birth date, gender, county, the other's county)
PLANTED = [
    ("陶然", date(1988, 8, 8), date(1988, 8, 18), "M", "520102", "520302"),
    ("顾城", date(1979, 9, 9), date(1979, 9, 19), "M", "520102", "520402"),
    ("柳青", date(1983, 2, 3), date(1983, 2, 13), "F", "520302", "520102"),
    ("沈括", date(1970, 1, 1), date(1970, 1, 21), "M", "520201", "520502"),
]


@pytest.fixture(scope="module")
def resolved_world(tmp_path_factory) -> Path:
    """DATA_DIR of a staged world with planted uncertain pairs, resolved once."""
    data_dir = tmp_path_factory.mktemp("review_world")
    write_staged_world(data_dir, persons=150, seed=4)
    staged = data_dir / "staged" / "volunteers.parquet"
    planted = []
    for i, (name, birth, other_birth, gender, county, other_county) in enumerate(PLANTED):
        planted += [account("national", f"RV{i}", name, birth, gender, county),
                    account("provincial", f"RV{i}p", name, other_birth, gender, other_county)]
    pd.concat([pd.read_parquet(staged), pd.DataFrame(planted)], ignore_index=True).to_parquet(staged)
    resolve_all(Settings(data_dir=data_dir), AS_OF)
    return data_dir


@pytest.fixture
def data_dir(resolved_world, tmp_path) -> Path:
    """A copy of the resolved world for one test (decisions change its state)."""
    return Path(shutil.copytree(resolved_world, tmp_path / "data"))


def export(data_dir: Path) -> Path:
    result = dg.materialize([volunteer_match_workbook],
                            resources={"pipeline_settings": PipelineSettings(data_dir=str(data_dir))})
    assert result.success
    return outbox_dir(data_dir) / WORKBOOK_NAME


def fill(workbook: Path, decisions: dict[str, str], into: Path, edit=None, name: str = "filled.xlsx") -> Path:
    """The steward's work: a decision per national account id, saved into the inbox."""
    book = load_workbook(workbook)
    sheet = book["review"]
    header = [cell.value for cell in sheet[1]]
    for row in sheet.iter_rows(min_row=2):
        values = dict(zip(header, row))
        national_id = next(values[f"{side}_source_id"].value for side in ("left", "right")
                           if values[f"{side}_source"].value == "national")
        if national_id in decisions:
            values["decision"].value = decisions[national_id]
            values["decided_by"].value = "steward 7"
        if edit:
            edit(values, national_id)
    into.mkdir(parents=True, exist_ok=True)
    target = into / name
    book.save(target)
    return target


def take(data_dir: Path) -> str:
    context = dg.build_sensor_context(resources={"pipeline_settings": PipelineSettings(data_dir=str(data_dir))})
    outcome = review_workbooks(context)
    assert isinstance(outcome, dg.SkipReason)  # it records decisions; it launches no run
    return outcome.skip_message


def keys(data_dir: Path) -> pd.Series:
    source_map = pd.read_parquet(data_dir / "resolved" / "volunteer_source_map.parquet")
    return source_map.set_index("source_id")["volunteer_key"]


def test_the_workbook_shows_masked_evidence_side_by_side(data_dir):
    rows = read_sheet(export(data_dir))
    planted_pairs = rows.loc[rows["left_source_id"].str.startswith("RV")]
    assert len(planted_pairs) == len(PLANTED)
    row = planted_pairs.loc[planted_pairs["left_source_id"] == "RV0"].iloc[0]
    assert (row["left_name"], row["right_name"]) == ("陶*", "陶*")
    # the year alone, and the two full dates compared (one digit apart: different)
    assert (row["left_birth_year"], row["right_birth_year"], row["birth_date_compared"]) == ("1988", "1988", "不同")
    assert not [c for c in rows.columns if c.endswith("birth_date")]
    assert (row["left_region_code"], row["right_region_code"]) == ("520102", "520302")
    assert "birth_date" in row["levels"] and row["reason"] == "uncertain"
    assert set(rows["decision"].fillna("")) == {""}
    # no full name of the world anywhere in the workbook
    names = set(pd.read_parquet(data_dir / "staged" / "volunteers.parquet")["name"])
    text = rows.astype(str).to_string()
    assert not [n for n in names if len(n) >= 2 and n in text]


def read_sheet(workbook: Path) -> pd.DataFrame:
    sheet = load_workbook(workbook, read_only=True)["review"]
    lines = list(sheet.iter_rows(values_only=True))
    return pd.DataFrame(lines[1:], columns=lines[0])


def test_decisions_in_a_dropped_workbook_are_honoured_by_the_next_sync(data_dir):
    before = keys(data_dir)
    assert before["RV0"] != before["RV0p"] and before["RV1"] != before["RV1p"]
    dropped = fill(export(data_dir), {"RV0": "相同", "RV1": "Different "}, inbox_dir(data_dir))

    message = take(data_dir)
    assert "2 decision(s) recorded" in message
    assert not dropped.exists() and len(list((inbox_dir(data_dir) / "accepted").glob("*filled.xlsx"))) == 1
    assert take(data_dir) == "no workbook in the review inbox"  # taken once

    resolve_all(Settings(data_dir=data_dir), AS_OF)  # the next sync
    after = keys(data_dir)
    assert after["RV0"] == after["RV0p"]  # same: one person now
    assert after["RV1"] != after["RV1p"]  # different: stays two
    source_map = pd.read_parquet(data_dir / "resolved" / "volunteer_source_map.parquet").set_index("source_id")
    assert "review_same" in {source_map.loc["RV0", "match_method"], source_map.loc["RV0p", "match_method"]}
    under_review = set(read_sheet(export(data_dir))["left_source_id"])
    assert {"RV0", "RV1"}.isdisjoint(under_review) and {"RV2", "RV3"} <= under_review


def test_a_workbook_with_an_unknown_pair_or_a_bad_value_is_refused_whole(data_dir):
    def tamper(values, national_id):
        if national_id == "RV3":
            side = "left" if values["left_source"].value == "provincial" else "right"
            values[f"{side}_source_id"].value = "RV9p"  # an edited id: a pair nobody proposed

    decisions_file = data_dir / "state" / "resolve" / "review_decisions.csv"
    decisions_before = decisions_file.read_text(encoding="utf-8")
    fill(export(data_dir), {"RV0": "same", "RV2": "maybe 138 1234 5678", "RV3": "same"},
         inbox_dir(data_dir), edit=tamper)

    message = take(data_dir)
    assert "filled.xlsx refused (2 problem(s))" in message
    assert "is not 'same' or 'different'" in message and "is not under review" in message
    [errors] = (inbox_dir(data_dir) / "rejected").glob("*filled.xlsx.errors.txt")
    report = errors.read_text(encoding="utf-8")
    assert "do not edit the first four columns" in report
    assert "the decision (19 characters) is not 'same' or 'different'" in report
    # what the steward typed is not echoed, masked or not
    for typed in ("RV9p", "maybe", "1234", "5678", "138"):
        assert typed not in report and typed not in message
    assert [line.split(":")[0] for line in report.splitlines()[1:]] == sorted(
        [line.split(":")[0] for line in report.splitlines()[1:]], key=lambda r: int(r.split()[1]))
    assert decisions_file.read_text(encoding="utf-8") == decisions_before  # nothing applied, not even RV0


# what a steward may type into a decision cell, and name a workbook: a volunteer's name and
# ID number (the audit found both in the sensor's tick, the .errors.txt and the run's log)
TYPED_DECISION = "sfz520102198001011231 司马光"
WORKBOOK_FILE = "审核_司马光_SFZ520102198001011274.xlsx"


def test_neither_what_a_steward_typed_nor_the_workbook_s_name_is_echoed(data_dir):
    fill(export(data_dir), {"RV0": TYPED_DECISION, "RV1": "诸葛亮"}, inbox_dir(data_dir), name=WORKBOOK_FILE)

    message = take(data_dir)
    rejected = sorted(p.name for p in (inbox_dir(data_dir) / "rejected").iterdir())
    report = (inbox_dir(data_dir) / "rejected" / rejected[-1]).read_text(encoding="utf-8")
    everything = "\n".join([message, report, *rejected])
    for piece in ("司马", "诸葛", "审核", "SFZ", "sfz", "5201", "1231", "1274", "0101"):
        assert piece not in everything, piece
    # the workbook named by a short keyed hash of its name, the same in the tick, the report
    # and the folder; each row by its number and what is wrong
    [shown] = {word for word in message.split() if word.startswith("workbook-")}
    assert shown.endswith(".xlsx") and len(shown) == len("workbook-") + 8 + len(".xlsx")
    assert message.startswith(f"{shown} refused (2 problem(s))")
    assert report.startswith(f"{shown} was not applied")
    assert [name.split("-", 1)[1] for name in rejected] == [shown, shown + ".errors.txt"]
    assert "the decision (25 characters) is not 'same' or 'different'" in report
    assert "the decision (3 characters) is not 'same' or 'different'" in report


def test_the_decisions_file_keeps_no_name_a_steward_wrote_in_a_note(data_dir):
    def noted(values, national_id):
        if national_id == "RV0":
            values["note"].value = "与 司马光 同一人"

    fill(export(data_dir), {"RV0": "same"}, inbox_dir(data_dir), edit=noted, name=WORKBOOK_FILE)
    message = take(data_dir)
    assert "1 decision(s) recorded" in message and "司马" not in message
    decisions = (data_dir / "state" / "resolve" / "review_decisions.csv").read_text(encoding="utf-8")
    assert "司马*" in decisions and "司马光" not in decisions
    assert not [p for p in (inbox_dir(data_dir) / "accepted").iterdir() if "司马" in p.name]


def test_a_file_that_is_no_workbook_gets_a_clear_message(tmp_path):
    junk = tmp_path / "decisions.xlsx"
    junk.write_text("same,different\n", encoding="utf-8")
    [error] = read_workbook(junk).errors
    assert error.startswith("the file cannot be read as an .xlsx workbook")


def test_hostile_source_text_is_kept_as_text_and_never_stops_the_export(tmp_path):
    from pipelines.review import review_rows, workbook_bytes

    review = pd.DataFrame([{
        "left_source": "national", "left_source_id": "=HYPERLINK(\"http://x\",\"id\")",
        "right_source": "provincial", "right_source_id": "77\x01\x1b", "match_probability": 0.7,
        "reason": "uncertain", "evidence": "prior -17.8 | name exact +7.0 => weight +1.0, p 0.7"},
        {"left_source": "national", "left_source_id": "13812345678", "right_source": "provincial",
         "right_source_id": "9", "match_probability": 0.6, "reason": "uncertain", "evidence": ""}])
    staged = pd.DataFrame([account("national", "=HYPERLINK(\"http://x\",\"id\")", "司马光", None, "M", "520102")])
    workbook = tmp_path / "review.xlsx"
    workbook.write_bytes(workbook_bytes(review_rows(review, staged)))
    sheet = read_sheet(workbook)
    assert "13812345678" not in sheet.to_string() and "138****5678" in set(sheet["left_source_id"])
    row = sheet.iloc[0]
    assert row["left_source_id"] == "=HYPERLINK(\"http://x\",\"id\")"  # text, not a formula
    assert row["right_source_id"] == "77\ufffd\ufffd"
    assert row["left_name"] == "司马*"  # a compound family name kept whole
    assert row["levels"] == "name exact"


def test_evidence_is_made_for_the_accounts_under_review_only():
    """The same id in the other system, or an account no pair names, gives no evidence row
    (at 1M persons masking every account cost 17 s a sync for 832 pairs)."""
    from pipelines.review import accounts_under_review, review_rows

    review = pd.DataFrame([{
        "left_source": "national", "left_source_id": "7", "right_source": "provincial",
        "right_source_id": "8", "match_probability": 0.7, "reason": "uncertain", "evidence": ""}])
    staged = pd.DataFrame([
        account("national", "7", "陶然", date(1988, 8, 8), "M", "520102"),
        account("provincial", "8", "陶然", date(1988, 8, 18), "M", "520111"),
        account("provincial", "7", "顾城", date(1979, 9, 9), "M", "520102"),  # same id, other system
        account("national", "9", "柳青", date(1983, 2, 3), "F", "520302"),
    ])
    kept = accounts_under_review(review, staged)
    assert sorted(zip(kept["source"], kept["source_id"])) == [("national", "7"), ("provincial", "8")]
    [row] = review_rows(review, staged).to_dict("records")
    assert (row["left_name"], row["right_name"], row["right_birth_year"]) == ("陶*", "陶*", "1988")


def test_names_staged_sealed_are_masked_as_the_clear_ones():
    """Staging keeps names sealed (pipelines/name_seal.py): the workbook masks the name, not
    its sealed form."""
    from pipelines.name_seal import sealed_names
    from pipelines.review import account_evidence

    staged = pd.DataFrame([account("national", "7", "司马光", date(1988, 8, 8), "M", "520102"),
                           account("provincial", "8", "陶然", date(1988, 8, 18), "M", "520111")])
    staged["name"] = sealed_names(staged["name"], "review-key")
    evidence = account_evidence(staged, name_key="review-key")
    assert evidence["name"].tolist() == ["司马*", "陶*"]


def test_id_ends_staged_sealed_are_shown_as_the_clear_ones():
    """Staging keeps an ID number's last four sealed (pipelines/name_seal.py): the workbook
    shows the steward the number's real ends, not their sealed form."""
    from pipelines.name_seal import sealed_suffixes
    from pipelines.review import account_evidence

    staged = pd.DataFrame([account("national", "7", "司马光", date(1988, 8, 8), "M", "520102", cert="52010219880808123X"),
                           account("provincial", "8", "陶然", date(1988, 8, 18), "M", "520111", cert="520111198808180017")])
    staged["cert_suffix4"] = sealed_suffixes(staged["cert_suffix4"], "review-key")
    assert staged["cert_suffix4"].tolist() != ["123X", "0017"]
    evidence = account_evidence(staged, name_key="review-key")
    assert evidence["id"].tolist() == ["5201**********123X", "5201**********0017"]


def test_two_birth_dates_are_compared_not_shown():
    from pipelines.review import compare_birth_dates

    left = pd.Series([pd.Timestamp("1990-01-31"), pd.Timestamp("1990-02-01"), pd.Timestamp("1990-01-31"),
                      pd.NaT, pd.Timestamp("1991-01-31"), pd.Timestamp("1988-08-08")])
    right = pd.Series([pd.Timestamp("1990-01-31"), pd.Timestamp("1990-01-31"), pd.Timestamp("1990-02-01"),
                       pd.Timestamp("1990-01-31"), pd.Timestamp("1990-01-31"), pd.Timestamp("1988-08-18")])
    assert list(compare_birth_dates(left, right)) == ["相同", "相差1天", "相差1天", "缺失", "不同", "不同"]


def all_cells(workbook: Path) -> str:
    book = load_workbook(workbook, read_only=True)
    return "\n".join(str(v) for sheet in book.worksheets for line in sheet.iter_rows(values_only=True)
                     for v in line if v is not None)


def test_the_workbook_cannot_rebuild_an_id_number(tmp_path):
    """An ID number's first 4 and last 4 beside the full birth date and the county left only
    2 digits to guess: the workbook shows the birth year, and the two dates compared."""
    from pipelines.review import review_rows, workbook_bytes

    number, other = "520102198808081236", "520102198808091232"
    review = pd.DataFrame([{
        "left_source": "national", "left_source_id": "7", "right_source": "provincial",
        "right_source_id": "8", "match_probability": 0.7, "reason": "uncertain",
        "evidence": "prior -17.8 | birth_date one_typo +3.0 => weight +1.0, p 0.7"}])
    staged = pd.DataFrame([
        account("national", "7", "陶然", date(1988, 8, 8), "M", "520102", cert=number, phone="13812345678"),
        account("provincial", "8", "陶然", date(1988, 8, 9), "M", "520102", cert=other),
    ])
    workbook = tmp_path / "review.xlsx"
    workbook.write_bytes(workbook_bytes(review_rows(review, staged)))
    text = all_cells(workbook)
    for hidden in (number, other, "19880808", "1988-08-08", "1988/08/08", "0808", "08-08", "12345678"):
        assert hidden not in text, hidden
    row = read_sheet(workbook).iloc[0]
    assert (row["left_id"], row["left_birth_year"], row["left_region_code"]) == ("5201**********1236", "1988", "520102")
    assert row["birth_date_compared"] == "相差1天" and row["left_phone"] == "138****5678"


def test_the_drop_down_lets_a_steward_choose_the_chinese_words_it_accepts(data_dir):
    """Excel refuses a word the drop-down does not list: 相同 / 不同, which the README and the
    validation accept, were refused in the cell by Excel itself ("Choose same or different")."""
    from pipelines.review import DECISIONS

    sheet = load_workbook(export(data_dir))["review"]
    [choice] = sheet.data_validations.dataValidation
    offered = choice.formula1.strip('"').split(",")
    assert {"same", "different", "相同", "不同"} <= set(offered)
    assert all(word in DECISIONS for word in offered)


def test_a_one_character_decision_is_said_in_the_singular(data_dir):
    fill(export(data_dir), {"RV0": "是"}, inbox_dir(data_dir))
    take(data_dir)
    [report] = [p for p in (inbox_dir(data_dir) / "rejected").iterdir() if p.name.endswith(".errors.txt")]
    text = report.read_text(encoding="utf-8")
    assert "the decision (1 character) is not 'same' or 'different'" in text and "是" not in text


def test_the_how_to_sheet_speaks_chinese_to_the_province_s_stewards(data_dir):
    """The `how to` sheet was in English alone, for stewards of a Chinese province."""
    guide = [row[0] or "" for row in load_workbook(export(data_dir))["how to"].iter_rows(values_only=True)]
    chinese = "\n".join(line for line in guide if re.search(r"[\u4e00-\u9fff]{4}", line))
    for words in ("相同", "不同", "留空", "不要修改前四列", "DATA_DIR/review/inbox/", ".errors.txt"):
        assert words in chinese, words
    assert guide[0].startswith("填写说明")


FORMULAS = ['=HYPERLINK("http://evil","点我")', "=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(1+1)", "\t=1+1"]


def test_source_text_shaped_like_a_formula_stays_text_when_a_steward_edits_the_cell(tmp_path):
    """Stored as text is not enough: Excel re-reads a cell as a formula once it is edited,
    unless the cell carries the quote prefix (the formula bar shows '=…)."""
    from pipelines.review import review_rows, workbook_bytes

    review = pd.DataFrame([{"left_source": "national", "left_source_id": formula, "right_source": "provincial",
                            "right_source_id": str(i), "match_probability": 0.7, "reason": "uncertain",
                            "evidence": ""} for i, formula in enumerate(FORMULAS)])
    workbook = tmp_path / "review.xlsx"
    workbook.write_bytes(workbook_bytes(review_rows(review, pd.DataFrame([account(
        "national", FORMULAS[0], "司马光", None, "M", "520102")]))))
    sheet = load_workbook(workbook)["review"]
    cells = [row[1] for row in sheet.iter_rows(min_row=2)]
    assert sorted(cell.value for cell in cells) == sorted(FORMULAS)  # the ids read back unchanged
    assert all(cell.data_type == "s" and cell.quotePrefix for cell in cells)
    plain = [row[3] for row in sheet.iter_rows(min_row=2)]  # right_source_id "0", "1", …: no prefix
    assert all(cell.value.isdigit() and not cell.quotePrefix for cell in plain)


def test_the_decisions_file_guards_formulas_a_steward_or_a_source_wrote(data_dir):
    """Analysts open review_decisions.csv in Excel, which runs a cell beginning with =, +, -
    or @: such a value is written after a ' (OWASP), and read back without it."""
    import csv

    from pipelines.resolve.store import read_decisions
    from pipelines.review import append_decisions

    def hostile(values, national_id):
        if national_id == "RV0":  # typed as text (a formula typed in Excel is read as its value)
            for column, text in (("note", FORMULAS[0]), ("decided_by", FORMULAS[1])):
                values[column].value = text
                values[column].data_type = "s"

    fill(export(data_dir), {"RV0": "same"}, inbox_dir(data_dir), edit=hostile, name=WORKBOOK_FILE)
    assert "1 decision(s) recorded" in take(data_dir)
    state = data_dir / "state" / "resolve"
    source_ids = pd.DataFrame([{"left_source": "national", "left_source_id": formula, "right_source": "provincial",
                                "right_source_id": "'quoted", "decision": "not_same", "decided_by": "-",
                                "note": ""} for formula in FORMULAS[1:]])
    append_decisions(state / "review_decisions.csv", source_ids, pd.Timestamp("2026-06-30T18:00+08:00"))

    with open(state / "review_decisions.csv", encoding="utf-8", newline="") as file:
        fields = [field for line in csv.reader(file) for field in line]
    assert not [field for field in fields if field.startswith(("=", "+", "-", "@", "\t", "\r"))]
    decisions = read_decisions(state)
    first = decisions[decisions["left_source_id"].isin(["RV0", "RV0p"])].iloc[0]
    assert (first["note"], first["decided_by"]) == (FORMULAS[0], FORMULAS[1])
    assert list(decisions["left_source_id"].iloc[1:]) == FORMULAS[1:]
    assert set(decisions["right_source_id"].iloc[1:]) == {"'quoted"}

    resolve_all(Settings(data_dir=data_dir), AS_OF)  # the guarded file is still honoured
    after = keys(data_dir)
    assert after["RV0"] == after["RV0p"]


def zip_bomb(workbook: Path, target: Path, unpacked_mb: int) -> Path:
    """The exported workbook whose `review` sheet goes on with `unpacked_mb` MB of empty
    rows (millions: the sensor would iterate them for minutes), a fraction of a MB on disk."""
    import zipfile

    sheet_part = "xl/worksheets/sheet1.xml"
    with zipfile.ZipFile(workbook) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as packed:
        for member in source.infolist():
            if member.filename != sheet_part:
                packed.writestr(member, source.read(member))
        # without its <dimension> the reader cannot know where the sheet ends
        xml = re.sub(rb"<dimension [^>]*/>", b"", source.read(sheet_part))
        head, tail = xml.split(b"</sheetData>")
        with packed.open(sheet_part, "w", force_zip64=True) as sheet:
            sheet.write(head)
            empty_rows = b"<row/>" * 2**17  # a row's number is optional: each one counts on
            for _ in range(unpacked_mb * 2**20 // len(empty_rows) + 1):
                sheet.write(empty_rows)
            sheet.write(b"</sheetData>" + tail)
    return target


def test_a_zip_bomb_workbook_is_refused_before_it_is_unpacked(data_dir):
    import time

    from pipelines.review import MAX_UNPACKED_BYTES

    inbox = inbox_dir(data_dir)
    inbox.mkdir(parents=True, exist_ok=True)
    bomb = zip_bomb(export(data_dir), inbox / "review-bomb.xlsx", MAX_UNPACKED_BYTES // 2**20 + 1)
    assert bomb.stat().st_size < 2**20
    started = time.monotonic()
    message = take(data_dir)
    assert time.monotonic() - started < 5
    assert "refused" in message and "unpacks to" in message
    assert not bomb.exists() and list((inbox / "rejected").glob("*review-bomb.xlsx.errors.txt"))


def test_a_link_in_the_inbox_is_refused_and_its_target_left_alone(data_dir, tmp_path):
    """A link is followed wherever it points: the sensor reads no file a steward did not
    save into the inbox, and moves only the link."""
    elsewhere = fill(export(data_dir), {"RV0": "same"}, tmp_path / "elsewhere")
    inbox = inbox_dir(data_dir)
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / "linked.xlsx").symlink_to(elsewhere)
    message = take(data_dir)
    assert "refused" in message and "link" in message
    assert elsewhere.exists() and not (inbox / "linked.xlsx").is_symlink()
    decisions = data_dir / "state" / "resolve" / "review_decisions.csv"
    assert "RV0" not in decisions.read_text(encoding="utf-8")
