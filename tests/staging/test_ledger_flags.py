"""A staged row's soft flags in its ledger row (`tables.joined_flags`), checked against their
definition: the names of the row's flags, in the order staging raised them, joined by
commas; None for a row with none."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.staging.tables import joined_flags

NAMES = [f"personal_number_in_remark_{position}" for position in range(11)]  # more than 8: two bytes a row


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=11).flatmap(lambda count: st.tuples(
    st.just(count), st.lists(st.lists(st.sampled_from([True, False, None]), min_size=count, max_size=count),
                             max_size=30))))
def test_each_row_names_its_flags_in_order(drawn):
    count, rows = drawn
    index = pd.RangeIndex(len(rows)) + 100  # (a chunk's index need not start at 0)
    flags = [(NAMES[flag], pd.Series([row[flag] for row in rows], index=index, dtype="boolean"))
             for flag in range(count)]
    expected = [",".join(NAMES[flag] for flag in range(count) if row[flag]) or None for row in rows]
    joined = joined_flags(flags, index)
    assert joined.index.equals(index)
    assert joined.tolist() == expected
