"""The row-level rules that send a staged row to quarantine, and the soft flags that do not.

A row that breaks a rule cannot be loaded: it goes to quarantine (and nowhere else) under
one primary rule, the first it breaks in `RULE_ORDER`; the other rules it breaks are named
in its detail. The contract fixes five rules; two are our own (marked).

In order (the live row...):
- `missing_required`: lacks a column `schemas/canonical.yaml` marks `required` (a name, a
  region, a service's volunteer, date and hours, ...) or its source key;
- `unparseable_date` (ours): carries a date the service, project or redemption cannot do
  without (service date, start, end, redemption time) that no known format reads;
- `invalid_region` (ours): carries a region that is not a 6-digit division code even after
  normalization (`52`, `5201x`); a 6-digit 52xxxx code that is no current county is only
  flagged (`unknown_county`);
- `region_outside_province`: has a region code that does not start with 52;
- `end_before_start`: ends before it starts;
- `hours_out_of_range`: a service of zero, negative or more than 24 hours; a redemption
  (ours) of zero or fewer hours;
- `future_date`: is dated after the sync (`as_of`): a service date or start, a
  registration, birth, founding, publication or opening date, a redemption, an evaluation
  period.

Why this order: a row without its required fields or with an unreadable date cannot be
judged by the later rules (their inputs are missing), and region problems are about where
the row belongs at all; time and amount rules come after.

Deleted rows (`is_deleted`) are never quarantined for their content: they leave the
published tables anyway, and the resolver needs them to know an account is gone. They stay
in the staged table with `is_deleted = true`, and the blocking expectations look at live
rows only.

Soft problems are kept, flagged and counted (`soft_flags`): an invalid resident ID
number, a stated gender or birth date that contradicts the ID, an invalid phone or USCC, a
52xxxx code that is no current county, an unmapped category label, an unreadable optional
date, an unknown source code.

Details name columns, codes, dates and hours only, never a name, number or phone, and never
the sync's own time: an unchanged row keeps an unchanged detail, so a sync with no change at
the sources rewrites the same quarantine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from pipelines.normalize.dates import BEIJING_OFFSET
from pipelines.normalize.regions import is_guizhou
from pipelines.schemas import table_spec

RULE_ORDER: tuple[str, ...] = (
    "missing_required",
    "unparseable_date",
    "invalid_region",
    "region_outside_province",
    "end_before_start",
    "hours_out_of_range",
    "future_date",
)

# Columns always filled by staging itself (never from a source field): not "required" inputs.
COMPUTED_COLUMNS = frozenset({"source", "is_deleted", "is_effective"})

# Dates and timestamps whose unreadable text quarantines the row (they carry a rule or a
# required fact); any other unreadable date is kept as null and counted as a soft flag.
HARD_DATE_COLUMNS: dict[str, tuple[str, ...]] = {
    "services": ("service_date", "start_at", "end_at"),
    "projects": ("start_at", "end_at"),
    "redemptions": ("redeemed_at",),
}

# Columns checked by future_date. Project and activity starts are not: a project recruits
# before it starts, so a future start is normal.
FUTURE_COLUMNS: dict[str, tuple[str, ...]] = {
    "volunteers": ("registered_on", "birth_date"),
    "organizations": ("founded_on",),
    "projects": ("published_on",),
    "services": ("service_date", "start_at"),
    "stations": ("opened_on",),
    "redemptions": ("redeemed_at",),
}

# Values not to quote in a detail (personal data, even if not a number or phone).
UNQUOTED_COLUMNS = frozenset({"birth_date", "name"})

MAX_SERVICE_HOURS = 24.0
REGION_CODE_PATTERN = r"^52\d{4}$"


@dataclass
class RuleInputs:
    """What the rules need besides the canonical frame."""

    table: str
    as_of: datetime
    # canonical column -> rows whose source text was present but could not be read
    unparseable: dict[str, pd.Series] = field(default_factory=dict)
    # canonical column -> rows whose source code is not in the mapping's value list
    unknown_codes: dict[str, pd.Series] = field(default_factory=dict)

    @property
    def as_of_utc(self) -> pd.Timestamp:
        stamp = pd.Timestamp(self.as_of)
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")

    @property
    def as_of_beijing_date(self) -> pd.Timestamp:
        """Midnight of the sync's Beijing calendar day, as a naive timestamp."""
        return (self.as_of_utc + BEIJING_OFFSET).tz_localize(None).normalize()


def _false(frame: pd.DataFrame) -> pd.Series:
    return pd.Series(False, index=frame.index)


# Each check returns (broken, detail): `broken` is a bool Series over the whole frame, `detail`
# a text Series over the broken rows only, so no string is built for the clean millions.
NO_DETAIL = pd.Series([], dtype=object)


def _join_details(parts: list[pd.Series]) -> pd.Series:
    """Join detail fragments of the same row with '; ' (each part covers its rows only)."""
    parts = [part for part in parts if len(part)]
    if not parts:
        return NO_DETAIL
    stacked = pd.concat(parts)
    return stacked.groupby(level=0, sort=False).agg("; ".join)


def _as_naive_date(values: pd.Series) -> pd.Series:
    """Dates (date objects or datetime64) as naive midnight timestamps for comparison."""
    converted = pd.to_datetime(values, errors="coerce")
    if isinstance(converted.dtype, pd.DatetimeTZDtype):
        converted = converted.dt.tz_convert("UTC").dt.tz_localize(None)
    return converted.dt.normalize()


def _as_utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, errors="coerce", utc=True)


def check_missing_required(frame: pd.DataFrame, inputs: RuleInputs) -> tuple[pd.Series, pd.Series]:
    spec = table_spec(inputs.table)
    required = [c for c in spec.required_columns if c not in COMPUTED_COLUMNS and c in frame]
    broken = _false(frame)
    parts = []
    for column in required:
        values = frame[column]
        missing = values.isna()
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            missing |= values.astype("string").str.strip().eq("").fillna(False)
        unreadable = inputs.unparseable.get(column)
        if unreadable is not None:  # an unreadable date is the more precise unparseable_date
            missing &= ~unreadable.reindex(frame.index, fill_value=False)
        if not missing.any():
            continue
        broken |= missing
        unknown = inputs.unknown_codes.get(column, _false(frame)).reindex(
            frame.index, fill_value=False
        )
        rows = missing[missing].index
        parts.append(
            pd.Series(
                np.where(unknown[rows], f"{column} (unknown source code)", column),
                index=rows,
                dtype=object,
            )
        )
    return broken, "missing " + _join_details(parts)


def check_unparseable_date(frame: pd.DataFrame, inputs: RuleInputs) -> tuple[pd.Series, pd.Series]:
    broken = _false(frame)
    parts = []
    for column in HARD_DATE_COLUMNS.get(inputs.table, ()):
        unreadable = inputs.unparseable.get(column)
        if unreadable is None:
            continue
        unreadable = unreadable.reindex(frame.index, fill_value=False).astype(bool)
        if unreadable.any():
            broken |= unreadable
            parts.append(
                pd.Series(
                    f"{column} is not a readable date",
                    index=unreadable[unreadable].index,
                    dtype=object,
                )
            )
    return broken, _join_details(parts)


def _region_text(frame: pd.DataFrame) -> pd.Series | None:
    if "region_code" not in frame:
        return None
    return frame["region_code"].astype("string").str.strip()


def check_invalid_region(frame: pd.DataFrame, inputs: RuleInputs) -> tuple[pd.Series, pd.Series]:
    region = _region_text(frame)
    if region is None:
        return _false(frame), NO_DETAIL
    present = region.notna() & region.ne("")
    in_province_prefix = region.str.startswith("52").fillna(False)
    all_digits = region.str.fullmatch(r"\d+").fillna(False)
    well_formed = region.str.fullmatch(REGION_CODE_PATTERN).fillna(False)
    # digits that do not start with 52 are region_outside_province, not malformed
    broken = (
        (present & ~well_formed & (in_province_prefix | ~all_digits)).fillna(False).astype(bool)
    )
    detail = ("region " + region[broken] + " is not a 6-digit division code").astype(object)
    return broken, detail


def check_region_outside_province(
    frame: pd.DataFrame, inputs: RuleInputs
) -> tuple[pd.Series, pd.Series]:
    region = _region_text(frame)
    if region is None:
        return _false(frame), NO_DETAIL
    all_digits = region.str.fullmatch(r"\d+").fillna(False)
    broken = (all_digits & ~region.str.startswith("52").fillna(False)).fillna(False).astype(bool)
    detail = ("region " + region[broken] + " is outside Guizhou (does not start with 52)").astype(
        object
    )
    return broken, detail


def _beijing_clock(stamps: pd.Series) -> pd.Series:
    return (stamps + BEIJING_OFFSET).dt.strftime("%Y-%m-%d %H:%M")


def check_end_before_start(frame: pd.DataFrame, inputs: RuleInputs) -> tuple[pd.Series, pd.Series]:
    if "start_at" not in frame or "end_at" not in frame:
        return _false(frame), NO_DETAIL
    start, end = _as_utc(frame["start_at"]), _as_utc(frame["end_at"])
    broken = (end < start).fillna(False).astype(bool)
    detail = (
        "ends "
        + _beijing_clock(end[broken])
        + " before it starts "
        + _beijing_clock(start[broken])
        + " (Beijing time)"
    ).astype(object)
    return broken, detail


def check_hours_out_of_range(
    frame: pd.DataFrame, inputs: RuleInputs
) -> tuple[pd.Series, pd.Series]:
    if "hours" not in frame or inputs.table not in ("services", "redemptions"):
        return _false(frame), NO_DETAIL
    hours = pd.to_numeric(frame["hours"], errors="coerce")
    too_low = hours <= 0
    # a redemption exchanges banked hours: many at once is normal, so only services have a cap
    too_high = (
        (hours > MAX_SERVICE_HOURS)
        if inputs.table == "services"
        else pd.Series(False, index=frame.index)
    )
    broken = (too_low | too_high).fillna(False).astype(bool)
    allowed = "more than 0, at most 24" if inputs.table == "services" else "more than 0"
    detail = (hours[broken].round(2).astype(str) + f" hours (allowed: {allowed})").astype(object)
    return broken, detail


def check_future_date(frame: pd.DataFrame, inputs: RuleInputs) -> tuple[pd.Series, pd.Series]:
    broken = _false(frame)
    parts = []
    as_of_date = inputs.as_of_beijing_date
    spec = table_spec(inputs.table)
    for column in FUTURE_COLUMNS.get(inputs.table, ()):
        if column not in frame:
            continue
        if spec.column(column).type == "timestamp":
            stamps = _as_utc(frame[column])
            future = (stamps > inputs.as_of_utc).fillna(False).astype(bool)
            shown = _beijing_clock(stamps[future])
            after = " (Beijing time) is after the sync"
        else:
            dates = _as_naive_date(frame[column])
            future = (dates > as_of_date).fillna(False).astype(bool)
            shown = dates[future].dt.strftime("%Y-%m-%d")
            after = " is after the sync date"
        if not future.any():
            continue
        broken |= future
        if column in UNQUOTED_COLUMNS:  # a birth date is personal data: name the column only
            parts.append(pd.Series(column + after, index=shown.index, dtype=object))
        else:
            parts.append(column + " " + shown.astype(str) + after)
    if inputs.table == "evaluations" and "period" in frame:
        year = pd.to_numeric(frame["period"].astype("string").str.slice(0, 4), errors="coerce")
        future = (year > as_of_date.year).fillna(False).astype(bool)
        if future.any():
            broken |= future
            parts.append(
                "period " + frame["period"][future].astype(str) + " is after the sync year"
            )
    return broken, _join_details([part.astype(object) for part in parts])


CHECKS = {
    "missing_required": check_missing_required,
    "unparseable_date": check_unparseable_date,
    "invalid_region": check_invalid_region,
    "region_outside_province": check_region_outside_province,
    "end_before_start": check_end_before_start,
    "hours_out_of_range": check_hours_out_of_range,
    "future_date": check_future_date,
}


def evaluate(frame: pd.DataFrame, inputs: RuleInputs) -> pd.DataFrame:
    """Per row: `rule` (the primary rule broken, NaN when none) and `detail` (readable).

    Only live rows are judged (see the module docstring for deleted rows).
    """
    live = ~frame["is_deleted"].fillna(False).astype(bool)
    primary = pd.Series(np.nan, index=frame.index, dtype=object)
    primary_detail: dict = {}
    others: dict = {}
    for rule in RULE_ORDER:
        broken, detail = CHECKS[rule](frame, inputs)
        broken = broken & live
        if not broken.any():
            continue
        first = broken & primary.isna()
        primary[first] = rule
        for row in broken[broken].index:
            text = detail.get(row, "")
            if first[row]:
                primary_detail[row] = text
            else:
                others.setdefault(row, []).append(f"{rule} ({text})")
    # rows that break a rule are few: composing their detail row by row is cheap
    details = pd.Series(np.nan, index=frame.index, dtype=object)
    for row, text in primary_detail.items():
        details[row] = text + ("; also broke: " + "; ".join(others[row]) if row in others else "")
    return pd.DataFrame({"rule": primary, "detail": details})


def soft_flags(
    frame: pd.DataFrame, inputs: RuleInputs
) -> dict[str, int]:
    """Counts of soft problems among the rows that are kept (live and deleted)."""
    counts: dict[str, int] = {}

    def add(name: str, mask: pd.Series) -> None:
        count = int(mask.fillna(False).astype(bool).sum())
        if count:
            counts[name] = counts.get(name, 0) + count

    if {"cert_type", "cert_valid", "cert_masked", "cert_hash"} <= set(frame):
        clear_resident = (frame["cert_type"] == "resident_id") & ~frame["cert_masked"].fillna(
            False
        ).astype(bool)
        add(
            "cert_invalid",
            clear_resident
            & frame["cert_hash"].notna()
            & ~frame["cert_valid"].fillna(False).astype(bool),
        )
        add("cert_masked", frame["cert_masked"])
    for column in ("gender_conflict", "birth_conflict"):
        if column in frame:
            add(column, frame[column])
    if "uscc_valid" in frame and "uscc" in frame:
        add("uscc_invalid", frame["uscc"].notna() & ~frame["uscc_valid"].fillna(False).astype(bool))
    if "unmapped_categories" in frame:
        add(
            "unmapped_category",
            frame["unmapped_categories"].notna()
            & frame["unmapped_categories"].astype("string").ne(""),
        )
    if "region_code" in frame:
        region = frame["region_code"].astype("string")
        well_formed = region.str.fullmatch(REGION_CODE_PATTERN).fillna(False)
        add("unknown_county", well_formed & ~is_guizhou(region))
    for column, unreadable in inputs.unparseable.items():
        if column not in HARD_DATE_COLUMNS.get(inputs.table, ()):
            add(f"unreadable_{column}", unreadable.reindex(frame.index, fill_value=False))
    for column, unknown in inputs.unknown_codes.items():
        add(f"unknown_code_{column}", unknown.reindex(frame.index, fill_value=False))
    return counts
