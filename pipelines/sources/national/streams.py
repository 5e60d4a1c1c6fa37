"""The five listing endpoints of the national interface, declared once each.

All share the keyset paging of the contract (ordered by (updated_at, id), `updated_since` +
`after_id`), `id` as row id, `updated_at` as cursor and `isdelete` (0/1) as the deletion flag.
The page size is the interface's maximum, 1000.
"""

from __future__ import annotations

from pipelines.sources.streams import Stream

NATIONAL_PAGE_SIZE = 1000


def _stream(name: str, path: str) -> Stream:
    return Stream(
        source="national",
        name=name,
        path=path,
        paging="keyset",
        id_field="id",
        cursor_field="updated_at",
        deleted_field="isdelete",
        page_size=NATIONAL_PAGE_SIZE,
    )


NATIONAL_STREAMS: dict[str, Stream] = {
    stream.name: stream
    for stream in (
        _stream("volunteers", "/api/v1/volunteers"),
        _stream("teams", "/api/v1/teams"),
        _stream("projects", "/api/v1/projects"),
        _stream("service_records", "/api/v1/service-records"),
        _stream("evaluations", "/api/v1/evaluations"),
    )
}
