"""The resolution invariants that hold in production (no sandbox truth needed), and the
resolved assets' checks built from them: each passes on a sound resolution and fails, with
the count that says what broke, on a broken one."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assets.resolved import invariant_checks
from pipelines.resolve.invariants import (
    account_key_problems,
    key_problems_by_query,
    service_count_problems,
    unexplained_key_changes,
)
from pipelines.resolve.keys import assign_stable_keys

SYNCED_AT = pd.Timestamp("2026-06-30T10:00:00Z")


def accounts(*pairs: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=["source", "source_id"])


def source_map(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["source", "source_id", "volunteer_key"])


STAGED = accounts(("national", "N1"), ("national", "N2"), ("provincial", "1"))
SOUND_MAP = source_map(("national", "N1", "Va"), ("national", "N2", "Vb"), ("provincial", "1", "Va"))


def test_a_sound_map_has_no_key_problem():
    problems = account_key_problems(STAGED, SOUND_MAP, "volunteer_key", pd.Series(["Va", "Vb"]))
    assert set(problems.values()) == {0}


@pytest.mark.parametrize(
    "broken_map, golden, problem",
    [
        (SOUND_MAP.iloc[:2], ["Va", "Vb"], "accounts_without_key"),
        (pd.concat([SOUND_MAP, source_map(("national", "N2", "Vc"))]), ["Va", "Vb", "Vc"], "accounts_with_several_keys"),
        (pd.concat([SOUND_MAP, source_map(("national", "N9", "Va"))]), ["Va", "Vb"], "mapped_accounts_not_staged"),
        (SOUND_MAP, ["Va"], "keys_without_golden_record"),
        (SOUND_MAP, ["Va", "Vb", "Vz"], "golden_records_without_account"),
    ],
)
def test_each_key_problem_is_counted(broken_map, golden, problem):
    problems = account_key_problems(STAGED, broken_map, "volunteer_key", pd.Series(golden))
    assert problems[problem] == 1
    assert {name for name, count in problems.items() if count} == {problem}


def clusters(*groups: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        [("national", account, number) for number, group in enumerate(groups) for account in group],
        columns=["source", "source_id", "cluster"],
    )


def keyed_map(frame: pd.DataFrame, keys: pd.DataFrame) -> pd.DataFrame:
    return frame.merge(keys, on="cluster")[["source", "source_id", "key"]].rename(columns={"key": "volunteer_key"})


@pytest.mark.parametrize(
    "before, after, moved",
    [
        ([["a", "b"], ["c"]], [["a", "b", "c"]], 1),  # a merge: c takes the key of a and b
        ([["a", "b", "c"]], [["a", "b"], ["c"]], 1),  # a split: c gets a new key
        ([["a", "b", "c"], ["d", "e"]], [["a", "b"], ["c", "d", "e"]], 1),  # c moves to d's key
        ([["a"], ["b"]], [["a"], ["b"]], 0),  # nothing changes
    ],
)
def test_every_key_change_the_key_rule_makes_is_logged(before, after, moved):
    first_keys, _ = assign_stable_keys(clusters(*before), None, "V", synced_at=SYNCED_AT)
    previous = keyed_map(clusters(*before), first_keys)
    later_keys, history = assign_stable_keys(
        clusters(*after), previous.rename(columns={"volunteer_key": "key"}), "V",
        set(first_keys["key"]), synced_at=SYNCED_AT,
    )
    current = keyed_map(clusters(*after), later_keys)
    found = unexplained_key_changes(previous, current, "volunteer_key", history)
    assert found == {"accounts_with_new_key": moved, "unexplained_key_changes": 0}


def test_a_key_change_nobody_logged_is_unexplained():
    previous = source_map(("national", "N1", "Va"), ("national", "N2", "Vb"))
    current = source_map(("national", "N1", "Va"), ("national", "N2", "Va"))
    history = pd.DataFrame(columns=["synced_at", "key", "event", "related_key", "accounts"])
    assert unexplained_key_changes(previous, current, "volunteer_key", history) == {
        "accounts_with_new_key": 1, "unexplained_key_changes": 1,
    }
    logged = pd.DataFrame([{"key": "Vb", "event": "merged_into", "related_key": "Va"}])
    assert unexplained_key_changes(previous, current, "volunteer_key", logged)["unexplained_key_changes"] == 0


def services(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["source", "source_id", "is_deleted", "is_effective", "hours",
                                       "national_record_id", "origin_log_id"])


STAGED_SERVICES = services(
    ("national", "R1", False, True, 2.0, None, None),
    ("national", "R2", False, True, 3.0, None, "7"),     # pushed up from provincial log 7
    ("national", "R3", False, False, 1.0, None, None),   # not effective: not counted
    ("provincial", "7", False, True, 2.5, None, None),   # the same service as R2
    ("provincial", "8", False, True, 1.5, None, None),
    ("provincial", "9", True, True, 4.0, None, None),    # deleted
)


def facts(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["national_source_id", "provincial_source_id", "hours"])


SOUND_FACTS = facts(("R1", None, 2.0), ("R2", "7", 3.0), (None, "8", 1.5))


def test_sound_facts_count_each_effective_record_once():
    assert set(service_count_problems(STAGED_SERVICES, SOUND_FACTS).values()) == {0}


def test_a_record_staged_twice_counts_with_its_first_live_rows_hours_and_any_rows_effectiveness():
    """Staging keeps one row per record; were one there twice, its hours are its first live
    row's, and it is effective when any live row of it is."""
    twice = pd.concat([STAGED_SERVICES, services(("national", "R1", False, True, 9.0, None, None))],
                      ignore_index=True)
    assert set(service_count_problems(twice, SOUND_FACTS).values()) == {0}
    assert service_count_problems(twice, facts(("R1", None, 9.0), ("R2", "7", 3.0), (None, "8", 1.5))) == {
        **{name: 0 for name in service_count_problems(twice, SOUND_FACTS)}, "facts_with_other_hours": 1}
    effective_again = pd.concat([STAGED_SERVICES, services(("national", "R3", False, True, 1.0, None, None))],
                                ignore_index=True)
    assert service_count_problems(effective_again, SOUND_FACTS)["effective_national_records_not_counted"] == 1


@pytest.mark.parametrize(
    "broken, problem",
    [
        (SOUND_FACTS.iloc[1:], "effective_national_records_not_counted"),
        (SOUND_FACTS.iloc[:2], "effective_provincial_records_not_counted"),
        (pd.concat([SOUND_FACTS, facts(("R1", None, 2.0))]), "national_records_counted_twice"),
        (pd.concat([SOUND_FACTS, facts((None, "8", 1.5))]), "provincial_records_counted_twice"),
        (facts(("R1", None, 2.0), ("R2", "7", 2.5), (None, "8", 1.5)), "facts_with_other_hours"),
        (pd.concat([SOUND_FACTS, facts(("R404", None, 1.0))]), "facts_naming_unknown_national_records"),
        (pd.concat([SOUND_FACTS, facts((None, "404", 1.0))]), "facts_naming_unknown_provincial_records"),
    ],
)
def test_each_service_counting_problem_is_counted(broken, problem):
    problems = service_count_problems(STAGED_SERVICES, broken)
    assert problems[problem] == 1
    assert {name for name, count in problems.items() if count} == {problem}



def test_copies_of_one_service_counted_by_one_fact_pass_and_counted_by_two_fail():
    """A second log naming R2 (already counted with log 7) and a second national copy of log 7
    are copies of that service: uncounted, nothing is wrong; counted on their own, the service
    is counted twice."""
    copies = pd.concat([STAGED_SERVICES, services(("provincial", "10", False, True, 3.0, "R2", None),
                                                  ("national", "R4", False, True, 3.0, None, "7"))],
                       ignore_index=True)
    assert set(service_count_problems(copies, SOUND_FACTS).values()) == {0}
    twice = service_count_problems(copies, pd.concat([SOUND_FACTS, facts((None, "10", 3.0), ("R4", None, 3.0))]))
    assert {name: count for name, count in twice.items() if count} == {"services_counted_twice": 2}


def counted_one_query_per_count(staged: pd.DataFrame, found: pd.DataFrame) -> dict[str, int]:
    """The counts' definition, one query each (service_count_problems before it made each
    record once and joined each system's facts to them once)."""
    con = duckdb.connect()
    con.register("staged_frame", staged.assign(rn=range(len(staged))))
    con.register("facts_frame", found)
    con.execute("""
        CREATE TEMP VIEW live AS
        SELECT rn, source, CAST(source_id AS VARCHAR) AS source_id, coalesce(is_effective, false) AS effective,
               CAST(national_record_id AS VARCHAR) AS national_record_id,
               CAST(origin_log_id AS VARCHAR) AS origin_log_id, CAST(hours AS DOUBLE) AS hours
        FROM staged_frame WHERE NOT coalesce(is_deleted, false);
        CREATE TEMP VIEW f AS SELECT CAST(national_source_id AS VARCHAR) AS national,
            CAST(provincial_source_id AS VARCHAR) AS provincial, CAST(hours AS DOUBLE) AS hours FROM facts_frame;
    """)

    def count(sql: str) -> int:
        return con.execute(sql).fetchall()[0][0]

    problems = {}
    for source in ("national", "provincial"):
        problems[f"facts_naming_unknown_{source}_records"] = count(f"""
            SELECT count(*) FROM f WHERE {source} IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM live l WHERE l.source = '{source}' AND l.source_id = f.{source})""")
        problems[f"{source}_records_counted_twice"] = count(f"SELECT count({source}) - count(DISTINCT {source}) FROM f")
    con.execute("""
        CREATE TEMP VIEW linked AS
        SELECT DISTINCT n.source_id AS national, p.source_id AS provincial FROM live n JOIN live p
          ON n.source = 'national' AND p.source = 'provincial'
         AND (p.national_record_id = n.source_id OR n.origin_log_id = p.source_id)
    """)
    problems["effective_national_records_not_counted"] = count("""
        SELECT count(*) FROM (SELECT DISTINCT source_id FROM live WHERE source = 'national' AND effective) v
        WHERE NOT EXISTS (SELECT 1 FROM f WHERE f.national = v.source_id)
          AND NOT EXISTS (  -- one of more than two copies linked together
              SELECT 1 FROM linked l WHERE l.national = v.source_id AND (
                  (SELECT count(*) FROM linked o WHERE o.national = l.national) > 1
                  OR (SELECT count(*) FROM linked o WHERE o.provincial = l.provincial) > 1))""")
    problems["effective_provincial_records_not_counted"] = count("""
        SELECT count(*) FROM (
            SELECT DISTINCT p.source_id FROM live p WHERE p.source = 'provincial' AND p.effective
              AND NOT EXISTS (SELECT 1 FROM live n WHERE n.source = 'national'
                              AND n.source_id IS NOT DISTINCT FROM p.national_record_id)
              AND NOT EXISTS (SELECT 1 FROM live n WHERE n.source = 'national' AND n.origin_log_id = p.source_id)
        ) v WHERE NOT EXISTS (SELECT 1 FROM f WHERE f.provincial = v.source_id)""")
    problems["facts_with_other_hours"] = count("""
        WITH own AS (SELECT source, source_id, hours FROM live WHERE source_id IS NOT NULL
                     QUALIFY row_number() OVER (PARTITION BY source, source_id ORDER BY rn) = 1)
        SELECT count(*) FROM f JOIN own o
          ON o.source = CASE WHEN f.national IS NOT NULL THEN 'national' ELSE 'provincial' END
         AND o.source_id = coalesce(f.national, f.provincial)
        WHERE abs(f.hours - o.hours) > 1e-9 AND NOT isnan(f.hours - o.hours)""")
    problems["services_counted_twice"] = count("""
        SELECT count(*) FROM (
            SELECT DISTINCT l.national, l.provincial
            FROM linked l JOIN f a ON a.national = l.national JOIN f b ON b.provincial = l.provincial
            WHERE NOT EXISTS (SELECT 1 FROM f WHERE f.national = l.national AND f.provincial = l.provincial))""")
    con.close()
    return problems


IDS = st.sampled_from(["1", "2", "3", None])
HOURS = st.sampled_from([1.0, 2.0, None])
STAGED_ROWS = st.lists(st.tuples(st.sampled_from(["national", "provincial"]), IDS, st.booleans(),
                                 st.sampled_from([True, False, None]), HOURS, IDS, IDS), max_size=12)
FACT_ROWS = st.lists(st.tuples(IDS, IDS, HOURS), max_size=8)


@settings(max_examples=100, deadline=None)
@given(STAGED_ROWS, FACT_ROWS)
def test_the_counts_are_their_definition_whatever_the_records_and_facts(staged_rows, fact_rows):
    """Records repeated, deleted, without an id, hours or effectiveness; facts repeated, naming
    nothing, the wrong hours: every count is what one query per count finds."""
    staged, found = services(*staged_rows), facts(*fact_rows)
    staged = staged.astype({"is_deleted": "boolean", "is_effective": "boolean", "hours": "Float64",
                            "source_id": "string", "national_record_id": "string", "origin_log_id": "string"})
    found = found.astype({"national_source_id": "string", "provincial_source_id": "string", "hours": "Float64"})
    assert service_count_problems(staged, found) == counted_one_query_per_count(staged, found)

def sound_invariants() -> dict:
    keys = account_key_problems(STAGED, SOUND_MAP, "volunteer_key", pd.Series(["Va", "Vb"]))
    stable = {"accounts_with_new_key": 0, "unexplained_key_changes": 0}
    return {
        "volunteers": {**keys, **stable, "persons_with_two_valid_numbers": 0},
        "organizations": {**keys, **stable},
        "services": service_count_problems(STAGED_SERVICES, SOUND_FACTS),
    }


def test_the_resolved_checks_pass_on_sound_counts():
    results = invariant_checks(sound_invariants())
    assert len(results) == 6 and all(result.passed for result in results)


@pytest.mark.parametrize(
    "entity, count, check, blocking",
    [
        ("volunteers", "persons_with_two_valid_numbers", "one_valid_number_per_person", True),
        ("volunteers", "accounts_without_key", "every_account_one_key", True),
        ("volunteers", "unexplained_key_changes", "keys_stable", False),
        ("organizations", "keys_without_golden_record", "every_account_one_key", True),
        ("organizations", "unexplained_key_changes", "keys_stable", False),
        ("services", "national_records_counted_twice", "counted_once", True),
    ],
)
def test_each_resolved_check_fails_on_its_count(entity, count, check, blocking):
    invariants = sound_invariants()
    invariants[entity][count] = 3
    failed = [r for r in invariant_checks(invariants) if not r.passed]
    assert [(r.asset_key.path[-1], r.check_name) for r in failed] == [(entity, check)]
    assert failed[0].metadata[count].value == 3
    assert (failed[0].severity.value == "ERROR") == blocking


def _service_record(source: str, source_id: str, effective: bool, deleted: bool, hours: float,
                    reference: str | None) -> dict:
    return {"source": source, "source_id": source_id, "volunteer_source_id": "NV1" if source == "national" else "501",
            "hours": hours, "service_date": pd.Timestamp("2026-03-01"), "org_source_id": None,
            "project_source_id": None, "is_effective": effective and not deleted, "is_deleted": deleted,
            "national_record_id": reference if source == "provincial" else None,
            "origin_log_id": reference if source == "national" else None,
            "updated_at": pd.Timestamp("2026-03-02", tz="UTC")}


RECORD = st.tuples(st.booleans(), st.booleans(), st.sampled_from([1.0, 2.0, 2.5]),
                   st.sampled_from([None, 0, 1, 2, 9]))


@settings(max_examples=80, deadline=None)
@given(st.lists(RECORD, max_size=4), st.lists(RECORD, max_size=4))
def test_the_facts_resolution_makes_always_pass_the_blocking_counted_once_check(national, provincial):
    """`counted_once` blocks the publish: whatever the sources send (references to records
    present, absent or deleted, both ways, claimed twice; records effective or not, deleted
    or not), the facts resolve_services makes must pass it, or one row stops a sync."""
    from pipelines.resolve.services import resolve_services

    rows = [_service_record("national", f"R{i}", effective, deleted, hours, None if ref is None else f"L{ref}")
            for i, (effective, deleted, hours, ref) in enumerate(national)]
    rows += [_service_record("provincial", f"L{i}", effective, deleted, hours, None if ref is None else f"R{ref}")
             for i, (effective, deleted, hours, ref) in enumerate(provincial)]
    if not rows:
        return
    staged = pd.DataFrame(rows)
    volunteer_map = pd.DataFrame([{"source": "national", "source_id": "NV1", "volunteer_key": "Vaaa"},
                                  {"source": "provincial", "source_id": "501", "volunteer_key": "Vaaa"}])
    facts = resolve_services(staged, pd.DataFrame(columns=["source", "source_id", "category", "org_source_id"]),
                             volunteer_map, pd.DataFrame(columns=["source", "source_id", "org_key"])).facts
    assert not any(service_count_problems(staged, facts).values())
    # and each service once: the live records that name each other, directly or through
    # other copies, are one service, counted by one fact when a national copy of it is
    # effective (the national copy decides), by none otherwise
    live = staged.loc[~staged["is_deleted"]].set_index(["source", "source_id"])
    group = {record: record for record in live.index}

    def root(record):
        while group[record] != record:
            record = group[record]
        return record

    for (source, source_id), row in live.iterrows():
        other = ("provincial", row["origin_log_id"]) if source == "national" else ("national", row["national_record_id"])
        if other[1] is not None and other in group:
            group[root((source, source_id))] = root(other)
    facts_of = {}
    for fact in facts.itertuples():
        records = [r for r in (("national", fact.national_source_id), ("provincial", fact.provincial_source_id))
                   if isinstance(r[1], str)]
        facts_of.setdefault(root(records[0]), []).append(fact)
    for record in live.index:
        if root(record) != record:
            continue
        members = [r for r in live.index if root(r) == record]
        nationals = [r for r in members if r[0] == "national"]
        counts = any(live.loc[r, "is_effective"] for r in nationals) if nationals else \
            any(live.loc[r, "is_effective"] for r in members)
        assert len(facts_of.get(record, [])) == (1 if counts else 0), members


ACCOUNT_IDS = st.tuples(st.sampled_from(["national", "provincial"]), st.sampled_from(["1", "2", "3", "10", "N1"]))
KEYS = st.one_of(st.none(), st.sampled_from(["Va", "Vb", "Vc"]))


@settings(max_examples=150, deadline=None)
@given(staged_ids=st.lists(ACCOUNT_IDS, max_size=6), keys=st.lists(KEYS, min_size=6, max_size=6),
       golden=st.lists(KEYS, max_size=4), row_for_row=st.booleans(), extra=st.lists(ACCOUNT_IDS, max_size=2))
def test_the_key_problems_of_a_row_for_row_map_are_the_querys(staged_ids, keys, golden, row_for_row, extra):
    """A map that holds the staged accounts row for row (as resolution makes it) is counted on
    its keys alone; whatever the map, staged accounts and golden keys, the counts are those of
    the general query, planted problems included (missing keys, keys without a golden record,
    golden records of no account, accounts missing, repeated or not staged)."""
    staged = accounts(*sorted(staged_ids))
    mapped_ids = list(staged.itertuples(index=False, name=None)) if row_for_row else staged_ids + extra
    broken_map = pd.DataFrame(
        [(source, source_id, keys[i % len(keys)]) for i, (source, source_id) in enumerate(mapped_ids)],
        columns=["source", "source_id", "volunteer_key"])
    golden_keys = pd.Series(golden, dtype="string")
    assert account_key_problems(staged, broken_map, "volunteer_key", golden_keys) == \
        key_problems_by_query(staged, broken_map, "volunteer_key", golden_keys)


def test_a_row_for_row_map_with_a_key_missing_or_no_golden_record_still_fails():
    problems = account_key_problems(
        STAGED, SOUND_MAP.assign(volunteer_key=["Va", None, "Vc"]), "volunteer_key", pd.Series(["Va", "Vz"]))
    assert problems == {"accounts_without_key": 1, "accounts_with_several_keys": 0, "mapped_accounts_not_staged": 0,
                        "keys_without_golden_record": 1, "golden_records_without_account": 1}
