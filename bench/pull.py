"""Pull benchmark: rows per second landed from the sandbox, against a bare reader's floor.

    .venv/bin/python bench/pull.py --persons 100000 --persons 1000000

For each world size: generate the world (once; kept under bench/out/), serve it with
`python -m sandbox serve` in its own process (so the servers do not share our GIL), then run
two passes over every stream of both sources, each in a fresh child process:

* `land`: the real thing: `pipelines.landing.land_stream` (walk, Parquet page files with
  fsync, state after every page), full pull from an empty DATA_DIR;
* `bare`: the floor: the same client walks the same pages (same page sizes, same keyset /
  cursor requests, JSON decoded to find the next key) and throws the rows away.

Each child reports rows, seconds and its peak resident memory (ru_maxrss). The landing pass
runs first, so the bare reader gets the warmer caches: the gap shown is an upper bound.
Results go to <out>/pull.md (a Markdown table; --out, default bench/out/) and stdout;
progress goes to stderr, so stdout is the Markdown table alone (bench/run_all.py collects it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on port {port}")


# -- child: one pass ---------------------------------------------------------------------


def run_pass(mode: str, national_url: str, provincial_url: str, data_dir: str) -> dict:
    sys.path.insert(0, str(ROOT))
    from pipelines.config import Settings
    from pipelines.landing import land_stream
    from pipelines.sources import NationalApi, ProvincialApi

    settings = Settings()  # sandbox credentials
    apis = [
        NationalApi(
            national_url, settings.national_client_id, settings.national_client_secret, "52"
        ),
        ProvincialApi(provincial_url, settings.provincial_app_key, settings.provincial_app_secret),
    ]
    rows = 0
    per_stream = {}
    began = time.perf_counter()
    for api in apis:
        for name, stream in api.streams.items():
            if mode == "land":
                count = land_stream(api, stream, data_dir, "bench").rows
            else:
                count = sum(len(page) for page in api.iter_window(stream, None))
            per_stream[f"{api.system}.{name}"] = count
            rows += count
    seconds = time.perf_counter() - began
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "mode": mode,
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_second": round(rows / seconds),
        # CPU of this process alone: steadier than wall time on a shared machine
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "streams": per_stream,
    }


# -- parent: worlds, servers, passes -----------------------------------------------------


def world_is_current(world: Path) -> bool:
    """A kept world made by this version of the generator (an older one is made again)."""
    sys.path.insert(0, str(ROOT))
    from sandbox.generator import GENERATOR_VERSION

    described = world / "world.json"
    if not described.exists():
        return False
    return json.loads(described.read_text(encoding="utf-8")).get("generator_version") == GENERATOR_VERSION


def ensure_world(persons: int, seed: int, out: Path = OUT) -> Path:
    world = out / f"world-p{persons}-s{seed}"
    if not world_is_current(world):
        shutil.rmtree(world, ignore_errors=True)
        began = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "sandbox",
                "generate",
                "--persons",
                str(persons),
                "--seed",
                str(seed),
                "--out",
                str(world),
            ],
            cwd=ROOT,
            check=True,
            stdout=sys.stderr,
        )
        print(f"generated {persons} persons in {time.perf_counter() - began:.0f}s", file=sys.stderr, flush=True)
    return world


@contextmanager
def serving(world: Path) -> Iterator[tuple[subprocess.Popen, tuple[str, str]]]:
    """Both sandbox servers over `world`, faults off: (their process, (national URL,
    provincial URL)), stopped when the block ends."""
    national_port, provincial_port = free_port(), free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--world", str(world),
         "--national-port", str(national_port), "--provincial-port", str(provincial_port),
         "--faults", "none"],
        cwd=ROOT, stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(national_port)
        wait_for_port(provincial_port)
        yield server, (f"http://127.0.0.1:{national_port}", f"http://127.0.0.1:{provincial_port}")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()



def bench_world(persons: int, seed: int, out: Path = OUT) -> list[dict]:
    results = []
    with serving(ensure_world(persons, seed, out)) as (_, urls):
        for mode in ("land", "bare"):
            data_dir = tempfile.mkdtemp(prefix=f"pull-{mode}-", dir=out)
            try:
                child = subprocess.run(
                    [sys.executable, __file__, "--child", mode, *urls, data_dir],
                    cwd=ROOT,
                    check=True,
                    capture_output=True,
                    text=True,
                )
            finally:
                shutil.rmtree(data_dir, ignore_errors=True)
            outcome = json.loads(child.stdout.strip().splitlines()[-1])
            outcome["persons"] = persons
            print(json.dumps(outcome), file=sys.stderr, flush=True)
            results.append(outcome)
    return results


def table(results: list[dict]) -> str:
    lines = [
        (
            "| persons | rows pulled | bare reader rows/s | landing rows/s | landing / bare "
            "| client CPU s bare / landing | peak RSS bare | peak RSS landing |"
        ),
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    by_size: dict[int, dict[str, dict]] = {}
    for outcome in results:
        by_size.setdefault(outcome["persons"], {})[outcome["mode"]] = outcome
    for persons, modes in sorted(by_size.items()):
        bare, land = modes["bare"], modes["land"]
        ratio = land["rows_per_second"] / bare["rows_per_second"]
        lines.append(
            f"| {persons:,} | {land['rows']:,} | {bare['rows_per_second']:,} | "
            f"{land['rows_per_second']:,} | {ratio:.0%} | "
            f"{bare['cpu_seconds']} / {land['cpu_seconds']} | "
            f"{bare['peak_rss_mb']} MB | {land['peak_rss_mb']} MB |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, action="append", help="world size (repeatable)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=OUT, help="worlds and results (default bench/out/)")
    parser.add_argument(
        "--child", nargs=4, metavar=("MODE", "NATIONAL_URL", "PROVINCIAL_URL", "DATA_DIR")
    )
    args = parser.parse_args()
    if args.child:
        mode, national_url, provincial_url, data_dir = args.child
        print(json.dumps(run_pass(mode, national_url, provincial_url, data_dir)))
        return 0
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for persons in args.persons or [100_000, 1_000_000]:
        results.extend(bench_world(persons, args.seed, out))
    markdown = table(results)
    (out / "pull.md").write_text(markdown + "\n", encoding="utf-8")
    (out / "pull.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(markdown)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    sys.exit(main())
