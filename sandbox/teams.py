"""Organizations of the synthetic world, and their team rows in the two systems.

A true organization (level 省级…单位, registration, categories, status, leader) lives in the
national system, the provincial platform or both. The national row speaks codes (albe0003
type, albe0026 status, albe0014 category codes); the provincial row speaks labels
(regStatus, status, serviceTypes with older synonyms) and carries the typing debris: names
in traditional characters, romanised or with doubled punctuation, a prefecture prefix only
the credit code links, a credit code in lower case or with spaces. Planted invalid team rows
(no name, or registered outside Guizhou) are extra rows, never projections of a true
organization.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sandbox import dirt
from sandbox.clock import DAY, YEAR, Clock
from sandbox.geo import (
    OUTSIDE_PROVINCE_COUNTIES,
    Geography,
    area_codes,
    dated_area_codes,
    prefecture_label,
    shown_county_codes,
)
from sandbox.idnumbers import make_uscc, random_org_bodies
from sandbox.names import (
    CATEGORY_CODES,
    CATEGORY_WEIGHTS,
    PLACES,
    PROVINCIAL_TEAMS,
    SUPERVISING_UNITS,
    TEAM_THEMES,
    UNITS,
    provincial_labels,
    weighted_choice,
    weighted_labels,
)
from sandbox.people import random_names, random_phones
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
    j_list,
    j_num,
    j_str,
    join_tags,
    nulls_where,
    number_entities,
    provincial_dates,
    stored_rows,
)

LEVELS = ("省级", "市级", "县级", "乡镇", "社区", "单位")
LEVEL_WEIGHTS = (2, 8, 25, 22, 25, 18)
TEAM_ID_BASE = 10_000  # provincial team ids
TEAM_NUMBER = "T52{:08d}"  # the national team number (albe0001) of a team's counter
NATIONAL_STATUS = {  # true status -> albe0026 codes it shows as
    "active": ("1", "2"),
    "suspended": ("0", "3", "5"),
    "exited": ("3",),  # the national system has no exit: the team shows as 停用
    "deleted": ("4",),
}
PROVINCIAL_STATUS = {"active": "正常", "suspended": "停用", "exited": "退出", "deleted": "正常"}

# --- true organizations --------------------------------------------------------------------


def _team_name(rng, level: str, county, prefecture_name: str) -> tuple[str, str]:
    """A team name for its level, and the category its theme serves."""
    theme, category = TEAM_THEMES[int(rng.integers(len(TEAM_THEMES)))]
    place = PLACES[int(rng.integers(len(PLACES)))]
    unit = UNITS[int(rng.integers(len(UNITS)))]
    kind = int(rng.integers(3))
    if level == "省级":
        names = (
            PROVINCIAL_TEAMS[int(rng.integers(len(PROVINCIAL_TEAMS)))],
            f"贵州省{theme}志愿服务总队",
            f"贵州省{theme}志愿者协会",
        )
    elif level == "市级":
        names = (
            f"{prefecture_name}{theme}志愿者协会",
            f"{prefecture_name}{theme}志愿服务支队",
            f"{prefecture_name}志愿服务联合会",
        )
    elif level == "县级":
        names = (
            f"{county.name}{theme}志愿服务队",
            f"{county.name}志愿者协会",
            f"{county.name}{SUPERVISING_UNITS[kind]}{theme}志愿服务队",
        )
    elif level == "乡镇":
        names = (
            f"{county.name}{place}镇志愿服务队",
            f"{county.name}{place}街道{theme}志愿服务队",
            f"{place}镇{theme}志愿服务队",
        )
    elif level == "社区":
        names = (
            f"{county.name}{place}社区志愿服务队",
            f"{place}社区{theme}志愿服务队",
            f"{place}村志愿服务队",
        )
    else:
        names = (f"{unit}{theme}志愿服务队", f"{unit}志愿服务队", f"{county.name}{unit}志愿服务队")
    return names[kind], category


def _unique_names(names: list[str], counties: np.ndarray) -> list[str]:
    """Distinct true organizations never share a name within a county (that would merge them)."""
    seen: dict[tuple[str, str], int] = {}
    out = []
    for name, county in zip(names, counties):
        key = (name, county)
        seen[key] = seen.get(key, 0) + 1
        out.append(name if seen[key] == 1 else f"{name}第{seen[key]}分队")
    return out


def build_orgs(rng: np.random.Generator, count: int, clock: Clock, geo: Geography) -> pd.DataFrame:
    """The true organizations: who they are and where they appear."""
    counties = list(geo.counties)
    county_index = rng.integers(0, len(counties), size=count)
    levels = weighted_labels(rng, LEVELS, LEVEL_WEIGHTS, count)
    seat = {}
    for c in counties:  # a prefecture's teams sit in its first (seat) district
        seat.setdefault(c.prefecture_code, c)
    province_seat = geo.county("520102")
    chosen = []
    for i, level in zip(county_index, levels):
        county = counties[i]
        if level == "省级":
            county = province_seat
        elif level == "市级":
            county = seat[county.prefecture_code]
        chosen.append(county)
    county_codes = np.array([c.code for c in chosen])
    names, main_categories = zip(
        *(
            _team_name(rng, level, c, prefecture_label(c.prefecture_code))
            for level, c in zip(levels, chosen)
        )
    )
    presence = weighted_labels(rng, ("both", "national", "provincial"), (45, 25, 30), count)
    registration = weighted_labels(
        rng, ("registered", "filed", "unregistered"), (45, 25, 30), count
    )
    # "Filed" is a provincial notion: a national-only team is registered or not.
    registration = np.where(
        (presence == "national") & (registration == "filed"), "unregistered", registration
    )
    status = weighted_labels(
        rng, ("active", "suspended", "exited", "deleted"), (88, 6, 4, 2), count
    )
    status = np.where((presence == "national") & (status == "exited"), "suspended", status)
    categories = []
    for main in main_categories:
        extra = [
            CATEGORY_CODES[i]
            for i in weighted_choice(rng, CATEGORY_CODES, CATEGORY_WEIGHTS, int(rng.integers(0, 3)))
        ]
        categories.append(sorted({main, *extra}))
    founded = clock.between(rng, np.full(count, clock.as_of - 12 * YEAR), clock.as_of - 60 * DAY)
    uscc_codes: list[str | None] = [None] * count
    team_types = np.full(count, "1", dtype=object)
    registered = np.flatnonzero(registration == "registered")
    bodies = random_org_bodies(rng, len(registered))
    for body, i in zip(bodies, registered):
        kind = str(rng.choice(["1", "2", "3"], p=[0.6, 0.35, 0.05]))
        region = {"省级": "520000", "市级": county_codes[i][:4] + "00"}.get(
            levels[i], county_codes[i]
        )
        uscc_codes[i] = make_uscc("5" + kind, region, body)
        team_types[i] = "3" if rng.random() < 0.15 else "2"
    leaders, _ = random_names(rng, count)
    return pd.DataFrame(
        {
            "org_id": [f"O{i + 1:07d}" for i in range(count)],
            "name": _unique_names(list(names), county_codes),
            "county": county_codes,
            "prefecture": [c.prefecture_code for c in chosen],
            "county_name": [c.name for c in chosen],
            "level": levels,
            "is_hub": (np.isin(levels, ["省级", "市级"]) & (rng.random(count) < 0.4))
            | (rng.random(count) < 0.02),
            "registration_status": registration,
            "team_type": team_types,
            "uscc": uscc_codes,
            "categories": categories,
            "main_category": list(main_categories),
            "founded": founded,
            "credit_status": weighted_labels(rng, ("良好", "警示", "失信"), (90, 7, 3), count),
            "status": status,
            "member_count": np.maximum(3, rng.lognormal(3.3, 1.0, size=count).astype(int)),
            "presence": presence,
            "in_national": np.isin(presence, ["both", "national"]),
            "in_provincial": np.isin(presence, ["both", "provincial"]),
            "leader": leaders,
            "leader_phone": random_phones(rng, count),
            "authority_unit": [
                SUPERVISING_UNITS[int(k)] for k in rng.integers(0, len(SUPERVISING_UNITS), count)
            ],
        }
    )


def project_orgs(rng: np.random.Generator, orgs: pd.DataFrame, clock: Clock) -> Built:
    """The national and provincial team rows of the true organizations (ids assigned here)."""
    built = Built()
    created = clock.between(
        rng, np.maximum(orgs["founded"].to_numpy(), clock.start), clock.as_of - 30 * DAY, skew=0.8
    )
    nat, prov = number_entities(orgs, TEAM_NUMBER, TEAM_ID_BASE)
    orgs["created"] = created
    built.extend(_national_teams(rng, orgs.loc[nat], clock))
    built.extend(_provincial_teams(rng, orgs.loc[prov], clock))
    return built


# --- national team rows --------------------------------------------------------------------


def _registration_authority(org) -> str:
    if org.level == "省级":
        return "贵州省民政厅"
    if org.level == "市级":
        return prefecture_label(org.prefecture) + "民政局"
    return org.county_name + "民政局"


def _national_teams(rng, teams: pd.DataFrame, clock: Clock) -> Built:
    """National team rows (albe*): codes, and the registering authority of registered teams."""
    n = len(teams)
    status = teams["status"].to_numpy()
    albe0026 = np.array([str(rng.choice(NATIONAL_STATUS[s])) for s in status])
    albe0026 = np.where((status == "active") & (rng.random(n) < 0.9), "1", albe0026)
    deleted = (status == "deleted") & (rng.random(n) < 0.5)
    updated = clock.last_updated(rng, teams["created"], 200)
    names = teams["name"].to_numpy(dtype=object).copy()
    tradition = rng.random(n) < 0.01
    names[tradition] = [dirt.traditional(x) for x in names[tradition]]
    region, _ = shown_county_codes(rng, teams["county"].to_numpy())
    founded = nulls_where(iso_dates(teams["founded"].to_numpy()), rng.random(n) < 0.1)
    registered = teams["team_type"].to_numpy() != "1"
    uscc = teams["uscc"].where(registered, None)
    authority = [
        (_registration_authority(o) if r else None) for o, r in zip(teams.itertuples(), registered)
    ]
    supervising = [o.county_name + o.authority_unit for o in teams.itertuples()]
    fields = [
        ("albe0001", j_str(teams["national_no"])),
        ("albe0002", j_str(names)),
        ("albe0003", j_str(teams["team_type"].to_numpy(dtype=str))),
        ("albe0008", j_str(uscc)),
        ("albe0009", j_str(authority)),
        ("albe0011", j_str(supervising)),
        ("albe0012", j_str(region)),
        ("albe0014", j_list(teams["categories"].tolist())),
        ("albe0018", j_str(teams["leader"])),
        ("albe0019", j_str(teams["leader_phone"])),
        ("albe0026", j_str(albe0026)),
        ("albe0046", j_str(founded)),
        ("albe0056", j_num(teams["member_count"].to_numpy())),
    ]
    row_ids = fixed_width_ids(teams["national_row"].to_numpy())
    rows = stored_rows(NATIONAL, "teams", row_ids, fields, updated, deleted, region)
    built = Built(rows=[rows])
    built.accounts.append(
        account_frame(
            rows, "organization", teams["org_id"], updated, deleted, source_ids=teams["national_no"]
        )
    )
    built.extend(_invalid_national_teams(rng, teams, clock))
    return built


def _invalid_national_teams(rng, teams: pd.DataFrame, clock: Clock) -> Built:
    """Team rows with no name (missing_required): the national system lets them through."""
    count = invalid_count(rng, len(teams))
    first = int(teams["national_row"].max()) + 1
    seqs = np.arange(first, first + count)
    numbers = [TEAM_NUMBER.format(k) for k in seqs]
    updated = clock.between(rng, np.full(count, clock.start), clock.as_of)
    sample = teams.sample(n=count, replace=True, random_state=rng)
    absent = j_str([None] * count)
    fields = [
        ("albe0001", j_str(numbers)),
        ("albe0002", j_str(np.where(rng.random(count) < 0.5, "", " "))),
        ("albe0003", j_str(["1"] * count)),
        ("albe0008", absent),
        ("albe0009", absent),
        ("albe0011", absent),
        ("albe0012", j_str(sample["county"].to_numpy())),
        ("albe0014", j_list([["0001"]] * count)),
        ("albe0018", absent),
        ("albe0019", absent),
        ("albe0026", j_str(["2"] * count)),
        ("albe0046", absent),
        ("albe0056", j_num(np.full(count, 3))),
    ]
    rows = stored_rows(
        NATIONAL,
        "teams",
        fixed_width_ids(seqs),
        fields,
        updated,
        np.zeros(count, dtype=bool),
        sample["county"].to_numpy(),
    )
    return Built(
        rows=[rows],
        invalid=[
            invalid_frame(rows, "organization", ["missing_required"] * count, source_ids=numbers)
        ],
    )


# --- provincial team rows ------------------------------------------------------------------


def _spoil_team_name(rng, name: str, registered: bool, prefecture: str) -> tuple[str, str]:
    """The provincial spelling of a team name, and the dirt applied ('' for none)."""
    roll = rng.random()
    if roll < 0.04:
        return dirt.traditional(name), "name_traditional"
    if roll < 0.07:
        return dirt.romanised(name, rng), "name_romanised"
    if roll < 0.10:
        return dirt.doubled_punctuation(name, rng), "name_doubled_punctuation"
    if roll < 0.13 and any(ch.isdigit() for ch in name):
        return dirt.fullwidth(name), "name_fullwidth"
    if roll < 0.16 and registered and not name.startswith(("贵州省", prefecture)):
        return prefecture + name, "name_prefixed"  # differs: only the credit code links it
    return name, ""


def _spoil_credit_code(rng, code: str | None) -> tuple[str | None, str]:
    if not isinstance(code, str):
        return None, ""
    roll = rng.random()
    if roll < 0.05:
        return code.lower(), "uscc_lower"
    if roll < 0.10:
        return dirt.spaced(code, rng), "uscc_spaces"
    return code, ""


def _provincial_teams(rng, teams: pd.DataFrame, clock: Clock) -> Built:
    """Provincial team rows: labels, typing debris in names and credit codes."""
    n = len(teams)
    status = teams["status"].to_numpy()
    deleted = status == "deleted"
    updated = clock.last_updated(rng, teams["created"], 200)
    names, name_dirt, codes, code_dirt = [], [], [], []
    for org in teams.itertuples():
        spoiled, tag = _spoil_team_name(
            rng, org.name, isinstance(org.uscc, str), prefecture_label(org.prefecture)
        )
        names.append(spoiled)
        name_dirt.append(tag)
        code, ctag = _spoil_credit_code(
            rng, org.uscc if org.registration_status == "registered" else None
        )
        codes.append(code)
        code_dirt.append(ctag)
    shown, stale = shown_county_codes(rng, teams["county"].to_numpy())
    area, twelve = dated_area_codes(rng, shown, teams["created"].to_numpy(), clock.as_of)
    linked = (teams["presence"].to_numpy() == "both") & (rng.random(n) < 0.5)
    founded = nulls_where(provincial_dates(teams["founded"].to_numpy(), rng), rng.random(n) < 0.1)
    mobiles = [
        dirt.phone_as_typed(p, rng) if rng.random() < 0.4 else p for p in teams["leader_phone"]
    ]
    reg_label = teams["registration_status"].map(
        {"registered": "已登记", "filed": "已备案", "unregistered": "未登记"}
    )
    fields = [
        ("teamName", j_str(names)),
        ("creditCode", j_str(codes)),
        ("regStatus", j_str(reg_label)),
        ("level", j_str(teams["level"].to_numpy())),
        ("hub", j_bool(teams["is_hub"].to_numpy())),
        ("areaCode", j_str(area)),
        ("serviceTypes", j_str([provincial_labels(rng, list(c)) for c in teams["categories"]])),
        ("foundDate", j_str(founded)),
        ("leader", j_str(teams["leader"])),
        ("leaderMobile", j_str(mobiles)),
        ("memberCount", j_num(teams["member_count"].to_numpy())),
        ("nationalTeamNo", j_str(teams["national_no"].where(linked, None))),
        ("creditStatus", j_str(teams["credit_status"].to_numpy())),
        ("status", j_str([PROVINCIAL_STATUS[s] for s in status])),
    ]
    rows = stored_rows(
        PROVINCIAL, "teams", teams["provincial_id"].to_numpy(), fields, updated, deleted, area
    )
    tags = join_tags(
        name_dirt, code_dirt, np.where(stale, "region_retired", ""), np.where(twelve, "", "area_6")
    )
    built = Built(rows=[rows])
    built.accounts.append(
        account_frame(
            rows,
            "organization",
            teams["org_id"],
            updated,
            deleted,
            dirt=tags,
            linked_by_number=linked,
        )
    )
    built.extend(_invalid_provincial_teams(rng, teams, clock))
    return built


def _invalid_provincial_teams(rng, teams: pd.DataFrame, clock: Clock) -> Built:
    """Provincial team rows without a name, or registered outside Guizhou."""
    no_name = invalid_count(rng, len(teams))
    outside = invalid_count(rng, len(teams))
    count = no_name + outside
    first = int(teams["provincial_id"].max()) + 1
    rules = ["missing_required"] * no_name + ["region_outside_province"] * outside
    sample = teams.sample(n=count, replace=True, random_state=rng)
    counties = np.concatenate(
        [sample["county"].to_numpy()[:no_name], rng.choice(OUTSIDE_PROVINCE_COUNTIES, outside)]
    )
    area = area_codes(rng, counties, np.ones(count, dtype=bool))
    names = ["" if rng.random() < 0.5 else "\u3000" for _ in range(no_name)] + [
        name for name in sample["name"].to_numpy()[no_name:]
    ]
    updated = clock.between(rng, np.full(count, clock.start), clock.as_of)
    absent = j_str([None] * count)
    fields = [
        ("teamName", j_str(names)),
        ("creditCode", absent),
        ("regStatus", j_str(["未登记"] * count)),
        ("level", j_str(["社区"] * count)),
        ("hub", j_bool(np.zeros(count, dtype=bool))),
        ("areaCode", j_str(area)),
        ("serviceTypes", j_str(["社区服务"] * count)),
        ("foundDate", absent),
        ("leader", absent),
        ("leaderMobile", absent),
        ("memberCount", j_num(np.full(count, 5))),
        ("nationalTeamNo", absent),
        ("creditStatus", j_str(["良好"] * count)),
        ("status", j_str(["正常"] * count)),
    ]
    rows = stored_rows(
        PROVINCIAL,
        "teams",
        np.arange(first, first + count),
        fields,
        updated,
        np.zeros(count, dtype=bool),
        area,
    )
    return Built(rows=[rows], invalid=[invalid_frame(rows, "organization", rules)])
