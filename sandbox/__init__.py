"""The bundled sandbox: two simulated source systems and the synthetic world they serve.

The national volunteer service information system and the 志愿贵州 provincial platform,
served over real HTTP from a world generated on disk (SQLite files plus Parquet truth),
with the faults the real systems have. The pipeline meets the sandbox only over HTTP:
nothing here imports `pipelines/` or `assets/`, and they import nothing from here outside
tests and benchmarks.

Names are re-exported lazily, so `import sandbox` (or starting the servers) does not load
the generator's heavier dependencies.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "generate_world": "sandbox.generator",
    "apply_changeset": "sandbox.changes",
    "touch_rows": "sandbox.changes",
    "load_truth": "sandbox.truth",
    "Truth": "sandbox.truth",
    "Faults": "sandbox.faults",
    "SandboxServers": "sandbox.harness",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
