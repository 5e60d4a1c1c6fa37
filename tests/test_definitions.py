"""The code location loads, holds every layer, and stays cheap to import."""

import subprocess
import sys

import dagster as dg


def test_definitions_validate_and_sync_all_covers_every_asset():
    from pipelines.definitions import defs

    dg.Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    job = defs.resolve_job_def("sync_all")
    all_keys = {key for key in repo.asset_graph.get_all_asset_keys()}
    assert all_keys, "the code location has no assets"
    # every asset but the prefecture partitions of staging, which are their own job (a job
    # holds one partitioning) and stage what sync_all stages whole
    by_prefecture = defs.resolve_job_def("stage_by_prefecture")
    assert set(by_prefecture.asset_layer.selected_asset_keys) == {dg.AssetKey(["staged", "prefecture_parts"])}
    assert set(job.asset_layer.selected_asset_keys) == all_keys - {dg.AssetKey(["staged", "prefecture_parts"])}
    groups = {repo.asset_graph.get(key).group_name for key in all_keys}
    assert {"raw", "staged", "resolved", "warehouse"} <= groups
    assert {s.name for s in defs.schedules} >= {"nightly_sync"}


def test_loading_the_code_location_does_no_heavy_work():
    # The webserver, the daemon and every run step import this module: Great Expectations,
    # Splink and a network call must stay out of it.
    probe = (
        "import sys, pipelines.definitions; "
        "heavy = [m for m in ('great_expectations', 'splink') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
