"""The five listing endpoints of the national interface, declared once.

All share the keyset paging of the contract (ordered by (updated_at, id), `updated_since` +
`after_id`), `id` as row id, `updated_at` as cursor and `isdelete` (0/1) as the deletion flag.
The page size is the interface's maximum, 1000.
"""

from __future__ import annotations

from pipelines.sources.streams import Paging, declare_streams

NATIONAL_PAGE_SIZE = 1000

NATIONAL_STREAMS = declare_streams(
    "national",
    {
        "volunteers": "/api/v1/volunteers",
        "teams": "/api/v1/teams",
        "projects": "/api/v1/projects",
        "service_records": "/api/v1/service-records",
        "evaluations": "/api/v1/evaluations",
    },
    paging=Paging.KEYSET,
    id_field="id",
    cursor_field="updated_at",
    deleted_field="isdelete",
    page_size=NATIONAL_PAGE_SIZE,
)
