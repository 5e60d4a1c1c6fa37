"""Teams, projects, stations and evaluations of the synthetic world, and their two projections.

Built once per world (they are ~15% of the rows): a true organization lives in the national
system, the provincial platform or both; the national row speaks codes (albe0003 type,
albe0026 status, albe0014 category codes), the provincial row speaks labels (regStatus,
status, serviceTypes with older synonyms) and carries the typing debris. Projects run by a
team present in both systems may be mirrored in both (the ones whose service logs get pushed
up). Stations and time-bank data exist on the provincial platform only, evaluations on the
national system only. Planted invalid rows are extra rows, never projections of a true
entity, so the truth stays what it is when a pipeline quarantines them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from sandbox import dirt
from sandbox.clock import DAY, HOUR, YEAR, Clock
from sandbox.geo import (
    OUTSIDE_PROVINCE_COUNTIES,
    Geography,
    area_codes,
    prefecture_label,
    shown_county_codes,
)
from sandbox.idnumbers import make_uscc, random_org_bodies
from sandbox.names import (
    BRANDS,
    CATEGORY_CODES,
    CATEGORY_LABELS,
    CATEGORY_SYNONYMS,
    CATEGORY_WEIGHTS,
    PLACES,
    PROJECT_TITLES,
    PROVINCIAL_TEAMS,
    STATION_HOSTS,
    STATION_SUFFIX,
    SUPERVISING_UNITS,
    TEAM_THEMES,
    TITLE_SUFFIXES,
    UNITS,
    weighted_choice,
)
from sandbox.people import random_names, random_phones
from sandbox.world_db import (
    NATIONAL,
    PROVINCIAL,
    Built,
    Rows,
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
    json_bodies,
    national_times,
    provincial_dates,
    provincial_times,
)

LEVELS = ("省级", "市级", "县级", "乡镇", "社区", "单位")
LEVEL_WEIGHTS = (2, 8, 25, 22, 25, 18)
PROVINCIAL_IDS = {"teams": 10_000, "activities": 100_000, "stations": 1_000}
NATIONAL_STATUS = {  # true status -> albe0026 codes it shows as
    "active": ("1", "2"),
    "suspended": ("0", "3", "5"),
    "exited": ("3",),  # the national system has no exit: the team shows as 停用
    "deleted": ("4",),
}
PROVINCIAL_STATUS = {"active": "正常", "suspended": "停用", "exited": "退出", "deleted": "正常"}


def provincial_labels(rng: np.random.Generator, codes: list[str]) -> str:
    """Category codes as the provincial platform writes them: labels, some older synonyms."""
    labels = []
    for code in codes:
        synonyms = CATEGORY_SYNONYMS.get(code)
        if synonyms and rng.random() < 0.4:
            labels.append(str(rng.choice(synonyms)))
        else:
            labels.append(CATEGORY_LABELS[code])
    return ",".join(labels)


# --- organizations -------------------------------------------------------------------------


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
    levels = np.array(LEVELS)[weighted_choice(rng, LEVELS, LEVEL_WEIGHTS, count)]
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
    presence = np.array(["both", "national", "provincial"])[
        weighted_choice(rng, (0, 1, 2), (45, 25, 30), count)
    ]
    registration = np.array(["registered", "filed", "unregistered"])[
        weighted_choice(rng, (0, 1, 2), (45, 25, 30), count)
    ]
    # "Filed" is a provincial notion: a national-only team is registered or not.
    registration = np.where(
        (presence == "national") & (registration == "filed"), "unregistered", registration
    )
    status = np.array(["active", "suspended", "exited", "deleted"])[
        weighted_choice(rng, (0, 1, 2, 3), (88, 6, 4, 2), count)
    ]
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
            "credit_status": np.array(["良好", "警示", "失信"])[
                weighted_choice(rng, (0, 1, 2), (90, 7, 3), count)
            ],
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


def _registration_authority(org) -> str:
    if org.level == "省级":
        return "贵州省民政厅"
    if org.level == "市级":
        return prefecture_label(org.prefecture) + "民政局"
    return org.county_name + "民政局"


def project_orgs(
    rng: np.random.Generator, orgs: pd.DataFrame, clock: Clock, geo: Geography
) -> Built:
    """The national and provincial team rows of the true organizations (ids assigned here)."""
    built = Built()
    n = len(orgs)
    created = clock.between(
        rng, np.maximum(orgs["founded"].to_numpy(), clock.start), clock.as_of - 30 * DAY, skew=0.8
    )
    nat = orgs.index[orgs["in_national"]].to_numpy()
    prov = orgs.index[orgs["in_provincial"]].to_numpy()
    orgs["national_row"] = -1
    orgs.loc[nat, "national_row"] = np.arange(1, len(nat) + 1)
    orgs["national_no"] = pd.array([None] * n, dtype="str")
    orgs.loc[nat, "national_no"] = [f"T52{k:08d}" for k in range(1, len(nat) + 1)]
    orgs["provincial_id"] = -1
    orgs.loc[prov, "provincial_id"] = PROVINCIAL_IDS["teams"] + np.arange(1, len(prov) + 1)
    orgs["created"] = created
    built.extend(_national_teams(rng, orgs.loc[nat], clock))
    built.extend(_provincial_teams(rng, orgs.loc[prov], clock))
    return built


def _national_teams(rng, teams: pd.DataFrame, clock: Clock) -> Built:
    n = len(teams)
    status = teams["status"].to_numpy()
    albe0026 = np.array([str(rng.choice(NATIONAL_STATUS[s])) for s in status])
    albe0026 = np.where((status == "active") & (rng.random(n) < 0.9), "1", albe0026)
    deleted_flag = (status == "deleted") & (rng.random(n) < 0.5)
    updated = clock.with_batch_stamps(
        rng, teams["created"], clock.updated_after(rng, teams["created"], 200)
    )
    names = teams["name"].to_numpy(dtype=object).copy()
    tradition = rng.random(n) < 0.01
    names[tradition] = [dirt.traditional(x) for x in names[tradition]]
    region, _ = shown_county_codes(rng, teams["county"].to_numpy(), 0.3)
    founded = iso_dates(teams["founded"].to_numpy())
    founded = pa.array(
        [None if m else v for v, m in zip(founded.to_pylist(), rng.random(n) < 0.1)], pa.string()
    )
    registered = teams["team_type"].to_numpy() != "1"
    uscc = teams["uscc"].where(registered, None)
    authority = [
        (_registration_authority(o) if r else None) for o, r in zip(teams.itertuples(), registered)
    ]
    supervising = [o.county_name + o.authority_unit for o in teams.itertuples()]
    row_ids = fixed_width_ids(0, teams["national_row"].to_numpy())
    body = json_bodies(
        [
            ("id", j_str(row_ids)),
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
            ("updated_at", j_str(national_times(updated))),
            ("isdelete", j_num(deleted_flag.astype(int))),
        ]
    )
    built = Built(
        rows=[Rows(NATIONAL, "teams", row_ids, national_times(updated), pa.array(region), body)]
    )
    built.accounts.append(
        account_frame(
            NATIONAL,
            "organization",
            "teams",
            teams["national_no"],
            teams["org_id"],
            row_ids.to_pylist(),
            updated,
            deleted_flag,
        )
    )
    built.extend(_invalid_national_teams(rng, teams, clock))
    return built


def _invalid_national_teams(rng, teams: pd.DataFrame, clock: Clock) -> Built:
    """Team rows with no name (missing_required): the national system lets them through."""
    count = invalid_count(rng, len(teams))
    first = int(teams["national_row"].max()) + 1
    seqs = np.arange(first, first + count)
    row_ids = fixed_width_ids(0, seqs)
    numbers = [f"T52{k:08d}" for k in seqs]
    updated = clock.between(rng, np.full(count, clock.start), clock.as_of)
    sample = teams.sample(n=count, replace=True, random_state=rng)
    body = json_bodies(
        [
            ("id", j_str(row_ids)),
            ("albe0001", j_str(numbers)),
            ("albe0002", j_str(np.where(rng.random(count) < 0.5, "", " "))),
            ("albe0003", j_str(["1"] * count)),
            ("albe0008", j_str([None] * count)),
            ("albe0009", j_str([None] * count)),
            ("albe0011", j_str([None] * count)),
            ("albe0012", j_str(sample["county"].to_numpy())),
            ("albe0014", j_list([["0001"]] * count)),
            ("albe0018", j_str([None] * count)),
            ("albe0019", j_str([None] * count)),
            ("albe0026", j_str(["2"] * count)),
            ("albe0046", j_str([None] * count)),
            ("albe0056", j_num(np.full(count, 3))),
            ("updated_at", j_str(national_times(updated))),
            ("isdelete", j_num(np.zeros(count, dtype=int))),
        ]
    )
    return Built(
        rows=[
            Rows(
                NATIONAL,
                "teams",
                row_ids,
                national_times(updated),
                pa.array(sample["county"].to_numpy()),
                body,
            )
        ],
        invalid=[
            invalid_frame(
                NATIONAL,
                "organization",
                "teams",
                numbers,
                row_ids.to_pylist(),
                ["missing_required"] * count,
            )
        ],
    )


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
    n = len(teams)
    status = teams["status"].to_numpy()
    deleted_flag = status == "deleted"
    updated = clock.with_batch_stamps(
        rng, teams["created"], clock.updated_after(rng, teams["created"], 200)
    )
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
    shown, stale = shown_county_codes(rng, teams["county"].to_numpy(), 0.3)
    old_rows = teams["created"].to_numpy() < clock.as_of - 3 * YEAR
    twelve = rng.random(n) < np.where(old_rows, 0.4, 0.95)
    area = area_codes(rng, shown, twelve)
    linked = (teams["presence"].to_numpy() == "both") & (rng.random(n) < 0.5)
    founded = provincial_dates(teams["founded"].to_numpy(), rng.integers(0, 3, n))
    founded = pa.array(
        [None if m else v for v, m in zip(founded.to_pylist(), rng.random(n) < 0.1)], pa.string()
    )
    mobiles = [
        dirt.phone_as_typed(p, rng) if rng.random() < 0.4 else p for p in teams["leader_phone"]
    ]
    reg_label = teams["registration_status"].map(
        {"registered": "已登记", "filed": "已备案", "unregistered": "未登记"}
    )
    row_ids = teams["provincial_id"].to_numpy()
    body = json_bodies(
        [
            ("id", j_num(row_ids)),
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
            ("updateTime", j_str(provincial_times(updated))),
            ("isDeleted", j_bool(deleted_flag)),
        ]
    )
    tags = join_tags(
        name_dirt, code_dirt, np.where(stale, "region_retired", ""), np.where(twelve, "", "area_6")
    )
    built = Built(
        rows=[
            Rows(
                PROVINCIAL,
                "teams",
                pa.array(row_ids),
                provincial_times(updated),
                pa.array(area),
                body,
            )
        ]
    )
    built.accounts.append(
        account_frame(
            PROVINCIAL,
            "organization",
            "teams",
            row_ids.astype(str),
            teams["org_id"],
            row_ids.astype(str),
            updated,
            deleted_flag,
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
    row_ids = np.arange(first, first + count)
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
    body = json_bodies(
        [
            ("id", j_num(row_ids)),
            ("teamName", j_str(names)),
            ("creditCode", j_str([None] * count)),
            ("regStatus", j_str(["未登记"] * count)),
            ("level", j_str(["社区"] * count)),
            ("hub", j_bool(np.zeros(count, dtype=bool))),
            ("areaCode", j_str(area)),
            ("serviceTypes", j_str(["社区服务"] * count)),
            ("foundDate", j_str([None] * count)),
            ("leader", j_str([None] * count)),
            ("leaderMobile", j_str([None] * count)),
            ("memberCount", j_num(np.full(count, 5))),
            ("nationalTeamNo", j_str([None] * count)),
            ("creditStatus", j_str(["良好"] * count)),
            ("status", j_str(["正常"] * count)),
            ("updateTime", j_str(provincial_times(updated))),
            ("isDeleted", j_bool(np.zeros(count, dtype=bool))),
        ]
    )
    return Built(
        rows=[
            Rows(
                PROVINCIAL,
                "teams",
                pa.array(row_ids),
                provincial_times(updated),
                pa.array(area),
                body,
            )
        ],
        invalid=[
            invalid_frame(
                PROVINCIAL, "organization", "teams", row_ids.astype(str), row_ids.astype(str), rules
            )
        ],
    )


# --- stations ------------------------------------------------------------------------------

_HOST_TYPES = [h for h, _, _ in STATION_HOSTS]


def _station_name(rng, host: str, county_name: str, station_type: str) -> str:
    place = PLACES[int(rng.integers(len(PLACES)))]
    stem = {
        "社区": f"{county_name}{place}社区",
        "村委会": f"{place}村",
        "物业": f"{place}小区物业",
        "图书馆": f"{county_name}图书馆",
        "博物馆": f"{county_name}博物馆",
        "文化馆": f"{county_name}文化馆",
        "美术馆": f"{county_name}美术馆",
        "科技馆": f"{county_name}科技馆",
        "纪念馆": f"{place}纪念馆",
        "车站": f"{county_name}客运站",
        "码头": f"{place}码头",
        "空港": "贵阳龙洞堡国际机场",
        "医院": f"{county_name}人民医院",
        "景区": f"{place}景区",
        "高速公路服务区": f"{place}服务区",
        "学校": f"{county_name}{place}小学",
        "其他": f"{county_name}{place}新时代文明实践所",
    }[host]
    return stem + STATION_SUFFIX[station_type]


def build_stations(
    rng: np.random.Generator, count: int, orgs: pd.DataFrame, clock: Clock, geo: Geography
) -> tuple[Built, pd.DataFrame]:
    """Provincial service stations (站/点/岗), most hosted by a team of their county."""
    counties = list(geo.counties)
    chosen = [counties[i] for i in rng.integers(0, len(counties), count)]
    host_index = weighted_choice(rng, STATION_HOSTS, [w for _, _, w in STATION_HOSTS], count)
    hosts = [STATION_HOSTS[i][0] for i in host_index]
    types = [
        STATION_HOSTS[i][1] if rng.random() < 0.8 else str(rng.choice(["站", "点", "岗"]))
        for i in host_index
    ]
    names = [_station_name(rng, h, c.name, t) for h, c, t in zip(hosts, chosen, types)]
    live_teams = orgs[orgs["in_provincial"] & (orgs["status"] != "deleted")]
    by_county = (
        live_teams.groupby("county")["provincial_id"].apply(lambda s: s.to_numpy()).to_dict()
    )
    team_ids: list[int | None] = []
    for c in chosen:
        pool = by_county.get(c.code)
        if rng.random() < 0.7 and pool is not None:
            team_ids.append(int(rng.choice(pool)))
        elif rng.random() < 0.5 and len(live_teams):
            team_ids.append(int(rng.choice(live_teams["provincial_id"].to_numpy())))
        else:
            team_ids.append(None)
    opened = clock.between(rng, np.full(count, clock.start - 2 * YEAR), clock.as_of - 30 * DAY)
    created = np.maximum(opened, clock.start)
    updated = clock.with_batch_stamps(rng, created, clock.updated_after(rng, created, 300))
    deleted = rng.random(count) < 0.03
    updated = np.where(deleted, clock.between(rng, updated, clock.as_of), updated)
    county_codes = np.array([c.code for c in chosen])
    shown, stale = shown_county_codes(rng, county_codes, 0.3)
    area = area_codes(rng, shown, rng.random(count) < 0.85)
    outside = invalid_count(rng, count, 0.005)
    ids = PROVINCIAL_IDS["stations"] + np.arange(1, count + outside + 1)
    area = np.concatenate(
        [
            area,
            area_codes(rng, rng.choice(OUTSIDE_PROVINCE_COUNTIES, outside), np.ones(outside, bool)),
        ]
    )
    sample = rng.integers(0, count, outside)
    names += [names[i] for i in sample]
    hosts += [hosts[i] for i in sample]
    types += [types[i] for i in sample]
    team_ids += [None] * outside
    opened = np.concatenate([opened, opened[sample]])
    updated = np.concatenate([updated, updated[sample]])
    deleted = np.concatenate([deleted, np.zeros(outside, bool)])
    body = json_bodies(
        [
            ("id", j_num(ids)),
            ("name", j_str(names)),
            ("stationType", j_str(types)),
            ("hostType", j_str(hosts)),
            ("areaCode", j_str(area)),
            ("teamId", j_num(pa.array(team_ids, pa.int64()))),
            ("openedOn", j_str(provincial_dates(opened, rng.integers(0, 3, len(ids))))),
            ("updateTime", j_str(provincial_times(updated))),
            ("isDeleted", j_bool(deleted)),
        ]
    )
    valid = slice(0, count)
    station_ids = [f"ST{k:07d}" for k in range(1, count + 1)]
    built = Built(
        rows=[
            Rows(
                PROVINCIAL,
                "stations",
                pa.array(ids),
                provincial_times(updated),
                pa.array(area),
                body,
            )
        ]
    )
    built.accounts.append(
        account_frame(
            PROVINCIAL,
            "station",
            "stations",
            ids[valid].astype(str),
            station_ids,
            ids[valid].astype(str),
            updated[valid],
            deleted[valid],
            dirt=np.where(stale, "region_retired", ""),
        )
    )
    built.invalid.append(
        invalid_frame(
            PROVINCIAL,
            "station",
            "stations",
            ids[count:].astype(str),
            ids[count:].astype(str),
            ["region_outside_province"] * outside,
        )
    )
    return built, pd.DataFrame(
        {"station_id": ids[valid], "county": county_codes, "deleted": deleted[valid]}
    )


# --- projects ------------------------------------------------------------------------------


def build_projects(
    rng: np.random.Generator, count: int, orgs: pd.DataFrame, clock: Clock, geo: Geography
) -> pd.DataFrame:
    """The true projects: which team runs them, where, when, and in which system(s)."""
    live = orgs.index[orgs["status"] != "deleted"].to_numpy()
    owner = live[rng.integers(0, len(live), count)]
    teams = orgs.loc[owner]
    presence = teams["presence"].to_numpy().copy()
    both = presence == "both"
    presence[both] = np.array(["both", "national", "provincial"])[
        weighted_choice(rng, (0, 1, 2), (40, 30, 30), int(both.sum()))
    ]
    category = np.array(
        [
            m if rng.random() < 0.7 else str(rng.choice(c))
            for m, c in zip(teams["main_category"], teams["categories"])
        ]
    )
    other_category = rng.random(count) < 0.05
    category[other_category] = "0099"
    brand = np.where(
        rng.random(count) < 0.1, np.array(list(BRANDS))[rng.integers(0, len(BRANDS), count)], None
    )
    seats = {}
    for c in geo.counties:
        seats.setdefault(c.prefecture_code, []).append(c.code)
    county = teams["county"].to_numpy().copy()
    moved = rng.random(count) < 0.15
    county[moved] = [str(rng.choice(seats[c[:4]])) for c in county[moved]]
    places = np.array(PLACES)[rng.integers(0, len(PLACES), count)]
    titles = [
        (f"{BRANDS[b][0]}·" if isinstance(b, str) and rng.random() < 0.5 else "")
        + (p if rng.random() < 0.5 else "")
        + str(rng.choice(PROJECT_TITLES[c]))
        + TITLE_SUFFIXES[int(rng.integers(len(TITLE_SUFFIXES)))]
        for b, p, c in zip(brand, places, category)
    ]
    publish = clock.between(
        rng, np.maximum(teams["created"].to_numpy(), clock.start), clock.as_of - 3 * DAY, skew=0.8
    )
    start = clock.capped(
        rng, publish, publish + rng.integers(0, 30 * DAY, count), clock.as_of - 3 * DAY
    )
    end = clock.capped(
        rng, start + 2 * HOUR, start + rng.integers(2 * HOUR, 180 * DAY, count), clock.as_of - DAY
    )
    return pd.DataFrame(
        {
            "project_id": [f"J{k:08d}" for k in range(1, count + 1)],
            "org": owner,
            "org_id": teams["org_id"].to_numpy(),
            "category": category,
            "brand": brand,
            "name": titles,
            "county": county,
            "prefecture": np.array([c[:4] for c in county]),
            "publish": publish,
            "start": start,
            "end": end,
            "presence": presence,
            "in_national": np.isin(presence, ["both", "national"]),
            "in_provincial": np.isin(presence, ["both", "provincial"]),
            "deleted": rng.random(count) < 0.02,
            "national_team_no": teams["national_no"].to_numpy(),
            "provincial_team_id": teams["provincial_id"].to_numpy(),
        }
    )


def project_projects(
    rng: np.random.Generator, projects: pd.DataFrame, stations: pd.DataFrame, clock: Clock
) -> Built:
    """National project rows (albx*) and provincial activity rows of the true projects."""
    nat = projects.index[projects["in_national"]].to_numpy()
    prov = projects.index[projects["in_provincial"]].to_numpy()
    projects["national_row"] = -1
    projects.loc[nat, "national_row"] = np.arange(1, len(nat) + 1)
    projects["national_no"] = pd.array([None] * len(projects), dtype="str")
    projects.loc[nat, "national_no"] = [f"X52{k:010d}" for k in range(1, len(nat) + 1)]
    projects["provincial_id"] = -1
    projects.loc[prov, "provincial_id"] = PROVINCIAL_IDS["activities"] + np.arange(1, len(prov) + 1)
    region, _ = shown_county_codes(rng, projects["county"].to_numpy(), 0.3)
    projects["national_region"] = region
    built = Built()
    built.extend(_national_projects(rng, projects.loc[nat], clock))
    built.extend(_provincial_activities(rng, projects.loc[prov], stations, clock))
    return built


def _national_projects(rng, projects: pd.DataFrame, clock: Clock) -> Built:
    n = len(projects)
    deleted = projects["deleted"].to_numpy()
    updated = clock.with_batch_stamps(
        rng, projects["publish"], clock.updated_after(rng, projects["publish"], 90)
    )
    updated = np.where(deleted, clock.between(rng, updated, clock.as_of), updated)
    brand_text = [
        str(rng.choice(BRANDS[b])) if isinstance(b, str) else None for b in projects["brand"]
    ]
    row_ids = fixed_width_ids(0, projects["national_row"].to_numpy())
    status = np.array(["1", "2", "3", "4"])[weighted_choice(rng, (0, 1, 2, 3), (10, 30, 55, 5), n)]
    body = json_bodies(
        [
            ("id", j_str(row_ids)),
            ("albx0001", j_str(projects["national_no"])),
            ("albx0002", j_str(projects["name"].to_numpy())),
            ("albe0001", j_str(projects["national_team_no"])),
            ("albx0009", j_str(projects["category"].to_numpy())),
            ("albx0015", j_str(status)),
            ("albx0021", j_str(projects["national_region"].to_numpy())),
            ("albx0031", j_str(iso_dates(projects["publish"].to_numpy()))),
            ("albx0040", j_str(brand_text)),
            ("updated_at", j_str(national_times(updated))),
            ("isdelete", j_num(deleted.astype(int))),
        ]
    )
    built = Built(
        rows=[
            Rows(
                NATIONAL,
                "projects",
                row_ids,
                national_times(updated),
                pa.array(projects["national_region"].to_numpy()),
                body,
            )
        ]
    )
    built.accounts.append(
        account_frame(
            NATIONAL,
            "project",
            "projects",
            projects["national_no"],
            projects["project_id"],
            row_ids.to_pylist(),
            updated,
            deleted,
        )
    )
    return built


def _provincial_activities(
    rng, projects: pd.DataFrame, stations: pd.DataFrame, clock: Clock
) -> Built:
    n = len(projects)
    deleted = projects["deleted"].to_numpy()
    updated = clock.with_batch_stamps(
        rng, projects["publish"], clock.updated_after(rng, projects["publish"], 90)
    )
    updated = np.maximum(updated, np.minimum(projects["end"].to_numpy(), clock.as_of))
    updated = np.where(deleted, clock.between(rng, updated, clock.as_of), updated)
    titles = [
        dirt.traditional(t) if r < 0.03 else (dirt.doubled_punctuation(t, rng) if r < 0.05 else t)
        for t, r in zip(projects["name"], rng.random(n))
    ]
    brand_text = [
        str(rng.choice(BRANDS[b])) if isinstance(b, str) else None for b in projects["brand"]
    ]
    service_type = [
        provincial_labels(rng, [c])
        + ("," + CATEGORY_LABELS[str(rng.choice(CATEGORY_CODES))] if rng.random() < 0.2 else "")
        for c in projects["category"]
    ]
    live_stations = stations[~stations["deleted"]]
    by_county = (
        live_stations.groupby("county")["station_id"].apply(lambda s: s.to_numpy()).to_dict()
    )
    station_ids = [
        int(rng.choice(by_county[c])) if c in by_county and rng.random() < 0.2 else None
        for c in projects["county"]
    ]
    no_times = rng.random(n) < 0.05
    start = pa.array(
        [
            None if m else v
            for v, m in zip(provincial_times(projects["start"].to_numpy()).to_pylist(), no_times)
        ],
        pa.string(),
    )
    end = pa.array(
        [
            None if m else v
            for v, m in zip(provincial_times(projects["end"].to_numpy()).to_pylist(), no_times)
        ],
        pa.string(),
    )
    area = area_codes(
        rng, shown_county_codes(rng, projects["county"].to_numpy(), 0.3)[0], rng.random(n) < 0.85
    )
    row_ids = projects["provincial_id"].to_numpy()
    fields = [
        ("id", j_num(row_ids)),
        ("teamId", j_num(projects["provincial_team_id"].to_numpy())),
        ("title", j_str(titles)),
        ("serviceType", j_str(service_type)),
        ("startTime", j_str(start)),
        ("endTime", j_str(end)),
        ("areaCode", j_str(area)),
        ("brandProject", j_str(brand_text)),
        ("stationId", j_num(pa.array(station_ids, pa.int64()))),
        ("updateTime", j_str(provincial_times(updated))),
        ("isDeleted", j_bool(deleted)),
    ]
    built = Built(
        rows=[
            Rows(
                PROVINCIAL,
                "activities",
                pa.array(row_ids),
                provincial_times(updated),
                pa.array(area),
                json_bodies(fields),
            )
        ]
    )
    built.accounts.append(
        account_frame(
            PROVINCIAL,
            "project",
            "activities",
            row_ids.astype(str),
            projects["project_id"],
            row_ids.astype(str),
            updated,
            deleted,
        )
    )
    built.extend(_invalid_activities(rng, projects, clock, int(row_ids.max()) + 1))
    return built


def _invalid_activities(rng, projects: pd.DataFrame, clock: Clock, first_id: int) -> Built:
    """Activities ending before they start, or held outside Guizhou."""
    backwards = invalid_count(rng, len(projects))
    outside = invalid_count(rng, len(projects))
    count = backwards + outside
    sample = projects.iloc[rng.integers(0, len(projects), count)]
    ids = first_id + np.arange(count)
    start = sample["start"].to_numpy()
    end = np.where(
        np.arange(count) < backwards,
        start - rng.integers(3600, 48 * 3600, count),
        sample["end"].to_numpy(),
    )
    counties = np.where(
        np.arange(count) < backwards,
        sample["county"].to_numpy(),
        rng.choice(OUTSIDE_PROVINCE_COUNTIES, count),
    )
    area = area_codes(rng, counties, np.ones(count, bool))
    updated = clock.capped(
        rng, np.maximum(start, end), np.maximum(start, end) + rng.integers(0, 10 * DAY, count)
    )
    rules = ["end_before_start"] * backwards + ["region_outside_province"] * outside
    fields = [
        ("id", j_num(ids)),
        ("teamId", j_num(sample["provincial_team_id"].to_numpy())),
        ("title", j_str(sample["name"].to_numpy())),
        ("serviceType", j_str([CATEGORY_LABELS[c] for c in sample["category"]])),
        ("startTime", j_str(provincial_times(start))),
        ("endTime", j_str(provincial_times(end))),
        ("areaCode", j_str(area)),
        ("brandProject", j_str([None] * count)),
        ("stationId", j_num(pa.array([None] * count, pa.int64()))),
        ("updateTime", j_str(provincial_times(updated))),
        ("isDeleted", j_bool(np.zeros(count, bool))),
    ]
    return Built(
        rows=[
            Rows(
                PROVINCIAL,
                "activities",
                pa.array(ids),
                provincial_times(updated),
                pa.array(area),
                json_bodies(fields),
            )
        ],
        invalid=[
            invalid_frame(
                PROVINCIAL, "project", "activities", ids.astype(str), ids.astype(str), rules
            )
        ],
    )


# --- evaluations ---------------------------------------------------------------------------

EVALUATORS = ("registration_authority", "funder", "beneficiary", "self", "third_party")


def build_evaluations(
    rng: np.random.Generator, orgs: pd.DataFrame, clock: Clock
) -> tuple[Built, pd.DataFrame]:
    """National evaluations of teams by the five evaluator types, by year; and the truth's
    evaluation score per organization (latest period: mean over types of each type's mean)."""
    as_of_year = int(np.datetime64(clock.as_of, "s").astype("datetime64[Y]").astype(int)) + 1970
    rows = []
    national = orgs[orgs["in_national"]]
    chance = np.where(national["registration_status"].to_numpy() == "registered", 0.7, 0.3)
    for org, evaluated in zip(national.itertuples(), rng.random(len(national)) < chance):
        if not evaluated:
            continue
        quality = rng.normal(82, 6)
        periods = rng.choice(
            np.arange(as_of_year - 3, as_of_year), size=int(rng.integers(1, 4)), replace=False
        )
        for period in periods:
            evaluators = rng.choice(EVALUATORS, size=int(rng.integers(2, 6)), replace=False)
            for evaluator in evaluators:
                for _ in range(int(rng.integers(1, 4)) if evaluator == "beneficiary" else 1):
                    score = float(np.clip(np.round(quality + rng.normal(0, 5), 1), 40, 100))
                    rows.append(
                        (
                            org.org_id,
                            org.national_no,
                            org.county,
                            str(period),
                            str(evaluator),
                            score,
                        )
                    )
    frame = pd.DataFrame(
        rows, columns=["org_id", "national_no", "county", "period", "evaluator", "score"]
    )
    n = len(frame)
    period_start = (
        pd.to_datetime(frame["period"].astype(int) + 1, format="%Y")
        .to_numpy()
        .astype("datetime64[s]")
        .astype(np.int64)
    )
    created = clock.capped(
        rng, period_start, period_start + rng.integers(0, 150 * DAY, n), clock.as_of - HOUR
    )
    updated = clock.with_batch_stamps(rng, created, clock.updated_after(rng, created, 20))
    deleted = rng.random(n) < 0.02
    updated = np.where(deleted, clock.between(rng, updated, clock.as_of), updated)
    seq = np.arange(1, n + 1)
    row_ids = fixed_width_ids(0, seq)
    region, _ = shown_county_codes(rng, frame["county"].to_numpy(), 0.3)
    body = json_bodies(
        [
            ("id", j_str(row_ids)),
            ("albe0001", j_str(frame["national_no"].to_numpy())),
            ("evaluator", j_str(frame["evaluator"].to_numpy())),
            ("score", j_num(frame["score"].to_numpy())),
            ("period", j_str(frame["period"].to_numpy())),
            ("updated_at", j_str(national_times(updated))),
            ("isdelete", j_num(deleted.astype(int))),
        ]
    )
    built = Built(
        rows=[
            Rows(NATIONAL, "evaluations", row_ids, national_times(updated), pa.array(region), body)
        ]
    )
    built.accounts.append(
        account_frame(
            NATIONAL,
            "evaluation",
            "evaluations",
            row_ids.to_pylist(),
            [f"E{k:09d}" for k in seq],
            row_ids.to_pylist(),
            updated,
            deleted,
        )
    )
    live = frame[~deleted]
    latest = live[live["period"] == live.groupby("org_id")["period"].transform("max")]
    per_type = latest.groupby(["org_id", "evaluator"])["score"].mean()
    scores = per_type.groupby(level="org_id").mean().rename("evaluation_score").reset_index()
    return built, scores
