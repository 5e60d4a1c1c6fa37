"""The stewards' review of uncertain volunteer matches, as a spreadsheet (no Dagster here).

Every sync writes the pairs resolution could not decide (`resolved/volunteer_match_review`)
into a workbook, `DATA_DIR/review/outbox/volunteer_match_review.xlsx`: one row per pair, the
two accounts' masked evidence side by side (family name, the visible ends of the ID number
and phone, gender, birth year, county, registration date, the comparison levels), whether
the two birth dates are the same, a day apart, different or missing, and a `decision` column
to fill with `same` or `different` (a drop-down list).

A steward saves the filled workbook into `DATA_DIR/review/inbox/`; the `review_workbooks`
sensor (assets/review.py) calls `take_workbook`, which validates it whole: a pair that is
not under review (an edited id), a decision other than same / different, one pair decided
both ways, a sheet without its columns. A workbook with any error is refused entirely, moved
to `inbox/rejected/` (as `<Beijing time>-<name>`) with a `.errors.txt` beside it that says,
row by row, what to fix; a valid one is appended to `state/resolve/review_decisions.csv`
(`different` is the file's `not_same`) and moved to `inbox/accepted/` (named alike). `<name>` is the workbook's own name only when it
is shaped like the export's (`shown_workbook_name`): a steward may name the file after a
volunteer. The next sync honours the decisions as it always did
(pipelines/resolve/volunteers.py): `same` forces a link, `different` forbids one.

Privacy: the workbook holds no clear certificate number, phone or full name (the staged
files hold them hashed or sealed), nor what rebuilds one: beside an ID number's first 4 and last 4
characters a full birth date and the county left only the county's last 2 digits to guess
(45% of Guizhou's numbers rebuilt exactly), so a birth date is shown as its year alone and
compared between the two accounts in code. A message (the `.errors.txt`, the sensor's tick,
the run's log) names the row and the column and says what is wrong, never what the steward
typed there: a decision can be a name or a number typed into the wrong cell.
"""

from __future__ import annotations

import csv
import io
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.files import private_dir, write_bytes, write_text
from pipelines.formula_guard import csv_cell, keep_as_text, read_guarded_csv
from pipelines.logging_privacy import is_safe_name, name_digest
from pipelines.name_seal import unsealed_names, unsealed_suffixes
from pipelines.privacy import mask_name, mask_names_in, redact
from pipelines.resolve.volunteers import PAIR_ID_COLUMNS

WORKBOOK_NAME = "volunteer_match_review.xlsx"
SHEET = "review"
# workbook word -> decisions file word; a steward who types Chinese is understood too
DECISIONS = {"same": "same", "different": "not_same",
             "相同": "same", "同一人": "same", "不同": "not_same", "不是同一人": "not_same"}
# what the drop-down offers: Excel refuses any other word typed in the cell, so the Chinese
# words the README promises must be among them
DROP_DOWN = ["same", "different", "相同", "不同"]
EVIDENCE_FIELDS = [  # (column suffix, header) shown for each account, side by side
    ("name", "name (masked)"),
    ("id", "ID number (masked)"),
    ("phone", "phone (masked)"),
    ("gender", "gender"),
    ("birth_year", "birth year"),
    ("region_code", "county"),
    ("registered_on", "registered on"),
]
# the staged volunteer columns the evidence is made from (the workbook reads no other)
EVIDENCE_SOURCE_COLUMNS = ["source", "source_id", "name", "cert_prefix4", "cert_suffix4",
                           "phone_prefix3", "phone_suffix4", "gender", "birth_date", "region_code",
                           "registered_on"]
# The two accounts' full birth dates compared (never shown: an ID number's digits 7 to 14)
BIRTH_DATES_COMPARED = "birth_date_compared"
BIRTH_DATE_LEVELS = {"same": "相同", "one_day": "相差1天", "different": "不同", "missing": "缺失"}
DECISION_FILE_COLUMNS = PAIR_ID_COLUMNS + ["decision", "decided_by", "decided_at", "note"]
MAX_ERRORS_LISTED = 50
# A review workbook of 10,000 pairs unpacks to about 20 MB; far beyond it is no steward's work.
MAX_UNPACKED_BYTES = 200 * 2**20


def outbox_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "review" / "outbox"


def inbox_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "review" / "inbox"


# -- the export ----------------------------------------------------------------------------


def _text(value) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return str(value.date()) if isinstance(value, pd.Timestamp) else str(value)


def _masked_number(prefix, suffix, masked_middle: int) -> str:
    prefix, suffix = _text(prefix), _text(suffix)
    return f"{prefix}{'*' * masked_middle}{suffix}" if prefix or suffix else ""


def account_evidence(staged_volunteers: pd.DataFrame, name_key: str | None = None) -> pd.DataFrame:
    """Per account (source, source_id), the masked fields a steward compares. Staged files
    hold numbers only as hashes and their visible ends: nothing clear to leak. The birth date
    is shown as its year: the full date (`birth_date`, kept here for `compare_birth_dates`)
    is the ID number's digits 7 to 14, which with its first and last 4 and the county
    rebuild it. The phone's first 3 and last 4 leave its 4 middle digits, the number's block
    within its prefix, to guess: the county narrows them to the prefix's blocks in that
    prefecture, never to one (the national system masks phones the same way). Names and the
    ID numbers' last four are staged sealed under `name_key` (pipelines/name_seal.py), turned
    back here to be masked (None: a frame holding them in clear)."""
    accounts = staged_volunteers
    names = accounts["name"] if name_key is None else unsealed_names(accounts["name"], name_key)
    suffixes = accounts["cert_suffix4"] if name_key is None else unsealed_suffixes(accounts["cert_suffix4"], name_key)
    birth = pd.to_datetime(accounts["birth_date"], errors="coerce")
    evidence = pd.DataFrame({
        "source": accounts["source"].astype(str),
        "source_id": accounts["source_id"].astype(str),
        "name": [mask_name(n, normalized=True) or "" for n in names.map(_text)],
        "id": [_masked_number(p, s, 10) for p, s in zip(accounts["cert_prefix4"], suffixes)],
        "phone": [_masked_number(p, s, 4) for p, s in zip(accounts["phone_prefix3"], accounts["phone_suffix4"])],
        "gender": accounts["gender"].map(_text),
        "birth_year": birth.dt.year.map(lambda year: "" if pd.isna(year) else str(int(year))),
        "birth_date": birth,
        "region_code": accounts["region_code"].map(_text),
        "registered_on": accounts["registered_on"].map(_text),
    })
    return evidence.drop_duplicates(["source", "source_id"], keep="last")


def compare_birth_dates(left: pd.Series, right: pd.Series) -> pd.Series:
    """Per pair, the two full birth dates compared: 相同, 相差1天, 不同, or 缺失 when either is
    missing. What a steward needs of them, the dates themselves left out of the workbook."""
    left, right = pd.to_datetime(left, errors="coerce"), pd.to_datetime(right, errors="coerce")
    days = (left - right).abs().dt.days
    levels = np.select(
        [left.isna() | right.isna(), days == 0, days == 1],
        [BIRTH_DATE_LEVELS["missing"], BIRTH_DATE_LEVELS["same"], BIRTH_DATE_LEVELS["one_day"]],
        BIRTH_DATE_LEVELS["different"],
    )
    return pd.Series(levels, index=left.index, dtype=object)


def comparison_levels(evidence_text: str) -> str:
    """`name same_pinyin, birth_date exact, ...` from a waterfall line (levels, no weights)."""
    parts = [part.strip() for part in _text(evidence_text).split("|")[1:]]
    levels = [" ".join(part.split(" ")[:2]) for part in parts]
    return ", ".join(level.split(" =>")[0] for level in levels if level)


def accounts_under_review(review: pd.DataFrame, staged_volunteers: pd.DataFrame) -> pd.DataFrame:
    """The staged accounts that some pair names. Evidence is made row by row (masking a name
    is per-row Python): for the few hundred accounts under review, not the province's millions
    (at 1M persons, 17 s a sync spent masking 2.2M names for 832 pairs)."""
    named = pd.concat(
        [review[[f"{side}_source", f"{side}_source_id"]].set_axis(["source", "source_id"], axis=1)
         for side in ("left", "right")],
        ignore_index=True,
    ).astype(str)
    # a cheap cut by id first, then the exact (source, id) pairs among the few left
    candidates = staged_volunteers.loc[staged_volunteers["source_id"].astype(str).isin(named["source_id"])]
    accounts = pd.MultiIndex.from_frame(candidates[["source", "source_id"]].astype(str))
    return candidates.loc[accounts.isin(pd.MultiIndex.from_frame(named))]


def review_rows(review: pd.DataFrame, staged_volunteers: pd.DataFrame, name_key: str | None = None) -> pd.DataFrame:
    """The workbook's rows: one per pair under review, most probable first, each account's
    masked evidence beside the other's, the decision columns empty."""
    evidence = account_evidence(accounts_under_review(review, staged_volunteers), name_key)
    pairs = review[PAIR_ID_COLUMNS + ["match_probability", "reason", "evidence"]].copy()
    for column in PAIR_ID_COLUMNS:
        pairs[column] = pairs[column].astype(str)
    for side in ("left", "right"):
        renamed = evidence.rename(columns={c: f"{side}_{c}" for c in evidence.columns})
        pairs = pairs.merge(renamed, how="left", on=[f"{side}_source", f"{side}_source_id"])
    pairs["levels"] = pairs["evidence"].map(comparison_levels)
    pairs[BIRTH_DATES_COMPARED] = compare_birth_dates(pairs["left_birth_date"], pairs["right_birth_date"])
    pairs = pairs.sort_values(["match_probability", *PAIR_ID_COLUMNS], ascending=[False, True, True, True, True])
    pairs = pairs.drop_duplicates(PAIR_ID_COLUMNS).reset_index(drop=True)
    columns = PAIR_ID_COLUMNS + ["reason", "match_probability"]
    for suffix, _ in EVIDENCE_FIELDS:
        columns += [f"left_{suffix}", f"right_{suffix}"]
        if suffix == "birth_year":
            columns.append(BIRTH_DATES_COMPARED)
    rows = pairs[columns + ["levels"]].copy()
    rows["match_probability"] = rows["match_probability"].astype(float).round(4)
    rows["decision"] = ""
    rows["note"] = ""
    rows["decided_by"] = ""
    return rows.fillna("")


def _cell_text(value):
    """A value a workbook cell can hold: control characters (which a source may send and
    .xlsx cannot store) become U+FFFD, so one hostile id never stops the export; anything
    shaped like a personal number is masked (the last line of defence: staging already
    refuses ids and names that carry one)."""
    if not isinstance(value, str):
        return value
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    return ILLEGAL_CHARACTERS_RE.sub("\ufffd", redact(value))


# The `how to` sheet in Chinese first, for the province's stewards; the English follows
HOW_TO_ZH = [
    "填写说明：“review”表的每一行是系统无法确定是否为同一人的两个志愿者账号。",
    "请对比左右两个账号（left_* 与 right_*：打码的姓名、证件号码首尾、手机号首尾、性别、出生年份、"
    "县（市、区）、注册日期；levels 是系统逐项比对的结果）。",
    "birth_date_compared 比对两个完整出生日期（表中不显示日期，以免与证件号码首尾合起来泄露号码）："
    "相同、相差1天、不同，或缺失（任一方没有）。",
    "在 decision 列选择“相同”（同一人）或“不同”（两个人），也可写 same / different；不能确定的行留空。",
    "不要修改前四列：它们标明是哪两个账号。",
    "将工作簿保存到复核收件箱（DATA_DIR/review/inbox/）。文件名只用字母、数字（最多六位）、“_”“-”“.”，"
    "或沿用原名；其他文件名（例如含志愿者姓名）在提示中显示为 workbook-<代码>.xlsx。",
    "一分钟内完成校验：通过的工作簿移入 inbox/accepted/，下次同步时生效；有错误的整本不生效，移入 "
    "inbox/rejected/，旁边的 .errors.txt 写明要改哪一行。",
]


def workbook_bytes(rows: pd.DataFrame) -> bytes:
    """The review workbook: a `review` sheet (pairs, evidence side by side, a drop-down
    `decision` column), frozen header, and a `how to` sheet."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    sheet = book.active
    sheet.title = SHEET
    sheet.append(list(rows.columns))
    for values in rows.itertuples(index=False):
        sheet.append([_cell_text(value) for value in values])
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            keep_as_text(cell)  # a source's `=…`, `+…`, `@…` stays text, also once a steward edits it
    bold = Font(bold=True)
    decision_fill = PatternFill("solid", fgColor="FFF2CC")
    for cell in sheet[1]:
        cell.font = bold
    sheet.freeze_panes = "F2"
    decision_column = get_column_letter(list(rows.columns).index("decision") + 1)
    last_row = max(len(rows) + 1, 2)
    choice = DataValidation(type="list", formula1='"' + ",".join(DROP_DOWN) + '"', allow_blank=True,
                            showErrorMessage=True, errorTitle="decision",
                            error="Choose same or different, 相同 or 不同 (or leave it empty).")
    sheet.add_data_validation(choice)
    choice.add(f"{decision_column}2:{decision_column}{last_row}")
    for row in range(2, last_row + 1):
        sheet[f"{decision_column}{row}"].fill = decision_fill
    for index, column in enumerate(rows.columns, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = max(12, min(40, len(column) + 4))

    guide = book.create_sheet("how to")
    for line in HOW_TO_ZH + [""] + [
        "Each row of the 'review' sheet is a pair of volunteer accounts the pipeline could not decide.",
        "Compare the two accounts (left_* and right_*: masked name, ID number ends, phone ends, "
        "gender, birth year, county, registration date; 'levels' is how the matcher compared them).",
        "birth_date_compared compares the two full birth dates, which the workbook does not show "
        "(with the ID number's ends they would give the number away): 相同 same, 相差1天 one day "
        "apart, 不同 different, 缺失 missing on either side.",
        "Write 'same' (one person) or 'different' (two people) in the decision column, or 相同 / "
        "不同 (同一人 / 不是同一人 are understood too); leave undecided rows empty.",
        "Do not edit the first four columns: they name the pair.",
        "Save the workbook into the review inbox folder (DATA_DIR/review/inbox/). Name it with "
        "letters, digits (six at most), '_', '-' and '.' only, or keep the name it came with: "
        "messages call a workbook of any other name workbook-<code>.xlsx.",
        "It is checked within a minute: accepted workbooks move to inbox/accepted/ and the next "
        "sync honours them; a workbook with an error moves to inbox/rejected/ with a .errors.txt "
        "beside it that says which row to fix. Nothing of a rejected workbook is applied.",
    ]:
        guide.append([line])
    guide.column_dimensions["A"].width = 120
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def export_review_workbook(review: pd.DataFrame, staged_volunteers: pd.DataFrame, data_dir: Path,
                           name_key: str | None = None) -> tuple[Path, int]:
    """Write the outbox workbook (atomically, private); returns its path and its pair count.
    `name_key`: the key the staged names are sealed under (None: names in clear)."""
    rows = review_rows(review, staged_volunteers, name_key)
    target = private_dir(outbox_dir(data_dir)) / WORKBOOK_NAME
    write_bytes(target, workbook_bytes(rows))
    return target, len(rows)


# -- the way back --------------------------------------------------------------------------


@dataclass
class WorkbookDecisions:
    """What a filled workbook says: decisions (decisions-file words) and the problems found."""

    decisions: pd.DataFrame
    errors: list[str] = field(default_factory=list)
    rows_read: int = 0


def _kept(value, limit: int, names: bool = False) -> str:
    """A steward's cell as the decisions file keeps it: personal numbers redacted, with
    `names` the words that look like a person's name masked (a note may name the
    volunteer), cut short. Never echoed in a message."""
    text = redact(_text(value)).strip()
    if names:
        text = mask_names_in(text)
    return text if len(text) <= limit else text[:limit] + "…"


def unpacked_size(path: Path) -> int | None:
    """The bytes an .xlsx file (a zip) unpacks to, as its members declare (Python's zip
    reader never reads a member past its declared size); None when it is no zip."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as packed:
            return sum(member.file_size for member in packed.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return None


def unsafe_file_refusal(path: Path) -> str | None:
    """Why the sensor must not open this inbox entry, or None. A link is followed to
    wherever it points (another folder's file, a device) and is no workbook a steward saved;
    a workbook that unpacks to more than MAX_UNPACKED_BYTES (a zip bomb: a few hundred KB
    that unpack to gigabytes) would hold the sensor's tick past its timeout at every tick,
    and the inbox behind it, for ever."""
    if path.is_symlink():
        return "the file is a link, not a workbook saved into the inbox: save the workbook itself"
    size = unpacked_size(path)
    if size is not None and size > MAX_UNPACKED_BYTES:
        return (f"the workbook unpacks to {size / 2**20:,.0f} MB, more than a review workbook can hold "
                f"({MAX_UNPACKED_BYTES // 2**20} MB): save the exported workbook with your decisions only")
    return None


def read_workbook(path: Path) -> WorkbookDecisions:
    """The decided rows of a filled workbook (undecided rows are skipped) and every problem
    of form: not a workbook, no `review` sheet, a missing column, a decision that is neither
    `same` nor `different`, one pair decided both ways. Never raises on bad content."""
    empty = pd.DataFrame(columns=DECISION_FILE_COLUMNS)
    refusal = unsafe_file_refusal(path)
    if refusal:
        return WorkbookDecisions(empty, [refusal])
    try:
        from openpyxl import load_workbook

        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is the steward's to fix
        return WorkbookDecisions(empty, [f"the file cannot be read as an .xlsx workbook ({type(error).__name__})"])
    try:
        if SHEET not in book.sheetnames:
            return WorkbookDecisions(empty, [f"the workbook has no sheet named {SHEET!r}"])
        lines = book[SHEET].iter_rows(values_only=True)
        header = [_text(cell).strip() for cell in next(lines, ())]
        missing = [c for c in PAIR_ID_COLUMNS + ["decision"] if c not in header]
        if missing:
            return WorkbookDecisions(empty, [f"the {SHEET!r} sheet lacks the column(s) {', '.join(missing)}"])
        position = {name: header.index(name) for name in header if name}
        records, errors, rows_read = [], [], 0
        for row_number, values in enumerate(lines, start=2):
            if all(_text(v).strip() == "" for v in values):
                continue

            def cell(name: str, values=values):
                index = position.get(name)
                return values[index] if index is not None and index < len(values) else None

            rows_read += 1
            word = _text(cell("decision")).strip().lower()
            if not word:
                continue
            if word not in DECISIONS:
                # what was typed is not shown: it may be a name or a number in the wrong cell
                errors.append(f"row {row_number}: the decision ({len(word)} character{'s' if len(word) != 1 else ''}) is not "
                              "'same' or 'different' (or 相同 / 不同)")
                continue
            records.append({
                **{c: _text(cell(c)).strip() for c in PAIR_ID_COLUMNS},
                "decision": DECISIONS[word],
                "decided_by": _kept(cell("decided_by"), 60),
                "note": _kept(cell("note"), 200, names=True),
                "row": row_number,
            })
    finally:
        book.close()
    decisions = pd.DataFrame(records, columns=DECISION_FILE_COLUMNS + ["row"])
    if len(decisions):
        pair = pair_keys(decisions)
        both_ways = decisions.groupby(pair)["decision"].transform("nunique") > 1
        for row_number in decisions.loc[both_ways, "row"]:
            errors.append(f"row {row_number}: the same pair is decided both 'same' and 'different' in this workbook")
    return WorkbookDecisions(decisions, errors, rows_read)


def pair_keys(frame: pd.DataFrame) -> pd.Series:
    """One text per pair, whichever account is on the left."""
    left = frame["left_source"].astype(str) + ":" + frame["left_source_id"].astype(str)
    right = frame["right_source"].astype(str) + ":" + frame["right_source_id"].astype(str)
    return pd.Series([" / ".join(sorted(pair)) for pair in zip(left, right)], index=frame.index, dtype=object)


def unknown_pair_errors(decisions: pd.DataFrame, known_pairs: set[str]) -> list[str]:
    """Rows naming a pair that is neither under review nor decided before (an edited id,
    a row pasted from elsewhere). The ids are not shown: an edited one is the steward's
    typing, whatever it holds."""
    if not len(decisions):
        return []
    keys = pair_keys(decisions)
    return [
        f"row {row}: the pair in columns {PAIR_ID_COLUMNS[0]} to {PAIR_ID_COLUMNS[-1]} is not under "
        "review (do not edit the first four columns; a pair the last sync no longer finds "
        "uncertain has left the list)"
        for row, key in zip(decisions["row"], keys) if key not in known_pairs
    ]


def known_pairs(review: pd.DataFrame | None, decisions_file: pd.DataFrame | None) -> set[str]:
    """Pairs a workbook may decide: those under review now, and those decided before (a
    steward may change their mind)."""
    known: set[str] = set()
    for frame in (review, decisions_file):
        if frame is not None and len(frame):
            known |= set(pair_keys(frame))
    return known


@dataclass
class WorkbookOutcome:
    """What became of one workbook dropped into the inbox."""

    workbook: str
    accepted: bool
    decisions: int
    errors: list[str]
    moved_to: Path

    def message(self) -> str:
        if self.accepted:
            return f"{self.workbook}: {self.decisions} decision(s) recorded; the next sync honours them"
        shown = self.errors[:5] + ([f"... {len(self.errors) - 5} more"] if len(self.errors) > 5 else [])
        return f"{self.workbook} refused ({len(self.errors)} problem(s)): " + "; ".join(shown)


def append_decisions(decisions_path: Path, decisions: pd.DataFrame, decided_at: datetime) -> None:
    """Add decisions at the end of the decisions file (its last line for a pair wins)."""
    existing = ""
    if decisions_path.exists():  # as written: a carriage return inside a field stays one
        with open(decisions_path, encoding="utf-8", newline="") as file:
            existing = file.read()
    if not existing.strip():
        existing = ",".join(DECISION_FILE_COLUMNS) + "\n"
    if not existing.endswith("\n"):
        existing += "\n"
    out = io.StringIO()
    # every field quoted: Python's writer leaves a field with a lone carriage return bare when
    # lines end in "\n", and readers split the row there (a pair's ids in the wrong columns)
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for record in decisions.to_dict("records"):
        writer.writerow([csv_cell(record[c]) if c != "decided_at" else decided_at.isoformat()
                         for c in DECISION_FILE_COLUMNS])
    write_text(decisions_path, existing + out.getvalue())


def shown_workbook_name(path: Path, key: str) -> str:
    """The name messages and the inbox's folders give a workbook: its own when shaped like
    the export's (`volunteer_match_review.xlsx`, `review-team3.xlsx`: `is_safe_name`), else
    `workbook-` and a short keyed hash of the name (`key`: PII_HASH_KEY), its extension
    kept. A steward may name the file after a volunteer (审核_王芳_5201….xlsx)."""
    if is_safe_name(path.stem):
        return path.name
    return f"workbook-{name_digest(path.name, key)}{path.suffix.lower()}"


def _move(path: Path, shown: str, folder: Path, stamp: str) -> Path:
    target = private_dir(folder) / f"{stamp}-{shown}"
    shutil.move(str(path), target)
    return target


def take_workbook(path: Path, review: pd.DataFrame | None, decisions_path: Path, decided_at: datetime,
                  key: str) -> WorkbookOutcome:
    """Validate one workbook from the inbox; record its decisions if it is right in every
    row, else refuse it whole. Moves it out of the inbox either way, under its shown name
    (`shown_workbook_name`, `key` being PII_HASH_KEY)."""
    stamp = decided_at.strftime("%Y%m%dT%H%M%S")
    shown = shown_workbook_name(path, key)
    read = read_workbook(path)
    decisions_file = read_guarded_csv(decisions_path) if decisions_path.exists() else None
    errors = read.errors + unknown_pair_errors(read.decisions, known_pairs(review, decisions_file))
    if not errors and not len(read.decisions):
        errors = ["no row has a decision: write 'same' or 'different' in the decision column"]
    inbox = path.parent
    if errors:
        errors = sorted(set(errors), key=_row_order)
        moved = _move(path, shown, inbox / "rejected", stamp)
        listed = errors[:MAX_ERRORS_LISTED] + (
            [f"... and {len(errors) - MAX_ERRORS_LISTED} more"] if len(errors) > MAX_ERRORS_LISTED else [])
        write_text(moved.with_name(moved.name + ".errors.txt"),
                   f"{shown} was not applied. Fix these rows and save it into the inbox again:\n"
                   + "\n".join(listed) + "\n")
        return WorkbookOutcome(shown, False, 0, errors, moved)
    decisions = read.decisions.copy()
    decisions["decided_by"] = decisions["decided_by"].where(decisions["decided_by"] != "", f"workbook {shown}")
    append_decisions(decisions_path, decisions, decided_at)
    moved = _move(path, shown, inbox / "accepted", stamp)
    return WorkbookOutcome(shown, True, len(decisions), [], moved)


def _row_order(message: str) -> tuple[int, str]:
    head = message.split(":", 1)[0]
    return (int(head[4:]) if head.startswith("row ") and head[4:].isdigit() else 0, message)


def waiting_workbooks(data_dir: Path) -> list[Path]:
    """Workbooks in the inbox, oldest first (Excel's `~$` lock files are not workbooks)."""
    inbox = inbox_dir(data_dir)
    if not inbox.is_dir():
        return []
    found = [p for p in inbox.iterdir() if p.is_file() and p.suffix.lower() == ".xlsx" and not p.name.startswith("~$")]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))
