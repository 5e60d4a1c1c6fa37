"""Text that reaches a spreadsheet stays text (CSV / formula injection, OWASP).

Operators type anything into the source systems, and a source id, a team name or a steward's
note may begin with `=`, `+`, `-`, `@`, a tab or a carriage return. Excel and WPS read such a
cell of a CSV file as a formula (`=HYPERLINK("http://evil","点我")`, `=cmd|' /C calc'!A0`),
and re-read a workbook's text cell as one the moment somebody edits it. One helper per output:

- `.xlsx` (openpyxl): `keep_as_text(cell)` stores the value unchanged as text with the
  cell's quote prefix set, Excel's own "this is text" flag (the formula bar shows `'=…`), so
  the value reads back unchanged (the review workbook's first four columns must).
- `.csv` the pipeline also reads back (`state/resolve/review_decisions.csv`, which analysts
  open): `csv_cell` writes such a value with a leading `'`, as OWASP advises, and `csv_value`
  takes it off again when the file is read. A value that itself begins with `'` gets one
  more, so the round trip is exact whatever the value.
"""

from __future__ import annotations

import pandas as pd

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
CSV_QUOTE = "'"


def starts_like_formula(value: object) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_TRIGGERS)


def keep_as_text(cell) -> None:
    """An openpyxl cell whose string value would run as (or become, once edited) a formula:
    stored as text, flagged with Excel's quote prefix; its value is left as it is."""
    if isinstance(cell.value, str) and (cell.data_type == "f" or starts_like_formula(cell.value)):
        cell.data_type = "s"
        cell.quotePrefix = True


def csv_cell(value: object) -> object:
    """The value as a CSV file for people holds it: `'` before a formula's first character
    (and before a leading `'`, so `csv_value` can undo it exactly)."""
    if isinstance(value, str) and (starts_like_formula(value) or value.startswith(CSV_QUOTE)):
        return CSV_QUOTE + value
    return value


def csv_value(value: object) -> object:
    """The value `csv_cell` was given (a value written before the guard, or by hand without
    the `'`, comes back as it is)."""
    if isinstance(value, str) and value.startswith(CSV_QUOTE):
        return value[1:]
    return value


def read_guarded_csv(path) -> pd.DataFrame:
    """A CSV file written through `csv_cell`, every column as text, the guards taken off.

    Only an empty field is missing: pandas would also read "NA", "null", "None", "nan" or
    "#N/A" as missing, and a steward's note or a source's id may be exactly that."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    for column in frame.columns:
        frame[column] = frame[column].map(csv_value, na_action="ignore")
    return frame
