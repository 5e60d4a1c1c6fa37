"""Matching and survivorship rules, loaded from schemas/matching.yaml and schemas/survivorship.yaml.

The rules are data so an analyst can read them in one place and the run metadata can print
them; this module only loads them and gives them a hash, so state computed under one version
of the rules is not reused under another.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from typing import Any

import yaml

from schemas import schema_file

MATCHING_PATH = schema_file("matching.yaml")
SURVIVORSHIP_PATH = schema_file("survivorship.yaml")


@dataclass(frozen=True)
class Level:
    """One level of a comparison: the first whose SQL condition holds is the pair's level."""

    label: str
    sql: str
    m: float | None
    u: float | None
    is_null: bool
    tf_column: str | None
    # u counted exactly from the accounts, not sampled: the level holds when these columns are
    # equal, unless both sides carry `u_unless_both` (matching.yaml, `u_from_counts`)
    u_equal: tuple[str, ...] = ()
    u_unless_both: str | None = None


@dataclass(frozen=True)
class Comparison:
    name: str
    levels: tuple[Level, ...]

    def level_index(self, label: str) -> int:
        return next(i for i, level in enumerate(self.levels) if level.label == label)


@dataclass(frozen=True)
class BlockingRule:
    """Accounts equal on `keys` are candidate pairs, unless their block holds more than
    `max_block_size` accounts (the rule's own cap, else matching.yaml's)."""

    name: str
    keys: tuple[str, ...]
    max_block_size: int


@dataclass(frozen=True)
class MatchingRules:
    raw: dict[str, Any]
    comparisons: tuple[Comparison, ...]
    blocking_rules: tuple[BlockingRule, ...]
    match_probability: float
    review_probability: float
    accounts_per_person: float
    min_accounts: int
    estimation: dict[str, Any]
    full_rescore_share: float
    fingerprint: str
    common_name_share: float = 1.0
    identifier_levels: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def with_overrides(self, **changes: Any) -> "MatchingRules":
        """A copy with some fields replaced (tests, benchmarks)."""
        values = {**self.__dict__, **changes}
        return MatchingRules(**values)


def _parse_comparisons(spec: dict[str, Any]) -> tuple[Comparison, ...]:
    comparisons = []
    for name, body in spec.items():
        levels = tuple(
            Level(
                label=str(level["label"]),
                sql=str(level["sql"]),
                m=level.get("m"),
                u=level.get("u"),
                is_null=bool(level.get("is_null", False)),
                tf_column=level.get("tf"),
                u_equal=tuple(level.get("u_from_counts", {}).get("equal", ())),
                u_unless_both=level.get("u_from_counts", {}).get("unless_both"),
            )
            for level in body["levels"]
        )
        comparisons.append(Comparison(name=name, levels=levels))
    return tuple(comparisons)


def load_matching_rules(path: Traversable = MATCHING_PATH) -> MatchingRules:
    """Read schemas/matching.yaml into a MatchingRules."""
    text = path.read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    return MatchingRules(
        raw=raw,
        comparisons=_parse_comparisons(raw["comparisons"]),
        blocking_rules=tuple(
            BlockingRule(b["name"], tuple(b["keys"]), int(b.get("max_block_size", raw.get("max_block_size", 400))))
            for b in raw["blocking_rules"]
        ),
        match_probability=float(raw["thresholds"]["match_probability"]),
        review_probability=float(raw["thresholds"]["review_probability"]),
        accounts_per_person=float(raw["prior"]["accounts_per_person"]),
        min_accounts=int(raw["prior"].get("min_accounts", 0)),
        estimation=dict(raw.get("estimation", {})),
        full_rescore_share=float(raw.get("incremental", {}).get("full_rescore_above_changed_share", 0.3)),
        fingerprint=hashlib.sha256(text.encode("utf-8")).hexdigest()[:16],
        common_name_share=float(raw.get("namesake_guard", {}).get("common_name_share", 1.0)),
        identifier_levels=tuple(
            (name, tuple(levels)) for name, levels in raw.get("namesake_guard", {}).get("identifier_levels", {}).items()
        ),
    )


def load_survivorship(path: Traversable = SURVIVORSHIP_PATH) -> dict[str, dict[str, dict[str, Any]]]:
    """Read schemas/survivorship.yaml: {table: {field: rule}}."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))

