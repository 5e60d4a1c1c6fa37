"""The row-level rules that send a staged row to quarantine, and the soft flags that do not.

A row that breaks a rule cannot be loaded: it goes to quarantine (and nowhere else) under
one primary rule, the first it breaks in `RULE_ORDER`; the other rules it breaks are named
in its detail. The contract fixes five rules; the others are ours (marked).

Two kinds of input: the problems the adapter found in the row's source values
(pipelines/staging/adapter.py: what the mapping says to quarantine) and the canonical
values the contract's rules judge here. In order (the live row...):
- `unreadable_row` (ours): is not a JSON object, or holds text that is not valid Unicode;
- `missing_required`: lacks a column `schemas/canonical.yaml` marks `required` (a name, a
  region, a service's volunteer, date and hours, ...), its source key, or its change time;
- `invalid_value` (ours): a value the row cannot do without is there but unusable (a list
  where a name belongs, a number where an ID number belongs, a star level of 1e30);
- `unparseable_date` (ours): a date the row cannot do without that no known format reads;
- `invalid_region` (ours): a region that is no 6-digit division code even after
  normalization (`52`, `5201x`, an ID number or a phone typed into the region box);
- `region_outside_province`: has a region code that does not start with 52 (a county's,
  and a province's or a prefecture's of elsewhere: `11`, `4403`);
- `end_before_start`: ends before it starts;
- `hours_out_of_range`: a service of zero, negative or more than 24 hours; a redemption
  (ours) of zero or fewer hours;
- `future_date`: is dated after the sync (`as_of`): a service date or start, a
  registration, birth, founding, publication or opening date, a redemption, an evaluation
  period.

Why this order: a row that cannot be read, or lacks what identifies it, cannot be judged by
the later rules; region problems are about where the row belongs at all; time and amount
rules come after.

Deleted rows (`is_deleted`) are not quarantined for their content: they leave the
published tables anyway, and the resolver needs them to know an account is gone. They stay
in the staged table with `is_deleted = true`, and the blocking expectations look at live
rows only. Except where a deleted row is published itself: a deleted volunteer or team stays
in dim_volunteer / dim_organization with status `deleted`, so its tombstone is judged by the
two rules that say whether it is a person or team of Guizhou's at all (`missing_required`,
`region_outside_province`, `DELETED_ROWS_JUDGED_BY`). A tombstone of an account quarantined
for having no name was published as a nameless deleted person (and one of a Yunnan account
as a person of county 530102); it stays in quarantine, and nowhere else, as the contract says.

Soft problems are kept, flagged and counted (`soft_flags`): an invalid resident ID
number, a stated gender or birth date that contradicts the ID, an invalid phone or USCC, a
52xxxx code that is no current county, an unmapped category label, an unusable optional
value (the adapter's `invalid_<column>` flags).

Details name the rule's column and source field, never a value: a value may be anything a
person typed (an ID number in the region box), and an unchanged row keeps an unchanged
detail, so a sync with no change at the sources rewrites the same quarantine.
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
    "unreadable_row",
    "missing_required",
    "invalid_value",
    "unparseable_date",
    "invalid_region",
    "region_outside_province",
    "end_before_start",
    "hours_out_of_range",
    "future_date",
)

# Columns always filled by staging itself (never from a source field): not "required" inputs.
COMPUTED_COLUMNS = frozenset({"source", "is_deleted", "is_effective"})

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

MAX_SERVICE_HOURS = 24.0
REGION_CODE_PATTERN = r"^52\d{4}$"
NO_PROBLEMS = pd.DataFrame({"rule": pd.Series(dtype=object), "detail": pd.Series(dtype=object)})


@dataclass
class RuleInputs:
    """What the rules need besides the canonical frame."""

    table: str
    as_of: datetime
    # canonical column -> rows whose source value was unusable (the adapter judged them)
    failed: dict[str, pd.Series] = field(default_factory=dict)
    # the adapter's problems: one row per problem (rule, detail), indexed like the frame
    problems: pd.DataFrame = field(default_factory=NO_PROBLEMS.copy)
    # canonical column -> the source field it comes from, for details
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def as_of_utc(self) -> pd.Timestamp:
        stamp = pd.Timestamp(self.as_of)
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")

    @property
    def as_of_beijing_date(self) -> pd.Timestamp:
        """Midnight of the sync's Beijing calendar day, as a naive timestamp."""
        return (self.as_of_utc + BEIJING_OFFSET).tz_localize(None).normalize()

    def named(self, column: str) -> str:
        """A column as a detail names it: with its source field where it has one."""
        source = self.fields.get(column)
        return f"{column} ({source})" if source and source != column else column


def _false(frame: pd.DataFrame) -> pd.Series:
    return pd.Series(False, index=frame.index)


def _flagged(frame: pd.DataFrame, mask: pd.Series, detail: str) -> tuple[pd.Series, pd.Series]:
    broken = mask.reindex(frame.index, fill_value=False).fillna(False).astype(bool)
    return broken, pd.Series(detail, index=broken[broken].index, dtype=object)


def _join_details(parts: list[pd.Series]) -> pd.Series:
    """Join detail fragments of the same row with '; ' (each part covers its rows only)."""
    parts = [part for part in parts if len(part)]
    if not parts:
        return pd.Series([], dtype=object)
    return pd.concat(parts).groupby(level=0, sort=False).agg("; ".join)


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
        unusable = inputs.failed.get(column)
        if unusable is not None:  # a value that was there but unusable is the adapter's to name
            missing &= ~unusable.reindex(frame.index, fill_value=False)
        if missing.any():
            broken |= missing
            parts.append(pd.Series(f"missing {inputs.named(column)}", index=missing[missing].index, dtype=object))
    return broken, _join_details(parts)


def _region_text(frame: pd.DataFrame) -> pd.Series | None:
    if "region_code" not in frame:
        return None
    return frame["region_code"].astype("string").str.strip()


def check_region_outside_province(frame: pd.DataFrame, inputs: RuleInputs) -> tuple[pd.Series, pd.Series]:
    region = _region_text(frame)
    if region is None:
        return _false(frame), pd.Series([], dtype=object)
    outside = region.str.fullmatch(r"\d+").fillna(False) & ~region.str.startswith("52").fillna(False)
    return _flagged(frame, outside, f"{inputs.named('region_code')} is outside Guizhou (does not start with 52)")


def check_end_before_start(frame: pd.DataFrame, inputs: RuleInputs) -> tuple[pd.Series, pd.Series]:
    if "start_at" not in frame or "end_at" not in frame:
        return _false(frame), pd.Series([], dtype=object)
    backwards = _as_utc(frame["end_at"]) < _as_utc(frame["start_at"])
    return _flagged(frame, backwards, f"{inputs.named('end_at')} is before {inputs.named('start_at')}")


def check_hours_out_of_range(frame: pd.DataFrame, inputs: RuleInputs) -> tuple[pd.Series, pd.Series]:
    if "hours" not in frame or inputs.table not in ("services", "redemptions"):
        return _false(frame), pd.Series([], dtype=object)
    hours = pd.to_numeric(frame["hours"], errors="coerce")
    # a redemption exchanges banked hours: many at once is normal, so only services have a cap
    too_high = hours > MAX_SERVICE_HOURS if inputs.table == "services" else _false(frame)
    allowed = "more than 0, at most 24" if inputs.table == "services" else "more than 0"
    return _flagged(frame, (hours <= 0) | too_high, f"{inputs.named('hours')} out of range (allowed: {allowed} hours)")


def check_future_date(frame: pd.DataFrame, inputs: RuleInputs) -> tuple[pd.Series, pd.Series]:
    broken = _false(frame)
    parts = []
    as_of_date = inputs.as_of_beijing_date
    spec = table_spec(inputs.table)
    for column in FUTURE_COLUMNS.get(inputs.table, ()):
        if column not in frame:
            continue
        if spec.column(column).type == "timestamp":
            future = _as_utc(frame[column]) > inputs.as_of_utc
        else:
            future = _as_naive_date(frame[column]) > as_of_date
        future, detail = _flagged(frame, future, f"{inputs.named(column)} is after the sync")
        broken |= future
        parts.append(detail)
    if inputs.table == "evaluations" and "period" in frame:
        year = pd.to_numeric(frame["period"].astype("string").str.slice(0, 4), errors="coerce")
        future, detail = _flagged(frame, year > as_of_date.year, f"{inputs.named('period')} is after the sync year")
        broken |= future
        parts.append(detail)
    return broken, _join_details(parts)


def future_verdicts_change_at(frame: pd.DataFrame, inputs: RuleInputs) -> pd.Timestamp | None:
    """The first instant (UTC) after the sync's at which `check_future_date` would judge a row
    of `frame` differently: a timestamp stops being in the future at itself, a date at the
    Beijing midnight that starts it, a period at its year's first day. None when no value is
    in the future. Reusing a staged table (pipelines/reuse.py) is sound before that instant."""
    after: list[pd.Timestamp] = []
    as_of_date = inputs.as_of_beijing_date
    spec = table_spec(inputs.table)
    for column in FUTURE_COLUMNS.get(inputs.table, ()):
        if column not in frame:
            continue
        if spec.column(column).type == "timestamp":
            values = _as_utc(frame[column])
            values = values[values > inputs.as_of_utc]
            if len(values):
                after.append(values.min())
        else:
            dates = _as_naive_date(frame[column])
            dates = dates[dates > as_of_date]
            if len(dates):
                after.append((dates.min() - BEIJING_OFFSET).tz_localize("UTC"))
    if inputs.table == "evaluations" and "period" in frame:
        year = pd.to_numeric(frame["period"].astype("string").str.slice(0, 4), errors="coerce")
        # a "year" like 1e99 or inf is judged future for ever: no instant to wait for
        year = year[(year > as_of_date.year) & (year < pd.Timestamp.max.year)]
        if len(year):
            after.append((pd.Timestamp(year=int(year.min()), month=1, day=1) - BEIJING_OFFSET).tz_localize("UTC"))
    return min(after) if after else None


# Tables whose deleted rows are published (status `deleted`), and the rules that judge
# those rows as well as the live ones (see the module docstring).
DELETED_ROWS_JUDGED_BY = {
    "volunteers": frozenset({"missing_required", "region_outside_province"}),
    "organizations": frozenset({"missing_required", "region_outside_province"}),
}

CHECKS = {
    "missing_required": check_missing_required,
    "region_outside_province": check_region_outside_province,
    "end_before_start": check_end_before_start,
    "hours_out_of_range": check_hours_out_of_range,
    "future_date": check_future_date,
}


def _reported(frame: pd.DataFrame, inputs: RuleInputs, rule: str) -> tuple[pd.Series, pd.Series]:
    """The adapter's problems of one rule, as (broken, detail)."""
    mine = inputs.problems.loc[inputs.problems["rule"] == rule, "detail"]
    if not len(mine):
        return _false(frame), pd.Series([], dtype=object)
    detail = mine.astype(str).groupby(level=0, sort=False).agg("; ".join)
    return _false(frame) | pd.Series(True, index=detail.index).reindex(frame.index, fill_value=False), detail


def evaluate(frame: pd.DataFrame, inputs: RuleInputs) -> pd.DataFrame:
    """Per row: `rule` (the primary rule broken, NaN when none) and `detail` (readable).

    Only live rows are judged (see the module docstring for deleted rows), except for the
    problems that make a row unreadable whatever it says.
    """
    live = ~frame["is_deleted"].fillna(False).astype(bool)
    everyone = pd.Series(True, index=frame.index)
    primary = pd.Series(np.nan, index=frame.index, dtype=object)
    primary_detail: dict = {}
    others: dict = {}
    for rule in RULE_ORDER:
        reported, reported_detail = _reported(frame, inputs, rule)
        if rule in CHECKS:
            judged = everyone if rule in DELETED_ROWS_JUDGED_BY.get(inputs.table, ()) else live
            checked, checked_detail = CHECKS[rule](frame, inputs)
            broken = reported | (checked & judged)
            detail = _join_details([reported_detail, checked_detail[checked_detail.index.isin(judged[judged].index)]])
        else:
            broken, detail = reported, reported_detail
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
    counts = {name: int(mask.sum()) for name, mask in soft_flag_masks(frame, inputs).items()}
    return {name: count for name, count in counts.items() if count}


def soft_flag_masks(frame: pd.DataFrame, inputs: RuleInputs) -> dict[str, pd.Series]:
    """Per soft problem, which rows have it (boolean, aligned with `frame`): incremental
    staging keeps them per row, so that its counts are a full staging's."""
    masks: dict[str, pd.Series] = {}

    def add(name: str, mask: pd.Series) -> None:
        masks[name] = mask.fillna(False).astype(bool)

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
    return masks
