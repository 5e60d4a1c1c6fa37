"""Projects of the synthetic world: national project rows and provincial activity rows.

A true project is run by a live team, mostly in its county, for one of the team's
categories; 10% carry a brand programme (三关爱, 暖冬行动, …) in one of its spellings. It
appears where its team does, except that a team in both systems mirrors only 40% of its
projects in both (the ones whose service logs get pushed up). Provincial activities carry
start and end times and sometimes a station. Planted invalid activities end before they
start or are held outside Guizhou.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from sandbox import dirt
from sandbox.clock import DAY, HOUR, Clock
from sandbox.geo import (
    OUTSIDE_PROVINCE_COUNTIES,
    Geography,
    area_codes,
    ids_by_county,
    shown_county_codes,
)
from sandbox.names import (
    BRANDS,
    CATEGORY_CODES,
    CATEGORY_LABELS,
    PLACES,
    PROJECT_TITLES,
    TITLE_SUFFIXES,
    provincial_labels,
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
    j_num,
    j_str,
    nulls_where,
    number_entities,
    provincial_times,
    stored_rows,
)

ACTIVITY_ID_BASE = 100_000  # provincial activity ids
PROJECT_NUMBER = "X52{:010d}"  # the national project number (albx0001) of a project's counter


def build_projects(
    rng: np.random.Generator, count: int, orgs: pd.DataFrame, clock: Clock, geo: Geography
) -> pd.DataFrame:
    """The true projects: which team runs them, where, when, and in which system(s)."""
    live = orgs.index[orgs["status"] != "deleted"].to_numpy()
    owner = live[rng.integers(0, len(live), count)]
    teams = orgs.loc[owner]
    presence = teams["presence"].to_numpy().copy()
    both = presence == "both"
    presence[both] = weighted_labels(
        rng, ("both", "national", "provincial"), (40, 30, 30), int(both.sum())
    )
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
    nat, prov = number_entities(projects, PROJECT_NUMBER, ACTIVITY_ID_BASE)
    region, _ = shown_county_codes(rng, projects["county"].to_numpy())
    projects["national_region"] = region
    built = Built()
    built.extend(_national_projects(rng, projects.loc[nat], clock))
    built.extend(_provincial_activities(rng, projects.loc[prov], stations, clock))
    return built


def _brand_spellings(rng, brands: pd.Series) -> list[str | None]:
    """Each project's brand programme as the row spells it (one of its variants), or None."""
    return [str(rng.choice(BRANDS[b])) if isinstance(b, str) else None for b in brands]


def _national_projects(rng, projects: pd.DataFrame, clock: Clock) -> Built:
    """National project rows (albx*)."""
    n = len(projects)
    deleted = projects["deleted"].to_numpy()
    updated = clock.last_updated(rng, projects["publish"], 90)
    updated = clock.with_deletions(rng, updated, deleted)
    brand_text = _brand_spellings(rng, projects["brand"])
    status = weighted_labels(rng, ("1", "2", "3", "4"), (10, 30, 55, 5), n)
    fields = [
        ("albx0001", j_str(projects["national_no"])),
        ("albx0002", j_str(projects["name"].to_numpy())),
        ("albe0001", j_str(projects["national_team_no"])),
        ("albx0009", j_str(projects["category"].to_numpy())),
        ("albx0015", j_str(status)),
        ("albx0021", j_str(projects["national_region"].to_numpy())),
        ("albx0031", j_str(iso_dates(projects["publish"].to_numpy()))),
        ("albx0040", j_str(brand_text)),
    ]
    rows = stored_rows(
        NATIONAL,
        "projects",
        fixed_width_ids(projects["national_row"].to_numpy()),
        fields,
        updated,
        deleted,
        projects["national_region"].to_numpy(),
    )
    accounts = account_frame(
        rows,
        "project",
        projects["project_id"],
        updated,
        deleted,
        source_ids=projects["national_no"],
    )
    return Built(rows=[rows], accounts=[accounts])


def _provincial_activities(
    rng, projects: pd.DataFrame, stations: pd.DataFrame, clock: Clock
) -> Built:
    """Provincial activity rows: times, spelled-out categories, sometimes a station."""
    n = len(projects)
    deleted = projects["deleted"].to_numpy()
    updated = clock.last_updated(rng, projects["publish"], 90)
    # An activity's row changes until the activity ends: its last update is not before the end.
    updated = np.maximum(updated, np.minimum(projects["end"].to_numpy(), clock.as_of))
    updated = clock.with_deletions(rng, updated, deleted)
    titles = [
        dirt.traditional(t) if r < 0.03 else (dirt.doubled_punctuation(t, rng) if r < 0.05 else t)
        for t, r in zip(projects["name"], rng.random(n))
    ]
    brand_text = _brand_spellings(rng, projects["brand"])
    service_type = [
        provincial_labels(rng, [c])
        + ("," + CATEGORY_LABELS[str(rng.choice(CATEGORY_CODES))] if rng.random() < 0.2 else "")
        for c in projects["category"]
    ]
    by_county = ids_by_county(stations[~stations["deleted"]], "station_id")
    station_ids = [
        int(rng.choice(by_county[c])) if c in by_county and rng.random() < 0.2 else None
        for c in projects["county"]
    ]
    no_times = rng.random(n) < 0.05
    start = nulls_where(provincial_times(projects["start"].to_numpy()), no_times)
    end = nulls_where(provincial_times(projects["end"].to_numpy()), no_times)
    area = area_codes(
        rng, shown_county_codes(rng, projects["county"].to_numpy())[0], rng.random(n) < 0.85
    )
    row_ids = projects["provincial_id"].to_numpy()
    fields = [
        ("teamId", j_num(projects["provincial_team_id"].to_numpy())),
        ("title", j_str(titles)),
        ("serviceType", j_str(service_type)),
        ("startTime", j_str(start)),
        ("endTime", j_str(end)),
        ("areaCode", j_str(area)),
        ("brandProject", j_str(brand_text)),
        ("stationId", j_num(pa.array(station_ids, pa.int64()))),
    ]
    rows = stored_rows(PROVINCIAL, "activities", row_ids, fields, updated, deleted, area)
    built = Built(
        rows=[rows],
        accounts=[account_frame(rows, "project", projects["project_id"], updated, deleted)],
    )
    built.extend(_invalid_activities(rng, projects, clock, int(row_ids.max()) + 1))
    return built


def _invalid_activities(rng, projects: pd.DataFrame, clock: Clock, first_id: int) -> Built:
    """Activities ending before they start, or held outside Guizhou."""
    backwards = invalid_count(rng, len(projects))
    outside = invalid_count(rng, len(projects))
    count = backwards + outside
    sample = projects.iloc[rng.integers(0, len(projects), count)]
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
        ("teamId", j_num(sample["provincial_team_id"].to_numpy())),
        ("title", j_str(sample["name"].to_numpy())),
        ("serviceType", j_str([CATEGORY_LABELS[c] for c in sample["category"]])),
        ("startTime", j_str(provincial_times(start))),
        ("endTime", j_str(provincial_times(end))),
        ("areaCode", j_str(area)),
        ("brandProject", j_str([None] * count)),
        ("stationId", j_num(pa.array([None] * count, pa.int64()))),
    ]
    rows = stored_rows(
        PROVINCIAL,
        "activities",
        first_id + np.arange(count),
        fields,
        updated,
        np.zeros(count, bool),
        area,
    )
    return Built(rows=[rows], invalid=[invalid_frame(rows, "project", rules)])
