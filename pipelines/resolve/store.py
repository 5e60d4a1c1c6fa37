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

import ctypes
import hashlib
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import duck
from pipelines import name_seal
from pipelines.clock import AsOf
from pipelines.config import Settings
from pipelines.files import private_dir, write_bytes, write_parquet, write_text
from pipelines.formula_guard import read_guarded_csv
from pipelines.resolve.comparisons import ModelParameters
from pipelines.resolve.invariants import (
    COUNT_COLUMNS,
    account_key_problems,
    service_count_problems,
    unexplained_key_changes,
)
from pipelines.resolve.keys import HISTORY_COLUMNS
from pipelines.resolve.organizations import ORG_COLUMNS, resolve_organizations
from pipelines.resolve.quality import evaluate_against_truth, organization_check
from pipelines.resolve.rules import load_matching_rules
from pipelines.resolve import services as services_module
from pipelines.resolve import survivorship as survivorship_module
from pipelines.resolve import vectorized
from pipelines.resolve import volunteers as volunteers_module
from pipelines.resolve.rules import SURVIVORSHIP_PATH
from pipelines.resolve.vectorized import NotTheFullAnswer
from pipelines.resolve.services import (
    PROJECT_COLUMNS,
    SERVICE_COLUMNS,
    PreviousServices,
    ServiceState,
    resolve_services,
)
from pipelines.resolve.service_links import pushed_service_pairs
from pipelines.resolve.volunteers import ACCOUNT_COLUMNS, DECISION_COLUMNS, VolunteerState, resolve_volunteers
from pipelines.staging import read_staged, staged_path

log = logging.getLogger(__name__)

STAGED_TABLES = ["volunteers", "organizations", "services", "projects"]
# The staged columns resolution reads: each part selects these and nothing else, and at a
# million persons the others (skills, source hours, times, free text) held most of the memory.
COLUMNS_READ = {
    "volunteers": ACCOUNT_COLUMNS,
    "organizations": ORG_COLUMNS,
    "services": SERVICE_COLUMNS,
    "projects": PROJECT_COLUMNS,
}
DECISIONS_FILE = "review_decisions.csv"
# the services' state (state/resolve/), and the manifest written after everything else: the
# digest of each file an incremental services run relies on, and of the code that made them
SERVICE_STATE_FILES = {"records": "service_records.parquet", "pairs": "service_pairs.parquet",
                       "projects": "service_projects.parquet"}
SERVICE_MANIFEST = "service_state.json"
# the accounts' fields golden records are made from, and the manifest of carried golden records
VOLUNTEER_ROWS_FILE = "volunteer_account_rows.parquet"
GOLDEN_MANIFEST = "golden_state.json"


def _read_optional(path: Path) -> pd.DataFrame | None:
    return pd.read_parquet(path) if path.exists() else None


def read_resolution_input(settings: Settings, table: str) -> pd.DataFrame:
    """The staged `table`, only the columns of COLUMNS_READ that it has."""
    path = staged_path(settings, table)
    if not path.exists():
        return read_staged(settings, table)
    present = set(pq.read_schema(path).names)
    return read_staged(settings, table, [c for c in COLUMNS_READ[table] if c in present])


def staged_file_or_frame(settings: Settings, table: str, columns: list[str]) -> Path | pd.DataFrame:
    """A staged table for a reader that takes either: its file (DuckDB reads the columns it
    needs there, millions of rows never held as a frame), or, when none was staged, the
    empty table's `columns`."""
    path = staged_path(settings, table)
    return path if path.exists() else read_staged(settings, table)[columns]


def count_input(settings: Settings) -> Path | pd.DataFrame:
    """What the `counted_once` invariant reads of the staged services."""
    return staged_file_or_frame(settings, "services", COUNT_COLUMNS)


def service_input(settings: Settings) -> Path | pd.DataFrame:
    """What resolve_services reads of the staged services."""
    return staged_file_or_frame(settings, "services", SERVICE_COLUMNS)


def release_memory() -> None:
    """Hand Arrow's freed pages back to the system between the parts: pandas 3 strings live in
    Arrow's pool, which otherwise keeps them for reuse and adds to the step's peak; and the C
    heap's free pages (millions of Python strings of the volunteers' links and history)."""
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def read_decisions(state_dir: Path) -> pd.DataFrame:
    """The analysts' decisions file; created empty (header only) when absent."""
    path = state_dir / DECISIONS_FILE
    if not path.exists():
        write_text(path, ",".join(DECISION_COLUMNS + ["decided_by", "decided_at", "note"]) + "\n")
    return read_guarded_csv(path)  # analysts open it in Excel: `'` guards what looks like a formula


def load_volunteer_state(state_dir: Path, resolved_dir: Path | None = None) -> VolunteerState | None:
    source_map = _read_optional(state_dir / "volunteer_source_map.parquet")
    model_path = state_dir / "volunteer_model.json"
    if source_map is None or not model_path.exists():
        return None
    model = json.loads(model_path.read_text(encoding="utf-8"))
    history = _read_optional(state_dir / "volunteer_key_history.parquet")
    golden = None
    if resolved_dir is not None and manifest_refusal(
            state_dir / GOLDEN_MANIFEST, golden_code_fingerprint(), _golden_manifest_files(state_dir, resolved_dir)) is None:
        golden = pd.read_parquet(resolved_dir / "volunteers.parquet")
    return VolunteerState(
        account_rows=_read_optional(state_dir / VOLUNTEER_ROWS_FILE) if golden is not None else None,
        golden=golden,
        source_map=source_map,
        fingerprints=_read_optional(state_dir / "volunteer_fingerprints.parquet"),
        scored_pairs=_read_optional(state_dir / "volunteer_scored_pairs.parquet"),
        params=ModelParameters.from_json(model["params"]),
        rules_fingerprint=model["rules_fingerprint"],
        key_history=history if history is not None else pd.DataFrame(columns=HISTORY_COLUMNS),
    )


def as_arrow(frame: pd.DataFrame | pa.Table) -> pa.Table:
    """The table write_parquet would write for `frame` (so the file is the same), built now:
    columnar, it holds a fraction of the memory of a frame of Python strings and dates."""
    return frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """The Parquet file write_parquet writes for `frame` (zstd), as bytes: what the state keeps
    of a million accounts compresses to a few percent of its table, and the state files wait
    in memory until every output is written (a crash must leave the previous state)."""
    table = as_arrow(frame)
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, table.schema, compression="zstd") as writer:
        if table.num_rows:
            writer.write_table(table)
    return sink.getvalue().to_pybytes()


def volunteer_state_files(state: VolunteerState) -> dict[str, bytes | str]:
    """The volunteers' state as its files' contents, in the order they are written."""
    model = {"params": state.params.to_json(), "rules_fingerprint": state.rules_fingerprint}
    return {
        "volunteer_source_map.parquet": parquet_bytes(state.source_map),
        "volunteer_fingerprints.parquet": parquet_bytes(state.fingerprints),
        "volunteer_scored_pairs.parquet": parquet_bytes(state.scored_pairs),
        "volunteer_key_history.parquet": parquet_bytes(state.key_history),
        "volunteer_model.json": json.dumps(model, indent=1),
        **({VOLUNTEER_ROWS_FILE: parquet_bytes(state.account_rows)} if state.account_rows is not None else {}),
    }


def write_files(files: dict[str, bytes | pa.Table | pd.DataFrame | str], folder: Path) -> None:
    for name, content in files.items():
        if isinstance(content, str):
            write_text(folder / name, content)
        elif isinstance(content, bytes):  # a Parquet file already made (parquet_bytes)
            write_bytes(folder / name, content)
        else:
            write_parquet(folder / name, content)


def write_volunteer_outputs(volunteers, state_made, resolved_dir: Path) -> None:
    """The volunteers' outputs in DATA_DIR/resolved/. Where the source map is the state's own
    frame (resolve_volunteers hands the same one), its file's bytes, made once for the state
    (`state_made`, a future of volunteer_state_files), are written here too, not encoded again."""
    source_map = volunteers.source_map
    write_files({
        "volunteer_source_map.parquet": state_made.result()["volunteer_source_map.parquet"]
        if source_map is volunteers.state.source_map else source_map,
        "volunteers.parquet": volunteers.golden,
        "volunteer_links.parquet": volunteers.links,
        "volunteer_match_review.parquet": volunteers.review,
        "volunteer_key_history.parquet": volunteers.state.key_history.rename(columns={"key": "volunteer_key"}),
    }, resolved_dir)


def save_volunteer_state(state: VolunteerState, state_dir: Path) -> None:
    write_files(volunteer_state_files(state), state_dir)


def file_digest(path: Path) -> str | None:
    if not path.exists():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def code_fingerprint(sources: list) -> str:
    """A digest of the code (and rules) that made some carried-over rows: a change to any of
    them makes the next sync make those rows again."""
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.read_bytes() if hasattr(source, "read_bytes") else Path(source.__file__).read_bytes())
    return digest.hexdigest()


def services_code_fingerprint() -> str:
    return code_fingerprint([services_module, vectorized])


def golden_code_fingerprint() -> str:
    """The code the golden records carried to the next sync were made by: the seal among it,
    since a golden row sealed one way must never stand beside rows sealed another (or not at
    all: an ID's sealed last four look like clear ones)."""
    return code_fingerprint([volunteers_module, survivorship_module, vectorized, name_seal, SURVIVORSHIP_PATH])


def write_manifest(path: Path, code: str, files: dict[str, Path]) -> None:
    """The digest of the code and of each file some carried-over rows rely on; written after
    those files (it vouches for them)."""
    manifest = {"code": code, "files": {name: file_digest(file) for name, file in files.items()}}
    write_text(path, json.dumps(manifest, indent=1))


def manifest_refusal(path: Path, code: str, files: dict[str, Path]) -> str | None:
    """Why the files are not the ones the manifest at `path` vouches for (None when they are)."""
    if not path.exists():
        return "no previous manifest"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("code") != code:
        return "code changed"
    for name, file in files.items():
        if manifest.get("files", {}).get(name) is None or file_digest(file) != manifest["files"][name]:
            return f"previous state does not match its manifest ({name})"
    return None


def _service_manifest_files(state_dir: Path, resolved_dir: Path) -> dict[str, Path]:
    """Every file the previous facts' carrying-over relies on: the facts, the services' state,
    and the account maps those facts were looked up in."""
    return {
        "facts": resolved_dir / "services.parquet",
        **{name: state_dir / file for name, file in SERVICE_STATE_FILES.items()},
        "volunteer_map": state_dir / "volunteer_source_map.parquet",
        "organization_map": state_dir / "organization_source_map.parquet",
    }


def _golden_manifest_files(state_dir: Path, resolved_dir: Path) -> dict[str, Path]:
    """Every file carrying golden records over relies on: them, and the accounts' keys and
    fields they were made from."""
    return {
        "golden": resolved_dir / "volunteers.parquet",
        "volunteer_map": state_dir / "volunteer_source_map.parquet",
        "account_rows": state_dir / VOLUNTEER_ROWS_FILE,
    }


def service_state_files(state: ServiceState) -> dict[str, bytes]:
    """The services' state as its files' contents (parquet_bytes), by file name."""
    return {file: parquet_bytes(getattr(state, name)) for name, file in SERVICE_STATE_FILES.items()}


def save_service_state(content: dict[str, bytes], state_dir: Path, resolved_dir: Path) -> None:
    """The services' state files (service_state_files), then the manifest (last: it vouches
    for the files written before)."""
    write_files(content, state_dir)
    write_manifest(state_dir / SERVICE_MANIFEST, services_code_fingerprint(),
                   _service_manifest_files(state_dir, resolved_dir))


def changed_accounts(previous_map: pd.DataFrame | None, current_map: pd.DataFrame, key: str) -> pd.DataFrame | None:
    """(source, source_id) of the accounts whose key is new, gone or different since the
    previous map; None when there is no previous map or either holds an account twice."""
    if previous_map is None:
        return None
    con = duck.scratch()
    try:
        for name, frame in (("before_map", previous_map), ("after_map", current_map)):
            accounts = frame[["source", "source_id", key]].astype("string")
            con.register(name, pa.Table.from_pandas(accounts, preserve_index=False))
        # (an account held twice, the two rows counted once, as pandas' duplicated counts them)
        repeated = con.execute("""
            SELECT (SELECT count(*) - count(DISTINCT (source, source_id)) FROM before_map)
                 + (SELECT count(*) - count(DISTINCT (source, source_id)) FROM after_map)
        """).fetchall()[0][0]
        if repeated:
            return None
        return con.execute(f"""
            SELECT coalesce(a.source, b.source) AS source, coalesce(a.source_id, b.source_id) AS source_id
            FROM after_map a FULL JOIN before_map b USING (source, source_id)
            WHERE a.{key} IS DISTINCT FROM b.{key} OR a.source IS NULL OR b.source IS NULL
        """).df()
    finally:
        con.close()


def load_previous_services(
    state_dir: Path, resolved_dir: Path, changed_volunteers: pd.DataFrame | None, changed_orgs: pd.DataFrame | None
) -> tuple[PreviousServices | None, str]:
    """The previous sync's facts and services' state when every file is the one its manifest
    vouches for and the code is the same; else None (a full run), with the reason."""
    if changed_volunteers is None or changed_orgs is None:
        return None, "no previous account maps"
    refusal = manifest_refusal(state_dir / SERVICE_MANIFEST, services_code_fingerprint(),
                               _service_manifest_files(state_dir, resolved_dir))
    if refusal:
        return None, f"services: {refusal}"
    # the files themselves: resolve_services reads what it needs of them, when it needs it
    state = ServiceState(**{name: state_dir / file for name, file in SERVICE_STATE_FILES.items()})
    return PreviousServices(resolved_dir / "services.parquet", state, changed_volunteers, changed_orgs), \
        "previous state consistent"


def resolve_all(settings: Settings, as_of: AsOf | datetime) -> dict:
    """Resolve the staged tables into DATA_DIR/resolved/; returns a summary (counts only, no
    personal data). `as_of` is the run's instant, stamped on the key history."""
    synced_at = pd.Timestamp(AsOf.of(as_of).utc)
    started = time.perf_counter()
    if not staged_path(settings, "volunteers").exists():
        raise FileNotFoundError("no staged volunteers: run the staging step first")
    state_dir = private_dir(settings.state_dir / "resolve")
    resolved_dir = private_dir(settings.resolved_dir)

    # Each staged table is read when its part starts and let go once its invariants are
    # counted, so that the volunteers' input is not held through the services (memory).
    volunteer_state = load_volunteer_state(state_dir, resolved_dir)
    staged = {"volunteers": read_resolution_input(settings, "volunteers")}
    # the accounts (shared columns) for the invariant; the rest goes once resolution has its copy
    staged_volunteers = staged["volunteers"][["source", "source_id"]]
    volunteers = resolve_volunteers(
        staged.pop("volunteers"), load_matching_rules(), volunteer_state, read_decisions(state_dir),
        synced_at=synced_at, service_links=pushed_service_pairs(staged_path(settings, "services")),
        every_scored_pair=False,  # only those that reach an output are written
        name_key=settings.pii_hash_key,
    )
    # The volunteers' outputs are written now, not held through the invariants, organizations
    # and services (at a million persons they were a third of the step's peak); their state
    # waits, as the Parquet files' bytes, until every output is written. A sync that fails later
    # leaves these outputs with the previous state: their manifest (golden_state.json) no longer
    # vouches for them, so the next sync makes everything again, as after a failure while
    # writing outputs. Both are made by a thread while this one counts the invariants: Arrow
    # encodes Parquet without the GIL, and the two took as long one after the other as side by
    # side (at a million persons ~2.5 s each, on one core of two).
    with ThreadPoolExecutor(1, thread_name_prefix="resolved_writes") as writer:
        state_made = writer.submit(volunteer_state_files, volunteers.state)
        outputs_written = writer.submit(write_volunteer_outputs, volunteers, state_made, resolved_dir)
        volunteer_map, volunteer_summary, volunteer_work = volunteers.source_map, volunteers.summary, volunteers.work
        golden_keys, new_key_events = volunteers.golden["volunteer_key"], volunteers.key_history
        del volunteers  # (the writer holds what it writes until it is done)
        previous_volunteer_map = volunteer_state.source_map if volunteer_state is not None else None
        volunteer_invariants = {
            **account_key_problems(staged_volunteers, volunteer_map, "volunteer_key", golden_keys),
            **unexplained_key_changes(previous_volunteer_map, volunteer_map, "volunteer_key", new_key_events),
            "persons_with_two_valid_numbers": volunteer_summary["persons_with_two_valid_numbers"],
        }
        changed_volunteers = changed_accounts(previous_volunteer_map, volunteer_map, "volunteer_key")
        outputs_written.result()
        volunteer_state_content = state_made.result()
    del staged_volunteers, volunteer_state, previous_volunteer_map, golden_keys, new_key_events
    release_memory()

    org_map_previous = _read_optional(state_dir / "organization_source_map.parquet")
    org_history_previous = _read_optional(state_dir / "organization_key_history.parquet")
    issued_org_keys = set()
    if org_history_previous is not None:
        issued_org_keys |= set(org_history_previous["key"].dropna())
    if org_map_previous is not None:
        issued_org_keys |= set(org_map_previous["org_key"].dropna())
    staged_organizations = read_resolution_input(settings, "organizations")
    organizations = resolve_organizations(
        staged_organizations, org_map_previous, issued_org_keys, synced_at=synced_at
    )
    organization_invariants = {
        **account_key_problems(
            staged_organizations, organizations.source_map, "org_key", organizations.golden["org_key"],
        ),
        **unexplained_key_changes(
            org_map_previous, organizations.source_map, "org_key", organizations.key_history
        ),
    }
    del staged_organizations
    previous_services, services_reason = load_previous_services(
        state_dir, resolved_dir, changed_volunteers,
        changed_accounts(org_map_previous, organizations.source_map, "org_key"),
    )
    del changed_volunteers

    spill_dir = private_dir(state_dir / ".duckdb_spill")
    try:
        services = resolve_services(
            service_input(settings), read_resolution_input(settings, "projects"), volunteer_map,
            organizations.source_map, previous_services, spill_to=spill_dir,
        )
        previous_services = None  # (its facts and state are let go inside, once used)
        # the services' state (millions of record fingerprints) waits as its files' bytes
        service_state_content, services.state = service_state_files(services.state), None
        release_memory()
        service_invariants = service_count_problems(count_input(settings), services.facts)
        if services.work["mode"] == "incremental" and any(service_invariants.values()):
            raise NotTheFullAnswer("incremental facts did not add up")
    except NotTheFullAnswer as why:
        # never publish carried facts that are not a full run's: resolve every record instead
        services_reason = f"{why}: resolved in full"
        services = resolve_services(
            service_input(settings), read_resolution_input(settings, "projects"),
            volunteer_map, organizations.source_map, spill_to=spill_dir,
        )
        service_state_content, services.state = service_state_files(services.state), None
        service_invariants = service_count_problems(count_input(settings), services.facts)
    services.work["reason"] = services_reason
    log.info("services: %s", services.work)
    release_memory()

    org_history = pd.concat(
        [org_history_previous if org_history_previous is not None else pd.DataFrame(columns=HISTORY_COLUMNS),
         organizations.key_history],
        ignore_index=True,
    )
    outputs = {
        "organization_source_map": organizations.source_map,
        "organizations": organizations.golden,
        "organization_key_history": org_history.rename(columns={"key": "org_key"}),
        "services": services.facts,
        "service_duplicate_candidates": services.duplicates,
        "service_copies": services.copies,
    }
    for name, frame in outputs.items():
        write_parquet(resolved_dir / f"{name}.parquet", frame)
    # state last: only once every output is durably written
    write_files(volunteer_state_content, state_dir)
    write_parquet(state_dir / "organization_source_map.parquet", organizations.source_map)
    write_parquet(state_dir / "organization_key_history.parquet", org_history)
    write_manifest(state_dir / GOLDEN_MANIFEST, golden_code_fingerprint(), _golden_manifest_files(state_dir, resolved_dir))
    save_service_state(service_state_content, state_dir, resolved_dir)

    summary = {
        "volunteers": volunteer_summary,
        "organizations": organizations.summary,
        "services": services.summary,
        "invariants": {
            "volunteers": volunteer_invariants,
            "organizations": organization_invariants,
            "services": service_invariants,
        },
        "seconds": round(time.perf_counter() - started, 2),
        # how the run went about it (full or incremental, how much was redone), not what it found
        "work": {"volunteers": volunteer_work, "services": services.work},
    }
    if settings.sandbox_truth_dir:
        summary["quality"] = evaluate_against_truth(
            Path(settings.sandbox_truth_dir), volunteer_map, services.facts
        )
        summary["quality"]["organizations"] = organization_check(
            Path(settings.sandbox_truth_dir), organizations.source_map, organizations.golden
        )
    write_text(resolved_dir / "summary.json", json.dumps(summary, ensure_ascii=False, indent=1, default=str))
    return summary
