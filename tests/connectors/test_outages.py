"""A source that is down or refuses our credentials, as the operator sees it: messages that
say what to check, per-attempt lines that name the stream, and the source's other streams
failing at once with one line (pipelines/source_outages.py) while the other source lands."""

from __future__ import annotations

import logging
import socket
import time
import types

import pytest
from dagster import DagsterInstance, RetryPolicy, materialize

from assets import raw
from pipelines.landing import land_stream
from pipelines.resources import NationalSource, PipelineSettings, ProvincialSource, SourceApis
from pipelines.source_outages import SourceSkipped, outage_path, outages_remembered
from pipelines.sources import NATIONAL_STREAMS, PROVINCIAL_STREAMS
from pipelines.sources.http import AuthenticationError, RetrySettings, SourceUnreachable
from pipelines.sources.provincial import client as provincial_client

from .helpers import landed_keys, national_api, provincial_api, source_keys

# Slow enough that a stream spending its attempts is clearly longer than one skipped.
FEW_SLOW = RetrySettings(max_attempts=3, base_delay=0.4, max_delay=1.0, connect_timeout=1.0)


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- messages -------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["national", "provincial"])
def test_an_unreachable_source_names_its_address_and_the_variable(source, servers, data_dir, caplog):
    port = closed_port()
    make = national_api if source == "national" else provincial_api
    api = make(servers, retry=RetrySettings(max_attempts=3, base_delay=0.001, max_delay=0.01))
    api.base_url = f"http://127.0.0.1:{port}"  # the server is gone

    with caplog.at_level(logging.WARNING, logger="pipelines.sources"):
        with pytest.raises(SourceUnreachable) as failure:
            land_stream(api, "teams", data_dir, "sync-1")

    message = str(failure.value)
    variable = "NATIONAL_API_URL" if source == "national" else "PROVINCIAL_API_URL"
    assert f"127.0.0.1:{port}" in message
    assert f"is the server up? check {variable}" in message
    assert "gave up after 3 attempts" in message and "network: ConnectionError" in message
    attempts = [r.getMessage() for r in caplog.records if "attempt" in r.getMessage()]
    assert len(attempts) == 2
    assert all(line.startswith(f"{source} teams ") for line in attempts), attempts


def test_the_address_shown_carries_no_credentials_nor_query(servers):
    api = national_api(servers)
    api.base_url = "https://etl:pa55word@api.example.cn/gateway?key=abc"
    advice = api.unreachable_advice()
    assert "https://api.example.cn:443/gateway" in advice
    assert "pa55word" not in advice and "key=abc" not in advice and "etl" not in advice


@pytest.mark.parametrize(("make_api", "secret", "refusal", "variables"), [
    (national_api, "_client_secret", "HTTP 401", "NATIONAL_CLIENT_ID / NATIONAL_CLIENT_SECRET"),
    (provincial_api, "_app_secret", "40101", "PROVINCIAL_APP_KEY / PROVINCIAL_APP_SECRET"),
], ids=["national", "provincial"])
def test_refused_credentials_name_the_variables(servers, data_dir, make_api, secret, refusal, variables):
    api = make_api(servers)
    setattr(api, secret, "wrong-secret-abc")
    with pytest.raises(AuthenticationError) as failure:
        land_stream(api, "teams", data_dir, "sync-1")
    assert refusal in str(failure.value)
    assert f"check {variables}" in str(failure.value)


def test_a_stale_timestamp_says_to_check_the_clock(servers, data_dir, monkeypatch):
    an_hour_slow = types.SimpleNamespace(time=lambda: time.time() - 3600)
    monkeypatch.setattr(provincial_client, "time", an_hour_slow)
    with pytest.raises(AuthenticationError) as failure:
        land_stream(provincial_api(servers), "teams", data_dir, "sync-1")
    assert "40102" in str(failure.value) and "check this machine's clock" in str(failure.value)


# -- the note that skips a source's other streams ---------------------------------------


def test_the_stream_that_failed_tries_again_and_lands_when_the_server_is_back(world, data_dir):
    """Dagster's retry of the failed step is not stopped by its own note; once it lands,
    the source's other streams go ahead in the same run."""
    from sandbox import SandboxServers

    port = closed_port()
    teams, volunteers = NATIONAL_STREAMS["teams"], NATIONAL_STREAMS["volunteers"]

    def land(servers, stream):
        api = national_api(servers, retry=FEW_SLOW)
        api.base_url = f"http://127.0.0.1:{port}"
        with outages_remembered(data_dir, "run-1", stream):
            return land_stream(api, stream, data_dir, "run-1")

    with SandboxServers(world) as down:  # credentials of the world; the address is dead
        with pytest.raises(SourceUnreachable):
            land(down, teams)
        began = time.monotonic()
        with pytest.raises(SourceSkipped) as skipped:
            land(down, volunteers)
        assert time.monotonic() - began < 0.5
    assert str(skipped.value).startswith("national source unreachable earlier in this run (stream teams,")
    assert "not tried again" in str(skipped.value) and "check NATIONAL_API_URL" in str(skipped.value)

    with SandboxServers(world, national_port=port) as back:
        land(back, teams)  # the failed stream's retry
        assert not outage_path(data_dir, "run-1", "national").exists()
        land(back, volunteers)
    assert set(landed_keys(data_dir, "national", "volunteers")) == source_keys(world, "national", "volunteers")


def _resources(servers, data_dir, national_url=None, **national) -> dict:
    slow = {"max_attempts": FEW_SLOW.max_attempts, "base_delay_seconds": FEW_SLOW.base_delay,
            "max_delay_seconds": FEW_SLOW.max_delay}
    credentials = {"client_id": servers.national_client_id,
                   "client_secret": servers.national_client_secret, **national}
    return {
        "sources": SourceApis(
            national=NationalSource(api_url=national_url or servers.national_url, page_size=150,
                                    **credentials, **slow),
            provincial=ProvincialSource(
                api_url=servers.provincial_url, app_key=servers.provincial_app_key,
                app_secret=servers.provincial_app_secret, page_size=150, **slow,
            ),
        ),
        "pipeline_settings": PipelineSettings(data_dir=str(data_dir)),
    }


def _quick_retry_assets(monkeypatch) -> list:
    """The raw assets with one quick step retry (the real policy waits up to 4 minutes)."""
    monkeypatch.setattr(raw, "RAW_RETRY_POLICY", RetryPolicy(max_retries=1, delay=0.1))
    return [raw.build_raw_asset(s) for streams in (NATIONAL_STREAMS, PROVINCIAL_STREAMS)
            for s in streams.values()]


def _told(error) -> str:
    """A step failure's message as the UI shows it: after the retries, Dagster's own line
    with the last try's failure as its cause."""
    lines = []
    while error is not None:
        lines.append(error.message.strip())
        error = error.cause
    return " <- ".join(lines)


def _steps(instance, result) -> dict[str, dict]:
    """Per step: its failures' messages, whether it was put up for retry, and the seconds
    its last try took (from the run's event log)."""
    steps: dict[str, dict] = {}
    for entry in instance.all_logs(result.run_id):
        event = entry.dagster_event
        if event is None or not event.step_key:
            continue
        step = steps.setdefault(event.step_key, {"failures": [], "retried": False, "stamps": []})
        kind = event.event_type_value
        if kind == "STEP_FAILURE":
            step["failures"].append(_told(event.event_specific_data.error))
        if kind == "STEP_UP_FOR_RETRY":
            step["retried"] = True
        if kind in ("STEP_START", "STEP_RESTARTED", "STEP_FAILURE", "STEP_SUCCESS", "STEP_UP_FOR_RETRY"):
            step["stamps"].append(entry.timestamp)
    for step in steps.values():
        stamps = step["stamps"]
        step["last_try_seconds"] = stamps[-1] - stamps[-2] if len(stamps) >= 2 else 0.0
    return steps


def test_a_dead_source_fails_its_other_streams_at_once_and_the_other_source_lands(
    world, servers, data_dir, monkeypatch
):
    port = closed_port()
    assets = _quick_retry_assets(monkeypatch)
    instance = DagsterInstance.ephemeral()

    result = materialize(assets, instance=instance, raise_on_error=False,
                         resources=_resources(servers, data_dir, f"http://127.0.0.1:{port}"))

    assert not result.success
    national = {k: v for k, v in _steps(instance, result).items() if k.startswith("raw__national")}
    owners = [k for k, step in national.items() if step["retried"]]
    assert len(owners) == 1, "only the first stream to fail spends its attempts (and a retry)"
    owner = national[owners[0]]
    assert f"127.0.0.1:{port}" in owner["failures"][-1]
    assert "is the server up? check NATIONAL_API_URL" in owner["failures"][-1]
    # its attempts, waited out: at least the shortest backoffs the jitter allows (half of each)
    shortest = sum(0.5 * FEW_SLOW.base_delay * 2**n for n in range(FEW_SLOW.max_attempts - 1))
    assert owner["last_try_seconds"] >= shortest
    for key, step in national.items():
        if key in owners:
            continue
        (message,) = step["failures"]
        assert "Failure: national source unreachable earlier in this run (" in message
        assert "check NATIONAL_API_URL" in message and "not tried again" in message
        assert "\n" not in message  # one line
        # skipped at once: one failure, never put up for retry (its time is not asserted:
        # under a loaded CPU a step's bookkeeping alone can pass any bound)
        assert not step["retried"], key
    landed = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert landed == {f"provincial_{name}" for name in PROVINCIAL_STREAMS}

    # the next run, the server back at the same address: every stream lands, none skipped
    from sandbox import SandboxServers

    with SandboxServers(world, national_port=port):
        later = materialize(assets, instance=instance,
                            resources=_resources(servers, data_dir, f"http://127.0.0.1:{port}"))
    assert later.success
    for name in NATIONAL_STREAMS:
        assert set(landed_keys(data_dir, "national", name)) == source_keys(world, "national", name)


def test_refused_credentials_are_told_once_per_run(world, servers, data_dir, monkeypatch):
    assets = _quick_retry_assets(monkeypatch)

    instance = DagsterInstance.ephemeral()
    result = materialize(assets, instance=instance, raise_on_error=False,
                         resources=_resources(servers, data_dir, client_secret="wrong-secret"))

    national = {k: v for k, v in _steps(instance, result).items() if k.startswith("raw__national")}
    assert not any(step["retried"] for step in national.values())
    messages = [message for step in national.values() for message in step["failures"]]
    told = [m for m in messages if "check NATIONAL_CLIENT_ID / NATIONAL_CLIENT_SECRET" in m]
    skipped = [m for m in messages if "national source refused our credentials earlier in this run" in m]
    assert len(messages) == len(NATIONAL_STREAMS) and len(skipped) == len(NATIONAL_STREAMS) - 1
    assert len(told) == len(NATIONAL_STREAMS)  # the skips repeat what to check, in one line
    assert servers.stats["national"]["requests"] == {"/oauth/token": 1}  # asked once, not 5 times
    assert all("wrong-secret" not in m for m in messages)
    landed = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert landed == {f"provincial_{name}" for name in PROVINCIAL_STREAMS}


def test_a_raw_step_in_a_run_being_terminated_stops_and_is_not_retried():
    """Terminate sends the run an interrupt; Dagster turns it into a retry of a step with a
    retry policy (every raw step), and a terminated sync went on landing, staging and
    publishing to SUCCESS (seen under the daemon). A raw step that starts, or is retried,
    while its run is being terminated fails at once, for good."""
    import dagster as dg

    from assets.raw import stop_if_terminated

    with dg.instance_for_test() as instance:
        run = instance.add_run(dg.DagsterRun(job_name="sync_all", run_id="nightly",
                                             status=dg.DagsterRunStatus.STARTED))
        stop_if_terminated(instance, run.run_id)  # a run going on: nothing
        instance.report_run_canceling(run)
        with pytest.raises(dg.Failure, match="being terminated") as stopped:
            stop_if_terminated(instance, run.run_id)
        assert stopped.value.allow_retries is False
