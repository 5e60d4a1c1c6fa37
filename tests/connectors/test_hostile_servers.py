"""Source servers that misbehave on purpose, met by the real clients over real HTTP(S).

A province runs the pull every night, unattended: no answer a server can give may make it
sleep for ever, read without end, follow the token request somewhere else, or send the
credentials in clear over the network. Each server here is a real socket on loopback that
answers exactly the bytes a test scripts (lying Content-Length, gzip bombs, trickling
bodies, absurd Retry-After, endless streams, redirects, a self-signed TLS certificate).

Waits are recorded by the client's `sleep` (what it asked to wait), not slept: the
assertion is on the wait the client chose, with no clock in the test.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import pytest

from pipelines.config import ConfigurationError
from pipelines.landing import land_stream, read_state
from pipelines.sources.http import RetrySettings, SourceError
from pipelines.sources.national.client import NationalApi
from pipelines.sources.provincial.client import ProvincialApi

SECRET = "hostile-test-client-secret"
CAP = RetrySettings().max_retry_after  # 600 s

# an answer: a function that writes raw bytes on the connection
Answer = Callable[[BaseHTTPRequestHandler], None]


def reply(status: int, body: bytes | dict = b"", headers: dict[str, str] | None = None) -> Answer:
    payload = json.dumps(body).encode() if isinstance(body, dict) else body

    def write(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        sent = {"Content-Type": "application/json", "Content-Length": str(len(payload)),
                "Connection": "close", **(headers or {})}
        for name, value in sent.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)

    return write


def token() -> Answer:
    return reply(200, {"access_token": "t-1", "expires_in": 3600})


def national_page(rows: int = 1) -> Answer:
    items = [{"id": f"{n:08d}", "updated_at": "2026-01-01T00:00:00+08:00", "isdelete": 0} for n in range(rows)]
    return reply(200, {"items": items, "page": 1, "page_size": 1000, "total": rows})


def envelope(code: int, data: dict | None = None) -> Answer:
    return reply(200, {"code": code, "msg": "", "data": data or {}})


def provincial_page(row_id: int, has_more: bool = False) -> Answer:
    stamp = (dt.datetime(2026, 1, 1) + dt.timedelta(seconds=row_id)).strftime("%Y-%m-%d %H:%M:%S")
    row = {"id": row_id, "teamName": "队", "updateTime": stamp, "isDeleted": 0}
    return envelope(0, {"list": [row], "has_more": has_more, "next_cursor": f"c{row_id}"})


class HostileServer:
    """Answers each request with the next scripted answer for its path (the last one
    repeats), over plain HTTP or TLS; records the paths asked for."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        owner = self
        self.script: dict[str, list[Answer]] = {}
        self.seen: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                path = self.path.split("?", 1)[0]
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                owner.seen.append(path)
                answers = owner.script.get(path) or [reply(404, {"error": "not_found"})]
                answer = answers.pop(0) if len(answers) > 1 else answers[0]
                try:
                    answer(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client hung up on a hostile body: that is the point
                self.close_connection = True

            do_GET = do_POST = _serve  # noqa: N815

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    running = HostileServer()
    yield running
    running.close()


class Waits(list):
    """The client's sleep: records what it was asked to wait."""

    def __call__(self, seconds: float) -> None:
        assert seconds == seconds and seconds != float("inf"), "a wait that is no number"
        self.append(seconds)


def national(url: str, waits: Waits | None = None, **retry) -> NationalApi:
    return NationalApi(url, "hostile-client", SECRET, retry=RetrySettings(**retry),
                       sleep=Waits() if waits is None else waits)


def provincial(url: str, waits: Waits | None = None, **retry) -> ProvincialApi:
    return ProvincialApi(url, "hostile-app", SECRET, retry=RetrySettings(**retry),
                         sleep=Waits() if waits is None else waits)


TEAMS_N = "/api/v1/teams"
TEAMS_P = "/open/v2/teams"


# --- Retry-After --------------------------------------------------------------------------

ABSURD_RETRY_AFTER = {
    "1e9": CAP, "inf": CAP, "Infinity": CAP, "9" * 400: CAP,
    "Fri, 31 Dec 9999 23:59:59 GMT": CAP,  # an HTTP-date eight thousand years ahead
    "nan": None, "-5": None, "soon": None, "": None,  # None: our own short backoff
}


@pytest.mark.parametrize("announced", list(ABSURD_RETRY_AFTER), ids=lambda v: v[:12] or "empty")
def test_an_absurd_retry_after_waits_at_most_the_cap(server, announced):
    server.script = {"/oauth/token": [token()],
                     TEAMS_N: [reply(429, {"error": "slow down"}, {"Retry-After": announced}), national_page()]}
    waits = Waits()
    api = national(server.url, waits)
    body = api.get_page(api.streams["teams"])
    assert len(body["items"]) == 1  # the client waited, retried, and got the page
    (wait,) = waits
    expected = ABSURD_RETRY_AFTER[announced]
    assert wait == expected if expected is not None else 0 < wait <= RetrySettings().max_delay


def test_the_provincial_platform_is_honoured_and_capped_like_the_national_one(server):
    """HTTP 5xx with Retry-After from the proxy, 50000 and 42900 with data.retry_after."""
    server.script = {TEAMS_P: [
        reply(503, b"<html>busy</html>", {"Retry-After": "45", "Content-Type": "text/html"}),
        reply(502, b"", {"Retry-After": "1e9"}),
        envelope(50000, {"retry_after": 30}),
        envelope(42900, {"retry_after": "inf"}),
        provincial_page(1),
    ]}
    waits = Waits()
    api = provincial(server.url, waits, base_delay=0.01)
    data = api.get_page(api.streams["teams"])
    assert [row["id"] for row in data["list"]] == [1]
    assert waits == [45, CAP, 30, CAP]


def test_a_wait_past_the_stream_deadline_gives_up_at_once(server):
    server.script = {"/oauth/token": [token()], TEAMS_N: [reply(503, b"", {"Retry-After": "1e9"})]}
    waits = Waits()
    api = national(server.url, waits, stream_deadline=300)  # shorter than the capped wait
    with pytest.raises(SourceError, match="deadline") as failed:
        list(api.iter_window(api.streams["teams"], None))
    assert waits == [] and server.seen.count(TEAMS_N) == 1
    assert SECRET not in str(failed.value)


def test_an_endless_stream_stops_at_its_deadline_with_what_it_landed(server, tmp_path):
    """A server that always has one more page: the walk ends at the deadline, the pages
    before it stay landed and the state names the last one (the next sync resumes)."""
    pages = iter(range(1, 10**6))

    def endless(handler):
        time.sleep(0.02)
        provincial_page(next(pages), has_more=True)(handler)

    server.script = {TEAMS_P: [endless, endless]}
    api = provincial(server.url, stream_deadline=1.0)
    with pytest.raises(SourceError, match="deadline"):
        land_stream(api, "teams", tmp_path, "sync-1")
    state = read_state(tmp_path, "provincial", "teams")
    landed = sorted((tmp_path / "raw" / "provincial" / "teams" / "sync-1").glob("page-*.parquet"))
    assert state is not None and len(landed) >= 2
    assert int(state.id) == len(landed)  # one row per page, ids 1, 2, ...


# --- bodies -------------------------------------------------------------------------------


def lying_length(handler):
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Connection", "close")
    handler.send_header("Content-Length", str(10**12))
    handler.end_headers()
    handler.wfile.write(b'{"items": [')


def endless_chunks(handler):
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Connection", "close")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    chunk = b"x" * 65536
    for _ in range(64):  # 4 MiB, no length announced
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    handler.wfile.write(b"0\r\n\r\n")


BOMB = gzip.compress(b'{"items": [' + b" " * (16 * 1024 * 1024) + b"]}", compresslevel=9)


def gzip_bomb(handler):
    reply(200, BOMB, {"Content-Encoding": "gzip"})(handler)


@pytest.mark.parametrize("answer", [lying_length, endless_chunks, gzip_bomb], ids=lambda f: f.__name__)
def test_a_body_over_the_limit_is_refused_not_read(server, answer):
    server.script = {"/oauth/token": [token()], TEAMS_N: [answer]}
    api = national(server.url, max_body_bytes=1024 * 1024)
    with pytest.raises(SourceError, match="limit"):
        api.get_page(api.streams["teams"])
    assert server.seen.count(TEAMS_N) == 1  # not retried: the same page would be as large
    assert len(BOMB) < 100 * 1024  # what travelled was small; what it unpacks to is not


def trickle(handler):
    body = json.dumps({"items": [], "page": 1, "page_size": 1000, "total": 0}).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Connection", "close")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    for byte in body:
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        time.sleep(0.05)  # each byte well within the read timeout; the whole far beyond


def test_a_trickling_body_is_cut_at_the_request_deadline(server):
    server.script = {"/oauth/token": [token()], TEAMS_N: [trickle]}
    api = national(server.url, max_attempts=2, request_deadline=0.3, base_delay=0.01)
    with pytest.raises(SourceError, match="slower than"):
        api.get_page(api.streams["teams"])


# --- redirects and transport --------------------------------------------------------------


def test_redirects_are_not_followed_with_the_client_secret(server):
    elsewhere = HostileServer()
    try:
        elsewhere.script = {"/steal": [token()]}
        server.script = {"/oauth/token": [reply(307, b"", {"Location": elsewhere.url + "/steal"})]}
        api = national(server.url, max_attempts=1)
        with pytest.raises(SourceError, match="HTTP 307"):
            api.renew_token()
        assert elsewhere.seen == []  # the form body, secret included, went nowhere else
        server.script = {"/oauth/token": [token()],
                         TEAMS_N: [reply(302, b"", {"Location": elsewhere.url + "/steal"})]}
        with pytest.raises(SourceError, match="HTTP 302"):
            api.get_page(api.streams["teams"])
        assert elsewhere.seen == []
    finally:
        elsewhere.close()


@pytest.mark.parametrize(
    "url, allowed",
    [
        ("https://data.zyfw.example.cn/api", True),
        ("http://127.0.0.1:8601", True),
        ("http://localhost:8602/gateway", True),
        ("http://[::1]:8601", True),
        ("http://0.0.0.0:8601", True),  # this machine: what a server bound to "" reports
        ("http://[::]:8602", True),
        ("http://10.20.30.40:8601", False),
        ("http://gateway.gz.example.cn", False),
        ("http://127.0.0.1.nip.io:8601", False),  # loopback by name only, not by address
        ("http://user:pw-in-url@10.0.0.1", False),
        ("ftp://127.0.0.1/teams", False),
        ("127.0.0.1:8601", False),
    ],
)
def test_plain_http_goes_to_loopback_only(url, allowed):
    for client in (national, provincial):
        if allowed:
            client(url).close()
            continue
        with pytest.raises(ConfigurationError) as refused:
            client(url)
        assert "pw-in-url" not in str(refused.value) and SECRET not in str(refused.value)


def test_plain_http_elsewhere_needs_an_explicit_yes(monkeypatch):
    from pipelines.resources import NationalSource, ProvincialSource

    monkeypatch.setenv("NATIONAL_API_URL", "http://10.20.30.40:8601")
    monkeypatch.setenv("PROVINCIAL_API_URL", "http://10.20.30.41:8602")
    for resource in (NationalSource(), ProvincialSource()):
        with pytest.raises(ConfigurationError, match="SOURCES_ALLOW_PLAIN_HTTP"):
            resource.api()
    monkeypatch.setenv("SOURCES_ALLOW_PLAIN_HTTP", "1")
    for resource in (NationalSource(), ProvincialSource()):
        resource.api().close()


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by nobody the system trusts."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hostile test CA")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


def test_a_configured_ca_bundle_is_the_one_trusted(self_signed, monkeypatch):
    cert_path, key_path = self_signed
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    tls_server = HostileServer(tls=context)
    try:
        tls_server.script = {TEAMS_P: [provincial_page(7)]}
        # the system's CAs do not know it: refused, whatever the answer would have been
        untrusting = provincial(tls_server.url, max_attempts=1)
        with pytest.raises(SourceError, match="SSLError"):
            untrusting.get_page(untrusting.streams["teams"])
        # SOURCES_CA_BUNDLE names it: trusted, through the resource as production sets it
        from pipelines.resources import ProvincialSource

        monkeypatch.setenv("PROVINCIAL_API_URL", tls_server.url)
        monkeypatch.setenv("SOURCES_CA_BUNDLE", str(cert_path))
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ignored.pem")  # ours wins
        trusting = ProvincialSource(max_attempts=1).api()
        assert [row["id"] for row in trusting.get_page(trusting.streams["teams"])["list"]] == [7]
    finally:
        tls_server.close()
    monkeypatch.setenv("SOURCES_CA_BUNDLE", str(cert_path.parent / "missing.pem"))
    with pytest.raises(ConfigurationError, match="SOURCES_CA_BUNDLE"):
        ProvincialSource().api()
