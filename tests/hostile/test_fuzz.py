"""Property: whatever a source sends, staging never raises, every row is accounted for, and
no ID number or phone of the input comes out in clear.

Hypothesis picks a stream of either source, a seed and a batch size; `tests/hostile/fuzz.py`
builds the hostile rows (wrong types, missing and extra fields, huge strings, control
characters, emoji, lone surrogates, SQL metacharacters, numbers where strings belong,
absurd dates and durations, personal numbers in every form and field; since session 6 also
spreadsheet day counts, durations with their unit, two mobiles in a box, invisible and control
characters in keys, NUL bytes, combining and direction marks, full-width and Chinese dates,
Chinese numerals, scientific notation, -0, NaN and Infinity as JSON numbers, a key written
twice in a row, a byte order mark before the body). They go through the
real decoder, landing and staging of the table they feed; the Great Expectations suite of
the table runs on what was staged, and its blocking checks must pass: one hostile row never
stops the publish either.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.quality import gx_runner
from pipelines.staging import read_staged, stage_table
from tests.hostile.fuzz import STREAM_KEYS, hostile_batch, land_batch, leaks, output_texts, table_of
from tests.staging.rawpages import AS_OF, settings_for

FUZZ = settings(max_examples=40, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@FUZZ
@given(stream=st.sampled_from(STREAM_KEYS), seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 60))
def test_staging_contains_every_hostile_row(stream, seed, rows, caplog):
    source, name = stream
    batch = hostile_batch(source, name, rows, seed)
    table = table_of(source, name)
    with tempfile.TemporaryDirectory() as folder, caplog.at_level(logging.DEBUG):
        settings_ = settings_for(Path(folder) / "data")
        landed = land_batch(batch, settings_.data_dir)
        result = stage_table(table, settings_, as_of=AS_OF)

        counts = result.accounting[f"{source}/{name}"]["fuzz-sync"]
        assert counts["landed"] == landed == rows
        assert counts["staged"] + counts["quarantined"] + counts["superseded"] == landed
        assert result.balanced()
        assert set(result.quarantine["rule"]) <= {
            "unreadable_row", "missing_required", "invalid_value", "unparseable_date", "invalid_region",
            "region_outside_province", "end_before_start", "hours_out_of_range", "future_date",
        }
        assert result.quarantine["detail"].notna().all()

        shown = output_texts(settings_.data_dir) + [caplog.text]
        assert leaks(shown, batch.planted) == set()
        assert not [text for text in shown if "\x00" in text]  # PostgreSQL refuses a NUL in text

        suite = gx_runner.validate(table, read_staged(settings_, table, columns=gx_runner.suite_columns(table)))
        assert suite.failed("blocking") == [], (batch.kinds, suite.failed("blocking"))
