"""Where the time of a sync went, from py-spy's samples of its whole process tree.

`bench/sync.py --py-spy` records the timed full sync of its largest size with

    py-spy record --subprocesses --function --format raw -o <out>/sync-pyspy-p<N>.txt -- dagster job execute ...

(only running threads are sampled, so the samples are CPU time, not waiting; the sync is
profiled as it runs, in its own processes, not replayed in one), then this module folds the
samples into <out>/sync-pyspy-p<N>.md: each stage's share, and inside each stage the
project's functions that were on the stack most and the innermost frames, where the CPU
was (a DuckDB or Arrow call is its Python caller's frame).

    .venv/bin/python bench/pyspy_summary.py bench/out/sync-pyspy-p4300000.txt
"""

from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRAME = re.compile(r"^(?P<function>.+) \((?P<file>[^()]*?)(?::\d+)?\)$")
PROJECT_FOLDERS = ("pipelines/", "assets/", "sandbox/")
# a sample's stage: that of its outermost project frame found here (the asset's own function
# comes first; in a step's child process, assets/step_process.py is passed over)
STAGE_OF_FILE = (
    ("raw", ("assets/raw.py", "pipelines/sources/", "pipelines/landing.py")),
    ("staged", ("assets/staged.py", "pipelines/staging/", "pipelines/normalize/", "pipelines/quality/")),
    ("resolved", ("assets/resolved.py", "pipelines/resolve/")),
    ("warehouse", ("assets/warehouse.py", "pipelines/warehouse/")),
    ("other (review workbook, report)", ("assets/review.py", "assets/reports.py", "pipelines/review", "pipelines/reports/")),
)
OUTSIDE = "Dagster and Python outside the stages (start-up, imports, events)"


def short_file(path: str) -> str:
    """A file as py-spy names it, relative to the path it was imported from (the project's
    `pipelines/…`, a library's `duckdb/…`), also where it gave a whole path."""
    for prefix in (f"{ROOT}/", "site-packages/"):
        if prefix in path:
            return path.rsplit(prefix, 1)[1]
    return path


def frames_of(stack: str) -> list[tuple[str, str]]:
    """(function, file) of each frame, outermost first; py-spy's `process …` frames dropped."""
    frames = []
    for frame in stack.split(";"):
        match = FRAME.match(frame)
        if match and not frame.startswith("process "):
            frames.append((match["function"], short_file(match["file"])))
    return frames


def stage_of(frames: list[tuple[str, str]]) -> str:
    for _, file in frames:
        for stage, prefixes in STAGE_OF_FILE:
            if file.startswith(prefixes):
                return stage
    return OUTSIDE


def fold(lines) -> tuple[Counter, dict[str, Counter], dict[str, Counter]]:
    """Samples per stage; per stage, the samples in which each project function was on the
    stack (once per sample) and those whose innermost frame was each function."""
    per_stage: Counter = Counter()
    on_stack: dict[str, Counter] = defaultdict(Counter)
    innermost: dict[str, Counter] = defaultdict(Counter)
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = frames_of(stack)
        stage, samples = stage_of(frames), int(count)
        per_stage[stage] += samples
        if frames:
            innermost[stage]["{} ({})".format(*frames[-1])] += samples
        for function, file in set(frames):
            if file.startswith(PROJECT_FOLDERS):
                on_stack[stage][f"{function} ({file})"] += samples
    return per_stage, on_stack, innermost


def markdown(per_stage: Counter, on_stack: dict[str, Counter], innermost: dict[str, Counter], top: int = 8) -> str:
    total = sum(per_stage.values()) or 1
    lines = [f"{total:,} CPU samples", "", "| stage | share of the samples |", "| --- | ---: |"]
    lines += [f"| {stage} | {samples / total:.1%} |" for stage, samples in per_stage.most_common()]
    for stage, samples in per_stage.most_common():

        def cell(ranked: list, index: int) -> str:
            if index >= len(ranked):
                return " | "
            name, count = ranked[index]
            return f"`{name}` | {count / samples:.0%}"

        mine, leaves = on_stack[stage].most_common(top), innermost[stage].most_common(top)
        lines += ["", f"### {stage}: {samples / total:.1%}", "",
                  "| the project's functions on the stack | of the stage "
                  "| innermost frames (where the CPU was) | of the stage |",
                  "| --- | ---: | --- | ---: |"]
        lines += [f"| {cell(mine, i)} | {cell(leaves, i)} |" for i in range(max(len(mine), len(leaves)))]
    return "\n".join(lines) + "\n"


def summarize(raw: Path) -> Path:
    """Writes the summary of py-spy's raw output `raw` beside it (`.md`)."""
    with raw.open(encoding="utf-8", errors="replace") as lines:
        summary = markdown(*fold(lines))
    target = raw.with_suffix(".md")
    target.write_text(summary, encoding="utf-8")
    return target


if __name__ == "__main__":
    print(summarize(Path(sys.argv[1])).read_text(encoding="utf-8"))
