"""Hostile rows: the garbage county operators type, planted among a world's normal rows.

`generate_world(..., hostile=True)` (`python -m sandbox generate --hostile`) adds to every
stream of both systems about 25-35 rows, each spoiled one way (a *kind*, `KINDS`; the table
is in sandbox/README.md): a personal number in a region or name field, phones and ID
numbers with separators, zero-width spaces or full-width digits, a 300-character paste,
absurd star levels, a lone surrogate, bytes that are not UTF-8, control characters, emoji,
the cursor field missing, null or a list, the wrong JSON type, an ID number sent as a JSON
number, impossible dates and durations, SQL metacharacters, unknown fields and a nested
person, personal numbers in free text, rows that are not objects and rows without their id.

How they are stored, and why:
- as rows like any other (id, updated_at, region, body) in the same tables, so paging,
  `total`, keysets and cursors count and order them as rows; each stamp is a normal row's
  stamp of the same stream (a third of them that very second, the others up to a week
  earlier), so they sit among the normal rows;
- the body as bytes (a BLOB): the servers splice bodies into pages unparsed, so a `\\ud800`
  escape, bytes that are not UTF-8 or a raw NUL reach the client exactly as planted;
- with ids no normal row can get (national row ids `9000…`/`0900…`, numbers `529…`,
  `T529…`, `X529…`; provincial ids from 900,000,000), pointing only at other hostile rows
  (the `extra_fields` row of the stream they point into), never at a normal one, so every
  normal entity comes out of a sync as it does from the same world without them;
- drawn last, from their own random stream: the normal rows, their ids and the truth are
  byte for byte those of the world generated without them.

Personal values are fresh: ID numbers of people aged 80-95 (the generator's persons are
16-75) with a valid GB 11643 check character, mobiles on prefixes the generator never uses.

`truth/hostile_rows.parquet` says what each row is and what a careful pipeline must do with
it (`expected_outcome`).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from sandbox.clock import DAY, HOUR, Clock
from sandbox.dirt import fullwidth
from sandbox.geo import Geography, area_codes
from sandbox.idnumbers import ric_body, ric_check_chars
from sandbox.people import VOLUNTEER_NUMBER, random_names
from sandbox.projects import PROJECT_NUMBER
from sandbox.teams import TEAM_NUMBER
from sandbox.truth import write_whole
from sandbox.world_db import (
    DELETED_FIELD,
    NATIONAL,
    PROVINCIAL,
    UPDATED_FIELD,
    Built,
    Rows,
    beijing_datetime,
    beijing_seconds,
    source_time,
)

QUARANTINE = "quarantine"
STAGE_FLAGGED = "stage_flagged"
ZERO_WIDTH_SPACE = "\u200b"
PHONE_PREFIXES = ("153", "193", "195")  # valid mobile prefixes sandbox/names.py does not use
# National row ids: 16 digits like the normal ones (text order is numeric order); 9000… sort
# after every normal id of the same second, 0900… before them.
NATIONAL_ROW_BASES = (9 * 10**15, 9 * 10**14)
# The national numbers the source maps use, past any counter the generator reaches.
NATIONAL_NUMBERS = {
    "albp0029": (VOLUNTEER_NUMBER, 9 * 10**11),
    "albe0001": (TEAM_NUMBER, 9 * 10**7),
    "albx0001": (PROJECT_NUMBER, 9 * 10**9),
}
PROVINCIAL_ID_BASE = 900_000_000
PASTE_LENGTH = 300
PASTE_FILLER = "备注：本人自愿参加志愿服务，服从组织安排，遵守活动纪律，如有变动及时告知。"


# --- the streams ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamSpec:
    """Where each kind of garbage goes in one stream (None: the stream has no such field)."""

    source: str
    stream: str
    entity: str
    text: str  # the main string field (the wrong-JSON-type kinds)
    needs: tuple[str, ...]  # fields the canonical model cannot do without, besides key and cursor
    key: str = "id"  # the field the source maps use as the row's id
    name: str | None = None
    region: str | None = None
    date: str | None = None
    date_style: str = "date"  # "date", "iso" (national timestamp), "beijing" (provincial)
    future: bool = False  # the date is judged by the future_date rule
    phone: str | None = None
    cert: str | None = None
    star: str | None = None
    minutes: str | None = None
    hours: str | None = None
    free_text: str | None = None

    @property
    def cursor(self) -> str:
        return UPDATED_FIELD[self.source]

    @property
    def row_id(self) -> str | None:
        """The internal row id where it is not the key (national volunteers, teams, projects)."""
        return "id" if self.key != "id" else None

    @property
    def required(self) -> frozenset[str]:
        return frozenset((self.key, self.cursor, *self.needs))


# Required fields follow schemas/canonical.yaml (`required`) through schemas/mapping/*.yaml,
# plus the hard dates of pipelines' rules (a service's start and end, a redemption's time).
SPECS = (
    StreamSpec(NATIONAL, "volunteers", "volunteer", "albp0003",
               ("albp0003", "albp0020"), key="albp0029", name="albp0003",
               region="albp0020", date="albp0034", future=True, phone="albp0010",
               cert="albp0005", star="albp0026"),
    StreamSpec(NATIONAL, "teams", "organization", "albe0002", ("albe0002", "albe0012"),
               key="albe0001", name="albe0002", region="albe0012", date="albe0046", future=True,
               phone="albe0019"),
    StreamSpec(NATIONAL, "projects", "project", "albx0002", ("albx0002", "albx0021"),
               key="albx0001", name="albx0002", region="albx0021", date="albx0031", future=True,
               free_text="albx0040"),
    StreamSpec(NATIONAL, "service_records", "service", "albx0175",
               ("albx0175", "albx0181", "albx0182", "albx0172", "albx0174"), date="albx0181",
               date_style="iso", future=True, hours="albx0172"),
    StreamSpec(NATIONAL, "evaluations", "evaluation", "evaluator",
               ("albe0001", "evaluator", "score", "period")),
    StreamSpec(PROVINCIAL, "teams", "organization", "teamName", ("teamName", "areaCode"),
               name="teamName", region="areaCode", date="foundDate", future=True,
               phone="leaderMobile"),
    StreamSpec(PROVINCIAL, "volunteers", "volunteer", "realName", ("realName", "areaCode"),
               name="realName", region="areaCode", date="birthday", future=True, phone="mobile",
               cert="certNo", star="starLevel", free_text="skills"),
    StreamSpec(PROVINCIAL, "activities", "project", "title",
               ("title", "areaCode", "startTime", "endTime"), name="title", region="areaCode",
               date="startTime", date_style="beijing", free_text="brandProject"),
    StreamSpec(PROVINCIAL, "service_logs", "service", "status",
               ("userId", "serviceDate", "durationMinutes", "status"), date="serviceDate",
               future=True, minutes="durationMinutes"),
    StreamSpec(PROVINCIAL, "stations", "station", "name", ("name", "areaCode"), name="name",
               region="areaCode", date="openedOn", future=True),
    StreamSpec(PROVINCIAL, "redemptions", "redemption", "purpose",
               ("userId", "minutes", "redeemedAt"), date="redeemedAt", date_style="beijing",
               future=True, minutes="minutes", free_text="purpose"),
)  # fmt: skip


# --- bodies --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A JSON fragment spliced into a body byte for byte (what json.dumps would not write)."""

    text: bytes


def raw_string(*parts: str | bytes) -> Raw:
    """A JSON string literal of text parts (escaped as usual) and byte parts (as they are)."""
    inner = b"".join(p if isinstance(p, bytes) else encode(p)[1:-1] for p in parts)
    return Raw(b'"' + inner + b'"')


def encode(value: Any) -> bytes:
    """Compact JSON as the generator writes it (UTF-8, no ASCII escaping), `Raw` spliced in."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        members = (encode(str(k)) + b":" + encode(v) for k, v in value.items())
        return b"{" + b",".join(members) + b"}"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --- fresh personal values -----------------------------------------------------------------


class Context:
    """The hostile rows' random stream and the fresh names, numbers, places they draw."""

    def __init__(self, rng: np.random.Generator, clock: Clock, geo: Geography) -> None:
        self.rng, self.clock, self.geo = rng, clock, geo
        self._issued: set[str] = set()

    def id_number(self, digits_only: bool = False) -> str:
        """A valid resident ID number of someone aged 80-95, never issued before."""
        while True:
            born = self.clock.as_of // DAY - int(self.rng.integers(80 * 365, 95 * 365))
            day = str(np.datetime64(born, "D"))
            codes = self.geo.birth_codes_for_year(int(day[:4]))
            county = int(codes[self.rng.integers(0, len(codes))])
            sequence = int(self.rng.integers(1, 1000))
            body = ric_body(np.array([county]), np.array([int(day.replace("-", ""))]),
                            np.array([sequence]))  # fmt: skip
            number = f"{body[0]}{ric_check_chars(body)[0]}"
            if number not in self._issued and not (digits_only and number.endswith("X")):
                self._issued.add(number)
                return number

    def phone(self) -> str:
        prefix = PHONE_PREFIXES[int(self.rng.integers(0, len(PHONE_PREFIXES)))]
        return f"{prefix}{int(self.rng.integers(0, 10**8)):08d}"

    def landline(self) -> str:
        """A Guiyang fixed line (0851 and 8 digits), its digits together."""
        return f"0851{int(self.rng.integers(2, 10))}{int(self.rng.integers(0, 10**7)):07d}"

    def name(self) -> str:
        return str(random_names(self.rng, 1)[0][0])

    def county(self) -> str:
        codes = self.geo.county_codes
        return str(codes[self.rng.integers(0, len(codes))])

    def area(self, county: str) -> str:
        return str(area_codes(self.rng, np.array([county]), np.array([True]))[0])

    def county_name(self, county: str) -> str:
        return self.geo.county(county).name

    def earlier(self, seconds: int, most_days: int) -> int:
        """An instant 1 to `most_days` days before `seconds`."""
        return seconds - int(self.rng.integers(DAY, most_days * DAY))


# --- the kinds -----------------------------------------------------------------------------


@dataclass
class Spoil:
    """What a kind did: the clear personal value it planted, others it wrote, a new row."""

    planted: str | None = None
    extras: tuple[str, ...] = ()
    whole: bool = False  # `body` replaces the row (a row that is not a JSON object)
    body: Any = None


Make = Callable[[Context, StreamSpec, dict, str], Spoil]


@dataclass(frozen=True)
class Kind:
    """One way of spoiling a row, planted once in every stream that has the field."""

    name: str
    slot: str | None  # the StreamSpec attribute naming the spoiled field; None: `field`
    make: Make
    field: str | None = None
    outcome: str | None = None  # a fixed outcome; None: judged by the field
    future: bool = False  # a readable date after the sync (the future_date rule)
    read_in: tuple[str, ...] = ()  # date styles whose fields read the value (it then stages)

    def applies(self, spec: StreamSpec) -> bool:
        return self.slot is None or getattr(spec, self.slot) is not None

    def field_of(self, spec: StreamSpec) -> str:
        return self.field or getattr(spec, self.slot)


def expected_outcome(kind: Kind, spec: StreamSpec, field: str) -> str:
    """What a careful pipeline must do with the row (sandbox/README.md, "Hostile rows").

    quarantine: the row cannot be loaded as a record: it is not an object, or lacks a usable
    key or cursor (`outcome` fixed by the kind), or the spoiled value is not usable where the
    canonical model needs it (a required field, a hard date), or a readable date is after the
    sync where the future_date rule looks. stage_flagged: everything else: the spoiled field
    is optional (nulled and flagged, or normalized where it is a phone or ID number), or the
    value is good text that must pass unchanged and harmless (SQL, backslashes, emoji, extra
    fields: `outcome` fixed by the kind).
    """
    if kind.outcome is not None:
        return kind.outcome
    if spec.date_style in kind.read_in:
        return STAGE_FLAGGED
    if field in spec.required or (kind.future and spec.future):
        return QUARANTINE
    return STAGE_FLAGGED


def _value(value: Any) -> Make:
    """A kind that writes `value` into the field."""
    return _edit(lambda old: value)


def _edit(change: Callable[[Any], Any]) -> Make:
    """A kind that replaces the field's value with change(old value)."""

    def make(ctx: Context, spec: StreamSpec, row: dict, field: str) -> Spoil:
        row[field] = change(row[field])
        return Spoil()

    return make


def _number(write: Callable[[str, Any], Any], draw: str = "id") -> Make:
    """A kind that writes a fresh number as write(number, old value): an ID number ("id", or
    "id_digits" for one without X), a mobile ("phone") or a fixed line ("landline")."""

    def make(ctx: Context, spec: StreamSpec, row: dict, field: str) -> Spoil:
        if draw == "phone":
            number = ctx.phone()
        elif draw == "landline":
            number = ctx.landline()
        else:
            number = ctx.id_number(draw == "id_digits")
        row[field] = write(number, row[field])
        return Spoil(planted=number)

    return make


def _date(day: str, offset: str | None = None) -> Make:
    """A kind that writes `day` the way the field writes dates (with a time where it holds
    timestamps); with `offset`, as an ISO 8601 timestamp with that offset, whatever the field."""

    def make(ctx: Context, spec: StreamSpec, row: dict, field: str) -> Spoil:
        if offset is not None or spec.date_style == "iso":
            row[field] = f"{day}T09:00:00{offset or '+08:00'}"
        elif spec.date_style == "beijing":
            row[field] = f"{day} 09:00:00"
        else:
            row[field] = day
        return Spoil()

    return make


def _drop(ctx: Context, spec: StreamSpec, row: dict, field: str) -> Spoil:
    del row[field]
    return Spoil()


def _long_paste(ctx: Context, spec: StreamSpec, row: dict, field: str) -> Spoil:
    """A whole registration form pasted into the field: name, ID number, phone, remarks."""
    name, number, phone = ctx.name(), ctx.id_number(), ctx.phone()
    text = f"姓名：{name}，身份证号：{number}，联系电话：{phone}。"
    text += PASTE_FILLER * (PASTE_LENGTH // len(PASTE_FILLER) + 1)
    row[field] = text[:PASTE_LENGTH]
    return Spoil(planted=number, extras=(name, phone))


def _extra_fields(ctx: Context, spec: StreamSpec, row: dict, field: str) -> Spoil:
    """Fields no version of the interface has (a newer client app's)."""
    row[field] = {"channel": "微信小程序", "appVersion": "3.2.1", "tags": []}
    row["remark2"] = ""
    return Spoil()


def _nested_person(ctx: Context, spec: StreamSpec, row: dict, field: str) -> Spoil:
    name, phone, number = ctx.name(), ctx.phone(), ctx.id_number()
    row[field] = {"name": name, "mobile": phone, "idNo": number}
    return Spoil(planted=number, extras=(name, phone))


def _string_row(ctx: Context, spec: StreamSpec, row: dict, field: str) -> Spoil:
    """A CSV line where the row should be: a JSON string in the list."""
    name, phone = ctx.name(), ctx.phone()
    return Spoil(planted=phone, extras=(name,), whole=True, body=f"{name},{phone}")


def _number_row(ctx: Context, spec: StreamSpec, row: dict, field: str) -> Spoil:
    return Spoil(whole=True, body=404)


def _two_mobiles(ctx: Context, spec: StreamSpec, row: dict, field: str) -> Spoil:
    """A phone box holding two mobiles, as an operator pastes both a person gave."""
    first, second = ctx.phone(), ctx.phone()
    row[field] = f"{first}/{second}"
    return Spoil(planted=first, extras=(second,))


def _compact_iso(stamp: Any) -> Any:
    """A change time in ISO 8601's basic form (20260601T100000, +0800): what some exporters
    write, the same instant."""
    return stamp.replace(" ", "T").replace("-", "").replace(":", "") if isinstance(stamp, str) else stamp


def _splice(fragment: bytes) -> Make:
    """A kind that splices raw bytes into a string after its first character."""
    return _edit(lambda old: raw_string(old[:1], fragment, old[1:]))


def _append(text: str) -> Make:
    return _edit(lambda old: f"{old or ''}{text}")


ID_IN_TEXT, PHONE_IN_TEXT = "（联系人身份证号{}）", "（联系电话{}）"
SQL_DROP, SQL_OR = "'; DROP TABLE dim_volunteer; --", '" OR 1=1 --'

# In plan order: `extra_fields` first, so each stream's first hostile row is the one the
# other hostile rows point at.
KINDS = (
    Kind("extra_fields", None, _extra_fields, field="extInfo", outcome=STAGE_FLAGGED),
    Kind("id_number_in_region", "region", _number(lambda n, old: n)),
    Kind("phone_in_region", "region", _number(lambda p, old: p, "phone")),
    Kind("phone_in_name", "name", _number(lambda p, old: old + p, "phone")),
    Kind("phone_dotted", "phone", _number(lambda p, old: f"{p[:3]}.{p[3:7]}.{p[7:]}", "phone")),
    Kind("phone_bracketed", "phone", _number(lambda p, old: f"({p[:3]}){p[3:]}", "phone")),
    Kind("phone_plus86_spaced", "phone",
         _number(lambda p, old: f"+86 {p[:3]} {p[3:7]} {p[7:]}", "phone")),
    Kind("phone_zero_width", "phone", _number(lambda p, old: ZERO_WIDTH_SPACE.join(p), "phone")),
    Kind("phone_with_extension", "phone", _number(lambda p, old: f"{p}转8001", "phone")),
    Kind("id_number_zero_width", "cert", _number(lambda n, old: ZERO_WIDTH_SPACE.join(n))),
    Kind("id_number_fullwidth", "cert", _number(lambda n, old: fullwidth(n))),
    Kind("id_number_grouped", "cert", _number(lambda n, old: f"{n[:6]} {n[6:14]} {n[14:]}")),
    Kind("long_paste_in_name", "name", _long_paste),
    Kind("star_huge", "star", _value(Raw(b"1e30"))),
    Kind("star_infinity_text", "star", _value("Infinity")),
    Kind("star_negative", "star", _value(-5)),
    Kind("star_fraction", "star", _value(3.7)),
    Kind("lone_surrogate", "name", _splice(b"\\ud800")),
    Kind("invalid_utf8", "name", _splice(b"\xc3\x28\xff\xed\xa0\x80")),
    # control characters are typing debris around a good name: a careful pipeline removes
    # them with the rest of the name's normalization and keeps the row
    Kind("control_escapes", "name", _edit(lambda old: old[:1] + "\u0000\u0007" + old[1:]),
         outcome=STAGE_FLAGGED),
    Kind("raw_control_chars", "name", _splice(b"\x00\x07\x1b"), outcome=STAGE_FLAGGED),
    Kind("emoji", "name", _append("\U0001f600\U0001f468\u200d\U0001f469\u200d\U0001f467"),
         outcome=STAGE_FLAGGED),
    Kind("cursor_missing", "cursor", _drop, outcome=QUARANTINE),
    Kind("cursor_null", "cursor", _value(None), outcome=QUARANTINE),
    Kind("cursor_list", "cursor", _edit(lambda old: [old]), outcome=QUARANTINE),
    Kind("list_for_string", "text", _edit(lambda old: [old[:1], old[1:]])),
    Kind("object_for_string", "text", _edit(lambda old: {"zh_CN": old})),
    Kind("number_for_string", "text", _value(12345)),
    Kind("id_number_as_integer", "cert", _number(lambda n, old: int(n), "id_digits")),
    Kind("id_number_as_float", "cert", _value(Raw(b"5.2e17"))),
    Kind("date_bad_offset", "date", _date("2024-03-05", "+99:99")),
    Kind("date_year_0001", "date", _date("0001-01-01")),
    Kind("date_feb_30", "date", _date("2026-02-30")),
    Kind("date_as_text", "date", _value("昨天")),
    Kind("date_far_future", "date", _date("2999-01-01"), future=True),
    # a spreadsheet's and a clock's zero: parse as dates, say none (session 5)
    Kind("date_placeholder_1900", "date", _date("1900-01-01")),
    Kind("date_epoch", "date", _date("1970-01-01")),
    Kind("minutes_negative", "minutes", _value(-30)),
    Kind("minutes_huge", "minutes", _value(Raw(b"1e9"))),
    Kind("minutes_text", "minutes", _value("abc")),
    Kind("minutes_null", "minutes", _value(None)),
    Kind("hours_nan_text", "hours", _value("NaN")),
    Kind("hours_na_text", "hours", _value("N/A")),
    Kind("hours_nan_literal", "hours", _value(Raw(b"NaN"))),
    Kind("hours_25", "hours", _value(25)),
    Kind("sql_drop_table", "name", _append(SQL_DROP), outcome=STAGE_FLAGGED),
    Kind("sql_or_true", "name", _append(SQL_OR), outcome=STAGE_FLAGGED),
    Kind("backslashes", "name", _append("\\\\server\\share\\"), outcome=STAGE_FLAGGED),
    Kind("nested_person", None, _nested_person, field="contact", outcome=STAGE_FLAGGED),
    Kind("id_number_in_free_text", "free_text",
         _number(lambda n, old: (old or "") + ID_IN_TEXT.format(n))),
    Kind("phone_in_free_text", "free_text",
         _number(lambda p, old: (old or "") + PHONE_IN_TEXT.format(p), "phone")),
    # as the privacy audit of 7 Dec found them: glued to letters, dashes between spaces, a fixed line
    Kind("id_number_glued_to_letters", "free_text", _number(lambda n, old: (old or "") + f"sfz{n}")),
    Kind("phone_glued_to_letters", "free_text", _number(lambda p, old: (old or "") + f"TEL{p}", "phone")),
    Kind("id_number_spaced_dashes", "free_text",
         _number(lambda n, old: (old or "") + f"{n[:6]} - {n[6:14]} - {n[14:]}")),
    Kind("landline_in_free_text", "free_text", _number(lambda t, old: (old or "") + f"座机{t}", "landline")),
    Kind("not_an_object_string", None, _string_row, field="(row)", outcome=QUARANTINE),
    Kind("not_an_object_number", None, _number_row, field="(row)", outcome=QUARANTINE),
    Kind("key_missing", "key", _drop, outcome=QUARANTINE),
    Kind("row_id_missing", "row_id", _drop),
    # session 6: read where the contract allows a faithful reading, else quarantined saying why
    Kind("date_serial", "date", _value("45356"), read_in=("date",)),
    Kind("minutes_with_unit", "minutes", _value("90分钟"), outcome=STAGE_FLAGGED),
    Kind("minutes_approximate", "minutes", _value("约2小时")),
    Kind("hours_with_unit", "hours", _value("1.5小时"), outcome=STAGE_FLAGGED),
    Kind("phone_two_mobiles", "phone", _two_mobiles),
    Kind("key_zero_width", "key", _edit(lambda old: f"{old}\u200b"), outcome=STAGE_FLAGGED),
    Kind("cursor_compact_iso", "cursor", _edit(_compact_iso), outcome=STAGE_FLAGGED),
)  # fmt: skip


# --- identities and the normal-looking rows they are spoiled from ------------------------


@dataclass(frozen=True)
class Identity:
    """Who a hostile row is before it is spoiled: ids, county, last-update stamp."""

    seq: int  # the row's number among its source's hostile rows (from 1)
    row_id: str | int  # the stored id
    number: str  # the source-map id (a national number, or the id as text)
    county: str
    stamp: int  # Beijing seconds


def _identity(spec: StreamSpec, seq: int, county: str, stamp: int) -> Identity:
    if spec.source == PROVINCIAL:
        row_id = PROVINCIAL_ID_BASE + seq
        return Identity(seq, row_id, str(row_id), county, stamp)
    row_id = f"{NATIONAL_ROW_BASES[seq % 2] + seq:016d}"
    if spec.key in NATIONAL_NUMBERS:
        pattern, offset = NATIONAL_NUMBERS[spec.key]
        return Identity(seq, row_id, pattern.format(offset + seq), county, stamp)
    return Identity(seq, row_id, row_id, county, stamp)


@dataclass
class Base:
    """A hostile row before its spoiling: the body, the stored region, its personal values."""

    row: dict
    region: str
    personal: tuple[str, ...] = ()


Anchors = dict[str, Identity]  # "source.stream" -> the identity rows of that stream point at


def _framed(spec: StreamSpec, ident: Identity, fields: dict) -> dict:
    """`id` first, the fields, then the stamp and the deletion flag: the sources' layout."""
    return {
        "id": ident.row_id,
        **fields,
        spec.cursor: source_time(spec.source, ident.stamp),
        DELETED_FIELD[spec.source]: 0 if spec.source == NATIONAL else False,
    }


def _day(seconds: int) -> str:
    return beijing_datetime(seconds).strftime("%Y-%m-%d")


def _place(ctx: Context, ident: Identity, what: str) -> str:
    """A team, project or station name no normal row has (楼栋互助 is not in the word lists)."""
    return f"{ctx.county_name(ident.county)}楼栋互助第{ident.seq}{what}"


def _person(ctx: Context) -> tuple[str, str, str]:
    return ctx.name(), ctx.id_number(), ctx.phone()


def _national_volunteer(ctx: Context, ident: Identity, anchors: Anchors) -> Base:
    name, number, phone = _person(ctx)
    fields = {
        "albp0029": ident.number, "albp0003": name, "albp0004": "01", "albp0005": number,
        "albp0006": "1" if int(number[16]) % 2 else "2", "albp0010": phone,
        "albp0020": ident.county, "albp0026": 0,
        "albp0034": _day(ctx.earlier(ident.stamp, 900)), "albp0089": 0, "albp0090": "1",
        "albp0093": 0, "albp0094": 0, "share_consent": True,
    }  # fmt: skip
    return Base(fields, ident.county, (name, number, phone))


def _national_team(ctx: Context, ident: Identity, anchors: Anchors) -> Base:
    fields = {
        "albe0001": ident.number, "albe0002": _place(ctx, ident, "志愿小组"), "albe0003": "1",
        "albe0008": None, "albe0009": None, "albe0011": None, "albe0012": ident.county,
        "albe0014": ["0001"], "albe0018": None, "albe0019": None, "albe0026": "1",
        "albe0046": _day(ctx.earlier(ident.stamp, 900)), "albe0056": 5,
    }  # fmt: skip
    return Base(fields, ident.county)


def _national_project(ctx: Context, ident: Identity, anchors: Anchors) -> Base:
    fields = {
        "albx0001": ident.number, "albx0002": _place(ctx, ident, "期志愿服务"),
        "albe0001": anchors["national.teams"].number, "albx0009": "0001", "albx0015": "2",
        "albx0021": ident.county, "albx0031": _day(ctx.earlier(ident.stamp, 300)),
        "albx0040": None,
    }  # fmt: skip
    return Base(fields, ident.county)


def _national_service(ctx: Context, ident: Identity, anchors: Anchors) -> Base:
    start = ctx.earlier(ident.stamp, 30)
    project = anchors["national.projects"]
    fields = {
        "albx0175": anchors["national.volunteers"].number, "albx0001": project.number,
        "albe0001": anchors["national.teams"].number,
        "albx0181": source_time(NATIONAL, start),
        "albx0182": source_time(NATIONAL, start + 2 * HOUR),
        "albx0172": 2, "albx0173": "1", "albx0174": "2", "origin": None,
    }  # fmt: skip
    return Base(fields, project.county)  # a record is filtered by its project's region


def _national_evaluation(ctx: Context, ident: Identity, anchors: Anchors) -> Base:
    team = anchors["national.teams"]
    period = str(beijing_datetime(ident.stamp).year - 1)
    fields = {"albe0001": team.number, "evaluator": "self", "score": 90, "period": period}
    return Base(fields, team.county)  # an evaluation is filtered by its team's region


def _provincial_team(ctx: Context, ident: Identity, anchors: Anchors) -> Base:
    area = ctx.area(ident.county)
    fields = {
        "teamName": _place(ctx, ident, "志愿小组"), "creditCode": None, "regStatus": "未登记",
        "level": "社区", "hub": False, "areaCode": area, "serviceTypes": "社区服务",
        "foundDate": _day(ctx.earlier(ident.stamp, 900)), "leader": None, "leaderMobile": None,
        "memberCount": 5, "nationalTeamNo": None, "creditStatus": "良好", "status": "正常",
    }  # fmt: skip
    return Base(fields, area)


def _provincial_volunteer(ctx: Context, ident: Identity, anchors: Anchors) -> Base:
    name, number, phone = _person(ctx)
    area = ctx.area(ident.county)
    registered = source_time(PROVINCIAL, ctx.earlier(ident.stamp, 900))
    fields = {
        "realName": name, "certType": "身份证", "certNo": number,
        "sex": "男" if int(number[16]) % 2 else "女", "birthday": None, "mobile": phone,
        "areaCode": area, "regTime": registered, "skills": None, "serviceMinutes": 0,
        "starLevel": 0, "nationalVolunteerNo": None,
    }  # fmt: skip
    return Base(fields, area, (name, number, phone))


def _provincial_activity(ctx: Context, ident: Identity, anchors: Anchors) -> Base:
    start = ctx.earlier(ident.stamp, 60)
    area = ctx.area(ident.county)
    fields = {
        "teamId": anchors["provincial.teams"].row_id, "title": _place(ctx, ident, "期志愿服务"),
        "serviceType": "社区服务", "startTime": source_time(PROVINCIAL, start),
        "endTime": source_time(PROVINCIAL, start + 3 * HOUR), "areaCode": area,
        "brandProject": None, "stationId": None,
    }  # fmt: skip
    return Base(fields, area)


def _provincial_service(ctx: Context, ident: Identity, anchors: Anchors) -> Base:
    fields = {
        "userId": anchors["provincial.volunteers"].row_id,
        "teamId": anchors["provincial.teams"].row_id,
        "activityId": anchors["provincial.activities"].row_id,
        "serviceDate": _day(ctx.earlier(ident.stamp, 30)), "durationMinutes": 120,
        "status": "已通过", "nationalRecordId": None,
    }  # fmt: skip
    return Base(fields, "")


def _provincial_station(ctx: Context, ident: Identity, anchors: Anchors) -> Base:
    area = ctx.area(ident.county)
    fields = {
        "name": _place(ctx, ident, "志愿服务点"), "stationType": "点", "hostType": "社区",
        "areaCode": area, "teamId": anchors["provincial.teams"].row_id,
        "openedOn": _day(ctx.earlier(ident.stamp, 900)),
    }  # fmt: skip
    return Base(fields, area)


def _provincial_redemption(ctx: Context, ident: Identity, anchors: Anchors) -> Base:
    fields = {
        "userId": anchors["provincial.volunteers"].row_id, "minutes": 60,
        "purpose": "兑换助餐服务", "redeemedAt": source_time(PROVINCIAL, ctx.earlier(ident.stamp, 30)),
    }  # fmt: skip
    return Base(fields, "")


BASES: dict[str, Callable[[Context, Identity, Anchors], Base]] = {
    "national.volunteers": _national_volunteer,
    "national.teams": _national_team,
    "national.projects": _national_project,
    "national.service_records": _national_service,
    "national.evaluations": _national_evaluation,
    "provincial.teams": _provincial_team,
    "provincial.volunteers": _provincial_volunteer,
    "provincial.activities": _provincial_activity,
    "provincial.service_logs": _provincial_service,
    "provincial.stations": _provincial_station,
    "provincial.redemptions": _provincial_redemption,
}


def _stream_key(spec: StreamSpec) -> str:
    return f"{spec.source}.{spec.stream}"


# --- planting ------------------------------------------------------------------------------


def hostile_plan() -> list[tuple[StreamSpec, Kind]]:
    """Every (stream, kind) pair planted: one row each."""
    return [(spec, kind) for spec in SPECS for kind in KINDS if kind.applies(spec)]


class StampPicker:
    """Stamps among a stream's normal rows, read from the database being written."""

    SAME_SECOND_SHARE = 1 / 3
    EARLIER_DAYS = 7

    def __init__(self, writer, ctx: Context) -> None:
        self.conns, self.ctx = writer.conns, ctx

    def pick(self, spec: StreamSpec) -> int:
        """A random normal row's stamp, or up to a week before it; anywhere in the world's
        history where the stream has no rows."""
        rng, clock = self.ctx.rng, self.ctx.clock
        conn = self.conns[spec.source]
        low, high = conn.execute(f"SELECT min(rowid), max(rowid) FROM {spec.stream}").fetchone()
        if low is None:
            return int(clock.between(rng, clock.start, clock.as_of))
        # Provincial rowids are the ids (with gaps between counters): the next one at or after.
        (text,) = conn.execute(
            f"SELECT updated_at FROM {spec.stream} WHERE rowid >= ? ORDER BY rowid LIMIT 1",
            (int(rng.integers(low, high + 1)),),
        ).fetchone()
        seconds = beijing_seconds(datetime.fromisoformat(text))
        if rng.random() < self.SAME_SECOND_SHARE:
            return seconds
        return max(clock.start, seconds - int(rng.integers(1, self.EARLIER_DAYS * DAY)))


def _identities(plan, ctx: Context, stamps: StampPicker) -> list[Identity]:
    seqs: Counter[str] = Counter()
    identities = []
    for spec, _kind in plan:
        seqs[spec.source] += 1
        identities.append(_identity(spec, seqs[spec.source], ctx.county(), stamps.pick(spec)))
    return identities


def _anchors(plan, identities: list[Identity]) -> Anchors:
    """Each stream's `extra_fields` row: the one other hostile rows point at."""
    return {
        _stream_key(spec): ident
        for (spec, kind), ident in zip(plan, identities)
        if kind.name == "extra_fields"
    }


@dataclass
class Planted:
    """One hostile row as stored, and its truth row."""

    spec: StreamSpec
    ident: Identity
    region: str
    body: bytes
    truth: dict


def _visible_source_id(spec: StreamSpec, body: Any) -> str | None:
    """The source-map id as the pipeline sees it (None: not an object, or no key field)."""
    if isinstance(body, dict) and body.get(spec.key) is not None:
        return str(body[spec.key])
    return None


def _personal(base: Base, spoil: Spoil, body: bytes) -> list[str]:
    """Clear personal values in the row: the planted one, and any other written verbatim."""
    text = body.decode("utf-8", "replace")
    candidates = dict.fromkeys((spoil.planted, *spoil.extras, *base.personal))
    return [c for c in candidates if c and (c == spoil.planted or c in text)]


def plant_one(ctx: Context, spec: StreamSpec, kind: Kind, ident: Identity, anchors) -> Planted:
    """Build one normal-looking row, spoil it one way, and say what it is."""
    base = BASES[_stream_key(spec)](ctx, ident, anchors)
    row = _framed(spec, ident, base.row)
    field = kind.field_of(spec)
    spoil = kind.make(ctx, spec, row, field)
    value = spoil.body if spoil.whole else row
    body = encode(value)
    truth = {
        "source": spec.source,
        "entity": spec.entity,
        "stream": spec.stream,
        "source_id": _visible_source_id(spec, value),
        "row_id": str(ident.row_id),
        "kind": kind.name,
        "expected": expected_outcome(kind, spec, field),
        "field": field,
        "planted": spoil.planted,
        "personal": _personal(base, spoil, body),
        "updated_at": ident.stamp,
    }
    return Planted(spec, ident, base.region, body, truth)


def _stored(planted: list[Planted]) -> list[Rows]:
    """The planted rows grouped into one `Rows` per table (bodies as bytes: stored as BLOBs)."""
    by_table: dict[tuple[str, str], list[Planted]] = {}
    for p in planted:
        by_table.setdefault((p.spec.source, p.spec.stream), []).append(p)
    return [
        Rows(
            source,
            table,
            pa.array([p.ident.row_id for p in group]),
            pa.array([source_time(source, p.ident.stamp) for p in group]),
            pa.array([p.region for p in group]),
            pa.array([p.body for p in group], pa.binary()),
        )
        for (source, table), group in by_table.items()
    ]


def plant_hostile_rows(writer, rng: np.random.Generator, clock: Clock, geo: Geography) -> dict:
    """Store the hostile rows through a world's writer (after every normal row), write
    `truth/hostile_rows.parquet`, and return the summary world.json keeps under `hostile`."""
    ctx = Context(rng, clock, geo)
    plan = hostile_plan()
    identities = _identities(plan, ctx, StampPicker(writer, ctx))
    anchors = _anchors(plan, identities)
    planted = [
        plant_one(ctx, spec, kind, ident, anchors)
        for (spec, kind), ident in zip(plan, identities)
    ]
    writer.add(Built(rows=_stored(planted)))
    truth = pd.DataFrame([p.truth for p in planted])
    write_whole(writer.world_dir, "hostile_rows", truth)
    return summary(truth)


def summary(truth: pd.DataFrame) -> dict:
    """Counts of hostile rows per source and stream, and per expected outcome."""
    streams: dict[str, dict[str, int]] = {}
    for (source, stream), n in truth.groupby(["source", "stream"], sort=False).size().items():
        streams.setdefault(source, {})[stream] = int(n)
    outcomes = truth["expected"].value_counts().sort_index()
    return {
        "rows": len(truth),
        "streams": streams,
        "expected": {k: int(v) for k, v in outcomes.items()},
    }
