"""The protocol details of the contracts: signing, encoding, envelope codes, retries, errors."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from urllib.parse import urlsplit

import pytest

from pipelines.landing import land_stream
from pipelines.sources import AuthenticationError, ProvincialApi, SourceError
from pipelines.sources.http import RetrySettings, backoff_delay, parse_retry_after
from pipelines.sources.provincial.client import canonical_query, rfc3986, sign

from .helpers import FAST_RETRY, landed_keys, national_api, provincial_api, source_keys


def test_canonical_query_follows_the_contract():
    params = [
        ("modified_after", "2024-05-01 08:00:00"),
        ("limit", "500"),
        ("cursor", "a+b/c~d_e.f-g"),
    ]
    assert canonical_query(params) == (
        "cursor=a%2Bb%2Fc~d_e.f-g&limit=500&modified_after=2024-05-01%2008%3A00%3A00"
    )
    # sorted by name, then by value
    assert canonical_query([("b", "2"), ("a", "z"), ("a", "y")]) == "a=y&a=z&b=2"
    assert rfc3986("贵州") == "%E8%B4%B5%E5%B7%9E"  # upper-case hex


def test_signature_covers_the_path_prefix_and_is_sent_as_signed():
    api = ProvincialApi("https://gateway.example/zygz/api/", "key", "secret-value-123")
    url, headers = api.signed_request(
        "/open/v2/teams", [("modified_after", "2024-05-01 08:00:00"), ("limit", "5")]
    )

    parts = urlsplit(url)
    assert parts.path == "/zygz/api/open/v2/teams"
    assert parts.query == "limit=5&modified_after=2024-05-01%2008%3A00%3A00"  # %20, never +
    message = "\n".join(
        ["GET", parts.path, parts.query, headers["X-Timestamp"], headers["X-Nonce"]]
    )
    expected = hmac.new(b"secret-value-123", message.encode(), hashlib.sha256).hexdigest()
    assert (
        headers["X-Signature"]
        == expected
        == sign(
            "secret-value-123",
            "GET",
            parts.path,
            parts.query,
            headers["X-Timestamp"],
            headers["X-Nonce"],
        )
    )
    _, again = api.signed_request("/open/v2/teams", [("limit", "5")])
    assert again["X-Nonce"] != headers["X-Nonce"]


def test_backoff_honours_retry_after_and_grows():
    settings = RetrySettings(base_delay=0.5, max_delay=30)
    rng = random.Random(1)
    delays = [backoff_delay(n, settings, None, rng) for n in range(1, 8)]
    assert all(0.25 <= d <= 30 for d in delays)
    assert delays[-1] > delays[0]
    assert backoff_delay(1, settings, 7, rng) >= 7  # never earlier than the server asked
    assert parse_retry_after("3") == 3 and parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # an HTTP-date gone by


def test_signed_requests_with_a_space_in_a_value_are_accepted(world, servers):
    api = provincial_api(servers)
    data = api.get_page(api.streams["stations"], modified_after="2020-01-01 00:00:00")
    assert data["list"]
    assert servers.stats["provincial"]["faults"].get("bad_signature", 0) == 0


def test_wrong_app_secret_fails_at_once_naming_system_and_endpoint(world, servers, data_dir):
    api = ProvincialApi(
        servers.provincial_url, servers.provincial_app_key, "not-the-secret-xyz", retry=FAST_RETRY
    )
    with pytest.raises(AuthenticationError) as failure:
        land_stream(api, "teams", data_dir, "sync-1")
    message = str(failure.value)
    assert "provincial" in message and "/open/v2/teams" in message and "40101" in message
    assert api.stats.requests == 1  # refusals of the signature are not retried
    assert "not-the-secret-xyz" not in message


def test_wrong_client_secret_fails_clearly(world, servers, data_dir):
    api = national_api(servers)
    api._client_secret = "wrong-secret-abc"
    with pytest.raises(AuthenticationError) as failure:
        land_stream(api, "teams", data_dir, "sync-1")
    assert "national" in str(failure.value) and "/oauth/token" in str(failure.value)
    assert "wrong-secret-abc" not in str(failure.value)


@pytest.mark.parametrize("source", ["national", "provincial"])
def test_giving_up_names_system_endpoint_and_last_cursor(world, servers, data_dir, source):
    from sandbox import Faults

    make = national_api if source == "national" else provincial_api
    stream = "volunteers"
    land_stream(make(servers), stream, data_dir, "sync-1")  # a cursor to name
    api = make(servers, retry=RetrySettings(max_attempts=2, base_delay=0.001, max_delay=0.01))
    if source == "national":
        api.access_token()  # a token in hand: the failure to name is the listing's
    # every request refused (the sandbox serves one clean answer after 3 faults in a row:
    # 2 attempts never reach it)
    servers.set_faults(Faults(server_error=1.0, rate_limit=1.0, retry_after=0))

    with pytest.raises(SourceError) as failure:
        land_stream(api, stream, data_dir, "sync-2")

    message = str(failure.value)
    path = "/api/v1/volunteers" if source == "national" else "/open/v2/volunteers"
    last = json.loads((data_dir / "state" / source / f"{stream}.json").read_text())
    assert source in message and path in message and "2 attempts" in message
    assert last["updated_at"] in message and last["id"] in message


@pytest.mark.parametrize("fault", ["rate_limit", "server_error", "truncated"])
def test_each_transient_fault_is_retried_through(world, servers, data_dir, fault):
    from sandbox import Faults

    servers.set_faults(Faults(**{fault: 0.5}, retry_after=0))
    apis = {"national": national_api(servers), "provincial": provincial_api(servers)}
    total_retries = 0
    for source, api in apis.items():
        result = land_stream(api, "teams", data_dir, "sync-1")
        total_retries += result.retries
        assert set(landed_keys(data_dir, source, "teams")) == source_keys(world, source, "teams")
    assert total_retries > 0
