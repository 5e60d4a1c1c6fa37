"""Persons of the synthetic world and their volunteer accounts in the two systems.

A person has a resident ID number consistent with birth date, gender and a Guizhou birth
county (codes in force in the birth year), a name drawn from realistic frequencies, a
phone and a home county. About 45% hold an account in both systems, the rest in one; 1% of
provincial users registered twice. The national account shows codes and masks the number
and phone of those who did not consent to sharing; the provincial account shows what was
typed, with the dirt the contract lists, including the cases only probabilistic matching
can settle (homophone, dropped character, mistyped birth date with no usable number, phone
or county changed) and distinct people who share a common name and birth date.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from sandbox import dirt
from sandbox.clock import DAY, Clock
from sandbox.geo import (
    OUTSIDE_PROVINCE_COUNTIES,
    Geography,
    area_codes,
    dated_area_codes,
    shown_county_codes,
)
from sandbox.idnumbers import ric_body, ric_check_chars
from sandbox.names import (
    COMMON_FULL_NAMES_FEMALE,
    COMMON_FULL_NAMES_MALE,
    GIVEN_CHARS_FEMALE,
    GIVEN_CHARS_MALE,
    PHONE_PREFIXES,
    POPULAR_GIVEN_FEMALE,
    POPULAR_GIVEN_MALE,
    SKILLS,
    SURNAMES,
    weighted_labels,
)
from sandbox.world_db import (
    NATIONAL,
    PROVINCIAL,
    Built,
    account_frame,
    fixed_width_ids,
    invalid_count,
    invalid_frame,
    iso_dates,
    j_bool,
    j_num,
    j_str,
    join_tags,
    nulls_where,
    objects,
    provincial_dates,
    provincial_times,
    stored_rows,
    take_ids,
)

PROVINCIAL_VOLUNTEER_BASE = 1_000_000
VOLUNTEER_NUMBER = "52{:012d}"  # the national volunteer number (albp0029) of a counter
STAR_THRESHOLDS = np.array([100, 300, 600, 1000, 1500])

# --- names, phones, ID numbers -------------------------------------------------------------

_SURNAME_TEXT = tuple(s for s, _ in SURNAMES)
_SURNAME_WEIGHTS = tuple(w for _, w in SURNAMES)


def _given_names(rng: np.random.Generator, male: np.ndarray) -> np.ndarray:
    n = len(male)
    out = np.empty(n, dtype="<U2")
    for is_male, popular, chars in (
        (True, POPULAR_GIVEN_MALE, GIVEN_CHARS_MALE),
        (False, POPULAR_GIVEN_FEMALE, GIVEN_CHARS_FEMALE),
    ):
        rows = np.flatnonzero(male == is_male)
        names = weighted_labels(
            rng, tuple(g for g, _ in popular), tuple(w for _, w in popular), len(rows)
        )
        first = np.array(list(chars[0]))[rng.integers(0, len(chars[0]), len(rows))]
        second = np.array(list(chars[1]))[rng.integers(0, len(chars[1]), len(rows))]
        composed = np.strings.add(first, second)
        kind = rng.random(len(rows))
        names = np.where(kind < 0.45, names, np.where(kind < 0.55, second, composed))
        out[rows] = names
    return out


def random_names(rng: np.random.Generator, n: int, male: np.ndarray | None = None):
    """Full names and the length of their family name (2 for compound ones like 欧阳)."""
    if male is None:
        male = rng.random(n) < 0.5
    surnames = weighted_labels(rng, _SURNAME_TEXT, _SURNAME_WEIGHTS, n)
    names = np.strings.add(surnames, _given_names(rng, np.asarray(male)))
    return names.astype(object), np.strings.str_len(surnames)


def random_phones(rng: np.random.Generator, n: int) -> np.ndarray:
    if n == 0:
        return np.empty(0, dtype=object)
    prefixes = np.array(PHONE_PREFIXES)[rng.integers(0, len(PHONE_PREFIXES), n)]
    tails = np.strings.zfill(rng.integers(0, 10**8, n).astype("<U8"), 8)
    return np.strings.add(prefixes, tails).astype(object)


class IdRegistry:
    """Every resident ID number issued so far, so that no two persons share one.

    Kept as one sorted int64 array (8 bytes a person): 5 million persons take 40 MB.
    """

    def __init__(self) -> None:
        self.claimed = np.empty(0, dtype=np.int64)

    def taken(self, bodies: np.ndarray) -> np.ndarray:
        """Which bodies are already issued or repeated within `bodies` (later copies)."""
        position = np.searchsorted(self.claimed, bodies)
        inside = position < len(self.claimed)
        clash = np.zeros(len(bodies), dtype=bool)
        clash[inside] = self.claimed[position[inside]] == bodies[inside]
        _, first = np.unique(bodies, return_index=True)
        repeated = np.ones(len(bodies), dtype=bool)
        repeated[first] = False
        return clash | repeated

    def claim(self, bodies: np.ndarray) -> None:
        bodies = np.sort(bodies)
        self.claimed = np.insert(self.claimed, np.searchsorted(self.claimed, bodies), bodies)


def _sequences(rng: np.random.Generator, male: np.ndarray) -> np.ndarray:
    """The 3-digit order code: odd for men, even for women."""
    return np.where(
        male, rng.integers(0, 500, len(male)) * 2 + 1, rng.integers(1, 500, len(male)) * 2
    )


def issue_numbers(
    rng: np.random.Generator,
    registry: IdRegistry,
    birth_county: np.ndarray,
    birth_ymd: np.ndarray,
    male: np.ndarray,
) -> np.ndarray:
    """Unique 18-character resident ID numbers; clashes get a new order code."""
    sequence = _sequences(rng, male)
    body = ric_body(birth_county.astype(np.int64), birth_ymd, sequence)
    for _ in range(50):
        clash = registry.taken(body)
        if not clash.any():
            break
        sequence[clash] = _sequences(rng, male[clash])
        body = ric_body(birth_county.astype(np.int64), birth_ymd, sequence)
    registry.claim(body)
    return np.strings.add(body.astype("<U17"), ric_check_chars(body)).astype(object)


# --- persons -------------------------------------------------------------------------------


def _birth_days(rng: np.random.Generator, n: int, clock: Clock) -> np.ndarray:
    """Days since 1970 of birth dates: many students, most of working age, some retired."""
    age_group = rng.random(n)
    age_years = np.where(
        age_group < 0.35,
        rng.uniform(16, 25, n),
        np.where(age_group < 0.8, rng.uniform(25, 55, n), rng.uniform(55, 75, n)),
    )
    return (clock.as_of // DAY - (age_years * 365.25).astype(np.int64)).astype(np.int64)


def _ymd(days: np.ndarray) -> np.ndarray:
    text = np.datetime_as_string(days.astype("datetime64[D]"), unit="D")
    return np.strings.replace(text, "-", "").astype(np.int64)


def _birth_counties(
    rng: np.random.Generator, geo: Geography, home: np.ndarray, birth_ymd: np.ndarray
) -> np.ndarray:
    """Birth-place codes in force in each birth year; most were born in their home county."""
    years = birth_ymd // 10_000
    out = np.empty(len(home), dtype="<U6")
    for year in np.unique(years):
        rows = np.flatnonzero(years == year)
        codes = geo.birth_codes_for_year(int(year))
        out[rows] = codes[rng.integers(0, len(codes), len(rows))]
        local = rows[np.isin(home[rows], codes) & (rng.random(len(rows)) < 0.6)]
        out[local] = home[local]
    return out


def _plant_namesakes(rng: np.random.Generator, frame: pd.DataFrame) -> None:
    """Distinct people with one of the commonest names and the same birth date (some in the
    same county): their valid, different ID numbers are what tells them apart."""
    n = len(frame)
    pairs = round(n * 0.006) if n >= 150 else min(1, n // 2)
    if pairs == 0:
        return
    picked = rng.choice(n, size=2 * pairs, replace=False)
    targets, twins = picked[:pairs], picked[pairs:]
    male = frame["gender"].to_numpy()[targets] == "M"
    common = np.where(
        male,
        np.array(COMMON_FULL_NAMES_MALE)[rng.integers(0, len(COMMON_FULL_NAMES_MALE), pairs)],
        np.array(COMMON_FULL_NAMES_FEMALE)[rng.integers(0, len(COMMON_FULL_NAMES_FEMALE), pairs)],
    )
    columns = ["name", "surname_length", "gender", "birth_day"]
    frame.loc[targets, "name"] = common
    frame.loc[targets, "surname_length"] = 1
    for column in columns:
        frame.loc[twins, column] = frame.loc[targets, column].to_numpy()
    same_county = rng.random(pairs) < 0.5
    frame.loc[twins[same_county], "county"] = frame.loc[targets[same_county], "county"].to_numpy()
    frame.loc[twins, "namesake_of"] = frame.loc[targets, "person_id"].to_numpy()


def build_persons(
    rng: np.random.Generator,
    n: int,
    first_seq: int,
    clock: Clock,
    geo: Geography,
    registry: IdRegistry,
) -> pd.DataFrame:
    """`n` true persons with person ids P<first_seq>…, certificate numbers issued in `registry`."""
    counties = geo.county_codes
    male = rng.random(n) < 0.45
    names, surname_length = random_names(rng, n, male)
    frame = pd.DataFrame(
        {
            "person_id": objects([f"P{k:09d}" for k in range(first_seq, first_seq + n)]),
            "name": objects(names),
            "surname_length": surname_length.astype(np.int64),
            "gender": objects(np.where(male, "M", "F")),
            "birth_day": _birth_days(rng, n, clock),
            "county": objects(counties[rng.integers(0, len(counties), n)]),
            "namesake_of": objects([None] * n),
        }
    )
    _plant_namesakes(rng, frame)
    male = frame["gender"].to_numpy() == "M"
    birth_ymd = _ymd(frame["birth_day"].to_numpy())
    birth_county = _birth_counties(rng, geo, frame["county"].to_numpy().astype("<U6"), birth_ymd)
    twins = frame["namesake_of"].notna().to_numpy()
    frame["birth_ymd"] = birth_ymd
    frame["cert_no"] = objects(issue_numbers(rng, registry, birth_county, birth_ymd, male))
    frame["phone"] = objects(random_phones(rng, n))
    frame["prefecture"] = objects(frame["county"].to_numpy().astype("<U4"))
    frame["presence"] = objects(
        weighted_labels(rng, ("both", "national", "provincial"), (45, 30, 25), n)
    )
    earliest = np.maximum(clock.start, (frame["birth_day"].to_numpy() + 14 * 365) * DAY)
    frame["national_reg"] = clock.between(rng, earliest, clock.as_of - 3 * DAY, skew=0.7)
    frame["provincial_reg"] = clock.between(rng, earliest, clock.as_of - 3 * DAY, skew=0.7)
    frame["is_namesake"] = twins
    return frame


# --- accounts ------------------------------------------------------------------------------


def allocate_accounts(
    rng: np.random.Generator, persons: pd.DataFrame, next_ids: dict[str, int], clock: Clock
) -> pd.DataFrame:
    """One row per account: which person, which system, its row id and source id.

    `next_ids` holds the next free sequence per (source, table) and is advanced.
    """
    presence = persons["presence"].to_numpy()
    national = np.flatnonzero(np.isin(presence, ["both", "national"]))
    provincial = np.flatnonzero(np.isin(presence, ["both", "provincial"]))
    second = provincial[rng.random(len(provincial)) < 0.01]  # registered twice on the platform
    nat_seq = take_ids(next_ids, "national.volunteers", len(national))
    prov_people = np.concatenate([provincial, second])
    prov_seq = take_ids(next_ids, "provincial.volunteers", len(prov_people))
    prov_ids = PROVINCIAL_VOLUNTEER_BASE + prov_seq
    reg = np.concatenate(
        [
            persons["national_reg"].to_numpy()[national],
            persons["provincial_reg"].to_numpy()[provincial],
            persons["provincial_reg"].to_numpy()[second] + rng.integers(30, 400, len(second)) * DAY,
        ]
    )
    return pd.DataFrame(
        {
            "person": np.concatenate([national, prov_people]),
            "source": objects([NATIONAL] * len(national) + [PROVINCIAL] * len(prov_people)),
            "row_id": objects(
                np.concatenate(
                    [
                        fixed_width_ids(nat_seq).to_numpy(zero_copy_only=False),
                        prov_ids.astype(str),
                    ]
                )
            ),
            "source_id": objects(
                np.concatenate(
                    [
                        np.array([VOLUNTEER_NUMBER.format(k) for k in nat_seq], dtype=object),
                        prov_ids.astype(str),
                    ]
                )
            ),
            "reg": np.minimum(reg, clock.as_of - 3 * DAY),
            "second_account": np.concatenate(
                [np.zeros(len(national) + len(provincial), bool), np.ones(len(second), bool)]
            ),
        }
    )


def star_levels(hours: np.ndarray) -> np.ndarray:
    """Stars by the national thresholds (100/300/600/1000/1500 hours)."""
    return np.searchsorted(STAR_THRESHOLDS, hours, side="right")


def _volunteer_updates(
    rng, clock: Clock, reg: np.ndarray, last_service_update: np.ndarray, deleted: np.ndarray
):
    updated = np.maximum(clock.updated_after(rng, reg, 120), last_service_update)
    updated = clock.with_batch_stamps(rng, reg, updated)
    return clock.with_deletions(rng, updated, deleted)


def national_volunteers(
    rng: np.random.Generator,
    persons: pd.DataFrame,
    accounts: pd.DataFrame,
    clock: Clock,
    deleted: np.ndarray,
    hours: np.ndarray,
    last_service_update: np.ndarray,
    all_active: bool = False,
) -> Built:
    """National volunteer rows (albp*): codes, masked numbers for those without consent."""
    people = persons.iloc[accounts["person"].to_numpy()]
    n = len(accounts)
    consent = rng.random(n) < 0.6
    cert = people["cert_no"].to_numpy()
    phone = people["phone"].to_numpy()
    shown_cert = np.where(consent, cert, [dirt.masked_number(c) for c in cert])
    shown_phone = np.where(consent, phone, [dirt.masked_phone(p) for p in phone])
    shown_phone = np.where(rng.random(n) < 0.03, None, shown_phone)
    names = people["name"].to_numpy().copy()
    roll = rng.random(n)
    tags = np.full(n, "", dtype=object)
    spoil = roll < 0.01
    names[spoil] = [dirt.traditional(x) for x in names[spoil]]
    tags[spoil] = "name_traditional"
    spaces = (roll >= 0.01) & (roll < 0.02)
    names[spaces] = [dirt.stray_spaces(x, rng) for x in names[spaces]]
    tags[spaces] = "name_spaces"
    region, stale = shown_county_codes(rng, people["county"].to_numpy())
    tags = join_tags(tags, np.where(stale, "region_retired", ""), np.where(consent, "", "masked"))
    gender = np.where(people["gender"].to_numpy() == "M", "1", "2")
    gender = np.where(rng.random(n) < 0.02, None, gender)
    status = weighted_labels(rng, ("1", "2", "3"), (94, 4, 2), n)
    if all_active:
        status[:] = "1"
    counter = np.round(hours + np.where(rng.random(n) < 0.1, rng.uniform(0, 40, n), 0), 2)
    redeemed = np.round(np.where(rng.random(n) < 0.1, counter * rng.uniform(0, 0.3, n), 0), 2)
    reg = accounts["reg"].to_numpy()
    updated = _volunteer_updates(rng, clock, reg, last_service_update, deleted)
    fields = [
        ("albp0029", j_str(accounts["source_id"].to_numpy(dtype=str))),
        ("albp0003", j_str(names)),
        ("albp0004", j_str(np.full(n, "01"))),
        ("albp0005", j_str(shown_cert)),
        ("albp0006", j_str(gender)),
        ("albp0010", j_str(shown_phone)),
        ("albp0020", j_str(region)),
        ("albp0026", j_num(star_levels(counter))),
        ("albp0034", j_str(iso_dates(reg))),
        ("albp0089", j_num(counter)),
        ("albp0090", j_str(status)),
        ("albp0093", j_num(redeemed)),
        ("albp0094", j_num(np.round(counter - redeemed, 2))),
        ("share_consent", j_bool(consent)),
    ]
    row_ids = pa.array(accounts["row_id"].to_numpy(dtype=str))
    rows = stored_rows(NATIONAL, "volunteers", row_ids, fields, updated, deleted, region)
    words = np.array(["active", "deregistered", "frozen"])[status.astype(int) - 1]
    truth = account_frame(
        rows,
        "volunteer",
        people["person_id"],
        updated,
        deleted,
        source_ids=accounts["source_id"],
        status=words,
        dirt=tags,
    )
    return Built(rows=[rows], accounts=[truth])


# Shares of provincial accounts spoiled each way (the rest is typed cleanly).
CERT_DIRT = (
    ("cert_fullwidth", 0.03),
    ("cert_spaces", 0.03),
    ("cert_15", 0.03),
    ("cert_mistyped", 0.02),
    ("cert_missing", 0.01),
)
NAME_DIRT = (("name_traditional", 0.04), ("name_spaces", 0.03), ("name_romanised", 0.01))


def _pick_kinds(
    rng: np.random.Generator, n: int, kinds: tuple[tuple[str, float], ...]
) -> np.ndarray:
    """Which dirt each row gets ('' for none), drawn once for all rows."""
    edges = np.cumsum([share for _, share in kinds])
    index = np.searchsorted(edges, rng.random(n), side="right")
    return np.array([kind for kind, _ in kinds] + [""], dtype=object)[index]


def _spoiled_cert(rng: np.random.Generator, cert: str, kind: str) -> str:
    if kind == "cert_fullwidth":
        return dirt.fullwidth(cert)
    if kind == "cert_spaces":
        return dirt.spaced(cert, rng)
    if kind == "cert_15":
        return cert[:6] + cert[8:17]
    if kind == "cert_mistyped":
        return dirt.mistyped_digit(cert, rng)
    return ""


def _spoiled_name(
    rng: np.random.Generator, name: str, surname_length: int, kind: str
) -> str | None:
    if kind == "name_traditional":
        return dirt.traditional(name)
    if kind == "name_spaces":
        return dirt.stray_spaces(name, rng)
    if kind == "name_romanised":
        return dirt.romanised(name, rng, max_marks=1)
    if kind == "name_homophone":
        return dirt.homophone(name, surname_length, rng)
    return dirt.dropped_character(name, surname_length, rng)


def _typed_certs(rng, certs: np.ndarray, birth_ymd: np.ndarray, bad_birth: np.ndarray):
    """Numbers as typed, their dirt tags, and birthdays (mistyped where `bad_birth`)."""
    n = len(certs)
    kinds = _pick_kinds(rng, n, CERT_DIRT)
    kinds[(kinds == "cert_15") & (birth_ymd >= 20000000)] = ""  # only people born in 19xx had one
    lower = np.array([c.endswith("X") for c in certs]) & (rng.random(n) < 0.5) & (kinds == "")
    kinds[lower] = "cert_lower_x"
    kinds[bad_birth] = np.where(
        rng.random(int(bad_birth.sum())) < 0.5, "cert_missing", "cert_mistyped"
    )
    typed = certs.copy()
    for i in np.flatnonzero(kinds != ""):
        typed[i] = (
            certs[i][:-1] + "x"
            if kinds[i] == "cert_lower_x"
            else _spoiled_cert(rng, certs[i], kinds[i])
        )
    birthdays = birth_ymd.copy()
    for i in np.flatnonzero(bad_birth):
        birthdays[i] = int(dirt.mistyped_date(str(birth_ymd[i]), rng))
    return typed, kinds, birthdays


def _typed_names(rng, names: np.ndarray, surname_length: np.ndarray, hard: np.ndarray):
    """Names as typed and their dirt tags; `hard` rows get a homophone or a dropped character."""
    kinds = _pick_kinds(rng, len(names), NAME_DIRT)
    kinds[hard] = np.where(
        rng.random(int(hard.sum())) < 0.75, "name_homophone", "name_dropped_char"
    )
    typed = names.copy()
    for i in np.flatnonzero(kinds != ""):
        spoiled = _spoiled_name(rng, names[i], int(surname_length[i]), kinds[i])
        if spoiled is None:  # no homophone for these characters, or too short to drop one
            kinds[i] = ""
        else:
            typed[i] = spoiled
    return typed, kinds


def provincial_volunteers(
    rng: np.random.Generator,
    persons: pd.DataFrame,
    accounts: pd.DataFrame,
    clock: Clock,
    geo: Geography,
    deleted: np.ndarray,
    minutes: np.ndarray,
    last_service_update: np.ndarray,
    national_no: np.ndarray,
) -> Built:
    """Provincial volunteer rows: labels, typed numbers and phones, the matching-hard cases."""
    people = persons.iloc[accounts["person"].to_numpy()]
    n = len(accounts)
    both = people["presence"].to_numpy() == "both"
    hard = both & (rng.random(n) < 0.06)  # a name typed differently from the national one
    bad_birth = both & (rng.random(n) < 0.02)  # birth date mistyped, number missing or mistyped
    new_phone = both & (rng.random(n) < 0.05)
    moved = both & (rng.random(n) < 0.03)
    names, name_kinds = _typed_names(
        rng, people["name"].to_numpy(), people["surname_length"].to_numpy(), hard
    )
    certs, cert_kinds, birthdays_ymd = _typed_certs(
        rng, people["cert_no"].to_numpy(), people["birth_ymd"].to_numpy(), bad_birth
    )
    phone = people["phone"].to_numpy().copy()
    phone[new_phone] = random_phones(rng, int(new_phone.sum()))
    typed_phone = np.array(
        [dirt.phone_as_typed(p, rng) if r < 0.35 else p for p, r in zip(phone, rng.random(n))],
        dtype=object,
    )
    typed_phone[rng.random(n) < 0.05] = None
    county = people["county"].to_numpy().astype("<U6")
    codes = geo.county_codes
    home_index = np.searchsorted(codes, county[moved])  # codes are sorted
    county[moved] = codes[(home_index + rng.integers(1, len(codes), int(moved.sum()))) % len(codes)]
    shown, stale = shown_county_codes(rng, county)
    reg = accounts["reg"].to_numpy()
    area, twelve = dated_area_codes(rng, shown, reg, clock.as_of)
    birth_days = (
        pd.to_datetime(pd.Series(birthdays_ymd).astype(str), format="%Y%m%d")
        .to_numpy()
        .astype("datetime64[s]")
        .astype(np.int64)
    )
    birthday = nulls_where(provincial_dates(birth_days, rng), (rng.random(n) < 0.2) & ~bad_birth)
    sex = np.where(people["gender"].to_numpy() == "M", "男", "女")
    flip = rng.random(n) < 0.003
    sex[flip] = np.where(sex[flip] == "男", "女", "男")
    sex = np.where(rng.random(n) < 0.03, None, sex)
    counter = np.round(minutes + np.where(rng.random(n) < 0.1, rng.uniform(0, 2400, n), 0)).astype(
        np.int64
    )
    star = np.where(rng.random(n) < 0.2, None, star_levels(counter / 60).astype(object))
    first_skill = np.array(SKILLS, dtype=object)[rng.integers(0, len(SKILLS), n)]
    other_skill = np.array(SKILLS, dtype=object)[rng.integers(0, len(SKILLS), n)]
    skills = np.where(rng.random(n) < 0.5, first_skill, first_skill + "," + other_skill)
    skills = np.where((rng.random(n) < 0.6) | (first_skill == other_skill), None, skills)
    updated = _volunteer_updates(rng, clock, reg, last_service_update, deleted)
    fields = [
        ("realName", j_str(names)),
        ("certType", j_str(np.full(n, "身份证"))),
        ("certNo", j_str(certs)),
        ("sex", j_str(sex)),
        ("birthday", j_str(birthday)),
        ("mobile", j_str(typed_phone)),
        ("areaCode", j_str(area)),
        ("regTime", j_str(provincial_times(reg))),
        ("skills", j_str(skills)),
        ("serviceMinutes", j_num(counter)),
        ("starLevel", j_num(pa.array(star.tolist(), pa.int64()))),
        ("nationalVolunteerNo", j_str(national_no)),
    ]
    row_ids = accounts["row_id"].to_numpy(dtype=str).astype(np.int64)
    rows = stored_rows(PROVINCIAL, "volunteers", row_ids, fields, updated, deleted, area)
    joined = join_tags(
        name_kinds,
        cert_kinds,
        np.where(bad_birth, "birth_mistyped", ""),
        np.where(new_phone, "phone_changed", ""),
        np.where(moved, "moved_county", ""),
        np.where(stale, "region_retired", ""),
        np.where(twelve, "", "area_6"),
    )
    truth = account_frame(
        rows,
        "volunteer",
        people["person_id"],
        updated,
        deleted,
        status=np.full(n, "active"),
        dirt=joined,
    )
    return Built(rows=[rows], accounts=[truth])


# --- invalid volunteer rows ----------------------------------------------------------------


def invalid_volunteers(
    rng: np.random.Generator,
    clock: Clock,
    geo: Geography,
    registry: IdRegistry,
    next_ids: dict[str, int],
    accounts: int,
) -> Built:
    """Accounts of people outside the world that a pipeline must quarantine: no name
    (either system), or registered in another province (provincial only)."""
    nat_count = invalid_count(rng, accounts)
    prov_no_name = invalid_count(rng, accounts)
    prov_outside = invalid_count(rng, accounts)
    total = nat_count + prov_no_name + prov_outside
    ghosts = build_persons(rng, max(total, 2), 0, clock, geo, registry).iloc[:total]
    updated = clock.updated_after(rng, ghosts["national_reg"].to_numpy(), 60)
    built = _nameless_national_volunteers(
        rng, ghosts.iloc[:nat_count], updated[:nat_count], next_ids
    )
    built.extend(
        _invalid_provincial_volunteers(
            rng, ghosts.iloc[nat_count:], updated[nat_count:], prov_no_name, next_ids
        )
    )
    return built


def _nameless_national_volunteers(
    rng: np.random.Generator, ghosts: pd.DataFrame, updated: np.ndarray, next_ids: dict[str, int]
) -> Built:
    """National accounts of the ghosts with an empty or blank name (missing_required)."""
    count = len(ghosts)
    seqs = take_ids(next_ids, "national.volunteers", count)
    numbers = np.array([VOLUNTEER_NUMBER.format(k) for k in seqs])
    zeros = np.zeros(count, dtype=int)
    fields = [
        ("albp0029", j_str(numbers)),
        ("albp0003", j_str(np.where(rng.random(count) < 0.5, "", "  "))),
        ("albp0004", j_str(np.full(count, "01"))),
        ("albp0005", j_str(ghosts["cert_no"].to_numpy())),
        ("albp0006", j_str(np.where(ghosts["gender"].to_numpy() == "M", "1", "2"))),
        ("albp0010", j_str(ghosts["phone"].to_numpy())),
        ("albp0020", j_str(ghosts["county"].to_numpy())),
        ("albp0026", j_num(zeros)),
        ("albp0034", j_str(iso_dates(ghosts["national_reg"].to_numpy()))),
        ("albp0089", j_num(zeros)),
        ("albp0090", j_str(np.full(count, "1"))),
        ("albp0093", j_num(zeros)),
        ("albp0094", j_num(zeros)),
        ("share_consent", j_bool(np.ones(count, dtype=bool))),
    ]
    rows = stored_rows(
        NATIONAL,
        "volunteers",
        fixed_width_ids(seqs),
        fields,
        updated,
        np.zeros(count, dtype=bool),
        ghosts["county"].to_numpy(),
    )
    rules = ["missing_required"] * count
    return Built(rows=[rows], invalid=[invalid_frame(rows, "volunteer", rules, source_ids=numbers)])


def _invalid_provincial_volunteers(
    rng: np.random.Generator,
    ghosts: pd.DataFrame,
    updated: np.ndarray,
    no_name: int,
    next_ids: dict[str, int],
) -> Built:
    """The first `no_name` ghosts registered without a name, the others outside Guizhou."""
    count = len(ghosts)
    ids = PROVINCIAL_VOLUNTEER_BASE + take_ids(next_ids, "provincial.volunteers", count)
    outside = np.arange(count) >= no_name
    counties = np.where(
        outside, rng.choice(OUTSIDE_PROVINCE_COUNTIES, count), ghosts["county"].to_numpy()
    )
    area = area_codes(rng, counties, np.ones(count, dtype=bool))
    blank = np.where(rng.random(count) < 0.5, "", "\u3000")
    names = np.where(outside, ghosts["name"].to_numpy(), blank)
    registered = ghosts["provincial_reg"].to_numpy()
    fields = [
        ("realName", j_str(names)),
        ("certType", j_str(np.full(count, "身份证"))),
        ("certNo", j_str(ghosts["cert_no"].to_numpy())),
        ("sex", j_str(np.where(ghosts["gender"].to_numpy() == "M", "男", "女"))),
        ("birthday", j_str([None] * count)),
        ("mobile", j_str(ghosts["phone"].to_numpy())),
        ("areaCode", j_str(area)),
        ("regTime", j_str(provincial_times(registered))),
        ("skills", j_str([None] * count)),
        ("serviceMinutes", j_num(np.zeros(count, dtype=int))),
        ("starLevel", j_num(np.zeros(count, dtype=int))),
        ("nationalVolunteerNo", j_str([None] * count)),
    ]
    rows = stored_rows(
        PROVINCIAL,
        "volunteers",
        ids,
        fields,
        np.maximum(updated, registered),
        np.zeros(count, dtype=bool),
        area,
    )
    rules = np.where(outside, "region_outside_province", "missing_required")
    return Built(rows=[rows], invalid=[invalid_frame(rows, "volunteer", rules)])
