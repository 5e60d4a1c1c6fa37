"""Hypothesis profiles for the whole suite.

`make test` runs the property tests on the same examples every time (`derandomize`): a
nightly CI that turns red must be red again on the engineer's machine, with the example in
hand. To search new ground, run them with fresh random examples:
`HYPOTHESIS_PROFILE=explore .venv/bin/python -m pytest -q tests/normalize tests/hostile tests/resolve`.
(Found so far by exploring: a period typed `1e99` that stopped staging, a cut text masked twice;
by a worker's draw: a steward's note "null" read back as missing.)

Derandomized, Hypothesis still draws some examples from constants: its own (strings like
"null"), in a set whose order follows the process's string hashing, and those of the project's
modules loaded so far. `make test` fixes the hashing (PYTHONHASHSEED=0) and every worker loads
every module of the project first (`pytest_configure`), so the draws do not depend on which
test files a pytest-xdist worker happened to run before.
"""

import importlib
import os
import pkgutil

from hypothesis import settings

settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

PROJECT_PACKAGES = ("pipelines", "assets", "sandbox")


def pytest_configure(config):
    for name in PROJECT_PACKAGES:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, f"{name}."):
            if not module.name.endswith(".__main__"):  # a command, run on import
                importlib.import_module(module.name)
