"""The one Dagster resource that tells every layer where it works.

Every field defaults to None, meaning "as the environment says" (`Settings.from_env()`, read
at run time, never at import). Tests and one-off runs override a field instead of patching
the environment: `PipelineSettings(data_dir=str(tmp_path))`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

from dagster import ConfigurableResource

from pipelines.config import Settings


class PipelineSettings(ConfigurableResource):
    """Settings for a run: the environment, with any field set here taking precedence."""

    data_dir: Optional[str] = None
    warehouse_url: Optional[str] = None
    warehouse_schema: Optional[str] = None  # default: DuckDB main, PostgreSQL the current schema
    sandbox_truth_dir: Optional[str] = None

    def settings(self) -> Settings:
        overrides = {
            "data_dir": Path(self.data_dir) if self.data_dir else None,
            "warehouse_url": self.warehouse_url,
            "sandbox_truth_dir": self.sandbox_truth_dir,
        }
        return dataclasses.replace(
            Settings.from_env(), **{k: v for k, v in overrides.items() if v is not None}
        )
