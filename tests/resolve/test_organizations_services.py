"""Organizations (USCC, national team number, name + county; contract status rules) and the service fact."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from datetime import date, timedelta
from itertools import combinations

import numpy as np
import pandas as pd

from pipelines import duck
from pipelines.resolve.organizations import resolve_organizations
from pipelines.resolve.services import FACT_COLUMNS, duplicate_candidates, resolve_services
from pipelines.resolve.survivorship import county_codes_only
from pipelines.staging import read_staged, stage_table
from tests.staging.rawpages import AS_OF, land, national_team, provincial_team, settings_for

# the run's instant stamped on key history and evidence (pipelines/clock.py)
SYNCED_AT = pd.Timestamp("2026-06-30T10:00:00Z")


def team(source, source_id, name, region, uscc=None, uscc_valid=True, national_team_no=None, status="active",
         registration_status="unregistered", categories=None, updated="2026-01-01", is_deleted=False, **extra):
    return {"source": source, "source_id": source_id, "name": name, "region_code": region, "uscc": uscc,
            "uscc_valid": uscc_valid if uscc else False, "national_team_no": national_team_no, "status": status,
            "registration_status": registration_status, "categories": categories,
            "updated_at": pd.Timestamp(updated, tz="UTC"), "is_deleted": is_deleted, "founded_on": extra.get("founded_on"),
            "member_count": extra.get("member_count"), "level": extra.get("level"), "is_hub": extra.get("is_hub"),
            "credit_status": extra.get("credit_status")}


TEAMS = pd.DataFrame([
    team("national", "T01", "贵阳市青年志愿者协会", "520102", uscc="51520100MJ0000001X", registration_status="registered",
         categories="社区服务,应急救援", founded_on=pd.Timestamp("2012-05-01"), member_count=120),
    team("provincial", "901", "贵阳市青年志愿者协会", "520103", uscc="51520100MJ0000001X", status="exited",
         registration_status="registered", categories="助老助残,社区服务", level="市级", is_hub=True,
         founded_on=pd.Timestamp("2011-01-01"), credit_status="良好", updated="2026-02-01"),
    team("national", "T02", "花溪区助残服务队", "520111"),
    team("provincial", "902", "花溪区助残服务队 分队", "520111", national_team_no="T02", registration_status="filed"),
    team("national", "T03", "乌当区环保志愿队", "520112", status="suspended"),
    team("provincial", "903", "乌当区环保志愿队", "520112", status="active", updated="2026-03-01"),
    team("national", "T04", "红十字救援队", "520302", uscc="51520300MJ0000002Y", status="deleted"),
    team("provincial", "904", "红十字救援队", "520302"),
    team("national", "T05", "同名队", "520402", uscc="51520400MJ000000AA"),
    team("provincial", "905", "同名队", "520402", uscc="51520400MJ000000BB"),
])


def test_organization_links_and_methods():
    result = resolve_organizations(TEAMS, synced_at=SYNCED_AT)
    org = result.source_map.set_index(["source", "source_id"])
    assert org.loc[("national", "T01"), "org_key"] == org.loc[("provincial", "901"), "org_key"]
    assert org.loc[("provincial", "901"), "match_method"] == "uscc"
    assert org.loc[("national", "T02"), "org_key"] == org.loc[("provincial", "902"), "org_key"]
    assert org.loc[("provincial", "902"), "match_method"] == "national_team_no"
    assert org.loc[("national", "T03"), "org_key"] == org.loc[("provincial", "903"), "org_key"]
    assert org.loc[("provincial", "903"), "match_method"] == "name_region"
    # two different valid credit codes are two organizations, even with one name in one county
    assert org.loc[("national", "T05"), "org_key"] != org.loc[("provincial", "905"), "org_key"]
    assert all(k.startswith("O") for k in org["org_key"])


def test_organization_golden_follows_the_contract_rules():
    result = resolve_organizations(TEAMS, synced_at=SYNCED_AT)
    org = result.source_map.set_index(["source", "source_id"])["org_key"]
    golden = result.golden.set_index("org_key")
    youth = golden.loc[org[("national", "T01")]]
    assert youth["status"] == "exited"  # exited wins over active
    assert youth["registration_status"] == "registered"
    assert youth["categories"] == "社区服务,助老助残,应急救援"  # union, national code order
    assert youth["region_code"] == "520102" and youth["level"] == "市级" and bool(youth["is_hub"])
    assert youth["founded_on"] == date(2011, 1, 1)
    assert bool(youth["in_national"]) and bool(youth["in_provincial"])
    assert golden.loc[org[("national", "T02")], "registration_status"] == "filed"
    assert golden.loc[org[("national", "T03")], "status"] == "active"  # the latest live account
    assert golden.loc[org[("national", "T04")], "status"] == "deleted"  # deleted wins over all


def test_region_code_is_a_current_county_or_null():
    # the contract's region_code is the current county code: a prefecture's (520100), the
    # province's (520000) or an unknown code gives way to the other account's county, or null
    assert county_codes_only(pd.Series(["520102", "520100", "520000", "520199", None])).tolist() == [
        True, False, False, False, False]
    teams = pd.DataFrame([
        team("national", "T21", "贵阳市志愿服务联合会", "520100", updated="2026-03-01"),
        team("provincial", "921", "贵阳市志愿服务联合会", "520103", national_team_no="T21"),
        team("national", "T22", "贵阳市青年志愿服务总队", "520100"),
    ])
    result = resolve_organizations(teams, synced_at=SYNCED_AT)
    org = result.source_map.set_index(["source", "source_id"])["org_key"]
    golden = result.golden.set_index("org_key")
    assert golden.loc[org[("national", "T21")], "region_code"] == "520103"  # national first, a county only
    assert pd.isna(golden.loc[org[("national", "T22")], "region_code"])


def test_a_live_team_without_a_status_counts_as_active_and_the_latest_team_decides():
    # the provincial team's status is optional: a team sent without one is staged with null
    teams = pd.DataFrame([
        team("provincial", "911", "无状态服务队", "520102", status=None),
        # the provincial team, updated last, has no status: it decides (active), not the older suspended
        team("national", "T12", "观山湖区助学队", "520115", status="suspended", updated="2026-01-01"),
        team("provincial", "912", "观山湖区助学队", "520115", national_team_no="T12", status=None, updated="2026-03-01"),
        team("national", "T13", "白云区敬老队", "520113", status="suspended", updated="2026-03-01"),
        team("provincial", "913", "白云区敬老队", "520113", national_team_no="T13", status=None, updated="2026-01-01"),
    ])
    result = resolve_organizations(teams, synced_at=SYNCED_AT)
    org = result.source_map.set_index(["source", "source_id"])["org_key"]
    golden = result.golden.set_index("org_key")
    assert golden.loc[org[("provincial", "911")], "status"] == "active"
    assert golden.loc[org[("national", "T12")], "status"] == "active"
    assert golden.loc[org[("national", "T13")], "status"] == "suspended"


def test_staged_teams_without_a_status_resolve_to_active(tmp_path):
    settings = settings_for(tmp_path / "data")
    without_status = provincial_team(1)
    del without_status["status"]
    land(settings.data_dir, "provincial", "teams", [without_status, provincial_team(2, status=None, teamName="花溪区助残服务队")])
    land(settings.data_dir, "national", "teams", [national_team("0001", albe0026=None, albe0002="乌当区环保志愿队")])
    stage_table("organizations", settings, as_of=AS_OF)
    staged = read_staged(settings, "organizations")
    assert len(staged) == 3 and staged["status"].isna().all()
    result = resolve_organizations(staged, synced_at=SYNCED_AT)
    assert result.golden["status"].tolist() == ["active"] * 3


def test_organization_keys_survive_a_second_sync():
    first = resolve_organizations(TEAMS, synced_at=SYNCED_AT)
    previous = first.source_map[["source", "source_id", "org_key"]]
    second = resolve_organizations(TEAMS, previous, set(previous["org_key"]), synced_at=SYNCED_AT)
    assert first.source_map.equals(second.source_map)


def service(source, source_id, volunteer, hours, day="2026-03-01", org="T01", project=None, effective=True,
            national_record_id=None, origin_log_id=None):
    return {"source": source, "source_id": source_id, "volunteer_source_id": volunteer, "hours": hours,
            "service_date": pd.Timestamp(day), "org_source_id": org, "project_source_id": project,
            "is_effective": effective, "national_record_id": national_record_id, "origin_log_id": origin_log_id,
            "is_deleted": False, "updated_at": pd.Timestamp("2026-03-02", tz="UTC")}


def test_services_counted_once_with_national_hours_and_duplicates_flagged():
    volunteer_map = pd.DataFrame([
        {"source": "national", "source_id": "NV1", "volunteer_key": "Vaaa"},
        {"source": "provincial", "source_id": "501", "volunteer_key": "Vaaa"},
    ])
    org_map = pd.DataFrame([
        {"source": "national", "source_id": "T01", "org_key": "Oxx"},
        {"source": "provincial", "source_id": "901", "org_key": "Oxx"},
    ])
    projects = pd.DataFrame([
        {"source": "national", "source_id": "X1", "category": "社区服务", "org_source_id": "T01"},
        {"source": "provincial", "source_id": "77", "category": "助老助残", "org_source_id": "901"},
    ])
    staged = pd.DataFrame([
        service("national", "R1", "NV1", 2.0, project="X1"),
        service("provincial", "L1", "501", 2.5, org="901", project="77", national_record_id="R1"),  # pushed up
        service("national", "R2", "NV1", 3.0, day="2026-03-05", origin_log_id="L2"),
        service("provincial", "L2", "501", 3.0, day="2026-03-05", org="901"),
        service("provincial", "L3", "501", 1.5, day="2026-03-09", org="901", project="77"),
        service("national", "R4", "NV1", 1.5, day="2026-03-09"),  # no reference: flagged, not merged
        service("provincial", "L5", "501", 4.0, effective=False),
        service("provincial", "L6", "999", 1.0, org="901"),  # volunteer not resolved
    ])
    result = resolve_services(staged, projects, volunteer_map, org_map)
    facts = result.facts.set_index("provincial_source_id", drop=False)
    assert len(result.facts) == 5
    both = facts.loc["L1"]
    assert both["source"] == "both" and both["hours"] == 2.0 and both["national_source_id"] == "R1"
    assert both["category"] == "社区服务" and both["org_key"] == "Oxx" and both["volunteer_key"] == "Vaaa"
    assert facts.loc["L2", "source"] == "both"
    assert facts.loc["L3", "category"] == "助老助残"
    assert "L5" not in facts.index
    assert result.summary["services_without_volunteer"] == 1
    assert result.summary["total_hours"] == 2.0 + 3.0 + 1.5 + 1.5 + 1.0
    assert len(result.duplicates) == 1
    flagged = result.duplicates.iloc[0]
    assert {flagged["left_source"], flagged["right_source"]} == {"national", "provincial"}
    assert "same hours (1.50 h)" in flagged["evidence"]
    assert result.facts["service_key"].is_unique
    # the key of a pushed-up log does not depend on its national twin
    again = resolve_services(staged.loc[staged["source_id"] != "R1"], projects, volunteer_map, org_map)
    assert again.facts.set_index("provincial_source_id").loc["L1", "service_key"] == both["service_key"]


def test_facts_made_in_blocks_are_the_whole_provinces(monkeypatch):
    """Blocks of records (services.FACT_BLOCK_RECORDS) give the same facts, row for row, as one
    block: a pair's two records, paired either way, fall in one block."""
    from pipelines.resolve import services as services_module

    volunteer_map = pd.DataFrame([
        {"source": "national", "source_id": f"NV{i}", "volunteer_key": f"V{i:03d}"} for i in range(20)
    ] + [{"source": "provincial", "source_id": f"P{i}", "volunteer_key": f"V{i:03d}"} for i in range(20)])
    org_map = pd.DataFrame([{"source": "national", "source_id": "T01", "org_key": "Oxx"},
                            {"source": "provincial", "source_id": "901", "org_key": "Oxx"}])
    projects = pd.DataFrame([{"source": "national", "source_id": "X1", "category": "社区服务", "org_source_id": "T01"}])
    rows = []
    for i in range(20):  # national records in id order; their provincial twins in reverse order
        rows.append(service("national", f"R{i:02d}", f"NV{i}", 1.0 + i, project="X1",
                            origin_log_id=f"L{19 - i:02d}" if i % 3 == 0 else None))
        rows.append(service("provincial", f"L{i:02d}", f"P{i}", 0.5 + i, org="901",
                            national_record_id=f"R{19 - i:02d}" if i % 3 == 2 else None))
    staged = pd.DataFrame(rows)
    whole = resolve_services(staged, projects, volunteer_map, org_map).facts
    monkeypatch.setattr(services_module, "FACT_BLOCK_RECORDS", 7)
    in_blocks = resolve_services(staged, projects, volunteer_map, org_map).facts
    pd.testing.assert_frame_equal(in_blocks, whole)
    assert (whole["source"] == "both").sum() == 13


def test_a_record_that_names_no_team_belongs_to_its_projects_team():
    volunteer_map = pd.DataFrame([{"source": "national", "source_id": "NV1", "volunteer_key": "Vaaa"}])
    org_map = pd.DataFrame([
        {"source": "national", "source_id": "T01", "org_key": "Oxx"},
        {"source": "national", "source_id": "T02", "org_key": "Oyy"},
    ])
    projects = pd.DataFrame([
        {"source": "national", "source_id": "X1", "category": "社区服务", "org_source_id": "T01"},
    ])
    staged = pd.DataFrame([
        service("national", "R1", "NV1", 2.0, org=None, project="X1"),
        service("national", "R2", "NV1", 2.0, org="T02", project="X1"),  # its own team wins
        service("national", "R3", "NV1", 2.0, org=None, project=None),
    ])
    facts = resolve_services(staged, projects, volunteer_map, org_map).facts.set_index("national_source_id")
    assert facts.loc["R1", "org_key"] == "Oxx"
    assert facts.loc["R2", "org_key"] == "Oyy"
    assert pd.isna(facts.loc["R3", "org_key"])


def fact(key, volunteer, day, org, hours, source="national"):
    return {"service_key": key, "volunteer_key": volunteer, "org_key": org, "project_key": None,
            "project_source": None, "project_source_id": None, "service_date": day, "hours": hours,
            "category": None, "source": source, "national_source_id": key if source == "national" else None,
            "provincial_source_id": key if source == "provincial" else None}


def test_duplicate_candidates_pair_each_group_once():
    day = date(2026, 3, 1)
    facts = pd.DataFrame([
        fact("S3", "V1", day, "O1", 2.0), fact("S1", "V1", day, "O1", 2.0), fact("S2", "V1", day, "O1", 2.0, "provincial"),
        fact("S4", "V1", day, "O1", 2.5),  # other hours
        fact("S5", "V2", day, None, 1.0), fact("S6", "V2", day, None, 1.0),  # no team: a team of its own
        fact("S7", "V2", day, "O1", 1.0),
        fact("S8", None, day, "O1", 1.0), fact("S9", None, day, "O1", 1.0),  # no volunteer: nothing to compare
        fact("S10", "V3", None, "O1", 1.0), fact("S11", "V3", None, "O1", 1.0),  # no date
        fact("S12", "V4", day, "O1", 1.004), fact("S13", "V4", day, "O1", 1.0),  # the same hours to the cent
        fact("S14", "V4", day + timedelta(days=1), "O1", 1.0),
    ], columns=FACT_COLUMNS)
    flagged = duplicate_candidates(facts)
    assert list(zip(flagged["left_service_key"], flagged["right_service_key"])) == [
        ("S1", "S2"), ("S1", "S3"), ("S12", "S13"), ("S2", "S3"), ("S5", "S6"),
    ]
    s1_s2 = flagged.iloc[0]
    assert (s1_s2["volunteer_key"], s1_s2["org_key"], s1_s2["service_date"], s1_s2["hours"]) == ("V1", "O1", day, 2.0)
    assert (s1_s2["left_source"], s1_s2["right_source"]) == ("national", "provincial")
    assert (s1_s2["left_national_source_id"], s1_s2["right_provincial_source_id"]) == ("S1", "S2")
    assert s1_s2["evidence"].startswith("same volunteer, same service date, same team, same hours (2.00 h)")
    assert s1_s2["evidence"].endswith("national vs provincial")
    assert duplicate_candidates(facts.loc[facts["service_key"].isin(["S4", "S7"])]).empty


def test_duplicate_candidates_spill_and_give_the_counted_pairs(monkeypatch, tmp_path):
    """Under a memory limit below the query's working set, DuckDB spills to the folder it is
    given (a private one, not the working directory) and finds the same pairs as counting the
    groups by hand."""
    rng = np.random.default_rng(5)
    n = 200_000
    facts = pd.DataFrame({
        "service_key": [f"S{i:07d}" for i in range(n)],
        "volunteer_key": [f"V{v:06d}" for v in rng.integers(0, n // 4, n)],
        "org_key": [None if o == 0 else f"O{o}" for o in rng.integers(0, 3, n)],
        "service_date": [date(2026, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 20, n)],
        "hours": rng.integers(1, 4, n) / 2, "source": "national",
        "national_source_id": [f"S{i:07d}" for i in range(n)], "provincial_source_id": None,
    })
    groups = defaultdict(list)
    for key, volunteer, org, day, hours in facts[["service_key", "volunteer_key", "org_key", "service_date", "hours"]].itertuples(index=False):
        groups[(volunteer, org, day, hours)].append(key)
    expected = sorted(pair for keys in groups.values() for pair in combinations(sorted(keys), 2))
    assert len(expected) > 1_000

    spilled, done = set(), threading.Event()

    def watch() -> None:  # DuckDB removes its spill files when the query ends
        while not done.is_set():
            spilled.update(path.name for path in tmp_path.rglob("*"))  # (in this process's folder)
            time.sleep(0.001)

    watcher = threading.Thread(target=watch)
    monkeypatch.setattr(duck, "SPILL_MEMORY_MB", 32)
    watcher.start()
    try:
        flagged = duplicate_candidates(facts, spill_to=tmp_path)
    finally:
        done.set()
        watcher.join()
    assert list(zip(flagged["left_service_key"], flagged["right_service_key"])) == expected
    assert any(name.startswith("duckdb_temp") for name in spilled)


def test_a_record_staged_twice_counts_once_with_its_last_row_and_a_claimed_record_counts_once(tmp_path):
    """Staging keeps one row per record; were one there twice, its last row is the record (as
    the staged order has it). A national record two logs name is one service with both (the
    contract's "same service" holds through it): it pairs with the first log by id, and the
    other log is a copy that makes no fact; a log two national records name (pushed up twice),
    likewise with the first record by id. From a frame or from the staged Parquet file, the
    same facts."""
    volunteer_map = pd.DataFrame([{"source": "national", "source_id": "NV1", "volunteer_key": "Vaaa"},
                                  {"source": "provincial", "source_id": "501", "volunteer_key": "Vaaa"}])
    org_map = pd.DataFrame(columns=["source", "source_id", "org_key"])
    projects = pd.DataFrame(columns=["source", "source_id", "category", "org_source_id"])
    staged = pd.DataFrame([
        service("national", "R1", "NV1", 2.0),
        service("national", "R1", "NV1", 3.0),  # the same record again: this row counts
        service("provincial", "L2", "501", 1.0, day="2026-03-03", national_record_id="R1"),
        service("provincial", "L1", "501", 1.0, day="2026-03-04", national_record_id="R1"),
        service("national", "R8", "NV1", 4.0, day="2026-03-08", origin_log_id="L9"),
        service("national", "R7", "NV1", 4.0, day="2026-03-07", origin_log_id="L9"),
        service("provincial", "L9", "501", 5.0, day="2026-03-09"),
    ])
    from_frame = resolve_services(staged, projects, volunteer_map, org_map)
    found = [(f.source, f.national_source_id, f.provincial_source_id, f.hours)
             for f in from_frame.facts.sort_values("national_source_id").itertuples()]
    assert found == [("both", "R1", "L1", 3.0), ("both", "R7", "L9", 4.0)]
    assert from_frame.summary["service_records"] == 6
    assert from_frame.summary["pairs_by_reference"] == {"national_record_id": 1, "origin": 1}
    assert from_frame.summary["service_copies"] == {"national": 1, "provincial": 1}

    path = tmp_path / "services.parquet"
    staged.assign(service_date=pd.to_datetime(staged["service_date"]).dt.date).to_parquet(path)
    from_file = resolve_services(path, projects, volunteer_map, org_map)
    pd.testing.assert_frame_equal(from_file.facts, from_frame.facts)
    assert from_file.summary == from_frame.summary


def test_copies_linked_through_each_other_are_one_service_counted_by_an_effective_national_copy():
    """A push retried after its first copy was rejected: the log's service counts once, by the
    approved national copy, with its hours. Copies chained through each other (R1 named by two
    logs, the second also pushed up as R2) are one service: one fact. Each case also from the
    other side of the `counted_once` invariant: nothing wrong."""
    from pipelines.resolve.invariants import service_count_problems

    volunteer_map = pd.DataFrame([{"source": "national", "source_id": "NV1", "volunteer_key": "Vaaa"},
                                  {"source": "provincial", "source_id": "501", "volunteer_key": "Vaaa"}])
    no_orgs = pd.DataFrame(columns=["source", "source_id", "org_key"])
    no_projects = pd.DataFrame(columns=["source", "source_id", "category", "org_source_id"])
    cases = {
        "a push retried after a rejection": ([
            service("national", "R1", "NV1", 2.0, origin_log_id="L1", effective=False),
            service("national", "R2", "NV1", 2.5, origin_log_id="L1"),
            service("provincial", "L1", "501", 3.0)],
            [("both", "R2", "L1", 2.5)], {"national": 1}),
        "copies chained through each other": ([
            service("national", "R1", "NV1", 2.0),
            service("provincial", "L1", "501", 2.0, national_record_id="R1"),
            service("provincial", "L2", "501", 2.0, national_record_id="R1"),
            service("national", "R2", "NV1", 2.0, origin_log_id="L2")],
            [("both", "R1", "L1", 2.0)], {"national": 1, "provincial": 1}),
        "no effective national copy": ([
            service("national", "R1", "NV1", 2.0, origin_log_id="L1", effective=False),
            service("national", "R2", "NV1", 2.0, origin_log_id="L1", effective=False),
            service("provincial", "L1", "501", 2.0)],
            [], {"national": 1}),
    }
    for what, (rows, expected, copies) in cases.items():
        staged = pd.DataFrame(rows)
        result = resolve_services(staged, no_projects, volunteer_map, no_orgs)
        found = [(f.source, f.national_source_id, f.provincial_source_id, f.hours) for f in result.facts.itertuples()]
        assert found == expected, what
        assert result.summary["service_copies"] == copies, what
        assert not any(service_count_problems(staged, result.facts).values()), what
    # which copies, and the fact that counts each one's service (none when it counts nowhere)
    retried, chained, uncounted = (resolve_services(pd.DataFrame(rows), no_projects, volunteer_map, no_orgs)
                                   for rows, _, _ in cases.values())
    listed = retried.copies.astype(object).where(retried.copies.notna(), None).values.tolist()
    assert listed == [["national", "R1", "R2", "L1", retried.facts["service_key"].iloc[0]]]
    assert chained.copies[["source", "source_id"]].values.tolist() == [["national", "R2"], ["provincial", "L2"]]
    assert (chained.copies["service_key"] == chained.facts["service_key"].iloc[0]).all()
    assert uncounted.copies["service_key"].isna().all() and len(uncounted.copies) == 1


def test_a_placeholder_typed_for_a_missing_credit_code_joins_no_teams():
    """无, NULL or eighteen zeros where a team has no code are no code: two unrelated teams
    that both carry one stay apart; the same well-formed code (its check wrong alike in both
    systems) is still one organization."""
    teams = pd.DataFrame([
        team("provincial", "1", "甲队", "520102", uscc="无", uscc_valid=False),
        team("provincial", "2", "乙队", "520303", uscc="无", uscc_valid=False),
        team("provincial", "3", "丙队", "520402", uscc="NULL", uscc_valid=False),
        team("national", "T3", "丁队", "520111", uscc="NULL", uscc_valid=False),
        team("provincial", "4", "戊队", "520102", uscc="000000000000000000", uscc_valid=True),
        team("national", "T4", "己队", "520303", uscc="000000000000000000", uscc_valid=True),
        team("provincial", "5", "庚队", "520102", uscc="51520100MJ00000099", uscc_valid=False),
        team("national", "T5", "庚队志愿服务协会", "520103", uscc="51520100MJ00000099", uscc_valid=False),
    ])
    result = resolve_organizations(teams, synced_at=SYNCED_AT)
    org = result.source_map.set_index(["source", "source_id"])
    assert org["org_key"].nunique() == 7
    assert org.loc[("provincial", "5"), "org_key"] == org.loc[("national", "T5"), "org_key"]
    assert org.loc[("provincial", "5"), "match_method"] == "uscc"


def test_a_copy_deleted_at_its_source_pairs_nothing_and_the_live_copy_counts_once():
    """A deleted copy is in neither system any more: a log deleted after it was pushed up
    leaves the national record (counted once, as national's); a national record deleted
    leaves the approved log (counted with its own hours); a deleted log gives way to the live
    one that claims the same record. The `counted_once` invariant, which blocks the publish,
    counts the same way: before, each of these stopped it."""
    from pipelines.resolve.invariants import service_count_problems

    volunteer_map = pd.DataFrame([{"source": "national", "source_id": "NV1", "volunteer_key": "Vaaa"},
                                  {"source": "provincial", "source_id": "501", "volunteer_key": "Vaaa"}])
    no_orgs = pd.DataFrame(columns=["source", "source_id", "org_key"])
    no_projects = pd.DataFrame(columns=["source", "source_id", "category", "org_source_id"])

    def deleted(row: dict) -> dict:
        return {**row, "is_deleted": True, "is_effective": False}

    cases = {
        "log deleted after its push": ([service("national", "R1", "NV1", 2.0),
                                        deleted(service("provincial", "L1", "501", 2.5, national_record_id="R1"))],
                                       [("national", "R1", None, 2.0)]),
        "national record deleted": ([deleted(service("national", "R1", "NV1", 2.0)),
                                     service("provincial", "L1", "501", 2.5, national_record_id="R1")],
                                    [("provincial", None, "L1", 2.5)]),
        "a deleted claimant first": ([service("national", "R1", "NV1", 2.0),
                                      deleted(service("provincial", "L1", "501", 2.0, national_record_id="R1")),
                                      service("provincial", "L2", "501", 2.0, national_record_id="R1")],
                                     [("both", "R1", "L2", 2.0)]),
    }
    for what, (rows, expected) in cases.items():
        staged = pd.DataFrame(rows)
        result = resolve_services(staged, no_projects, volunteer_map, no_orgs)
        found = [(f.source, f.national_source_id, f.provincial_source_id, f.hours)
                 for f in result.facts.astype(object).where(result.facts.notna(), None).itertuples()]
        assert found == expected, what
        assert not any(service_count_problems(staged, result.facts).values()), what
