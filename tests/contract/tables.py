"""The published tables of the warehouse contract and their required columns
(docs/CONTRACT.md, "Published warehouse tables"), for the end-to-end tests."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

CONTRACT_TABLES = {
    "dim_region": ["region_code", "region_name", "prefecture_code", "prefecture_name"],
    "dim_volunteer": ["volunteer_key", "id_hash", "id_masked", "name_masked", "gender",
                      "birth_year", "region_code", "registered_on", "in_national",
                      "in_provincial", "status", "total_hours", "star_level"],
    "volunteer_source_map": ["source", "source_id", "volunteer_key", "match_method",
                             "match_probability"],
    "dim_organization": ["org_key", "uscc", "name", "registration_status", "level", "is_hub",
                         "region_code", "categories", "founded_on", "member_count", "status",
                         "credit_status", "evaluation_score", "in_national", "in_provincial"],
    "organization_source_map": ["source", "source_id", "org_key", "match_method"],
    "fact_service": ["service_key", "volunteer_key", "org_key", "service_date", "hours",
                     "category", "source"],
    "dim_station": ["station_key", "name", "station_type", "host_type", "region_code",
                    "org_key"],
    "quarantine": ["source", "entity", "source_id", "rule", "detail", "record",
                   "first_seen_at", "last_seen_at"],
}


def snapshot(engine: sa.Engine) -> dict[str, pd.DataFrame]:
    """Every contract table's content, sorted, for before/after comparisons."""
    tables = {}
    with engine.connect() as con:
        for table in CONTRACT_TABLES:
            frame = pd.read_sql(sa.text(f'select * from "{table}"'), con)
            tables[table] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return tables
