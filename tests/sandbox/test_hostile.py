"""Hostile rows (`generate_world(..., hostile=True)`): the normal rows are those of the world
without them, every hostile row is what the truth says, and a raw HTTP walk of every stream
of both servers returns every row exactly once, byte for byte as stored, with `total` right.

The walks parse pages with Python's lenient json (`strict=False`, bytes that are not UTF-8
kept as surrogateescape), which reads what strict parsers refuse, and cut each row out of
the page as the bytes that came over the wire.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import sqlite3
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pandas as pd
import pytest
from stdnum.cn import ric

from sandbox import SandboxServers, generate_world, load_truth
from sandbox.__main__ import main
from sandbox.changes import apply_changeset, touch_rows
from sandbox.hostile import KINDS, QUARANTINE, STAGE_FLAGGED, hostile_plan
from sandbox.national import ROUTES as NATIONAL_ROUTES
from sandbox.provincial import ROUTES as PROVINCIAL_ROUTES
from sandbox.truth import read_world
from tests.sandbox.test_servers import NationalClient, ProvincialClient

STREAMS = {
    "national": tuple(NATIONAL_ROUTES.values()),
    "provincial": tuple(PROVINCIAL_ROUTES.values()),
}
TIME_FIELD = {"national": "updated_at", "provincial": "updateTime"}
NATIONAL_OPENING = b'{"items":['
PROVINCIAL_OPENING = b'{"code":0,"msg":"success","data":{"list":['
LENIENT = json.JSONDecoder(strict=False)
# The kinds whose body a strict parser (orjson) refuses, and only those.
STRICTLY_INVALID = {"lone_surrogate", "invalid_utf8", "raw_control_chars", "hours_nan_literal"}
REMOVES_ITS_FIELD = {"cursor_missing", "key_missing", "row_id_missing"}
SOURCE_KEYS = {
    ("national", "volunteers"): "albp0029",
    ("national", "teams"): "albe0001",
    ("national", "projects"): "albx0001",
}
# Fields of hostile rows that point at other rows, and the stream they point into.
REFERENCES = {
    ("national", "albx0175"): "volunteers",
    ("national", "albx0001"): "projects",
    ("national", "albe0001"): "teams",
    ("provincial", "userId"): "volunteers",
    ("provincial", "teamId"): "teams",
    ("provincial", "activityId"): "activities",
}


@pytest.fixture(scope="module")
def hostile_world(world_template, tmp_path_factory) -> Path:
    """The session's small world again, with the same persons, seed and as_of, plus hostility."""
    clean = read_world(world_template)
    return generate_world(
        tmp_path_factory.mktemp("hostile") / "world",
        persons=clean["persons"],
        seed=clean["seed"],
        as_of=datetime.fromisoformat(clean["as_of"]),
        hostile=True,
    )


@pytest.fixture(scope="module")
def hostile(hostile_world):
    return load_truth(hostile_world).hostile_rows


# --- what is stored ------------------------------------------------------------------------


def stored(world: Path, source: str, table: str, region: str | None = None) -> dict:
    """{id as text: (updated_at, region, body bytes, storage class)} as the file holds them."""
    with sqlite3.connect(world / f"{source}.sqlite") as connection:
        rows = connection.execute(
            f"SELECT id, updated_at, region, CAST(body AS BLOB), typeof(body) FROM {table}"
            + (" WHERE region GLOB ?" if region else ""),
            (f"{region}*",) if region else (),
        ).fetchall()
    return {str(row[0]): row[1:] for row in rows}


def bodies(world: Path, source: str, table: str, region: str | None = None) -> dict[str, bytes]:
    return {key: row[2] for key, row in stored(world, source, table, region).items()}


def hostile_ids(hostile, source: str, table: str) -> set[str]:
    rows = hostile[(hostile["source"] == source) & (hostile["stream"] == table)]
    return set(rows["row_id"])


def remaining(world: Path, table: str, key: tuple | None) -> int:
    """National rows of region 52 after a key, counted in the file."""
    sql = f"SELECT count(*) FROM {table} WHERE region GLOB '52*'"
    with sqlite3.connect(world / "national.sqlite") as connection:
        if key is None:
            return connection.execute(sql).fetchone()[0]
        return connection.execute(sql + " AND (updated_at, id) > (?, ?)", key).fetchone()[0]


def lenient(body: bytes):
    return LENIENT.decode(body.decode("utf-8", "surrogateescape"))


# --- raw walks -----------------------------------------------------------------------------


def split_page(raw: bytes, opening: bytes) -> tuple[list[bytes], list, dict]:
    """A page's rows as the bytes sent, as a lenient parser reads them, and the whole page."""
    assert raw.startswith(opening), raw[:80]
    text = raw.decode("utf-8", "surrogateescape")
    position, rows, values = len(opening), [], []  # the opening is ASCII: bytes = characters
    while text[position] != "]":
        value, end = LENIENT.raw_decode(text, position)
        rows.append(text[position:end].encode("utf-8", "surrogateescape"))
        values.append(value)
        position = end + (text[end] == ",")
    return rows, values, LENIENT.decode(text)


# The stamp as the national system writes it (a row's own text in another form, ISO's
# basic 20260601T100000+0800, is no key this walker feeds back: the client's job is to
# rewrite it, `national.client.updated_since_text`; here it is skipped over like a row
# without a key).
STORED_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00")


def keyset_key(value) -> tuple[str, str] | None:
    """The (updated_at, id) a national row offers for the next page, if it offers one."""
    if isinstance(value, dict):
        key = value.get("updated_at"), value.get("id")
        if all(isinstance(part, str) for part in key) and STORED_STAMP.fullmatch(key[0]):
            return key
    return None


def national_walk(client: NationalClient, world: Path, path: str, table: str, page_size: int):
    """Every row of a stream by keyset, as bytes; and how many pages had to skip.

    A row whose key cannot be read cannot be fed back as `updated_since`/`after_id`: the
    next page starts after the last row whose key can, skipping with the offset
    (`page=2`, `page_size=n`) the n rows already landed after it. Each page's `total` is
    checked against the file.
    """
    landed: list[bytes] = []
    key, skip, skipped_pages = None, 0, 0
    while True:
        params = {"region": "52", "page_size": skip or page_size}
        if skip:
            params["page"], skipped_pages = 2, skipped_pages + 1
        if key:
            params.update(updated_since=key[0], after_id=key[1])
        response = client.raw_get(path, params)
        assert response.status_code == 200, response.content[:200]
        rows, values, page = split_page(response.content, NATIONAL_OPENING)
        assert page["total"] == remaining(world, table, key)
        landed += rows
        if len(rows) < params["page_size"]:
            return landed, skipped_pages
        keyed = [i for i, value in enumerate(values) if keyset_key(value)]
        if keyed:
            key, skip = keyset_key(values[keyed[-1]]), len(values) - 1 - keyed[-1]
        else:
            skip += len(values)


def provincial_walk(client: ProvincialClient, path: str, limit: int) -> list[bytes]:
    """Every row of a stream by cursor (opaque: no row needs to be readable), as bytes."""
    landed: list[bytes] = []
    params: dict = {"limit": limit}
    while True:
        response = client.raw_get(path, params)
        rows, _values, envelope = split_page(response.content, PROVINCIAL_OPENING)
        landed += rows
        if not envelope["data"]["has_more"]:
            return landed
        params = {"limit": limit, "cursor": envelope["data"]["next_cursor"]}


def test_raw_walks_return_every_row_once_byte_for_byte(hostile_world, hostile, world_template):
    skipped = 0
    with SandboxServers(hostile_world) as servers:
        national, provincial = NationalClient(servers), ProvincialClient(servers)
        national._ensure_token()
        walks = {("national", table): national_walk(national, hostile_world, path, table, 7)
                 for path, table in NATIONAL_ROUTES.items()}  # fmt: skip
        skipped = sum(pages for _landed, pages in walks.values())
        walks.update({("provincial", table): (provincial_walk(provincial, path, 7), 0)
                      for path, table in PROVINCIAL_ROUTES.items()})  # fmt: skip
    for (source, table), (landed, _pages) in walks.items():
        region = "52" if source == "national" else None
        sent = bodies(hostile_world, source, table, region)
        assert Counter(landed) == Counter(sent.values()), (source, table)  # each exactly once
        planted = hostile_ids(hostile, source, table)
        assert planted and planted <= set(sent), (source, table)
        normal = Counter(landed) - Counter(sent[i] for i in planted)
        assert normal == Counter(bodies(world_template, source, table, region).values())
    assert skipped > 0, "no page ended on a row without a readable key: the trap was not met"


def test_pages_carry_what_strict_parsers_refuse(hostile_world):
    with SandboxServers(hostile_world) as servers:
        client = ProvincialClient(servers)
        raw = client.raw_get("/open/v2/volunteers", {"limit": 500}).content
    with pytest.raises(ValueError):
        orjson.loads(raw)
    with pytest.raises(ValueError):
        json.loads(raw)  # not UTF-8, and raw control characters
    rows, _values, _page = split_page(raw, PROVINCIAL_OPENING)
    assert any(b"\\ud800" in row for row in rows) and any(b"\x00" in row for row in rows)


# --- the world around them -----------------------------------------------------------------


def test_normal_rows_and_truth_are_those_of_the_world_without_hostile_rows(
    hostile_world, hostile, world_template
):
    for source, tables in STREAMS.items():
        for table in tables:
            clean = stored(world_template, source, table)
            rows = stored(hostile_world, source, table)
            planted = hostile_ids(hostile, source, table)
            assert not planted & set(clean)
            assert {key: row for key, row in rows.items() if key not in planted} == clean
            assert {rows[key][3] for key in planted} == {"blob"}  # bytes, as planted
    for name in ("accounts", "persons", "services", "orgs", "projects", "invalid_rows"):
        path = Path("truth") / f"{name}.parquet"
        assert (hostile_world / path).read_bytes() == (world_template / path).read_bytes(), name
    with_hostile, without = read_world(hostile_world), read_world(world_template)
    summary = with_hostile.pop("hostile")
    assert summary["rows"] == len(hostile)
    for source, counts in summary["streams"].items():
        for table, n in counts.items():
            with_hostile["row_counts"][source][table] -= n
    assert with_hostile == without


def test_a_world_without_hostile_rows_has_no_trace_of_them(world_template):
    assert not (world_template / "truth" / "hostile_rows.parquet").exists()
    assert "hostile" not in read_world(world_template)
    empty = load_truth(world_template).hostile_rows
    assert empty.empty and "expected" in empty.columns


def test_every_stream_gets_every_kind_that_fits_it(hostile):
    planted = set(zip(hostile["source"], hostile["stream"], hostile["kind"]))
    assert planted == {(spec.source, spec.stream, kind.name) for spec, kind in hostile_plan()}
    assert set(hostile["kind"]) == {kind.name for kind in KINDS}
    per_stream = Counter(zip(hostile["source"], hostile["stream"]))
    assert set(per_stream) == {(s, t) for s, tables in STREAMS.items() for t in tables}
    assert min(per_stream.values()) >= 10 and len(hostile) <= 400
    assert set(hostile["expected"]) == {QUARANTINE, STAGE_FLAGGED}
    assert not hostile.duplicated(["source", "stream", "row_id"]).any()


def digits(text: str) -> str:
    """The digits of a text, full-width ones folded, everything else (spaces, U+200B) dropped."""
    folded = "".join(chr(ord(c) - 0xFEE0) if "０" <= c <= "９" else c for c in text)
    return re.sub(r"\D", "", folded)


def test_each_hostile_row_is_what_the_truth_says(hostile_world, hostile):
    for source, tables in STREAMS.items():
        for table in tables:
            rows = stored(hostile_world, source, table)
            planted = hostile[(hostile["source"] == source) & (hostile["stream"] == table)]
            for truth in planted.itertuples():
                body = rows[truth.row_id][2]
                assert_row_is(truth, body, source)
                assert rows[truth.row_id][0] == truth.updated_at.strftime(
                    "%Y-%m-%dT%H:%M:%S+08:00" if source == "national" else "%Y-%m-%d %H:%M:%S"
                )


def assert_row_is(truth, body: bytes, source: str) -> None:
    context = (truth.source, truth.stream, truth.kind)
    refused = False
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        refused = True
    assert refused == (truth.kind in STRICTLY_INVALID), context
    value = lenient(body)
    key = SOURCE_KEYS.get((source, truth.stream), "id")
    if pd.isna(truth.source_id):
        assert not isinstance(value, dict) or key not in value, context
    else:
        assert str(value[key]) == truth.source_id, context
    if isinstance(value, dict) and truth.kind not in REMOVES_ITS_FIELD:
        assert truth.field in value, context
    if not pd.isna(truth.planted):
        assert truth.planted in truth.personal
        text = body.decode("utf-8", "replace")
        assert digits(truth.planted) in digits(text), context
        if len(truth.planted) == 18:  # a resident ID number: check character and birth date
            assert ric.is_valid(truth.planted), truth.planted
        else:  # a mobile, or a Guiyang fixed line
            assert re.fullmatch(r"1[3-9]\d{9}|0851[2-9]\d{7}", truth.planted), truth.planted


def test_hostile_rows_sit_among_the_normal_rows_and_point_only_at_hostile_rows(
    hostile_world, hostile, world_template
):
    as_of = datetime.fromisoformat(read_world(world_template)["as_of"]).replace(tzinfo=None)
    assert (hostile["updated_at"] <= as_of).all()
    shared = 0
    for source, tables in STREAMS.items():
        numbers = {t: set(hostile[(hostile["source"] == source) & (hostile["stream"] == t)]
                          ["source_id"].dropna()) for t in tables}  # fmt: skip
        for table in tables:
            rows = stored(hostile_world, source, table)
            planted = hostile_ids(hostile, source, table)
            normal_stamps = {row[0] for key, row in rows.items() if key not in planted}
            shared += sum(rows[key][0] in normal_stamps for key in planted)
            spoiled = hostile[(hostile["source"] == source) & (hostile["stream"] == table)]
            for key, spoiled_field in zip(spoiled["row_id"], spoiled["field"]):
                value = lenient(rows[key][2])
                for (side, field), target in REFERENCES.items():
                    if side == source and isinstance(value, dict) and field in value:
                        if field != spoiled_field:
                            assert str(value[field]) in numbers[target], (table, field, value)
    assert shared > 0, "no hostile row shares its second with a normal row"
    national_ids = list(hostile["row_id"][hostile["source"] == "national"])
    assert all(len(i) == 16 for i in national_ids)
    assert {i[:2] for i in national_ids} == {"09", "90"}  # before and after normal ids


# --- touching them -------------------------------------------------------------------------


def assert_restamped(before: dict, after: dict, planted: set[str], field: str) -> int:
    """Touched hostile rows changed in their stamp only (or not at all without a string stamp)."""
    touched = 0
    for key in planted:
        old_stamp, _, old_body, old_class = before[key]
        new_stamp, _, new_body, new_class = after[key]
        if new_stamp == old_stamp:
            continue
        touched += 1
        # the first "field":"…" whatever it holds (a stamp in ISO's basic form too)
        expected = re.sub(f'"{field}":"[^"]*"'.encode(), f'"{field}":"{new_stamp}"'.encode(), old_body, count=1)
        assert new_body == expected and new_class == old_class == "blob", (key, new_body)
    return touched


def test_touching_hostile_rows_changes_only_their_stamp(hostile_world, hostile, tmp_path):
    world = tmp_path / "world"
    shutil.copytree(hostile_world, world)
    touched = 0
    with SandboxServers(world) as servers:
        for source, tables in STREAMS.items():
            for table in tables:
                planted, field = hostile_ids(hostile, source, table), TIME_FIELD[source]
                before = stored(world, source, table)
                servers.touch(source, table, len(before))  # the servers' own writes
                middle = stored(world, source, table)
                touched += assert_restamped(before, middle, planted, field)
                touch_rows(world, source, table, len(before), random.Random(1))  # sandbox.changes
                touched += assert_restamped(middle, stored(world, source, table), planted, field)
    assert touched > 100


def test_a_change_set_leaves_hostile_rows_alone_and_does_to_normal_rows_what_it_does_without(
    hostile_world, hostile, world_template, tmp_path
):
    worlds = {}
    for name, folder in (("hostile", hostile_world), ("clean", world_template)):
        worlds[name] = tmp_path / name
        shutil.copytree(folder, worlds[name])
        as_of = datetime.fromisoformat(read_world(folder)["as_of"])
        apply_changeset(worlds[name], seed=4, now=as_of + timedelta(days=1))
    for source, tables in STREAMS.items():
        for table in tables:
            planted = hostile_ids(hostile, source, table)
            before = stored(hostile_world, source, table)
            after = stored(worlds["hostile"], source, table)
            assert {key: after[key] for key in planted} == {key: before[key] for key in planted}
            normal = {key: row for key, row in after.items() if key not in planted}
            assert normal == stored(worlds["clean"], source, table)
    truth = load_truth(worlds["hostile"])
    assert truth.hostile_rows.equals(hostile) and "hostile" in truth.world


# --- command line --------------------------------------------------------------------------


def test_cli_generates_hostile_worlds_and_serve_refuses_a_clean_one(
    tmp_path, world_template, capsys
):
    assert main(["generate", "--persons", "30", "--seed", "3", "--out", str(tmp_path / "w"),
                 "--hostile"]) == 0  # fmt: skip
    assert len(load_truth(tmp_path / "w").hostile_rows) > 0
    assert main(["serve", "--world", str(world_template), "--hostile"]) == 2
    assert "--hostile" in capsys.readouterr().err
