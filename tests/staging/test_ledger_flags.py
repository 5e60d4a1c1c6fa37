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


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.sampled_from(["s1", "s2", "s3"]), st.booleans(),
                          st.integers(1, 3), st.sampled_from([None, "a", "a,b", "b,c,a", "c"])),
                max_size=40),
       st.integers(1, 9))
def test_a_merge_counts_its_ledger_as_the_ledgers_queries_count_it(rows, batch_rows):
    """`incremental._LedgerTally`, fed the merged ledger batch by batch, counts what the
    queries over the written ledger counted: rows per stream, sync and outcome, staged rows
    with superseded versions, each soft flag of the staged rows; and gathers the quarantined
    rows' entries in order."""
    import duckdb
    import pyarrow as pa

    from pipelines.staging.incremental import _LedgerTally
    from pipelines.staging.tables import LEDGER_SCHEMA

    ledger = pa.table({
        "ordinal": [r[0] for r in rows], "id": [str(i) for i in range(len(rows))], "filename": ["p"] * len(rows),
        "file_row": list(range(len(rows))), "source_key": [str(i) for i in range(len(rows))],
        "key_versions": [r[3] for r in rows], "sync_id": [r[1] for r in rows], "quarantined": [r[2] for r in rows],
        "flags": [r[4] for r in rows], "q_source_id": [f"q{i}" if r[2] else None for i, r in enumerate(rows)],
        "q_rule": ["bad" if r[2] else None for r in rows], "q_detail": [None] * len(rows),
        "q_record": [None] * len(rows), "q_seen_at": [None] * len(rows),
    }, schema=LEDGER_SCHEMA)
    tally = _LedgerTally()
    batches = [pa.Table.from_batches([batch]) for batch in ledger.to_batches(batch_rows)]
    assert pa.concat_tables([ledger.slice(0, 0), *tally.counting(iter(batches))]).equals(ledger)  # passed on

    con = duckdb.connect()
    con.register("ledger", ledger)
    per_sync = {(o, s, q): n for o, s, q, n in con.execute(
        "SELECT ordinal, sync_id, quarantined, count(*) FROM ledger GROUP BY ALL").fetchall()}
    superseded = con.execute("SELECT count(*) FROM ledger WHERE NOT quarantined AND key_versions > 1").fetchall()
    flags = dict(con.execute("""SELECT flag, count(*) FROM (SELECT unnest(string_split(flags, ',')) AS flag
                                FROM ledger WHERE NOT quarantined AND flags IS NOT NULL) GROUP BY flag""").fetchall())
    assert tally.per_sync == per_sync
    assert tally.superseded == superseded[0][0]
    assert tally.flags == flags
    assert tally.entries()["q_source_id"].to_pylist() == [f"q{i}" for i, r in enumerate(rows) if r[2]]
