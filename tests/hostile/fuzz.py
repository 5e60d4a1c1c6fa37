"""Hostile rows for every stream of both sources, and the checks a skeptical engineer runs on
what the pipeline makes of them. Shared by the property test (tests/hostile/test_fuzz.py)
and the fuzz run of `bench/hostile.py` (the README's table).

A hostile row is a realistic row of its stream (tests/staging/rawpages.py) with some fields
replaced by what thousands of operators type: wrong types, missing and extra fields, huge
strings, control characters, emoji, lone surrogates, SQL metacharacters, numbers where
strings belong, absurd dates and durations, and ID numbers and phones in every form and in
any field; since session 6 also spreadsheet day counts, durations with their unit, two
mobiles in a box, invisible and control characters in keys, change times in ISO's basic form,
a key written twice in a row, full-width and Chinese dates, Chinese numerals, combining and
direction marks, NUL bytes, scientific notation, -0, NaN and Infinity, a BOM before the body.
The numbers planted are known, so every output can be searched for them by an
independent reader (`leaks`), not by the pipeline's own detector.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from pipelines.landing import page_table, write_page
from pipelines.schemas import all_stream_mappings
from pipelines.sources import STREAMS
from pipelines.sources.http import decode_body
from tests.reference import resident_id_check_char
from tests.staging import rawpages

FETCHED = rawpages.FETCHED
BASE_ID = rawpages.resident_id("52010219900307123")
BASE_PHONES = ("13812345678", "13900001111")  # the builders' own phones

ROW_BUILDERS: dict[tuple[str, str], Callable[[int], dict]] = {
    ("national", "volunteers"): lambda i: rawpages.national_volunteer(f"{i:04d}", BASE_ID),
    ("provincial", "volunteers"): lambda i: rawpages.provincial_volunteer(i, BASE_ID),
    ("national", "teams"): lambda i: rawpages.national_team(f"T{i:04d}"),
    ("provincial", "teams"): lambda i: rawpages.provincial_team(i),
    ("national", "projects"): lambda i: rawpages.national_project(f"P{i:04d}"),
    ("provincial", "activities"): lambda i: rawpages.provincial_activity(i),
    ("national", "service_records"): lambda i: rawpages.national_service(f"R{i:04d}"),
    ("provincial", "service_logs"): lambda i: rawpages.provincial_log(i),
    ("national", "evaluations"): lambda i: rawpages.national_evaluation(f"E{i:04d}"),
    ("provincial", "stations"): lambda i: rawpages.provincial_station(i),
    ("provincial", "redemptions"): lambda i: rawpages.provincial_redemption(i),
}
STREAM_KEYS = sorted(ROW_BUILDERS)


def an_id_number(rng: random.Random) -> str:
    first17 = f"52{rng.randint(0, 9999):04d}{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    return first17 + resident_id_check_char(first17)


def a_phone(rng: random.Random) -> str:
    return f"1{rng.choice('3456789')}{rng.randint(0, 999_999_999):09d}"


FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


def written_forms(number: str, rng: random.Random) -> str:
    """A number as somebody might write it."""
    forms = [
        lambda n: n,
        lambda n: " ".join([n[:3], n[3:7], n[7:]]),
        lambda n: ".".join([n[:3], n[3:7], n[7:]]),
        lambda n: f"({n[:3]}){n[3:]}",
        lambda n: "\u200b".join(n),
        lambda n: n.translate(FULL_WIDTH),
        lambda n: f"+86 {n}" if len(n) == 11 else n.lower(),
        lambda n: f"联系人{n}请回电",
    ]
    return rng.choice(forms)(number)


@dataclass
class Hostility:
    """One batch of hostile rows of one stream, and what was planted in it."""

    source: str
    stream: str
    rows: list
    planted: set[str] = field(default_factory=set)  # the numbers, as plain ASCII
    kinds: list[str] = field(default_factory=list)  # the kinds of hostility used


def hostile_value(rng: random.Random, planted: set[str]) -> tuple[str, object]:
    """(kind, value) of one hostile value."""
    number = an_id_number(rng) if rng.random() < 0.5 else a_phone(rng)
    phone = a_phone(rng)
    second_phone = a_phone(rng)
    person = {"name": "王小明", "mobile": a_phone(rng), "idNo": an_id_number(rng)}
    choices = [
        ("personal_number", lambda: (planted.add(number), written_forms(number, rng))[1]),
        ("nested_person", lambda: (planted.update({person["mobile"], person["idNo"]}), {"contact": person})[1]),
        ("null", lambda: None),
        ("list", lambda: ["张", "三", rng.randint(0, 9)]),
        ("object", lambda: {"k": [1, {"deep": "x"}]}),
        ("bool", lambda: rng.choice([True, False])),
        ("huge_number", lambda: rng.choice([1e30, -1e30, 10**30, 5.2e17, 2**63])),
        ("negative", lambda: rng.choice([-5, -30, -0.5])),
        ("number_for_text", lambda: rng.randint(0, 10**12)),
        ("huge_text", lambda: "长" * rng.randint(300, 3000)),
        ("control_characters", lambda: "a\u0000b\u0007c\u001bd"),
        ("emoji", lambda: "志愿者🎉👍🏽🇨🇳"),
        ("lone_surrogate", lambda: rng.choice(["王\ud800芳", "\udcff", "a\udbff"])),
        ("sql", lambda: rng.choice(["'; DROP TABLE dim_volunteer; --", '" OR 1=1 --', "\\'\\\\", "%_%"])),
        ("absurd_date", lambda: rng.choice(["0001-01-01", "9999-12-31 23:59:59", "2026-02-30",
                                            "2026-06-01T10:00:00+99:99", "昨天", "2999-01-01"])),
        ("absurd_duration", lambda: rng.choice([-30, 10**9, "abc", "NaN", "Infinity", "1e30"])),
        ("empty", lambda: rng.choice(["", "   ", "\u3000"])),
        # session 5: a tool's zero date, a mobile with an extension or written as a float, a
        # spreadsheet's grouped thousands, a Java-written time
        ("placeholder_date", lambda: rng.choice(["1900-01-01", "1970-01-01", "1899-12-30", "0001-01-01",
                                                 "1970-01-01T08:00:00+08:00", "1970-01-01 00:00:00", "19000101"])),
        ("phone_with_extension", lambda: (planted.add(phone), phone + rng.choice(
            ["转123", "-8001", " ext 12", "分机 66", "#9", "（转123）"]))[1]),
        ("phone_as_float", lambda: (planted.add(phone), rng.choice([float(phone), f"{phone}.0"]))[1]),
        ("grouped_thousands", lambda: rng.choice(["1,200", "12,345", "1,5", "１，２００"])),
        ("fractional_time", lambda: rng.choice(["2026-06-01 10:00:00.0", "2026-06-01T10:00:00+08:00"])),
        # session 6: a spreadsheet's day count, a duration with its unit, two mobiles in one
        # box, and what the review found the fuzzer never tried
        ("serial_date", lambda: rng.choice(["45356", 45356, "45356.5", "2024", "99999", "４５３５６"])),
        ("duration_with_unit", lambda: rng.choice(["90分钟", "1.5小时", "2h", "3 hours", "半小时", "一个半小时",
                                                   "约2小时", "2-3小时", "1:30", "两小时", "2天"])),
        ("two_mobiles", lambda: (planted.update({phone, second_phone}), rng.choice(
            [f"{phone}/{second_phone}", f"{phone}、{second_phone}", f"{phone} {second_phone}", phone + second_phone]))[1]),
        ("fullwidth_date", lambda: rng.choice(["２０２６－０６－０１", "２０２６/０６/０１", "２０２６０６０１"])),
        ("chinese_date", lambda: rng.choice(["2026年6月1日", "2026年06月01日", "二〇二六年六月一日", "6月1日"])),
        ("chinese_numeral", lambda: rng.choice(["两", "十五", "一百二十", "三个半小时", "九十分钟"])),
        ("combining_marks", lambda: rng.choice(["王\u0301芳", "张\u0336三\u0336", "Zoe\u0301", "志愿\u20dd者"])),
        ("rtl_marks", lambda: rng.choice(["\u202e王芳", "王\u200f芳\u200e", "مرحبا", "\u2067שלום\u2069"])),
        ("nul_byte", lambda: rng.choice(["正常\x00", "\x00", "90\x00", "2026-06-01\x00", "V\x000001"])),
        ("scientific_number", lambda: rng.choice(["9e1", "1.5E2", 1e2, "6e-1", "1e400"])),
        ("negative_zero", lambda: rng.choice([-0.0, "-0", "-0.0", "０"])),
        ("non_finite_number", lambda: rng.choice([float("nan"), float("inf"), float("-inf")])),
        ("bom", lambda: rng.choice(["\ufeff2026-06-01", "\ufeff王芳", "\ufeff90", "\ufeff"])),
    ]
    kind, make = rng.choice(choices)
    return kind, make()


def older_copy(row: dict, cursor_field: str) -> dict:
    """The row as it was an hour before its change time (as sent where that is no time)."""
    copy = dict(row)
    stamp = row.get(cursor_field)
    if isinstance(stamp, str):
        try:
            moment = datetime.fromisoformat(stamp) - timedelta(hours=1)
        except (ValueError, OverflowError):  # no time, or 0001-01-01: sent again as it is
            return copy
        copy[cursor_field] = moment.isoformat() if moment.tzinfo else moment.strftime("%Y-%m-%d %H:%M:%S")
    return copy


def hostile_batch(source: str, stream: str, rows: int, seed: int) -> Hostility:
    """`rows` rows of a stream, most of them hostile in one to three fields, some not even
    objects, some without fields, some with fields nobody asked for."""
    rng = random.Random(seed)
    batch = Hostility(source, stream, [], planted={BASE_ID, *BASE_PHONES})
    for index in range(1, rows + 1):
        row = ROW_BUILDERS[(source, stream)](index)
        previous = batch.rows[-1] if batch.rows else None
        if isinstance(previous, dict) and rng.random() < 0.05:
            # the same id again in the page: an older version after the newer, or the same twice
            batch.rows.append(older_copy(previous, STREAMS[source][stream].cursor_field))
            batch.kinds.append("repeated_id")
            continue
        roll = rng.random()
        if roll < 0.05:
            kind, value = hostile_value(rng, batch.planted)
            batch.rows.append(value if not isinstance(value, dict) else [value])  # not an object
            batch.kinds.append("not_an_object")
            continue
        for _ in range(rng.randint(1, 3)):
            field_name = rng.choice(list(row))
            if rng.random() < 0.15:
                row.pop(field_name, None)
                batch.kinds.append("missing_field")
            else:
                kind, row[field_name] = hostile_value(rng, batch.planted)
                batch.kinds.append(kind)
        if rng.random() < 0.2:
            kind, row[f"extra_{rng.randint(0, 99)}"] = hostile_value(rng, batch.planted)
            batch.kinds.append("extra_field")
        key_field = key_of(source, stream)
        if key_field in row and isinstance(row[key_field], (str, int)) and rng.random() < 0.05:
            row[key_field] = rng.choice(["\u200b", "\ufeff", "\u2060", "\u200e", "\x00"]).join(["", str(row[key_field]), ""])
            batch.kinds.append("invisible_in_key")
        cursor = STREAMS[source][stream].cursor_field
        if isinstance(row.get(cursor), str) and rng.random() < 0.05:
            row[cursor] = compact_iso(row[cursor])
            batch.kinds.append("compact_change_time")
        if rng.random() < 0.03:
            name = rng.choice(list(row))
            kind, row[DUPLICATE_PREFIX + name] = hostile_value(rng, batch.planted)
            batch.kinds.append("duplicate_json_key")
        if source == "provincial" and isinstance(row.get("id"), int) and rng.random() < 0.1:
            row["id"] = rng.choice([float(row["id"]), f"{row['id']}.0", row["id"] + 0.5])
            batch.kinds.append("float_id")
        batch.rows.append(row)
    return batch


# A field written twice in one object: the row holds the second under this prefix, which
# `body_of` takes off, so the body carries the key twice (the last one is the value read).
DUPLICATE_PREFIX = "__again__"


def key_of(source: str, stream: str) -> str:
    return next(m.source_id_field for m in all_stream_mappings() if (m.source, m.stream) == (source, stream))


def compact_iso(stamp: str) -> str:
    """A change time in ISO 8601's basic form (20260601T100000+0800): the same instant."""
    return stamp.replace(" ", "T").replace("-", "").replace(":", "")


def body_of(batch: Hostility) -> bytes:
    """The batch as a page body of its source, escaped the way a JSON server writes
    non-ASCII text (`\\ud800` for a lone surrogate, which strict parsers reject); NaN and
    Infinity as Python writes them (RFC 8259 has no such numbers); some bodies after a UTF-8
    byte order mark, as some gateways send them."""
    if batch.source == "national":
        payload = {"items": batch.rows, "page": 1, "page_size": len(batch.rows), "total": len(batch.rows)}
    else:
        payload = {"code": 0, "msg": "ok", "data": {"list": batch.rows, "has_more": False, "next_cursor": None}}
    body = json.dumps(payload, ensure_ascii=True).replace(f'"{DUPLICATE_PREFIX}', '"').encode("ascii")
    return b"\xef\xbb\xbf" + body if len(batch.rows) % 3 == 0 else body


def land_batch(batch: Hostility, data_dir: Path) -> int:
    """Decode the body as the clients do and land it as the landing does; rows landed."""
    decoded = decode_body(body_of(batch))
    rows = decoded["items"] if batch.source == "national" else decoded["data"]["list"]
    table = page_table(STREAMS[batch.source][batch.stream], rows, "fuzz-sync", FETCHED, 1)
    write_page(data_dir / "raw" / batch.source / batch.stream / "fuzz-sync", 1, table)
    return table.num_rows


def table_of(source: str, stream: str) -> str:
    return next(m.table for m in all_stream_mappings() if (m.source, m.stream) == (source, stream))


# A number as people write it: digits (full-width too) with spaces, dots, dashes, brackets,
# slashes or invisible characters between them. An independent reader of the outputs.
_NUMBER_RUN = re.compile(
    r"[0-9０-９XxＸｘ](?:[\s\-.·_()（）/\\\u200b-\u200f\u2060\ufeff+]{0,3}[0-9０-９XxＸｘ])*"
)
_PLAIN = str.maketrans("０１２３４５６７８９ＸｘXx", "0123456789XXXX")


def leaks(texts: list[str], planted: set[str]) -> set[str]:
    """The planted numbers (plain ASCII) that any text shows whole, in whatever form."""
    found = set()
    for text in texts:
        for run in _NUMBER_RUN.findall(text):
            plain = re.sub(r"[^0-9X]", "", run.translate(_PLAIN))
            found |= {number for number in planted if number.upper() in plain}
    return found


def output_texts(data_dir: Path) -> list[str]:
    """Every cell of every staged and quarantine file, as text."""
    texts = []
    for path in sorted((data_dir / "staged").rglob("*.parquet")):
        frame = pq.read_table(path).to_pandas()
        texts += [str(value) for value in frame.astype(str).to_numpy().ravel()]
    return texts


def planted_plain(planted: set[str]) -> set[str]:
    return {number.upper() for number in planted}


def staged_rows(data_dir: Path, table: str) -> pd.DataFrame:
    return pq.read_table(data_dir / "staged" / f"{table}.parquet").to_pandas()
