"""The production guard: the public development PII_HASH_KEY, or a key too short to be
secret, never goes near production.

Hashes made with the development key are not pseudonymous (the key is in this repository:
anyone holding it and a list of candidate numbers reverses every `id_hash`). So the key is
allowed only where everything is provably this machine: a warehouse that is a local file or
a database server on loopback / a Unix socket, and sources on loopback (the sandbox). A key
set by hand but shorter than 32 bytes is held to the same rule: the contract takes any value
as the key (a test's `PII_HASH_KEY=test-key` works), but so short a key is guessed offline
from the published hashes.

"Local" is decided by a positive rule after parsing the whole URL and the libpq environment,
never by looking for known remote forms: whatever this module cannot prove local is remote.
For PostgreSQL every place libpq takes a destination from counts — the URL's host, the
`host`, `hostaddr` and `service` query parameters (a service names its host in a file
elsewhere), and the variables `PGHOST`, `PGHOSTADDR` and `PGSERVICE` — and every host named
there must be loopback or a socket directory. DuckDB and SQLite are local when the database
is a plain path (not `md:`, `motherduck:`, `s3:` ...) and the URL carries no option this
module does not know. Any other backend is remote: we cannot know how its driver reads the
environment.

Known limit: a local path may be a network mount; a file is judged by its name.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Mapping
from urllib.parse import urlsplit

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from pipelines.config import MIN_PII_HASH_KEY_BYTES, Settings, key_bytes

# Options of a DuckDB / SQLite URL that change nothing about where the data lives; any other
# option (motherduck_token, a URI filename ...) makes the warehouse "not provably local".
FILE_DATABASE_OPTIONS = frozenset(
    {"access_mode", "threads", "memory_limit", "max_memory", "temp_directory",
     "preserve_insertion_order", "timeout", "check_same_thread"}
)
_SCHEME_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")  # md:, motherduck:, s3:, file:, C: too


class DevelopmentKeyRefused(RuntimeError):
    """Publishing with the public development PII_HASH_KEY, or a key too short for
    production, to somewhere not provably local."""


def is_loopback_host(host: str) -> bool:
    """`localhost`, 127.0.0.0/8 or ::1 (with or without brackets), or the unspecified address
    0.0.0.0 / :: (a connection to it reaches this machine: a server bound to every interface
    is often named by it, as Python's own `server_address` gives it), nothing else."""
    name = host.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name in ("localhost", "localhost."):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _libpq_host_is_local(host: str) -> bool:
    """One libpq host entry: loopback, or an absolute Unix-socket directory."""
    entry = host.strip()
    if entry.startswith("/"):
        return True
    if entry.startswith("[") and "]" in entry:  # [::1]:5432
        entry = entry[: entry.index("]") + 1]
    elif entry.count(":") == 1:  # host:port as SQLAlchemy's multi-host form writes it
        entry = entry.split(":", 1)[0]
    return is_loopback_host(entry)


def _values(query: Mapping[str, object], key: str) -> list[str]:
    """Every value of a query key (SQLAlchemy gives a tuple for a repeated key), each split on
    commas the way libpq reads a host list."""
    raw = query.get(key)
    if raw is None:
        return []
    items = raw if isinstance(raw, tuple) else (raw,)
    return [part for item in items for part in str(item).split(",")]


def _postgres_is_local(url: URL, environment: Mapping[str, str]) -> bool:
    query = {k.lower(): v for k, v in url.query.items()}
    if "service" in query or environment.get("PGSERVICE", "").strip():
        return False  # the service file names the host, somewhere we do not read
    hosts: list[str] = []
    if url.host:
        hosts += url.host.split(",")
    hosts += _values(query, "host") + _values(query, "hostaddr")
    # the environment fills in what the URL leaves out, and PGHOSTADDR overrides a name's
    # address even when the URL has one: every one of them must be local
    for variable in ("PGHOST", "PGHOSTADDR"):
        if environment.get(variable, "").strip():
            hosts += environment[variable].split(",")
    # nothing anywhere (or an empty list entry): libpq's default, the Unix socket
    return all(_libpq_host_is_local(host) for host in hosts if host.strip())


def _file_database_is_local(url: URL) -> bool:
    database = (url.database or "").strip()
    if url.host or url.port:
        return False  # a file database has no server; a host here means something else
    if database and database != ":memory:" and _SCHEME_PREFIX.match(database):
        return False  # md:, motherduck:, s3:, http:, file: (SQLite URI with a VFS) ...
    return all(key.lower() in FILE_DATABASE_OPTIONS for key in url.query)


def is_local_warehouse(url: str | URL, environment: Mapping[str, str] | None = None) -> bool:
    """Whether the warehouse is provably on this machine (see the module docstring).

    `environment` holds the libpq variables in force (`Settings.libpq_environment`); none
    by default. A URL that does not parse is not local.
    """
    environment = environment or {}
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        return False
    backend = parsed.get_backend_name()
    if backend in ("duckdb", "sqlite"):
        return _file_database_is_local(parsed)
    if backend == "postgresql":
        return _postgres_is_local(parsed, environment)
    return False


def is_loopback_url(url: str) -> bool:
    """An http(s) URL whose host is loopback (the sandbox servers)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and is_loopback_host(host)


def development_key_refusal(settings: Settings) -> str | None:
    """Why `settings` may not publish with its PII_HASH_KEY, or None (a production key, or
    everything local): the public development key, or a key set by hand but shorter than
    MIN_PII_HASH_KEY_BYTES (guessable offline), is for this machine only. Names places,
    never a password or the key."""
    if settings.uses_development_key:
        which = "the development PII_HASH_KEY"
        why = "id_hash values made with the public key are not pseudonymous"
    elif settings.uses_short_key:
        which = f"a PII_HASH_KEY of {key_bytes(settings.pii_hash_key)} bytes"
        why = f"a key under {MIN_PII_HASH_KEY_BYTES} bytes can be guessed offline from the hashes"
    else:
        return None
    remote = []
    if not is_local_warehouse(settings.resolved_warehouse_url, settings.libpq_environment):
        remote.append(f"the warehouse {settings.warehouse_display}")
    for name, url in (("national", settings.national_api_url), ("provincial", settings.provincial_api_url)):
        if not is_loopback_url(url):
            remote.append(f"the {name} source")
    if not remote:
        return None
    return (
        f"refusing to use {which} with {' and '.join(remote)} (not provably on this machine): "
        f"set PII_HASH_KEY to the production secret, at least {MIN_PII_HASH_KEY_BYTES} random bytes "
        f"({why})."
    )


def ensure_publishable(settings: Settings) -> None:
    """Raise `DevelopmentKeyRefused` unless `settings` may publish (see module docstring)."""
    reason = development_key_refusal(settings)
    if reason:
        raise DevelopmentKeyRefused(reason)
