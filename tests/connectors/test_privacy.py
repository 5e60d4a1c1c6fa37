"""No secret and no clear personal number in the logs or exception messages of a sync."""

from __future__ import annotations

import json
import logging
import re

import pytest

from pipelines.landing import land_stream
from pipelines.logging_privacy import register_secret, scrub
from pipelines.sources import SourceError
from pipelines.sources.http import RetrySettings

from .helpers import ALL_STREAMS, national_api, provincial_api, source_bodies

PERSONAL_FIELDS = {
    ("national", "volunteers"): ("albp0005", "albp0010"),
    ("national", "teams"): ("albe0019",),
    ("provincial", "volunteers"): ("certNo", "mobile"),
    ("provincial", "teams"): ("leaderMobile",),
}


def clear_numbers(world) -> set[str]:
    """Every certificate number and phone of the world that is not masked, as digits."""
    numbers = set()
    for (source, stream), fields in PERSONAL_FIELDS.items():
        for body in source_bodies(world, source, stream):
            row = json.loads(body)
            for name in fields:
                value = row.get(name)
                if not value or "*" in value:
                    continue
                compact = re.sub(r"[\s\-+]", "", value)
                compact = compact.translate({0xFF10 + d: str(d) for d in range(10)})
                if compact.startswith("86") and len(compact) == 13:
                    compact = compact[2:]
                if len(compact) >= 11:
                    numbers.add(compact.upper())
    return numbers


def test_scrub_masks_numbers_phones_and_registered_secrets():
    register_secret("a-registered-secret-value")
    text = "id 52010219900101123X phone 13812345678 key a-registered-secret-value"
    cleaned = scrub(text)
    assert "52010219900101123X" not in cleaned and "13812345678" not in cleaned
    assert "a-registered-secret-value" not in cleaned
    assert "5201" in cleaned  # masking keeps what the contract allows


def test_a_faulty_sync_leaks_nothing(world, servers, data_dir, caplog):
    from sandbox import Faults

    numbers = clear_numbers(world)
    assert len(numbers) > 50, "the world has too few clear numbers for this test to mean much"
    tokens: list[str] = []

    def remember_tokens(response, *args, **kwargs):
        if response.request.path_url.startswith("/oauth/token") and response.status_code == 200:
            tokens.append(response.json()["access_token"])

    caplog.set_level(logging.DEBUG)  # urllib3 and requests included
    servers.set_faults(Faults.all_on(retry_after=0))
    apis = {"national": national_api(servers), "provincial": provincial_api(servers)}
    apis["national"].session.hooks["response"].append(remember_tokens)
    failures: list[str] = []
    for source, stream in ALL_STREAMS:
        land_stream(apis[source], stream, data_dir, "sync-1")
        servers.expire_tokens()  # a 401 and a new token for every national stream
    # then failures: a source that never answers, and wrong credentials
    servers.set_faults(Faults(server_error=1.0, rate_limit=1.0, retry_after=0))
    hopeless = RetrySettings(max_attempts=2, base_delay=0.001, max_delay=0.01)
    for source, stream in [("national", "volunteers"), ("provincial", "volunteers")]:
        make = national_api if source == "national" else provincial_api
        with pytest.raises(SourceError) as failure:
            land_stream(make(servers, retry=hopeless), stream, data_dir, "sync-2")
        failures.append(str(failure.value) + repr(failure.value))
    servers.set_faults(Faults())
    wrong = national_api(servers)
    wrong._client_secret = servers.national_client_secret + "-wrong"
    with pytest.raises(SourceError) as failure:
        land_stream(wrong, "teams", data_dir, "sync-3")
    failures.append(str(failure.value))

    assert len(tokens) >= 2
    logged = caplog.text + "\n".join(failures)
    assert "retrying" in logged  # the faults did produce log lines to inspect
    compact_log = re.sub(r"[\s\-]", "", logged).upper()
    leaked = [n for n in numbers if n in compact_log]
    assert not leaked, f"{len(leaked)} clear numbers in logs or exceptions"
    for secret in [servers.national_client_secret, servers.provincial_app_secret, *tokens]:
        assert secret not in logged
