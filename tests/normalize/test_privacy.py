"""Privacy helpers: the contract's hash and masks, records and free text with nothing left
in clear."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import uuid

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pipelines.privacy import (
    COMPOUND_SURNAMES,
    find_personal_numbers,
    hmac_hex,
    holds_a_personal_number,
    identifiers_holding_a_personal_number,
    mask_id,
    mask_ids,
    mask_name,
    mask_names,
    mask_phone,
    mask_record,
    redact,
    redact_values,
    shaped_like_a_personal_number,
    visible_ends,
)

from tests.reference import resident_id

from .strategies import PROPERTY, any_text, mobile, valid_resident_ids

KEY = "test-key-北京"
CLEAR_ID = re.compile(r"\d{17}[\dX]|\d{15}")
CLEAR_MOBILE = re.compile(r"1[3-9]\d{9}")


def test_hmac_is_the_contract_hash():
    expected = hmac.new(KEY.encode("utf-8"), "52010219900101123X".encode("utf-8"), hashlib.sha256).hexdigest()
    assert hmac_hex("52010219900101123X", KEY) == expected
    assert re.fullmatch(r"[0-9a-f]{64}", expected)
    series = hmac_hex(pd.Series(["52010219900101123X", None, np.nan, "52010219900101123X"], dtype=object), KEY)
    assert series.iloc[0] == expected == series.iloc[3] and series.iloc[1:3].isna().all()
    assert hmac_hex(None, KEY) is None and hmac_hex(float("nan"), KEY) is None
    assert hmac_hex("52010219900101123X", "another key") != expected


def test_masks_of_the_contract():
    assert mask_id("52010219900101123X") == "5201**********123X"
    assert mask_id("5201**********123X") == "5201**********123X"
    # masked by the source with another number of stars: its 4 and 4 ends are already public
    assert mask_id("5201**123X") == "5201**123X" and mask_id("5201*******1234") == "5201*******1234"
    assert visible_ends("5201**123X") == ("5201", "123X")
    assert visible_ends("5201021990") == ("52", "90")  # a clear short number: a quarter each
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+86 138-1234-5678") == "138****5678"
    assert mask_name("张小明") == "张**"
    assert mask_name("欧阳娜娜") == "欧阳**"
    assert mask_name("張小明") == "张**"  # applied to the normalized name
    assert mask_name("欧阳") == "欧*"
    assert mask_name("李") == "*"
    assert mask_id(None) is None and mask_phone(np.nan) is None and mask_name(None) is None


def test_the_sixteen_compound_surnames():
    assert COMPOUND_SURNAMES == set("欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 令狐 端木 独孤".split())
    for surname in COMPOUND_SURNAMES:
        assert mask_name(surname + "小明") == surname + "**"


def test_vectorized_masks():
    assert mask_ids(pd.Series(["52010219900101123X", None])).tolist()[0] == "5201**********123X"
    assert mask_names(pd.Series(["張小明", "欧阳娜娜", None], index=[3, 3, 1])).tolist()[:2] == ["张**", "欧阳**"]
    assert mask_names(pd.Series(["张小明"]), normalized=True).tolist() == ["张**"]


def test_records_of_both_sources_are_masked():
    national = {"id": "V000001", "albp0029": "V52000001", "albp0003": "张小明", "albp0004": "01",
                "albp0005": "52010219900101123x", "albp0010": "13812345678", "albp0020": "520102",
                "share_consent": True, "albp0089": 12.5, "updated_at": "2024-03-09T08:00:00+08:00"}
    provincial = {"id": 17, "realName": "歐陽娜娜", "certNo": "520102900101123", "mobile": "+86 139 0000 1111",
                  "skills": "call 13900001111", "regTime": "2024-03-09 08:00:00",
                  "team": {"leader": "王五", "leaderMobile": 13700001111}}
    team = {"albe0001": "T1", "albe0002": "贵州省妇联", "albe0018": "李四", "albe0019": "137-0000-2222"}
    masked = [mask_record(r) for r in (national, provincial, team)]
    assert masked[0]["albp0003"] == "张**" and masked[0]["albp0005"] == "5201**********123X"
    assert masked[0]["albp0010"] == "138****5678" and masked[0]["albp0029"] == "V52000001"
    assert masked[0]["updated_at"] == national["updated_at"] and masked[0]["albp0089"] == 12.5
    assert masked[1]["realName"] == "欧阳**" and masked[1]["certNo"] == "5201**********123X"
    assert masked[1]["team"]["leader"] == "王*" and masked[1]["team"]["leaderMobile"] == "137****1111"
    assert masked[2]["albe0002"] == "贵州省妇联" and masked[2]["albe0018"] == "李*"
    text = json.dumps(masked, ensure_ascii=False)
    assert not CLEAR_ID.search(text) and not CLEAR_MOBILE.search(text)
    for name in ["张小明", "娜娜", "王五", "李四"]:
        assert name not in text
    assert national["albp0003"] == "张小明"  # the input is not modified


def test_a_quarantined_station_or_team_keeps_the_interface_s_own_words():
    """车站, 景区, 文化馆, 纪念馆 (Station.hostType) and 单位 (Team.level) start with a family
    name: a quarantined station's record showed its host as 车* (an outside tester's server)."""
    for host in ("车站", "景区", "文化馆", "纪念馆", "医院", "码头"):
        station = {"id": 405, "name": "昆明站", "stationType": "岗", "hostType": host, "areaCode": "530102"}
        assert mask_record(station)["hostType"] == host
    team = {"id": 7, "teamName": "成都志愿队", "level": "单位", "leader": "车晓东", "areaCode": "510104"}
    assert mask_record(team)["level"] == "单位" and mask_record(team)["leader"] == "车**"


def test_redact_free_text():
    text = ("failed for 52010219900101123X / 520102900101123 (phone +86 138 1234 5678, 13900001111) "
            "id ５２０１０２１９９００１０１１２３Ｘ at 2024-03-09 08:00:00, page 12345")
    redacted = redact(text)
    assert not CLEAR_ID.search(redacted) and not CLEAR_MOBILE.search(redacted)
    assert "１９９００１０１" not in redacted
    assert "5201**********123X" in redacted and "138****5678" in redacted and "139****1111" in redacted
    assert "2024-03-09 08:00:00" in redacted and "page 12345" in redacted
    assert redact(redacted) == redacted
    assert redact(None) == "" and redact(42) == "42"


def test_every_log_record_is_scrubbed_once_redaction_is_installed(caplog):
    from pipelines.logging_privacy import install_log_redaction

    install_log_redaction()
    logger = logging.getLogger("test_privacy_filter")
    with caplog.at_level(logging.INFO, logger="test_privacy_filter"):
        logger.info("volunteer %s phone %s", "52010219900101123X", "13812345678")
    assert "52010219900101123X" not in caplog.text and "13812345678" not in caplog.text
    assert "5201**********123X" in caplog.text


# --- the privacy audit of 7 Dec: numbers glued to letters, gaps of 3 characters, fixed lines ---

GLUED_ID = resident_id("52010219900101127")
GLUED = [  # where the audit found each: as typed, masked
    (f"贵阳市青年志愿者协会SFZ{GLUED_ID}", f"贵阳市青年志愿者协会SFZ5201**********{GLUED_ID[-4:]}"),  # an organization's name
    (f"新华路服务站sfz{GLUED_ID[:17]}x", f"新华路服务站sfz5201**********{GLUED_ID[-4:-1]}X"),  # a station's name
    ("社区tel19200000017", "社区tel192****0017"),  # a station's host type
    (f"ID{GLUED_ID}", f"ID5201**********{GLUED_ID[-4:]}"),  # a source id
    ("TEL19200000019", "TEL192****0019"),  # a quarantined record's areaCode
    (f"义诊{GLUED_ID}号", f"义诊5201**********{GLUED_ID[-4:]}号"),  # a project's name, between Han characters
    ("电话13812345678转", "电话138****5678转"),
    # a run id beside it hides nothing; hex letters glued to a number short of a hash's 16
    ("run f08360852789d059c6e50df2e5a3863e: abc13812345678", "run f08360852789d059c6e50df2e5a3863e: abc138****5678"),
]
THREE_CHARACTER_GAPS = [
    (f"{GLUED_ID[:6]} - {GLUED_ID[6:14]} - {GLUED_ID[14:]}", f"5201**********{GLUED_ID[-4:]}"),
    (f"{GLUED_ID[:6]}  /  {GLUED_ID[6:14]} . {GLUED_ID[14:]}", f"5201**********{GLUED_ID[-4:]}"),
    (f"{GLUED_ID[:6]} – {GLUED_ID[6:14]}－{GLUED_ID[14:]}", f"5201**********{GLUED_ID[-4:]}"),  # en dash, full-width
    ("138 - 1234 - 5678", "138****5678"),
    ("( 138 ) 1234 5678", "( 138****5678"),  # the bracket before the number is no part of it
    # the same keys in a Chinese input mode: 。 for the dot, 、 for the backslash, ～ for the tilde
    ("138。1234。5678", "138****5678"),
    (f"{GLUED_ID[:6]}、{GLUED_ID[6:14]}、{GLUED_ID[14:]}", f"5201**********{GLUED_ID[-4:]}"),
    (f"{GLUED_ID[:6]}～{GLUED_ID[6:14]}～{GLUED_ID[14:]}", f"5201**********{GLUED_ID[-4:]}"),
]
# the check character as an input method offers it for "x": ×, or the Roman numeral Ⅹ ⅹ
X_LOOKALIKES = [
    (f"{GLUED_ID[:17]}{x}", f"5201**********{GLUED_ID[14:17]}X") for x in "×Ⅹⅹ"
] + [(f"身份证{GLUED_ID[:6]} {GLUED_ID[6:14]} {GLUED_ID[14:17]}×号", f"身份证5201**********{GLUED_ID[14:17]}X号")]
FIXED_LINES = [  # 0851 Guiyang: 4-digit area code, 8-digit number; 010 Beijing: 3 and 8
    ("0851-86812345", "085*****2345"), ("(0851)86812345", "085*****2345"), ("0851 86812345", "085*****2345"),
    ("085186812345", "085*****2345"), ("（０８５１）８６８１２３４５", "085*****2345"), ("0851 - 8681 - 2345", "085*****2345"),
    ("0851-8681 2345转801", "085*****2345转801"), ("010-86812345", "010****2345"), ("0856-5212345", "085****2345"),
    ("+86 851 8681 2345", "085*****2345"), ("0086-851-86812345", "085*****2345"), ("00868515212345", "085****2345"),
    ("+86 10 8681 2345", "010****2345"), ("座机:tel0851-86812345", "座机:tel085*****2345"),
    ("0851。86812345", "085*****2345"),
]
# The sources' own numbers and ordinary text with numbers: no personal number, nothing masked
NOT_PERSONAL = [
    "albp0029", "V5200000001", "T5200000001", "X520000000001", "P520000000001", "52000000000030", "5200000000000417",
    "52000000000030000017", "1000167", "91520100MA6DXXXXXX", "91520100MA6D12345K", "520102", "520102000000",
    "520102001001", "2023-01-05 08:30:00", "2023-01-05T08:30:00.123456789+08:00", "20230105", "20230105083000",
    "2023-01-05 - 2023-02-05", "2023/01/05 08:30 - 2023/01/05 17:30", "01-05 08:30:00", "2.5", "0.12345678901",
    "0.3333333333333333", "13,800,000,000", "共13人,1234小时", "12 - 13 - 14 - 15", "第3小组2023年0851期", "0100000000001",
    "1381234567", "1234 5678 901", "0851-1234567",  # a 10-digit mobile; no area code; a local number starts 2-9
    # run ids, UUIDs and hashes, where digits stand between letters
    "f08360852789d059c6e50df2e5a3863e", "c6b789ef-8136-5acc-3f88-af5933736dcc",
    "e678eb202262624769265158a759799b", "6E7E1B1432467437ABCDEF0123456789",
    # durations and fractions as programs print them (Dagster: `retry in 5.588188188188188 seconds`)
    "requested a retry in 5.588188188188188 seconds", "0.123456789012345", "took 12.3456789012345 s",
]


@pytest.mark.parametrize(("written", "masked"), GLUED + THREE_CHARACTER_GAPS + X_LOOKALIKES + FIXED_LINES)
def test_numbers_glued_to_letters_three_character_gaps_and_fixed_lines_are_masked(written, masked):
    assert redact(written) == masked
    assert redact(masked) == masked
    column = pd.Series([written, "急救"], dtype="str")
    redacted, changed = redact_values(column)
    assert redacted.tolist() == [masked, "急救"] and changed.tolist() == [True, False]
    assert shaped_like_a_personal_number(column).tolist() == [True, False]
    # a key refuses a mobile or an ID number; a fixed line's shape is a zero-padded record number's
    as_key = (written, masked) not in FIXED_LINES
    assert holds_a_personal_number(written) == as_key
    assert identifiers_holding_a_personal_number(column).tolist() == [as_key, False]


@pytest.mark.parametrize(("written", "masked"), [
    (GLUED_ID[:17], f"5201*********{GLUED_ID[13:17]}"),  # its check character left off
    (f"身份证{GLUED_ID[:17]}*", f"身份证5201*********{GLUED_ID[13:17]}*"),  # or masked alone
    (f"{GLUED_ID[:6]} {GLUED_ID[6:14]} {GLUED_ID[14:17]}", f"5201*********{GLUED_ID[13:17]}"),
])
def test_the_17_digits_of_an_id_number_are_masked_as_one(written, masked):
    # the check character follows from the 17 digits: they are the number whole
    assert redact(written) == masked and redact(masked) == masked
    assert shaped_like_a_personal_number(pd.Series([written], dtype="str")).tolist() == [True]


@pytest.mark.parametrize("text", ["52000000000030017", "12345678901234567", "订单00000000000000017"])
def test_17_digits_that_could_be_no_ones_id_number_are_left(text):
    # no province's code, or no birth date: a source's record number
    assert find_personal_numbers(text) == [] and redact(text) == text


@pytest.mark.parametrize(("written", "masked"), [
    # two mobiles from two cells of a spreadsheet, pasted with nothing between them
    ("联系电话1381234567813912345678", "联系电话138****5678139****5678"),
    (f"{GLUED_ID}13812345678", f"5201**********{GLUED_ID[-4:]}138****5678"),  # an ID number and a mobile
    (f"13812345678{GLUED_ID[:17]}x", f"138****56785201**********{GLUED_ID[-4:-1]}X"),
    ("１３８１２３４５６７８１３９１２３４５６７８", "138****5678139****5678"),  # full-width
])
def test_numbers_glued_end_to_end_are_each_masked(written, masked):
    # no pattern takes a digit beside another: the 22 digits stayed whole, in clear
    assert redact(written) == masked and redact(masked) == masked
    assert [number.kind for number in find_personal_numbers(written)] in (["phone", "phone"], ["id", "phone"],
                                                                          ["phone", "id"])
    assert shaped_like_a_personal_number(pd.Series([written], dtype="str")).tolist() == [True]
    assert holds_a_personal_number(written.removeprefix("联系电话"))


@pytest.mark.parametrize("text", ["5200000000000417000001", "52000000000004170000010000000417",
                                  "13812345678000000000000"])
def test_a_long_run_that_is_not_numbers_end_to_end_is_left(text):
    # a long record number, or a mobile and digits no number ends: no one's numbers
    assert find_personal_numbers(text) == [] and redact(text) == text
    assert not identifiers_holding_a_personal_number(pd.Series([text], dtype="str")).any()


@pytest.mark.parametrize("written", [number for number, _ in FIXED_LINES])
def test_a_fixed_line_is_a_phone(written):
    from pipelines.warehouse.privacy_scan import _judge

    (number,) = find_personal_numbers(written)
    assert number.kind == "phone" and number.digits in ("085186812345", "01086812345", "08565212345", "08515212345")
    finding = _judge("name", iter([("k", written)]))
    assert (finding.id_numbers, finding.phones) == (0, 1)


@pytest.mark.parametrize("text", NOT_PERSONAL)
def test_the_sources_numbers_dates_amounts_and_hashes_are_no_personal_numbers(text):
    assert find_personal_numbers(text) == [] and redact(text) == text
    assert not holds_a_personal_number(text)
    column = pd.Series([text], dtype="str")
    assert not redact_values(column)[1].any() and not identifiers_holding_a_personal_number(column).any()


def test_a_record_number_of_an_ids_width_between_letters_is_judged_as_one_alone():
    """A source's 18-digit record number with a letter before it is ID-shaped, as it is
    alone: masked in free text, kept as an identifier (no province's code, no date)."""
    for number in ("X100000000000000401", "R000000000000000011A"):
        assert redact(number) != number and not holds_a_personal_number(number)
        assert not identifiers_holding_a_personal_number(pd.Series([number], dtype="str")).any()


NON_HEX_LETTERS = st.text(alphabet="ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=4)


@PROPERTY
@given(st.one_of(valid_resident_ids(), mobile), NON_HEX_LETTERS, st.text(alphabet="abcdefABCDEF", max_size=3),
       NON_HEX_LETTERS)
def test_no_number_glued_to_letters_survives_redaction(number, before, hex_letters, after):
    for text in (before + hex_letters + number, number + hex_letters + after, before + number + after):
        redacted = redact(text)
        assert number not in redacted and "****" in redacted, text
        assert holds_a_personal_number(text)


@PROPERTY
@given(valid_resident_ids(), mobile, st.text(max_size=20), st.text(max_size=20))
def test_no_number_survives_redaction(number, phone, before, after):
    redacted = redact(f"{before} {number} {after} {phone} {number.lower()}")
    assert number not in redacted and phone not in redacted and number.lower() not in redacted


@PROPERTY
@given(st.one_of(any_text, st.none(), st.integers(), st.floats()))
def test_masks_never_raise_and_are_idempotent(value):
    for function in (mask_id, mask_phone, mask_name):
        once = function(value)
        assert once is None or isinstance(once, str)
    once = redact(value)
    assert redact(once) == once
    record = mask_record({"albp0003": value, "albp0005": value, "mobile": value, "free": value})
    assert mask_record(record) == record


@PROPERTY
@given(valid_resident_ids(), st.integers(min_value=0, max_value=260), st.sampled_from(["备", " ", "，", "x "]))
def test_a_number_across_a_cut_is_masked_whole(number, before, filler):
    """Long texts are cut (a record's free text at 200 characters, an unreadable quarantined
    record at 1,000); a number across the cut is masked before it, so no more of it stays
    than its mask shows (the first and last four). Cut first, its first digits stayed."""
    from pipelines.quality.quarantine import mask_record_json

    text = (filler * before)[:before] + " " + number + " 说明" * 30
    masked = mask_record({"remark": text})["remark"]
    unreadable = mask_record_json("{not json " + (filler * 4 * before)[:4 * before] + " " + number + " 说明" * 300)
    for out in (masked, unreadable):
        assert number[:5] not in out and number[-5:] not in out
    assert mask_record({"remark": masked})["remark"] == masked


DIGIT_RUNS = st.text(alphabet="0123456789", min_size=9, max_size=21)
# runs of digits between letters, as a value of letters and digits alone holds them
LETTERS = st.text(alphabet="abXxyZ", max_size=3)
GLUED_RUNS = st.tuples(LETTERS, st.one_of(DIGIT_RUNS, DIGIT_RUNS.map(lambda run: "0" + run)), LETTERS,
                       st.sampled_from(["", "q", "7"])).map("".join)


@PROPERTY
@given(st.lists(st.one_of(DIGIT_RUNS, valid_resident_ids(), mobile, mobile.map(lambda number: "86" + number),
                          mobile.map(lambda number: "0086" + number), mobile.map(lambda number: number + "0"),
                          DIGIT_RUNS.map(lambda run: run + "X"), DIGIT_RUNS.map(lambda run: "X" + run),
                          DIGIT_RUNS.map(lambda run: "０" + run), DIGIT_RUNS.map(lambda run: "+" + run),
                          GLUED_RUNS, st.tuples(GLUED_RUNS, GLUED_RUNS).map("".join),
                          st.sampled_from([written for written, _ in GLUED + FIXED_LINES] + NOT_PERSONAL),
                          any_text, st.none()), max_size=12))
def test_a_column_is_redacted_as_each_value_is(values):
    """redact_values passes over a value of ASCII letters and digits alone unless a run of
    its digits between letters is a whole number (a record id of 14 or 16 digits, or a letter
    and 10 or 12 digits that start 52, holds none); what it finds is what redact finds in
    each value, whatever the run's length, prefix, check letter, letters around it or
    full-width digit."""
    redacted, changed = redact_values(pd.Series(values, dtype="string"))
    expected = [None if value is None else redact(value) for value in values]
    assert [None if pd.isna(value) else value for value in redacted] == expected
    assert changed.tolist() == [value is not None and redact(value) != value for value in values]


# --- identifiers: a source's record numbers against the personal numbers typed into them ---

SOURCE_RECORD_NUMBERS = [
    "000000000000000011",  # 18 digits, zero-padded: the contract fixes a width, not which
    "000000000101001",  # 15 digits, zero-padded, its middle a date: no province's code
    "100000000000000401",  # sequential from 10^17
    "5200000000000417",  # 16 digits (the sandbox's)
    "V5200000001", "T5200000001", "12345",
    "01234567890", "V085186812345",  # a zero-padded record number, shaped like a fixed line
]
PERSONAL_NUMBERS_AS_KEYS = [
    resident_id("52010219900307001"),  # a real-shaped number
    resident_id("52010219900307001")[:17] + ("0" if resident_id("52010219900307001")[-1] != "0" else "1"),  # mistyped
    resident_id("52010219900307001")[:17].lower() + "x",
    "520102800101003",  # a 15-digit legacy number
    "5201 0219 9003 0700 1X", "13812345678", "8613812345678", "id:" + resident_id("11010519491231002"),
]


def test_a_source_record_number_of_any_width_is_no_personal_number():
    for number in SOURCE_RECORD_NUMBERS:
        assert not holds_a_personal_number(number), number
    for number in PERSONAL_NUMBERS_AS_KEYS:
        assert holds_a_personal_number(number), number


@PROPERTY
@given(st.lists(st.one_of(st.sampled_from(SOURCE_RECORD_NUMBERS + PERSONAL_NUMBERS_AS_KEYS), DIGIT_RUNS, GLUED_RUNS,
                          st.sampled_from([written for written, _ in GLUED + FIXED_LINES] + NOT_PERSONAL),
                          DIGIT_RUNS.map(lambda run: run[:17] + "X"), valid_resident_ids(), mobile, any_text,
                          st.none()), max_size=12))
def test_a_column_of_identifiers_is_judged_as_each_value_is(values):
    judged = identifiers_holding_a_personal_number(pd.Series(values, dtype="string"))
    assert judged.tolist() == [value is not None and holds_a_personal_number(value) for value in values]


@PROPERTY
@given(st.one_of(valid_resident_ids(), DIGIT_RUNS, DIGIT_RUNS.map(lambda run: run[:17] + "X"), GLUED_RUNS,
                 st.sampled_from(SOURCE_RECORD_NUMBERS + PERSONAL_NUMBERS_AS_KEYS)))
def test_what_the_warehouse_scan_finds_in_an_identifier_staging_refused(value):
    """The last line of defence stops a publish on an ID number in an identifier column;
    staging must have refused every such identifier first, or a source's record number
    would stop every publish."""
    from pipelines.warehouse.privacy_scan import _judge

    if _judge("source_id", iter([("k", value)])) is not None:
        assert holds_a_personal_number(value)


@PROPERTY
@given(st.uuids(), st.integers(min_value=1, max_value=4_194_304), mobile)
@example(uuid.UUID("73973917-359f-31b7-3080-e6e7ac087375"), 59584, "13812345678")  # was masked
def test_a_run_id_in_a_log_line_stays_whole_and_a_phone_beside_it_does_not(run_id, pid, phone):
    # Dagster's line: `... - sync_all - <run id> - <pid> - STEP_START - ...`; the run id's last
    # digits and the pid were once joined across " - " and masked as a phone
    line = f"2026-12-07 21:00:26 +0800 - dagster - DEBUG - sync_all - {run_id} - {pid} - STEP_START - Started"
    assert redact(line) == line
    with_phone = f"{line} - {run_id} - {phone} after 5.588188188188188 s"
    redacted = redact(with_phone)
    assert phone not in redacted and redacted.count(str(run_id)) == 2


@pytest.mark.parametrize("written", ["13177339490-8001", "P13177339490-8001", "13177339490 - 12", "13177339490转8001"])
def test_a_key_holding_a_mobile_and_an_extension_holds_a_personal_number(written):
    """Found by the session-5 fuzz: a mobile and its extension joined by a dash read as one
    15-digit run that is nobody's ID number, so a project keyed 13177339490-8001 was staged
    with the mobile in clear in its source id."""
    assert holds_a_personal_number(written)


@pytest.mark.parametrize("written", ["131773394908001", "R2024-0001-000123", "0900123456789012"])
def test_record_numbers_without_a_mobile_stay_keys(written):
    assert not holds_a_personal_number(written)
