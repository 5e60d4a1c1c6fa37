"""The sandbox world generator: determinism, valid identifiers, overlap, dirt, planted invalid
rows, and a truth that agrees with what is stored — before and after a change set.

Checks are written from the contracts, not from the generator's code: ID numbers are checked
with python-stdnum, quarantine rules re-implemented from the contract's table.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from jsonschema import Draft202012Validator
from opencc import OpenCC
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from stdnum.cn import ric, uscc

from sandbox.changes import apply_changeset, touch_rows
from sandbox.generator import generate_world
from sandbox.truth import load_truth

AS_OF = datetime(2026, 6, 1, 12, 0, 0)  # Beijing time
PERSONS = 2000
NATIONAL_TABLES = ("volunteers", "teams", "projects", "service_records", "evaluations")
PROVINCIAL_TABLES = ("teams", "volunteers", "activities", "service_logs", "stations", "redemptions")
T2S = OpenCC("t2s")
ROMANISED = re.compile(r"[\u4e00-\u9fff]\([a-zāáǎàēéěèīíǐìōóǒòūúǔùüǖǘǚǜ]+\)")
CONTRACTS = Path(__file__).resolve().parents[2] / "schemas" / "sources"
SCHEMA_OF = {
    ("national", "volunteers"): "Volunteer",
    ("national", "teams"): "Team",
    ("national", "projects"): "Project",
    ("national", "service_records"): "ServiceRecord",
    ("national", "evaluations"): "Evaluation",
    ("provincial", "teams"): "Team",
    ("provincial", "volunteers"): "Volunteer",
    ("provincial", "activities"): "Activity",
    ("provincial", "service_logs"): "ServiceLog",
    ("provincial", "stations"): "Station",
    ("provincial", "redemptions"): "Redemption",
}
RETIRED = {"520114": "520115", "520221": "520204", "520222": "520281", "520522": "520581"}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    return generate_world(
        tmp_path_factory.mktemp("gen") / "world", persons=PERSONS, seed=7, as_of=AS_OF
    )


@pytest.fixture(scope="module")
def truth(world):
    return load_truth(world)


def stored(world: Path, source: str, table: str) -> pd.DataFrame:
    """A stored table with its bodies parsed."""
    with sqlite3.connect(world / f"{source}.sqlite") as conn:
        frame = pd.read_sql(f"SELECT id, updated_at, region, body FROM {table}", conn)
    frame["row"] = [json.loads(b) for b in frame["body"]]
    frame["row_id"] = frame["id"].astype(str)
    return frame


@pytest.fixture(scope="module")
def store(world):
    return {
        (source, table): stored(world, source, table)
        for source, tables in (("national", NATIONAL_TABLES), ("provincial", PROVINCIAL_TABLES))
        for table in tables
    }


# --- independent checks --------------------------------------------------------------------


def fold_width(text: str) -> str:
    return "".join(chr(ord(c) - 0xFEE0) if 0xFF01 <= ord(c) <= 0xFF5E else c for c in text)


def normalize_cert(text: str) -> str:
    """The contract's normalization: half-width, no spaces, upper-case X, 15 → 18 digits."""
    compact = re.sub(r"\s", "", fold_width(text)).upper()
    if len(compact) == 15 and compact.isdigit():
        body = compact[:6] + "19" + compact[6:]
        return body + ric.calc_check_digit(body + "?")  # stdnum ignores the last character
    return compact


def check_ok(number: str) -> bool:
    return (
        len(number) == 18 and number[:17].isdigit() and ric.calc_check_digit(number) == number[17]
    )


def parse_day(text: str) -> date:
    for fmt in ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            pass
    raise ValueError(text)


def blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.replace("\u3000", " ").strip())


def broken_rules(source: str, table: str, row: dict, as_of: date) -> set[str]:
    """The contract's quarantine rules that a stored row breaks, judged from the row alone."""
    rules = set()
    area = {
        "volunteers": "areaCode",
        "teams": "areaCode",
        "activities": "areaCode",
        "stations": "areaCode",
    }
    if source == "provincial" and table in area and not str(row[area[table]]).startswith("52"):
        rules.add("region_outside_province")
    if source == "national":
        field = {"volunteers": "albp0020", "teams": "albe0012", "projects": "albx0021"}.get(table)
        if field and not str(row[field]).startswith("52"):
            rules.add("region_outside_province")
    if (source, table) == ("national", "service_records"):
        start, end = (
            datetime.fromisoformat(row["albx0181"]),
            datetime.fromisoformat(row["albx0182"]),
        )
        if end < start:
            rules.add("end_before_start")
        if not 0 < row["albx0172"] <= 24:
            rules.add("hours_out_of_range")
        if start.date() > as_of:
            rules.add("future_date")
        if blank(row["albx0175"]):
            rules.add("missing_required")
    if (source, table) == ("provincial", "service_logs"):
        if not 0 < row["durationMinutes"] <= 24 * 60:
            rules.add("hours_out_of_range")
        if parse_day(row["serviceDate"]) > as_of:
            rules.add("future_date")
        if row["userId"] is None:
            rules.add("missing_required")
    is_activity = (source, table) == ("provincial", "activities")
    if is_activity and row["startTime"] and row["endTime"] and row["endTime"] < row["startTime"]:
        rules.add("end_before_start")
    name_field = {
        ("national", "volunteers"): "albp0003",
        ("provincial", "volunteers"): "realName",
        ("national", "teams"): "albe0002",
        ("provincial", "teams"): "teamName",
    }.get((source, table))
    if name_field and blank(row[name_field]):
        rules.add("missing_required")
    return rules


# --- determinism ---------------------------------------------------------------------------


def world_digest(folder: Path) -> dict[str, str]:
    digests = {}
    for source, tables in (("national", NATIONAL_TABLES), ("provincial", PROVINCIAL_TABLES)):
        with sqlite3.connect(folder / f"{source}.sqlite") as conn:
            for table in tables:
                h = hashlib.sha256()
                for row in conn.execute(
                    f"SELECT id, updated_at, region, body FROM {table} ORDER BY id"
                ):
                    h.update(repr(row).encode())
                digests[f"{source}.{table}"] = h.hexdigest()
    for path in sorted((folder / "truth").glob("*.parquet")) + [folder / "world.json"]:
        digests[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path):
    first = world_digest(generate_world(tmp_path / "a", persons=300, seed=5, as_of=AS_OF))
    again = world_digest(generate_world(tmp_path / "b", persons=300, seed=5, as_of=AS_OF))
    other = world_digest(generate_world(tmp_path / "c", persons=300, seed=6, as_of=AS_OF))
    assert first == again
    assert first["national.volunteers"] != other["national.volunteers"]
    assert first["persons.parquet"] != other["persons.parquet"]


# --- storage format ------------------------------------------------------------------------


def test_columns_agree_with_bodies_and_nothing_is_after_as_of(store):
    as_of_national = AS_OF.strftime("%Y-%m-%dT%H:%M:%S+08:00")
    as_of_provincial = AS_OF.strftime("%Y-%m-%d %H:%M:%S")
    for (source, table), frame in store.items():
        assert len(frame) > 0, (source, table)
        field = "updated_at" if source == "national" else "updateTime"
        deleted = "isdelete" if source == "national" else "isDeleted"
        assert all(str(r["id"]) == i for r, i in zip(frame["row"], frame["row_id"])), (
            source,
            table,
        )
        assert (frame["updated_at"] == [r[field] for r in frame["row"]]).all(), (source, table)
        assert all(deleted in r for r in frame["row"]), (source, table)
        limit = as_of_national if source == "national" else as_of_provincial
        assert frame["updated_at"].max() <= limit, (source, table)
        if source == "national":
            assert frame["id"].str.len().nunique() == 1  # fixed width: text order is numeric order
            assert frame["region"].str.match(r"^52\d{4}$").all(), table
        else:
            areas = [r.get("areaCode", "") for r in frame["row"]]
            assert (frame["region"] == areas).all(), table
    regions = {"volunteers": "albp0020", "teams": "albe0012", "projects": "albx0021"}
    for table, field in regions.items():
        frame = store[("national", table)]
        assert (frame["region"] == [r[field] for r in frame["row"]]).all()
    projects = {r["albx0001"]: r["albx0021"] for r in store[("national", "projects")]["row"]}
    records = store[("national", "service_records")]
    assert (records["region"] == [projects[r["albx0001"]] for r in records["row"]]).all()


def test_every_stored_body_is_a_row_of_its_contract(store):
    for source in ("national", "provincial"):
        document = yaml.safe_load(
            (CONTRACTS / f"{source}.openapi.yaml").read_text(encoding="utf-8")
        )
        uri = f"urn:contract:{source}"
        registry = Registry().with_resource(
            uri, Resource.from_contents(document, default_specification=DRAFT202012)
        )
        for (src, table), frame in store.items():
            if src != source:
                continue
            validator = Draft202012Validator(
                {"$ref": f"{uri}#/components/schemas/{SCHEMA_OF[(src, table)]}"}, registry=registry
            )
            for row in frame["row"]:
                errors = list(validator.iter_errors(row))
                assert not errors, (source, table, row, errors[0].message)


def test_storage_has_the_keyset_index_and_wal(world):
    for source, tables in (("national", NATIONAL_TABLES), ("provincial", PROVINCIAL_TABLES)):
        with sqlite3.connect(world / f"{source}.sqlite") as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            for table in tables:
                plan = conn.execute(
                    f"EXPLAIN QUERY PLAN SELECT body FROM {table} WHERE (updated_at, id) > (?, ?) "
                    "ORDER BY updated_at, id LIMIT 100",
                    ("2024-01-01", "0"),
                ).fetchall()
                assert "TEMP B-TREE" not in str(plan), (source, table, plan)


# --- identifiers ---------------------------------------------------------------------------


def test_every_true_id_number_is_valid_and_consistent(truth):
    persons = truth.persons
    assert persons["cert_no"].is_unique
    for number, birth, gender in zip(persons["cert_no"], persons["birth_date"], persons["gender"]):
        assert check_ok(number), number
        assert number.startswith("52")
        assert ric.get_birth_date(number) == birth
        assert (int(number[16]) % 2 == 1) == (gender == "M")


def test_valid_numbers_in_the_sources_belong_to_the_right_person(truth, store):
    cert_of = truth.persons.set_index("person_id")["cert_no"]
    accounts = truth.accounts.set_index(["source", "stream", "row_id"])
    checked = 0
    for source, table, field in (
        ("national", "volunteers", "albp0005"),
        ("provincial", "volunteers", "certNo"),
    ):
        frame = store[(source, table)]
        for row_id, row in zip(frame["row_id"], frame["row"]):
            number = normalize_cert(row[field])
            if (source, table, row_id) in accounts.index and check_ok(number):
                assert number == cert_of[accounts.loc[(source, table, row_id), "true_id"]]
                checked += 1
    assert checked > 0.6 * len(truth.accounts[truth.accounts["entity"] == "volunteer"])


def test_credit_codes_are_valid_gb32100(truth, store):
    registered = truth.orgs.dropna(subset=["uscc"])
    assert len(registered) > 5
    for code in registered["uscc"]:
        assert uscc.is_valid(code), code
        assert code[:2] in {"51", "52", "53"} and code[2:4] == "52"
    for row in store[("national", "teams")]["row"]:
        if row["albe0008"]:
            assert uscc.is_valid(row["albe0008"])
    org_code = {r.org_id: r.uscc for r in truth.orgs.itertuples()}
    accounts = truth.accounts.set_index(["source", "stream", "row_id"])
    frame = store[("provincial", "teams")]
    for row_id, row in zip(frame["row_id"], frame["row"]):
        if row["creditCode"] and ("provincial", "teams", row_id) in accounts.index:
            assert (
                row["creditCode"].replace(" ", "").upper()
                == org_code[accounts.loc[("provincial", "teams", row_id), "true_id"]]
            )


# --- sizes and overlap ---------------------------------------------------------------------


def test_sizes_and_overlap_are_as_designed(truth, store):
    persons = truth.persons
    both = (persons["in_national"] & persons["in_provincial"]).mean()
    assert 0.40 <= both <= 0.50
    assert (persons["in_national"] | persons["in_provincial"]).all()
    volunteer_rows = len(truth.accounts[truth.accounts["entity"] == "volunteer"])
    assert 1.3 <= volunteer_rows / PERSONS <= 1.6
    records = len(store[("national", "service_records")]) + len(
        store[("provincial", "service_logs")]
    )
    assert 3.0 <= records / PERSONS <= 5.0
    assert 0.6 * PERSONS / 50 <= len(truth.orgs) <= 1.5 * PERSONS / 50
    assert 0.6 * PERSONS / 10 <= len(truth.projects) <= 1.5 * PERSONS / 10
    assert len(store[("provincial", "stations")]) >= PERSONS / 100
    rows = sum(len(f) for f in store.values())
    assert len(truth.invalid_rows) / rows < 0.012
    evaluators = {r["evaluator"] for r in store[("national", "evaluations")]["row"]}
    assert evaluators == {"registration_authority", "funder", "beneficiary", "self", "third_party"}
    brands = {r["brandProject"] for r in store[("provincial", "activities")]["row"]} | {
        r["albx0040"] for r in store[("national", "projects")]["row"]
    }
    for brand in ("三关爱", "暖冬行动", "西部计划", "青清河", "夜校"):
        assert any(b and brand in b for b in brands), brand


def test_common_names_are_common_and_namesakes_exist(truth):
    persons = truth.persons
    counts = persons["name"].value_counts()
    assert counts.get("王伟", 0) >= 3 and counts.get("李娜", 0) >= 2
    assert (
        persons["name"].str.startswith(("欧阳", "令狐", "上官", "司马", "诸葛")).any()
        or len(persons) < 1000
    )
    pairs = persons.dropna(subset=["namesake_of"]).merge(
        persons, left_on="namesake_of", right_on="person_id", suffixes=("", "_other")
    )
    assert len(pairs) >= 5
    assert (pairs["name"] == pairs["name_other"]).all() and (
        pairs["birth_date"] == pairs["birth_date_other"]
    ).all()
    assert (pairs["cert_no"] != pairs["cert_no_other"]).all()
    assert (pairs["region_code"] == pairs["region_code_other"]).any()


# --- dirt ----------------------------------------------------------------------------------


def test_each_kind_of_dirt_is_present(store):
    cert = [r["certNo"] for r in store[("provincial", "volunteers")]["row"]]
    assert any(len(c) == 15 and c.isdigit() for c in cert), "15-digit legacy numbers"
    assert any(c.endswith("x") for c in cert), "lower-case x"
    assert any(re.search("[０-９]", c) for c in cert), "full-width digits"
    assert any(" " in c for c in cert), "spaces inside numbers"
    assert any(len(normalize_cert(c)) == 18 and not check_ok(normalize_cert(c)) for c in cert), (
        "mistyped numbers"
    )
    assert "" in cert, "missing numbers"
    names = [r["realName"] for r in store[("provincial", "volunteers")]["row"]]
    teams = [r["teamName"] for r in store[("provincial", "teams")]["row"]]
    titles = [r["title"] for r in store[("provincial", "activities")]["row"]]
    assert any(T2S.convert(n) != n for n in names), "traditional characters in names"
    assert any(ROMANISED.search(n) for n in names + teams), "romanisation pasted in"
    assert any(ROMANISED.search(t) and T2S.convert(t) != t for t in teams), (
        "貴州省婦聯(lián)-style team names"
    )
    assert any(n != n.strip() or " " in n or "\u3000" in n for n in names), "stray spaces"
    assert any(",," in t for t in teams + titles), "doubled punctuation"
    mobiles = [r["mobile"] for r in store[("provincial", "volunteers")]["row"] if r["mobile"]]
    assert any(m.startswith("+86 ") for m in mobiles) and any("-" in m for m in mobiles)
    areas = [r["areaCode"] for r in store[("provincial", "volunteers")]["row"]]
    assert any(len(a) == 12 for a in areas) and any(len(a) == 6 for a in areas)
    shown_regions = [a[:6] for a in areas] + [
        r["albp0020"] for r in store[("national", "volunteers")]["row"]
    ]
    assert set(shown_regions) & set(RETIRED), "retired region codes"
    formats = {
        ("-" in d, "/" in d)
        for d in (r["serviceDate"] for r in store[("provincial", "service_logs")]["row"])
    }
    assert formats == {(True, False), (False, True), (False, False)}, "three date formats"
    labels = ",".join(r["serviceTypes"] for r in store[("provincial", "teams")]["row"]).split(",")
    assert set(labels) & {
        "卫健",
        "扶贫",
        "乡村振兴",
        "助残",
        "助老",
        "环保",
        "文旅",
        "应急",
        "支教",
    }, "older synonyms"
    nat = store[("national", "volunteers")]["row"]
    masked = [r for r in nat if not r["share_consent"]]
    assert masked and all(re.fullmatch(r"\d{4}\*{10}[\dX]{4}", r["albp0005"]) for r in masked)
    assert all(
        r["albp0010"] is None or re.fullmatch(r"\d{3}\*{4}\d{4}", r["albp0010"]) for r in masked
    )
    assert all(check_ok(r["albp0005"]) for r in nat if r["share_consent"] and r["albp0003"].strip())


def test_matching_hard_cases_are_what_their_tags_say(truth, store):
    accounts = truth.accounts
    persons = truth.persons.set_index("person_id")
    rows = store[("provincial", "volunteers")].set_index("row_id")["row"]
    tagged = accounts[(accounts["source"] == "provincial") & (accounts["entity"] == "volunteer")]
    seen = set()
    for account in tagged.itertuples():
        person = persons.loc[account.true_id]
        row = rows[account.row_id]
        tags = set(account.dirt.split(",")) if account.dirt else set()
        seen |= tags
        if "name_homophone" in tags:
            assert len(row["realName"]) == len(person["name"]) and row["realName"] != person["name"]
            assert sum(a != b for a, b in zip(row["realName"], person["name"])) == 1
        if "name_dropped_char" in tags:
            assert len(row["realName"]) == len(person["name"]) - 1
        if "birth_mistyped" in tags:
            assert parse_day(row["birthday"]) != person["birth_date"]
            assert not check_ok(normalize_cert(row["certNo"]))
        if "phone_changed" in tags:
            assert re.sub(r"\D", "", row["mobile"] or "")[-11:] != person["phone"]
        if "moved_county" in tags:
            shown = row["areaCode"][:6]
            assert RETIRED.get(shown, shown) != person["region_code"]
    for tag in (
        "name_homophone",
        "name_dropped_char",
        "birth_mistyped",
        "phone_changed",
        "moved_county",
        "cert_15",
        "cert_lower_x",
        "cert_fullwidth",
        "cert_spaces",
        "cert_mistyped",
        "cert_missing",
        "name_traditional",
        "name_spaces",
        "name_romanised",
        "region_retired",
        "area_6",
    ):
        assert tag in seen, tag
    linked = [r for r in rows if r["nationalVolunteerNo"]]
    assert 0 < len(linked) < len(rows)


def test_links_between_the_systems_name_the_same_entity(truth, store):
    accounts = truth.accounts.set_index(["source", "stream", "source_id"])["true_id"]
    for row in store[("provincial", "volunteers")]["row"]:
        if (
            row["nationalVolunteerNo"]
            and ("provincial", "volunteers", str(row["id"])) in accounts.index
        ):
            assert (
                accounts[("national", "volunteers", row["nationalVolunteerNo"])]
                == accounts[("provincial", "volunteers", str(row["id"]))]
            )
    team_links = [r for r in store[("provincial", "teams")]["row"] if r["nationalTeamNo"]]
    assert team_links
    for row in team_links:
        assert (
            accounts[("national", "teams", row["nationalTeamNo"])]
            == accounts[("provincial", "teams", str(row["id"]))]
        )
    records = {r["id"]: r for r in store[("national", "service_records")]["row"]}
    logs = {r["id"]: r for r in store[("provincial", "service_logs")]["row"]}
    by_record = [(r["nationalRecordId"], i) for i, r in logs.items() if r["nationalRecordId"]]
    by_origin = [(i, int(r["origin"].split(":")[1])) for i, r in records.items() if r["origin"]]
    assert by_record and by_origin
    for record_id, log_id in by_record + by_origin:
        assert (
            accounts[("national", "service_records", record_id)]
            == accounts[("provincial", "service_logs", str(log_id))]
        )
        assert (
            parse_day(logs[log_id]["serviceDate"])
            == datetime.fromisoformat(records[record_id]["albx0181"]).date()
        )


# --- invalid rows --------------------------------------------------------------------------


def test_invalid_rows_break_exactly_their_rule_and_valid_rows_none(truth, store):
    as_of = AS_OF.date()
    planted = {(r.source, r.stream, r.row_id): r.rule for r in truth.invalid_rows.itertuples()}
    assert set(planted.values()) == {
        "region_outside_province",
        "end_before_start",
        "hours_out_of_range",
        "future_date",
        "missing_required",
    }
    kinds = {(s, st, rule) for (s, st, _), rule in planted.items()}
    for expected in [
        ("provincial", "volunteers", "region_outside_province"),
        ("national", "volunteers", "missing_required"),
        ("provincial", "teams", "missing_required"),
        ("national", "service_records", "end_before_start"),
        ("national", "service_records", "hours_out_of_range"),
        ("provincial", "service_logs", "future_date"),
        ("national", "service_records", "missing_required"),
        ("provincial", "activities", "end_before_start"),
    ]:
        assert expected in kinds, expected
    for (source, table), frame in store.items():
        for row_id, row in zip(frame["row_id"], frame["row"]):
            expected = (
                {planted[(source, table, row_id)]} if (source, table, row_id) in planted else set()
            )
            assert broken_rules(source, table, row, as_of) == expected, (source, table, row)
    future = [
        r
        for r in store[("provincial", "service_logs")]["row"]
        if parse_day(r["serviceDate"]) > as_of
    ]
    assert all(parse_day(r["serviceDate"]) >= as_of + timedelta(days=200) for r in future)


# --- truth against the store ---------------------------------------------------------------


def assert_truth_matches_store(world: Path) -> None:
    """The truth files describe exactly the stored rows (used before and after change sets)."""
    truth = load_truth(world)
    as_of = max(
        [datetime.fromisoformat(truth.world["as_of"])]
        + [datetime.fromisoformat(c["now"]) for c in truth.world["changesets"]]
    )
    tables = {
        (s, t): stored(world, s, t)
        for s, ts in (("national", NATIONAL_TABLES), ("provincial", PROVINCIAL_TABLES))
        for t in ts
    }
    described = list(
        zip(truth.accounts["source"], truth.accounts["stream"], truth.accounts["row_id"])
    )
    invalid = list(
        zip(
            truth.invalid_rows["source"], truth.invalid_rows["stream"], truth.invalid_rows["row_id"]
        )
    )
    every = [(s, t, i) for (s, t), f in tables.items() for i in f["row_id"]]
    assert len(described) == len(set(described)) and not set(described) & set(invalid)
    assert sorted(described + invalid) == sorted(every)
    rows = {(s, t, i): r for (s, t), f in tables.items() for i, r in zip(f["row_id"], f["row"])}
    accounts = truth.accounts.set_index(["source", "stream", "row_id"])
    for key, is_deleted, updated_at in zip(
        accounts.index, accounts["is_deleted"], accounts["updated_at"]
    ):
        row = rows[key]
        deleted = row["isdelete" if key[0] == "national" else "isDeleted"]
        assert bool(deleted) == is_deleted, key
        stamp = (
            row["updated_at"][:19].replace("T", " ") if key[0] == "national" else row["updateTime"]
        )
        assert stamp == updated_at.strftime("%Y-%m-%d %H:%M:%S"), key
    # services: hours, effectiveness and the volunteer behind each row
    volunteers = truth.accounts[truth.accounts["entity"] == "volunteer"]
    person_of = dict(zip(zip(volunteers["source"], volunteers["source_id"]), volunteers["true_id"]))
    for s in truth.services.itertuples():
        national = (
            rows.get(("national", "service_records", s.national_source_id))
            if isinstance(s.national_source_id, str)
            else None
        )
        provincial = (
            rows.get(("provincial", "service_logs", s.provincial_source_id))
            if isinstance(s.provincial_source_id, str)
            else None
        )
        assert national or provincial
        if national:
            assert national["albx0172"] == pytest.approx(s.hours)
            assert (national["albx0174"] == "2" and not national["isdelete"]) == s.effective
            assert person_of[("national", national["albx0175"])] == s.person_id
        else:
            assert provincial["durationMinutes"] / 60 == pytest.approx(s.hours)
        if provincial:
            assert (provincial["status"] == "已通过" and not provincial["isDeleted"]) == s.effective
            assert person_of[("provincial", str(provincial["userId"]))] == s.person_id
        assert 0 < s.hours <= 24 and s.service_date <= as_of.date()
    hours = truth.services[truth.services["effective"]].groupby("person_id")["hours"].sum()
    expected = truth.persons.set_index("person_id")["true_hours"]
    assert np.allclose(hours.reindex(expected.index, fill_value=0.0), expected)
    counts = truth.world["row_counts"]
    assert {f"{s}.{t}": len(f) for (s, t), f in tables.items()} == {
        f"{s}.{t}": n for s, c in counts.items() for t, n in c.items()
    }
    assert set(truth.persons["status"]) <= {"active", "deregistered", "frozen", "deleted"}


def test_truth_matches_the_store(world):
    assert_truth_matches_store(world)


def test_a_change_set_changes_what_it_says_and_keeps_the_truth_right(world, tmp_path):
    copy = tmp_path / "world"
    shutil.copytree(world, copy)
    before = load_truth(copy)
    now = AS_OF + timedelta(days=1, hours=3)
    counts = apply_changeset(copy, seed=3, now=now)
    assert all(
        counts[k] > 0
        for k in (
            "phones_changed",
            "teams_suspended",
            "teams_exited",
            "persons_added",
            "services_added",
            "services_deleted",
            "accounts_deleted",
            "stations_deleted",
            "services_pushed_again",
        )
    )
    after = load_truth(copy)
    # a log pushed up again: a second national row of one service, its origin naming the log
    copies = after.accounts.loc[after.accounts["dirt"] == "pushed_again"]
    assert len(copies) == counts["services_pushed_again"] and (copies["entity"] == "service").all()
    records = stored(copy, "national", "service_records").set_index("row_id")["row"]
    by_service = after.services.set_index("service_id")
    for row in copies.itertuples():
        service = by_service.loc[row.true_id]
        assert records[row.row_id]["origin"] == f"provincial:{service.provincial_source_id}"
        assert records[row.row_id]["albx0172"] == records[service.national_source_id]["albx0172"]
    assert_truth_matches_store(copy)
    assert len(after.persons) == len(before.persons) + counts["persons_added"]
    assert len(after.services) == len(before.services) + counts["services_added"]
    newly_ineffective = set(before.services[before.services["effective"]]["service_id"]) - set(
        after.services[after.services["effective"]]["service_id"]
    )
    assert len(newly_ineffective) == counts["services_deleted"]
    exited = after.orgs[after.orgs["status"] == "exited"]
    assert len(exited) == len(before.orgs[before.orgs["status"] == "exited"]) + 1
    teams = stored(copy, "provincial", "teams")
    stamp_p = now.strftime("%Y-%m-%d %H:%M:%S")
    stamp_n = now.strftime("%Y-%m-%dT%H:%M:%S+08:00")
    changed_teams = [r for r in teams["row"] if r["updateTime"] == stamp_p]
    assert any(r["status"] == "退出" for r in changed_teams)
    for source, tables in (("national", NATIONAL_TABLES), ("provincial", PROVINCIAL_TABLES)):
        stamp = stamp_n if source == "national" else stamp_p
        for table in tables:
            frame = stored(copy, source, table)
            assert frame["updated_at"].max() <= stamp
    new_people = after.persons[~after.persons["person_id"].isin(before.persons["person_id"])]
    new_accounts = after.accounts[after.accounts["true_id"].isin(new_people["person_id"])]
    assert len(new_accounts) >= len(new_people)
    assert (new_accounts["updated_at"] == pd.Timestamp(now)).all()
    phones = after.persons.set_index("person_id")["phone"]
    national = stored(copy, "national", "volunteers")
    changed = [r for r in national["row"] if r["updated_at"] == stamp_n and r["albp0010"]]
    assert changed
    nat_person = after.accounts[after.accounts["stream"] == "volunteers"].set_index(
        ["source", "source_id"]
    )["true_id"]
    for row in changed:
        phone = phones[nat_person[("national", row["albp0029"])]]
        assert row["albp0010"] in (phone, phone[:3] + "****" + phone[-4:])
    # a second change set builds on the first
    again = apply_changeset(copy, seed=4, now=now + timedelta(hours=2))
    assert again["persons_added"] > 0
    assert_truth_matches_store(copy)
    with pytest.raises(ValueError):
        apply_changeset(copy, seed=5, now=now)


def test_touch_rows_restamps_only_the_updated_field(world, tmp_path):
    copy = tmp_path / "world"
    shutil.copytree(world, copy)
    before = stored(copy, "national", "volunteers").set_index("row_id")
    now = AS_OF + timedelta(days=2)
    ids = touch_rows(copy, "national", "volunteers", 5, np.random.default_rng(0), now=now)
    with sqlite3.connect(copy / "provincial.sqlite") as conn:
        provincial_ids = touch_rows(
            conn, "provincial", "service_logs", 3, random.Random(0), now=now
        )
    assert len(ids) == 5 and len(provincial_ids) == 3
    after = stored(copy, "national", "volunteers").set_index("row_id")
    for row_id in ids:
        new, old = after.loc[row_id, "row"], before.loc[row_id, "row"]
        assert (
            new["updated_at"]
            == now.strftime("%Y-%m-%dT%H:%M:%S+08:00")
            == after.loc[row_id, "updated_at"]
        )
        assert {k: v for k, v in new.items() if k != "updated_at"} == {
            k: v for k, v in old.items() if k != "updated_at"
        }
    untouched = after.index.difference(ids)
    assert (after.loc[untouched, "updated_at"] == before.loc[untouched, "updated_at"]).all()
