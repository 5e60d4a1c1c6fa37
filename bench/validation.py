"""The validating half of the 1M-row benchmark (bench/normalize.py): GX suite and quarantine rules.

What staging does after normalizing, done over the benchmark's synthetic volunteers:

1. `provincial_extract` turns `generate_raw_volunteers` rows into what staging reads from
   DuckDB for the provincial volunteers stream (the mapped JSON fields under their source
   names plus the `__` columns of `pipelines.staging.extract_sql`), with a little dirt the
   quarantine rules exist for: blank names, regions outside Guizhou or malformed, future
   registrations, deleted accounts, stated sexes that contradict the ID number;
2. `staged_volunteers` maps it with staging's own `map_chunk` (chunks of 200k, as staging
   does), which gives the canonical frame the rules judge; the kept rows go through
   `frame_to_arrow` and back to pandas, which gives the staged shape GX reads (the columns
   of `gx_runner.suite_columns`, as the staged asset reads them from Parquet);
3. the vectorized validators are the project's own: `gx_runner.validate("volunteers", ...)`
   and `rules.evaluate(...)`; the row-by-row baselines (`gx_row_by_row`, `rules_row_by_row`)
   apply the same expectations (read from `expectations/volunteers.json`) and the same rules
   to one record dict at a time, in plain Python;
4. `baseline_agrees` checks, on the baseline's sample, that both ways reach the same answer
   (per expectation: unexpected count or observed mean; per row: rule and detail), so the
   speed-up compares equal work.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from pipelines.clock import AsOf
from pipelines.config import Settings
from pipelines.normalize.ids import normalize_resident_id
from pipelines.quality import gx_runner
from pipelines.quality.rules import (
    COMPUTED_COLUMNS,
    FUTURE_COLUMNS,
    RULE_ORDER,
    RuleInputs,
    evaluate,
)
from pipelines.schemas import mappings_for_table, table_spec
from pipelines.staging import DEFAULT_CHUNK_ROWS, frame_to_arrow, map_chunk
from pipelines.staging.extract import type_column
from pipelines.staging.tables import _source_fields

TABLE = "volunteers"
BEIJING = timezone(timedelta(hours=8))
# the sync time the rules compare with (future_date); the generated registrations end in 2024
AS_OF = datetime(2026, 6, 30, 18, 0, tzinfo=BEIJING)
BENCH_KEY = "bench-pii-key"

# shares of the dirt added for the quarantine rules (and the deleted rows they must skip)
BLANK_NAME, OUTSIDE_REGION, MALFORMED_REGION, FUTURE_REGISTRATION = 0.003, 0.003, 0.002, 0.002
DELETED, SEX_CONFLICT = 0.02, 0.01


# ---------------------------------------------------------------------------------------
# The input: the provincial volunteers extract, then staging's canonical and staged frames.


def provincial_extract(raw: pd.DataFrame, seed: int) -> pd.DataFrame:
    """`generate_raw_volunteers` rows as staging's DuckDB extract of the provincial volunteers."""
    rng = np.random.default_rng(seed + 1)
    n = len(raw)
    dice = rng.random(n)
    name = raw["realName"].to_numpy(dtype=object, copy=True)
    name[dice < BLANK_NAME] = "  "
    area = raw["areaCode"].to_numpy(dtype=object, copy=True)
    outside = (dice >= 0.01) & (dice < 0.01 + OUTSIDE_REGION)
    area[outside] = "530102"  # 昆明五华区: Yunnan, not Guizhou
    malformed = (dice >= 0.02) & (dice < 0.02 + MALFORMED_REGION)
    area[malformed] = np.where(rng.random(int(malformed.sum())) < 0.5, "52", "5201x")
    registered = raw["regTime"].to_numpy(dtype=object, copy=True)
    future = (dice >= 0.03) & (dice < 0.03 + FUTURE_REGISTRATION)
    registered[future] = "2027-03-01 09:30:00"
    deleted = rng.random(n) < DELETED

    # the stated sex agrees with the ID number, except for a few (a soft conflict flag)
    id_gender = normalize_resident_id(raw["certNo"], today=AS_OF.date())["gender"].to_numpy(dtype=object)
    random_sex = np.where(rng.random(n) < 0.5, "男", "女")
    sex = np.where(id_gender == "M", "男", np.where(id_gender == "F", "女", random_sex))
    flip = rng.random(n) < SEX_CONFLICT
    sex[flip] = np.where(sex[flip] == "男", "女", "男")
    cert_type = np.where(rng.random(n) < 0.98, "身份证", "护照").astype(object)

    row_ids = (10_000_000 + np.arange(n)).astype(str).astype(object)
    updated = pd.Timestamp("2026-01-01") + pd.to_timedelta(
        rng.integers(0, 86400 * 150, n), unit="s"
    )
    fields = {
        "id": pd.array(row_ids, dtype="str"),
            "isDeleted": np.where(deleted, "true", "false"),
            "realName": pd.array(name, dtype="str"),
            "areaCode": pd.array(area, dtype="str"),
            "regTime": pd.array(registered, dtype="str"),
            "serviceMinutes": rng.integers(0, 60_000, n).astype("float64"),
            "starLevel": rng.integers(0, 6, n).astype("float64"),
            "nationalVolunteerNo": pd.array(
                np.where(rng.random(n) < 0.4, "GZ" + row_ids, None), dtype="str"
            ),
            "skills": pd.array(np.where(rng.random(n) < 0.3, "急救,外语", None), dtype="str"),
            "certType": pd.array(cert_type, dtype="str"),
            "certNo": raw["certNo"],
            "sex": pd.array(sex, dtype="str"),
            "birthday": raw["birthday"],
            "mobile": raw["mobile"],
    }
    # what extract_sql says of each field's JSON kind: numbers for the numeric ones
    kinds = {
        type_column(name): np.where(pd.Series(values).isna(), None,
                                    "number" if name in ("serviceMinutes", "starLevel") else "text")
        for name, values in fields.items()
    }
    return pd.DataFrame(
        {
            "__id": pd.array(row_ids, dtype="str"),
            "__updated_at": pd.array(updated.strftime("%Y-%m-%d %H:%M:%S"), dtype="str"),
            "__updated_utc": updated - pd.Timedelta(hours=8),  # Beijing wall time -> naive UTC
            "__is_deleted": deleted,
            "__record": "{}",  # only quarantined rows carry their record on; not timed here
            "__fetched_at": pd.Timestamp("2026-06-30 10:00:00", tz="UTC"),
            "__sync_id": "bench",
            "__problem": pd.array([None] * n, dtype="str"),
            "__key_versions": 1,
            "__source_key": pd.array(row_ids, dtype="str"),
            **fields,
            **kinds,
        }
    )


@dataclass
class StagedVolunteers:
    canonical: pd.DataFrame  # all rows, as the rules see them (before the quarantine split)
    inputs: RuleInputs  # the rules' inputs: as_of and the unreadable-date masks
    staged: pd.DataFrame  # the kept rows, Parquet-typed, suite columns only: what GX sees
    map_seconds: float
    rule_counts: dict[str, int]


def staged_volunteers(extract: pd.DataFrame) -> StagedVolunteers:
    """Staging's map_chunk over the extract (200k-row chunks), then the staged shape for GX."""
    import time

    mapping = next(m for m in mappings_for_table(TABLE) if m.source == "provincial")
    settings = Settings(pii_hash_key=BENCH_KEY)
    started = time.perf_counter()
    chunks = [
        map_chunk(extract.iloc[start : start + DEFAULT_CHUNK_ROWS], mapping, settings, AsOf.of(AS_OF))
        for start in range(0, len(extract), DEFAULT_CHUNK_ROWS)
    ]
    canonical = pd.concat([chunk.canonical for chunk in chunks])
    map_seconds = time.perf_counter() - started
    failed: dict[str, list[pd.Series]] = {}
    for chunk in chunks:
        for column, mask in chunk.failed.items():
            failed.setdefault(column, []).append(mask)
    inputs = RuleInputs(
        table=TABLE,
        as_of=AS_OF,
        failed={column: pd.concat(masks) for column, masks in failed.items()},
        problems=pd.concat([chunk.problems for chunk in chunks]),
        fields=_source_fields(mapping),
    )
    verdict = evaluate(canonical, inputs)
    kept = canonical[verdict["rule"].isna()]
    staged = frame_to_arrow(kept, TABLE).to_pandas()[gx_runner.suite_columns(TABLE)]
    return StagedVolunteers(
        canonical, inputs, staged, map_seconds, verdict["rule"].value_counts().to_dict()
    )


def sample_inputs(inputs: RuleInputs, index: pd.Index) -> RuleInputs:
    """The rules' inputs restricted to a sample's rows."""
    return RuleInputs(
        table=inputs.table,
        as_of=inputs.as_of,
        failed={c: m.loc[index] for c, m in inputs.failed.items()},
        problems=inputs.problems[inputs.problems.index.isin(index)],
        fields=inputs.fields,
    )


# ---------------------------------------------------------------------------------------
# Row-by-row baselines: the same expectations and rules, one record at a time.


def _missing(value) -> bool:
    return (
        value is None
        or value is pd.NaT
        or value is pd.NA
        or (isinstance(value, float) and math.isnan(value))
    )


# The suite's row conditions (pandas query syntax in the JSON) as per-record predicates.
ROW_CONDITIONS: dict[str, Callable[[dict], bool]] = {
    "is_deleted==False": lambda row: row["is_deleted"] == False,
    'cert_type=="resident_id" & cert_masked==False & cert_hash.notna()': lambda row: (
        row["cert_type"] == "resident_id"
        and row["cert_masked"] == False
        and not _missing(row["cert_hash"])
    ),
}


def _row_check(expectation: dict) -> Callable[[dict], bool | None]:
    """A per-record test for one expectation: True = as expected, None = not counted."""
    kind, kwargs = expectation["type"], expectation["kwargs"]
    column = kwargs.get("column")
    if kind == "expect_column_values_to_not_be_null":
        return lambda row: not _missing(row[column])
    if kind == "expect_column_values_to_be_in_set":
        allowed = frozenset(kwargs["value_set"])
        return lambda row: None if _missing(row[column]) else row[column] in allowed
    if kind == "expect_column_values_to_match_regex":
        search = re.compile(kwargs["regex"]).search
        return lambda row: None if _missing(row[column]) else search(str(row[column])) is not None
    raise ValueError(f"the row-by-row baseline does not know {kind}")


def gx_row_by_row(staged: pd.DataFrame) -> dict[int, float]:
    """The volunteers suite applied record by record: per expectation (position in the JSON),
    the unexpected count, or for a mean expectation the observed mean."""
    expectations = gx_runner.load_suite_json(TABLE)["expectations"]
    records = staged.to_dict("records")
    figures: dict[int, float] = {}
    for position, expectation in enumerate(expectations):
        kwargs = expectation["kwargs"]
        condition = ROW_CONDITIONS[kwargs["row_condition"]] if kwargs.get("row_condition") else None
        if expectation["type"] == "expect_compound_columns_to_be_unique":
            columns = kwargs["column_list"]
            seen: dict[tuple, int] = {}
            for row in records:
                key = tuple(row[c] for c in columns)
                seen[key] = seen.get(key, 0) + 1
            figures[position] = sum(count for count in seen.values() if count > 1)
        elif expectation["type"] == "expect_column_mean_to_be_between":
            column, total, count = kwargs["column"], 0.0, 0
            for row in records:
                if (condition is None or condition(row)) and not _missing(row[column]):
                    total += float(row[column])
                    count += 1
            figures[position] = total / count if count else math.nan
        else:
            check, unexpected = _row_check(expectation), 0
            for row in records:
                if (condition is None or condition(row)) and check(row) is False:
                    unexpected += 1
            figures[position] = unexpected
    return figures


def gx_vectorized_figures(staged: pd.DataFrame) -> dict[int, float]:
    """The same figures from the project's GX run (outcomes come back in suite order per check)."""
    expectations = gx_runner.load_suite_json(TABLE)["expectations"]
    result = gx_runner.validate(TABLE, staged)
    outcomes = [o for check in result.checks for o in check.expectations]
    figures: dict[int, float] = {}
    for position, expectation in enumerate(expectations):
        label_column = expectation["kwargs"].get("column") or ",".join(
            expectation["kwargs"].get("column_list", [])
        )
        match = next(
            o
            for o in outcomes
            if o.expectation_type == expectation["type"]
            and o.column == label_column
            and o.check == expectation["meta"]["check"]
        )
        outcomes.remove(match)
        figures[position] = (
            match.observed_value
            if expectation["type"] == "expect_column_mean_to_be_between"
            else match.unexpected_count
        )
    return figures


_DIGITS = re.compile(r"\d+")


def _region_outside(row: dict, inputs: RuleInputs) -> list[tuple[str, str]]:
    region = row.get("region_code")
    if _missing(region):
        return []
    region = str(region).strip()
    if _DIGITS.fullmatch(region) is not None and not region.startswith("52"):
        return [("region_outside_province", f"{inputs.named('region_code')} is outside Guizhou (does not start with 52)")]
    return []


def rules_row_by_row(
    canonical: pd.DataFrame, inputs: RuleInputs
) -> list[tuple[str | None, str | None]]:
    """The quarantine rules of a volunteers frame record by record: (rule, detail) per row.

    Volunteers have no services' end/start or hours: the rules that apply are the adapter's
    problems (given, as to `evaluate`), missing_required, region_outside_province and
    future_date, in RULE_ORDER.
    """
    required = [
        c
        for c in table_spec(TABLE).required_columns
        if c not in COMPUTED_COLUMNS and c in canonical
    ]
    unusable = {c: set(m.index[m.to_numpy(dtype=bool)]) for c, m in inputs.failed.items()}
    reported: dict = {}
    for label, rule, detail in zip(inputs.problems.index, inputs.problems["rule"], inputs.problems["detail"]):
        reported.setdefault(label, {}).setdefault(rule, []).append(detail)
    as_of_date = inputs.as_of_beijing_date
    # "its day is after the sync's day" == "at or after the next midnight": no normalize() per row
    next_midnight = as_of_date + pd.Timedelta(days=1)
    future_columns = FUTURE_COLUMNS[TABLE]
    verdicts = []
    # only the columns the rules read become record fields (a fair loop does not box the rest)
    read = list(dict.fromkeys(["is_deleted", "region_code", *required, *future_columns]))
    for label, row in zip(canonical.index, canonical[read].to_dict("records")):
        found: dict[str, str] = {rule: "; ".join(details) for rule, details in reported.get(label, {}).items()}
        if row["is_deleted"] is True or row["is_deleted"] == 1:
            found = {rule: detail for rule, detail in found.items() if rule == "unreadable_row"}
            verdicts.append(next(iter(found.items())) if found else (None, None))
            continue
        missing = [
            f"missing {inputs.named(c)}"
            for c in required
            if (_missing(row[c]) or (isinstance(row[c], str) and not row[c].strip()))
            and label not in unusable.get(c, ())
        ]
        if missing:
            found["missing_required"] = "; ".join(missing)
        found.update(_region_outside(row, inputs))
        future = []
        for column in future_columns:
            value = row.get(column)
            if _missing(value):
                continue
            stamp = value if isinstance(value, pd.Timestamp) else pd.Timestamp(value)
            if stamp >= next_midnight:
                future.append(f"{inputs.named(column)} is after the sync")
        if future:
            found["future_date"] = "; ".join(future)
        broken = [(rule, found[rule]) for rule in RULE_ORDER if rule in found]
        if not broken:
            verdicts.append((None, None))
            continue
        (rule, detail), others = broken[0], broken[1:]
        if others:
            detail += "; also broke: " + "; ".join(f"{r} ({d})" for r, d in others)
        verdicts.append((rule, detail))
    return verdicts


def baseline_agrees(
    sample_staged: pd.DataFrame, sample_canonical: pd.DataFrame, inputs: RuleInputs
) -> list[str]:
    """Where the row-by-row baselines and the project's validators disagree (empty = nowhere)."""
    problems = []
    looped, gx = gx_row_by_row(sample_staged), gx_vectorized_figures(sample_staged)
    expectations = gx_runner.load_suite_json(TABLE)["expectations"]
    for position, figure in looped.items():
        other = gx[position]
        if other is None or not math.isclose(
            float(figure), float(other), rel_tol=1e-9, abs_tol=1e-9
        ):
            problems.append(
                f"GX {expectations[position]['type']}({expectations[position]['kwargs'].get('column')}): "
                f"row-by-row {figure} vs GX {other}"
            )
    verdict = evaluate(sample_canonical, sample_inputs(inputs, sample_canonical.index))
    rows = rules_row_by_row(sample_canonical, sample_inputs(inputs, sample_canonical.index))
    rule = pd.Series([r for r, _ in rows], index=sample_canonical.index, dtype=object)
    detail = pd.Series([d for _, d in rows], index=sample_canonical.index, dtype=object)
    differ = ~((rule == verdict["rule"]) | (rule.isna() & verdict["rule"].isna()))
    differ |= ~((detail == verdict["detail"]) | (detail.isna() & verdict["detail"].isna()))
    if differ.any():
        problems.append(f"quarantine rules: {int(differ.sum())} rows judged differently")
    return problems
