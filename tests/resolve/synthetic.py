"""Small synthetic worlds in the staged canonical schema, with their truth, for resolution tests.

Built here (not by the sandbox) so the resolution functions can be tested on their own, with
the hard cases placed on purpose: homophone given names, a dropped character, a mistyped
birth date behind a masked number, moved counties, changed phones, 王伟 twins with valid
different numbers, and namesakes born the same day in the same county with masked numbers.
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import numpy as np
import pandas as pd

from tests.reference import pair_confusion, resident_id

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史黎贺顾毛郝龚邵万钱覃武戴孔")
GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红鹏飞辉斌波宇浩凯健俊帆帅旭宁龙林欣佳彤雪琳晨阳子涵梓萱一诺思源雨轩浩然文博志强建国海燕春梅金凤德福永福立新卫东振华国庆晓光小兵")
HOMOPHONES = {"小": "晓", "晓": "小", "明": "铭", "铭": "明", "伟": "玮", "芳": "方", "丽": "莉", "静": "婧",
              "军": "君", "杰": "洁", "华": "桦", "玉": "钰", "红": "虹", "飞": "菲", "宇": "雨", "林": "琳"}
COUNTIES = ["520102", "520103", "520111", "520112", "520113", "520115", "520123", "520181", "520201",
            "520203", "520281", "520302", "520303", "520402", "520502", "520581", "520602", "522301",
            "522601", "522701"]


def _hash(text: str) -> str:
    return hashlib.sha256(("test-key:" + text).encode()).hexdigest()


def make_cert(region: str, birth: date, sequence: int) -> str:
    """A valid resident ID number (GB 11643 check character from tests/reference.py)."""
    return resident_id(f"{region}{birth:%Y%m%d}{sequence:03d}")


def _cert_columns(number: str | None, masked: bool, valid: bool) -> dict:
    if number is None:
        return {"cert_hash": None, "cert_masked": False, "cert_valid": False, "cert_prefix4": None, "cert_suffix4": None}
    return {
        "cert_hash": None if masked else _hash(number),
        "cert_masked": masked,
        "cert_valid": valid and not masked,
        "cert_prefix4": number[:4],
        "cert_suffix4": number[-4:],
    }


def _phone_columns(phone: str | None, masked: bool) -> dict:
    if phone is None:
        return {"phone_hash": None, "phone_masked": False, "phone_prefix3": None, "phone_suffix4": None}
    return {"phone_hash": None if masked else _hash(phone), "phone_masked": masked,
            "phone_prefix3": phone[:3], "phone_suffix4": phone[-4:]}


def _typo_cert(number: str, rng: np.random.Generator) -> str:
    """One digit changed inside the number: the check character then fails."""
    position = int(rng.integers(6, 14))
    digit = str((int(number[position]) + int(rng.integers(1, 9))) % 10)
    return number[:position] + digit + number[position + 1:]


def _typo_date(value: date, rng: np.random.Generator) -> date:
    text = value.strftime("%Y%m%d")
    for _ in range(20):
        position = int(rng.integers(3, 8))
        candidate = text[:position] + str(int(rng.integers(0, 10))) + text[position + 1:]
        try:
            typed = date(int(candidate[:4]), int(candidate[4:6]), int(candidate[6:]))
        except ValueError:
            continue
        if typed != value:
            return typed
    return value + timedelta(days=1)


def _noisy_name(name: str, rng: np.random.Generator) -> str:
    roll = rng.random()
    if roll < 0.03:
        swappable = [i for i, ch in enumerate(name) if i > 0 and ch in HOMOPHONES]
        if swappable:
            i = swappable[int(rng.integers(len(swappable)))]
            return name[:i] + HOMOPHONES[name[i]] + name[i + 1:]
    if roll < 0.05 and len(name) == 3:
        return name[:2]
    return name


def make_persons(count: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    surnames = rng.choice(SURNAMES, count)
    given_length = rng.choice([1, 2], count, p=[0.35, 0.65])
    given = ["".join(rng.choice(GIVEN, n)) for n in given_length]
    names = [s + g for s, g in zip(surnames, given)]
    common = rng.random(count) < 0.01  # the 王伟 of the world
    names = ["王伟" if c else n for c, n in zip(common, names)]
    births = [date(1950, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 365 * 56, count)]
    genders = rng.choice(["M", "F"], count)
    regions = rng.choice(COUNTIES, count)
    sequences = rng.integers(0, 500, count) * 2 + np.where(genders == "M", 1, 0)
    certs = [make_cert(r, b, int(s)) for r, b, s in zip(regions, births, sequences)]
    phones = [f"1{int(p):010d}" for p in rng.integers(3_000_000_000, 9_999_999_999, count)]
    return pd.DataFrame({"person_id": [f"P{i:07d}" for i in range(count)], "name": names, "birth_date": births,
                         "gender": genders, "region_code": regions, "cert": certs, "phone": phones})


def make_accounts(persons: pd.DataFrame, seed: int, updated: pd.Timestamp | None = None) -> pd.DataFrame:
    """Staged volunteer rows for the persons: national and/or provincial accounts, noisy."""
    rng = np.random.default_rng(seed + 1)
    updated = updated or pd.Timestamp("2026-06-01", tz="UTC")
    rows = []
    national_no = 0
    provincial_no = 0
    for person in persons.itertuples(index=False):
        has_national = rng.random() < 0.8
        has_provincial = (not has_national) or rng.random() < 0.6
        national_id = None
        if has_national:
            national_no += 1
            national_id = f"NV{national_no:09d}"
            masked = rng.random() < 0.3
            stated_birth = _typo_date(person.birth_date, rng) if masked and rng.random() < 0.05 else person.birth_date
            rows.append({
                "person_id": person.person_id, "source": "national", "source_id": national_id,
                "name": person.name, "gender": person.gender, "birth_date": stated_birth if masked else person.birth_date,
                "region_code": person.region_code, **_cert_columns(person.cert, masked, True),
                **_phone_columns(person.phone, masked),
                "registered_on": date(2015, 1, 1) + timedelta(days=int(rng.integers(0, 3000))),
                "status": "active", "national_volunteer_no": None,
                "updated_at": updated - pd.Timedelta(days=int(rng.integers(0, 300))), "is_deleted": False,
            })
        if has_provincial:
            provincial_no += 1
            cert_roll = rng.random()
            cert, valid = person.cert, True
            if cert_roll < 0.05:
                cert, valid = _typo_cert(person.cert, rng), False
            elif cert_roll < 0.08:
                cert, valid = None, False
            birth = person.birth_date if valid else (_typo_date(person.birth_date, rng) if rng.random() < 0.1 else person.birth_date)
            phone = person.phone
            if rng.random() < 0.15:
                phone = f"1{int(rng.integers(3_000_000_000, 9_999_999_999)):010d}"
            elif rng.random() < 0.1:
                phone = None
            region = person.region_code if rng.random() > 0.1 else str(rng.choice(COUNTIES))
            carries_number = national_id is not None and rng.random() < 0.4
            rows.append({
                "person_id": person.person_id, "source": "provincial", "source_id": str(100000 + provincial_no),
                "name": _noisy_name(person.name, rng), "gender": person.gender, "birth_date": birth,
                "region_code": region, **_cert_columns(cert, False, valid), **_phone_columns(phone, False),
                "registered_on": date(2016, 1, 1) + timedelta(days=int(rng.integers(0, 3000))),
                "status": "active", "national_volunteer_no": national_id if carries_number else None,
                "updated_at": updated - pd.Timedelta(days=int(rng.integers(0, 300))), "is_deleted": bool(rng.random() < 0.02),
            })
    frame = pd.DataFrame(rows)
    frame["birth_date"] = pd.to_datetime(frame["birth_date"])
    frame["registered_on"] = pd.to_datetime(frame["registered_on"])
    return frame


def make_world(persons: int = 2000, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(staged volunteers with a person_id truth column, persons)."""
    people = make_persons(persons, seed)
    return make_accounts(people, seed), people


def pairwise_confusion(source_map: pd.DataFrame, truth: pd.DataFrame, true_key: str = "person_id") -> dict[str, int]:
    """True/false positive and false negative same-person account pairs (tests/reference.py)."""
    predicted = dict(zip(zip(source_map["source"], source_map["source_id"].astype(str)), source_map["volunteer_key"]))
    actual = dict(zip(zip(truth["source"], truth["source_id"].astype(str)), truth[true_key]))
    return pair_confusion(predicted, actual)
