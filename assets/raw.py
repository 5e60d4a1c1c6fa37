"""Raw layer: one asset per source stream, landing its pages under DATA_DIR/raw.

Keys are `raw/<source>_<stream>` (e.g. `raw/national_volunteers`), group `raw`, pool and
concurrency tag `<source>` (definitions.py holds each source to one step at a time, so
steps of one system never hammer it in parallel while the other system's streams proceed).
The sync id is the Dagster run id: a step retried within the run writes into the same
folder, after the pages already there. The work is `pipelines.landing.land_stream`; the
asset wires resources and reports metadata (counts, timings, cursors: never record content)
and two warning checks that need no sandbox to mean something:

* `newest_update_age`: the age of the newest change landed from the stream, against the
  run's instant: a source that stops changing (a stuck export, credentials that now see
  only old data) shows here before anyone misses a figure;
* `schema_drift`: fields the source sent that the mapping neither reads nor ignores on
  purpose, and fields the mapping reads that no row carried (schemas/mapping/*.yaml); a
  field name not shaped like the contracts' own is counted and hashed, not shown.
"""

from datetime import timedelta

from dagster import (
    DagsterRunStatus,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetsDefinition,
    Backoff,
    Config,
    Failure,
    Jitter,
    MaterializeResult,
    RetryPolicy,
    asset,
)

from assets.run import errors_scrubbed, run_as_of, safe_metadata
from pipelines.clock import AsOf
from pipelines.config import ConfigurationError
from pipelines.landing import LandingResult, land_stream
from pipelines.logging_privacy import is_safe_name, shown_name
from pipelines.resources import PipelineSettings, SourceApis
from pipelines.schemas import load_mapping
from pipelines.source_outages import SourceSkipped, outages_remembered
from pipelines.sources import STREAMS
from pipelines.sources.http import AuthenticationError
from pipelines.sources.streams import Stream

# A failed step (source down longer than the client's own retries) is tried again later;
# the state makes the retry resume where the step stopped. The waits before the three
# retries are 30, 90 and 210 s, each ±30 s of jitter (0-60, 60-120, 180-240 s). A source
# that cannot be reached at all, or refuses our credentials, costs this once per run, not
# once per stream: its other streams are skipped (pipelines/source_outages.py).
RAW_RETRY_POLICY = RetryPolicy(
    max_retries=3, delay=30, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
)
# Across a province every stream changes every day; three days without a single change is
# worth a look. Evaluations come once a year per organization and period; stations (a few
# thousand in the province, set up by a county at a time) may go weeks without one.
STALE_AFTER = {"evaluations": timedelta(days=400), "stations": timedelta(days=30)}
DEFAULT_STALE_AFTER = timedelta(days=3)


def stop_if_terminated(instance, run_id: str) -> None:
    """A step that starts (or is retried) in a run being terminated fails at once, not to be
    retried. Dagster turns the interrupt that Terminate sends to a step with a retry policy
    (every raw step has RAW_RETRY_POLICY) into a retry, and the run went on to the end."""
    run = instance.get_run_by_id(run_id)
    if run is not None and run.status == DagsterRunStatus.CANCELING:
        raise Failure(description="the run is being terminated (Terminate in the UI): this stream is "
                                  "not landed; the next run lands it from its checkpoint",
                      allow_retries=False)


def stale_after(stream: Stream) -> timedelta:
    return STALE_AFTER.get(stream.name, DEFAULT_STALE_AFTER)
CHECK_AGE = "newest_update_age"
CHECK_DRIFT = "schema_drift"


class RawSyncConfig(Config):
    """Run configuration of a raw asset."""

    full_refresh: bool = False  # ignore the stored cursor and pull the stream from the start


def raw_op_name(source: str, stream: str) -> str:
    """The op (step) name Dagster gives the asset `raw/<source>_<stream>`."""
    return "__".join(raw_asset_key(source, stream))


def full_refresh_run_config() -> dict:
    """The `ops` run config that re-pulls every stream from its start."""
    return {
        raw_op_name(source, name): {"config": {"full_refresh": True}}
        for source, streams in STREAMS.items() for name in streams
    }


def raw_asset_key(source: str, stream: str) -> list[str]:
    return ["raw", f"{source}_{stream}"]


def newest_update_check(stream: Stream, result: LandingResult, as_of: AsOf) -> AssetCheckResult:
    """How old the newest change landed from `stream` is, at the run's instant."""
    cursor = result.checkpoint.updated_at if result.checkpoint else None
    if cursor is None:
        return AssetCheckResult(
            check_name=CHECK_AGE, passed=False, severity=AssetCheckSeverity.WARN,
            metadata={"newest_update": "none: nothing landed from this stream yet"},
        )
    try:
        newest = AsOf.parse(cursor)  # national: ISO with offset; provincial: Beijing time
    except ValueError:
        return AssetCheckResult(
            check_name=CHECK_AGE, passed=False, severity=AssetCheckSeverity.WARN,
            metadata={"newest_update": "unreadable cursor time"},
        )
    age = as_of.instant - newest.instant
    return AssetCheckResult(
        check_name=CHECK_AGE,
        passed=age <= stale_after(stream),
        severity=AssetCheckSeverity.WARN,
        metadata={
            "newest_update": newest.isoformat(),
            "as_of": as_of.isoformat(),
            "age_hours": round(age.total_seconds() / 3600, 1),
            "stale_after_hours": stale_after(stream).total_seconds() / 3600,
        },
    )


def schema_drift_check(stream: Stream, result: LandingResult, key: str) -> AssetCheckResult:
    """Fields of this sync's rows against the mapping of the stream. `key` (PII_HASH_KEY)
    hashes the field names not shown."""
    if not result.rows:
        return AssetCheckResult(
            check_name=CHECK_DRIFT, passed=True, severity=AssetCheckSeverity.WARN,
            metadata={"rows_examined": 0},
        )
    mapping = load_mapping(stream.source)[stream.name]
    unknown, missing = mapping.drift(
        result.fields_seen, (stream.id_field, stream.cursor_field, stream.deleted_field)
    )
    return AssetCheckResult(
        check_name=CHECK_DRIFT,
        passed=not unknown and not missing,
        severity=AssetCheckSeverity.WARN,
        metadata=safe_metadata({
            "rows_examined": result.rows,
            "unknown_fields": _named(unknown, key),
            "missing_fields": _named(missing, key),
        }),
    )


def _named(fields: list[str], key: str, most: int = 20) -> str:
    """Field names for the check's metadata (kept in DAGSTER_HOME's event log). A source
    names its fields, and a hostile or careless one can send a name or a phone as a key
    (`tel138…`, `联系人王芳`): a name is shown only when shaped like the contracts' own
    (`is_safe_name`), the others counted and given as short keyed hashes, which tell them
    apart without showing them. A few at most of each."""
    shown = [name for name in fields if is_safe_name(name)]
    hidden = [name for name in fields if not is_safe_name(name)]
    digests = sorted({shown_name(name, key) for name in hidden})
    parts = []
    if shown:
        parts.append(", ".join(shown[:most]) + _more(shown, most))
    if hidden:
        parts.append(f"{len(hidden)} not shown (not identifier-like): " + ", ".join(digests[:most]) + _more(digests, most))
    return "; ".join(parts) or "none"


def _more(names: list[str], most: int) -> str:
    return f" (+{len(names) - most} more)" if len(names) > most else ""


def build_raw_asset(stream: Stream) -> AssetsDefinition:
    """The asset that lands one stream."""
    key = raw_asset_key(stream.source, stream.name)

    @asset(
        key=key,
        group_name="raw",
        pool=stream.source,
        op_tags={"source": stream.source},
        retry_policy=RAW_RETRY_POLICY,
        kinds={"python", "parquet"},
        description=(
            f"{stream.source} {stream.path}: pages landed as Parquet under "
            f"DATA_DIR/raw/{stream.source}/{stream.name}/<run id>/"
        ),
        metadata={"source": stream.source, "path": stream.path, "page_size": stream.page_size},
        check_specs=[
            AssetCheckSpec(CHECK_AGE, asset=key, description=(
                f"[warning] the newest change landed is at most {stale_after(stream).days} days old")),
            AssetCheckSpec(CHECK_DRIFT, asset=key, description=(
                "[warning] no field the mapping does not know, none it reads gone missing")),
        ],
    )
    def raw_stream_asset(
        context: AssetExecutionContext,
        config: RawSyncConfig,
        pipeline_settings: PipelineSettings,
        sources: SourceApis,
    ) -> MaterializeResult:
        stop_if_terminated(context.instance, context.run.run_id)
        try:
            api = sources.api(stream.source)
        except ConfigurationError as misconfigured:
            # plain http, no CA bundle file: the same settings fail the same way on a retry
            raise Failure(description=str(misconfigured), allow_retries=False) from None
        with errors_scrubbed():
            try:
                settings = pipeline_settings.settings()
                with outages_remembered(settings.data_dir, context.run.run_id, stream):
                    result = land_stream(
                        api,
                        stream,
                        settings.data_dir,
                        sync_id=context.run.run_id,
                        full_refresh=config.full_refresh,
                    )
            except SourceSkipped as skipped:
                # one line, no traceback: the failure that decided it is the earlier step's
                raise Failure(description=str(skipped), allow_retries=False) from None
            except AuthenticationError as refused:
                # wrong credentials or clock: waiting and retrying the step cannot help
                raise Failure(description=str(refused), allow_retries=False) from None
            finally:
                api.close()
        context.log.info(
            f"{stream.source} {stream.name}: {result.rows} rows in {result.pages} pages, "
            f"{result.retries} retries, {result.elapsed_seconds:.1f}s"
        )
        return MaterializeResult(
            metadata=safe_metadata(result.metadata()),
            check_results=[
                newest_update_check(stream, result, run_as_of(context)),
                schema_drift_check(stream, result, settings.pii_hash_key),
            ],
        )

    return raw_stream_asset


assets = [build_raw_asset(stream) for source in STREAMS.values() for stream in source.values()]
