"""The main job, end to end, on the built-in synthetic region: ``python -m rts_mapper_plugin demo``.

Generate the region, prepare the five years, start from the RTSs known in one subregion (as the
paper started from 300 known slumps of one area), then iterate: train (fine-tuning from the last
model), infer over the whole region setting aside what is known or reviewed, review the new
candidates, promote the accepted ones, until an iteration finds no new RTS. The reviewer is a
SIMULATION that decides from the synthetic truth: every output says so.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..core.defaults import DEVICE, ENCODER, MIN_AREA_M2
from ..core.model.evaluation import iou
from ..core.model.inference import InferConfig
from ..core.progress import Feedback
from ..core.project.loop import (
    IterationRecord,
    IterationSettings,
    add_positives,
    close_iteration,
    fine_tuning,
    record_iteration,
    start_iteration,
    table1_markdown,
    train_iteration,
    write_table1,
)
from ..core.project.store import MappingProject, RunRecord
from ..core.review.decisions import Decision, record_decision
from ..core.vectors import FeatureSet, read_features

SIMULATED_REVIEWER = "simulated-reviewer (synthetic truth)"
SIMULATION_NOTE = "SIMULATION: a simulated reviewer decided from the synthetic truth"


@dataclass
class DemoConfig:
    size: int = 2000
    seed: int = 7
    rts_per_km2: float = 3.0
    known_share: float = 0.35  # the west part of the region whose RTSs are known at the start
    encoder: str = ENCODER
    first_epochs: int = 5
    fine_tune_epochs: int = 6
    max_iterations: int = 6
    negatives_per_iteration: int = 3
    device: str = DEVICE


@dataclass
class DemoResult:
    out: Path
    project: Path
    iterations: list[dict] = field(default_factory=list)
    files: dict = field(default_factory=dict)


def simulated_review(
    project: MappingProject,
    run: RunRecord,
    truth: FeatureSet,
    matched: set[int],
    negatives_per_iteration: int,
) -> tuple[int, list[int]]:
    """Decide every candidate of ``run`` from the truth; returns (accepted, chosen negatives).

    A candidate is an RTS when it overlaps a truth slump by IoU > 0.2 or contains its centroid;
    its boundary is then "edited" to the truth outline (a careful reviewer would). A second
    candidate on a slump already accepted is rejected as a duplicate and never used as a negative.
    """
    from shapely.strtree import STRtree

    tree = STRtree(truth.geometries)
    candidates = project.features("candidates", "run_id = ?", (run.run_id,))
    accepted, false_positives = 0, []
    for geometry, attributes in zip(candidates.geometries, candidates.attributes):
        best = truth_match(geometry, truth, tree)
        hit = best is not None
        if hit and best not in matched:
            matched.add(best)
            outline = truth.geometries[best]
            decision = Decision(
                attributes["fid"],
                SIMULATED_REVIEWER,
                "accepted",
                probability=90,
                initiation_period=truth.attributes[best].get("initiation_period"),
                criteria={
                    "headwall_highest": True,
                    "colour_contrast": True,
                    "arcuate_shaded_headwall": True,
                    "upslope_retreat": True,
                },
                note=SIMULATION_NOTE,
                seconds_spent=6.0,
                geometry=outline,
                edited=iou(geometry, outline) < 0.95,
            )
            accepted += 1
        else:
            decision = Decision(
                attributes["fid"],
                SIMULATED_REVIEWER,
                "rejected",
                probability=5 if not hit else 60,
                note=SIMULATION_NOTE + ("; duplicate of an accepted slump" if hit else ""),
                seconds_spent=3.0,
            )
            if not hit:
                false_positives.append((attributes["mean_prob"] or 0.0, attributes["fid"]))
        record_decision(project, decision)
    negatives = [fid for _, fid in sorted(false_positives, reverse=True)[:negatives_per_iteration]]
    return accepted, negatives


def truth_match(geometry, truth: FeatureSet, tree) -> int | None:
    """The truth slump a candidate finds (IoU > 0.2 or its centroid inside), or None; ``tree``:
    an STRtree of the truth's geometries."""
    best, best_iou = None, 0.0
    for j in tree.query(geometry, predicate="intersects"):
        value = iou(geometry, truth.geometries[int(j)])
        if value > best_iou or truth.geometries[int(j)].centroid.within(geometry):
            best, best_iou = int(j), max(value, best_iou)
    if best is not None and (best_iou > 0.2 or truth.geometries[best].centroid.within(geometry)):
        return best
    return None


def recall(project: MappingProject, truth: FeatureSet) -> float:
    """Share of the truth slumps that some confirmed RTS overlaps."""
    positives = project.features("training_positives").geometries
    found = sum(1 for t in truth.geometries if any(t.intersects(p) and iou(t, p) > 0.3 for p in positives))
    return found / len(truth) if len(truth) else 0.0


def run_loop(
    project: MappingProject,
    truth: FeatureSet,
    settings: Callable[[int], IterationSettings],
    config: DemoConfig,
    log: Callable[[str], None] = print,
    train=train_iteration,
) -> list[IterationRecord]:
    """Iterate until an iteration finds no new RTS (or ``max_iterations``): the same
    :func:`start_iteration` / :func:`close_iteration` as the plugin's "Next iteration", with the
    simulated reviewer in between. ``settings(iteration)`` says how to train and infer.
    """
    records = []
    matched: set[int] = set()
    # truth slumps already known (the initial positives) count as matched
    for index, outline in enumerate(truth.geometries):
        if any(
            outline.intersects(p) and iou(outline, p) > 0.5
            for p in project.features("training_positives").geometries
        ):
            matched.add(index)
    for iteration in range(1, config.max_iterations + 1):
        start_iteration(project, settings(iteration), train=train)
        run = project.runs()[-1]
        _accepted, negatives = simulated_review(project, run, truth, matched, config.negatives_per_iteration)
        record = close_iteration(project, iteration, negatives, simulated=True)
        record.notes = f"recall vs synthetic truth {recall(project, truth):.2f}; {SIMULATION_NOTE}"
        record_iteration(project, record)
        records.append(record)
        log(
            f"iteration {iteration}: {record.inferred} candidates, {record.set_aside_known} set aside as known, "
            f"{record.newly_found} new RTSs (total {record.total_rts}), {record.notes.split(';')[0]}"
        )
        if record.newly_found == 0:
            break
    return records


def run_demo(
    out: str | Path, config: DemoConfig | None = None, log: Callable[[str], None] = print
) -> DemoResult:
    """The whole demo into ``out`` (see the module docstring)."""
    from ..core.analysis.inventory import (
        InventoryMetadata,
        build_inventory,
        export_inventory,
        inventory_summary,
    )
    from ..core.defaults import NEAR_ROAD_M
    from ..core.review.timelapse import export_timelapses
    from .synthetic import RegionConfig, generate_region

    config = config or DemoConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    willow = (
        Path(__file__).resolve().parents[3]
        / "shared"
        / "data"
        / "real"
        / "willow_river"
        / "Willow_River_Thaw_Slumps.shp"
    )
    started = time.monotonic()
    log(f"1/5 generating the synthetic region ({config.size} x {config.size} px at 3 m)...")
    region = generate_region(
        out / "region",
        RegionConfig(
            size=config.size,
            seed=config.seed,
            rts_per_km2=config.rts_per_km2,
            shapes_path=str(willow) if willow.exists() else None,
        ),
    )
    log("2/5 preparing the five yearly mosaics...")
    project = prepare_region_project(region, out / "project")
    main_year = region.config.main_year
    image = out / "project" / "imagery" / f"{main_year}.tif"
    truth = read_features(region.truth_uri("rts")).to_crs(project.crs)
    minx, _, maxx, _ = region_bounds(region)
    west = minx + config.known_share * (maxx - minx)
    known = [i for i, g in enumerate(truth.geometries) if g.centroid.x < west]
    add_positives(
        project,
        FeatureSet([truth.geometries[i] for i in known], [truth.attributes[i] for i in known], project.crs),
        iteration=0,
        source="initial: known slumps of the western subregion",
    )
    log(
        f"3/5 starting from the {len(known)} RTSs known in the western {config.known_share:.0%} of the region "
        f"(recall vs synthetic truth {recall(project, truth):.2f})"
    )

    def settings(iteration: int) -> IterationSettings:
        first = iteration == 1
        return IterationSettings(
            image=str(image),
            year=main_year,
            train=fine_tuning(
                encoder=config.encoder,
                epochs=config.first_epochs if first else config.fine_tune_epochs,
                learning_rate=1e-3 if first else 5e-4,
                device=config.device,
            ),
            infer=InferConfig(device=config.device, min_area_m2=MIN_AREA_M2),
        )

    log("4/5 iterating: train, infer, review (simulated), promote")
    records = run_loop(project, truth, settings, config, log)
    log(
        "5/5 writing Table 1, the inventory, the time-lapse strips, the distribution report, the QGIS project..."
    )
    files = {}
    write_table1(project, out / "table1.csv", out / "table1.md")
    files["table1"] = [str(out / "table1.csv"), str(out / "table1.md")]
    metadata = InventoryMetadata(
        region_name="Synthetic Beiluhe-like region (SIMULATION)",
        creator_lab="RTS Mapper demo",
        base_map_date=f"{main_year}-07-15,{main_year}-08-15",
        base_map_source="PlanetScope (synthetic)",
        notes=SIMULATION_NOTE,
    )
    roads = read_features(region.roads)
    inventory = build_inventory(project, roads=roads, metadata=metadata)
    summary = inventory_summary(inventory, [y.year for y in project.years()])
    summary["simulation"] = SIMULATION_NOTE
    files["inventory"] = [
        str(export_inventory(inventory, out / "inventory" / f"rts_inventory.{ext}", summary))
        for ext in ("gpkg", "geojson", "shp")
    ]
    files["timelapse"] = str(out / "timelapse")
    export_timelapses(project, out / "timelapse", statuses=("accepted",), feedback=Feedback())
    from ..core.analysis.distribution import AnalysisConfig, analyze

    analysis = analyze(
        AnalysisConfig(
            inventory=files["inventory"][0],
            dem=str(region.dem),
            out=str(out / "analysis"),
            vegetation=str(region.vegetation),
            soil=str(region.soil),
            title="RTS distribution, synthetic demo region (SIMULATION)",
        )
    )
    files["analysis"] = str(analysis.report)
    (out / "summary.json").write_text(
        json.dumps({"table1": [r.__dict__ for r in records], "inventory": summary}, indent=2, default=str),
        encoding="utf-8",
    )
    log("")
    log(table1_markdown(project))
    log(
        f"inventory: {summary['count']} RTSs, {summary['total_area_ha']} ha "
        f"(largest {summary['largest_ha']} ha, {summary['share_under_10_ha']:.0%} under 10 ha), "
        f"{len(summary['near_road'])} within {NEAR_ROAD_M:g} m of the road / railway"
    )
    log(f"distribution report ({len(analysis.figures)} figures): {analysis.report}")
    log(f"done in {(time.monotonic() - started) / 60:.1f} min; everything is in {out}")
    return DemoResult(out, project.path, [r.__dict__ for r in records], files)


def prepare_region_project(region, folder: str | Path) -> MappingProject:
    """A fresh project in ``folder`` with the synthetic region's five years prepared and registered
    (``imagery/<year>.tif``, project ``rts_project.gpkg``)."""
    from ..core.imagery.prepare import prepare_and_register

    folder = Path(folder)
    project_path = folder / "rts_project.gpkg"
    project_path.unlink(missing_ok=True)
    for year, scenes in region.scenes.items():
        prepare_and_register(
            scenes,
            folder / "imagery" / f"{year}.tif",
            year=year,
            project_path=project_path,
            sensor="PlanetScope (synthetic)",
            dates=(f"{year}-07-15", f"{year}-08-15"),
        )
    return MappingProject.open(project_path)


def region_bounds(region) -> tuple[float, float, float, float]:
    """The synthetic region's (minx, miny, maxx, maxy) in its CRS."""
    x0, y0 = region.config.origin
    side = region.config.size * region.config.pixel_m
    return x0, y0 - side, x0 + side, y0
