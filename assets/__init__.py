"""Dagster asset definitions, one module per layer: raw, staged, resolved, warehouse.

Each module exports `assets` (and `warehouse` its freshness `asset_checks`);
`pipelines/definitions.py` assembles them. The work itself lives in `pipelines/`.
"""
