"""Command-line face over the core: ``python -m rts_mapper_plugin COMMAND ...`` (no QGIS needed).

The command names and flags are a contract that outside checks rely on (see DESIGN.md). On bad
input a command prints one line naming the file and the problem and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .__about__ import __version__
from .core.errors import Cancelled, RtsMapperError

EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 130
CLUSTER_HELP = (
    "run on a Dask cluster: local:N (N worker processes on this machine) or a scheduler address "
    "(tcp://host:8786; --scheduler is the same option); inputs must be at a path (or a /vsicurl/ "
    "URL) every worker sees"
)

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
    from .core.imagery.prepare import prepare_and_register

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
        masks=args.mask or None,
        cluster=args.cluster,
        announce=_announce_dashboard,
    )
    low = ", ".join(f"{v:g}" for v in result.stretch.low)
    high = ", ".join(f"{v:g}" for v in result.stretch.high)
    print(
        f"{result.path}: {result.width} x {result.height} px, {result.crs}, 8-bit RGB "
        f"(bands R,G,B = {result.bands.red},{result.bands.green},{result.bands.blue}: {result.bands.reason}; "
        f"stretch {low} .. {high}) in {result.seconds:.1f} s"
    )
    for note in result.notes:
        print(f"  {note}")
    if args.project is not None:
        dated = (
            f", acquired {result.date_start}..{result.date_end}"
            if result.date_start and not args.dates
            else ""
        )
        print(f"registered as {args.year} in {args.project}{dated}")
    return 0


def _cmd_chips(args: argparse.Namespace) -> int:
    from .core.model.chips import make_chips

    chip_set = make_chips(
        args.image,
        args.positives,
        args.negatives,
        args.out,
        size=args.size,
        buffer_m=args.buffer,
        val_fraction=args.val_fraction,
        seed=args.seed,
        feedback=_console_feedback(args),
    )
    summary = chip_set.summary()
    print(
        f"{args.out}: {summary['chips']} chips ({summary['train_chips']} train, {summary['val_chips']} validation, "
        f"{summary['excluded_chips']} buffer) from {summary['positives']} RTS and {summary['negatives']} non-RTS "
        f"polygons; skipped {summary['skipped_nodata']} mostly nodata, {summary['skipped_outside']} outside the image"
    )
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .core.model.training import TrainConfig, train_model
    from .core.model.weights import fetch_imagenet_weights, is_imagenet

    if is_imagenet(args.weights) and not args.init_model:
        fetch_imagenet_weights(args.encoder)  # before the chips are read: offline fails at once
    config = TrainConfig(
        encoder=args.encoder,
        epochs=args.epochs,
        batch_size=args.batch_size,
        crop_size=args.crop_size,
        crops_per_chip=args.crops_per_chip,
        learning_rate=args.lr,
        precision=args.precision,
        patience=args.patience,
        seed=args.seed,
        device=args.device,
        imagenet_weights=args.weights,
        init_model=args.init_model,
        tile_size=args.tile_size,
        overlap=args.overlap,
    )

    def on_epoch(entry: dict) -> None:
        if entry["val_iou"] is None:
            scores = "no validation chips"
        else:
            scores = (
                f"validation F1 {entry['val_f1']:.3f} (P {entry['val_precision']:.2f} R {entry['val_recall']:.2f} "
                f"at {entry['val_threshold']:.2f}, {entry['val_min_area_m2']:.0f} m²), IoU {entry['val_iou']:.3f}"
            )
        print(
            f"epoch {entry['epoch']:3d}: loss {entry['train_loss']:.4f}, {scores}, "
            f"{entry['seconds']:.1f} s ({entry['seconds_per_step']:.2f} s/step){' *' if entry['improved'] else ''}",
            flush=True,
        )

    result = train_model(
        args.chips,
        args.out,
        config,
        feedback=_console_feedback(args),
        on_epoch=on_epoch,
        resume=args.resume,
        on_estimate=lambda estimate: print(f"expected: {estimate.describe()}", flush=True),
    )
    card = result.card
    iou = (
        "no validation chips"
        if result.best_val_iou is None
        else f"validation F1 {result.best_val_f1:.3f} at IoU 0.5, pixel IoU {result.best_val_iou:.3f}; "
        f"calibrated threshold {card.threshold:.2f}, minimum area {card.min_area_m2:.0f} m²"
    )
    print(
        f"{result.model_path}: best epoch {result.best_epoch} ({iou}), {result.epochs_run} epochs on "
        f"{result.device} in {result.seconds:.0f} s" + (" (early stop)" if result.stopped_early else "")
    )
    return 0


def _cmd_infer(args: argparse.Namespace) -> int:
    from .core.model.distributed import on_cluster
    from .core.model.inference import InferConfig, infer_to_file

    extent = tuple(float(v) for v in args.extent.split(",")) if args.extent else None
    if extent is not None and len(extent) != 4:
        raise RtsMapperError("--extent wants minx,miny,maxx,maxy in the image's CRS")
    config = InferConfig(
        device=args.device,
        backend=args.backend,
        threshold=args.threshold,
        min_area_m2=args.min_area,
        tta=args.tta,
        batch_size=args.batch_size,
    )
    result = infer_to_file(
        args.model,
        args.image,
        args.out,
        config,
        prob_out=args.prob,
        extent=extent,
        known=args.known,
        feedback=_console_feedback(args),
        year=args.year,
        iteration=args.iteration,
        predict=on_cluster(args.cluster, _announce_dashboard) if args.cluster else None,
    )
    print(
        f"{args.out}: {len(result.candidates)} candidates ({result.set_aside_known} set aside as already known) "
        f"over {result.area_km2:.2f} km² in {result.seconds:.1f} s ({result.km2_per_minute:.1f} km²/min, "
        f"{result.tiles} tiles, {result.skipped_tiles} empty skipped, {result.device}, batch {result.batch_size})"
    )
    for note in result.notes:
        print(f"note: {note}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .core.model.evaluation import evaluate_files

    print(json.dumps(evaluate_files(args.pred, args.truth, args.iou).as_dict(), indent=2))
    return 0


def _cmd_agreement(args: argparse.Namespace) -> int:
    from .core.review.agreement import agreement_files

    report = agreement_files(args.layers, args.iou, area=args.area, cell_m=args.cell)
    print(json.dumps(report, indent=2))
    return 0


def _cmd_review_agreement(args: argparse.Namespace) -> int:
    from .core.project.store import MappingProject
    from .core.review.agreement import decision_agreement
    from .core.review.decisions import decisions_of, reviewed_boundaries

    project = MappingProject.open(args.project)
    result = decision_agreement(decisions_of(project), reviewed_boundaries(project))
    print(json.dumps(result.as_dict(), indent=2))
    return 0


def _cmd_timelapse(args: argparse.Namespace) -> int:
    from .core.project.store import MappingProject
    from .core.review.timelapse import export_timelapses

    project = MappingProject.open(args.project)
    ids = [int(i) for i in args.ids.split(",")] if args.ids else None
    written = export_timelapses(
        project,
        args.out,
        candidate_ids=ids,
        statuses=tuple(args.status.split(",")) if args.status else None,
        strip=args.format in ("png", "both"),
        gif=args.format in ("gif", "both"),
        size_px=args.size,
        feedback=_console_feedback(args),
    )
    print(f"{len(written)} files written to {args.out}")
    return 0


def _cmd_analyze(args: argparse.Namespace) -> int:
    from .core.analysis.distribution import AnalysisConfig, analyze

    result = analyze(
        AnalysisConfig(
            inventory=args.inventory,
            dem=args.dem,
            out=args.out,
            vegetation=args.vegetation,
            vegetation_field=args.vegetation_field,
            soil=args.soil,
            soil_field=args.soil_field,
            streams=args.streams,
            study_area=args.study_area,
            stream_threshold_km2=args.stream_threshold,
            adjacent_m=args.adjacent,
            cell_sizes_km=tuple(float(v) for v in args.cells.split(",")),
            transmittance=args.transmittance,
            title=args.title,
        ),
        _console_feedback(args),
    )
    for warning in result.warnings:
        print(f"note: {warning}")
    summary = result.summary
    distributions = summary["distributions"]
    print(
        f"{summary['rts_count']} RTSs: mean elevation {distributions['elevation']['rts_mean']} m "
        f"(landscape {distributions['elevation']['landscape_mean']}), slope {distributions['slope']['rts_mean']}° "
        f"({distributions['slope']['landscape_mean']}), PISR {distributions['pisr']['rts_mean']} kWh/m² "
        f"({distributions['pisr']['landscape_mean']}), {summary['near_stream']} within {args.adjacent:g} m of a stream"
    )
    print(f"{len(result.figures)} figures (PNG and SVG) in {result.out / 'figures'}")
    print(f"report: {result.report}")
    return 0


def _cmd_arts(args: argparse.Namespace) -> int:
    from .core.analysis.inventory import arts_contribution, export_arts, metadata_for
    from .core.project.store import MappingProject

    project = MappingProject.open(args.project)
    metadata = metadata_for(
        project,
        args.region,
        args.creator,
        base_map_date=args.base_map_date,
        base_map_source=args.base_map_source,
        base_map_resolution_m=args.resolution,
        notes=args.notes,
    )
    contribution = arts_contribution(project, metadata, main=args.main, negatives=not args.no_negatives)
    out = export_arts(contribution, args.out)
    classes = [a["TrainClass"] for a in contribution.attributes]
    overlapping = sum(1 for a in contribution.attributes if a["Intersections"] or a["SelfIntersections"])
    print(
        f"{classes.count('Positive')} RTSs and {classes.count('Negative')} non-RTSs written to {out}; "
        f"{overlapping} overlap others" + (f" (relationships to {args.main} filled in)" if args.main else "")
    )
    return 0


def _cmd_export_onnx(args: argparse.Namespace) -> int:
    from .core.model.onnx_export import export_onnx

    out = export_onnx(args.model, args.out)
    print(f"{out}: ONNX for the Deepness plugin and onnxruntime (0-1 RGB in, RTS probability out)")
    return 0


def _cmd_model_info(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from .core.model.onnx_model import read_model_card

    print(json.dumps(asdict(read_model_card(args.model)), indent=2))
    return 0


def _cmd_field_export(args: argparse.Namespace) -> int:
    from .core.defaults import NEAR_ROAD_M
    from .core.project.store import MappingProject
    from .core.review.decisions import review_queue
    from .core.review.field_package import export_field_package
    from .core.vectors import read_features

    project = MappingProject.open(args.project)
    roads = read_features(args.roads) if args.roads else None
    within = (args.within if args.within is not None else NEAR_ROAD_M) if roads is not None else None
    statuses = None if args.status == "all" else (args.status,)
    queue = review_queue(
        project, order="road" if roads else "id", roads=roads, statuses=statuses, near_road_m=within
    )
    package = export_field_package(project, args.out, [item.fid for item in queue], args.reviewer)
    print(f"{package.folder}: {package.candidates} candidates for {args.reviewer}, years {package.years}")
    try:
        from .qgis_layers.field_project import write_field_project
    except ImportError:
        print("note: QGIS's Python bindings are not importable here: no field.qgz (QField project) written")
        return 0
    print(f"{write_field_project(package.folder)}: the QGIS / QField project with the review form")
    return 0


def _cmd_field_merge(args: argparse.Namespace) -> int:
    from .core.project.store import MappingProject
    from .core.review.field_package import merge_field_package

    result = merge_field_package(MappingProject.open(args.project), args.package)
    print(f"{args.package}: {result.summary()}")
    for conflict in result.conflicts:
        print(
            f"conflict: candidate {conflict['candidate_id']}, {conflict['reviewer']}: "
            f"{conflict['desk']} at the desk, {conflict['field']} in the field (the desk's kept)"
        )
    return 0


def _cmd_packages(args: argparse.Namespace) -> int:
    from .core import install

    profile = install.PROFILES.get(args.profile)
    if profile is None:
        raise RtsMapperError(f"no profile {args.profile!r}: choose one of {', '.join(install.PROFILES)}")
    folder = Path(args.folder) if args.folder else None
    if args.action != "status" and folder is None:
        raise RtsMapperError(f"`packages {args.action}` needs --folder")
    if args.action == "uninstall":
        install.uninstall(folder)
        print(f"{folder}: removed")
        return 0
    if args.action == "install":
        install.install_profile(profile, folder, Path(args.wheels) if args.wheels else None, sys.executable)
    if folder is not None:
        install.activate(folder)
    for state in install.status(profile, folder):
        where = f" ({state.where})" if state.version else ""
        print(f"{state.requirement:32} {state.version or 'missing'}{where}")
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from .example.synthetic import RegionConfig, generate_region, render_preview

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
    """Progress of a long command on stderr; Ctrl+C cancels (the job cleans up after itself).

    On a terminal, a bar with the time spent and the time left (tqdm, when installed); otherwise
    (a log file, a pipe, a scheduler) a plain line every 10 %, so logs stay readable.
    """
    from .core.progress import Feedback

    progress = ConsoleProgress(args.command, sys.stderr)
    _OPEN_PROGRESS.append(progress)
    return Feedback(progress=progress.update, status=progress.status)


def _announce_dashboard(link: str) -> None:
    print(f"Dask dashboard: {link}", file=sys.stderr, flush=True)


class ConsoleProgress:
    """A progress bar with ETA on a TTY, plain lines when not; nothing printed before the first
    step past 0 (a command refused at once prints its one error line alone)."""

    LINE_STEP = 10  # percent between plain lines

    def __init__(self, label: str, stream, clock: Callable[[], float] | None = None) -> None:
        import time

        self.label, self.stream = label, stream
        self.clock = clock or time.monotonic
        self.started = self.clock()
        self.bar = None
        self.last_line = 0
        self.tty = bool(getattr(stream, "isatty", lambda: False)())

    def update(self, fraction: float) -> None:
        percent = 100.0 * fraction
        if percent <= 0:
            return
        if self.tty and self._bar() is not None:
            self.bar.n = round(percent, 1)
            self.bar.refresh()
            if percent >= 100:
                self.close()
            return
        step = int(percent // self.LINE_STEP) * self.LINE_STEP
        if step > self.last_line:
            self.last_line = step
            elapsed = self.clock() - self.started
            left = elapsed * (100 - percent) / percent
            print(
                f"{self.label}: {step:3d} % ({_duration(elapsed)} spent, about {_duration(left)} left)",
                file=self.stream,
                flush=True,
            )

    def status(self, text: str) -> None:
        """Live figures beside the bar (a line of their own when not on a terminal)."""
        if self.tty and self._bar() is not None:
            self.bar.set_postfix_str(text, refresh=True)
            return
        print(f"{self.label}: {text}", file=self.stream, flush=True)

    def _bar(self):
        if self.bar is None:
            try:
                from tqdm import tqdm
            except ImportError:  # a field laptop without the deep-learning packages
                self.tty = False
                return None
            self.bar = tqdm(
                total=100,
                desc=self.label,
                file=self.stream,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed} spent, {remaining} left{postfix}",
                dynamic_ncols=True,
            )
        return self.bar

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


_OPEN_PROGRESS: list[ConsoleProgress] = []


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _cmd_demo(args: argparse.Namespace) -> int:
    from .example.demo import DemoConfig, run_demo

    config = DemoConfig(size=args.size, max_iterations=args.max_iterations)
    result = run_demo(args.out, config)
    try:
        from .qgis_layers.project_file import write_qgis_project
    except ImportError:
        print("note: QGIS's Python bindings are not importable here: no QGIS project file written")
        return 0
    region = Path(args.out) / "region"
    qgz = write_qgis_project(
        result.project,
        Path(args.out) / "rts_mapper_demo.qgz",
        {
            "Roads and railway": str(region / "roads.gpkg"),
            "Synthetic truth (SIMULATION)": f"{region / 'truth.gpkg'}|layername=rts",
        },
        hidden=("Synthetic truth (SIMULATION)",),
        extra_rasters={
            "DEM (30 m)": str(region / "dem.tif"),
            "Vegetation": str(region / "vegetation.tif"),
            "Soil texture": str(region / "soil.tif"),
        },
    )
    print(f"QGIS project: {qgz} (open it in QGIS: every layer styled)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rts_mapper_plugin",
        description="RTS Mapper: map retrogressive thaw slumps with DeepLabv3+ and human review.",
    )
    parser.add_argument("--version", action="version", version=f"RTS Mapper {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from .core.defaults import (
        BACKEND,
        BACKENDS,
        BANDS,
        BASE_MAP_RESOLUTION_M,
        CHIP_BUFFER_M,
        CHIP_SIZE,
        DEVICE,
        DEVICES,
        TTA_VIEWS,
    )
    from .core.model.train_config import PRECISIONS, TrainConfig

    env = commands.add_parser("env", help="report versions, CUDA and missing packages")
    env.add_argument("--json", action="store_true", help="print JSON")
    env.set_defaults(func=_cmd_env)

    prepare = commands.add_parser(
        "prepare",
        help="scene(s) of one year -> 8-bit RGB GeoTIFF (several scenes: a mosaic taking each pixel from the first scene usable there)",
    )
    prepare.add_argument("sources", nargs="+", metavar="SRC", help="input raster(s), highest priority first")
    prepare.add_argument("--out", required=True, help="output GeoTIFF")
    prepare.add_argument("--bands", default=BANDS, help="auto, or R,G,B as 1-based band numbers")
    prepare.add_argument("--percentiles", default=None, help="stretch limits LO,HI (default 2,98)")
    prepare.add_argument("--year", type=int, default=None, help="register the output as this year ...")
    prepare.add_argument("--project", default=None, help="... in this mapping project GeoPackage")
    prepare.add_argument(
        "--sensor",
        default=None,
        help="sensor recorded with the year (default: from the scenes' metadata)",
    )
    prepare.add_argument(
        "--dates",
        default=None,
        help="acquisition date range START,END (ISO dates; default: the scenes' own metadata)",
    )
    prepare.add_argument(
        "--mask",
        action="append",
        metavar="FILE|auto|none",
        help="usable-data mask (Planet UDM2, Sentinel-2 SCL) of each SRC in order, when not found "
        "beside it by name (auto, the default) or to use none",
    )
    prepare.add_argument("--cluster", "--scheduler", dest="cluster", default=None, help=CLUSTER_HELP)
    prepare.set_defaults(func=_cmd_prepare)

    chips = commands.add_parser("chips", help="cut training chips around RTS and non-RTS polygons")
    chips.add_argument("--image", required=True, nargs="+", help="prepared 8-bit RGB image(s)")
    chips.add_argument("--positives", required=True, help="RTS polygons (file or file|layername=x)")
    chips.add_argument("--negatives", default=None, help="non-RTS polygons (representative false positives)")
    chips.add_argument("--out", required=True, help="chip folder (replaced)")
    chips.add_argument("--size", type=int, default=CHIP_SIZE, help="smallest chip side in pixels")
    chips.add_argument("--buffer", type=float, default=CHIP_BUFFER_M, help="metres around each polygon")
    chips.add_argument("--val-fraction", type=float, default=0.2)
    chips.add_argument("--seed", type=int, default=0)
    chips.set_defaults(func=_cmd_chips)

    defaults = TrainConfig()  # the recipe's defaults are said once, in TrainConfig
    train = commands.add_parser("train", help="train or fine-tune DeepLabv3+ on chips")
    train.add_argument("--chips", required=True, help="chip folder made by `chips`")
    train.add_argument("--out", required=True, help="model file to write (.safetensors)")
    train.add_argument("--encoder", default=defaults.encoder)
    train.add_argument("--epochs", type=int, default=defaults.epochs)
    train.add_argument(
        "--weights",
        default=None,
        help="encoder start: `imagenet` (segmentation-models-pytorch's ImageNet weights, downloaded "
        "into the Hugging Face cache once, then reused), or a local weights FILE (.safetensors, .pth)",
    )
    train.add_argument("--init-model", default=None, help="fine-tune from this model file")
    train.add_argument("--batch-size", type=int, default=defaults.batch_size)
    train.add_argument("--crop-size", type=int, default=defaults.crop_size)
    train.add_argument(
        "--crops-per-chip", type=int, default=defaults.crops_per_chip, help="crops per chip per epoch"
    )
    train.add_argument("--lr", type=float, default=defaults.learning_rate)
    train.add_argument("--patience", type=int, default=defaults.patience)
    train.add_argument("--device", default=defaults.device, help=", ".join(DEVICES))
    train.add_argument(
        "--precision",
        default=defaults.precision,
        choices=PRECISIONS,
        help="auto: bfloat16 where the processor computes it natively, else float32",
    )
    train.add_argument(
        "--tile-size", type=int, default=defaults.tile_size, help="inference tile size written to the card"
    )
    train.add_argument(
        "--overlap", type=int, default=defaults.overlap, help="inference overlap written to the card"
    )
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint next to --out")
    train.set_defaults(func=_cmd_train)

    infer = commands.add_parser("infer", help="tiled inference over an image -> candidate polygons")
    infer.add_argument(
        "--model",
        required=True,
        help="an RTS Mapper model (.safetensors) or an ONNX model with Deepness metadata",
    )
    infer.add_argument("--image", required=True, help="prepared 8-bit RGB image")
    infer.add_argument("--out", required=True, help="candidates GeoPackage to write")
    infer.add_argument("--prob", default=None, help="also keep the probability GeoTIFF here")
    infer.add_argument("--known", default=None, help="confirmed RTS: candidates touching them are set aside")
    infer.add_argument("--threshold", type=float, default=None, help="default: the model card's")
    infer.add_argument(
        "--min-area",
        type=float,
        default=None,
        help="smallest candidate in m² (default: the model card's, calibrated in training)",
    )
    infer.add_argument("--extent", default=None, help="minx,miny,maxx,maxy in the image CRS")
    infer.add_argument("--device", default=DEVICE, help=", ".join(DEVICES))
    infer.add_argument(
        "--backend",
        default=BACKEND,
        choices=BACKENDS,
        help="what runs a .safetensors model: auto (onnxruntime on the CPU where installed, else torch)",
    )
    infer.add_argument(
        "--batch-size", type=int, default=None, help="tiles per pass (default: 1 on CPU, 8 on GPU)"
    )
    infer.add_argument(
        "--tta",
        type=int,
        default=1,
        choices=TTA_VIEWS,
        help="test-time ensemble: views (flips, rotations) averaged per tile; N views cost N times the model time",
    )
    infer.add_argument("--cluster", "--scheduler", dest="cluster", default=None, help=CLUSTER_HELP)
    infer.add_argument("--year", type=int, default=None, help="recorded on each candidate")
    infer.add_argument("--iteration", type=int, default=None, help="recorded on each candidate")
    infer.set_defaults(func=_cmd_infer)

    evaluate = commands.add_parser("evaluate", help="polygon-level precision / recall / F1 (prints JSON)")
    evaluate.add_argument("--pred", required=True)
    evaluate.add_argument("--truth", required=True)
    evaluate.add_argument("--iou", type=float, default=0.5)
    evaluate.set_defaults(func=_cmd_evaluate)

    agreement = commands.add_parser(
        "agreement", help="agreement between independently digitised polygon layers (prints JSON)"
    )
    agreement.add_argument("layers", nargs="+", metavar="LAYER", help="two or more polygon layers")
    agreement.add_argument("--iou", type=float, default=0.5, help="IoU for two polygons to match")
    agreement.add_argument("--area", default=None, help="polygon of the mapped area (for the cell kappa)")
    agreement.add_argument("--cell", type=float, default=2.0, help="cell size (m) of the cell-level kappa")
    agreement.set_defaults(func=_cmd_agreement)

    review_agreement = commands.add_parser(
        "review-agreement", help="agreement between reviewers' decisions in a project (prints JSON)"
    )
    review_agreement.add_argument("--project", required=True, help="the mapping project GeoPackage")
    review_agreement.set_defaults(func=_cmd_review_agreement)

    timelapse = commands.add_parser("timelapse", help="PNG strips / GIFs of candidates through the years")
    timelapse.add_argument("--project", required=True, help="the mapping project GeoPackage")
    timelapse.add_argument("--out", required=True, help="output folder")
    timelapse.add_argument("--ids", default=None, help="candidate ids, comma-separated")
    timelapse.add_argument("--status", default="accepted", help="statuses when no --ids (default: accepted)")
    timelapse.add_argument("--format", choices=("png", "gif", "both"), default="both")
    timelapse.add_argument("--size", type=int, default=192, help="pixels per year frame")
    timelapse.set_defaults(func=_cmd_timelapse)

    analysis = commands.add_parser(
        "analyze", help="terrain, PISR, streams, vegetation and soil around the inventory; density; report"
    )
    analysis.add_argument("--inventory", required=True, help="the RTS polygons (e.g. the exported inventory)")
    analysis.add_argument("--dem", required=True, help="a DEM (e.g. 30 m SRTM); reprojected if geographic")
    analysis.add_argument("--out", required=True, help="output folder (report.html, figures/, layers)")
    analysis.add_argument(
        "--vegetation", default=None, help="vegetation classes: a raster or a polygon layer"
    )
    analysis.add_argument(
        "--vegetation-field", default=None, help="the class field of a vegetation polygon layer"
    )
    analysis.add_argument("--soil", default=None, help="soil texture classes: a raster or a polygon layer")
    analysis.add_argument("--soil-field", default=None, help="the class field of a soil polygon layer")
    analysis.add_argument(
        "--streams", default=None, help="a stream line layer (default: derived from the DEM)"
    )
    analysis.add_argument("--study-area", default=None, help="polygon of the landscape (default: the DEM)")
    analysis.add_argument(
        "--stream-threshold", type=float, default=1.0, help="km² draining through a stream cell (default 1)"
    )
    analysis.add_argument("--adjacent", type=float, default=100.0, help="'adjacent to a stream' within m")
    analysis.add_argument("--cells", default="10,25", help="density grid cell sizes in km (default 10,25)")
    analysis.add_argument("--transmittance", type=float, default=0.7, help="clear-sky transmittance for PISR")
    analysis.add_argument("--title", default="RTS distribution", help="report title")
    analysis.set_defaults(func=_cmd_analyze)

    arts = commands.add_parser(
        "arts", help="the confirmed RTSs (and chosen non-RTSs) as a contribution to the ARTS data set"
    )
    arts.add_argument("project", help="the mapping project GeoPackage")
    arts.add_argument("out", help="the contribution (.geojson)")
    arts.add_argument("--region", required=True, help="RegionName")
    arts.add_argument("--creator", required=True, help="CreatorLab: who mapped, and their organisation")
    arts.add_argument(
        "--main", default=None, help="the ARTS main data set (.geojson): fill the relationships"
    )
    arts.add_argument(
        "--base-map-date", default="", help="YYYY-MM-DD[,YYYY-MM-DD] (default: the latest year's)"
    )
    arts.add_argument("--base-map-source", default="", help="the sensor (default: the latest year's)")
    arts.add_argument(
        "--resolution",
        type=float,
        default=BASE_MAP_RESOLUTION_M,
        help="BaseMapResolution in metres",
    )
    arts.add_argument("--notes", default="", help="Notes")
    arts.add_argument("--no-negatives", action="store_true", help="leave out the chosen non-RTSs")
    arts.set_defaults(func=_cmd_arts)

    onnx_export = commands.add_parser(
        "export-onnx", help="a model as ONNX with the metadata the Deepness plugin reads"
    )
    onnx_export.add_argument("model", help="an RTS Mapper model (.safetensors)")
    onnx_export.add_argument("out", help="the ONNX file to write")
    onnx_export.set_defaults(func=_cmd_export_onnx)

    info = commands.add_parser("model-info", help="print a model file's card (JSON)")
    info.add_argument("model")
    info.set_defaults(func=_cmd_model_info)

    field_export = commands.add_parser(
        "field-export", help="candidates to review in the field: a GeoPackage, clipped images, the form"
    )
    field_export.add_argument("project", help="the mapping project (GeoPackage)")
    field_export.add_argument("--out", required=True, help="the package folder to write")
    field_export.add_argument("--reviewer", required=True, help="who reviews in the field")
    field_export.add_argument("--roads", help="a road / railway layer: only candidates near it")
    field_export.add_argument("--within", type=float, default=None, help="metres from a road (with --roads)")
    field_export.add_argument("--status", default="pending", help="candidates of this status, or 'all'")
    field_export.set_defaults(func=_cmd_field_export)
    field_merge = commands.add_parser("field-merge", help="bring a field package's decisions back")
    field_merge.add_argument("project", help="the mapping project (GeoPackage)")
    field_merge.add_argument("package", help="the field package folder")
    field_merge.set_defaults(func=_cmd_field_merge)

    packages = commands.add_parser(
        "packages", help="install profiles (review, inference, full) into a folder of their own"
    )
    packages.add_argument("action", choices=("status", "install", "uninstall"))
    packages.add_argument("profile", nargs="?", default="full", help="review, inference or full")
    packages.add_argument("--folder", help="the packages folder (pip install --prefix FOLDER)")
    packages.add_argument("--wheels", help="a folder of wheels: install offline from it")
    packages.set_defaults(func=_cmd_packages)

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
    demo.add_argument("--size", type=int, default=2000, help="region pixels per side (3 m pixels)")
    demo.add_argument("--max-iterations", type=int, default=6)
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
    _gdal_messages_to_logging()
    command: Command = args.func
    try:
        return command(args)
    except RtsMapperError as exc:
        _close_progress()
        print("error: " + " ".join(str(exc).split()), file=sys.stderr)  # one line, whatever GDAL said
        return EXIT_BAD_INPUT
    except (Cancelled, KeyboardInterrupt):
        _close_progress()
        print("cancelled: nothing was left half-written", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:  # the reader went away (`model-info M | head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own advice
        return 0
    finally:
        _close_progress()


def _gdal_messages_to_logging() -> None:
    """GDAL's own warnings ("Warning 1: Non closed ring detected") to the log (shown with -v), not
    to the terminal beside the one line that says what is wrong; its errors become exceptions."""
    from osgeo import gdal

    log = logging.getLogger("gdal")

    def handler(level, number, message):
        if level >= gdal.CE_Failure:
            log.debug("GDAL error %s: %s", number, message)
        else:
            log.info("GDAL %s", message)

    gdal.PushErrorHandler(handler)


def _close_progress() -> None:
    """End any bar on its own line, so what follows (a result, an error) starts a new one."""
    while _OPEN_PROGRESS:
        _OPEN_PROGRESS.pop().close()


if __name__ == "__main__":
    sys.exit(main())
