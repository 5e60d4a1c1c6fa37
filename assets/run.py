"""What every asset of a run shares: the run's as-of instant.

A sync's steps run in separate processes, often minutes apart; they must agree on "as of
when" (pipelines/clock.py). The instant is the Dagster run's creation time, the same in every
step and in a retried step, or the run's `as_of` tag (ISO 8601; without an offset, Beijing
time) for a backfill or a test that replays a known day.
"""

from __future__ import annotations

from dagster import AssetExecutionContext

from pipelines.clock import AsOf

AS_OF_TAG = "as_of"


def run_as_of(context: AssetExecutionContext) -> AsOf:
    tagged = context.run.tags.get(AS_OF_TAG)
    if tagged:
        return AsOf.parse(tagged)
    record = context.instance.get_run_record_by_id(context.run_id)
    return AsOf(record.create_timestamp)
