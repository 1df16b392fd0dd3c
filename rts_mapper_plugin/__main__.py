"""Command-line face over the core: ``python -m rts_mapper_plugin COMMAND ...`` (no QGIS needed).

The command names and flags are a contract that outside checks rely on (see DESIGN.md). On bad
input a command prints one line naming the file and the problem and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence

from .__about__ import __version__
from .core.errors import Cancelled, RtsMapperError

EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 130

Command = Callable[[argparse.Namespace], int]


def _cmd_env(args: argparse.Namespace) -> int:
    from .core.environment import environment_report

    report = environment_report()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print("\n".join(report.lines()))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    # The end-to-end run on the synthetic region arrives with the iterative loop (issue 7);
    # until then the demo checks that the environment is ready for it.
    print("RTS Mapper demo: environment check (the end-to-end mapping run is not built yet)")
    args.json = False
    return _cmd_env(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rts_mapper_plugin",
        description="RTS Mapper: map retrogressive thaw slumps with DeepLabv3+ and human review.",
    )
    parser.add_argument("--version", action="version", version=f"RTS Mapper {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    env = commands.add_parser("env", help="report versions, CUDA and missing packages")
    env.add_argument("--json", action="store_true", help="print JSON")
    env.set_defaults(func=_cmd_env)

    demo = commands.add_parser("demo", help="run the main job on the built-in synthetic region")
    demo.add_argument("--out", required=True, help="output folder")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    command: Command = args.func
    try:
        return command(args)
    except RtsMapperError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (Cancelled, KeyboardInterrupt):
        print("cancelled: nothing was left half-written", file=sys.stderr)
        return EXIT_CANCELLED


if __name__ == "__main__":
    sys.exit(main())
