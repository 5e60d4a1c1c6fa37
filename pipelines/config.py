"""Every setting of the pipeline, read from the environment here and nowhere else.

The names are fixed by `docs/CONTRACT.md`; each has a default that points at the
bundled sandbox, so a fresh clone runs end to end with nothing set. Reading happens when
`Settings.from_env()` is called (at run time), never at import, so the Dagster code location
loads without touching the environment or the network.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit, urlunsplit

# The sandbox's endpoints and credentials (see sandbox/README.md). They are not secrets:
# the sandbox is a local simulation; production sets the variables.
SANDBOX_NATIONAL_URL = "http://127.0.0.1:8601"
SANDBOX_NATIONAL_CLIENT_ID = "guizhou-etl"
SANDBOX_NATIONAL_CLIENT_SECRET = "sandbox-national-secret"
SANDBOX_PROVINCIAL_URL = "http://127.0.0.1:8602"
SANDBOX_PROVINCIAL_APP_KEY = "guizhou-etl"
SANDBOX_PROVINCIAL_APP_SECRET = "sandbox-provincial-secret"
DEVELOPMENT_PII_HASH_KEY = "development-only-pii-hash-key"
# An HMAC key shorter than its hash's block of entropy is guessable offline: a production key
# is at least 32 bytes (UTF-8), as HMAC-SHA256's own output is (shorter ones: pipelines/guard.py).
MIN_PII_HASH_KEY_BYTES = 32
# The libpq variables that can send a PostgreSQL connection elsewhere (pipelines/guard.py).
LIBPQ_DESTINATION_VARIABLES = ("PGHOST", "PGHOSTADDR", "PGSERVICE")
# Warehouse URL options shown as they are in logs and metadata; any other option's value is
# hidden (password=, sslpassword=, motherduck_token= ... carry secrets).
SHOWN_URL_OPTIONS = frozenset(
    {"host", "hostaddr", "port", "service", "sslmode", "application_name", "connect_timeout",
     "target_session_attrs", "access_mode", "threads", "memory_limit"}
)
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
# Key of the service record certificates' verification codes (pipelines/certificates/).
DEVELOPMENT_CERTIFICATE_KEY = "development-only-certificate-key"


@dataclass(frozen=True)
class AlertSettings:
    """Where run-failure alerts go (pipelines/alerts.py): a WeCom or DingTalk group robot.

    `ALERT_WEBHOOK_URL` unset: no alert is sent. `ALERT_WEBHOOK_KIND` (`wecom` / `dingtalk`)
    overrides the guess from the URL's host; `ALERT_WEBHOOK_SECRET` is a DingTalk robot's
    signing secret (加签); `DAGSTER_UI_URL` the address of the Dagster UI, for a link to the run.
    """

    webhook_url: str = ""
    webhook_kind: str = ""
    webhook_secret: str = ""
    dagster_ui_url: str = ""

    def __repr__(self) -> str:  # the webhook URL carries the robot's key
        return f"AlertSettings(configured={bool(self.webhook_url)}, kind={self.webhook_kind!r})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "AlertSettings":
        env = os.environ if environ is None else environ
        return cls(
            webhook_url=env.get("ALERT_WEBHOOK_URL", "").strip(),
            webhook_kind=env.get("ALERT_WEBHOOK_KIND", "").strip(),
            webhook_secret=env.get("ALERT_WEBHOOK_SECRET", "").strip(),
            dagster_ui_url=env.get("DAGSTER_UI_URL", "").strip().rstrip("/"),
        )


class DevelopmentKeyWarning(UserWarning):
    """PII_HASH_KEY is unset (hashes are made with the public development key) or too short
    to be a production key."""


def key_bytes(key: str) -> int:
    return len(key.encode("utf-8", "surrogatepass"))


class ConfigurationError(ValueError):
    """A setting that cannot be used as given. The message names the variable, never its value."""


def display_url(url: str) -> str:
    """An http(s) URL for logs: scheme, host, port and path; user, password, query dropped."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unreadable URL>"
    if ":" in host:
        host = f"[{host}]"
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))


def display_warehouse_url(url: str) -> str:
    """A SQLAlchemy URL for logs: password hidden, and every option not known to be
    harmless shown as `***`."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        return "<unreadable WAREHOUSE_URL>"
    hidden = {
        key: value if key.lower() in SHOWN_URL_OPTIONS else "***" for key, value in parsed.query.items()
    }
    return parsed.set(query=hidden).render_as_string(hide_password=True)


@dataclass(frozen=True)
class Settings:
    national_api_url: str = SANDBOX_NATIONAL_URL
    national_client_id: str = SANDBOX_NATIONAL_CLIENT_ID
    national_client_secret: str = SANDBOX_NATIONAL_CLIENT_SECRET
    national_region: str = "52"
    provincial_api_url: str = SANDBOX_PROVINCIAL_URL
    provincial_app_key: str = SANDBOX_PROVINCIAL_APP_KEY
    provincial_app_secret: str = SANDBOX_PROVINCIAL_APP_SECRET
    data_dir: Path = Path("data")
    warehouse_url: str = ""  # empty: a DuckDB file in data_dir
    pii_hash_key: str = DEVELOPMENT_PII_HASH_KEY
    certificate_key: str = DEVELOPMENT_CERTIFICATE_KEY  # CERTIFICATE_KEY: signs certificates
    sandbox_truth_dir: str = ""  # SANDBOX_TRUTH_DIR: a sandbox world's truth/ folder, for quality metadata
    # SOURCES_CA_BUNDLE: a PEM file of the CAs the sources' TLS certificates chain to (empty:
    # the system's); SOURCES_ALLOW_PLAIN_HTTP: plain http:// to a host other than loopback
    sources_ca_bundle: str = ""
    allow_plain_http: bool = False
    # REPORTS_URL: the address at which DATA_DIR/reports/ is served to officials (the reverse
    # proxy, behind the province's sign-on); empty: the report's link is the file on this host
    reports_url: str = ""
    # PGHOST, PGHOSTADDR, PGSERVICE as found: libpq reads them, so the guard must too
    libpq_environment: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # absolute: what staging and reuse keep of the landed folders is their paths, so
        # `data` and `/srv/sync/data` must name the same folder the same way (a demo run with
        # the one and a nightly run with the other redid every step)
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser().resolve())

    def __repr__(self) -> str:  # secrets never reach a log line through repr()
        return (
            f"Settings(national_api_url={display_url(self.national_api_url)!r}, "
            f"provincial_api_url={display_url(self.provincial_api_url)!r}, "
            f"data_dir={str(self.data_dir)!r}, warehouse={self.warehouse_display!r}, "
            f"development_key={self.uses_development_key})"
        )

    __str__ = __repr__

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ

        def get(name: str, default: str) -> str:
            value = env.get(name, "").strip()
            return value or default

        data_dir = Path(get("DATA_DIR", "data"))

        def secret_key(name: str, development_key: str) -> str:
            key = get(name, development_key)
            if env.get(name, "").strip() and key_bytes(key) < MIN_PII_HASH_KEY_BYTES:  # set by hand
                raise ConfigurationError(
                    f"{name} is {key_bytes(key)} bytes long; it must be at least "
                    f"{MIN_PII_HASH_KEY_BYTES} (a random secret, e.g. `openssl rand -hex 32`)"
                )
            return key

        # PII_HASH_KEY is the variable's value as set, its UTF-8 bytes (contract): unlike the
        # other settings, spaces around it are part of the key; blank is unset.
        set_key = env.get("PII_HASH_KEY", "")
        pii_key = set_key if set_key.strip() else DEVELOPMENT_PII_HASH_KEY
        if pii_key == DEVELOPMENT_PII_HASH_KEY:
            warnings.warn(
                "PII_HASH_KEY is not set: using the development key. Set it in production.",
                DevelopmentKeyWarning,
                stacklevel=2,
            )
        elif key_bytes(pii_key) < MIN_PII_HASH_KEY_BYTES:
            warnings.warn(
                f"PII_HASH_KEY is {key_bytes(pii_key)} bytes long, under {MIN_PII_HASH_KEY_BYTES}: "
                "a key that short is guessable, so publishing is refused unless everything is on "
                "this machine (generate one with `openssl rand -hex 32`)",
                DevelopmentKeyWarning,
                stacklevel=2,
            )
        return cls(
            national_api_url=get("NATIONAL_API_URL", SANDBOX_NATIONAL_URL).rstrip("/"),
            national_client_id=get("NATIONAL_CLIENT_ID", SANDBOX_NATIONAL_CLIENT_ID),
            national_client_secret=get("NATIONAL_CLIENT_SECRET", SANDBOX_NATIONAL_CLIENT_SECRET),
            national_region=get("NATIONAL_REGION", "52"),
            provincial_api_url=get("PROVINCIAL_API_URL", SANDBOX_PROVINCIAL_URL).rstrip("/"),
            provincial_app_key=get("PROVINCIAL_APP_KEY", SANDBOX_PROVINCIAL_APP_KEY),
            provincial_app_secret=get("PROVINCIAL_APP_SECRET", SANDBOX_PROVINCIAL_APP_SECRET),
            data_dir=data_dir,
            warehouse_url=get("WAREHOUSE_URL", ""),
            pii_hash_key=pii_key,
            sandbox_truth_dir=get("SANDBOX_TRUTH_DIR", ""),
            sources_ca_bundle=get("SOURCES_CA_BUNDLE", ""),
            allow_plain_http=get("SOURCES_ALLOW_PLAIN_HTTP", "").lower() in TRUE_WORDS,
            reports_url=get("REPORTS_URL", "").rstrip("/"),
            libpq_environment={
                name: env[name] for name in LIBPQ_DESTINATION_VARIABLES if env.get(name, "").strip()
            },
            certificate_key=secret_key("CERTIFICATE_KEY", DEVELOPMENT_CERTIFICATE_KEY),
        )

    @property
    def resolved_warehouse_url(self) -> str:
        """The SQLAlchemy URL of the warehouse; the default is a DuckDB file in DATA_DIR."""
        if self.warehouse_url:
            return self.warehouse_url
        from sqlalchemy.engine import URL

        # built, not pasted: a DATA_DIR holding '#' or '%' stays one path
        database = str((self.data_dir / "warehouse.duckdb").resolve())
        if "?" in database:  # DuckDB itself reads '?' in a file name as the start of options
            raise ConfigurationError("DATA_DIR holds a '?': DuckDB cannot keep the default warehouse there")
        return URL.create("duckdb", database=database).render_as_string(hide_password=False)

    @property
    def warehouse_display(self) -> str:
        """The warehouse URL with any password or secret option hidden, for logs and metadata."""
        return display_warehouse_url(self.resolved_warehouse_url)

    @property
    def uses_development_key(self) -> bool:
        return self.pii_hash_key == DEVELOPMENT_PII_HASH_KEY

    @property
    def uses_short_key(self) -> bool:
        """A key set by hand but under MIN_PII_HASH_KEY_BYTES: fine for a test on this
        machine, guessable offline in production (pipelines/guard.py)."""
        return not self.uses_development_key and key_bytes(self.pii_hash_key) < MIN_PII_HASH_KEY_BYTES

    # Folders under DATA_DIR, one place for their names.
    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def state_dir(self) -> Path:
        return self.data_dir / "state"

    @property
    def staged_dir(self) -> Path:
        return self.data_dir / "staged"

    @property
    def resolved_dir(self) -> Path:
        return self.data_dir / "resolved"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def certificates_dir(self) -> Path:
        return self.data_dir / "certificates"
