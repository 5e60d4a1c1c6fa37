"""Every setting of the pipeline, read from the environment here and nowhere else.

The names are fixed by `docs/CONTRACT.md`; each has a default that points at the
bundled sandbox, so a fresh clone runs end to end with nothing set. Reading happens when
`Settings.from_env()` is called (at run time), never at import, so the Dagster code location
loads without touching the environment or the network.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

# The sandbox's endpoints and credentials (see sandbox/README.md). They are not secrets:
# the sandbox is a local simulation; production sets the variables.
SANDBOX_NATIONAL_URL = "http://127.0.0.1:8601"
SANDBOX_NATIONAL_CLIENT_ID = "guizhou-etl"
SANDBOX_NATIONAL_CLIENT_SECRET = "sandbox-national-secret"
SANDBOX_PROVINCIAL_URL = "http://127.0.0.1:8602"
SANDBOX_PROVINCIAL_APP_KEY = "guizhou-etl"
SANDBOX_PROVINCIAL_APP_SECRET = "sandbox-provincial-secret"
DEVELOPMENT_PII_HASH_KEY = "development-only-pii-hash-key"


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
    """PII_HASH_KEY is unset: hashes are made with the public development key."""


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
    sandbox_truth_dir: str = ""  # SANDBOX_TRUTH_DIR: a sandbox world's truth/ folder, for quality metadata

    def __repr__(self) -> str:  # secrets never reach a log line through repr()
        return (
            f"Settings(national_api_url={self.national_api_url!r}, "
            f"provincial_api_url={self.provincial_api_url!r}, data_dir={str(self.data_dir)!r}, "
            f"warehouse={self.warehouse_display!r})"
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ

        def get(name: str, default: str) -> str:
            value = env.get(name, "").strip()
            return value or default

        data_dir = Path(get("DATA_DIR", "data")).expanduser()
        pii_key = get("PII_HASH_KEY", DEVELOPMENT_PII_HASH_KEY)
        if pii_key == DEVELOPMENT_PII_HASH_KEY:
            warnings.warn(
                "PII_HASH_KEY is not set: using the development key. Set it in production.",
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
        )

    @property
    def resolved_warehouse_url(self) -> str:
        """The SQLAlchemy URL of the warehouse; the default is a DuckDB file in DATA_DIR."""
        if self.warehouse_url:
            return self.warehouse_url
        return f"duckdb:///{(self.data_dir / 'warehouse.duckdb').resolve()}"

    @property
    def warehouse_display(self) -> str:
        """The warehouse URL with any password hidden, for logs and metadata."""
        from sqlalchemy.engine import make_url

        return make_url(self.resolved_warehouse_url).render_as_string(hide_password=True)

    @property
    def uses_development_key(self) -> bool:
        return self.pii_hash_key == DEVELOPMENT_PII_HASH_KEY

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
