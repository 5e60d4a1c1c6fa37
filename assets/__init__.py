"""Dagster asset definitions, one module per layer: raw, staged, resolved, warehouse.

Each module exports `assets` and `asset_checks` (and `resources` where it needs any);
`pipelines/definitions.py` assembles them. The work itself lives in `pipelines/`.
"""
