"""The raw assets in Dagster: keys, group, pools, retry policy, metadata, full refresh."""

from __future__ import annotations

import json

from dagster import DagsterInstance, materialize

from assets import raw
from pipelines.resources import NationalSource, PipelineSettings, ProvincialSource, SourceApis

from .helpers import ALL_STREAMS, landed_keys, source_keys


def test_one_raw_asset_per_stream_grouped_pooled_and_retried():
    keys = {a.key.to_user_string(): a for a in raw.assets}
    assert set(keys) == {f"raw/{source}_{stream}" for source, stream in ALL_STREAMS}
    for name, asset in keys.items():
        source = name.split("/")[1].split("_")[0]
        assert asset.group_names_by_key[asset.key] == "raw"
        assert asset.op.pool == source
        assert asset.op.tags["source"] == source  # the executor's one-step-per-source limit
        assert asset.op.retry_policy is not None and asset.op.retry_policy.max_retries >= 1
        assert {spec.name for spec in asset.check_specs} == {"newest_update_age", "schema_drift"}


def sandbox_resources(servers, data_dir) -> dict:
    fast = {"base_delay_seconds": 0.005, "max_delay_seconds": 0.05}
    return {
        "sources": SourceApis(
            national=NationalSource(
                api_url=servers.national_url,
                client_id=servers.national_client_id,
                client_secret=servers.national_client_secret,
                page_size=150,
                **fast,
            ),
            provincial=ProvincialSource(
                api_url=servers.provincial_url,
                app_key=servers.provincial_app_key,
                app_secret=servers.provincial_app_secret,
                page_size=150,
                **fast,
            ),
        ),
        "pipeline_settings": PipelineSettings(data_dir=str(data_dir)),
    }


def test_materializing_lands_every_stream_with_metadata(world, servers, data_dir):
    from sandbox import Faults

    servers.set_faults(Faults(rate_limit=0.2, retry_after=0))
    instance = DagsterInstance.ephemeral()
    result = materialize(
        raw.assets, resources=sandbox_resources(servers, data_dir), instance=instance
    )

    assert result.success
    events = {e.asset_key.to_user_string(): e for e in result.get_asset_materialization_events()}
    for source, stream in ALL_STREAMS:
        metadata = events[f"raw/{source}_{stream}"].materialization.metadata
        expected = source_keys(world, source, stream)
        assert metadata["rows"].value == len(expected)
        assert metadata["pages"].value >= 1
        assert metadata["elapsed_seconds"].value >= 0
        assert metadata["sync_id"].value == result.run_id
        assert set(landed_keys(data_dir, source, stream)) == expected
        state = json.loads((data_dir / "state" / source / f"{stream}.json").read_text())
        assert metadata["cursor_updated_at"].value == state["updated_at"]
        assert metadata["cursor_id"].value == state["id"]
        assert "record" not in metadata
    assert sum(e.materialization.metadata["retries"].value for e in events.values()) > 0

    # a second run with full_refresh for one stream lands it all again, the others nothing
    again = materialize(
        raw.assets,
        resources=sandbox_resources(servers, data_dir),
        instance=instance,
        run_config={"ops": {"raw__national_teams": {"config": {"full_refresh": True}}}},
    )
    rows = {
        e.asset_key.to_user_string(): e.materialization.metadata["rows"].value
        for e in again.get_asset_materialization_events()
    }
    assert rows.pop("raw/national_teams") == len(source_keys(world, "national", "teams"))
    assert set(rows.values()) == {0}


def test_refused_credentials_fail_the_step_without_retries(world, servers, data_dir):
    resources = sandbox_resources(servers, data_dir)
    resources["sources"] = SourceApis(
        national=NationalSource(
            api_url=servers.national_url,
            client_id=servers.national_client_id,
            client_secret="not-the-national-secret",
        ),
        provincial=ProvincialSource(),
    )
    national_volunteers = next(a for a in raw.assets if a.key.path[-1] == "national_volunteers")

    result = materialize(
        [national_volunteers],
        resources=resources,
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )

    assert not result.success
    kinds = [event.event_type_value for event in result.all_events]
    assert "STEP_UP_FOR_RETRY" not in kinds
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.event_specific_data.error)
    assert "national" in message and "/oauth/token" in message
    assert "not-the-national-secret" not in message
