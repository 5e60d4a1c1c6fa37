"""Files of resolution: read the staged tables, keep state across syncs, write DATA_DIR/resolved/.

`resolve_all(settings)` is the one entry point the Dagster assets (and benchmarks) call. It
reads DATA_DIR/staged/{volunteers,organizations,services,projects}.parquet and the previous
sync's state in DATA_DIR/state/resolve/, resolves, writes every output file atomically (temp +
rename, mode 0o600 in 0o700 folders), and only then the new state: a sync that fails part-way
leaves the previous state in place and can simply run again.

Analysts record review decisions in DATA_DIR/state/resolve/review_decisions.csv (created with
its header on the first sync); it is read on every sync.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pandas as pd

from pipelines.config import Settings
from pipelines.resolve.comparisons import ModelParameters
from pipelines.resolve.keys import HISTORY_COLUMNS
from pipelines.resolve.organizations import resolve_organizations
from pipelines.resolve.quality import evaluate_against_truth, organization_check
from pipelines.resolve.rules import load_matching_rules
from pipelines.resolve.services import resolve_services
from pipelines.resolve.volunteers import DECISION_COLUMNS, VolunteerState, resolve_volunteers

log = logging.getLogger(__name__)

STAGED_TABLES = ["volunteers", "organizations", "services", "projects"]
DECISIONS_FILE = "review_decisions.csv"


def _ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write atomically: a temp file in the same folder, fsynced, then renamed over the target."""
    _ensure_dir(path.parent)
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    frame.to_parquet(temp, index=False)
    with open(temp, "rb") as handle:
        os.fsync(handle.fileno())
    os.chmod(temp, 0o600)
    os.replace(temp, path)


def _write_text(text: str, path: Path) -> None:
    _ensure_dir(path.parent)
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temp.write_text(text, encoding="utf-8")
    os.chmod(temp, 0o600)
    os.replace(temp, path)


def read_staged(staged_dir: Path, table: str) -> pd.DataFrame:
    path = staged_dir / f"{table}.parquet"
    if not path.exists():
        if table == "volunteers":
            raise FileNotFoundError(f"staged table missing: {path} (run the staging step first)")
        log.warning("staged table %s is missing: resolving without it", table)
        return pd.DataFrame({"source": pd.Series(dtype="string"), "source_id": pd.Series(dtype="string")})
    return pd.read_parquet(path)


def _read_optional(path: Path) -> pd.DataFrame | None:
    return pd.read_parquet(path) if path.exists() else None


def read_decisions(state_dir: Path) -> pd.DataFrame:
    """The analysts' decisions file; created empty (header only) when absent."""
    path = state_dir / DECISIONS_FILE
    if not path.exists():
        _write_text(",".join(DECISION_COLUMNS + ["decided_by", "decided_at", "note"]) + "\n", path)
    return pd.read_csv(path, dtype=str)


def load_volunteer_state(state_dir: Path) -> VolunteerState | None:
    source_map = _read_optional(state_dir / "volunteer_source_map.parquet")
    model_path = state_dir / "volunteer_model.json"
    if source_map is None or not model_path.exists():
        return None
    model = json.loads(model_path.read_text(encoding="utf-8"))
    history = _read_optional(state_dir / "volunteer_key_history.parquet")
    return VolunteerState(
        source_map=source_map,
        fingerprints=_read_optional(state_dir / "volunteer_fingerprints.parquet"),
        scored_pairs=_read_optional(state_dir / "volunteer_scored_pairs.parquet"),
        params=ModelParameters.from_json(model["params"]),
        rules_fingerprint=model["rules_fingerprint"],
        key_history=history if history is not None else pd.DataFrame(columns=HISTORY_COLUMNS),
    )


def save_volunteer_state(state: VolunteerState, state_dir: Path) -> None:
    write_parquet(state.source_map, state_dir / "volunteer_source_map.parquet")
    write_parquet(state.fingerprints, state_dir / "volunteer_fingerprints.parquet")
    write_parquet(state.scored_pairs, state_dir / "volunteer_scored_pairs.parquet")
    write_parquet(state.key_history, state_dir / "volunteer_key_history.parquet")
    model = {"params": state.params.to_json(), "rules_fingerprint": state.rules_fingerprint}
    _write_text(json.dumps(model, indent=1), state_dir / "volunteer_model.json")


def resolve_all(settings: Settings, synced_at: pd.Timestamp | None = None) -> dict:
    """Resolve the staged tables into DATA_DIR/resolved/; returns a summary (counts only, no personal data)."""
    synced_at = synced_at if synced_at is not None else pd.Timestamp.now(tz="UTC")
    started = time.perf_counter()
    staged = {table: read_staged(settings.staged_dir, table) for table in STAGED_TABLES}
    state_dir = _ensure_dir(settings.state_dir / "resolve")
    resolved_dir = _ensure_dir(settings.resolved_dir)

    volunteer_state = load_volunteer_state(state_dir)
    volunteers = resolve_volunteers(
        staged["volunteers"], load_matching_rules(), volunteer_state, read_decisions(state_dir), synced_at
    )

    org_map_previous = _read_optional(state_dir / "organization_source_map.parquet")
    org_history_previous = _read_optional(state_dir / "organization_key_history.parquet")
    issued_org_keys = set()
    if org_history_previous is not None:
        issued_org_keys |= set(org_history_previous["key"].dropna())
    if org_map_previous is not None:
        issued_org_keys |= set(org_map_previous["org_key"].dropna())
    organizations = resolve_organizations(staged["organizations"], org_map_previous, issued_org_keys, synced_at)
    services = resolve_services(
        staged["services"], staged["projects"], volunteers.source_map, organizations.source_map
    )

    org_history = pd.concat(
        [org_history_previous if org_history_previous is not None else pd.DataFrame(columns=HISTORY_COLUMNS),
         organizations.key_history],
        ignore_index=True,
    )
    outputs = {
        "volunteer_source_map": volunteers.source_map,
        "volunteers": volunteers.golden,
        "volunteer_links": volunteers.links,
        "volunteer_match_review": volunteers.review,
        "volunteer_key_history": volunteers.state.key_history.rename(columns={"key": "volunteer_key"}),
        "organization_source_map": organizations.source_map,
        "organizations": organizations.golden,
        "organization_key_history": org_history.rename(columns={"key": "org_key"}),
        "services": services.facts,
        "service_duplicate_candidates": services.duplicates,
    }
    for name, frame in outputs.items():
        write_parquet(frame, resolved_dir / f"{name}.parquet")
    # state last: only once every output is durably written
    save_volunteer_state(volunteers.state, state_dir)
    write_parquet(organizations.source_map, state_dir / "organization_source_map.parquet")
    write_parquet(org_history, state_dir / "organization_key_history.parquet")

    summary = {
        "volunteers": volunteers.summary,
        "organizations": organizations.summary,
        "services": services.summary,
        "seconds": round(time.perf_counter() - started, 2),
    }
    if settings.sandbox_truth_dir:
        summary["quality"] = evaluate_against_truth(
            Path(settings.sandbox_truth_dir), volunteers.source_map, services.facts
        )
        summary["quality"]["organizations"] = organization_check(
            Path(settings.sandbox_truth_dir), organizations.source_map, organizations.golden
        )
    _write_text(json.dumps(summary, ensure_ascii=False, indent=1, default=str), resolved_dir / "summary.json")
    return summary
