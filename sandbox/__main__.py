"""Command line of the sandbox: generate a world, serve it, apply a change set.

    python -m sandbox generate --persons N --seed S --out DIR [--hostile]
    python -m sandbox serve --persons N --seed S [--world DIR] [--national-port 8601]
                            [--provincial-port 8602] [--faults all|none] [--hostile]
    python -m sandbox changeset --world DIR --seed S

`--hostile` plants garbage rows among the normal ones (sandbox/hostile.py). `serve --hostile`
generates into data/sandbox/world-p<N>-s<S>-hostile when no --world is given, and refuses a
world that was generated without them.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from sandbox.harness import DEFAULT_NATIONAL_PORT, DEFAULT_PROVINCIAL_PORT


def default_world_dir(persons: int, seed: int, hostile: bool = False) -> Path:
    return Path("data") / "sandbox" / f"world-p{persons}-s{seed}{'-hostile' if hostile else ''}"


def world_exists(world_dir: Path) -> bool:
    return all((world_dir / name).exists() for name in ("national.sqlite", "provincial.sqlite"))


def world_is_hostile(world_dir: Path) -> bool:
    manifest = world_dir / "world.json"
    return manifest.exists() and "hostile" in json.loads(manifest.read_text(encoding="utf-8"))


def cmd_generate(args: argparse.Namespace) -> int:
    from sandbox.generator import generate_world

    out = generate_world(Path(args.out), persons=args.persons, seed=args.seed, hostile=args.hostile)
    print(f"world written to {out}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from sandbox.faults import Faults
    from sandbox.harness import SandboxServers

    world_dir = (
        Path(args.world) if args.world else default_world_dir(args.persons, args.seed, args.hostile)
    )
    if not world_exists(world_dir):
        from sandbox.generator import generate_world

        print(f"generating {args.persons} persons (seed {args.seed}) in {world_dir}", flush=True)
        generate_world(world_dir, persons=args.persons, seed=args.seed, hostile=args.hostile)
    elif args.hostile and not world_is_hostile(world_dir):
        print(f"{world_dir} has no hostile rows: generate one with --hostile", file=sys.stderr)
        return 2
    faults = Faults.all_on() if args.faults == "all" else Faults()
    servers = SandboxServers(
        world_dir,
        faults=faults,
        national_port=args.national_port,
        provincial_port=args.provincial_port,
        host=args.host,
        seed=args.seed,
    )
    servers.start()
    print(f"national   {servers.national_url}   (POST /_sandbox/faults to change faults)")
    print(f"provincial {servers.provincial_url}")
    print(f"world      {world_dir.resolve()}   faults: {json.dumps(faults.to_dict())}", flush=True)

    def stop(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        servers.wait()
    except KeyboardInterrupt:
        pass
    finally:
        servers.stop()
    return 0


def cmd_changeset(args: argparse.Namespace) -> int:
    from sandbox.changes import apply_changeset

    counts = apply_changeset(Path(args.world), seed=args.seed)
    print(json.dumps(counts, ensure_ascii=False, indent=2, default=str))
    return 0


HOSTILE_HELP = "plant garbage rows among the normal ones (sandbox/hostile.py)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="write a synthetic world to a folder")
    generate.add_argument("--persons", type=int, required=True)
    generate.add_argument("--seed", type=int, default=7)
    generate.add_argument("--out", required=True)
    generate.add_argument("--hostile", action="store_true", help=HOSTILE_HELP)
    generate.set_defaults(run=cmd_generate)

    serve = commands.add_parser("serve", help="serve a world (generated first if missing)")
    serve.add_argument("--persons", type=int, default=1000)
    serve.add_argument("--seed", type=int, default=7)
    serve.add_argument("--world", help="world folder (default data/sandbox/world-p<N>-s<S>)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--national-port", type=int, default=DEFAULT_NATIONAL_PORT)
    serve.add_argument("--provincial-port", type=int, default=DEFAULT_PROVINCIAL_PORT)
    serve.add_argument("--faults", choices=("all", "none"), default="none")
    serve.add_argument("--hostile", action="store_true", help=HOSTILE_HELP)
    serve.set_defaults(run=cmd_serve)

    changeset = commands.add_parser("changeset", help="apply a change set to a world")
    changeset.add_argument("--world", required=True)
    changeset.add_argument("--seed", type=int, default=1)
    changeset.set_defaults(run=cmd_changeset)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
