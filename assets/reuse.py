"""A reused step reports what it reported when it ran: metadata and check results kept as
JSON in its reuse record (pipelines/reuse.py) and given back as Dagster objects.

What is kept is what the step reported then, already redacted (`safe_metadata`): counts,
codes, masked previews. A reused materialization says so (`reused_from_as_of`).
"""

from __future__ import annotations

from typing import Any

from dagster import AssetCheckResult, AssetCheckSeverity, AssetKey, MetadataValue

# MetadataValue classes by name -> how to build one again from its `.value`
_REBUILD = {
    "IntMetadataValue": MetadataValue.int,
    "FloatMetadataValue": MetadataValue.float,
    "TextMetadataValue": MetadataValue.text,
    "MarkdownMetadataValue": MetadataValue.md,
    "JsonMetadataValue": MetadataValue.json,
    "PathMetadataValue": MetadataValue.path,
    "BoolMetadataValue": MetadataValue.bool,
}


def metadata_to_json(metadata: dict[str, Any]) -> dict[str, dict]:
    kept = {}
    for name, value in (metadata or {}).items():
        kind = type(value).__name__
        if kind in _REBUILD:
            kept[name] = {"kind": kind, "value": value.value}
        elif isinstance(value, (bool, int, float, str, dict, list)) or value is None:
            kept[name] = {"kind": "raw", "value": value}
        else:
            kept[name] = {"kind": "TextMetadataValue", "value": str(value)}
    return kept


def metadata_from_json(kept: dict[str, dict]) -> dict[str, Any]:
    rebuilt = {}
    for name, entry in kept.items():
        build = _REBUILD.get(entry["kind"])
        rebuilt[name] = build(entry["value"]) if build else entry["value"]
    return rebuilt


def checks_to_json(results: list[AssetCheckResult]) -> list[dict]:
    return [
        {
            "asset_key": result.asset_key.to_user_string() if result.asset_key else None,
            "check_name": result.check_name,
            "passed": result.passed,
            "severity": result.severity.value,
            "metadata": metadata_to_json(result.metadata),
        }
        for result in results
    ]


def checks_from_json(kept: list[dict]) -> list[AssetCheckResult]:
    return [
        AssetCheckResult(
            asset_key=AssetKey.from_user_string(entry["asset_key"]) if entry["asset_key"] else None,
            check_name=entry["check_name"],
            passed=entry["passed"],
            severity=AssetCheckSeverity(entry["severity"]),
            metadata=metadata_from_json(entry["metadata"]),
        )
        for entry in kept
    ]
