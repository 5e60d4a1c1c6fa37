"""The resolved assets, materialized by Dagster over staged files on disk, with a truth to measure against."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from dagster import materialize

from assets.resolved import resolved_entities
from pipelines.clock import BEIJING
from pipelines.config import Settings
from pipelines.resolve.store import resolve_all
from pipelines.resources import PipelineSettings
from tests.resolve.synthetic import make_world, pairwise_confusion

AS_OF = datetime(2026, 6, 30, 18, 0, tzinfo=BEIJING)


def write_staged_world(data_dir, persons: int = 400, seed: int = 9):
    """Staged volunteers/services/projects/organizations of a synthetic world, and its truth folder."""
    accounts, people = make_world(persons, seed)
    staged = data_dir / "staged"
    staged.mkdir(parents=True)
    accounts.drop(columns=["person_id"]).to_parquet(staged / "volunteers.parquet")
    rng = np.random.default_rng(seed)
    rows = []
    for i, acc in enumerate(accounts.itertuples(index=False)):
        hours = float(rng.integers(1, 16)) / 4
        rows.append({"source": acc.source, "source_id": f"S{i}", "volunteer_source_id": acc.source_id,
                     "hours": hours, "service_date": pd.Timestamp("2026-04-01") + pd.Timedelta(days=i % 30),
                     "org_source_id": "T1", "project_source_id": "X1", "is_effective": True, "is_deleted": False,
                     "national_record_id": None, "origin_log_id": None, "person_id": acc.person_id,
                     "updated_at": pd.Timestamp("2026-04-02", tz="UTC")})
    services = pd.DataFrame(rows)
    services.drop(columns=["person_id"]).to_parquet(staged / "services.parquet")
    pd.DataFrame([{"source": "national", "source_id": "X1", "category": "社区服务", "name": "p", "org_source_id": "T1",
                   "updated_at": pd.Timestamp("2026-01-01", tz="UTC"), "is_deleted": False}]).to_parquet(staged / "projects.parquet")
    pd.DataFrame([{"source": "national", "source_id": "T1", "name": "队", "region_code": "520102", "status": "active",
                   "updated_at": pd.Timestamp("2026-01-01", tz="UTC"), "is_deleted": False,
                   "registration_status": "registered"}]).to_parquet(staged / "organizations.parquet")
    truth = data_dir / "truth"
    truth.mkdir()
    accounts.assign(entity="volunteer", true_id=accounts["person_id"])[["source", "entity", "source_id", "true_id"]].to_parquet(
        truth / "accounts.parquet")
    true_hours = services.groupby("person_id")["hours"].sum()
    people.assign(true_hours=people["person_id"].map(true_hours).fillna(0.0))[["person_id", "true_hours"]].to_parquet(
        truth / "persons.parquet")
    return accounts


def test_materialize_reports_quality_and_writes_every_file(tmp_path):
    accounts = write_staged_world(tmp_path)
    result = materialize(
        [resolved_entities],
        resources={"pipeline_settings": PipelineSettings(data_dir=str(tmp_path), sandbox_truth_dir=str(tmp_path / "truth"))},
    )
    assert result.success
    materializations = {
        event.asset_key.path[-1]: event.event_specific_data.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    volunteers = materializations["volunteers"]
    # recounted here from the resolved map and the world's truth; the metadata must say the same
    counts = pairwise_confusion(pd.read_parquet(tmp_path / "resolved" / "volunteer_source_map.parquet"), accounts)
    precision = counts["tp"] / (counts["tp"] + counts["fp"])
    recall = counts["tp"] / (counts["tp"] + counts["fn"])
    assert precision >= 0.995 and recall >= 0.99, counts
    assert volunteers["precision"].value == pytest.approx(precision, abs=1e-6)
    assert volunteers["recall"].value == pytest.approx(recall, abs=1e-6)
    assert volunteers["persons"].value > 0 and "false_positive_pairs" in volunteers
    services = materializations["services"]
    assert services["persons_hours_wrong"].value <= 1
    truth_total = pd.read_parquet(tmp_path / "truth" / "persons.parquet")["true_hours"].sum()
    assert services["total_hours"].value == pytest.approx(truth_total, abs=0.01)
    assert services["total_hours"].value == services["province_hours_truth"].value
    checks = {(c.asset_key.path[-1], c.check_name): c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {
        ("volunteers", "one_valid_number_per_person"): True,
        ("volunteers", "every_account_one_key"): True,
        ("volunteers", "keys_stable"): True,
        ("organizations", "every_account_one_key"): True,
        ("organizations", "keys_stable"): True,
        ("services", "counted_once"): True,
    }
    resolved = tmp_path / "resolved"
    for name in ["volunteer_source_map", "volunteers", "volunteer_links", "volunteer_match_review", "volunteer_key_history",
                 "organization_source_map", "organizations", "services", "service_duplicate_candidates"]:
        assert (resolved / f"{name}.parquet").exists(), name
    assert (tmp_path / "state" / "resolve" / "review_decisions.csv").exists()
    # nothing personal in the metadata: no name of the world appears in it
    names = set(pd.read_parquet(tmp_path / "staged" / "volunteers.parquet")["name"])
    text = json.dumps({k: str(v.value) for m in materializations.values() for k, v in m.items()}, ensure_ascii=False)
    assert not any(name in text for name in names if len(name) >= 2)


def test_second_sync_with_no_change_changes_nothing(tmp_path):
    write_staged_world(tmp_path, persons=200, seed=4)
    settings = Settings(data_dir=tmp_path)
    first = resolve_all(settings, AS_OF)
    first_map = pd.read_parquet(tmp_path / "resolved" / "volunteer_source_map.parquet")
    first_services = pd.read_parquet(tmp_path / "resolved" / "services.parquet")
    second = resolve_all(settings, AS_OF)
    assert second["volunteers"]["mode"] == "incremental" and second["volunteers"]["key_changes"] == 0
    pd.testing.assert_frame_equal(first_map, pd.read_parquet(tmp_path / "resolved" / "volunteer_source_map.parquet"))
    pd.testing.assert_frame_equal(first_services, pd.read_parquet(tmp_path / "resolved" / "services.parquet"))
    assert first["volunteers"]["persons"] == second["volunteers"]["persons"]
