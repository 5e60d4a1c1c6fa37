"""What every asset of a run shares: the run's as-of instant, and privacy at the edge.

A sync's steps run in separate processes, often minutes apart; they must agree on "as of
when" (pipelines/clock.py). The instant is the Dagster run's creation time, the same in every
step and in a retried step, or the run's `as_of` tag (ISO 8601; without an offset, Beijing
time) for a backfill or a test that replays a known day.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster import (
    AssetExecutionContext,
    Failure,
    JsonMetadataValue,
    MarkdownMetadataValue,
    MetadataValue,
    TextMetadataValue,
)

from pipelines.clock import AsOf
from pipelines.files import DataDirUnwritable
from pipelines.logging_privacy import scrub
from pipelines.privacy import redact

AS_OF_TAG = "as_of"


def run_as_of(context: AssetExecutionContext) -> AsOf:
    tagged = context.run.tags.get(AS_OF_TAG)
    if tagged:
        return AsOf.parse(tagged)
    record = context.instance.get_run_record_by_id(context.run_id)
    return AsOf(record.create_timestamp)


@contextmanager
def errors_scrubbed() -> Iterator[None]:
    """An exception leaves a step with its message and traceback scrubbed of secrets and
    personal numbers: Dagster keeps what a step raises in its event log and shows it in the
    UI. The original is not chained (it would be stored too); the scrubbed traceback goes
    with the failure, for whoever debugs it."""
    try:
        yield
    except Failure as failure:
        raise Failure(description=scrub(failure.description or ""), metadata=failure.metadata,
                      allow_retries=failure.allow_retries) from None
    except DataDirUnwritable as error:  # a full or read-only disk: retrying in a minute won't help
        raise Failure(description=scrub(f"{type(error).__name__}: {error}"), allow_retries=False) from None
    except Exception as error:  # noqa: BLE001 - re-raised, scrubbed
        raise Failure(
            description=scrub(f"{type(error).__name__}: {error}"),
            metadata={"traceback": MetadataValue.text(scrub(traceback.format_exc()))},
        ) from None


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(key)): _redacted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value


def safe_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Run metadata with every text in it redacted (`pipelines.privacy.redact`): what an asset
    reports is built from counts and codes, but a preview, a field name or a detail a
    source sent could still carry a number."""
    cleaned: dict[str, Any] = {}
    for name, value in metadata.items():
        if isinstance(value, (str, dict, list)):
            value = _redacted(value)
        elif isinstance(value, TextMetadataValue):
            value = MetadataValue.text(redact(value.text))
        elif isinstance(value, MarkdownMetadataValue):
            value = MetadataValue.md(redact(value.md_str))
        elif isinstance(value, JsonMetadataValue):
            value = MetadataValue.json(_redacted(value.data))
        cleaned[name] = value
    return cleaned
