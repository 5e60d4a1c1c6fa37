"""Service records: one fact row per service actually given, counted once.

A provincial log and a national record are one service when the log's nationalRecordId is the
record's id or the record's origin names the log (contract). Such a service takes the
national record's hours, date and project (source 'both'). Only services that count are kept:
the national copy decides where there is one (it is the record the hours come from), the
provincial copy otherwise. Likely duplicates without a reference (same person, same day, same
team, same hours) are flagged in service_duplicate_candidates with their evidence, never merged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines.resolve.vectorized import hashed_keys, is_in

SERVICE_COLUMNS = [
    "source", "source_id", "updated_at", "is_deleted", "volunteer_source_id", "project_source_id",
    "org_source_id", "service_date", "hours", "is_effective", "national_record_id", "origin_log_id",
]
# what the facts take from a record of either side, once the two sides are paired
SIDE_COLUMNS = [
    "source_id", "volunteer_source_id", "project_source_id", "org_source_id", "service_date", "hours", "is_effective",
]
# the columns of a staged project the facts take (category, and the team of a record naming none)
PROJECT_COLUMNS = ["source", "source_id", "category", "org_source_id"]
FACT_COLUMNS = [
    "service_key", "volunteer_key", "org_key", "project_key", "project_source", "project_source_id",
    "service_date", "hours", "category", "source", "national_source_id", "provincial_source_id",
]
DUPLICATE_COLUMNS = [
    "left_service_key", "right_service_key", "volunteer_key", "org_key", "service_date", "hours",
    "left_source", "right_source", "left_national_source_id", "left_provincial_source_id",
    "right_national_source_id", "right_provincial_source_id", "evidence",
]


@dataclass
class ServiceResolution:
    facts: pd.DataFrame
    duplicates: pd.DataFrame
    summary: dict = field(default_factory=dict)


def opaque_key(prefix: str, values: pd.Series) -> pd.Series:
    """prefix + 12 hex of SHA-256 of each value (service and project keys)."""
    return hashed_keys(prefix, values)


def _prepare(staged_services: pd.DataFrame) -> pd.DataFrame:
    # only the columns used, and one copy of them (the staged frame is millions of rows)
    frame = staged_services[[c for c in SERVICE_COLUMNS if c in staged_services]].copy()
    for column in SERVICE_COLUMNS:
        if column not in frame:
            frame[column] = pd.NA
    frame = frame[SERVICE_COLUMNS]
    for column in ["source_id", "volunteer_source_id", "project_source_id", "org_source_id", "national_record_id", "origin_log_id"]:
        frame[column] = frame[column].astype("string")
    frame["is_deleted"] = frame["is_deleted"].fillna(False).astype(bool)
    frame["is_effective"] = frame["is_effective"].fillna(False).astype(bool) & ~frame["is_deleted"]
    # datetime64 while rows are paired and copied (a Python date per row is ~10x the memory);
    # the facts take calendar dates, as before
    frame["service_date"] = pd.to_datetime(frame["service_date"], errors="coerce")
    return frame.drop_duplicates(["source", "source_id"], keep="last")


def pair_services(national: pd.DataFrame, provincial: pd.DataFrame) -> pd.DataFrame:
    """(national_source_id, provincial_source_id, method) of records that are one service.

    Either reference suffices; a record claimed twice keeps its first partner by id order.
    """
    by_log = provincial.dropna(subset=["national_record_id"])
    from_provincial = pd.DataFrame(
        {"national_source_id": by_log["national_record_id"], "provincial_source_id": by_log["source_id"], "method": "national_record_id"}
    )
    by_origin = national.dropna(subset=["origin_log_id"])
    from_national = pd.DataFrame(
        {"national_source_id": by_origin["source_id"], "provincial_source_id": by_origin["origin_log_id"], "method": "origin"}
    )
    pairs = pd.concat([from_provincial, from_national], ignore_index=True)
    # a reference to a record that is not there (quarantined, not yet landed) pairs nothing
    pairs = pairs.loc[
        is_in(pairs["national_source_id"], national["source_id"]) & is_in(pairs["provincial_source_id"], provincial["source_id"])
    ]
    pairs = pairs.sort_values(["national_source_id", "provincial_source_id", "method"])
    pairs = pairs.drop_duplicates(["national_source_id", "provincial_source_id"])
    pairs = pairs.drop_duplicates("national_source_id").drop_duplicates("provincial_source_id")
    return pairs.reset_index(drop=True)


def _lookup(frame: pd.DataFrame, source: str, id_column: str, source_map: pd.DataFrame, key_column: str) -> pd.Series:
    """The key of (source, frame[id_column]) in a source map, aligned on frame's index."""
    mapping = source_map.loc[source_map["source"] == source].drop_duplicates("source_id").set_index("source_id")[key_column]
    return frame[id_column].map(mapping)


def _project_lookup(staged_projects: pd.DataFrame, source: str, project_ids: pd.Series, column: str) -> pd.Series:
    """`column` of the `source` project each id names, aligned on project_ids' index."""
    if not len(staged_projects):
        return pd.Series(np.nan, index=project_ids.index, dtype=object)
    projects = staged_projects.loc[staged_projects["source"] == source]
    value_of = projects.assign(source_id=projects["source_id"].astype(str)).drop_duplicates(
        "source_id", keep="last").set_index("source_id")[column]
    return project_ids.astype("string").map(value_of)


def resolve_services(
    staged_services: pd.DataFrame,
    staged_projects: pd.DataFrame,
    volunteer_map: pd.DataFrame,
    organization_map: pd.DataFrame,
) -> ServiceResolution:
    """The fact table (one row per counted service) and the flagged likely duplicates."""
    services = _prepare(staged_services)
    del staged_services  # the caller hands it over (store.resolve_all): freed once prepared
    service_records = len(services)
    national = services.loc[services["source"] == "national"]
    provincial = services.loc[services["source"] == "provincial"]
    del services  # split in two: not held as a third copy
    pairs = pair_services(national, provincial)
    # once paired, a record's references, times and flags but `is_effective` are not read again
    national, provincial = national[SIDE_COLUMNS].add_prefix("n_"), provincial[SIDE_COLUMNS].add_prefix("p_")

    combined = (
        pairs.merge(national, left_on="national_source_id", right_on="n_source_id")
        .merge(provincial, left_on="provincial_source_id", right_on="p_source_id")
    )
    national_only = national.loc[~is_in(national["n_source_id"], pairs["national_source_id"])].copy()
    national_only["national_source_id"] = national_only["n_source_id"]
    provincial_only = provincial.loc[~is_in(provincial["p_source_id"], pairs["provincial_source_id"])].copy()
    provincial_only["provincial_source_id"] = provincial_only["p_source_id"]
    rows = pd.concat([combined, national_only, provincial_only], ignore_index=True)
    del combined, national_only, provincial_only, national, provincial
    has_national = rows["n_source_id"].notna()
    has_provincial = rows["p_source_id"].notna()
    rows["source"] = np.select([has_national & has_provincial, has_national], ["both", "national"], "provincial")

    # the national copy is the one whose hours count; it decides whether the service counts
    counts = np.where(has_national, rows["n_is_effective"].fillna(False), rows["p_is_effective"].fillna(False)).astype(bool)
    rows = rows.loc[counts].copy()
    has_national = rows["n_source_id"].notna()

    def prefer_national(column: str) -> pd.Series:
        return rows[f"n_{column}"].where(has_national, rows[f"p_{column}"])

    rows["hours"] = prefer_national("hours").astype("float64")
    rows["service_date"] = prefer_national("service_date").dt.date
    rows["project_source"] = np.where(has_national & rows["n_project_source_id"].notna(), "national",
                                      np.where(rows["p_project_source_id"].notna(), "provincial", None))
    rows["project_source_id"] = rows["n_project_source_id"].where(rows["project_source"] == "national", rows["p_project_source_id"])

    volunteer_national = _lookup(rows, "national", "n_volunteer_source_id", volunteer_map, "volunteer_key")
    volunteer_provincial = _lookup(rows, "provincial", "p_volunteer_source_id", volunteer_map, "volunteer_key")
    rows["volunteer_key"] = volunteer_national.where(volunteer_national.notna(), volunteer_provincial)
    del volunteer_national, volunteer_provincial  # (each a column of millions of keys)
    org_national = _lookup(rows, "national", "n_org_source_id", organization_map, "org_key")
    org_provincial = _lookup(rows, "provincial", "p_org_source_id", organization_map, "org_key")
    rows["org_key"] = org_national.where(org_national.notna(), org_provincial)
    del org_national, org_provincial

    def from_projects(column: str, source_map: pd.DataFrame | None = None) -> pd.Series:
        """A value of the row's project: the national project first, else the activity."""
        found = []
        for source in ("national", "provincial"):
            values = _project_lookup(staged_projects, source, rows[f"{source[0]}_project_source_id"], column)
            if source_map is not None:
                keys = source_map.loc[source_map["source"] == source].drop_duplicates("source_id")
                values = values.map(keys.set_index("source_id")["org_key"])
            found.append(values)
        return found[0].where(found[0].notna(), found[1])

    rows["category"] = from_projects("category")
    # a record that names no team of its own was given for its project's team
    rows["org_key"] = rows["org_key"].where(rows["org_key"].notna(), from_projects("org_source_id", organization_map))

    # keyed by the provincial log when there is one: logs exist before they are pushed up
    key_basis = ("provincial:" + rows["provincial_source_id"].astype("string")).where(
        rows["provincial_source_id"].notna(), "national:" + rows["national_source_id"].astype("string")
    )
    rows["service_key"] = opaque_key("S", key_basis.astype(str))
    del key_basis
    project_basis = rows["project_source"].astype("string") + ":" + rows["project_source_id"].astype("string")
    rows["project_key"] = opaque_key("P", project_basis.fillna("")).where(project_basis.notna())
    del project_basis
    facts = rows[FACT_COLUMNS]
    rows = None  # the paired sides' columns go before the facts are sorted into a copy
    facts = facts.sort_values("service_key").reset_index(drop=True)
    facts["hours"] = facts["hours"].astype("float64")

    duplicates = duplicate_candidates(facts)
    summary = {
        "service_records": int(service_records),
        "services": int(len(facts)),
        "services_by_source": {k: int(v) for k, v in facts["source"].value_counts().items()},
        "services_without_volunteer": int(facts["volunteer_key"].isna().sum()),
        "services_without_org": int(facts["org_key"].isna().sum()),
        "pairs_by_reference": {k: int(v) for k, v in pairs["method"].value_counts().items()},
        "duplicate_candidates": int(len(duplicates)),
        "total_hours": round(float(facts["hours"].sum()), 2),
    }
    return ServiceResolution(facts, duplicates, summary)


def duplicate_candidates(facts: pd.DataFrame) -> pd.DataFrame:
    """Pairs of counted services with the same person, day, team and hours and no reference."""
    known = facts.dropna(subset=["volunteer_key", "service_date"]).copy()
    known["hours_cents"] = (known["hours"] * 100).round().astype("int64")
    known["org_group"] = known["org_key"].fillna("")
    group = ["volunteer_key", "service_date", "org_group", "hours_cents"]
    known = known.loc[known.groupby(group)["service_key"].transform("size") > 1]
    if not len(known):
        return pd.DataFrame(columns=DUPLICATE_COLUMNS)
    side = known[group + ["service_key", "source", "national_source_id", "provincial_source_id", "org_key", "hours"]]
    pairs = side.merge(side, on=group, suffixes=("_l", "_r"))
    pairs = pairs.loc[pairs["service_key_l"] < pairs["service_key_r"]]
    out = pd.DataFrame({
        "left_service_key": pairs["service_key_l"], "right_service_key": pairs["service_key_r"],
        "volunteer_key": pairs["volunteer_key"], "org_key": pairs["org_key_l"], "service_date": pairs["service_date"],
        "hours": pairs["hours_l"], "left_source": pairs["source_l"], "right_source": pairs["source_r"],
        "left_national_source_id": pairs["national_source_id_l"], "left_provincial_source_id": pairs["provincial_source_id_l"],
        "right_national_source_id": pairs["national_source_id_r"], "right_provincial_source_id": pairs["provincial_source_id_r"],
    })
    out["evidence"] = (
        "same volunteer, same service date, same team, same hours ("
        + out["hours"].map(lambda h: f"{h:.2f}") + " h); no nationalRecordId/origin reference between them; "
        + out["left_source"] + " vs " + out["right_source"]
    )
    return out[DUPLICATE_COLUMNS].reset_index(drop=True)
