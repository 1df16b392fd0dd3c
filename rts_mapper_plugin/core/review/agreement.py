"""Agreement between reviewers: on decisions (Cohen's and Fleiss' kappa) and on boundaries (IoU).

Two situations:

* reviewers decided on the same candidates (``reviews`` of a project): per-candidate
  agreement, Cohen's kappa for two reviewers, Fleiss' kappa for more, and the IoU of the
  boundaries they left;
* people digitised the same area independently (layers, as in Nitze et al. 2024):
  polygon-level matching between every pair of layers (F1 at an IoU threshold, mean IoU of the
  matches) and a cell-level Fleiss' kappa of "RTS here or not" over a common grid.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from ..errors import RtsMapperError
from ..model.evaluation import evaluate_polygons, iou
from ..vectors import FeatureSet, read_features


def cohen_kappa(first: list, second: list) -> float:
    """Cohen's kappa of two raters' labels of the same items (1.0 when both are constant and equal)."""
    if len(first) != len(second):
        raise ValueError("both raters must label the same items")
    n = len(first)
    if n == 0:
        return float("nan")
    observed = sum(a == b for a, b in zip(first, second)) / n
    counts_a, counts_b = Counter(first), Counter(second)
    expected = sum(counts_a[c] * counts_b[c] for c in set(counts_a) | set(counts_b)) / (n * n)
    if expected == 1.0:
        return 1.0 if observed == 1.0 else 0.0
    return (observed - expected) / (1 - expected)


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa from an items x categories matrix of how many raters chose each category.

    Every item must have the same number of raters (at least two).
    """
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2 or counts.shape[0] == 0:
        return float("nan")
    raters = counts.sum(axis=1)
    if not np.allclose(raters, raters[0]) or raters[0] < 2:
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of raters for every item")
    n = raters[0]
    p_item = ((counts * (counts - 1)).sum(axis=1)) / (n * (n - 1))
    p_bar = p_item.mean()
    p_category = counts.sum(axis=0) / counts.sum()
    p_expected = float((p_category**2).sum())
    if p_expected == 1.0:
        return 1.0 if p_bar == 1.0 else 0.0
    return float((p_bar - p_expected) / (1 - p_expected))


def _r(value: float) -> float | None:
    return None if value is None or np.isnan(value) else round(float(value), 4)


# -- reviewers' decisions on the same candidates --
@dataclass
class DecisionAgreement:
    reviewers: list[str]
    candidates_compared: int  # reviewed by at least two reviewers
    unanimous: int
    per_candidate: dict[int, float]  # share of agreeing reviewer pairs
    cohen_kappa: dict[str, float]  # "a|b" -> kappa over the candidates both reviewed
    fleiss_kappa: float | None  # over the candidates every reviewer reviewed (3 or more reviewers)
    mean_boundary_iou: float | None  # between reviewers' boundaries of the same candidate
    conflicts: list[int]

    def as_dict(self) -> dict:
        return {
            "reviewers": self.reviewers,
            "candidates_compared": self.candidates_compared,
            "unanimous": self.unanimous,
            "share_unanimous": _r(self.unanimous / self.candidates_compared)
            if self.candidates_compared
            else None,
            "cohen_kappa": {k: _r(v) for k, v in self.cohen_kappa.items()},
            "fleiss_kappa": _r(self.fleiss_kappa) if self.fleiss_kappa is not None else None,
            "mean_boundary_iou": _r(self.mean_boundary_iou) if self.mean_boundary_iou is not None else None,
            "conflicts": self.conflicts,
        }


def decision_agreement(
    decisions: list[dict], boundaries: dict[int, dict[str, BaseGeometry]] | None = None
) -> DecisionAgreement:
    """Agreement of the non-final ``decisions`` (rows with candidate_id, reviewer, decision)."""
    by_candidate: dict[int, dict[str, str]] = {}
    for row in decisions:
        if not row.get("is_final"):
            by_candidate.setdefault(row["candidate_id"], {})[row["reviewer"]] = row["decision"]
    reviewers = sorted({r for votes in by_candidate.values() for r in votes})
    shared = {c: votes for c, votes in by_candidate.items() if len(votes) >= 2}
    per_candidate = {}
    for candidate, votes in shared.items():
        pairs = list(itertools.combinations(votes.values(), 2))
        per_candidate[candidate] = sum(a == b for a, b in pairs) / len(pairs)
    cohen = {}
    for a, b in itertools.combinations(reviewers, 2):
        both = [votes for votes in by_candidate.values() if a in votes and b in votes]
        if both:
            cohen[f"{a}|{b}"] = cohen_kappa([v[a] for v in both], [v[b] for v in both])
    fleiss = None
    if len(reviewers) >= 3:
        everyone = [votes for votes in by_candidate.values() if len(votes) == len(reviewers)]
        if everyone:
            categories = sorted({d for votes in everyone for d in votes.values()})
            matrix = np.array([[list(v.values()).count(c) for c in categories] for v in everyone])
            fleiss = fleiss_kappa(matrix)
    ious = []
    for candidate, shapes in (boundaries or {}).items():
        if candidate in shared:
            for a, b in itertools.combinations([g for g in shapes.values() if g is not None], 2):
                ious.append(iou(a, b))
    return DecisionAgreement(
        reviewers=reviewers,
        candidates_compared=len(shared),
        unanimous=sum(1 for v in per_candidate.values() if v == 1.0),
        per_candidate=per_candidate,
        cohen_kappa=cohen,
        fleiss_kappa=fleiss,
        mean_boundary_iou=float(np.mean(ious)) if ious else None,
        conflicts=sorted(c for c, v in per_candidate.items() if v < 1.0),
    )


# -- independent digitisations of one area --
def polygon_agreement(
    layers: dict[str, list[BaseGeometry]],
    iou_threshold: float = 0.5,
    area: BaseGeometry | None = None,
    cell_m: float = 2.0,
    min_area_m2: float = 1.0,
) -> dict:
    """Agreement between independently digitised polygon layers (same CRS, metres).

    Returns a JSON-ready dict: per layer its polygon count and area; per pair the F1 of
    polygon matching at ``iou_threshold`` (symmetric) and the mean IoU of the matches; their
    means; how many layers found each polygon; and a cell-level Fleiss' kappa of RTS / not RTS
    over a ``cell_m`` grid covering ``area`` (default: the layers' union, buffered 50 m).
    Polygons under ``min_area_m2`` (digitising slips) are left out and counted; with ``area``,
    only polygons touching it count.
    """
    if len(layers) < 2:
        raise RtsMapperError("agreement needs at least two layers")
    if not 0 < iou_threshold < 1:
        raise RtsMapperError(f"the IoU threshold must be between 0 and 1, not {iou_threshold}")
    clean = {
        name: [
            g
            for g in geometries
            if g is not None
            and not g.is_empty
            and g.area >= min_area_m2
            and (area is None or g.intersects(area))
        ]
        for name, geometries in layers.items()
    }
    slivers = {
        name: sum(1 for g in layers[name] if g is not None and (g.is_empty or g.area < min_area_m2))
        for name in layers
    }
    slivers = {name: n for name, n in slivers.items() if n}
    names = list(clean)
    pairs = {}
    for a, b in itertools.combinations(names, 2):
        result = evaluate_polygons(clean[a], clean[b], iou_threshold)
        pairs[f"{a}|{b}"] = {"f1": _r(result.f1), "mean_iou_of_matches": _r(result.mean_iou_of_matches)}
    found_by = {}
    for name in names:
        others = [o for o in names if o != name]
        counts = []
        for polygon in clean[name]:
            counts.append(
                sum(
                    1
                    for o in others
                    if any(iou(polygon, q) > iou_threshold for q in clean[o] if polygon.intersects(q))
                )
            )
        found_by[name] = counts
    all_counts = [c + 1 for counts in found_by.values() for c in counts]
    f1s = [p["f1"] for p in pairs.values()]
    ious = [p["mean_iou_of_matches"] for p in pairs.values() if p["mean_iou_of_matches"]]
    return {
        "layers": {
            name: {"polygons": len(g), "area_m2": round(sum(p.area for p in g), 1)}
            for name, g in clean.items()
        },
        "ignored_slivers": slivers,  # empty or under min_area_m2: digitising slips, not slumps
        "iou_threshold": iou_threshold,
        "pairs": pairs,
        "mean_pairwise_f1": _r(float(np.mean(f1s))),
        "min_pairwise_f1": _r(float(np.min(f1s))),
        "max_pairwise_f1": _r(float(np.max(f1s))),
        "mean_pairwise_iou_of_matches": _r(float(np.mean(ious))) if ious else None,
        "polygons_matched_by_all_other_layers": sum(1 for c in all_counts if c == len(names)),
        "polygons_matched_by_no_other_layer": sum(1 for c in all_counts if c == 1),
        "cell_fleiss_kappa": _r(_cell_fleiss(clean, area, cell_m)),
        "cell_m": cell_m,
    }


def _cell_fleiss(layers: dict[str, list[BaseGeometry]], area: BaseGeometry | None, cell_m: float) -> float:
    """Fleiss' kappa of RTS / not RTS per grid cell, every layer a rater."""
    from rasterio import features
    from rasterio.transform import from_origin

    everything = list(itertools.chain.from_iterable(layers.values()))
    if area is None:
        if not everything:
            return float("nan")
        area = shapely.unary_union(everything).buffer(50)
    minx, miny, maxx, maxy = area.bounds
    width, height = int(np.ceil((maxx - minx) / cell_m)), int(np.ceil((maxy - miny) / cell_m))
    if width * height > 50_000_000:
        raise RtsMapperError(f"a {cell_m} m grid over this area has too many cells: use a larger cell")
    transform = from_origin(minx, maxy, cell_m, cell_m)
    inside = features.rasterize([(area, 1)], (height, width), transform=transform, dtype="uint8").astype(bool)
    votes = np.zeros((height, width), dtype=np.int32)
    for geometries in layers.values():
        if geometries:
            votes += features.rasterize(
                [(g, 1) for g in geometries], (height, width), transform=transform, dtype="uint8"
            )
    raters = len(layers)
    yes = votes[inside]
    return fleiss_kappa(np.stack([yes, raters - yes], axis=1))


def agreement_files(
    paths: list[str | os.PathLike],
    iou_threshold: float = 0.5,
    area: str | os.PathLike | None = None,
    cell_m: float = 2.0,
) -> dict:
    """:func:`polygon_agreement` of vector files (reprojected to the first one's CRS)."""
    from pathlib import Path

    sets: dict[str, FeatureSet] = {}
    for path in paths:
        name = Path(str(path).split("|", 1)[0]).stem
        while name in sets:
            name += "'"
        sets[name] = read_features(path, polygons_only=True)
    first = next(iter(sets.values()))
    if first.crs is None or not first.crs.is_projected:
        raise RtsMapperError("agreement needs layers in a projected CRS (metres)", paths[0])
    layers = {name: s.to_crs(first.crs).geometries for name, s in sets.items()}
    area_geometry = None
    if area is not None:
        aoi = read_features(area, polygons_only=True).to_crs(first.crs)
        area_geometry = shapely.unary_union(aoi.geometries)
    return polygon_agreement(layers, iou_threshold, area_geometry, cell_m)
