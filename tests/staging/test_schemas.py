"""The canonical schema and the mappings load, agree with each other and with the connectors."""

from __future__ import annotations

import pyarrow as pa

from pipelines.normalize.statuses import vocabularies
from pipelines.schemas import all_stream_mappings, arrow_schema, table_names, table_spec
from pipelines.sources import NATIONAL_STREAMS, PROVINCIAL_STREAMS
from pipelines.staging.derived import DERIVED
from pipelines.staging.transforms import TRANSFORMS


def test_every_landed_stream_is_mapped_to_one_table():
    mapped = {(m.source, m.stream) for m in all_stream_mappings()}
    landed = {("national", s) for s in NATIONAL_STREAMS} | {
        ("provincial", s) for s in PROVINCIAL_STREAMS
    }
    assert mapped == landed
    assert {m.table for m in all_stream_mappings()} == set(table_names())


def test_every_transform_and_vocabulary_named_by_a_mapping_exists():
    kinds = set(vocabularies())
    for mapping in all_stream_mappings():
        for column, spec in mapping.columns.items():
            assert spec.get("via", "text") in TRANSFORMS, (mapping.stream, column)
            if spec.get("via") == "vocabulary":
                assert spec["kind"] in kinds, (mapping.stream, column)
        for spec in mapping.derived:
            assert spec["via"] in DERIVED, (mapping.stream, spec["via"])


def test_common_columns_lead_every_table_and_types_are_arrow():
    for table in table_names():
        schema = arrow_schema(table)
        assert schema.names[:4] == ["source", "source_id", "updated_at", "is_deleted"]
        assert schema.field("updated_at").type == pa.timestamp("us", tz="UTC")
        assert table_spec(table).key == ("source", "source_id")
    assert arrow_schema("services").field("service_date").type == pa.date32()
