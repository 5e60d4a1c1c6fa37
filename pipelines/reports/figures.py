"""The statistics of the officials' report, read from the published marts.

Every figure of the report comes from here, through SQLAlchemy, so it is the warehouse's own
figure on DuckDB and PostgreSQL alike (nothing is recounted from files). Each query returns
one small frame, with the columns the report shows; the labels are Chinese and live in
`pipelines/reports/labels.py`. No Dagster here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pandas as pd
import sqlalchemy as sa

from pipelines.warehouse.reader import table_name

# One query per figure: {name: SQL with {table} placeholders for the marts it reads}.
QUERIES: dict[str, str] = {
    "volunteers_by_prefecture": """
        SELECT prefecture_code, prefecture_name, volunteers, active, in_both_systems,
               star_0, star_1, star_2, star_3, star_4, star_5
        FROM {mart_volunteers_by_prefecture} ORDER BY prefecture_code""",
    # the province's totals, persons whose county is unknown included (no county mart has them)
    "volunteer_totals": """
        SELECT count(*) AS volunteers,
               sum(CASE WHEN status = 'active' THEN 1 ELSE 0 END) AS active
        FROM {dim_volunteer} WHERE status <> 'deleted'""",
    "volunteers_by_county": """
        SELECT prefecture_name, region_code, region_name, volunteers, active
        FROM {mart_volunteers_by_county} ORDER BY region_code""",
    # each source's own star rating against the stars of the deduplicated hours
    "star_agreement": """
        SELECT source, sum(accounts) AS rated,
               sum(CASE WHEN agrees THEN accounts ELSE 0 END) AS agreeing,
               sum(CASE WHEN source_star_level > computed_star_level THEN accounts ELSE 0 END) AS higher,
               sum(CASE WHEN source_star_level < computed_star_level THEN accounts ELSE 0 END) AS lower
        FROM {mart_star_level_comparison} GROUP BY source ORDER BY source""",
    "registrations_by_month": """
        SELECT month, sum(new_volunteers) AS new_volunteers
        FROM {mart_volunteer_registrations_by_month} GROUP BY month ORDER BY month""",
    "hours_by_month": """
        SELECT month, sum(services) AS services, sum(hours) AS hours
        FROM {mart_service_hours_by_month} GROUP BY month ORDER BY month""",
    "hours_by_prefecture": """
        SELECT prefecture_code, prefecture_name, sum(services) AS services, sum(hours) AS hours
        FROM {mart_service_hours_by_month} GROUP BY prefecture_code, prefecture_name
        ORDER BY prefecture_code""",
    "hours_by_category": """
        SELECT coalesce(category, '未知') AS category, sum(services) AS services, sum(hours) AS hours
        FROM {mart_service_hours_by_month} GROUP BY coalesce(category, '未知') ORDER BY hours DESC""",
    "organizations_by_registration": """
        SELECT area_level, area_code, area_name, organizations, registered, filed, unregistered,
               hubs, registration_rate
        FROM {mart_organization_registration_rate}
        ORDER BY CASE WHEN area_level = 'province' THEN 0 ELSE 1 END, area_code""",
    # the organizations in being, as the key figure and the registration rate count them:
    # an exited organization left through the exit mechanism and is in no level's count
    "organizations_by_level": """
        SELECT coalesce(level, '未知') AS level, sum(organizations) AS organizations,
               sum(CASE WHEN registration_status = 'registered' THEN organizations ELSE 0 END) AS registered,
               sum(CASE WHEN is_hub THEN organizations ELSE 0 END) AS hubs
        FROM {mart_organizations_profile} WHERE status <> 'exited'
        GROUP BY coalesce(level, '未知')""",
    "organizations_by_category": """
        SELECT category, sum(organizations) AS organizations, sum(registered) AS registered
        FROM {mart_organizations_by_category} GROUP BY category ORDER BY organizations DESC, category""",
    "evaluations_by_evaluator": """
        SELECT period, evaluator, evaluations, organizations, mean_score
        FROM {mart_evaluations_by_evaluator} ORDER BY period, evaluator""",
    # the composite evaluation (综合评价) of each organization not deleted, in score bands
    "composite_evaluation": """
        SELECT CASE WHEN e.composite_score >= 90 THEN 90 WHEN e.composite_score >= 80 THEN 80
                    WHEN e.composite_score >= 70 THEN 70 WHEN e.composite_score >= 60 THEN 60
                    ELSE 0 END AS band,
               count(*) AS organizations,
               sum(CASE WHEN e.evaluator_types = 5 THEN 1 ELSE 0 END) AS all_five
        FROM {mart_organization_evaluation} e
        JOIN {dim_organization} o ON o.org_key = e.org_key
        WHERE o.status <> 'deleted' AND e.composite_score IS NOT NULL
        GROUP BY 1 ORDER BY 1 DESC""",
    "integrity": """
        SELECT credit_status, sum(organizations) AS organizations, sum(active) AS active,
               sum(suspended) AS suspended, sum(exited) AS exited
        FROM {mart_organization_integrity} GROUP BY credit_status""",
    "organization_events_by_year": """
        SELECT year, sum(newly_registered) AS newly_registered, sum(exited) AS exited
        FROM {mart_organization_events_by_year} GROUP BY year ORDER BY year""",
    "stations_by_host_type": """
        SELECT host_type, station_type, sum(stations) AS stations
        FROM {mart_stations_by_host_type} GROUP BY host_type, station_type
        ORDER BY host_type, station_type""",
    "station_coverage_by_prefecture": """
        SELECT prefecture_code, prefecture_name, count(*) AS counties,
               sum(CASE WHEN has_station THEN 1 ELSE 0 END) AS counties_with_station,
               sum(stations) AS stations
        FROM {mart_station_coverage_by_county}
        GROUP BY prefecture_code, prefecture_name ORDER BY prefecture_code""",
    "counties_without_station": """
        SELECT prefecture_name, region_code, region_name
        FROM {mart_station_coverage_by_county} WHERE NOT has_station ORDER BY region_code""",
    "timebank_by_prefecture": """
        SELECT prefecture_code, prefecture_name, sum(volunteers) AS volunteers,
               sum(redeeming_volunteers) AS redeeming_volunteers,
               sum(deposited_hours) AS deposited_hours, sum(redeemed_hours) AS redeemed_hours,
               sum(available_hours) AS available_hours,
               sum(provincial_redeemed_hours) AS provincial_redeemed_hours,
               sum(national_redeemed_hours) AS national_redeemed_hours
        FROM {mart_timebank_by_county} GROUP BY prefecture_code, prefecture_name
        ORDER BY prefecture_code""",
    "brand_programmes": """
        SELECT brand, projects, volunteers, services, hours
        FROM {mart_brand_programmes} ORDER BY hours DESC, brand""",
    # the data-quality panel's warehouse figures
    "quarantine_by_rule": """
        SELECT source, entity, rule, count(*) AS row_count
        FROM {quarantine} GROUP BY source, entity, rule ORDER BY source, entity, rule""",
    "match_methods": """
        SELECT source, match_method, count(*) AS accounts
        FROM {volunteer_source_map} GROUP BY source, match_method ORDER BY source, match_method""",
    "newest_service": "SELECT max(service_date) AS newest_service_date FROM {fact_service}",
}


@dataclass
class ReportFigures:
    """The frames of the report, by query name (see `QUERIES`)."""

    frames: dict[str, pd.DataFrame] = field(default_factory=dict)

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.frames[name]

    def key_figures(self) -> dict[str, float | int | None]:
        """The figures at the top of the report."""
        province = self["organizations_by_registration"]
        province = province[province["area_level"] == "province"]
        coverage = self["station_coverage_by_prefecture"]
        totals = self["volunteer_totals"].iloc[0]
        return {
            "volunteers": int(totals["volunteers"] or 0),
            "active_volunteers": int(totals["active"] or 0),
            "in_both_systems": int(self["volunteers_by_prefecture"]["in_both_systems"].sum()),
            "service_hours": float(self["hours_by_month"]["hours"].sum()),
            "services": int(self["hours_by_month"]["services"].sum()),
            # as the registration rate counts them: an exited organization is in the warehouse's
            # (and warehouse/publish's) `organizations`, not here; both are named for what they hold
            "organizations_not_exited": int(province["organizations"].sum()),
            "registration_rate": (
                float(province["registration_rate"].iloc[0])
                if len(province) and pd.notna(province["registration_rate"].iloc[0]) else None
            ),
            "stations": int(coverage["stations"].sum()),
            "counties_without_station": int(len(self["counties_without_station"])),
            "quarantined_rows": int(self["quarantine_by_rule"]["row_count"].sum()),
        }


def _tables_named(sql: str) -> list[str]:
    import string

    return [name for _, name, _, _ in string.Formatter().parse(sql) if name]


def _plain_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    # Decimal columns (hours, scores) arrive as objects: floats are what charts and
    # formatting take; exact sums stay the warehouse's, only their display is rounded.
    for column in frame.columns:
        if frame[column].map(lambda v: isinstance(v, Decimal)).any():
            frame[column] = frame[column].map(lambda v: float(v) if v is not None else None)
    return frame


def read_figures(engine: sa.Engine, schema: str | None = None) -> ReportFigures:
    """Run every query of `QUERIES` against the warehouse (in `schema`, or the default one)."""
    figures = ReportFigures()
    with engine.connect() as connection:
        for name, sql in QUERIES.items():
            tables = {table: table_name(table, schema) for table in _tables_named(sql)}
            frame = pd.read_sql(sa.text(sql.format(**tables)), connection)
            figures.frames[name] = _plain_numbers(frame)
    return figures
