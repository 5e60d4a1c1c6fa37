"""The connectors and staging against the contract servers, without Dagster (fast).

Each test names the clause of docs/CONTRACT.md it holds the code to.
"""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.clock import AsOf
from pipelines.config import Settings
from pipelines.landing import land_stream
from pipelines.resolve.evidence import waterfall_text
from pipelines.resolve.rules import load_matching_rules
from pipelines.sources.http import AuthenticationError, RetrySettings
from pipelines.sources.national.client import NationalApi
from pipelines.sources.provincial.client import ProvincialApi
from pipelines.staging import stage_table
from tests.contract import world as w
from tests.contract.servers import (
    NATIONAL_CLIENT_ID,
    NATIONAL_CLIENT_SECRET,
    PROVINCIAL_APP_KEY,
    PROVINCIAL_APP_SECRET,
    NationalContractServer,
    ProvincialContractServer,
)

FAST = RetrySettings(max_attempts=4, base_delay=0.01, max_delay=0.05)

AS_OF = AsOf.parse("2026-11-01T12:00:00+08:00")  # after every row of the contract world


def _national(server, region="52") -> NationalApi:
    return NationalApi(server.url, NATIONAL_CLIENT_ID, NATIONAL_CLIENT_SECRET, region, retry=FAST)


def _provincial(server, secret=PROVINCIAL_APP_SECRET) -> ProvincialApi:
    return ProvincialApi(server.url, PROVINCIAL_APP_KEY, secret, retry=FAST)


def test_national_region_narrows_the_listing():
    """NATIONAL_REGION is the region prefix sent; the server filters by it."""
    with NationalContractServer(w.national_rows()) as server:
        api = _national(server, region="5203")
        stream = api.streams["volunteers"]
        landed = [row for rows in api.iter_window(stream, None) for row in rows]
        assert {r["albp0029"] for r in landed} == {"V5200000005"}
        assert {dict(r.params)["region"] for r in server.requests if r.path.startswith("/api/")} == {
            "5203"
        }
        assert Settings.from_env({"NATIONAL_REGION": "5203"}).national_region == "5203"


def test_national_walk_reads_every_row_when_the_server_serves_fewer_than_asked():
    """Keyset walk over rows sharing one updated_at second, 3 rows a page for 1000 asked."""
    with NationalContractServer(w.national_rows(), max_page=3) as server:
        api = _national(server)
        stream = api.streams["service_records"]
        landed = [row["id"] for rows in api.iter_window(stream, None) for row in rows]
        assert landed == sorted(r["id"] for r in w.NATIONAL_SERVICES)


def test_national_bad_credentials_fail_clearly_without_retrying():
    with NationalContractServer(w.national_rows()) as server:
        api = NationalApi(server.url, NATIONAL_CLIENT_ID, "wrong-secret", "52", retry=FAST)
        with pytest.raises(AuthenticationError) as refused:
            api.get_page(api.streams["teams"])
        assert "wrong-secret" not in str(refused.value)
        assert len(server.requests) == 1


def test_provincial_signature_covers_the_path_prefix_and_encoded_cursor():
    """PATH includes the prefix of PROVINCIAL_API_URL; cursors with '+/=' are signed as sent."""
    with ProvincialContractServer(w.provincial_rows(), max_page=2) as server:
        api = _provincial(server)
        stream = api.streams["service_logs"]
        landed = [row["id"] for rows in api.iter_window(stream, None) for row in rows]
        assert landed == sorted(r["id"] for r in w.PROVINCIAL_SERVICE_LOGS)
        first = api.get_page(stream, modified_after="2026-10-06 12:00:00")
        assert len(first["list"]) == 2  # inclusive: rows stamped exactly then
        assert all(r.path.startswith("/gateway/open/v2/") for r in server.requests)
        assert all('"code": 0' in r.answer for r in server.requests)


@pytest.mark.parametrize("prefix", ["/开放平台/gw", "/open gateway", "/gw%7e%e2%82%ac"])
def test_provincial_signature_covers_the_path_as_sent(prefix):
    """Provincial signing: PATH is the path of the request URL *as sent*, prefix included. A
    prefix in PROVINCIAL_API_URL that the HTTP client re-quotes before sending (non-ASCII, a
    space, escapes of unreserved characters or in lower-case hex) is signed as it goes out."""
    with ProvincialContractServer(w.provincial_rows(), max_page=2, prefix=prefix) as server:
        api = _provincial(server)
        landed = [row["id"] for rows in api.iter_window(api.streams["teams"], None) for row in rows]
    assert landed == sorted(r["id"] for r in w.provincial_rows()["teams"])
    assert all('"code": 0' in r.answer for r in server.requests)


def test_provincial_refusal_fails_clearly_without_retrying():
    """401xx: fail at once with a clear error (no secret in it)."""
    with ProvincialContractServer(w.provincial_rows()) as server:
        api = _provincial(server, secret="not-the-secret")
        with pytest.raises(AuthenticationError) as refused:
            api.get_page(api.streams["teams"])
        assert "40101" in str(refused.value)
        assert "not-the-secret" not in str(refused.value)
        assert len(server.requests) == 1


def test_a_row_fixed_at_the_source_leaves_quarantine(tmp_path):
    """Quarantine: a row fixed at the source leaves quarantine at the next sync."""
    rows = w.national_rows()
    settings = Settings(data_dir=tmp_path, pii_hash_key="k")
    with NationalContractServer(rows) as server:
        api = _national(server)
        land_stream(api, "volunteers", tmp_path, "sync-1")
        first = stage_table("volunteers", settings, as_of=AS_OF).quarantine
        assert ("V5200000008", "missing_required") in set(zip(first["source_id"], first["rule"]))
        fixed = next(r for r in rows["volunteers"] if r["albp0029"] == "V5200000008")
        fixed.update(albp0003="冯十", updated_at="2026-10-20T10:00:00+08:00")
        land_stream(api, "volunteers", tmp_path, "sync-2")
        second = stage_table("volunteers", settings, as_of=AS_OF)
    assert "V5200000008" not in set(second.quarantine["source_id"])
    staged = second.read(["source_id", "name"])
    assert "V5200000008" in set(staged["source_id"])


def test_evidence_of_no_pair_is_empty():
    """A world with no candidate pair must resolve (the waterfall of nothing is nothing)."""
    rules = load_matching_rules()
    columns = {f"{c.name}_{part}": pd.Series(dtype="float64")
               for c in rules.comparisons for part in ("level", "weight")}
    empty = pd.DataFrame(
        {**columns, "match_weight": pd.Series(dtype="float64"),
         "match_probability": pd.Series(dtype="float64")}
    )
    assert waterfall_text(empty, rules, -10.0).empty


def test_provincial_modified_after_is_always_in_the_contract_form():
    """`modified_after` matches "yyyy-MM-dd HH:mm:ss" (the parameter's pattern): a checkpoint
    taken from a row that came in another readable form (a `T`, fractions, an offset) goes
    back in that form, its second floored (inclusive: nothing skipped), and one such row
    cannot make the platform refuse every later walk."""
    from pipelines.sources.streams import Checkpoint

    with ProvincialContractServer(w.provincial_rows()) as server:
        api = _provincial(server)
        stream = api.streams["volunteers"]
        for written in ("2026-10-01 10:00:00", "2026-10-01T10:00:00.500", "2026-10-01T02:00:00+00:00"):
            list(api.window_pages(stream, Checkpoint(written, "101", frozenset({"101"}))))
        sent = [dict(r.params)["modified_after"] for r in server.requests if "modified_after" in dict(r.params)]
        assert sent == ["2026-10-01 10:00:00"] * 3


@pytest.mark.parametrize(
    "source, stream, table, changed_id, field, new_value",
    [
        ("national", "service_records", "services", "000002", "albx0172", 7.5),
        ("provincial", "service_logs", "services", 402, "durationMinutes", 450),
    ],
)
def test_a_row_changed_again_within_its_landed_second_is_landed(
    tmp_path, source, stream, table, changed_id, field, new_value
):
    """Incremental semantics: a change time has the source's resolution (a second here), so
    a row changed again within the second its landed version carries keeps its
    `updated_at` / `updateTime`. The next walk starts inclusive of that second (national
    `updated_since` without `after_id`, provincial `modified_after`) and gets the new
    version: it must land it, not drop it as a row already landed (and a walk with no
    change still lands nothing)."""
    rows = w.national_rows() if source == "national" else w.provincial_rows()
    server_type = NationalContractServer if source == "national" else ProvincialContractServer
    settings = Settings(data_dir=tmp_path, pii_hash_key="k")
    with server_type(rows) as server:
        api = _national(server) if source == "national" else _provincial(server)
        land_stream(api, stream, tmp_path, "sync-1")
        changed = next(r for r in rows[stream] if r["id"] == changed_id)
        changed[field] = new_value  # the same change time: changed within the same second
        again = land_stream(api, stream, tmp_path, "sync-2")
        unchanged = land_stream(api, stream, tmp_path, "sync-3")
    assert again.rows == 1
    assert unchanged.rows == 0
    staged = stage_table(table, settings, as_of=AS_OF).read(["source_id", "hours"])
    hours = dict(zip(staged["source_id"], staged["hours"]))
    expected = new_value if source == "national" else new_value / 60
    assert float(hours[str(changed_id)]) == pytest.approx(expected)
