"""bench/pyspy_summary.py: py-spy's samples of a sync's process tree folded by stage."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from pyspy_summary import OUTSIDE, fold, markdown  # noqa: E402

SITE = "/venv/lib/python3.11/site-packages"  # a whole path, as with --full-filenames
CLI = 'process 10:"python -m dagster job execute -m pipelines.definitions -j sync_all"'
STEP = 'process 11:"python -c from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5)"'
CHILD = 'process 12:"python -c from multiprocessing.spawn import spawn_main; spawn_main(pipe_handle=9)"'

SAMPLES = [
    # a staged step: the asset's function, then Great Expectations
    f"{CLI};{STEP};_run (dagster/_core/execution/plan/execute_step.py:1);"
    f"staged_volunteers (assets/staged.py:40);validate_staged (pipelines/staging/validation.py:12);"
    f"validate (great_expectations/validator.py:5) 30",
    # the resolution in a step's child process: assets/step_process.py is passed over
    f"{CLI};{STEP};{CHILD};_child_main (assets/step_process.py:90);"
    f"resolve_volunteers (pipelines/resolve/volunteers.py:100);execute ({SITE}/duckdb/__init__.py:3) 50",
    f"{CLI};{STEP};{CHILD};_child_main (assets/step_process.py:90);"
    f"resolve_services (pipelines/resolve/services.py:10) 10",
    # start-up: no project frame
    f"{CLI};{STEP};_find_and_load (<frozen importlib._bootstrap>:1) 5",
    # a library's folder named like one of the project's is not the project's
    f"{CLI};{STEP};load (dagster/_core/definitions/assets/definition/assets_definition.py:9) 5",
]


def test_samples_go_to_the_stage_of_their_outermost_project_frame():
    per_stage, on_stack, innermost = fold(line + "\n" for line in SAMPLES)
    assert per_stage == {"staged": 30, "resolved": 60, OUTSIDE: 10}
    assert on_stack["resolved"]["resolve_volunteers (pipelines/resolve/volunteers.py)"] == 50
    # the child process's entry point is on every resolved sample's stack, but names no stage
    assert on_stack["resolved"]["_child_main (assets/step_process.py)"] == 60
    # a library's frame is named from its package, not from where the venv lies
    assert innermost["resolved"]["execute (duckdb/__init__.py)"] == 50
    assert innermost["staged"]["validate (great_expectations/validator.py)"] == 30
    assert innermost[OUTSIDE]["load (dagster/_core/definitions/assets/definition/assets_definition.py)"] == 5


def test_markdown_gives_each_stage_its_share_and_its_functions():
    text = markdown(*fold(SAMPLES))
    assert "100 CPU samples" in text
    assert "| resolved | 60.0% |" in text and "| staged | 30.0% |" in text
    assert "### resolved: 60.0%" in text
    assert "| `resolve_volunteers (pipelines/resolve/volunteers.py)` | 83% |" in text
