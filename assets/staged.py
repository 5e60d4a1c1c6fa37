"""Staged layer: one asset per canonical table, its Great Expectations checks, and quarantine.

Keys `staged/<table>` (group `staged`), each depending on the raw streams that feed it
(schemas/mapping/*.yaml), all in one subsettable multi-asset (one step process, see below).
The work is `pipelines.staging.stage_table`, or, when the last staging still holds, the new
pages merged into it (`pipelines.staging.incremental`; metadata `incremental`,
`rows_restaged`); validation is the GX suite over the file just written
(`pipelines.staging.validation`: after a merge, carried from the last validation with only
the rows the merge changed judged again, metadata `gx_rows_judged`). Each
distinct `meta.check` of the
table's suite (expectations/<table>.json) is an asset check declared next to the asset:
blocking ones (key uniqueness, required fields, hours, region) stop everything downstream
when they fail; warning ones report drift with the observed figure. One more warning check
per table, `quarantined_rows`, reports the rows quarantined per rule.

`staged/quarantine` stacks the tables' quarantine parts into DATA_DIR/staged/quarantine.parquet
for the warehouse. Metadata holds counts, codes and masked previews only: never a name,
certificate number or phone.
"""

import math
import queue
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed

from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Config,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)
from pydantic import Field

from assets.reuse import checks_from_json, checks_to_json, metadata_from_json, metadata_to_json
from assets.run import errors_scrubbed, run_as_of, safe_metadata
from assets.step_process import InProcess, StepProcess, worth_a_process
from pipelines.clock import AsOf
from pipelines.config import Settings
from pipelines.quality import gx_runner
from pipelines.resources import PipelineSettings
from pipelines.schemas import mappings_for_table, table_names, table_spec

QUARANTINE_KEY = AssetKey(["staged", "quarantine"])
QUARANTINE_CHECK = "quarantined_rows"
ACCOUNTED_CHECK = "every_row_accounted"
GX_TALLIES_KEY = "gx_row_tallies"  # where a staging record keeps its suite's counts (pipelines/staging/validation.py)
# Share of a table's rows in quarantine above which the quarantine check warns.
MAX_QUARANTINE_SHARE = 0.05
PREVIEW_ROWS = 5
LANDED_BYTES_FILE = "staging_landed_bytes.json"  # under DATA_DIR/state: each sync folder's bytes (_Workers)
# Columns never shown in a preview: personal (canonical `pii`), hashes and the parts of
# numbers that masking keeps, birth dates.
PREVIEW_HIDDEN_SUFFIXES = ("_hash", "_prefix3", "_prefix4", "_suffix4")
PREVIEW_HIDDEN = {"birth_date", "skills", "row_id"}


def staged_key(table: str) -> AssetKey:
    return AssetKey(["staged", table])


def raw_deps(table: str) -> list[AssetKey]:
    return [AssetKey(["raw", f"{m.source}_{m.stream}"]) for m in mappings_for_table(table)]


def _check_specs(table: str) -> list[AssetCheckSpec]:
    key = staged_key(table)
    specs = [
        AssetCheckSpec(
            info.name,
            asset=key,
            blocking=info.blocking,
            description=f"[{info.severity}] {info.description}".strip(),
        )
        for info in gx_runner.check_specs(table)
    ]
    specs.append(
        AssetCheckSpec(
            QUARANTINE_CHECK,
            asset=key,
            blocking=False,
            description=(
                f"[warning] rows quarantined per rule; warns above {MAX_QUARANTINE_SHARE:.0%} "
                "of the table"
            ),
        )
    )
    specs.append(
        AssetCheckSpec(
            ACCOUNTED_CHECK,
            asset=key,
            blocking=True,
            description=(
                "[blocking] every row landed, per stream and sync, is staged, quarantined or "
                "superseded by a newer version: nothing dropped"
            ),
        )
    )
    return specs


# Every ASCII punctuation character, which CommonMark lets a backslash make literal.
_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def markdown_text(value) -> str:
    """A source's text as a Markdown table cell shows it, literally: an operator's team name
    may be `<img src=x onerror=…>`, `![](http://…)` (an image the dashboard would fetch) or
    `[点我](http://…)` (a link on the asset's page), and a `|` would split the cell."""
    text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", text).replace("\r", " ").replace("\n", " ")


def markdown_table(frame) -> str:
    """A small frame as a Markdown table (pandas' to_markdown needs `tabulate`), its values
    shown as text (`markdown_text`)."""
    if frame is None or len(frame) == 0:
        return "(empty)"
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += [
        "| " + " | ".join(markdown_text(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    return "\n".join(lines)


def _preview(table: str, frame) -> str:
    spec = table_spec(table)
    hidden = {c.name for c in spec.columns if c.pii} | PREVIEW_HIDDEN
    columns = [
        c for c in frame.columns if c not in hidden and not c.endswith(PREVIEW_HIDDEN_SUFFIXES)
    ][:10]
    return markdown_table(frame[columns].head(PREVIEW_ROWS))


def _check_results(table: str, suite) -> list[AssetCheckResult]:
    results = []
    for outcome in suite.checks:
        results.append(
            AssetCheckResult(
                asset_key=staged_key(table),
                check_name=outcome.name,
                passed=outcome.passed,
                severity=AssetCheckSeverity.ERROR if outcome.blocking else AssetCheckSeverity.WARN,
                metadata={"rows": suite.rows, **outcome.metadata()},
            )
        )
    return results


def _quarantine_check(table: str, result) -> AssetCheckResult:
    total = result.rows + result.quarantined
    share = result.quarantined / total if total else 0.0
    return AssetCheckResult(
        asset_key=staged_key(table),
        check_name=QUARANTINE_CHECK,
        passed=share <= MAX_QUARANTINE_SHARE,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "quarantined": result.quarantined,
            "quarantined_share": round(share, 6),
            **{f"rule_{rule}": count for rule, count in result.quarantined_per_rule.items()},
        },
    )


def _accounted_check(table: str, result, sync_id: str) -> AssetCheckResult:
    """Landed = staged + quarantined + superseded, for every stream and sync; the figures of
    this run's sync shown (the rows it landed and where each went)."""
    this_sync = {stream: syncs.get(sync_id, {}) for stream, syncs in result.accounting.items()}
    return AssetCheckResult(
        asset_key=staged_key(table),
        check_name=ACCOUNTED_CHECK,
        passed=result.balanced(),
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "this_sync": MetadataValue.json({s: counts for s, counts in this_sync.items() if counts}),
            "all_syncs": MetadataValue.json({
                stream: {k: sum(c[k] for c in syncs.values()) for k in ("landed", "staged", "quarantined", "superseded")}
                for stream, syncs in result.accounting.items()
            }),
        },
    )


def _stage_one(
    table: str, settings: Settings, as_of: AsOf, run_id: str,
    from_prefecture_parts: bool = False, merge: dict | None = None,
) -> tuple[dict, list[AssetCheckResult], object, dict | None, str]:
    """Stage one table (from the landed pages, merged into the last staging when `merge`
    allows, or from the prefectures' parts): its metadata, every check result, the instant
    its verdicts hold until (StagedResult.changes_at), the suite's row tallies and the line to
    log. No Dagster context: it may run in a step process of its own (`_stage_one_as_json`)."""
    from pipelines.staging import read_staged_head
    from pipelines.staging.incremental import stage_table_or_merge
    from pipelines.staging.partitions import stage_from_parts
    from pipelines.staging.validation import validate_staged

    if from_prefecture_parts:
        result = stage_from_parts(table, settings, as_of)
    else:
        result = stage_table_or_merge(table, settings, as_of, **(merge or {"previous": None,
                                      "base_fingerprint": "", "folders": [], "allow": False}))
    previous = (merge or {}).get("previous")
    carried = previous.report.get(GX_TALLIES_KEY) if previous is not None and previous.report else None
    validation = validate_staged(table, settings, result, carried)
    suite = validation.suite
    preview_frame = read_staged_head(settings, table, PREVIEW_ROWS)
    line = (
        f"staged {table}: {result.rows} rows {result.rows_per_source}, "
        f"{result.quarantined} quarantined {result.quarantined_per_rule}; "
        f"checks failed: {suite.failed() or 'none'}"
    )
    metadata = {
        "dagster/row_count": result.rows,
        **{f"rows_{source}": count for source, count in sorted(result.rows_per_source.items())},
        "deleted_rows": result.deleted_rows,
        "quarantined": result.quarantined,
        "quarantined_per_rule": MetadataValue.json(result.quarantined_per_rule),
        "soft_flags": MetadataValue.json(result.soft_flags),
        "superseded_duplicate_keys": result.superseded_duplicates,
        "incremental": result.incremental,
        "rows_restaged": result.restaged,
        **({"staged_in_full_because": result.why_in_full} if result.why_in_full else {}),
        "gx_rows_judged": validation.rows_judged,
        "as_of": as_of.isoformat(),
        "path": MetadataValue.path(str(result.path)),
        "preview": MetadataValue.md(_preview(table, preview_frame)),
    }
    checks = _check_results(table, suite) + [
        _quarantine_check(table, result), _accounted_check(table, result, run_id)
    ]
    return safe_metadata(metadata), checks, result.changes_at, validation.tallies, line


def _stage_one_as_json(*args, **kwargs) -> tuple[dict, list[dict], object, dict | None, str]:
    """`_stage_one` in a step process: metadata and checks as plain JSON across the boundary."""
    metadata, checks, changes_at, tallies, line = _stage_one(*args, **kwargs)
    return metadata_to_json(metadata), checks_to_json(checks), changes_at, tallies, line


def _stage_in(
    worker, say, table: str, settings: Settings, as_of: AsOf, run_id: str,
    from_prefecture_parts: bool = False, merge: dict | None = None,
) -> tuple[dict, list[AssetCheckResult], object, dict | None]:
    """`_stage_one` in `worker` (this process, or a step process: assets/step_process.py),
    its line said with `say`."""
    if isinstance(worker, StepProcess):
        metadata, checks, changes_at, tallies, line = worker.call(
            _stage_one_as_json, table, settings, as_of, run_id, from_prefecture_parts, merge
        )
        metadata, checks = metadata_from_json(metadata), checks_from_json(checks)
    else:
        metadata, checks, changes_at, tallies, line = _stage_one(
            table, settings, as_of, run_id, from_prefecture_parts, merge
        )
    say(line)
    return metadata, checks, changes_at, tallies


def _selected(context: AssetExecutionContext, checks: list[AssetCheckResult]) -> list[AssetCheckResult]:
    selected = context.selected_asset_check_keys
    return [check for check in checks if AssetCheckKey(check.asset_key, check.check_name) in selected]


def _landed_folders(settings: Settings, table: str) -> list:
    """The state of the sync folders of each stream the table is staged from
    (`landing.sync_folders`)."""
    from pipelines.landing import sync_folders

    return [sync_folders(settings.data_dir, m.source, m.stream) for m in mappings_for_table(table)]


def _stage_or_reuse(
    context: AssetExecutionContext, table: str, settings: Settings, as_of: AsOf, code: str,
    reuse: bool, worker, say, from_prefecture_parts: bool = False,
) -> MaterializeResult:
    """Stage the table, or give back the last staging when its landed pages, code, settings
    and instant window say a fresh one would be the same (pipelines/reuse.py). Staging from the
    prefectures' parts always runs: its inputs are the parts, not the fingerprinted pages.
    `worker()` gives where the work runs, `say` logs a line (both: see `_Workers`)."""
    from pipelines import reuse as reuse_records
    from pipelines.staging.incremental import BASIS_KEY, basis, pages_since
    from pipelines.staging.tables import ledger_path, quarantine_part_path, staged_path

    step = f"staged/{table}"
    if from_prefecture_parts:
        reuse_records.forget(settings, step)
        metadata, checks, _, _ = _stage_in(
            worker(), say, table, settings, as_of, context.run_id, from_prefecture_parts=True
        )
        return MaterializeResult(
            asset_key=staged_key(table), metadata=metadata, check_results=_selected(context, checks)
        )
    outputs = [
        staged_path(settings, table), quarantine_part_path(settings, table), ledger_path(settings, table)
    ]
    folders = _landed_folders(settings, table)
    # each folder's time (its pages' states, kept while it is fresh, are compared by
    # `pages_since`: a folder that settles keeps its fingerprint)
    fingerprint = reuse_records.fingerprint(
        step, inputs=[[entry[:2] for entry in stream] for stream in folders], settings=settings, code=code
    )
    # the same, the pages aside: a staging made under it may take new pages in (incremental.py)
    base = reuse_records.fingerprint(step, inputs=None, settings=settings, code=code)
    record = reuse_records.load_record(settings, step)
    if reuse and reuse_records.reusable(record, fingerprint, as_of) and pages_since(record, folders) == []:
        say(f"staged {table}: landed pages unchanged since {record.as_of}: reused")
        if folders != record.report[BASIS_KEY]["folders"]:
            # a folder kept page by page has settled since: kept by its time from now on
            record.report[BASIS_KEY]["folders"] = folders
            reuse_records.save_record(settings, record)
        return MaterializeResult(
            asset_key=staged_key(table),
            metadata={**metadata_from_json(record.report["metadata"]), "reused_from_as_of": record.as_of},
            check_results=_selected(context, checks_from_json(record.report["checks"])),
        )
    reuse_records.forget(settings, step)
    merge = {"previous": record, "base_fingerprint": base, "folders": folders, "allow": reuse}
    metadata, checks, changes_at, tallies = _stage_in(
        worker(), say, table, settings, as_of, context.run_id, merge=merge
    )
    reuse_records.save_record(settings, reuse_records.ReuseRecord(
        step=step,
        fingerprint=fingerprint,
        as_of=as_of.isoformat(),
        valid_until=None if changes_at is None else AsOf(changes_at.to_pydatetime()).isoformat(),
        outputs=reuse_records.files_manifest(outputs),
        report={"metadata": metadata_to_json(metadata), "checks": checks_to_json(checks),
                BASIS_KEY: basis(base, folders), GX_TALLIES_KEY: tallies},
    ))
    return MaterializeResult(asset_key=staged_key(table), metadata=metadata, check_results=_selected(context, checks))


def _combine_or_reuse(context: AssetExecutionContext, settings: Settings, as_of: AsOf, code: str, reuse: bool) -> MaterializeResult:
    from pipelines import reuse as reuse_records
    from pipelines.staging.tables import quarantine_part_path

    step = "staged/quarantine"
    parts = reuse_records.files_manifest(quarantine_part_path(settings, t) for t in table_names())
    fingerprint = reuse_records.fingerprint(step, inputs=parts, settings=settings, code=code)
    record = reuse_records.load_record(settings, step)
    if reuse and reuse_records.reusable(record, fingerprint, as_of):
        context.log.info(f"quarantine: parts unchanged since {record.as_of}: reused")
        return MaterializeResult(
            asset_key=QUARANTINE_KEY,
            metadata={**metadata_from_json(record.report["metadata"]), "reused_from_as_of": record.as_of},
        )
    reuse_records.forget(settings, step)
    materialization = _combine_quarantine(settings)
    from pipelines.staging import quarantine_path

    reuse_records.save_record(settings, reuse_records.ReuseRecord(
        step=step, fingerprint=fingerprint, as_of=as_of.isoformat(), valid_until=None,
        outputs=reuse_records.files_manifest([quarantine_path(settings)]),
        report={"metadata": metadata_to_json(materialization.metadata)},
    ))
    return materialization


def _combine_quarantine(settings: Settings) -> MaterializeResult:
    from pipelines.quality.quarantine import counts_per_entity_rule, counts_per_rule
    from pipelines.staging import combine_quarantine, quarantine_path

    combined = combine_quarantine(settings)
    preview_columns = ["source", "entity", "source_id", "rule", "detail"]
    return MaterializeResult(
        asset_key=QUARANTINE_KEY,
        metadata=safe_metadata({
            "dagster/row_count": len(combined),
            "per_rule": MetadataValue.json(counts_per_rule(combined)),
            "per_entity_rule": MetadataValue.json(counts_per_entity_rule(combined)),
            "path": MetadataValue.path(str(quarantine_path(settings))),
            "preview": MetadataValue.md(markdown_table(combined[preview_columns].head(10))),
        }),
    )


def _table_spec_of(table: str) -> AssetSpec:
    spec = table_spec(table)
    return AssetSpec(
        staged_key(table),
        deps=raw_deps(table),
        group_name="staged",
        kinds={"python", "parquet"},
        description=(
            f"{spec.description or table}: canonical rows of both sources "
            "(schemas/canonical.yaml), "
            f"latest version, deleted rows flagged; DATA_DIR/staged/{table}.parquet. "
            "Rows that break a rule go to quarantine."
        ),
        metadata={"entity": spec.entity, "key": ", ".join(spec.key)},
    )


QUARANTINE_SPEC = AssetSpec(
    QUARANTINE_KEY,
    deps=[staged_key(table) for table in table_names()],
    group_name="staged",
    kinds={"python", "parquet"},
    description=(
        "Rejected source rows of every staged table, with the rule each broke, a readable detail "
        "and the raw row (personal fields masked): DATA_DIR/staged/quarantine.parquet, published "
        "as the warehouse table `quarantine`. A row fixed at the source leaves at the next sync."
    ),
)


class StagingConfig(Config):
    from_prefecture_parts: bool = Field(
        default=False,
        description=(
            "Combine the parts the 9 partitions of `staged/prefecture_parts` staged "
            "(job `stage_by_prefecture`) instead of staging every row here: the job "
            "`sync_from_prefectures` sets it (pipelines/staging/partitions.py)."
        ),
    )


class _Lane:
    """One place tables are staged one after another: this process, or a step process
    started at the lane's first table with work (a step whose tables are all reused starts
    none) and shared by the tables it takes next (its imports, Great Expectations ~4 s, paid
    once per lane). The lanes' processes share DuckDB's spill budget (`duck.SPILL_MEMORY_MB`
    and the cores): two stagings side by side then hold what one held, not twice it."""

    def __init__(self, isolated: bool, lanes: int, started: str) -> None:
        self._isolated, self._lanes, self._started, self._worker = isolated, lanes, started, None

    def worker(self, say):
        if self._worker is None:
            if self._isolated:
                from pipelines.duck import share_spill_budget

                self._worker = StepProcess("staged")
                self._worker.call(share_spill_budget, self._lanes)
                say(self._started)
            else:
                self._worker = InProcess()
        return self._worker

    def close(self, *exc) -> None:
        if self._worker is not None:
            self._worker.__exit__(*exc)


class _Workers:
    """Where the staged step's tables are staged. Small inputs (under `step_process_min_mb`
    MiB landed): in this process, one after another. Larger ones: in step processes,
    `staging_processes` tables side by side, the largest first (the step lasts as long as
    its busiest lane). The lanes are threads of this process that wait on their children;
    the Dagster context is used by this thread alone (each table's log lines are said here
    when it is done), and each table writes files of its own (and DuckDB spills into a
    folder per process: `duck.process_spill_dir`)."""

    def __init__(self, context: AssetExecutionContext, settings: Settings, min_mb: float,
                 processes: int) -> None:
        self._context = context
        from pipelines.landing import page_bytes, tally_sync_folders

        # bytes landed per (source, stream), each sync folder's pages sized once and kept
        # with its time: the landing zone keeps every sync (a look at every page cost 0.37 s
        # at 1M persons after two syncs, and grew by that with each reconciliation)
        tallies = tally_sync_folders(settings.raw_dir, page_bytes, 1, settings.state_dir / LANDED_BYTES_FILE)
        self._landed_bytes = {stream: sum(size for size, in syncs.values()) for stream, syncs in tallies.items()}
        landed_mb = sum(self._landed_bytes.values()) / 2**20
        isolated = worth_a_process(landed_mb, min_mb)
        count = max(1, processes) if isolated else 1
        started = (f"a staging process started ({landed_mb:.0f} MiB landed; "
                   f"up to {count} tables at a time)")
        self._lanes = [_Lane(isolated, count, started) for _ in range(count)]

    def _landed_megabytes(self, table: str) -> float:
        streams = {(m.source, m.stream) for m in mappings_for_table(table)}
        return sum(self._landed_bytes.get(stream, 0) for stream in streams) / 2**20

    def stage(self, tables: list[str], stage_one) -> Iterator[MaterializeResult]:
        """`stage_one(table, worker, say)` of every table, each result as it comes; a table
        that fails fails the step once the tables under way are done (and yielded)."""
        if len(self._lanes) == 1:
            lane, say = self._lanes[0], self._context.log.info
            for table in tables:
                yield stage_one(table, lambda: lane.worker(say), say)
            return
        free: queue.SimpleQueue[_Lane] = queue.SimpleQueue()
        for lane in self._lanes:
            free.put(lane)

        def in_a_lane(table: str) -> tuple[MaterializeResult, list[str]]:
            lane, lines = free.get(), []
            try:
                return stage_one(table, lambda: lane.worker(lines.append), lines.append), lines
            finally:
                free.put(lane)

        pool = ThreadPoolExecutor(len(self._lanes), thread_name_prefix="staged")
        try:
            largest_first = sorted(tables, key=self._landed_megabytes, reverse=True)
            pending = [pool.submit(in_a_lane, table) for table in largest_first]
            failure = None
            for done in as_completed(pending):
                try:
                    result, lines = done.result()
                except BaseException as error:  # noqa: BLE001 - raised once the others are done
                    failure = failure or error
                    for future in pending:
                        future.cancel()  # (the tables not yet started)
                    continue
                for line in lines:
                    self._context.log.info(line)
                yield result
            if failure is not None:
                raise failure
        finally:
            # (interrupted: the lanes' children are ended by __exit__, which ends their threads)
            pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> "_Workers":
        return self

    def __exit__(self, *exc) -> None:
        for lane in self._lanes:
            lane.close(*exc)


# One subsettable multi-asset rather than eight single assets: every step process pays for
# importing the code location and Great Expectations (~5 s) before its work, which on small
# and mid-size syncs costs more than staging itself; one step pays it once. Each table is
# still its own asset with its own checks, and can be materialized alone.
@multi_asset(
    name="staged",
    specs=[_table_spec_of(table) for table in table_names()] + [QUARANTINE_SPEC],
    check_specs=[spec for table in table_names() for spec in _check_specs(table)],
    can_subset=True,
)
def staged_tables(
    context: AssetExecutionContext, config: StagingConfig, pipeline_settings: PipelineSettings
):
    from pipelines.reuse import code_fingerprint

    settings = pipeline_settings.settings()
    as_of = run_as_of(context)  # future_date compares with it
    selected = context.selected_asset_keys
    reuse = pipeline_settings.reuse_unchanged
    with errors_scrubbed(), _Workers(
        context, settings, pipeline_settings.step_process_min_mb, pipeline_settings.staging_processes
    ) as workers:
        code = code_fingerprint()

        def stage_one(table: str, worker, say) -> MaterializeResult:
            return _stage_or_reuse(
                context, table, settings, as_of, code, reuse, worker, say, config.from_prefecture_parts
            )

        yield from workers.stage([t for t in table_names() if staged_key(t) in selected], stage_one)
        if QUARANTINE_KEY in selected:
            yield _combine_or_reuse(context, settings, as_of, code, reuse)


assets = [staged_tables]
