"""The two sandbox servers over real HTTP: contract conformance, complete walks with and
without faults, the authentication and paging traps of the contracts.

The clients here are deliberately minimal retry loops (the real connectors live in
pipelines/sources/ and are tested there); what is checked is what the servers promise. The
test client signs its requests as docs/CONTRACT.md and the provincial interface describe,
with stdlib hmac (not with the sandbox's own signing code, which is what is under test).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from sandbox import Faults, SandboxServers
from sandbox.national import ROUTES as NATIONAL_ROUTES
from sandbox.provincial import ROUTES as PROVINCIAL_ROUTES


def canonical_query(params: list[tuple[str, str]]) -> str:
    """The contract's canonical query: names and values percent-encoded (RFC 3986: unreserved
    characters as they are, upper-case hex), sorted by name then value, joined by '&'."""
    return "&".join(f"{quote(name, safe='-_.~')}={quote(value, safe='-_.~')}" for name, value in sorted(params))


def signature(app_secret: str, method: str, path: str, query: str, timestamp: str, nonce: str) -> str:
    """Lower-case hex HMAC-SHA256 of METHOD, PATH, canonical query, timestamp and nonce, one a line."""
    message = "\n".join([method, path, query, timestamp, nonce])
    return hmac.new(app_secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


PROJECT_ROOT = Path(__file__).resolve().parents[2]
TOKEN_PATH = "/oauth/token"


# -- minimal clients ---------------------------------------------------------------------------

class NationalClient:
    """Token + GET with a plain retry loop over every transient answer."""

    def __init__(self, servers: SandboxServers, contract=None) -> None:
        self.base = servers.national_url
        self.client_id = servers.national_client_id
        self.client_secret = servers.national_client_secret
        self.session = requests.Session()
        self.token: str | None = None
        self.contract = contract
        self.token_fetches = 0

    def fetch_token(self) -> requests.Response:
        return self.session.post(
            self.base + TOKEN_PATH,
            data={"grant_type": "client_credentials", "client_id": self.client_id,
                  "client_secret": self.client_secret},
            timeout=10,
        )

    def _ensure_token(self) -> None:
        for _ in range(20):
            try:
                response = self.fetch_token()
                if response.status_code == 200:
                    self.token = response.json()["access_token"]
                    self.token_fetches += 1
                    return
            except (requests.RequestException, ValueError):
                continue
        raise AssertionError("no token after 20 attempts")

    def raw_get(self, path: str, params: dict, token: str | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return self.session.get(self.base + path, params=params, headers=headers, timeout=10)

    def get(self, path: str, params: dict) -> dict:
        for _ in range(60):
            if self.token is None:
                self._ensure_token()
            try:
                response = self.raw_get(path, params)
            except requests.RequestException:  # connection closed mid-body
                continue
            if response.status_code == 401:
                self.token = None
                continue
            if response.status_code == 429:
                time.sleep(int(response.headers["Retry-After"]))
                continue
            if response.status_code in (502, 503, 504):
                continue
            try:
                body = response.json()
            except ValueError:  # a body cut short
                continue
            assert response.status_code == 200, (response.status_code, body)
            if self.contract is not None:
                self.contract.validate(path, "get", 200, body, response.headers)
            return body
        raise AssertionError(f"GET {path} did not succeed in 60 attempts")

    def walk_keyset(self, path: str, page_size: int = 50, region: str = "52",
                    between_pages=None) -> list[dict]:
        items: list[dict] = []
        params: dict = {"region": region, "page_size": page_size}
        pages = 0
        while True:
            if between_pages is not None:
                between_pages(pages)
            page = self.get(path, params)
            pages += 1
            items += page["items"]
            if len(page["items"]) < page_size:
                return items
            last = page["items"][-1]
            params = {"region": region, "page_size": page_size,
                      "updated_since": last["updated_at"], "after_id": last["id"]}


class ProvincialClient:
    """Signed GETs; a walk that retries transient answers and restarts after 40010."""

    def __init__(self, servers: SandboxServers, contract=None) -> None:
        self.base = servers.provincial_url
        self.app_key = servers.provincial_app_key
        self.app_secret = servers.provincial_app_secret
        self.session = requests.Session()
        self.contract = contract
        self.restarts = 0

    def signed_headers(self, path: str, params: dict, *, secret: str | None = None,
                       timestamp: str | None = None, nonce: str | None = None) -> dict:
        timestamp = timestamp or str(int(time.time() * 1000))
        nonce = nonce or uuid.uuid4().hex
        sign = signature(secret or self.app_secret, "GET", path,
                         canonical_query([(k, str(v)) for k, v in params.items()]), timestamp, nonce)
        return {"X-App-Key": self.app_key, "X-Timestamp": timestamp, "X-Nonce": nonce,
                "X-Signature": sign}

    def raw_get(self, path: str, params: dict, headers: dict | None = None,
                query: str | None = None) -> requests.Response:
        """GET with the query written RFC 3986 style (or exactly as `query` says)."""
        if query is None:
            query = "&".join(f"{quote(k, safe='')}={quote(str(v), safe='')}" for k, v in params.items())
        url = self.base + path + (f"?{query}" if query else "")
        return self.session.get(url, headers=headers or self.signed_headers(path, params), timeout=10)

    def get(self, path: str, params: dict) -> dict:
        """The envelope of the first answer that is not a transient failure."""
        for _ in range(60):
            try:
                response = self.raw_get(path, params)
            except requests.RequestException:
                continue
            if response.status_code in (502, 503):
                continue
            try:
                body = response.json()
            except ValueError:
                continue
            assert response.status_code == 200
            if self.contract is not None:
                self.contract.validate(path, "get", 200, body)
            if body["code"] == 42900:
                time.sleep(body["data"]["retry_after"])
                continue
            if body["code"] == 50000:
                continue
            return body
        raise AssertionError(f"GET {path} did not succeed in 60 attempts")

    def walk(self, path: str, limit: int = 50, between_pages=None) -> list[dict]:
        items: list[dict] = []
        params: dict = {"limit": limit}
        pages = 0
        while True:
            if between_pages is not None:
                between_pages(pages)
            body = self.get(path, params)
            pages += 1
            if body["code"] == 40010:  # walk again from the last landed row's updateTime
                self.restarts += 1
                params = {"limit": limit}
                if items:
                    params["modified_after"] = items[-1]["updateTime"]
                continue
            assert body["code"] == 0, body
            items += body["data"]["list"]
            if not body["data"]["has_more"]:
                assert body["data"]["next_cursor"] is None
                return items
            params = {"limit": limit, "cursor": body["data"]["next_cursor"]}


# -- what is stored ------------------------------------------------------------------------------

def stored_rows(world: Path, source: str, table: str, region: str | None = None) -> dict:
    """{id: parsed body} as the world's SQLite file holds it now."""
    connection = sqlite3.connect(world / f"{source}.sqlite")
    try:
        sql = f"SELECT id, body FROM {table}"
        params: tuple = ()
        if region:
            sql += " WHERE region GLOB ?"
            params = (f"{region}*",)
        return {row_id: json.loads(body) for row_id, body in connection.execute(sql, params)}
    finally:
        connection.close()


def remaining_count(world: Path, table: str, key: tuple, region: str = "52") -> int:
    connection = sqlite3.connect(world / "national.sqlite")
    try:
        return connection.execute(
            f"SELECT count(*) FROM {table} WHERE (updated_at, id) > (?, ?) AND region GLOB ?",
            (key[0], key[1], f"{region}*"),
        ).fetchone()[0]
    finally:
        connection.close()


def assert_complete(items: list[dict], stored: dict, time_field: str, *, repeats: str) -> None:
    """Every stored row seen, its last version the stored one.

    repeats: "none" (each row once), "new_versions" (a row touched during the walk comes
    again with its new stamp, no version twice: keyset paging), "overlap" (a restart from
    an inclusive `modified_after` may send the rows of that second again).
    """
    seen_ids = [item["id"] for item in items]
    if repeats == "none":
        assert len(seen_ids) == len(set(seen_ids)), "a row came twice"
    elif repeats == "new_versions":
        versions = [(item["id"], item[time_field]) for item in items]
        assert len(versions) == len(set(versions)), "a row version came twice"
    assert set(seen_ids) == set(stored)
    latest = {}
    for item in items:
        latest[item["id"]] = item
    assert latest == stored, "the last version seen of a row is not the stored one"


# -- contract conformance ----------------------------------------------------------------------

def test_national_answers_conform_to_the_contract(servers, world, national_contract):
    client = NationalClient(servers, national_contract)
    good = client.fetch_token()
    national_contract.validate(TOKEN_PATH, "post", 200, good.json())
    assert good.json()["token_type"] == "Bearer"
    bad = client.session.post(servers.national_url + TOKEN_PATH, data={
        "grant_type": "client_credentials", "client_id": client.client_id, "client_secret": "wrong"})
    assert bad.status_code == 401
    national_contract.validate(TOKEN_PATH, "post", 401, bad.json())
    basic = client.session.post(servers.national_url + TOKEN_PATH, data={"grant_type": "client_credentials"},
                                auth=(client.client_id, client.client_secret))
    assert basic.status_code == 401, "credentials go in the form body, not HTTP Basic"

    for path, table in NATIONAL_ROUTES.items():
        items = client.walk_keyset(path, page_size=97)  # every page validated inside get()
        assert {item["id"] for item in items} == set(stored_rows(world, "national", table, "52"))
        errors = {
            400: client.raw_get(path, {"updated_since": "2024-01-01T00:00:00+08:00"}),  # no region
            401: client.raw_get(path, {"region": "52"}, token="not-a-token"),
        }
        for status, response in errors.items():
            assert response.status_code == status
            national_contract.validate(path, "get", status, response.json(), response.headers)

    grant = client.session.post(servers.national_url + TOKEN_PATH, data={
        "grant_type": "password", "client_id": client.client_id, "client_secret": client.client_secret})
    assert grant.status_code == 400
    national_contract.validate(TOKEN_PATH, "post", 400, grant.json())

    servers.set_faults(Faults(rate_limit=1.0, retry_after=0))
    for path in NATIONAL_ROUTES:
        servers.national.dice.served_clean()  # the cap on faults in a row is not under test here
        limited = client.raw_get(path, {"region": "52"})
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "0"
        national_contract.validate(path, "get", 429, limited.json(), limited.headers)


def test_provincial_answers_conform_to_the_contract(servers, world, provincial_contract):
    client = ProvincialClient(servers, provincial_contract)
    for path, table in PROVINCIAL_ROUTES.items():
        items = client.walk(path, limit=97)  # every envelope validated inside get()
        assert {item["id"] for item in items} == set(stored_rows(world, "provincial", table))

    path = "/open/v2/volunteers"
    answers = {}
    answers[40000] = client.raw_get(path, {"limit": "501"})
    answers[40101] = client.raw_get(path, {}, headers=client.signed_headers(path, {}, secret="wrong"))
    stale = str(int(time.time() * 1000) - 301_000)
    answers[40102] = client.raw_get(path, {}, headers=client.signed_headers(path, {}, timestamp=stale))
    reused = client.signed_headers(path, {})
    client.raw_get(path, {}, headers=reused)
    answers[40103] = client.raw_get(path, {}, headers=reused)
    first = client.get(path, {"limit": 5})
    servers.expire_cursors()
    answers[40010] = client.raw_get(path, {"limit": 5, "cursor": first["data"]["next_cursor"]})
    servers.set_faults(Faults(rate_limit=1.0, retry_after=0))
    answers[42900] = client.raw_get(path, {})
    servers.set_faults(Faults(server_error=1.0))
    while 50000 not in answers:  # half of the transient errors are the proxy's HTTP 502/503
        response = client.raw_get(path, {})
        if response.status_code == 200:
            answers[50000] = response
    for code, response in answers.items():
        assert response.status_code == 200
        envelope = response.json()
        assert envelope["code"] == code, (code, envelope)
        provincial_contract.validate(path, "get", 200, envelope)
    assert answers[42900].json()["data"]["retry_after"] == 0


# -- complete walks ------------------------------------------------------------------------------

def test_keyset_walks_return_every_national_row_exactly_once(servers, world):
    client = NationalClient(servers)
    for path, table in NATIONAL_ROUTES.items():
        items = client.walk_keyset(path, page_size=41)
        assert_complete(items, stored_rows(world, "national", table, "52"), "updated_at", repeats="none")
    # The region parameter is a prefix on the row's region (here one prefecture's).
    everyone = stored_rows(world, "national", "volunteers", "52")
    prefecture = sorted(row["albp0020"][:4] for row in everyone.values())[0]
    in_prefecture = client.walk_keyset("/api/v1/volunteers", page_size=41, region=prefecture)
    expected = stored_rows(world, "national", "volunteers", prefecture)
    assert {item["id"] for item in in_prefecture} == set(expected)
    assert 0 < len(expected) < len(everyone)


def test_cursor_walks_return_every_provincial_row_exactly_once(servers, world):
    client = ProvincialClient(servers)
    for path, table in PROVINCIAL_ROUTES.items():
        items = client.walk(path, limit=41)
        assert_complete(items, stored_rows(world, "provincial", table), "updateTime", repeats="none")
    assert client.restarts == 0


def test_walks_survive_every_fault(world):
    # Noisier than all_on() so that every kind of fault shows up in a small world.
    harsh = Faults.all_on(retry_after=0, rate_limit=0.1, server_error=0.1, truncated=0.1,
                          updates_during_walk=0.2)
    with SandboxServers(world, faults=harsh) as servers:
        national = NationalClient(servers)
        provincial = ProvincialClient(servers)
        # Tokens and cursors also die mid-walk, whatever the clock says.
        every_fifth = lambda action: lambda page: action() if page % 5 == 3 else None  # noqa: E731
        for path, table in NATIONAL_ROUTES.items():
            items = national.walk_keyset(path, page_size=13,
                                         between_pages=every_fifth(servers.expire_tokens))
            assert_complete(items, stored_rows(world, "national", table, "52"), "updated_at",
                            repeats="new_versions")
        for path, table in PROVINCIAL_ROUTES.items():
            items = provincial.walk(path, limit=13, between_pages=every_fifth(servers.expire_cursors))
            assert_complete(items, stored_rows(world, "provincial", table), "updateTime",
                            repeats="overlap")
        stats = servers.stats
    assert national.token_fetches > 1 and provincial.restarts > 0
    injected = {kind for side in stats.values() for kind in side["faults"]}
    # Every kind of fault really happened during the walks.
    assert {"rate_limited", "truncated_short", "truncated_close", "rows_touched", "code_50000"} <= injected
    assert injected & {"http_502", "http_503", "http_504"}


def test_faults_are_never_permanent(servers):
    servers.set_faults(Faults(rate_limit=1.0, server_error=1.0, truncated=1.0, retry_after=0))
    client = NationalClient(servers)
    page = client.get("/api/v1/teams", {"region": "52", "page_size": 5})
    assert len(page["items"]) == 5
    assert ProvincialClient(servers).get("/open/v2/teams", {"limit": 5})["code"] == 0


def test_a_truncated_body_is_not_json(servers):
    servers.set_faults(Faults(truncated=1.0))
    client = NationalClient(servers)
    client._ensure_token()
    outcomes = set()
    for _ in range(3):  # at most 3 faults in a row: all three are cut
        try:
            response = client.raw_get("/api/v1/volunteers", {"region": "52"})
            with pytest.raises(ValueError):
                response.json()
            outcomes.add("short")
        except requests.exceptions.ChunkedEncodingError:
            outcomes.add("close")
    assert outcomes


# -- authentication traps ------------------------------------------------------------------------

def test_expired_tokens_get_401(servers):
    client = NationalClient(servers)
    servers.set_faults(Faults(token_ttl=0))
    response = client.fetch_token()
    assert response.json()["expires_in"] == 0
    expired = client.raw_get("/api/v1/teams", {"region": "52"}, token=response.json()["access_token"])
    assert expired.status_code == 401 and expired.json()["error"] == "invalid_token"

    servers.set_faults(Faults())
    token = client.fetch_token().json()["access_token"]
    assert client.raw_get("/api/v1/teams", {"region": "52"}, token=token).status_code == 200
    servers.expire_tokens()
    assert client.raw_get("/api/v1/teams", {"region": "52"}, token=token).status_code == 401


def test_provincial_signature_checks(servers):
    client = ProvincialClient(servers)
    path = "/open/v2/teams"

    def code(response):
        assert response.status_code == 200
        return response.json()["code"]

    assert code(client.raw_get(path, {"limit": 5})) == 0
    signed_for_other_query = client.signed_headers(path, {"limit": 6})
    assert code(client.raw_get(path, {"limit": 5}, headers=signed_for_other_query)) == 40101
    assert code(client.raw_get(path, {}, headers=client.signed_headers(path, {}, secret="x"))) == 40101
    unsigned = {"X-App-Key": client.app_key}
    assert code(client.raw_get(path, {}, headers=unsigned)) == 40101
    stale = str(int(time.time() * 1000) + 301_000)  # too far either way
    assert code(client.raw_get(path, {}, headers=client.signed_headers(path, {}, timestamp=stale))) == 40102
    headers = client.signed_headers(path, {"limit": 5})
    assert code(client.raw_get(path, {"limit": 5}, headers=headers)) == 0
    assert code(client.raw_get(path, {"limit": 5}, headers=headers)) == 40103
    # A refused request whose signature checked out still spends its nonce.
    stale_headers = client.signed_headers(path, {}, timestamp=stale)
    client.raw_get(path, {}, headers=stale_headers)
    fresh_same_nonce = client.signed_headers(path, {}, nonce=stale_headers["X-Nonce"])
    assert code(client.raw_get(path, {}, headers=fresh_same_nonce)) == 40103


def test_plus_and_percent20_both_verify(servers):
    client = ProvincialClient(servers)
    path = "/open/v2/volunteers"
    params = {"modified_after": "2000-01-01 00:00:00", "limit": "3"}
    for query in ("limit=3&modified_after=2000-01-01+00%3A00%3A00",
                  "modified_after=2000-01-01%2000:00:00&limit=3"):
        response = client.raw_get(path, params, headers=client.signed_headers(path, params), query=query)
        assert response.json()["code"] == 0, query
        assert len(response.json()["data"]["list"]) == 3


def test_nonces_are_spent_by_the_platform_not_by_the_proxy(servers):
    client = ProvincialClient(servers)
    path = "/open/v2/stations"
    servers.set_faults(Faults(server_error=1.0))
    proxy_headers = platform_headers = None
    for _ in range(40):
        headers = client.signed_headers(path, {})
        response = client.raw_get(path, {}, headers=headers)
        if response.status_code in (502, 503) and proxy_headers is None:
            proxy_headers = headers
        elif response.status_code == 200 and response.json()["code"] == 50000 and platform_headers is None:
            platform_headers = headers
    assert proxy_headers and platform_headers
    servers.set_faults(Faults())
    assert client.raw_get(path, {}, headers=proxy_headers).json()["code"] == 0
    assert client.raw_get(path, {}, headers=platform_headers).json()["code"] == 40103


# -- paging traps --------------------------------------------------------------------------------

def test_after_id_without_updated_since_is_400(servers):
    client = NationalClient(servers)
    client._ensure_token()
    response = client.raw_get("/api/v1/volunteers", {"region": "52", "after_id": "0000000001"})
    assert response.status_code == 400 and response.json()["error"]
    for bad in ({}, {"region": "5"}, {"region": "52a"}, {"region": "52", "page_size": "1001"},
                {"region": "52", "page": "0"}, {"region": "52", "updated_since": "yesterday"}):
        assert client.raw_get("/api/v1/volunteers", bad).status_code == 400, bad


def test_updated_since_is_beijing_time_without_an_offset(servers, world):
    client = NationalClient(servers)
    everything = client.walk_keyset("/api/v1/projects", page_size=1000)
    middle = everything[len(everything) // 2]["updated_at"]  # e.g. 2024-01-01T08:03:30+08:00
    local = middle[:19]
    utc = datetime.fromisoformat(middle).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    answers = [client.get("/api/v1/projects", {"region": "52", "page_size": 1000, "updated_since": since})
               for since in (middle, local, utc)]
    assert answers[0] == answers[1] == answers[2]
    assert all(item["updated_at"] >= middle for item in answers[0]["items"])
    assert answers[0]["total"] == sum(1 for item in everything if item["updated_at"] >= middle)


def test_total_counts_the_rows_after_the_key(servers, world, monkeypatch):
    import sandbox.store

    monkeypatch.setattr(sandbox.store, "BUCKET_ROWS", 16)  # many buckets in a small world
    client = NationalClient(servers)
    path, table = "/api/v1/service-records", "service_records"
    params = {"region": "52", "page_size": 37}
    first = client.get(path, params)
    assert first["total"] == len(stored_rows(world, "national", table, "52"))
    page, pages = first, 0
    while page["items"]:
        last = page["items"][-1]
        if pages % 3 == 1:  # rows move to the end between pages: counts follow
            servers.touch("national", table, 4)
        params = {"region": "52", "page_size": 37,
                  "updated_since": last["updated_at"], "after_id": last["id"]}
        page = client.get(path, params)
        assert page["total"] == remaining_count(world, table, (last["updated_at"], last["id"]))
        offset_page = client.get(path, {**params, "page": 2})  # the offset applies after the key
        assert offset_page["items"] == client.get(path, {**params, "page_size": 74})["items"][37:]
        pages += 1
    # A change by another writer is seen too.
    connection = sqlite3.connect(world / "national.sqlite")
    connection.execute(f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} LIMIT 5)")
    connection.commit()
    connection.close()
    assert client.get(path, {"region": "52"})["total"] == len(stored_rows(world, "national", table, "52"))


def test_offset_paging_skips_rows_updated_during_the_walk_keyset_does_not(servers, world):
    client = NationalClient(servers)
    path, table = "/api/v1/volunteers", "volunteers"

    def offset_walk(touch: bool) -> set:
        seen, page_number = set(), 1
        while True:
            page = client.get(path, {"region": "52", "page": page_number, "page_size": 20})
            seen |= {item["id"] for item in page["items"]}
            if len(page["items"]) < 20:
                return seen
            if touch:
                servers.touch("national", table, 2)
            page_number += 1

    stored_ids = set(stored_rows(world, "national", table, "52"))
    assert offset_walk(touch=False) == stored_ids
    skipped = stored_ids - offset_walk(touch=True)
    assert skipped, "rows moved behind an offset walk shift later rows past it"

    servers.set_faults(Faults(updates_during_walk=1.0))
    items = client.walk_keyset(path, page_size=20)
    assert servers.stats["national"]["faults"]["rows_touched"] > 20
    assert_complete(items, stored_rows(world, "national", table, "52"), "updated_at", repeats="new_versions")


def test_cursor_expiry_and_retry(servers):
    client = ProvincialClient(servers)
    path = "/open/v2/service-logs"
    first = client.get(path, {"limit": 10})
    cursor = first["data"]["next_cursor"]
    again_a = client.get(path, {"limit": 10, "cursor": cursor})
    again_b = client.get(path, {"limit": 10, "cursor": cursor})
    assert again_a["data"]["list"] == again_b["data"]["list"], "a cursor may be retried until it expires"
    assert again_a["data"]["list"][0]["id"] not in {row["id"] for row in first["data"]["list"]}
    servers.set_faults(Faults(cursor_ttl=0))
    assert client.get(path, {"limit": 10, "cursor": cursor})["code"] == 40010
    servers.set_faults(Faults())
    fresh = client.get(path, {"limit": 10})["data"]["next_cursor"]
    servers.expire_cursors()
    assert client.get(path, {"limit": 10, "cursor": fresh})["code"] == 40010
    forged = fresh[:-2] + ("AA" if not fresh.endswith("AA") else "BB")
    assert client.get(path, {"limit": 10, "cursor": forged})["code"] == 40000
    for bad in ({"limit": "0"}, {"limit": "abc"}, {"modified_after": "2024-01-01T00:00:00"},
                {"modified_after": "2024-02-30 00:00:00"}):
        assert client.get(path, bad)["code"] == 40000, bad


def test_modified_after_is_inclusive(servers, world):
    client = ProvincialClient(servers)
    everything = client.walk("/open/v2/volunteers", limit=500)
    middle = everything[len(everything) // 2]["updateTime"]
    answer = client.get("/open/v2/volunteers", {"limit": 500, "modified_after": middle})
    expected = [item["id"] for item in everything if item["updateTime"] >= middle]
    assert [item["id"] for item in answer["data"]["list"]] == expected[:500]


# -- admin surface and command line ------------------------------------------------------------

def test_admin_hooks_change_faults_at_runtime(servers):
    url = servers.provincial_url + "/_sandbox/faults"
    assert requests.get(url, timeout=5).json()["rate_limit"] == 0
    changed = requests.post(url, json={"preset": "all", "retry_after": 0}, timeout=5).json()
    assert changed["rate_limit"] > 0 and changed["retry_after"] == 0
    assert servers.provincial.faults.rate_limit > 0
    assert requests.post(url, json={"no_such_fault": 1}, timeout=5).status_code == 400
    stats = requests.get(servers.national_url + "/_sandbox/stats", timeout=5).json()
    assert set(stats) == {"requests", "faults"}
    touched = requests.post(servers.national_url + "/_sandbox/touch",
                            json={"stream": "teams", "n": 2}, timeout=5).json()
    assert touched["ok"] and 1 <= len(touched["result"]) <= 2


def test_cli_serves_a_world_until_terminated(world):
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--world", str(world),
         "--national-port", "0", "--provincial-port", "0", "--faults", "all"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        national_line = process.stdout.readline()
        provincial_line = process.stdout.readline()
        national_url = national_line.split()[1]
        provincial_url = provincial_line.split()[1]
        faults = requests.get(national_url + "/_sandbox/faults", timeout=5).json()
        assert faults == Faults.all_on().to_dict()
        assert requests.get(provincial_url + "/_sandbox/faults", timeout=5).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        process.stdout.close()
        process.stderr.close()


def test_a_changeset_applied_while_serving_is_seen_by_the_next_pages(servers, world):
    national, provincial = NationalClient(servers), ProvincialClient(servers)
    before = national.walk_keyset("/api/v1/volunteers", page_size=1000)
    last = before[-1]
    counts = servers.apply_changeset(seed=5)
    assert counts
    since = {"region": "52", "page_size": 1000, "updated_since": last["updated_at"], "after_id": last["id"]}
    changed = national.get("/api/v1/volunteers", since)
    stored = stored_rows(world, "national", "volunteers", "52")
    assert changed["items"], "the change set touched no national volunteer"
    assert changed["total"] == remaining_count(world, "volunteers", (last["updated_at"], last["id"]))
    assert_complete(before + changed["items"], stored, "updated_at", repeats="new_versions")
    for path, table in PROVINCIAL_ROUTES.items():
        assert_complete(provincial.walk(path, limit=100), stored_rows(world, "provincial", table),
                        "updateTime", repeats="none")
