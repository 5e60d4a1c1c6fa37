"""Staging: landed raw pages -> canonical staged tables, and quarantine for rows that cannot load.

* `extract.py`: the latest version of each landed row, its mapped fields and their JSON kinds;
* `transforms.py`, `derived.py`: the normalizers a mapping names, which never raise;
* `adapter.py`: a source's rows onto the canonical model as its mapping file declares
  (schemas/mapping/*.yaml), unusable values quarantined or nulled as the mapping says;
* `tables.py`: one canonical table from all its streams, its quarantine part, and the
  accounting (landed = staged + quarantined + superseded, per stream and sync).

`stage_table(table, settings, as_of)` is a plain function (no Dagster): the assets, tests and
benchmarks call it the same way. Missing raw folders mean an empty table.
"""

from pipelines.staging.adapter import MappedChunk, map_chunk
from pipelines.staging.extract import extract_sql, raw_batches
from pipelines.staging.tables import (
    DEFAULT_CHUNK_ROWS,
    StagedResult,
    combine_quarantine,
    frame_to_arrow,
    quarantine_path,
    read_quarantine,
    read_staged,
    read_staged_head,
    stage_all,
    stage_table,
    staged_path,
)

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "MappedChunk",
    "StagedResult",
    "combine_quarantine",
    "extract_sql",
    "frame_to_arrow",
    "map_chunk",
    "quarantine_path",
    "raw_batches",
    "read_quarantine",
    "read_staged",
    "read_staged_head",
    "stage_all",
    "stage_table",
    "staged_path",
]
