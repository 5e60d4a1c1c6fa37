"""A source's rows onto the canonical model, as its mapping file declares (schemas/mapping/).

One `map_chunk` serves every stream of both sources: what differs between them is data,
the stream's mapping. For each canonical column the mapping names the source field, the
normalizer (`via:`, pipelines/staging/transforms.py) and what happens when the value is
there but unusable (`on_error:`):

* `quarantine`: the row cannot be loaded; it goes to quarantine under the normalizer's rule
  (`invalid_value`, `unparseable_date`, `invalid_region`) with a detail that names the
  column and the source field and what was expected, never the value;
* `flag`: the column is left empty and the row kept, counted under a soft flag
  (`flag:`, default `invalid_<column>`).

A value of a JSON kind the normalizer does not accept (a list where a name belongs, a number
where an ID number belongs) is unusable before any normalizer sees it. What the landing
found wrong with a row as a whole (not an object, no id, an unreadable change time, text
that is not valid Unicode) is a problem of the row, whatever its mapping.

Nothing here raises on a value: every landed row ends as a canonical row or as problems.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines.clock import AsOf
from pipelines.config import Settings
from pipelines.normalize import visible_text
from pipelines.schemas import StreamMapping, table_spec
from pipelines.sources import STREAMS
from pipelines.staging.derived import DERIVED
from pipelines.staging.extract import text_column, type_column
from pipelines.staging.transforms import TRANSFORMS, Context, Reason, as_text, reasons_of

# What the landing writes into a page's `problem` column (pipelines/landing.py), as rules.
LANDING_PROBLEMS = {
    "not_an_object": ("unreadable_row", "the row is not a JSON object"),
    "bad_text": ("unreadable_row", "text that is not valid Unicode (an unpaired surrogate or invalid UTF-8)"),
    "no_id": ("missing_required", "no row id"),
    "not_whole_id": ("invalid_value", "a row id that is no whole number (4.5; 1e30, too large to be exact)"),
    "no_cursor": ("missing_required", "no change time"),
    "bad_cursor": ("invalid_value", "not a readable change time"),
}
PROBLEM_COLUMNS = ["rule", "detail"]
# Normalizers with their own rule for control and invisible characters (a name's become
# spaces: "John\x00Smith" is two words); every other text value loses them before its
# normalizer sees it (`normalize.visible_text`): "90\x00", "2026-03-01\u200b" or a key
# "V0001\u200b" read as what they show, and no NUL reaches PostgreSQL, which refuses it.
OWN_CHARACTER_RULES = frozenset({"name", "person_name", "brand"})
KIND_NAMES = {"list": "a list", "object": "an object", "number": "a number", "text": "text",
              "bool": "true/false"}


@dataclass
class MappedChunk:
    """One chunk in canonical form, with what was wrong with its rows."""

    canonical: pd.DataFrame
    # one row per problem, indexed like `canonical` (a row may have several)
    problems: pd.DataFrame
    # canonical column -> rows whose source value was unusable (whichever the policy)
    failed: dict[str, pd.Series] = field(default_factory=dict)
    soft_flags: dict[str, pd.Series] = field(default_factory=dict)
    # the first instant after the run's at which a value of the chunk would be judged anew
    changes_at: pd.Timestamp | None = None


def no_problems() -> pd.DataFrame:
    return pd.DataFrame({"rule": pd.Series(dtype=object), "detail": pd.Series(dtype=object)})


def _problems(rows: pd.Index, rule: str, detail: str) -> pd.DataFrame:
    return pd.DataFrame({"rule": rule, "detail": detail}, index=rows)


def _landing_problems(raw: pd.DataFrame, key_field: str) -> pd.DataFrame:
    """`kind` or `kind:field` as landing noted it -> the rule and a detail. A row without its
    row id is still a row where the stream's key is another field (albp0029): it stages."""
    if "__problem" not in raw:
        return no_problems()
    noted = raw["__problem"].dropna().astype(str)
    parts = []
    for text, rows in noted.groupby(noted).groups.items():
        kind, _, where = text.partition(":")
        if kind in ("no_id", "not_whole_id") and where != key_field:
            continue
        rule, why = LANDING_PROBLEMS.get(kind, ("unreadable_row", kind))
        parts.append(_problems(rows, rule, f"{where}: {why}" if where else why))
    return _stack(parts)


def _landing_noted(raw: pd.DataFrame, problem: str) -> pd.Series:
    """Rows the landing noted with exactly `problem` (`kind:field`)."""
    if "__problem" not in raw:
        return pd.Series(False, index=raw.index)
    return raw["__problem"].astype("string").eq(problem).fillna(False).astype(bool)


def _stack(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [part for part in parts if len(part)]
    return pd.concat(parts) if parts else no_problems()


def _kinds(raw: pd.DataFrame, field_name: str) -> pd.Series:
    column = type_column(field_name)
    return raw[column] if column in raw else pd.Series(np.nan, index=raw.index, dtype=object)


def wrong_kind(raw: pd.DataFrame, field_name: str, accepts: frozenset[str]) -> pd.Series:
    """Rows whose value is of a JSON kind the normalizer does not accept (null is absence)."""
    kinds = _kinds(raw, field_name)
    return (kinds.notna() & kinds.ne("null") & ~kinds.isin(list(accepts))).fillna(False).astype(bool)


class Adapter:
    """One chunk of one stream at a time, through its mapping."""

    def __init__(self, raw: pd.DataFrame, mapping: StreamMapping, settings: Settings, as_of: AsOf):
        self.raw = raw
        self.mapping = mapping
        self.index = raw.index
        self.live = ~raw["__is_deleted"].fillna(False).astype(bool)
        self.context = Context(mapping, settings, as_of, raw.index, ~self.live)
        self.parts: list[pd.DataFrame] = [_landing_problems(raw, mapping.source_id_field)]
        self.failed: dict[str, pd.Series] = {}

    def unusable(self, failed: pd.Series, spec: dict, column: str, field_name: str,
                 rule: str, why: str, flag: str | None = None) -> None:
        """Apply the mapping's `on_error` to the rows where `column`'s value was unusable
        (`flag`: the soft flag's name, when not the mapping's)."""
        failed = failed.reindex(self.index, fill_value=False).fillna(False).astype(bool)
        self.failed[column] = self.failed.get(column, failed) | failed
        if not failed.any():
            return
        if spec["on_error"] == "quarantine":
            rows = failed & self.live  # deleted rows are never judged on their content
            if rows.any():
                self.parts.append(_problems(rows[rows].index, rule, f"{column} ({field_name}): {why}"))
        else:
            self.context.flag(flag or spec.get("flag", f"invalid_{column}"), failed)

    def unusable_with_reasons(self, failed: pd.Series, reason: Reason | list[Reason] | None, spec: dict,
                              column: str, field_name: str, rule: str, why: str) -> None:
        """`unusable`, the rows of a normalizer's reasons told apart: a placeholder date is
        quarantined (`invalid_value`: it reads, and says nothing) or flagged under its own
        name, with what it is, not what a date should be; the first reason a row has wins."""
        for each in reasons_of(reason):
            rows = each.rows.reindex(failed.index, fill_value=False).fillna(False).astype(bool) & failed
            if rows.any():
                self.unusable(rows, spec, column, field_name, "invalid_value", each.why, flag=f"{each.flag}_{column}")
                failed = failed & ~rows
        self.unusable(failed, spec, column, field_name, rule, why)

    def column(self, canonical: pd.DataFrame, column: str, spec: dict) -> pd.Series:
        transform = TRANSFORMS[spec.get("via", "text")]
        field_name = spec.get("field")
        if "column" in spec:
            values = canonical[spec["column"]]
        elif field_name:
            values = self.raw[field_name]
        else:
            values = pd.Series(np.nan, index=self.index, dtype="str")
        source = field_name or spec.get("column", column)
        accepts = self.mapping.identifier_kinds if spec.get("via") in ("id", "reference") else transform.accepts
        wrong = self.wrong_kinds(spec, column, field_name, accepts, transform.expected)
        if field_name and spec.get("via") not in OWN_CHARACTER_RULES and values.dtype == "str":
            values = visible_text(values)
        arguments = {**spec, "column_name": column}
        if field_name and text_column(field_name) in self.raw:  # a number's text as sent (90分钟)
            arguments["sent_text"] = visible_text(as_text(self.raw[text_column(field_name)]).where(~wrong))
        normalized = transform.normalize(values.where(~wrong), arguments, self.context)
        self.unusable_with_reasons(normalized.failed, normalized.reason, spec, column, source, transform.rule,
                                   f"expected {transform.expected}")
        if "column" in spec:  # unusable where the column it is made from was (already judged)
            self.failed[column] |= self.failed.get(spec["column"], False)
        result = pd.Series(normalized.values, index=self.index)
        if spec.get("on_error") == "flag":
            result = result.where(~self.failed[column])
        return result

    def wrong_kinds(self, spec: dict, column: str, field_name: str | None,
                    accepts: frozenset[str], expected: str) -> pd.Series:
        """Rows whose `field_name` value is of a kind the normalizer cannot take, judged."""
        if not field_name:
            return pd.Series(False, index=self.index)
        wrong = wrong_kind(self.raw, field_name, accepts)
        kinds = _kinds(self.raw, field_name)
        for kind in kinds[wrong].unique():
            self.unusable(wrong & kinds.eq(kind), spec, column, field_name, "invalid_value",
                          f"{KIND_NAMES.get(kind, kind)} where {expected} belongs")
        return wrong

    def unreadable_change_times(self, updated_at: pd.Series, noted: pd.Series) -> None:
        """Rows whose change time the landing read (it moved the checkpoint) and staging
        cannot (a form Python's `fromisoformat` reads and DuckDB does not: 20260601T100000):
        there but unusable, never `missing`."""
        landed = self.raw["__updated_at"].notna() if "__updated_at" in self.raw else pd.Series(False, index=self.index)
        unread = (landed & updated_at.isna() & noted.isna()).fillna(False).astype(bool)
        if unread.any():
            cursor_field = STREAMS[self.mapping.source][self.mapping.stream].cursor_field
            self.failed["updated_at"] |= unread
            self.parts.append(_problems(unread[unread].index, "invalid_value",
                                        f"{cursor_field}: {LANDING_PROBLEMS['bad_cursor'][1]}"))

    def derived(self, canonical: pd.DataFrame, spec: dict) -> None:
        transform = DERIVED[spec["via"]]
        roles = {role: name for role, name in spec["fields"].items() if name}
        fields = pd.DataFrame({role: self.raw[name] for role, name in roles.items()}, index=self.index)
        for role, name in roles.items():
            wrong = self.wrong_kinds(spec, role, name, transform.accepts[role], transform.expected[role])
            fields[role] = fields[role].where(~wrong)
            if fields[role].dtype == "str":
                fields[role] = visible_text(fields[role])
        produced = transform.make(fields, spec, self.context)
        for role, failed in produced.failed.items():
            self.unusable_with_reasons(failed, produced.reasons.get(role), spec, role, roles[role], "invalid_value",
                                       f"expected {transform.expected[role]}")
        for column in spec["into"]:
            canonical[column] = produced.columns[column]

    def map(self) -> MappedChunk:
        spec = table_spec(self.mapping.table)
        mapping = self.mapping
        canonical = pd.DataFrame(index=self.index)
        canonical["source"] = mapping.source
        # the key the dedup kept one row for: unique by construction (GX key_unique); a key
        # shaped like a personal number would be published in clear in a source map
        key_spec = {"on_error": "quarantine"}
        key_ok = ~self.wrong_kinds(key_spec, "source_id", mapping.source_id_field, mapping.identifier_kinds, "an identifier")
        key = TRANSFORMS["id"].normalize(as_text(self.raw["__source_key"]).where(key_ok), key_spec, self.context)
        self.unusable(key.failed, key_spec, "source_id", mapping.source_id_field, "invalid_value",
                      "expected an identifier, not a personal number")
        canonical["source_id"] = key.values
        # a key that is there but no whole number (4.5) is unusable, not missing: the landing's
        # problem says what it is
        self.failed["source_id"] |= _landing_noted(self.raw, f"not_whole_id:{mapping.source_id_field}")
        canonical["updated_at"] = pd.to_datetime(self.raw["__updated_utc"], errors="coerce").dt.tz_localize("UTC")
        # a change time the landing could not read is its problem, not a missing value
        noted = self.raw["__problem"].astype("string") if "__problem" in self.raw else pd.Series(pd.NA, index=self.index)
        self.failed["updated_at"] = noted.str.contains("cursor", regex=False).fillna(False).astype(bool)
        self.unreadable_change_times(canonical["updated_at"], noted)
        canonical["is_deleted"] = ~self.live
        for column, column_spec in mapping.columns.items():
            canonical[column] = self.column(canonical, column, column_spec)
        for derived_spec in mapping.derived:
            self.derived(canonical, derived_spec)
        for column in spec.column_names:
            if column not in canonical:
                canonical[column] = np.nan
        problems = _stack(self.parts)[PROBLEM_COLUMNS]
        return MappedChunk(canonical[spec.column_names], problems, self.failed, self.context.soft_flags,
                           self.context.changes_at)


def map_chunk(raw: pd.DataFrame, mapping: StreamMapping, settings: Settings, as_of: AsOf) -> MappedChunk:
    """One chunk of extracted raw fields -> canonical columns (canonical order) and problems."""
    return Adapter(raw, mapping, settings, as_of).map()
