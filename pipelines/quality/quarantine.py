"""Quarantine rows: the rejected source rows, as the warehouse contract's `quarantine` table.

Columns: `source, entity, source_id, rule, detail, record, first_seen_at, last_seen_at`.
`record` is the raw source row as JSON with every value masked by where it stands and what it
looks like (`privacy.mask_record`: names, ID numbers and phones in any field, nested or not),
then `privacy.redact` over the text as a second net; `source_id` is masked where it holds a
personal number (`privacy.holds_a_personal_number`: a key a person typed a number into, not
a source's 15- or 18-digit record number). So the table can be published and shown.
`detail` names rules and fields, never values (pipelines/quality/rules.py). Pure frame
functions; staging does the file I/O.

Timestamps, chosen so that a sync with no change at the sources changes nothing:
- `last_seen_at` is when the pipeline last received the row from its source (the raw
  `fetched_at` of the version in quarantine);
- `first_seen_at` is kept from the previous quarantine file while the row stays there (same
  source, entity and source_id), else the `fetched_at` of the version now quarantined. A row
  fixed at the source is simply absent from the next file.
"""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa

QUARANTINE_COLUMNS = (
    "source",
    "entity",
    "source_id",
    "rule",
    "detail",
    "record",
    "first_seen_at",
    "last_seen_at",
)
QUARANTINE_KEY = ["source", "entity", "source_id"]

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string()),
        pa.field("entity", pa.string()),
        pa.field("source_id", pa.string()),
        pa.field("rule", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("record", pa.string()),
        pa.field("first_seen_at", pa.timestamp("us", tz="UTC")),
        pa.field("last_seen_at", pa.timestamp("us", tz="UTC")),
    ]
)


def empty_quarantine() -> pd.DataFrame:
    return QUARANTINE_SCHEMA.empty_table().to_pandas()


def mask_record_json(record_text: str | None) -> str | None:
    """The raw row JSON with every personal value masked; unreadable JSON is redacted text."""
    from pipelines.privacy import mask_record, redact

    if record_text is None or (isinstance(record_text, float) and pd.isna(record_text)):
        return None
    try:
        parsed = json.loads(record_text)
    except (TypeError, ValueError, RecursionError):
        return redact(str(record_text))[:1000]  # masked, then cut (never a number cut in two)
    masked = json.dumps(mask_record(parsed), ensure_ascii=False, sort_keys=True, default=str)
    return redact(masked)  # a second net over the whole text


def build_rows(
    *,
    source: str,
    entity: str,
    source_ids: pd.Series,
    rules: pd.Series,
    details: pd.Series,
    records: pd.Series,
    seen_at: pd.Series,
) -> pd.DataFrame:
    """Quarantine rows for one chunk of one source stream (records masked here)."""
    from pipelines.privacy import identifiers_holding_a_personal_number, redact

    if len(source_ids) == 0:
        return empty_quarantine()
    ids = source_ids.astype("string").reset_index(drop=True)
    holding = identifiers_holding_a_personal_number(ids)
    shown_ids = ids.where(~holding, ids[holding].map(redact))
    seen = pd.to_datetime(pd.Series(seen_at.to_numpy(), dtype=object), utc=True)
    return pd.DataFrame(
        {
            "source": source,
            "entity": entity,
            "source_id": shown_ids.to_numpy(),
            "rule": rules.astype("string").to_numpy(),
            "detail": details.astype("string").to_numpy(),
            "record": [mask_record_json(text) for text in records.tolist()],
            "first_seen_at": seen.to_numpy(),
            "last_seen_at": seen.to_numpy(),
        }
    )


def carry_first_seen(current: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """Keep `first_seen_at` of rows already quarantined at the previous sync."""
    if previous is None or previous.empty or current.empty:
        return current
    earlier = (
        previous[QUARANTINE_KEY + ["first_seen_at"]]
        .dropna(subset=["source_id"])
        .drop_duplicates(subset=QUARANTINE_KEY)
        .rename(columns={"first_seen_at": "previous_first_seen_at"})
    )
    earlier["previous_first_seen_at"] = pd.to_datetime(earlier["previous_first_seen_at"], utc=True)
    merged = current.merge(earlier, on=QUARANTINE_KEY, how="left")
    current_first = pd.to_datetime(merged["first_seen_at"], utc=True)
    merged["first_seen_at"] = merged["previous_first_seen_at"].where(
        merged["previous_first_seen_at"].notna()
        & (merged["previous_first_seen_at"] <= current_first),
        current_first,
    )
    return merged.drop(columns=["previous_first_seen_at"])[list(QUARANTINE_COLUMNS)]


def sort_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """A stable order, so an unchanged quarantine is an unchanged file."""
    return frame.sort_values(["source", "entity", "source_id", "rule"], kind="stable").reset_index(
        drop=True
    )


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    columns = {}
    for arrow_field in QUARANTINE_SCHEMA:
        values = (
            frame[arrow_field.name] if arrow_field.name in frame else pd.Series([None] * len(frame))
        )
        if pa.types.is_timestamp(arrow_field.type):
            values = pd.to_datetime(values, utc=True)
            columns[arrow_field.name] = pa.array(values, from_pandas=True).cast(arrow_field.type)
        else:
            columns[arrow_field.name] = pa.array(
                values.astype(object).where(values.notna(), None).tolist(), type=arrow_field.type
            )
    return pa.table(columns, schema=QUARANTINE_SCHEMA)


def counts_per_rule(frame: pd.DataFrame) -> dict[str, int]:
    if frame is None or frame.empty:
        return {}
    return {
        str(rule): int(count) for rule, count in frame["rule"].value_counts().sort_index().items()
    }


def counts_per_entity_rule(frame: pd.DataFrame) -> dict[str, int]:
    """`entity/rule` -> rows, for run metadata."""
    if frame is None or frame.empty:
        return {}
    grouped = frame.groupby(["entity", "rule"]).size().sort_index()
    return {f"{entity}/{rule}": int(count) for (entity, rule), count in grouped.items()}
