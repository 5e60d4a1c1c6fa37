"""Run every benchmark, print their Markdown tables and collect them in bench/out/results.md.

    .venv/bin/python bench/run_all.py            # the README's sizes (what `make bench` runs)
    .venv/bin/python bench/run_all.py --quick    # small sizes: a smoke check in well under a minute
    .venv/bin/python bench/run_all.py --large    # pull and resolve at 1M persons
    .venv/bin/python bench/run_all.py --only normalize,publish --out /tmp/bench

Each benchmark is its own script (bench/pull.py, normalize.py, resolve.py, publish.py) and
stays runnable alone; this driver runs each in a child process (so one benchmark's memory
and imports do not weigh on the next), lets its progress (stderr) through, and takes its
stdout, which is Markdown by convention. The results file starts with the date, the machine
(CPUs, memory, Python) and, per benchmark, the load average before and after: the machine
may be shared, and the numbers mean little without it.

Sizes:

| benchmark | --quick | default | --large |
| --- | ---: | ---: | ---: |
| pull (persons) | 1,000 | 100,000 | 1,000,000 |
| normalize (rows; row-by-row baseline rows) | 10,000; 2,000 | 1,000,000; 100,000 | as default |
| resolve (persons) | 1,000 | 100,000 | 1,000,000 |
| publish (persons; services) | 500; 5,000 | 20,000; 200,000 | as default |

Worlds are kept under --out (default bench/out/, git-ignored) and reused by the next run of
the same size; the resolve benchmark's landed and staged data are rebuilt on every run, so
they always come from the current landing and staging code. PostgreSQL (127.0.0.1:5432) is included in the publish
benchmark when something listens there.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
DEFAULT_OUT = BENCH / "out"
NAMES = ("pull", "normalize", "resolve", "publish")
SEED = 7


@dataclass(frozen=True)
class Sizes:
    pull_persons: int
    normalize_rows: int
    normalize_baseline_rows: int
    resolve_persons: int
    publish_persons: int
    publish_services: int


QUICK = Sizes(1_000, 10_000, 2_000, 1_000, 500, 5_000)
DEFAULT = Sizes(100_000, 1_000_000, 100_000, 100_000, 20_000, 200_000)
LARGE = Sizes(1_000_000, 1_000_000, 100_000, 1_000_000, 20_000, 200_000)


def postgres_listens(host: str = "127.0.0.1", port: int = 5432) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def commands(sizes: Sizes, out: Path, with_postgres: bool) -> dict[str, list[str]]:
    """The command line of each benchmark at these sizes."""
    python = sys.executable
    publish = [
        python,
        str(BENCH / "publish.py"),
        "--persons",
        str(sizes.publish_persons),
        "--services",
        str(sizes.publish_services),
    ]
    return {
        "pull": [
            python,
            str(BENCH / "pull.py"),
            "--persons",
            str(sizes.pull_persons),
            "--seed",
            str(SEED),
            "--out",
            str(out),
        ],
        "normalize": [
            python,
            str(BENCH / "normalize.py"),
            "--rows",
            str(sizes.normalize_rows),
            "--baseline-rows",
            str(sizes.normalize_baseline_rows),
        ],
        "resolve": [
            python,
            str(BENCH / "resolve.py"),
            "--persons",
            str(sizes.resolve_persons),
            "--seed",
            str(SEED),
            "--work",
            str(resolve_work(out, sizes)),
        ],
        "publish": publish + (["--postgres"] if with_postgres else []),
    }


def resolve_work(out: Path, sizes: Sizes) -> Path:
    return out / f"resolve-p{sizes.resolve_persons}-s{SEED}"


def forget_staged(work: Path) -> None:
    """Drop the resolve benchmark's landed and staged data, keep its world.

    bench/resolve.py reuses a work folder's staged volunteers when they exist; from here the
    chain is rebuilt with the current landing and staging code every time (the world, from a
    fixed seed, is the costly part to make and is kept).
    """
    shutil.rmtree(work / "data", ignore_errors=True)


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} CPUs, {memory:.0f} GiB memory, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def load() -> str:
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


def run_one(name: str, command: list[str]) -> tuple[str, bool]:
    """A benchmark's section of the results: heading, load, its stdout (or its failure)."""
    load_before, started = load(), time.perf_counter()
    print(
        f"--- {name}: {' '.join(Path(part).name if part.startswith('/') else part for part in command[1:])}",
        file=sys.stderr,
        flush=True,
    )
    # check=False: a failed benchmark is reported in its section and the others still run
    completed = subprocess.run(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
        env={**os.environ, "GX_ANALYTICS_ENABLED": "false"},
    )
    seconds = time.perf_counter() - started
    shown = " ".join(command[2:])
    invocation = (
        f"`{Path(command[1]).relative_to(ROOT)} {shown}` — {seconds:.0f} s wall, "
        f"load average (1/5/15 min) {load_before} before, {load()} after."
    )
    lines = [f"## {name}", "", invocation, ""]
    ok = completed.returncode == 0
    lines.append(
        completed.stdout.strip()
        if ok
        else f"**failed** (exit {completed.returncode}); its output:\n\n```\n{completed.stdout.strip()[-3000:]}\n```"
    )
    return "\n".join(lines), ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes, for a smoke check")
    size.add_argument("--large", action="store_true", help="pull and resolve at 1M persons")
    parser.add_argument(
        "--only", default=",".join(NAMES), help=f"comma-separated subset of {','.join(NAMES)}"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="results.md, worlds, work folders"
    )
    parser.add_argument("--no-postgres", action="store_true", help="publish to DuckDB only")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(NAMES))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")

    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    mode = "quick" if args.quick else "large" if args.large else "default"
    sizes = QUICK if args.quick else LARGE if args.large else DEFAULT
    with_postgres = not args.no_postgres and postgres_listens()
    when = f"{dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
    postgres = "included" if with_postgres else "not run"
    lines = [
        f"# Benchmarks ({mode} sizes)",
        "",
        f"Run {when} on {machine()}; PostgreSQL {postgres}.",
        "",
    ]
    all_ok = True
    for name in chosen:
        if name == "resolve":
            forget_staged(resolve_work(out, sizes))
        section, ok = run_one(name, commands(sizes, out, with_postgres)[name])
        all_ok &= ok
        print(section + "\n", flush=True)
        lines += [section, ""]
        # written after each benchmark, so a long run leaves its finished sections behind
        (out / "results.md").write_text("\n".join(lines), encoding="utf-8")
    print(f"results: {out / 'results.md'}", file=sys.stderr)
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
