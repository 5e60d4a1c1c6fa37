"""A step's data work in a child process (assets/step_process.py): its result, its logs and
its failures come back to the step as if it had run in process, scrubbed.

The functions the child runs live at module level: a spawned child imports them by name.
"""

from __future__ import annotations

import logging
import os
import signal

import pytest
from dagster import Failure, asset, materialize

from assets.resolved import resolved_entities
from assets.run import errors_scrubbed
from assets.step_process import StepProcess, input_megabytes, worth_a_process
from pipelines.resources import PipelineSettings

ID_NUMBER = "52010219900307123X"
PHONE = "13812345678"


def _double(value: int) -> int:
    logging.getLogger("pipelines.test_step").warning("doubling for %s", PHONE)
    return value * 2


def _fail_with_personal_numbers() -> None:
    raise ValueError(f"bad row: id {ID_NUMBER}, phone {PHONE}")


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _pid() -> int:
    return os.getpid()


def _arrow_allocator() -> str:
    import pyarrow

    return pyarrow.default_memory_pool().backend_name


def test_the_child_allocates_arrow_buffers_from_the_system():
    # so that what a large step frees goes back to the system, not to a pool kept for later
    with StepProcess("test") as worker:
        assert worker.call(_arrow_allocator) == "system"


def test_the_child_returns_its_result_and_its_logs_scrubbed(caplog):
    caplog.set_level(logging.INFO)
    with StepProcess("test") as worker:
        assert worker.call(_double, 21) == 42
        assert worker.call(_pid) != os.getpid()  # ran elsewhere
        assert worker.call(_double, 2) == 4  # one child serves several calls
    lines = [r.getMessage() for r in caplog.records if r.name == "pipelines.test_step"]
    assert len(lines) == 2
    assert all(PHONE not in line and "doubling for" in line for line in lines)


def test_a_failure_in_the_child_is_a_scrubbed_failure():
    with StepProcess("test") as worker, pytest.raises(Failure) as raised:
        worker.call(_fail_with_personal_numbers)
    failure = raised.value
    assert failure.description.startswith("ValueError: bad row")
    trace = failure.metadata["traceback"].text
    assert "_fail_with_personal_numbers" in trace
    for text in (failure.description, trace):
        assert ID_NUMBER not in text and PHONE not in text
    assert failure.__cause__ is None and failure.__context__ is None


def test_a_killed_child_fails_the_step_naming_the_signal():
    with StepProcess("test") as worker, pytest.raises(Failure, match="SIGKILL"):
        worker.call(_die)


def test_small_inputs_stay_in_process(tmp_path):
    small = tmp_path / "small.parquet"
    small.write_bytes(b"x" * 1024)
    size = input_megabytes([small, tmp_path / "gone.parquet"])  # a missing file counts nothing
    assert size == 1024 / 2**20
    assert not worth_a_process(size, 1.0)
    assert worth_a_process(size, 0) and worth_a_process(0.0, 0)  # 0: always
    assert worth_a_process(size, 0.0009)
    assert not worth_a_process(size, -1) and not worth_a_process(5.0, -1)  # never


@asset
def fails_in_a_child() -> None:
    with errors_scrubbed(), StepProcess("fails_in_a_child") as worker:
        worker.call(_fail_with_personal_numbers)


def _failure_of(result):
    [failure] = result.get_step_failure_events()
    return failure.step_failure_data


def test_a_child_step_failure_is_a_failed_step_with_a_scrubbed_message():
    result = materialize([fails_in_a_child], raise_on_error=False)
    assert not result.success
    failure = _failure_of(result)
    assert "bad row" in failure.error.message
    shown = failure.error.to_string() + str(failure.user_failure_data)
    assert ID_NUMBER not in shown and PHONE not in shown


def test_the_resolution_in_a_child_fails_as_a_step(tmp_path):
    """The real resolved step, forced into a child (`step_process_min_mb: 0`) with nothing
    staged: the child's error comes back as the step's failure."""
    settings = PipelineSettings(data_dir=str(tmp_path / "data"), step_process_min_mb=0)
    result = materialize([resolved_entities], resources={"pipeline_settings": settings},
                         raise_on_error=False)
    assert not result.success
    failure = _failure_of(result)
    assert failure.user_failure_data is not None  # a Failure, raised by the step
    assert "traceback" in failure.user_failure_data.metadata
