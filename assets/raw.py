"""Raw layer: one asset per source stream, landing its pages under DATA_DIR/raw.

Keys are `raw/<source>_<stream>` (e.g. `raw/national_volunteers`), group `raw`. Each
source system has its own concurrency pool (`national`, `provincial`) so that steps of one
system never hammer it in parallel while the other system's streams proceed. The sync id
is the Dagster run id: a step retried within the run writes into the same folder, after the
pages already there. The work is `pipelines.landing.land_stream`; the asset only wires
resources and reports metadata (counts, timings, cursors: never record content).
"""

from dagster import (
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

from pipelines.landing import land_stream
from pipelines.sources.http import AuthenticationError
from pipelines.sources.national.streams import NATIONAL_STREAMS
from pipelines.sources.provincial.streams import PROVINCIAL_STREAMS
from pipelines.resources import PipelineSettings
from pipelines.sources.resources import NationalClient, ProvincialClient
from pipelines.sources.streams import Stream

# A failed step (source down longer than the client's own retries) is tried again later;
# the state makes the retry resume where the step stopped.
RAW_RETRY_POLICY = RetryPolicy(
    max_retries=3, delay=30, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
)


class RawSyncConfig(Config):
    """Run configuration of a raw asset."""

    full_refresh: bool = False  # ignore the stored cursor and pull the stream from the start


def raw_asset_key(source: str, stream: str) -> list[str]:
    return ["raw", f"{source}_{stream}"]


def build_raw_asset(stream: Stream) -> AssetsDefinition:
    """The asset that lands one stream; the client resource is chosen by its source."""
    client_key = stream.source  # "national" / "provincial": the resource keys below

    @asset(
        key=raw_asset_key(stream.source, stream.name),
        group_name="raw",
        pool=stream.source,
        retry_policy=RAW_RETRY_POLICY,
        required_resource_keys={client_key, "pipeline_settings"},
        kinds={"python", "parquet"},
        description=(
            f"{stream.source} {stream.path}: pages landed as Parquet under "
            f"DATA_DIR/raw/{stream.source}/{stream.name}/<run id>/"
        ),
        metadata={"source": stream.source, "path": stream.path, "page_size": stream.page_size},
    )
    def raw_stream_asset(
        context: AssetExecutionContext, config: RawSyncConfig
    ) -> MaterializeResult:
        client_resource = getattr(context.resources, client_key)
        pipeline_settings: PipelineSettings = context.resources.pipeline_settings
        api = client_resource.api()
        try:
            result = land_stream(
                api,
                stream,
                pipeline_settings.settings().data_dir,
                sync_id=context.run.run_id,
                full_refresh=config.full_refresh,
            )
        except AuthenticationError as refused:
            # wrong credentials or clock: waiting and retrying the step cannot help
            raise Failure(description=str(refused), allow_retries=False) from None
        finally:
            api.close()
        context.log.info(
            f"{stream.source} {stream.name}: {result.rows} rows in {result.pages} pages, "
            f"{result.retries} retries, {result.elapsed_seconds:.1f}s"
        )
        return MaterializeResult(metadata=result.metadata())

    return raw_stream_asset


assets = [build_raw_asset(s) for s in NATIONAL_STREAMS.values()] + [
    build_raw_asset(s) for s in PROVINCIAL_STREAMS.values()
]
asset_checks: list = []
resources = {
    "national": NationalClient(),
    "provincial": ProvincialClient(),
    "pipeline_settings": PipelineSettings(),
}
