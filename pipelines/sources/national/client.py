"""Client of the national volunteer service system's exchange interface (source 1).

OAuth2 client credentials (sent in the form body, as the contract says): the token is cached,
renewed shortly before `expires_in` runs out, and renewed at once when a request comes back
401 (the request is then repeated). Listings are walked by keyset (`updated_since` +
`after_id`, the last row of each page fed back in), never by offset pages: rows updated during
the walk move to its end instead of shifting an offset window over rows not yet read.

`NationalApi` is a plain class (usable from tests and bench/ without Dagster); the Dagster
resource wrapping it is `pipelines.sources.resources.NationalClient`.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any, Iterator
from urllib.parse import quote, urlencode

from pipelines.logging_privacy import forget_secret, register_secret, scrub
from pipelines.sources.http import (
    Answer,
    ApiClient,
    AuthenticationError,
    SourceError,
    Transient,
    decode_body,
    decode_json,
    raise_if_transient,
)
from pipelines.sources.national.streams import NATIONAL_PAGE_SIZE, NATIONAL_STREAMS
from pipelines.clock import BEIJING
from pipelines.sources.streams import Checkpoint, Paging, Stream, change_time, last_usable

log = logging.getLogger("pipelines.sources")

TOKEN_PATH = "/oauth/token"
# what an operator fixes when the token endpoint refuses us
CREDENTIALS_ADVICE = "check NATIONAL_CLIENT_ID / NATIONAL_CLIENT_SECRET"


def token_renewal_margin(expires_in: float) -> float:
    """Seconds before expiry at which a cached token is renewed: 10% of its life, ≤ 30 s."""
    return min(30.0, 0.1 * max(0.0, expires_in))


# The contract's timestamps: ISO 8601's extended form with an offset (a fraction allowed).
CONTRACT_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")


def updated_since_text(updated_at: str) -> str:
    """A row's `updated_at` as `updated_since` takes it: unchanged when the system wrote it
    in the contract's form (every row, by the contract); one written otherwise that the
    landing reads (ISO's basic form 20260601T100000+0800, a space for the T) goes back as
    the same instant in the contract's form with +08:00, so that one such row cannot make
    the server refuse or misread every later page."""
    if CONTRACT_TIME.fullmatch(updated_at):
        return updated_at
    moment = change_time(updated_at)
    if moment is None:
        return updated_at  # no plausible time: the landing never checkpoints one
    beijing = moment.astimezone(BEIJING)
    text = beijing.strftime("%Y-%m-%dT%H:%M:%S")
    if beijing.microsecond:
        text += f".{beijing.microsecond:06d}"
    return text + "+08:00"


def keyset_params(
    region: str, page_size: int, updated_since: str | None, after_id: str | None
) -> list[tuple[str, str]]:
    """The query of one keyset request. `updated_since` goes out as the server wrote it
    (with its +08:00 offset), so no time zone conversion can shift the window; a change time
    written in another form goes out in the contract's (`updated_since_text`)."""
    params = [("region", region)]
    if updated_since is not None:
        params.append(("updated_since", updated_since_text(updated_since)))
        if after_id is not None:  # after_id alone is a 400 by contract
            params.append(("after_id", after_id))
    params.append(("page_size", str(page_size)))
    return params


class NationalApi(ApiClient):
    """Reads the national interface: token handling, keyset walk, retries."""

    system = "national"
    url_variable = "NATIONAL_API_URL"
    streams: dict[str, Stream] = NATIONAL_STREAMS

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        region: str = "52",
        *,
        page_size: int = NATIONAL_PAGE_SIZE,
        **client_options: Any,
    ):
        super().__init__(base_url, **client_options)
        self.client_id = client_id
        self._client_secret = client_secret
        register_secret(client_secret)
        self.region = region
        self.page_size = min(max(1, page_size), NATIONAL_PAGE_SIZE)
        self._token: str | None = None
        self._token_renew_at = 0.0  # time.monotonic() after which we fetch a new one

    # -- token -----------------------------------------------------------------------------

    def _fetch_token_once(self) -> tuple[str, float]:
        response = self.send(
            "POST",
            self.base_url + TOKEN_PATH,
            data={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self._client_secret,
            },
        )
        status = response.status_code
        if status in (400, 401, 403):
            raise AuthenticationError(
                self.system,
                TOKEN_PATH,
                f"the token endpoint refused the client credentials (HTTP {status}); "
                + CREDENTIALS_ADVICE,
            )
        raise_if_transient(response)
        if status != 200:
            raise SourceError(self.system, TOKEN_PATH, f"unexpected HTTP {status}")
        body = decode_json(response)
        if not isinstance(body, dict) or not body.get("access_token"):
            raise Transient("body: token answer without access_token")
        expires_in = float(body.get("expires_in") or 0)
        return str(body["access_token"]), expires_in

    def access_token(self) -> str:
        """A token valid for a while yet: the cached one, or a new one."""
        if self._token is None or time.monotonic() >= self._token_renew_at:
            self.renew_token()
        assert self._token is not None
        return self._token

    def renew_token(self) -> None:
        """Fetch a new token now (before expiry, or after a 401)."""
        token, expires_in = self.retrying(self._fetch_token_once, TOKEN_PATH, None)
        self.stats.token_fetches += 1
        if self._token:
            forget_secret(self._token)
        register_secret(token)
        self._token = token
        self._token_renew_at = time.monotonic() + expires_in - token_renewal_margin(expires_in)

    # -- pages -----------------------------------------------------------------------------

    def _get_page_once(self, stream: Stream, url: str, position: str) -> dict[str, Any]:
        for repeat_after_new_token in (False, True):
            response = self.send(
                "GET",
                url,
                headers={
                    "Authorization": f"Bearer {self.access_token()}",
                    "Accept": "application/json",
                },
            )
            if response.status_code != 401:
                break
            if repeat_after_new_token:
                raise AuthenticationError(
                    self.system, stream.path,
                    f"HTTP 401 again with a freshly issued token; {CREDENTIALS_ADVICE} "
                    "(the client may lack access to this listing)", position,
                )
            log.info("national %s: token refused (401); fetching a new one", stream.path)
            self.renew_token()
        raise_if_transient(response)
        if response.status_code != 200:
            raise SourceError(
                self.system,
                stream.path,
                f"HTTP {response.status_code}: {self._error_text(response)}",
                position,
            )
        body = decode_json(response)
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise Transient("body: JSON without an items list")
        return body

    @staticmethod
    def _error_text(response: Answer) -> str:
        try:
            body = decode_body(response.content)
            text = f"{body.get('error', '')} {body.get('message', '')}".strip()
        except Exception:  # noqa: BLE001 - an error body that is not JSON (or not an object)
            text = response.content[:200].decode("utf-8", "replace")
        return scrub(text[:300])

    def get_page(
        self, stream: Stream, updated_since: str | None = None, after_id: str | None = None
    ) -> dict[str, Any]:
        """One page of `stream` after the key (updated_since, after_id), with retries."""
        params = keyset_params(self.region, self.page_size, updated_since, after_id)
        # quote (not quote_plus): the '+' of +08:00 must travel as %2B, never as a space
        url = f"{self.base_url}{stream.path}?{urlencode(params, quote_via=quote)}"
        position = f"updated_since={updated_since}, after_id={after_id}" if updated_since else None
        return self.retrying(lambda: self._get_page_once(stream, url, position), stream.path, position)

    def window_pages(self, stream: Stream, start: Checkpoint | None) -> Iterator[list[dict]]:
        """Walk `stream` by keyset from `start` to the end, one list of rows per page.

        With a known boundary set the window starts at `updated_since` = the checkpoint's
        second, inclusive (the walk drops rows it already landed); otherwise strictly after
        (updated_at, id).
        """
        if stream.paging is not Paging.KEYSET:
            raise ValueError(f"the national interface pages by keyset, not {stream.paging}")
        if start is None:
            updated_since, after_id = None, None
        elif start.has_boundary:
            updated_since, after_id = start.updated_at, None
        else:
            updated_since, after_id = start.updated_at, start.id
        while True:
            body = self.get_page(stream, updated_since, after_id)
            rows: list[dict] = body["items"]
            if rows:
                yield rows
            total = body.get("total")
            # `total` counts the rows after the key: trust it when present, since a server
            # may serve fewer rows than asked without being at the end
            at_end = total <= len(rows) if isinstance(total, int) else len(rows) < self.page_size
            if not rows or at_end:
                return
            # the next key is the last row that has one; a page with none cannot be paged on
            last = last_usable(stream, rows)
            if last is None:
                raise SourceError(
                    self.system, stream.path,
                    "a whole page without a row that has a readable id and change time",
                    f"updated_since={updated_since}, after_id={after_id}" if updated_since else None,
                )
            updated_since, after_id = stream.row_cursor(last), stream.row_id(last)
