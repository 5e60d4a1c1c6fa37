"""Data quality of the staged layer: row rules and quarantine, and Great Expectations suites.

`rules.py` judges each staged row (quarantine rules and soft flags), `quarantine.py` shapes
the rejected rows as the warehouse's `quarantine` table, `gx_runner.py` runs the suites of
`expectations/` over staged frames for the Dagster asset checks. No Dagster here.
"""
