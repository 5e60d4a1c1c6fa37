"""The six listing endpoints of the 志愿贵州 open interface, declared once each.

All share the opaque-cursor paging of the contract (rows ordered by (updateTime, id),
`modified_after` inclusive, Beijing time without offset), integer `id`, `updateTime` as
cursor and `isDeleted` (boolean) as the deletion flag. The page size is the interface's
maximum, 500.
"""

from __future__ import annotations

from pipelines.sources.streams import Stream

PROVINCIAL_PAGE_SIZE = 500


def _stream(name: str, path: str) -> Stream:
    return Stream(
        source="provincial",
        name=name,
        path=path,
        paging="cursor",
        id_field="id",
        cursor_field="updateTime",
        deleted_field="isDeleted",
        page_size=PROVINCIAL_PAGE_SIZE,
    )


PROVINCIAL_STREAMS: dict[str, Stream] = {
    stream.name: stream
    for stream in (
        _stream("teams", "/open/v2/teams"),
        _stream("volunteers", "/open/v2/volunteers"),
        _stream("activities", "/open/v2/activities"),
        _stream("service_logs", "/open/v2/service-logs"),
        _stream("stations", "/open/v2/stations"),
        _stream("redemptions", "/open/v2/timebank/redemptions"),
    )
}
