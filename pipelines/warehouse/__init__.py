"""The published warehouse: contract tables, organization history and statistics marts.

Data walks one way here too: the resolved and staged files are opened as views (inputs.py),
every table and mart is built into Parquet by a private DuckDB (build.py, history.py,
marts/*.sql), scanned for clear personal numbers (privacy_scan.py) and loaded into the
warehouse named by WAREHOUSE_URL in one atomic swap (publish.py). What is published, with
types, units and meanings, is declared once in schemas/warehouse.yaml (spec.py), which also
generates docs/DATA_DICTIONARY.md (dictionary.py); verify.py reads the result back.

Entry point: `pipelines.warehouse.publish.publish(settings)`. No Dagster here.
"""
