"""Resolved layer: volunteers, organizations and services deduplicated, as Dagster assets.

One multi-asset runs `pipelines.resolve.store.resolve_all` (volunteers, then organizations,
then services: the services need both maps) and reports three assets, group `resolved`. The
work and its files are in pipelines/resolve/; here only wiring and metadata: counts, links by
method, review pairs, key changes, service counts by source, flagged duplicates, total hours
and, when SANDBOX_TRUTH_DIR names a sandbox world's truth, precision / recall / F1 with the
confusion counts. Metadata holds counts only, never a name, number or id.

Its checks hold in production, where no truth exists (pipelines/resolve/invariants.py): no
person with two valid ID numbers, every account exactly one key, keys stable but for logged
merges, splits and moves, every effective service counted once. The blocking ones stop the
publish.
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

from assets.run import errors_scrubbed, run_as_of, safe_metadata
from assets.step_process import InProcess, StepProcess, input_megabytes, worth_a_process
from pipelines.resources import PipelineSettings

STAGED_DEPS = [AssetKey(["staged", t]) for t in ("volunteers", "organizations", "services", "projects")]
VOLUNTEERS = AssetKey(["resolved", "volunteers"])
ORGANIZATIONS = AssetKey(["resolved", "organizations"])
SERVICES = AssetKey(["resolved", "services"])


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
        # a steward's `same` a constraint refused: back in the review workbook with its reason
        "decisions_refused": volunteers.get("decisions_refused", 0),
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
        # records of a service another pair of records stands for (a log pushed up twice)
        "service_copies": sum(services.get("service_copies", {}).values()),
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


def _check(asset_key: AssetKey, name: str, figures: dict, failing: list[str], blocking: bool) -> AssetCheckResult:
    """A check that passes when every count named in `failing` is zero."""
    return AssetCheckResult(
        asset_key=asset_key,
        check_name=name,
        passed=all(figures[count] == 0 for count in failing),
        severity=AssetCheckSeverity.ERROR if blocking else AssetCheckSeverity.WARN,
        metadata={count: figures[count] for count in failing},
    )


KEY_COUNTS = ["accounts_without_key", "accounts_with_several_keys", "mapped_accounts_not_staged",
              "keys_without_golden_record", "golden_records_without_account"]
SERVICE_COUNTS = ["facts_naming_unknown_national_records", "facts_naming_unknown_provincial_records",
                  "national_records_counted_twice", "provincial_records_counted_twice",
                  "effective_national_records_not_counted", "effective_provincial_records_not_counted",
                  "facts_with_other_hours", "services_counted_twice"]
def invariant_checks(invariants: dict) -> list[AssetCheckResult]:
    """The check results of one resolution's invariant counts (resolve_all's summary)."""
    people, teams = invariants["volunteers"], invariants["organizations"]
    return [
        _check(VOLUNTEERS, "one_valid_number_per_person", people, ["persons_with_two_valid_numbers"], True),
        _check(VOLUNTEERS, "every_account_one_key", people, KEY_COUNTS, True),
        _check(VOLUNTEERS, "keys_stable", people, ["unexplained_key_changes"], False),
        _check(ORGANIZATIONS, "every_account_one_key", teams, KEY_COUNTS, True),
        _check(ORGANIZATIONS, "keys_stable", teams, ["unexplained_key_changes"], False),
        _check(SERVICES, "counted_once", invariants["services"], SERVICE_COUNTS, True),
    ]


CHECK_SPECS = [
    AssetCheckSpec("one_valid_number_per_person", asset=VOLUNTEERS, blocking=True,
                   description="No person holds two different valid resident ID numbers (the contract's hard rule)."),
    AssetCheckSpec("every_account_one_key", asset=VOLUNTEERS, blocking=True,
                   description="Every staged account has exactly one volunteer_key, every key a golden record."),
    AssetCheckSpec("keys_stable", asset=VOLUNTEERS,
                   description="[warning] Every account whose key changed since the last sync is a logged merge, split or move."),
    AssetCheckSpec("every_account_one_key", asset=ORGANIZATIONS, blocking=True,
                   description="Every staged team has exactly one org_key, every key a golden record."),
    AssetCheckSpec("keys_stable", asset=ORGANIZATIONS,
                   description="[warning] Every team whose key changed since the last sync is a logged merge, split or move."),
    AssetCheckSpec("counted_once", asset=SERVICES, blocking=True,
                   description="Every effective service record counted exactly once, with its own hours, and copies that name each other by one fact between them; every fact from staged records."),
]


RESOLVE_STEP = "resolved"
SUMMARY_FILE = "summary.json"


def _staged_inputs(settings) -> list:
    """The staged tables resolution reads."""
    from pipelines.resolve.store import STAGED_TABLES
    from pipelines.staging import staged_path

    return [staged_path(settings, table) for table in STAGED_TABLES]


def _fingerprint(settings) -> str:
    """What resolution reads: the staged tables, the analysts' decisions, the code."""
    from pipelines import reuse
    from pipelines.resolve.store import DECISIONS_FILE

    inputs = reuse.files_manifest(
        _staged_inputs(settings) + [settings.state_dir / "resolve" / DECISIONS_FILE]
    )
    return reuse.fingerprint(RESOLVE_STEP, inputs=inputs, settings=settings)


def _outputs(settings) -> list:
    """What resolution writes and the next resolution reads: DATA_DIR/resolved/ and its state
    (the decisions file is an input, not an output)."""
    from pipelines.resolve.store import DECISIONS_FILE

    state = settings.state_dir / "resolve"
    return [p for p in settings.resolved_dir.glob("*") if p.is_file()] + [
        p for p in state.glob("*") if p.is_file() and p.name != DECISIONS_FILE
    ]


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
    check_specs=CHECK_SPECS,
    name="resolved_entities",
)
def resolved_entities(context: AssetExecutionContext, pipeline_settings: PipelineSettings):
    from pipelines import reuse
    from pipelines.resolve.store import resolve_all

    settings = pipeline_settings.settings()
    as_of = run_as_of(context)
    with errors_scrubbed():
        record = reuse.load_record(settings, RESOLVE_STEP)
        if pipeline_settings.reuse_unchanged and reuse.reusable(record, _fingerprint(settings), as_of):
            # Resolution is a function of the staged tables, the analysts' decisions and the
            # state it left: with none of them changed, a new run would find what it found.
            summary = json.loads((settings.resolved_dir / SUMMARY_FILE).read_text(encoding="utf-8"))
            context.log.info(f"resolution: staged tables and decisions unchanged since {record.as_of}: reused")
            reused = {"reused_from_as_of": record.as_of}
        else:
            reuse.forget(settings, RESOLVE_STEP)
            # a large resolution in a process of its own: the sync's process keeps none of it
            staged_mb = input_megabytes(_staged_inputs(settings))
            isolated = worth_a_process(staged_mb, pipeline_settings.step_process_min_mb)
            if isolated:
                context.log.info(f"resolution in a process of its own ({staged_mb:.0f} MiB staged)")
            with StepProcess("resolved") if isolated else InProcess() as worker:
                summary = worker.call(resolve_all, settings, as_of)
            reuse.save_record(settings, reuse.ReuseRecord(
                step=RESOLVE_STEP, fingerprint=_fingerprint(settings), as_of=as_of.isoformat(),
                valid_until=None, outputs=reuse.files_manifest(_outputs(settings)),
            ))
            reused = {}
    context.log.info(
        f"resolved {summary['volunteers']['accounts']} accounts into {summary['volunteers']['persons']} persons "
        f"({'as last resolved' if reused else summary['volunteers']['mode']}), "
        f"{summary['services']['services']} services"
    )
    yield MaterializeResult(asset_key=VOLUNTEERS, metadata=safe_metadata({**volunteer_metadata(summary), **reused}))
    organizations = summary["organizations"]
    yield MaterializeResult(
        asset_key=ORGANIZATIONS,
        metadata={
            "teams": organizations["teams"], "organizations": organizations["organizations"],
            "teams_by_method": _json(organizations["teams_by_method"]), "key_changes": organizations["key_changes"],
            **reused,
        },
    )
    yield MaterializeResult(asset_key=SERVICES, metadata=safe_metadata({**service_metadata(summary), **reused}))

    yield from invariant_checks(summary["invariants"])


assets = [resolved_entities]
