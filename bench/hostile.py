"""Fuzz report: hostile rows of every stream through the real decoder, landing and staging.

    .venv/bin/python bench/hostile.py [--rows 2000] [--seed 1] [--out bench/out]

For each of the 11 streams of both sources, `--rows` rows built by tests/hostile/fuzz.py
(the property test's generator, at volume): wrong types, missing and extra fields, huge
strings, control characters, emoji, lone surrogates, SQL metacharacters, numbers where
strings belong, absurd dates and durations, ID numbers and phones in every form and field,
and (session 6) day counts, durations with units, two mobiles in a box, invisible characters
in keys, NUL bytes, basic-form change times, duplicate keys, a byte order mark.
Reports per stream: rows fuzzed, staged, quarantined, superseded (same key twice), whether
every row is accounted for, the planted numbers found in clear in any output (leaks) and
the blocking Great Expectations checks that failed. Writes `hostile.json` and `hostile.md`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.quality import gx_runner  # noqa: E402
from pipelines.staging import read_staged, stage_table  # noqa: E402
from tests.hostile.fuzz import STREAM_KEYS, hostile_batch, land_batch, leaks, output_texts, table_of  # noqa: E402
from tests.staging.rawpages import AS_OF, settings_for  # noqa: E402


def fuzz_stream(source: str, stream: str, rows: int, seed: int) -> dict:
    batch = hostile_batch(source, stream, rows, seed)
    table = table_of(source, stream)
    with tempfile.TemporaryDirectory() as folder:
        settings = settings_for(Path(folder) / "data")
        landed = land_batch(batch, settings.data_dir)
        started = time.perf_counter()
        result = stage_table(table, settings, as_of=AS_OF)
        seconds = time.perf_counter() - started
        counts = result.accounting[f"{source}/{stream}"]["fuzz-sync"]
        leaked = leaks(output_texts(settings.data_dir), batch.planted)
        suite = gx_runner.validate(table, read_staged(settings, table, columns=gx_runner.suite_columns(table)))
    return {
        "stream": f"{source}/{stream}", "rows": landed, **{k: counts[k] for k in ("staged", "quarantined", "superseded")},
        "accounted": counts["staged"] + counts["quarantined"] + counts["superseded"] == landed,
        "planted_numbers": len(batch.planted), "leaks": len(leaked),
        "blocking_checks_failed": suite.failed("blocking"), "kinds": Counter(batch.kinds),
        "rules": dict(result.quarantined_per_rule), "seconds": round(seconds, 2),
    }


def markdown(results: list[dict]) -> str:
    kinds = Counter()
    for result in results:
        kinds.update(result["kinds"])
    lines = [
        "| stream | rows fuzzed | staged | quarantined | superseded | accounted | numbers planted | leaks | blocking checks failed |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['stream']} | {r['rows']:,} | {r['staged']:,} | {r['quarantined']:,} | {r['superseded']:,} | "
            f"{'yes' if r['accounted'] else '**no**'} | {r['planted_numbers']:,} | {r['leaks']} | "
            f"{', '.join(r['blocking_checks_failed']) or 'none'} |"
        )
    total = {key: sum(r[key] for r in results) for key in ("rows", "staged", "quarantined", "superseded", "planted_numbers", "leaks")}
    lines.append(
        f"| **all** | **{total['rows']:,}** | {total['staged']:,} | {total['quarantined']:,} | {total['superseded']:,} | "
        f"{'yes' if all(r['accounted'] for r in results) else '**no**'} | {total['planted_numbers']:,} | **{total['leaks']}** | "
        f"{'none' if not any(r['blocking_checks_failed'] for r in results) else '**some**'} |"
    )
    lines += ["", f"Hostile kinds tried ({len(kinds)}): " + ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items()))]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000, help="hostile rows per stream")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()
    results = [fuzz_stream(source, stream, args.rows, args.seed + n) for n, (source, stream) in enumerate(STREAM_KEYS)]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hostile.json").write_text(json.dumps(results, ensure_ascii=False, indent=1, default=dict))
    text = markdown(results)
    (args.out / "hostile.md").write_text(text + "\n", encoding="utf-8")
    print(text)
    if not all(r["accounted"] and not r["leaks"] and not r["blocking_checks_failed"] for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
