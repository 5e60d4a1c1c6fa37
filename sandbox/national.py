"""The simulated national volunteer service information system (source 1).

Serves a world's `national.sqlite` exactly as `schemas/sources/national.openapi.yaml`
describes: OAuth2 client credentials in the form body, Bearer tokens that expire,
listing endpoints filtered by region prefix, keyset paging (`updated_since` + `after_id`)
and offset paging (`page`, `page_size`, `total` = rows after the key), errors as
`{error, message}`, 429 with `Retry-After`, transient 502/503/504 from "the proxy".
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

from sandbox.faults import Faults
from sandbox.serving import JSON_TYPE, App, Request, Response, json_response, parse_query
from sandbox.store import BEIJING, NATIONAL_LAYOUT, WorldStore

ROUTES = {
    "/api/v1/volunteers": "volunteers",
    "/api/v1/teams": "teams",
    "/api/v1/projects": "projects",
    "/api/v1/service-records": "service_records",
    "/api/v1/evaluations": "evaluations",
}
TOKEN_PATH = "/oauth/token"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
REGION_PATTERN = re.compile(r"^[0-9]{2,6}$")
PROXY_STATUSES = (502, 503, 504)  # what the proxy in front answers when the system fails


class BadRequest(ValueError):
    """A parameter the interface refuses with 400."""


def beijing_since(text: str) -> tuple[str, bool]:
    """`updated_since` as the stored Beijing text, and whether it had to be rounded up.

    ISO 8601 with any offset; without an offset it is Beijing time. Stamps are stored to
    the second, so a fractional `since` is rounded up to the next whole second (rows at
    exactly that second are then all after it: the caller drops `after_id`).
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as error:
        raise BadRequest(f"updated_since is not an ISO 8601 date-time: {text!r}") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=BEIJING)
    moment = moment.astimezone(BEIJING)
    rounded = moment.microsecond != 0
    if rounded:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return NATIONAL_LAYOUT.format_time(moment), rounded


def positive_int(text: str | None, name: str, default: int, maximum: int | None = None) -> int:
    if text is None:
        return default
    if not re.fullmatch(r"[0-9]+", text.strip()):
        raise BadRequest(f"{name} must be a positive integer")
    value = int(text)
    if value < 1 or (maximum is not None and value > maximum):
        raise BadRequest(f"{name} must be between 1 and {maximum}" if maximum else f"{name} must be >= 1")
    return value


class NationalApp(App):
    """Request handling of the national interface over one world's national.sqlite."""

    def __init__(
        self,
        db_path: Path,
        client_id: str,
        client_secret: str,
        faults: Faults | None = None,
        seed: int = 1,
    ) -> None:
        super().__init__(WorldStore(db_path, NATIONAL_LAYOUT), faults, seed)
        self.client_id = client_id
        self.client_secret = client_secret
        self._tokens: dict[str, float] = {}  # token -> expiry (monotonic seconds)
        self._tokens_lock = threading.Lock()

    # -- control -------------------------------------------------------------------------

    def expire_tokens(self) -> int:
        """Every token issued so far answers 401 from now on; returns how many."""
        with self._tokens_lock:
            count = len(self._tokens)
            self._tokens.clear()
        return count

    def admin_actions(self) -> dict[str, Callable[[dict], Any]]:
        return {**super().admin_actions(), "expire-tokens": lambda payload: self.expire_tokens()}

    # -- requests ------------------------------------------------------------------------

    def bad_query(self, request: Request) -> Response:
        return error(400, "invalid_request", "the query string is not valid UTF-8 percent-encoding")

    def handle(self, request: Request) -> Response:
        if request.path == TOKEN_PATH:
            self.stats.request(TOKEN_PATH)
            if request.method != "POST":
                return error(405, "method_not_allowed", "use POST", {"Allow": "POST"})
            return self._token(request)
        stream = ROUTES.get(request.path)
        if stream is None:
            return error(404, "not_found", f"no such endpoint: {request.path}")
        self.stats.request(request.path)
        if request.method != "GET":
            return error(405, "method_not_allowed", "use GET", {"Allow": "GET"})
        faults = self.faults
        failure = self.proxy_failure(faults.server_error, PROXY_STATUSES)
        if failure is not None:
            return failure
        denied = self._check_token(request)
        if denied is not None:
            return denied
        if self.dice.roll(faults.rate_limit):
            self.stats.fault("rate_limited")
            return error(
                429, "rate_limited", "too many requests",
                {"Retry-After": str(faults.retry_after)},
            )
        self.touch_during_walk(stream, faults)
        try:
            response = self._list(stream, request)
        except BadRequest as problem:
            return error(400, "invalid_request", str(problem))
        return self.deliver(response, faults)

    def _token(self, request: Request) -> Response:
        failure = self.proxy_failure(self.faults.server_error, PROXY_STATUSES)
        if failure is not None:
            return failure
        try:
            form = dict(parse_query(request.body.decode("utf-8")))
        except (ValueError, UnicodeDecodeError):
            return error(400, "invalid_request", "the body must be application/x-www-form-urlencoded")
        if form.get("grant_type") != "client_credentials":
            return error(400, "unsupported_grant_type", "grant_type must be client_credentials")
        # Credentials go in the form body; HTTP Basic is not accepted by this system.
        given_id = form.get("client_id", "")
        given_secret = form.get("client_secret", "")
        if not (
            secrets.compare_digest(given_id.encode(), self.client_id.encode())
            and secrets.compare_digest(given_secret.encode(), self.client_secret.encode())
        ):
            return error(401, "invalid_client", "unknown client or wrong secret")
        token = secrets.token_urlsafe(24)
        ttl = self.faults.token_ttl
        with self._tokens_lock:
            now = time.monotonic()
            # Forget long-dead tokens so the table stays small on a long run.
            for stale in [key for key, expiry in self._tokens.items() if expiry < now - 3600]:
                del self._tokens[stale]
            self._tokens[token] = now + ttl
        self.dice.served_clean()
        return json_response(200, {"access_token": token, "token_type": "Bearer", "expires_in": ttl})

    def _check_token(self, request: Request) -> Response | None:
        authorization = request.headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return error(401, "invalid_token", "a Bearer token is required", bearer_challenge())
        with self._tokens_lock:
            expiry = self._tokens.get(token.strip())
        if expiry is None:
            self.stats.fault("token_rejected")
            return error(401, "invalid_token", "unknown or expired token", bearer_challenge())
        if time.monotonic() >= expiry:
            self.stats.fault("token_expired")
            return error(401, "invalid_token", "the token has expired", bearer_challenge())
        return None

    def _list(self, stream: str, request: Request) -> Response:
        region = request.param("region")
        if region is None or not REGION_PATTERN.match(region):
            raise BadRequest("region is required: 2 to 6 digits of a region code, e.g. 52")
        since_text = request.param("updated_since")
        after_id = request.param("after_id")
        if after_id is not None and since_text is None:
            raise BadRequest("after_id needs updated_since (keyset paging)")
        page = positive_int(request.param("page"), "page", 1)
        page_size = positive_int(request.param("page_size"), "page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        if since_text is None:
            key = self.store.lowest_key()
        else:
            since, rounded = beijing_since(since_text)
            if after_id is None or rounded:
                key = self.store.lowest_key(since)  # updated_at >= since
            else:
                key = (since, after_id)  # (updated_at, id) > (since, after_id)
        offset = (page - 1) * page_size
        rows = self.store.page(stream, key, page_size, offset, region)
        total = self.store.count_after(stream, key, region)
        # The stored bodies are the JSON rows as served: spliced, not parsed and re-dumped.
        body = (
            b'{"items":[' + b",".join(row[2] for row in rows) + b"],"
            + f'"page":{page},"page_size":{page_size},"total":{total}}}'.encode()
        )
        return Response(status=200, body=body, content_type=JSON_TYPE)


def bearer_challenge() -> dict[str, str]:
    return {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(status, {"error": code, "message": message}, headers)


__all__ = ["NationalApp", "ROUTES", "TOKEN_PATH", "beijing_since"]
