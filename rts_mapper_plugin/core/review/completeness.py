"""How many slumps are still unmapped: a stratified random sample of the places a run did not
flag, inspected by a reviewer, and a design-based estimate with a 95 % confidence interval (the
stratified estimator of a total, as in Olofsson et al. 2014, Remote Sens. Environ. 148).

The population is a grid of square plots (:data:`PLOT_M`) over the area the run covered (its
probability raster's valid pixels), less every plot that touches a candidate of the run or a
confirmed slump: the places the model did not flag. Plots are stratified by the highest
probability the model gave inside them (:data:`BANDS`: the faint traces below the threshold are
where missed slumps hide) and, optionally, by a landscape class raster (vegetation, slope
class...). A simple random sample is drawn in each stratum; the reviewer outlines in each plot
the slumps not yet mapped whose centre lies in it (or says there are none).

For stratum h with N_h plots, n_h answered and plot counts y: the total is Σ N_h ȳ_h, its
variance Σ N_h² (1 − n_h/N_h) s_h² / n_h, the interval ± 1.96 √V. A stratum whose answered plots
all hold nothing is given the variance of a sample with one find (s² = 1/n_h): a zero in a sample
is no proof of none, and the interval would otherwise collapse to [0, 0] however few plots were
looked at. The lower end is never below what the sample itself found. Area likewise, with the
mean area of the project's confirmed slumps standing in for a find where a stratum found none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from .. import gpkg
from ..errors import RtsMapperError
from ..project.store import MappingProject
from ..raster_io import open_raster
from ..vectors import as_multipolygon

PLOT_M = 150.0  # side of a sample plot: a few slumps across, one glance in the year views
BANDS = (0.05, 0.2)  # probability edges of the strata below the run's threshold
MIN_ANSWERED = 2  # plots answered in every stratum before an estimate (a variance needs two)
Z95 = 1.959964


@dataclass
class Plot:
    fid: int
    stratum: str
    geometry: BaseGeometry
    found: int | None = None
    found_area_m2: float | None = None
    reviewer: str | None = None


@dataclass
class Estimate:
    """Slumps still unmapped in the places the run did not flag."""

    count: float
    count_low: float
    count_high: float
    area_m2: float
    area_low_m2: float
    area_high_m2: float
    answered: int
    sampled: int
    population_plots: int
    strata: list[dict] = field(default_factory=list)

    def text(self) -> str:
        return (
            f"{self.count:.0f} (95 % CI {self.count_low:.0f}-{self.count_high:.0f}) slumps, "
            f"{self.area_m2 / 10000:.1f} ha ({self.area_low_m2 / 10000:.1f}-{self.area_high_m2 / 10000:.1f}) "
            f"still unmapped where the model flagged nothing ({self.answered} of {self.sampled} plots looked at)"
        )


def _band(percent: float, threshold: float) -> str:
    edges = [0.0, *[b for b in BANDS if b < threshold], threshold]
    for low, high in zip(edges, edges[1:]):
        if percent / 100 < high:
            return f"p {low:.0%}-{high:.0%}"
    return f"p ≥ {threshold:.0%}"  # a trace above the threshold, too small to be a candidate


def population(project: MappingProject, run_id: str, plot_m: float = PLOT_M, landscape=None) -> list[dict]:
    """Every plot of the run's area that no candidate of the run and no confirmed slump touches:
    {"geometry", "stratum"}."""
    from rasterio.windows import Window
    from shapely.strtree import STRtree

    from .redraw import probability_of

    run = next((r for r in project.runs() if r.run_id == run_id), None)
    if run is None:
        raise RtsMapperError(f"the project has no run {run_id}", project.path)
    candidates = project.features("candidates", "run_id = ?", (run_id,))
    if not candidates.geometries:
        raise RtsMapperError(f"run {run_id} has no candidates to review first", project.path)
    probability = probability_of(project, candidates.attributes[0]["fid"])
    threshold = run.threshold or 0.5
    flagged = [
        g for g in candidates.geometries + project.features("training_positives").geometries if g is not None
    ]
    tree = STRtree(flagged)
    plots = []
    with open_raster(probability) as dataset:
        step = max(1, round(plot_m / abs(dataset.transform.a)))
        nodata = dataset.nodata
        for row in range(0, dataset.height - step + 1, step):
            strip = dataset.read(1, window=Window(0, row, dataset.width, step))
            for col in range(0, dataset.width - step + 1, step):
                cell = strip[:, col : col + step]
                valid = cell != nodata if nodata is not None else np.ones(cell.shape, bool)
                if valid.mean() < 0.5:
                    continue
                x0, y0 = dataset.transform * (col, row)
                x1, y1 = dataset.transform * (col + step, row + step)
                plots.append(
                    {
                        "geometry": box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)),
                        "peak": cell[valid].max(),
                    }
                )
    boxes = [p["geometry"] for p in plots]
    touched = set(tree.query(boxes, predicate="intersects")[0].tolist()) if boxes else set()
    kept = [p for i, p in enumerate(plots) if i not in touched]
    classes = _landscape_classes(landscape, [p["geometry"].centroid for p in kept]) if landscape else None
    for i, plot in enumerate(kept):
        plot["stratum"] = _band(float(plot.pop("peak")), threshold) + (
            f" · class {classes[i]}" if classes else ""
        )
    return kept


def _landscape_classes(raster, points) -> list:
    with open_raster(raster) as dataset:
        return [int(v[0]) for v in dataset.sample([(p.x, p.y) for p in points])]


def draw_sample(
    project: MappingProject,
    run_id: str,
    sizes: int | dict[str, int],
    plot_m: float = PLOT_M,
    landscape=None,
    seed: int = 0,
    replace: bool = False,
) -> list[Plot]:
    """A stratified random sample of the unflagged plots: ``sizes`` plots per stratum (an int:
    that many in every stratum, or all its plots if fewer; a dict: per stratum). Stored in the
    project; a run's earlier sample is kept unless ``replace``."""
    existing = plots_of(project, run_id)
    if existing and not replace:
        answered = sum(p.found is not None for p in existing)
        raise RtsMapperError(
            f"run {run_id} already has a sample of {len(existing)} plots ({answered} answered): replace it to draw anew"
        )
    cells = population(project, run_id, plot_m, landscape)
    by_stratum: dict[str, list[dict]] = {}
    for cell in cells:
        by_stratum.setdefault(cell["stratum"], []).append(cell)
    rng = np.random.default_rng(seed)
    now = gpkg.utc_now()
    rows = []
    for stratum in sorted(by_stratum):
        members = by_stratum[stratum]
        wanted = sizes if isinstance(sizes, int) else int(sizes.get(stratum, 0))
        n = min(max(wanted, 0), len(members))
        for index in sorted(rng.choice(len(members), size=n, replace=False).tolist()):
            rows.append(
                {
                    "geom": gpkg.encode_geometry(as_multipolygon(members[index]["geometry"]), project.srs_id),
                    "run_id": run_id,
                    "stratum": stratum,
                    "stratum_cells": len(members),
                    "stratum_sampled": n,
                    "sampled_at": now,
                }
            )
    if not rows:
        raise RtsMapperError(f"run {run_id}: no place outside its candidates to sample")
    rng.shuffle(rows)  # the reviewer sees them in random order, not stratum by stratum
    with project.writing() as write:
        write.drop_plots(run_id)
        write.add_plots(rows)
    return plots_of(project, run_id)


def plots_of(project: MappingProject, run_id: str) -> list[Plot]:
    features = project.features("completeness_plots", "run_id = ?", (run_id,))
    return [
        Plot(a["fid"], a["stratum"], g, a["found"], a["found_area_m2"], a["reviewer"])
        for a, g in zip(features.attributes, features.geometries)
    ]


def answer_plot(project: MappingProject, plot_id: int, reviewer: str, finds: list[BaseGeometry]) -> int:
    """A reviewer's look at a plot: the unmapped slumps outlined there (none: an empty list).
    A slump counts in the plot its centre lies in; outlines centred elsewhere are kept with the
    plot but not counted. Returns the count; saved at once."""
    reviewer = reviewer.strip()
    if not reviewer:
        raise RtsMapperError("say who you are: an answer needs a reviewer name")
    with project.connection() as conn:
        row = conn.execute("SELECT geom FROM completeness_plots WHERE fid = ?", (plot_id,)).fetchone()
    if row is None:
        raise RtsMapperError(f"there is no completeness plot {plot_id}", project.path)
    plot = gpkg.decode_geometry(row[0])
    counted = [f for f in finds if f is not None and not f.is_empty and plot.contains(f.centroid)]
    now = gpkg.utc_now()
    with project.writing() as write:
        write.answer_plot(
            plot_id,
            {
                "found": len(counted),
                "found_area_m2": float(sum(f.area for f in counted)),
                "reviewer": reviewer,
                "answered_at": now,
            },
            [
                {
                    "geom": gpkg.encode_geometry(as_multipolygon(f), project.srs_id),
                    "plot_id": plot_id,
                    "reviewer": reviewer,
                    "found_at": now,
                }
                for f in finds
                if f is not None and not f.is_empty
            ],
        )
    return len(counted)


def estimate(project: MappingProject, run_id: str) -> Estimate | None:
    """The unmapped total from the answered plots; None until every stratum has
    :data:`MIN_ANSWERED` answers."""
    plots = plots_of(project, run_id)
    if not plots:
        return None
    with project.connection() as conn:
        cells = dict(
            conn.execute(
                "SELECT stratum, MAX(stratum_cells) FROM completeness_plots WHERE run_id = ? GROUP BY stratum",
                (run_id,),
            ).fetchall()
        )
    typical_area = _typical_area(project)
    total = variance = area = area_variance = 0.0
    strata = []
    for stratum, big_n in sorted(cells.items()):
        answered = [p for p in plots if p.stratum == stratum and p.found is not None]
        n = len(answered)
        if n < min(MIN_ANSWERED, big_n):
            return None
        counts = np.array([p.found for p in answered], dtype=float)
        areas = np.array([p.found_area_m2 or 0.0 for p in answered], dtype=float)
        spread = counts.var(ddof=1) if n > 1 else 0.0
        area_spread = areas.var(ddof=1) if n > 1 else 0.0
        if not counts.any():  # nothing seen is no proof of nothing: the variance of one find
            spread = 1.0 / n
            area_spread = typical_area**2 / n
        shrink = (1 - n / big_n) / n
        total += big_n * counts.mean()
        variance += big_n**2 * shrink * spread
        area += big_n * areas.mean()
        area_variance += big_n**2 * shrink * area_spread
        strata.append({"stratum": stratum, "plots": big_n, "answered": n, "found": int(counts.sum())})
    seen = float(sum(p.found or 0 for p in plots))
    seen_area = float(sum(p.found_area_m2 or 0.0 for p in plots))
    total, area = float(total), float(area)
    half, area_half = Z95 * math.sqrt(variance), Z95 * math.sqrt(area_variance)
    return Estimate(
        count=total,
        count_low=max(seen, total - half),
        count_high=total + half,
        area_m2=area,
        area_low_m2=max(seen_area, area - area_half),
        area_high_m2=area + area_half,
        answered=sum(p.found is not None for p in plots),
        sampled=len(plots),
        population_plots=sum(cells.values()),
        strata=strata,
    )


def _typical_area(project: MappingProject) -> float:
    """The mean area of the project's confirmed slumps (a find's stand-in size)."""
    areas = [g.area for g in project.features("training_positives").geometries if g is not None]
    return float(np.mean(areas)) if areas else PLOT_M**2 / 10
