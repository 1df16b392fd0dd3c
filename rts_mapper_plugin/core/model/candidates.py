"""Candidate polygons from a probability surface, streamed in row chunks.

Pixels at or above the threshold form 8-connected components. Each chunk of finished rows is
labelled and vectorised on its own; components that continue across a chunk border are joined
(union-find on the two border rows), so a slump lying across a window border comes out whole.
Then: small holes filled, the minimum area applied (0.05 ha by default, the paper's smallest
slump), outlines simplified within half a pixel, area / perimeter / mean and max probability
attached, and candidates touching an already confirmed RTS set aside and counted.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rasterio.crs import CRS
from rasterio.features import shapes
from rasterio.warp import transform_geom
from scipy import ndimage
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.ops import unary_union
from shapely.strtree import STRtree

from ...__about__ import style_qml
from ..defaults import MIN_AREA_M2
from ..errors import RtsMapperError
from ..vectors import FeatureSet, as_multipolygon, write_features

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass
class Candidate:
    """One candidate RTS polygon and its attributes."""

    geometry: MultiPolygon
    area_m2: float
    perimeter_m: float
    mean_prob: float
    max_prob: float
    status: str = "pending"
    year: int | None = None
    iteration: int | None = None

    def attributes(self) -> dict:
        return {
            "area_m2": round(self.area_m2, 1),
            "perimeter_m": round(self.perimeter_m, 1),
            "mean_prob": round(self.mean_prob, 4),
            "max_prob": round(self.max_prob, 4),
            "status": self.status,
            "year": self.year,
            "iteration": self.iteration,
        }


@dataclass
class _Component:
    pieces: list = field(default_factory=list)
    pixels: int = 0
    prob_sum: float = 0.0
    prob_max: float = 0.0


class CandidateBuilder:
    """Feed finished row chunks of a probability surface; :meth:`finish` returns candidates."""

    def __init__(self, transform, crs: CRS, threshold: float) -> None:
        self.transform = transform
        self.crs = crs
        self.threshold = threshold
        self._parent: list[int] = []
        self._components: list[_Component] = []
        self._last_row_ids: np.ndarray | None = None  # global ids along the previous chunk's last row
        self._last_row_index = -1

    def _find(self, i: int) -> int:
        parent = self._parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def _union(self, a: int, b: int) -> None:
        a, b = self._find(a), self._find(b)
        if a != b:
            self._parent[max(a, b)] = min(a, b)

    def add_rows(self, row_start: int, probability: np.ndarray, valid: np.ndarray) -> None:
        """``probability`` (float, 0-1) and ``valid`` for the rows from ``row_start`` on (full width)."""
        mask = (probability >= self.threshold) & valid
        labels, count = ndimage.label(mask, structure=EIGHT_CONNECTED)
        offset = len(self._components)
        if count:
            # statistics over the masked pixels only (bincount: much faster than ndimage's)
            component = labels[mask] - 1
            values = probability[mask]
            pixels = np.bincount(component, minlength=count)
            sums = np.bincount(component, weights=values, minlength=count)
            maxima = np.zeros(count, dtype=values.dtype)
            np.maximum.at(maxima, component, values)
            for n in range(count):
                self._components.append(_Component([], int(pixels[n]), float(sums[n]), float(maxima[n])))
                self._parent.append(offset + n)
            chunk_transform = self.transform * self.transform.translation(0, row_start)
            for geometry, value in shapes(
                labels.astype(np.int32), mask=mask, connectivity=8, transform=chunk_transform
            ):
                self._components[offset + int(value) - 1].pieces.append(shape(geometry))
        global_ids = np.where(labels > 0, labels + offset - 1, -1)
        if self._last_row_ids is not None and self._last_row_index == row_start - 1 and count:
            self._join_border(self._last_row_ids, global_ids[0])
        self._last_row_ids = global_ids[-1].copy()
        self._last_row_index = row_start + probability.shape[0] - 1

    def _join_border(self, above: np.ndarray, below: np.ndarray) -> None:
        for shift in (-1, 0, 1):  # 8-connectivity: straight down and the two diagonals
            if shift < 0:
                a, b = above[:shift], below[-shift:]
            elif shift > 0:
                a, b = above[shift:], below[:-shift]
            else:
                a, b = above, below
            both = (a >= 0) & (b >= 0)
            for x, y in set(zip(a[both].tolist(), b[both].tolist())):
                self._union(x, y)

    def finish(self, min_area_m2: float = MIN_AREA_M2, fill_holes_m2: float | None = None) -> list[Candidate]:
        """Merge, clean and measure every component."""
        merged: dict[int, _Component] = {}
        for index, component in enumerate(self._components):
            root = merged.setdefault(self._find(index), _Component())
            root.pieces.extend(component.pieces)
            root.pixels += component.pixels
            root.prob_sum += component.prob_sum
            root.prob_max = max(root.prob_max, component.prob_max)
        fill_holes_m2 = min_area_m2 if fill_holes_m2 is None else fill_holes_m2
        candidates = []
        for component in merged.values():
            geometry = unary_union(component.pieces) if len(component.pieces) > 1 else component.pieces[0]
            metric = to_metric(geometry, self.crs)
            metric = fill_holes(metric, fill_holes_m2)
            if metric.area < min_area_m2:
                continue
            metric = metric.simplify(
                pixel_size_m(self.transform, self.crs, geometry) / 2, preserve_topology=True
            )
            outline = from_metric(metric, self.crs, geometry) if self.crs.is_geographic else metric
            candidates.append(
                Candidate(
                    geometry=as_multipolygon(outline.buffer(0) if not outline.is_valid else outline),
                    area_m2=float(metric.area),
                    perimeter_m=float(metric.length),
                    mean_prob=component.prob_sum / max(1, component.pixels),
                    max_prob=component.prob_max,
                )
            )
        candidates.sort(key=lambda c: (-c.geometry.bounds[3], c.geometry.bounds[0]))  # north to south
        return candidates


def fill_holes(geometry, max_hole_m2: float):
    """Remove interior rings smaller than ``max_hole_m2``."""

    def fill(polygon: Polygon) -> Polygon:
        keep = [ring for ring in polygon.interiors if Polygon(ring).area >= max_hole_m2]
        return Polygon(polygon.exterior, keep)

    if geometry.geom_type == "Polygon":
        return fill(geometry)
    return MultiPolygon([fill(p) for p in geometry.geoms])


def _utm_for(geometry, crs: CRS) -> CRS:
    lon, lat = transform_geom(crs, "EPSG:4326", mapping(geometry.centroid))["coordinates"]
    zone = int((lon + 180) // 6) + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def to_metric(geometry, crs: CRS):
    """The geometry in metres: itself in a projected CRS, else in its local UTM zone."""
    if not crs.is_geographic:
        return geometry
    return shape(transform_geom(crs, _utm_for(geometry, crs), mapping(geometry)))


def from_metric(geometry, crs: CRS, reference):
    return shape(transform_geom(_utm_for(reference, crs), crs, mapping(geometry)))


def pixel_size_m(transform, crs: CRS, reference) -> float:
    if not crs.is_geographic:
        return abs(transform.a)
    latitude = math.radians(reference.centroid.y)
    return abs(transform.a) * 111_320.0 * math.cos(latitude)


def set_aside_known(
    candidates: list[Candidate], known: FeatureSet | None, crs: CRS
) -> tuple[list[Candidate], int]:
    """Drop candidates that intersect an already confirmed RTS; return (new ones, number set aside)."""
    if known is None or not len(known):
        return candidates, 0
    geometries = [g for g in known.to_crs(crs).geometries if g is not None and not g.is_empty]
    if not geometries:
        return candidates, 0
    tree = STRtree(geometries)
    new = [c for c in candidates if not len(tree.query(c.geometry, predicate="intersects"))]
    return new, len(candidates) - len(new)


def write_candidates(
    path: str | os.PathLike, candidates: list[Candidate], crs: CRS, layer: str = "candidates"
) -> Path:
    """A standalone GeoPackage (or other OGR format) of candidates, written atomically."""
    path = Path(path)
    partial = path.with_name(path.stem + ".partial" + path.suffix)
    partial.unlink(missing_ok=True)
    try:
        write_features(
            partial,
            FeatureSet([c.geometry for c in candidates], [c.attributes() for c in candidates], crs),
            layer,
            field_types={
                "area_m2": float,
                "perimeter_m": float,
                "mean_prob": float,
                "max_prob": float,
                "status": str,
                "year": int,
                "iteration": int,
            },
            overwrite_file=True,
            qml=style_qml("candidates"),
        )
    except BaseException as exc:  # nothing half-written left beside the output (a shapefile's parts too)
        for part in partial.parent.glob(f"{partial.stem}.*"):
            part.unlink(missing_ok=True)
        if isinstance(exc, RtsMapperError):
            raise RtsMapperError(exc.message, path) from exc  # the file the person asked for
        raise
    for part in partial.parent.glob(f"{partial.stem}.*"):  # a Shapefile's .dbf, .shx, .prj; the .qml
        os.replace(part, path.with_suffix(part.name[len(partial.stem) :]))
    return path
