"""Provincial minutes become six-decimal hours without a person losing hours to rounding.

Seven logs of 857, 857, 857, 857, 857, 857 and 858 minutes are 6,000 minutes: 100 hours, the
first star. Rounded one row at a time (14.283333 x 6 + 14.3) they summed to 99.999998 and
the person was published with no star (found by an outside tester's own servers)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import sqlalchemy as sa

from pipelines.warehouse.publish import publish
from tests.warehouse.conftest import settings_for
from tests.warehouse.helpers import rows
from tests.warehouse.world import make_world

MINUTES = [857] * 6 + [858]  # 6,000 minutes in all


def _add_provincial_logs(data_dir, volunteer_key: str) -> None:
    path = data_dir / "resolved" / "services.parquet"
    services = pd.read_parquet(path)
    services = services[services["volunteer_key"] != volunteer_key]  # the person's only services
    template = services.iloc[0].to_dict()
    logs = [
        dict(template, service_key=f"SM{i:05d}", volunteer_key=volunteer_key, hours=minutes / 60,
             service_date=dt.date(2026, 8, 1) + dt.timedelta(days=i), source="provincial",
             national_source_id=None, provincial_source_id=str(90_000 + i))
        for i, minutes in enumerate(MINUTES)
    ]
    pd.concat([services, pd.DataFrame(logs)], ignore_index=True).to_parquet(path, index=False)


def test_a_person_with_exactly_100_hours_in_odd_minutes_is_published_at_100_hours_and_one_star(tmp_path):
    world = make_world(tmp_path, persons=40, organizations=10, services=200)
    person = world.frames["resolved/volunteers"]["volunteer_key"].iloc[10]
    _add_provincial_logs(tmp_path, person)
    settings = settings_for(tmp_path)
    publish(settings, as_of=dt.date(2026, 12, 7))
    engine = sa.create_engine(settings.resolved_warehouse_url)
    try:
        [(total, stars)] = rows(engine, "SELECT total_hours, star_level FROM dim_volunteer WHERE volunteer_key = :k", k=person)
        facts = [h for (h,) in rows(engine, "SELECT hours FROM fact_service WHERE volunteer_key = :k ORDER BY service_key", k=person)]
        every_total = rows(
            engine,
            "SELECT v.volunteer_key, v.total_hours, coalesce(sum(f.hours), 0) FROM dim_volunteer v "
            "LEFT JOIN fact_service f ON f.volunteer_key = v.volunteer_key GROUP BY 1, 2",
        )
    finally:
        engine.dispose()
    assert total == Decimal("100") and stars == 1
    # each log is within a millionth of an hour of its own minutes, and they sum to the total
    assert len(facts) == len(MINUTES) and sum(facts) == total
    assert all(abs(hours - Decimal(minutes) / 60) <= Decimal("0.000001") for hours, minutes in zip(facts, MINUTES))
    # and every person's total is still exactly the sum of the person's fact rows
    assert all(total == summed for _, total, summed in every_total)
