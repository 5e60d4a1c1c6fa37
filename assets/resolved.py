"""Resolved layer: volunteers, organizations and services deduplicated, as Dagster assets.

One multi-asset runs `pipelines.resolve.store.resolve_all` (volunteers, then organizations,
then services: the services need both maps) and reports three assets, group `resolved`. The
work and its files are in pipelines/resolve/; here only wiring and metadata: counts, links by
method, review pairs, key changes, service counts by source, flagged duplicates, total hours
and, when SANDBOX_TRUTH_DIR names a sandbox world's truth, precision / recall / F1 with the
confusion counts. Metadata holds counts only, never a name, number or id.
"""


import json

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from pipelines.resources import PipelineSettings

STAGED_DEPS = [AssetKey(["staged", t]) for t in ("volunteers", "organizations", "services", "projects")]
VOLUNTEERS = AssetKey(["resolved", "volunteers"])
ORGANIZATIONS = AssetKey(["resolved", "organizations"])
SERVICES = AssetKey(["resolved", "services"])
# the contract's quality bar, measured where a sandbox truth is configured
MIN_PRECISION = 0.995
MIN_RECALL = 0.99


def _json(value: dict) -> MetadataValue:
    return MetadataValue.json(json.loads(json.dumps(value, default=str)))


def volunteer_metadata(summary: dict) -> dict:
    volunteers = summary["volunteers"]
    metadata = {
        "accounts": volunteers["accounts"],
        "persons": volunteers["persons"],
        "mode": volunteers["mode"],
        "changed_accounts": volunteers["changed_accounts"],
        "pairs_scored": volunteers["pairs_scored"],
        "pairs_reused": volunteers["pairs_reused"],
        "links_by_method": _json(volunteers["links_by_method"]),
        "accounts_by_method": _json(volunteers["accounts_by_method"]),
        "links_refused": volunteers["links_refused"],
        "review_pairs": volunteers["review_pairs"],
        "decisions_applied": volunteers["decisions_applied"],
        "key_changes": volunteers["key_changes"],
        "model_log2_bayes_factors": _json(volunteers["model"]),
        "seconds": summary["seconds"],
    }
    quality = summary.get("quality")
    if quality:
        pairs = quality["volunteers"]
        metadata.update({
            "precision": pairs["precision"], "recall": pairs["recall"], "f1": pairs["f1"],
            "true_positive_pairs": pairs["true_positive_pairs"],
            "false_positive_pairs": pairs["false_positive_pairs"],
            "false_negative_pairs": pairs["false_negative_pairs"],
        })
    return metadata


def service_metadata(summary: dict) -> dict:
    services = summary["services"]
    by_source = services["services_by_source"]
    metadata = {
        "services": services["services"],
        "services_both": by_source.get("both", 0),
        "services_national": by_source.get("national", 0),
        "services_provincial": by_source.get("provincial", 0),
        "flagged_duplicates": services["duplicate_candidates"],
        "services_without_volunteer": services["services_without_volunteer"],
        "total_hours": services["total_hours"],
    }
    quality = summary.get("quality")
    if quality:
        hours = quality["hours"]
        metadata.update({
            "province_hours_truth": hours["province_hours_truth"],
            "persons_hours_wrong": hours["persons_hours_wrong"],
        })
    return metadata


@multi_asset(
    specs=[
        AssetSpec(VOLUNTEERS, deps=STAGED_DEPS, group_name="resolved", kinds={"python", "parquet"},
                  description="Volunteer accounts resolved into persons: source map, golden records, "
                              "link evidence, review pairs, key history (DATA_DIR/resolved/)."),
        AssetSpec(ORGANIZATIONS, deps=STAGED_DEPS, group_name="resolved", kinds={"python", "parquet"},
                  description="Teams resolved into organizations: source map and golden records."),
        AssetSpec(SERVICES, deps=STAGED_DEPS, group_name="resolved", kinds={"python", "parquet"},
                  description="Service records counted once (fact) and flagged likely duplicates."),
    ],
    check_specs=[
        AssetCheckSpec("one_valid_number_per_person", asset=VOLUNTEERS,
                       description="No person holds two different valid resident ID numbers."),
        AssetCheckSpec("matches_sandbox_truth", asset=VOLUNTEERS,
                       description=f"Pairwise precision >= {MIN_PRECISION} and recall >= {MIN_RECALL} "
                                   "against the sandbox truth (skipped without SANDBOX_TRUTH_DIR)."),
        AssetCheckSpec("hours_match_sandbox_truth", asset=SERVICES,
                       description="Every person's hours and the province's total equal the truth within 0.01 h "
                                   "(skipped without SANDBOX_TRUTH_DIR)."),
    ],
    required_resource_keys={"pipeline_settings"},
    name="resolved_entities",
)
def resolved_entities(context: AssetExecutionContext):
    from pipelines.resolve.store import resolve_all

    settings = context.resources.pipeline_settings.settings()
    summary = resolve_all(settings)
    context.log.info(
        f"resolved {summary['volunteers']['accounts']} accounts into {summary['volunteers']['persons']} persons "
        f"({summary['volunteers']['mode']}), {summary['services']['services']} services"
    )
    yield MaterializeResult(asset_key=VOLUNTEERS, metadata=volunteer_metadata(summary))
    organizations = summary["organizations"]
    yield MaterializeResult(
        asset_key=ORGANIZATIONS,
        metadata={
            "teams": organizations["teams"], "organizations": organizations["organizations"],
            "teams_by_method": _json(organizations["teams_by_method"]), "key_changes": organizations["key_changes"],
        },
    )
    yield MaterializeResult(asset_key=SERVICES, metadata=service_metadata(summary))

    conflicting = summary["volunteers"]["persons_with_two_valid_numbers"]
    yield AssetCheckResult(
        asset_key=VOLUNTEERS, check_name="one_valid_number_per_person", passed=conflicting == 0,
        severity=AssetCheckSeverity.ERROR, metadata={"persons_with_two_valid_numbers": conflicting},
    )
    quality = summary.get("quality")
    if quality:
        pairs, hours = quality["volunteers"], quality["hours"]
        yield AssetCheckResult(
            asset_key=VOLUNTEERS, check_name="matches_sandbox_truth",
            passed=pairs["precision"] >= MIN_PRECISION and pairs["recall"] >= MIN_RECALL,
            severity=AssetCheckSeverity.WARN,
            metadata={k: v for k, v in pairs.items()},
        )
        yield AssetCheckResult(
            asset_key=SERVICES, check_name="hours_match_sandbox_truth",
            passed=hours["persons_hours_wrong"] == 0 and bool(hours["province_hours_match"]),
            severity=AssetCheckSeverity.WARN,
            metadata={k: (float(v) if isinstance(v, float) else v) for k, v in hours.items()},
        )
    else:
        for asset_key, name in [(VOLUNTEERS, "matches_sandbox_truth"), (SERVICES, "hours_match_sandbox_truth")]:
            yield AssetCheckResult(asset_key=asset_key, check_name=name, passed=True,
                                   metadata={"skipped": "no SANDBOX_TRUTH_DIR"})


assets = [resolved_entities]
asset_checks: list = []
resources = {"pipeline_settings": PipelineSettings()}
