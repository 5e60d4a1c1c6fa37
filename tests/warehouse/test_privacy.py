"""No clear ID number, phone or full name anywhere in the warehouse (志愿服务条例 art. 20).

The scans look for the world's own clear values in every text column the database reports
(not only the columns our spec declares), in the log records of a publish, and in the
refusal to publish to a shared warehouse with the development key.
"""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from pipelines.config import DEVELOPMENT_PII_HASH_KEY
from pipelines.warehouse.privacy_scan import PersonalDataFound, scan_warehouse
from pipelines.warehouse.publish import DevelopmentKeyRefused, is_local_warehouse, publish
from tests.warehouse.conftest import AS_OF, settings_for
from tests.warehouse.helpers import all_text_values, scalar, text_columns
from tests.warehouse.world import make_world


def leaked(values: list[str], world) -> dict[str, int]:
    """How many published text values contain a clear ID number, phone or full name."""
    found = {"id_numbers": 0, "phones": 0, "names": 0}
    for value in values:
        found["id_numbers"] += any(number in value for number in world.id_numbers)
        found["phones"] += any(phone in value for phone in world.phones)
        found["names"] += any(name in value for name in world.names if len(name) >= 2)
    return found


def test_no_text_column_holds_a_clear_number_phone_or_full_name(world, published):
    engine, result = published
    columns = text_columns(engine, result.schema)
    assert set(columns) >= set(result.rows)  # every published table was scanned
    values = all_text_values(engine, columns)
    assert len(values) > 1000  # the scan looked at real content
    assert leaked(values, world) == {"id_numbers": 0, "phones": 0, "names": 0}
    # the masked forms are there instead
    assert any(v.endswith("**") for v in values)
    assert any("**********" in v for v in values)


def test_the_scan_itself_finds_what_it_looks_for(world, published):
    engine, _ = published
    values = [f"联系人电话{world.phones[3]}", f"证件 {world.id_numbers[4]} 已核验", f"{world.names[5]}志愿服务队"]
    assert leaked(values, world) == {"id_numbers": 1, "phones": 1, "names": 1}
    assert scan_warehouse(engine) == {}


def test_logs_of_a_publish_hold_no_personal_data(tmp_path, caplog):
    world = make_world(tmp_path, persons=120, services=500)
    with caplog.at_level(logging.DEBUG):
        publish(settings_for(tmp_path), as_of=AS_OF)
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "published" in text
    assert leaked([text], world) == {"id_numbers": 0, "phones": 0, "names": 0}


def test_a_phone_typed_into_a_station_name_stops_the_publish(tmp_path):
    world = make_world(tmp_path, persons=120, services=500)
    settings = settings_for(tmp_path)
    publish(settings, as_of=AS_OF)
    stations_path = tmp_path / "staged" / "stations.parquet"
    stations = world.frames["staged/stations"].copy()
    stations.loc[0, "name"] = f"社区服务站(联系{world.phones[0]})"
    stations.loc[1, "name"] = f"服务点 {world.id_numbers[1]}"
    stations.to_parquet(stations_path, index=False)
    with pytest.raises(PersonalDataFound) as refused:
        publish(settings, as_of=AS_OF)
    message = str(refused.value)
    assert "dim_station.name" in message
    assert world.phones[0] not in message and world.id_numbers[1] not in message
    engine = sa.create_engine(settings.resolved_warehouse_url)
    assert scalar(engine, "SELECT count(*) FROM dim_station WHERE name LIKE '%联系%'") == 0
    engine.dispose()


def test_the_warehouse_scan_finds_a_number_written_by_someone_else(tmp_path, pg_databases):
    world = make_world(tmp_path, persons=120, services=500)
    url = pg_databases.new()
    publish(settings_for(tmp_path, url), as_of=AS_OF)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE dim_organization SET name = :name WHERE org_key = 'O00003'"),
            {"name": f"热线{world.phones[2]}"},
        )
        connection.execute(
            sa.text("UPDATE quarantine SET detail = :detail WHERE source_id = '40000'"),
            {"detail": f"certNo {world.id_numbers[0]}"},
        )
    findings = scan_warehouse(engine)
    engine.dispose()
    assert {where: (found.id_numbers, found.phones) for where, found in findings.items()} == {
        "dim_organization.name": (0, 1),
        "quarantine.detail": (1, 0),
    }
    # the finding names the row by its key, masked: enough to find it, nothing to read off
    assert all(len(found.rows) == 1 and "*" in found.rows[0] for found in findings.values())


def test_publishing_to_a_shared_warehouse_with_the_development_key_is_refused(tmp_path):
    make_world(tmp_path, persons=50, services=100)
    remote = "postgresql+psycopg://etl:s3cr3t-pw@warehouse.gz.example:5432/volunteer"
    with pytest.raises(DevelopmentKeyRefused) as refused:
        publish(settings_for(tmp_path, remote, key=DEVELOPMENT_PII_HASH_KEY), as_of=AS_OF)
    assert "s3cr3t-pw" not in str(refused.value) and "PII_HASH_KEY" in str(refused.value)
    # a local DuckDB file is fine with the development key
    publish(settings_for(tmp_path, key=DEVELOPMENT_PII_HASH_KEY), as_of=AS_OF)


@pytest.mark.parametrize(
    "url, local",
    [
        ("duckdb:////tmp/w.duckdb", True),
        ("duckdb:///md:volunteers", False),
        ("sqlite:///w.db", True),
        ("postgresql+psycopg://postgres@127.0.0.1:5432/test", True),
        ("postgresql+psycopg://postgres@localhost/test", True),
        ("postgresql+psycopg:///test?host=/var/run/postgresql", True),
        ("postgresql+psycopg://etl@10.2.3.4:5432/volunteer", False),
        ("postgresql+psycopg://etl@db.example.cn/volunteer", False),
    ],
)
def test_what_counts_as_a_local_warehouse(url, local):
    assert is_local_warehouse(url) is local


def test_a_number_that_is_the_whole_value_is_found_at_its_shortest(tmp_path):
    """The scan passes over values shorter than the shortest number it looks for (a mobile:
    11 digits) before its regular expression runs; a value that is nothing but such a number,
    in half- or full-width digits, is still found, in the built files and in the warehouse,
    and a 10-digit one is not a finding."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.warehouse.privacy_scan import scan_built_files
    from pipelines.warehouse.publish import published_build_dir

    world = make_world(tmp_path, persons=120, services=500)
    settings = settings_for(tmp_path)
    publish(settings, as_of=AS_OF)
    phone = world.phones[0]
    full_width = phone.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert len(phone) == len(full_width) == 11

    built = pq.read_table(published_build_dir(settings) / "dim_organization.parquet")
    names = built["name"].to_pylist()
    names[:3] = [phone, full_width, phone[:10]]
    edited = tmp_path / "dim_organization.parquet"
    pq.write_table(built.set_column(built.schema.get_field_index("name"), "name",
                                    pa.array(names, built.schema.field("name").type)), edited)
    found = scan_built_files({"dim_organization": edited})
    assert {where: (f.id_numbers, f.phones) for where, f in found.items()} == {"dim_organization.name": (0, 2)}

    engine = sa.create_engine(settings.resolved_warehouse_url)
    with engine.begin() as connection:
        for org_key, name in zip(built["org_key"].to_pylist()[:3], names[:3]):
            connection.execute(sa.text("UPDATE dim_organization SET name = :name WHERE org_key = :key"),
                               {"name": name, "key": org_key})
    found = scan_warehouse(engine)
    engine.dispose()
    assert {where: (f.id_numbers, f.phones) for where, f in found.items()} == {"dim_organization.name": (0, 2)}


def test_an_id_number_in_an_identifier_column_is_found_behind_many_long_account_numbers(tmp_path):
    """Only an ID number is a finding in an identifier column, so only values that can hold
    one are judged there: a source's 14- and 16-digit account numbers and the pipeline's own
    keys, more than a batch of them, do not hide an ID number typed as the last account's id
    (the scan once judged the first 10,000 candidates of a column and no more)."""
    from datetime import date

    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.warehouse.privacy_scan import CANDIDATE_BATCH_ROWS, scan_built_files
    from tests.resolve.synthetic import make_cert

    accounts = CANDIDATE_BATCH_ROWS + 50
    source_ids = [f"5200{n:010d}" if n % 2 else f"10{n:014d}" for n in range(accounts - 1)] + [
        make_cert("520102", date(1990, 5, 17), 31)]
    table = pa.table({
        "source": ["national"] * accounts,
        "source_id": source_ids,
        "volunteer_key": [f"V{n:012d}" for n in range(accounts)],  # 12 digits: no ID
        "match_method": ["singleton"] * accounts,
        "match_probability": pa.nulls(accounts, pa.float64()),
    })
    path = tmp_path / "volunteer_source_map.parquet"
    pq.write_table(table, path)
    found = scan_built_files({"volunteer_source_map": path})
    assert {where: (f.id_numbers, f.phones, len(f.rows)) for where, f in found.items()} == {
        "volunteer_source_map.source_id": (1, 0, 1)}


def _quarantine_findings(tmp_path, pg_databases, records: list[str]) -> list[dict]:
    """The privacy findings (ID numbers, phones, rows named) in a quarantine table of
    `records`: in its built file, then loaded into DuckDB and into PostgreSQL."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.warehouse.privacy_scan import scan_built_files
    from pipelines.warehouse.publish import load_files
    from pipelines.warehouse.verify import default_schema

    rows = len(records)
    table = pa.table({
        "source": ["national"] * rows, "entity": ["services"] * rows,
        "source_id": [str(1000000000000000 + n) for n in range(rows)],
        "rule": ["hours_out_of_range"] * rows, "detail": ["hours > 24"] * rows, "record": records,
        "first_seen_at": pa.nulls(rows, pa.timestamp("us", "UTC")),
        "last_seen_at": pa.nulls(rows, pa.timestamp("us", "UTC")),
    })
    path = tmp_path / "quarantine.parquet"
    pq.write_table(table, path)

    def shape(found):
        return {where: (f.id_numbers, f.phones, len(f.rows)) for where, f in found.items()}

    findings = [shape(scan_built_files({"quarantine": path}))]
    for url in (f"duckdb:///{tmp_path / 'warehouse.duckdb'}", pg_databases.new()):
        engine = sa.create_engine(url)
        try:
            load_files(engine, {"quarantine": path}, schema=default_schema(engine))
            findings.append(shape(scan_warehouse(engine)))
        finally:
            engine.dispose()
    return findings


def test_every_candidate_of_a_free_text_column_is_judged(tmp_path, pg_databases):
    """A quarantine record holds its raw row, whose long ids make every record a candidate:
    a phone in the last of more than a batch of them is found, in the built file and in the
    warehouse (DuckDB and PostgreSQL, which streams the candidates)."""
    from pipelines.warehouse.privacy_scan import CANDIDATE_BATCH_ROWS

    rows = CANDIDATE_BATCH_ROWS + 20
    records = [f'{{"id": "{1000000000000000 + n}", "hours": 2}}' for n in range(rows - 1)]
    records.append('{"id": "1000000000999999", "contact": "138 0013 8000"}')
    assert _quarantine_findings(tmp_path, pg_databases, records) == [{"quarantine.record": (0, 1, 1)}] * 3


def test_numbers_glued_to_letters_spaced_dashes_and_fixed_lines_are_findings(tmp_path, pg_databases):
    """What the privacy audit of 7 Dec found in clear (an ID number or a phone glued to
    letters, an ID number grouped with spaces around its dashes, fixed lines) is a finding in
    the built file and in the warehouse, DuckDB and PostgreSQL alike: the database fetches
    them (the separators as `pipelines.privacy` reads them) and Python judges them; a fixed
    line counts as a phone. The sources' own numbers, dates and run ids beside them are none."""
    from tests.reference import resident_id

    number = resident_id("52010219900101123")
    records = [
        f'{{"areaCode": "SFZ{number}"}}',
        f'{{"skills": "{number[:6]} - {number[6:14]} - {number[14:]}"}}',
        '{"contact": "(0851)86812345"}',
        '{"hostType": "tel13812345678"}',
        '{"contact": "0851 – 8681 – 2345"}',
        '{"id": "52000000000030", "at": "2023-01-05 08:30:00", "day": "20230105", "region": "520102000000", '
        '"run": "f08360852789d059c6e50df2e5a3863e", "uscc": "91520100MA6DXXXXXX", "team": "X520000000001", '
        '"hours": 2.5}',
    ]
    # 3 rows named at most
    assert _quarantine_findings(tmp_path, pg_databases, records) == [{"quarantine.record": (2, 3, 3)}] * 3
