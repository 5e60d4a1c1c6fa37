"""The staged Dagster assets: materialize over hand-landed raw pages, checks and metadata."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil

import dagster as dg
import pyarrow.parquet as pq
import pytest

from assets import staged as staged_assets
from pipelines import duck
from pipelines.resources import PipelineSettings
from pipelines.schemas import table_names
from pipelines.staging import extract, read_quarantine

from .rawpages import (
    TEST_KEY,
    land,
    national_service,
    national_team,
    national_volunteer,
    provincial_log,
    provincial_volunteer,
    resident_id,
)

NUMBER = resident_id("52010219900307123")


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PII_HASH_KEY", TEST_KEY)
    data = tmp_path / "data"
    land(
        data,
        "national",
        "volunteers",
        [
            national_volunteer("0001", NUMBER),
            national_volunteer("0002", NUMBER, albp0020="110101"),
        ],
    )
    land(data, "provincial", "volunteers", [provincial_volunteer(1, NUMBER, sex="男")])
    land(
        data,
        "national",
        "service_records",
        [national_service("R1"), national_service("R2", albx0172=30)],
    )
    land(data, "provincial", "service_logs", [provincial_log(1)])
    return data


def test_every_table_has_an_asset_with_checks_and_raw_deps():
    (definition,) = staged_assets.assets
    keys = {key.to_user_string() for key in definition.keys}
    assert keys == {f"staged/{table}" for table in table_names()} | {"staged/quarantine"}
    volunteers = dg.AssetKey(["staged", "volunteers"])
    assert definition.asset_deps[volunteers] == {
        dg.AssetKey(["raw", "national_volunteers"]),
        dg.AssetKey(["raw", "provincial_volunteers"]),
    }
    checks = {(spec.asset_key.to_user_string(), spec.name): spec for spec in definition.check_specs}
    assert checks[("staged/volunteers", "key_unique")].blocking
    assert checks[("staged/volunteers", "region_in_guizhou")].blocking
    assert not checks[("staged/volunteers", "valid_id_share")].blocking
    assert not checks[("staged/volunteers", "quarantined_rows")].blocking
    assert checks[("staged/services", "hours_in_range")].blocking
    assert checks[("staged/services", "required_fields")].blocking


def test_one_table_can_be_staged_alone(data_dir):
    result = dg.materialize(
        staged_assets.assets,
        selection=["staged/services"],
        resources={"pipeline_settings": PipelineSettings(data_dir=str(data_dir))},
    )
    assert result.success
    assert [m.asset_key.to_user_string() for m in result.get_asset_materialization_events()] == [
        "staged/services"
    ]
    assert {e.asset_key.to_user_string() for e in result.get_asset_check_evaluations()} == {
        "staged/services"
    }


def test_materializing_stages_validates_and_reports(data_dir):
    result = dg.materialize(
        staged_assets.assets,
        resources={"pipeline_settings": PipelineSettings(data_dir=str(data_dir))},
    )
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    failed = [(e.asset_key.to_user_string(), e.check_name) for e in evaluations if not e.passed]
    # one row in three is quarantined: above the warning share; nothing blocking fails
    assert sorted(failed) == [
        ("staged/services", "quarantined_rows"),
        ("staged/volunteers", "quarantined_rows"),
    ]
    assert all(e.passed for e in evaluations if e.check_name != "quarantined_rows")

    materializations = {
        m.asset_key.to_user_string(): m for m in result.get_asset_materialization_events()
    }
    volunteers = materializations["staged/volunteers"].materialization.metadata
    assert volunteers["rows_national"].value == 1 and volunteers["rows_provincial"].value == 1
    assert volunteers["quarantined_per_rule"].value == {"region_outside_province": 1}
    quarantine = materializations["staged/quarantine"].materialization.metadata
    assert quarantine["per_rule"].value == {"hours_out_of_range": 1, "region_outside_province": 1}
    assert (
        len(read_quarantine(PipelineSettings(data_dir=str(data_dir)).settings())) == 2
    )

    # no clear number, phone or full name anywhere in the run's metadata
    shown = json.dumps(
        [
            {k: str(v.value) for k, v in m.materialization.metadata.items()}
            for m in materializations.values()
        ]
        + [{k: str(v.value) for k, v in e.metadata.items()} for e in evaluations],
        ensure_ascii=False,
    )
    for clear in (NUMBER, "13812345678", "13900001111", "张小明", "李娜"):
        assert clear not in shown


def _staged_outcome(data_dir, **settings):
    """What a materialization of the staged step shows: per asset its metadata (paths and
    previews aside, which name the folder) and its checks' verdicts, and the staged files."""
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        staged_assets.assets,
        resources={"pipeline_settings": PipelineSettings(data_dir=str(data_dir), **settings)},
        instance=instance,
    )
    assert result.success
    shown = {
        m.asset_key.to_user_string(): {
            k: v.value for k, v in m.materialization.metadata.items()
            if k not in {"path", "preview", "as_of"}  # (the folder, and the run's instant)
        }
        for m in result.get_asset_materialization_events()
    }
    checks = sorted(
        (e.asset_key.to_user_string(), e.check_name, e.passed) for e in result.get_asset_check_evaluations()
    )
    files = {
        path.name: pq.read_table(path).to_pylist()
        for path in sorted((data_dir / "staged").glob("*.parquet"))
    }
    logs = [entry.user_message for entry in instance.all_logs(result.run_id)]
    return shown, checks, files, logs


def test_tables_staged_side_by_side_in_processes_are_what_one_process_stages(data_dir, tmp_path):
    """Two tables at a time, each in a step process of its own (the default above
    `step_process_min_mb`, forced here with 0): the same tables, metadata and verdicts as
    staging one after another in the step's own process; every table materialized once."""
    alone = tmp_path / "alone"
    shutil.copytree(data_dir, alone)
    one_by_one = _staged_outcome(alone)
    side_by_side = _staged_outcome(data_dir, step_process_min_mb=0, staging_processes=2)
    assert side_by_side[0] == one_by_one[0]
    assert set(side_by_side[0]) == {f"staged/{t}" for t in table_names()} | {"staged/quarantine"}
    assert side_by_side[1] == one_by_one[1]
    assert side_by_side[2] == one_by_one[2] and side_by_side[2]
    started = [line for line in side_by_side[3] if "a staging process started" in line]
    assert len(started) == 2 and "up to 2 tables at a time" in started[0]
    # each child spilled into a folder of its own, removed once the child is gone
    spill = data_dir / "staged" / extract.SPILL_FOLDER
    children = {p.name for p in spill.iterdir()}
    assert len(children) == 2 and str(os.getpid()) not in children
    duck.connect(spill_to=spill).close()
    assert [p.name for p in spill.iterdir()] == [str(os.getpid())]


def test_a_table_failing_beside_another_fails_the_step_once_the_other_is_done(data_dir):
    """One table's pages are unreadable: the step fails with that table's error, scrubbed;
    the table under way beside it still ends and is materialized, and no child is left. The
    rerun, the page mended, stages what failed and reuses what was done."""
    page = next((data_dir / "raw" / "national" / "service_records").rglob("*.parquet"))
    good = page.read_bytes()
    page.write_bytes(b"not a parquet file, and a phone 13812345678")
    side_by_side = {"pipeline_settings": PipelineSettings(
        data_dir=str(data_dir), step_process_min_mb=0, staging_processes=2)}
    result = dg.materialize(staged_assets.assets, resources=side_by_side, raise_on_error=False)
    assert not result.success
    [failure] = [e.step_failure_data for e in result.get_step_failure_events()]
    assert "13812345678" not in failure.error.to_string() + str(failure.user_failure_data)
    materialized = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert "staged/volunteers" in materialized and "staged/services" not in materialized
    assert not multiprocessing.active_children()

    page.write_bytes(good)
    rerun = dg.materialize(staged_assets.assets, resources=side_by_side)
    metadata = {m.asset_key.to_user_string(): m.materialization.metadata
                for m in rerun.get_asset_materialization_events()}
    assert "reused_from_as_of" in metadata["staged/volunteers"]
    assert "reused_from_as_of" not in metadata["staged/services"]
    assert metadata["staged/services"]["dagster/row_count"].value == 2


def test_a_reused_staging_keeps_its_folders_by_their_time_once_they_have_settled(data_dir, monkeypatch):
    """Staged right after the landing, the sync folders are fresh and kept page by page; the
    next run reuses the staging and keeps them by their time alone from then on."""
    from pipelines import landing
    from pipelines.config import Settings
    from pipelines.reuse import load_record
    from pipelines.staging.incremental import BASIS_KEY

    resources = {"pipeline_settings": PipelineSettings(data_dir=str(data_dir))}
    settings = Settings(data_dir=data_dir, pii_hash_key=TEST_KEY)

    def kept_states() -> list:
        folders = load_record(settings, "staged/volunteers").report[BASIS_KEY]["folders"]
        return [states for stream in folders for _, _, states in stream]

    assert dg.materialize(staged_assets.assets, resources=resources).success
    assert all(states is not None for states in kept_states())  # fresh: page by page
    monkeypatch.setattr(landing, "SETTLED_NS", 0)  # as if the two seconds had passed
    rerun = dg.materialize(staged_assets.assets, resources=resources)
    metadata = {m.asset_key.to_user_string(): m.materialization.metadata
                for m in rerun.get_asset_materialization_events()}
    assert "reused_from_as_of" in metadata["staged/volunteers"]
    assert kept_states() == [None, None]  # settled: each by its time
    again = dg.materialize(staged_assets.assets, resources=resources)
    assert all("reused_from_as_of" in m.materialization.metadata for m in again.get_asset_materialization_events()
               if m.asset_key.to_user_string() == "staged/volunteers")


MARKUP_NAMES = ['<img src=x onerror=alert(1)>志愿服务队', '![beacon](http://evil.example/p.png)志愿服务队',
                '[点我](http://evil.example)志愿服务队', '<script>alert(2)</script>志愿服务队', 'a|b 志愿服务队']


def test_a_team_name_written_as_markup_shows_as_text_in_the_preview(tmp_path, monkeypatch):
    """The staged tables' preview is Markdown on the asset's page in the Dagster UI: a name
    is shown as typed, never as an image the page fetches, a link, or HTML."""
    from markdown_it import MarkdownIt

    monkeypatch.setenv("PII_HASH_KEY", TEST_KEY)
    data = tmp_path / "data"
    land(data, "national", "teams", [national_team(f"{i:04d}", albe0002=name) for i, name in enumerate(MARKUP_NAMES)])
    result = dg.materialize(staged_assets.assets, selection=["staged/organizations"],
                            resources={"pipeline_settings": PipelineSettings(data_dir=str(data))})
    assert result.success
    (materialization,) = result.asset_materializations_for_node("staged")
    preview = materialization.metadata["preview"].value
    # as the UI renders it: GitHub tables, raw HTML passed through (then sanitized, in the UI)
    page = MarkdownIt("commonmark", {"html": True}).enable("table").render(preview)
    assert "<img" not in page and "<a " not in page and "<script" not in page
    cells = page.count("<td>")
    assert cells and page.count("</td>") == cells  # no name split the row (`|`)
    staged_names = pq.read_table(data / "staged" / "organizations.parquet", columns=["name"])["name"].to_pylist()
    assert len(staged_names) == len(MARKUP_NAMES)  # staging keeps them (spaces tidied): names, not markup
    for name in staged_names:
        shown = name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
        assert shown in page
