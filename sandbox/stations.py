"""Volunteer service stations (站/点/岗) of the synthetic world: provincial rows only.

A station is named after its host (社区, 图书馆, 车站, 医院, …) and county, and most are
hosted by a live provincial team of their county. The national system has no stations. A
few planted rows sit outside Guizhou (region_outside_province); they are stored after the
valid ones and appear only among the truth's invalid rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from sandbox.clock import DAY, YEAR, Clock
from sandbox.geo import (
    OUTSIDE_PROVINCE_COUNTIES,
    Geography,
    area_codes,
    ids_by_county,
    shown_county_codes,
)
from sandbox.names import PLACES, STATION_HOSTS, STATION_SUFFIX, weighted_choice
from sandbox.world_db import (
    PROVINCIAL,
    Built,
    account_frame,
    invalid_count,
    invalid_frame,
    j_num,
    j_str,
    provincial_dates,
    stored_rows,
)

STATION_ID_BASE = 1_000  # provincial station ids


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
    """Provincial service stations (站/点/岗), most hosted by a team of their county.

    Returns the rows and, for the projects that take place at a station, each valid
    station's id, county and deletion flag.
    """
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
    by_county = ids_by_county(live_teams, "provincial_id")
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
    updated = clock.last_updated(rng, created, 300)
    deleted = rng.random(count) < 0.03
    updated = clock.with_deletions(rng, updated, deleted)
    county_codes = np.array([c.code for c in chosen])
    shown, stale = shown_county_codes(rng, county_codes)
    area = area_codes(rng, shown, rng.random(count) < 0.85)
    # Planted rows outside Guizhou: copies of random stations, stored after the valid ones.
    outside = invalid_count(rng, count, 0.005)
    ids = STATION_ID_BASE + np.arange(1, count + outside + 1)
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
    fields = [
        ("name", j_str(names)),
        ("stationType", j_str(types)),
        ("hostType", j_str(hosts)),
        ("areaCode", j_str(area)),
        ("teamId", j_num(pa.array(team_ids, pa.int64()))),
        ("openedOn", j_str(provincial_dates(opened, rng))),
    ]
    rows = stored_rows(PROVINCIAL, "stations", ids, fields, updated, deleted, area)
    valid = slice(0, count)
    built = Built(rows=[rows])
    built.accounts.append(
        account_frame(
            rows[valid],
            "station",
            [f"ST{k:07d}" for k in range(1, count + 1)],
            updated[valid],
            deleted[valid],
            dirt=np.where(stale, "region_retired", ""),
        )
    )
    built.invalid.append(
        invalid_frame(rows[count:], "station", ["region_outside_province"] * outside)
    )
    return built, pd.DataFrame(
        {"station_id": ids[valid], "county": county_codes, "deleted": deleted[valid]}
    )
