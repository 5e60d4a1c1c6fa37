"""The stewards' review, wired into Dagster (the work is pipelines/review.py):

* the asset `review/volunteer_match_workbook`, after the resolution of each sync, writes the
  uncertain pairs with their masked evidence into `DATA_DIR/review/outbox/volunteer_match_review.xlsx`;
* the sensor `review_workbooks` takes filled workbooks saved into `DATA_DIR/review/inbox/`,
  validates each whole and records its decisions in `state/resolve/review_decisions.csv`
  (or refuses it, with a `.errors.txt` beside it); the next sync honours them. It launches no
  run: its tick in the UI says what it took and what it refused.
"""


import warnings
from datetime import datetime

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    DefaultSensorStatus,
    MaterializeResult,
    MetadataValue,
    SensorEvaluationContext,
    SkipReason,
    asset,
    sensor,
)

from assets.run import errors_scrubbed
from pipelines.clock import BEIJING
from pipelines.config import DevelopmentKeyWarning
from pipelines.resources import PipelineSettings

WORKBOOK = AssetKey(["review", "volunteer_match_workbook"])
# A steward who saved a workbook hears back within a minute.
REVIEW_INTERVAL_SECONDS = 30


def _settings(pipeline_settings: PipelineSettings):
    with warnings.catch_warnings():  # nothing is hashed here: the key warning belongs elsewhere
        warnings.simplefilter("ignore", DevelopmentKeyWarning)
        return pipeline_settings.settings()


def _review_pairs(settings) -> pd.DataFrame | None:
    path = settings.resolved_dir / "volunteer_match_review.parquet"
    return pd.read_parquet(path) if path.exists() else None


@asset(
    key=WORKBOOK,
    deps=[AssetKey(["resolved", "volunteers"])],
    group_name="review",
    kinds={"python", "excel"},
    description="The uncertain volunteer matches as a workbook for the data stewards: masked "
                "evidence side by side, a same/different decision column "
                "(DATA_DIR/review/outbox/volunteer_match_review.xlsx).",
)
def volunteer_match_workbook(context: AssetExecutionContext, pipeline_settings: PipelineSettings) -> MaterializeResult:
    from pipelines.review import EVIDENCE_SOURCE_COLUMNS, export_review_workbook, inbox_dir
    from pipelines.staging import read_staged

    settings = _settings(pipeline_settings)
    with errors_scrubbed():
        review = _review_pairs(settings)
        if review is None:
            raise FileNotFoundError("no review pairs: run the resolution first")
        path, pairs = export_review_workbook(
            review, read_staged(settings, "volunteers", columns=EVIDENCE_SOURCE_COLUMNS), settings.data_dir,
            name_key=settings.pii_hash_key)
        inbox_dir(settings.data_dir).mkdir(parents=True, exist_ok=True)
    context.log.info(f"{pairs} uncertain {'pair' if pairs == 1 else 'pairs'} written for review")
    return MaterializeResult(metadata={
        "pairs_for_review": pairs,
        "workbook": MetadataValue.path(str(path)),
        "inbox": MetadataValue.path(str(inbox_dir(settings.data_dir))),
    })


@sensor(
    name="review_workbooks",
    minimum_interval_seconds=REVIEW_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Takes filled review workbooks from DATA_DIR/review/inbox/: validates each, records "
                "its decisions for the next sync, or refuses it with a .errors.txt beside it.",
)
def review_workbooks(context: SensorEvaluationContext, pipeline_settings: PipelineSettings):
    from pipelines.review import take_workbook, waiting_workbooks

    settings = _settings(pipeline_settings)
    waiting = waiting_workbooks(settings.data_dir)
    if not waiting:
        return SkipReason("no workbook in the review inbox")
    review = _review_pairs(settings)
    decisions_path = settings.state_dir / "resolve" / "review_decisions.csv"
    messages = []
    for path in waiting:
        outcome = take_workbook(path, review, decisions_path, datetime.now(BEIJING), settings.pii_hash_key)
        (context.log.info if outcome.accepted else context.log.warning)(outcome.message())
        messages.append(outcome.message())
    return SkipReason(" | ".join(messages))


assets = [volunteer_match_workbook]
sensors = [review_workbooks]
