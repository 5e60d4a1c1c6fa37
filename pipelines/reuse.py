"""Skip a step whose inputs did not change: fingerprints of what a step reads, and the record
of what it produced, so a rerun with nothing new costs almost nothing.

A step (staging one table, resolution, the publish) is a function of its inputs: the files it
reads, the code and the schema files it runs with, the settings that change its output (the
PII hash key, the warehouse), and, for some rules, the run's instant. `fingerprint(...)`
hashes all of them except the instant. After a step runs, a `ReuseRecord` under
`DATA_DIR/state/reuse/<step>.json` keeps the fingerprint, the files the step wrote (size and
modification time, so a deleted or rewritten output is noticed), the window of instants its
verdicts hold for, and what the step reported (metadata and check results, counts only), so
that the reused step reports the same figures.

The instant: staging judges dates against it (`future_date`, a birth date not yet lived), the
publish dates the age bands with its Beijing date. A record says from when to when (exclusive)
its output stays what a fresh run would produce: staging from its own instant to the first
date or time in its input that would be judged differently later (`valid_until`), the
publish for its Beijing day. Replaying an earlier day re-runs the step.

Plain functions, no Dagster: the assets decide, the tests call these directly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipelines.clock import AsOf
from pipelines.config import Settings
from pipelines.files import private_dir, write_text

log = logging.getLogger(__name__)

REUSE_DIR = "reuse"
RECORD_VERSION = 1
# What a step's output and report depend on besides its data: the code (the assets make the
# reports and checks) and the schema, suite and SQL files that ship with it. A deploy of new
# code or a changed mapping re-runs every step once.
_ROOT = Path(__file__).resolve().parent.parent
CODE_FOLDERS = ("pipelines", "assets", "schemas", "expectations")
CODE_SUFFIXES = (".py", ".yaml", ".json", ".sql")


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def code_fingerprint(root: Path = _ROOT) -> str:
    """A hash of every code, schema, mapping, suite and SQL file the pipeline runs with."""
    digest = hashlib.sha256()
    for folder in CODE_FOLDERS:
        for path in sorted((root / folder).rglob("*")):
            if path.suffix in CODE_SUFFIXES and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(root)).encode("utf-8"))
                digest.update(path.read_bytes())
    return digest.hexdigest()


def file_state(path: Path) -> list:
    """What tells a file apart from its earlier self: size and modification time (every layer
    writes a new file by rename, so a rewritten file has a new time)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return [str(path), None, None]
    return [str(path), stat.st_size, stat.st_mtime_ns]


def files_manifest(paths: Iterable[Path]) -> list[list]:
    """The state of each file, sorted by path (missing files named as missing)."""
    return sorted(file_state(Path(p)) for p in paths)


def folder_manifest(folder: Path, pattern: str = "**/*.parquet") -> list[list]:
    """Every file under `folder` matching `pattern` (empty if the folder is absent)."""
    if not folder.exists():
        return []
    return files_manifest(p for p in folder.glob(pattern) if p.is_file())


def settings_fingerprint(settings: Settings, *, warehouse: bool) -> str:
    """The settings that change what a step writes: the hash key (its digest, never the key),
    where the data lives, and where the warehouse is for a step that writes it (`warehouse`):
    staging and resolution write the same files whatever the target, so pointing a sync at
    another warehouse does not stage and resolve the province again. Credentials and URLs of
    the sources only change what is landed, which the landed files already say."""
    key_digest = hashlib.sha256(b"reuse:" + settings.pii_hash_key.encode("utf-8")).hexdigest()
    return _digest({
        "pii_hash_key": key_digest,
        "data_dir": str(Path(settings.data_dir).resolve()),
        "warehouse": settings.resolved_warehouse_url if warehouse else None,
        "truth": settings.sandbox_truth_dir,
    })


def fingerprint(step: str, *, inputs: Any, settings: Settings, code: str | None = None, extra: Any = None,
                warehouse: bool = False) -> str:
    """The one hash of everything a step's output depends on, the instant aside; `warehouse`:
    the step writes the warehouse (`settings_fingerprint`)."""
    return _digest({
        "version": RECORD_VERSION,
        "step": step,
        "inputs": inputs,
        "settings": settings_fingerprint(settings, warehouse=warehouse),
        "code": code if code is not None else code_fingerprint(),
        "extra": extra,
    })


@dataclass
class ReuseRecord:
    """What a step produced, and under which inputs and instants it still holds."""

    step: str
    fingerprint: str
    as_of: str  # the instant the output was made for (ISO 8601)
    valid_until: str | None  # first instant a fresh run could judge differently; None: never
    outputs: list[list]  # files_manifest of what the step wrote
    report: dict = field(default_factory=dict)  # metadata and check results, JSON

    def holds_at(self, as_of: AsOf) -> bool:
        """Whether the output made at `self.as_of` is the one a run at `as_of` would make."""
        made_at = AsOf.parse(self.as_of)
        if as_of < made_at:  # a replay of an earlier instant: judged again
            return False
        return self.valid_until is None or as_of < AsOf.parse(self.valid_until)


def record_path(settings: Settings, step: str) -> Path:
    return settings.state_dir / REUSE_DIR / f"{step.replace('/', '__')}.json"


def load_record(settings: Settings, step: str) -> ReuseRecord | None:
    path = record_path(settings, step)
    if not path.exists():
        return None
    try:
        return ReuseRecord(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError):  # a record from another version, or damaged: run the step
        log.warning("reuse record %s unreadable: the step runs", path.name)
        return None


def save_record(settings: Settings, record: ReuseRecord) -> None:
    private_dir(settings.state_dir / REUSE_DIR)
    write_text(record_path(settings, record.step), json.dumps(asdict(record), ensure_ascii=False, indent=1))


def forget(settings: Settings, step: str) -> None:
    """Drop a step's record (before it runs: a failure part-way must not leave the old one)."""
    record_path(settings, step).unlink(missing_ok=True)


def reusable(record: ReuseRecord | None, fingerprint_now: str, as_of: AsOf) -> bool:
    """Whether the step may be skipped: same inputs, outputs untouched since, instant inside
    the record's window."""
    if record is None or record.fingerprint != fingerprint_now or not record.holds_at(as_of):
        return False
    return outputs_untouched(record)


def outputs_untouched(record: ReuseRecord) -> bool:
    """Whether every file the record's step wrote is still as it wrote it (path, size, time)."""
    return files_manifest(Path(p[0]) for p in record.outputs) == sorted(record.outputs)


def end_of_beijing_day(as_of: AsOf) -> AsOf:
    """The first instant of the next Beijing calendar day."""
    return AsOf.of(as_of.date + dt.timedelta(days=1))


def earliest(*instants: AsOf | None) -> AsOf | None:
    known = [i for i in instants if i is not None]
    return min(known) if known else None
