"""The six listing endpoints of the 志愿贵州 open interface, declared once.

All share the opaque-cursor paging of the contract (rows ordered by (updateTime, id),
`modified_after` inclusive, Beijing time without offset), integer `id`, `updateTime` as
cursor and `isDeleted` (boolean) as the deletion flag. The page size is the interface's
maximum, 500.
"""

from __future__ import annotations

from pipelines.sources.streams import Paging, declare_streams

PROVINCIAL_PAGE_SIZE = 500

PROVINCIAL_STREAMS = declare_streams(
    "provincial",
    {
        "teams": "/open/v2/teams",
        "volunteers": "/open/v2/volunteers",
        "activities": "/open/v2/activities",
        "service_logs": "/open/v2/service-logs",
        "stations": "/open/v2/stations",
        "redemptions": "/open/v2/timebank/redemptions",
    },
    paging=Paging.CURSOR,
    id_field="id",
    cursor_field="updateTime",
    deleted_field="isDeleted",
    page_size=PROVINCIAL_PAGE_SIZE,
    integer_ids=True,
)
