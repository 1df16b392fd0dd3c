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


def _cmd_prepare(args: argparse.Namespace) -> int:
    from .core.imagery import prepare_and_register

    dates = tuple(([*args.dates.split(","), ""])[:2]) if args.dates else ("", "")
    result = prepare_and_register(
        args.sources,
        args.out,
        year=args.year,
        project_path=args.project,
        sensor=args.sensor,
        dates=dates,
        bands=args.bands,
        percentiles=args.percentiles,
        feedback=_console_feedback(args),
    )
    low = ", ".join(f"{v:g}" for v in result.stretch.low)
    high = ", ".join(f"{v:g}" for v in result.stretch.high)
    print(
        f"{result.path}: {result.width} x {result.height} px, {result.crs}, 8-bit RGB "
        f"(bands R,G,B = {result.bands.red},{result.bands.green},{result.bands.blue}: {result.bands.reason}; "
        f"stretch {low} .. {high}) in {result.seconds:.1f} s"
    )
    if args.project is not None:
        print(f"registered as {args.year} in {args.project}")
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from .core.synthetic import RegionConfig, generate_region, render_preview

    config = RegionConfig(size=args.size, seed=args.seed, shapes_path=args.shapes)
    region = generate_region(args.out, config, feedback=_console_feedback(args))
    preview = render_preview(region)
    summary = region.summary
    print(
        f"{region.folder}: {config.size} x {config.size} px at {config.pixel_m:g} m ({summary['extent_km2']} km²), "
        f"{summary['rts_main_year']} RTSs in {config.main_year}, look-alikes {summary['lookalikes']}; "
        f"preview {preview}"
    )
    return 0


def _console_feedback(args: argparse.Namespace):
    """Progress on stderr when --verbose; Ctrl+C cancels (the job cleans up after itself)."""
    from .core.progress import Feedback

    if not getattr(args, "verbose", False):
        return Feedback()
    state = {"last": -1}

    def progress(fraction: float) -> None:
        percent = int(fraction * 100)
        if percent // 5 != state["last"] // 5:
            print(f"  {percent:3d} %", file=sys.stderr)
        state["last"] = percent

    return Feedback(progress=progress)


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

    prepare = commands.add_parser(
        "prepare", help="scene(s) of one year -> 8-bit RGB GeoTIFF (several scenes: a mosaic, first on top)"
    )
    prepare.add_argument("sources", nargs="+", metavar="SRC", help="input raster(s), highest priority first")
    prepare.add_argument("--out", required=True, help="output GeoTIFF")
    prepare.add_argument("--bands", default="auto", help="auto, or R,G,B as 1-based band numbers")
    prepare.add_argument("--percentiles", default=None, help="stretch limits LO,HI (default 2,98)")
    prepare.add_argument("--year", type=int, default=None, help="register the output as this year ...")
    prepare.add_argument("--project", default=None, help="... in this mapping project GeoPackage")
    prepare.add_argument("--sensor", default="PlanetScope", help="sensor recorded with the year")
    prepare.add_argument("--dates", default=None, help="acquisition date range START,END (ISO dates)")
    prepare.set_defaults(func=_cmd_prepare)

    synth = commands.add_parser("synth", help="generate the synthetic demo region (seeded)")
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--size", type=int, default=2000, help="pixels per side (3 m pixels)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument(
        "--shapes", default=None, help="polygon file of real RTS outlines to borrow shapes from"
    )
    synth.set_defaults(func=_cmd_synth)

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
    if not args.verbose:  # GDAL's notes on odd TIFF tags are not the user's problem
        logging.getLogger("rasterio").setLevel(logging.ERROR)
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
