"""Where slumps form: terrain, solar radiation, streams, vegetation and soil around the inventory,
each compared between the RTSs and the whole landscape, and density grids (Xia et al. 2022,
section 4 and Figures 6-7).

Each step is a function the Processing algorithms and the CLI call on their own
(:func:`load_dem`, :func:`terrain_layers`, :func:`rts_terrain`, :func:`class_overlay`,
:func:`density_grid`); :func:`analyze` runs them all and writes the figures and the report.
The DEM is used in a projected CRS (a geographic DEM is reprojected, and the report says so);
the inventory is reprojected to the DEM's CRS for sampling. An RTS the DEM does not cover (or
covers with nodata) keeps its row with empty values and ``dem_coverage`` saying why.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from rasterio.crs import CRS

from ...__about__ import style_qml
from ..errors import RtsMapperError
from ..progress import Feedback
from ..vectors import FeatureSet, read_features, write_features
from .terrain import SECTORS, aspect_sector, pisr_tiled, slope_aspect

LANDSCAPE_SAMPLE = 2_000_000  # landscape distributions from at most this many DEM cells


@dataclass
class Dem:
    elevation: np.ndarray  # float32, NaN = nodata
    transform: object  # affine.Affine
    crs: CRS
    notes: list[str] = field(default_factory=list)

    @property
    def xres(self) -> float:
        return abs(self.transform.a)

    @property
    def yres(self) -> float:
        return abs(self.transform.e)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        rows, cols = self.elevation.shape
        x0, y0 = self.transform.c, self.transform.f
        return x0, y0 + rows * self.transform.e, x0 + cols * self.transform.a, y0

    def latitude_of_row(self, row: int) -> float:
        from rasterio.warp import transform

        x, y = self.transform * (self.elevation.shape[1] / 2, row + 0.5)
        _, lat = transform(self.crs, "EPSG:4326", [x], [y])
        return float(lat[0])


def utm_for(lon: float, lat: float) -> CRS:
    zone = int((lon + 180) // 6) + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def load_dem(path: str | os.PathLike, target_crs: CRS | None = None) -> Dem:
    """Read a DEM (nodata -> NaN). A geographic DEM is reprojected (bilinear) to ``target_crs``
    when that is projected, else to its UTM zone, at the equivalent resolution."""
    from rasterio.warp import Resampling, calculate_default_transform, reproject, transform_bounds

    from ..raster_io import open_raster, reading, require_crs

    with open_raster(path) as dataset:
        require_crs(dataset, path)
        if dataset.count < 1:
            raise RtsMapperError("has no band", path)
        with reading(path):
            data = dataset.read(1, masked=True).astype(np.float32).filled(np.nan)
        if not np.isfinite(data).any():
            raise RtsMapperError("holds only nodata", path)
        dem = Dem(data, dataset.transform, dataset.crs)
        if not dataset.crs.is_geographic:
            return dem
        if target_crs is None or CRS.from_user_input(target_crs).is_geographic:
            west, south, east, north = transform_bounds(dataset.crs, "EPSG:4326", *dataset.bounds)
            target = utm_for((west + east) / 2, (south + north) / 2)
        else:
            target = CRS.from_user_input(target_crs)
        transform, width, height = calculate_default_transform(
            dataset.crs, target, dataset.width, dataset.height, *dataset.bounds
        )
        out = np.full((height, width), np.nan, dtype=np.float32)
        reproject(
            data,
            out,
            src_transform=dataset.transform,
            src_crs=dataset.crs,
            dst_transform=transform,
            dst_crs=target,
            src_nodata=np.nan,
            dst_nodata=np.nan,
            resampling=Resampling.bilinear,
        )
    note = (
        f"the DEM is in geographic coordinates ({dataset.crs.to_string()}): reprojected to "
        f"{target.to_string()} at {abs(transform.a):.1f} m for slope, aspect and PISR"
    )
    return Dem(out, transform, target, [note])


def write_grid(path: str | os.PathLike, array: np.ndarray, dem: Dem, nodata=np.nan) -> Path:
    """A float32 GeoTIFF on the DEM's grid (written to a partial file, renamed when complete)."""
    import rasterio

    from ..raster_io import atomic_output

    rows, cols = array.shape
    with (
        atomic_output(path) as partial,
        rasterio.open(
            partial,
            "w",
            driver="GTiff",
            width=cols,
            height=rows,
            count=1,
            dtype="float32",
            crs=dem.crs,
            transform=dem.transform,
            nodata=nodata,
            tiled=True,
            compress="deflate",
        ) as out,
    ):
        out.write(array.astype(np.float32), 1)
    return Path(path)


@dataclass
class TerrainLayers:
    slope: np.ndarray
    aspect: np.ndarray
    pisr: np.ndarray
    streams: np.ndarray  # bool mask of stream cells
    stream_distance: np.ndarray  # metres to the nearest stream cell
    stream_lines: list
    stream_source: str


def terrain_layers(
    dem: Dem,
    streams: FeatureSet | None = None,
    stream_threshold_km2: float = 1.0,
    transmittance: float = 0.7,
    hour_step: float = 1.0,
    feedback: Feedback | None = None,
) -> TerrainLayers:
    """Slope, aspect, PISR, a stream network (from ``streams`` lines, or from the DEM by flow
    accumulation over ``stream_threshold_km2``) and the distance to it, on the DEM's grid."""
    from .hydrology import distance_to, stream_lines, stream_mask

    feedback = feedback or Feedback()
    z = dem.elevation
    filled = np.where(np.isfinite(z), z, np.nanmean(z))
    slope, aspect = slope_aspect(filled, dem.xres, dem.yres)
    nodata = ~np.isfinite(z)
    slope[nodata], aspect[nodata] = np.nan, np.nan
    feedback.step(0.05)
    radiation = pisr_tiled(
        z,
        dem.xres,
        dem.yres,
        dem.latitude_of_row,
        transmittance=transmittance,
        hour_step=hour_step,
        feedback=feedback.scaled(0.05, 0.75),
    )
    if streams is not None and len(streams):
        from rasterio.features import rasterize

        lines = streams.to_crs(dem.crs).geometries
        mask = rasterize(
            [(g, 1) for g in lines if g is not None and not g.is_empty],
            out_shape=z.shape,
            transform=dem.transform,
            all_touched=True,
            dtype="uint8",
        ).astype(bool)
        lines_out, source = [g for g in lines if g is not None], "the given stream layer"
    else:
        mask, direction, _area = stream_mask(z, dem.xres, dem.yres, stream_threshold_km2, feedback)
        lines_out = stream_lines(mask, direction, dem.transform)
        source = f"flow accumulation over {stream_threshold_km2:g} km² (D8, depressions routed out)"
    feedback.step(0.9)
    distance = distance_to(mask, dem.xres, dem.yres)
    distance[nodata] = np.nan
    return TerrainLayers(slope, aspect, radiation, mask, distance, lines_out, source)


def _circular_mean(degrees: np.ndarray) -> float | None:
    values = degrees[np.isfinite(degrees)]
    if not values.size:
        return None
    radians = np.radians(values)
    return float(np.degrees(np.arctan2(np.sin(radians).mean(), np.cos(radians).mean())) % 360.0)


def rts_terrain(
    inventory: FeatureSet, dem: Dem, layers: TerrainLayers, adjacent_m: float = 100.0
) -> FeatureSet:
    """The inventory (in its own CRS) with, per RTS: elevation, slope, aspect (degrees and
    sector) and PISR at the centroid and as zonal mean / min / max over the polygon (cells the
    polygon touches), distance to the nearest stream and the adjacent flag, and
    ``dem_coverage`` (full, partial, none)."""
    from rasterio.features import geometry_mask

    moved = inventory.to_crs(dem.crs)
    dem_box = shapely.box(*dem.bounds)
    rows, cols = dem.elevation.shape
    grids = {"elevation": dem.elevation, "slope": layers.slope, "pisr": layers.pisr}
    out_attributes = []
    for geometry, attributes in zip(moved.geometries, inventory.attributes):
        values: dict = {}
        # the cells under the polygon's bounding box, clipped to the DEM
        minx, miny, maxx, maxy = geometry.bounds
        col_a, row_a = ~dem.transform * (minx, maxy)
        col_b, row_b = ~dem.transform * (maxx, miny)
        c0, r0 = max(math.floor(min(col_a, col_b)), 0), max(math.floor(min(row_a, row_b)), 0)
        c1, r1 = min(math.ceil(max(col_a, col_b)) + 1, cols), min(math.ceil(max(row_a, row_b)) + 1, rows)
        inside = np.zeros((0, 0), bool)
        if c1 > c0 and r1 > r0:
            inside = ~geometry_mask(
                [geometry],
                out_shape=(r1 - r0, c1 - c0),
                transform=dem.transform * dem.transform.translation(c0, r0),
                all_touched=True,
            )
        centroid = geometry.centroid
        col, row = ~dem.transform * (centroid.x, centroid.y)
        row, col = math.floor(row), math.floor(col)
        on_dem = 0 <= row < rows and 0 <= col < cols and np.isfinite(dem.elevation[row, col])
        for name, grid in grids.items():
            values[f"{name}_c"] = round(float(grid[row, col]), 2) if on_dem else None
            cells = grid[r0:r1, c0:c1][inside] if inside.size else np.array([])
            cells = cells[np.isfinite(cells)]
            for stat, function in (("mean", np.mean), ("min", np.min), ("max", np.max)):
                values[f"{name}_{stat}"] = round(float(function(cells)), 2) if cells.size else None
        aspect_c = float(layers.aspect[row, col]) if on_dem else float("nan")
        values["aspect_c"] = None if math.isnan(aspect_c) else round(aspect_c, 1)
        values["aspect_sec"] = (
            None if not on_dem else "flat" if math.isnan(aspect_c) else SECTORS[aspect_sector(aspect_c)]
        )
        aspect_cells = layers.aspect[r0:r1, c0:c1][inside] if inside.size else np.array([])
        mean_aspect = _circular_mean(aspect_cells)
        values["aspect_mean"] = None if mean_aspect is None else round(mean_aspect, 1)
        distances = layers.stream_distance[r0:r1, c0:c1][inside] if inside.size else np.array([])
        distances = distances[np.isfinite(distances)]
        values["stream_m"] = round(float(distances.min()), 1) if distances.size else None
        values["near_stream"] = None if values["stream_m"] is None else int(values["stream_m"] <= adjacent_m)
        touched = int(inside.sum()) if inside.size else 0
        valid = int(np.isfinite(dem.elevation[r0:r1, c0:c1][inside]).sum()) if touched else 0
        if valid == 0:
            values["dem_coverage"] = "none"
        elif valid < touched or not geometry.within(dem_box):
            values["dem_coverage"] = "partial"
        else:
            values["dem_coverage"] = "full"
        out_attributes.append({**attributes, **values})
    return FeatureSet(inventory.geometries, out_attributes, inventory.crs)


@dataclass
class ClassOverlay:
    name: str
    per_rts: list[str | None]
    rts_shares: dict[str, float]
    landscape_shares: dict[str, float]


def class_overlay(
    name: str,
    inventory: FeatureSet,
    source: str,
    field_name: str | None = None,
    study_area=None,
) -> ClassOverlay:
    """Each RTS's class (at its centroid) from a class raster (class names from ``CLASS_<n>``
    band tags when present) or a polygon layer (``field_name``), and the class shares of the
    RTSs versus the landscape (the study area: a polygon in the inventory's CRS, or the source's
    extent)."""
    from ..vectors import split_layer_uri

    path, _layer = split_layer_uri(source)
    centroids = [g.centroid if g is not None else None for g in inventory.geometries]
    if path.suffix.lower() in (".tif", ".tiff", ".vrt", ".img"):
        per_rts, landscape = _raster_classes(source, centroids, inventory.crs, study_area)
    else:
        per_rts, landscape = _polygon_classes(source, field_name, centroids, inventory.crs, study_area)
    counts: dict[str, int] = {}
    for value in per_rts:
        key = value if value is not None else "not covered"
        counts[key] = counts.get(key, 0) + 1
    total = sum(counts.values()) or 1
    landscape_total = sum(landscape.values()) or 1
    return ClassOverlay(
        name,
        per_rts,
        {k: round(v / total, 4) for k, v in sorted(counts.items())},
        {k: round(v / landscape_total, 4) for k, v in sorted(landscape.items())},
    )


def _raster_classes(source, centroids, crs, study_area):
    from rasterio.features import geometry_mask
    from rasterio.warp import transform as warp

    from ..raster_io import open_raster, require_crs

    with open_raster(source) as dataset:
        require_crs(dataset, source)
        names = {int(k.split("_", 1)[1]): v for k, v in dataset.tags(1).items() if k.startswith("CLASS_")}
        data = dataset.read(1)
        nodata = dataset.nodata
        points = [c for c in centroids if c is not None]
        xs, ys = warp(crs, dataset.crs, [p.x for p in points], [p.y for p in points]) if points else ([], [])
        values = []
        for x, y in zip(xs, ys):
            row, col = dataset.index(x, y)
            inside = 0 <= row < dataset.height and 0 <= col < dataset.width
            value = data[row, col] if inside else None
            values.append(
                None if value is None or value == nodata else names.get(int(value), str(int(value)))
            )
        iterator = iter(values)
        per_rts = [next(iterator) if c is not None else None for c in centroids]
        valid = np.ones(data.shape, bool) if nodata is None else data != nodata
        if study_area is not None:
            area = FeatureSet([study_area], [{}], crs).to_crs(dataset.crs).geometries[0]
            valid &= ~geometry_mask([area], out_shape=data.shape, transform=dataset.transform)
        classes, counts = np.unique(data[valid], return_counts=True)
        landscape = {names.get(int(k), str(int(k))): int(n) for k, n in zip(classes, counts)}
    return per_rts, landscape


def _polygon_classes(source, field_name, centroids, crs, study_area):
    from shapely.strtree import STRtree

    layer = read_features(source, polygons_only=True).to_crs(crs)
    if not field_name:
        raise RtsMapperError("name the field that holds the class of each polygon", source)
    if layer.attributes and field_name not in layer.attributes[0]:
        raise RtsMapperError(f"has no field {field_name!r}", source)
    tree = STRtree(layer.geometries)
    per_rts = []
    for point in centroids:
        hits = [] if point is None else tree.query(point, predicate="within")
        per_rts.append(str(layer.attributes[int(hits[0])][field_name]) if len(hits) else None)
    area = study_area if study_area is not None else shapely.box(*shapely.union_all(layer.geometries).bounds)
    landscape: dict[str, float] = {}
    for geometry, attributes in zip(layer.geometries, layer.attributes):
        part = geometry.intersection(area).area
        if part > 0:
            key = str(attributes[field_name])
            landscape[key] = landscape.get(key, 0.0) + part
    return per_rts, landscape


def period_field(period: str) -> str:
    """The density grid's count field of an initiation period: 'before 2016' -> 'n_before_2016',
    '2016-2017' -> 'n_2016_2017'."""
    return "n_" + "".join(ch if ch.isalnum() else "_" for ch in period)


# ColorBrewer "Reds" (QGIS's default ramp of that name), light to dark
REDS = (
    (254, 229, 217),
    (252, 187, 161),
    (252, 146, 114),
    (251, 106, 74),
    (239, 59, 44),
    (203, 24, 29),
    (153, 0, 13),
)


def density_style(grid: FeatureSet, field_name: str = "rts_count", classes: int = 5) -> str:
    """A density grid's QML: a choropleth of ``field_name``, light to dark red in classes at the
    quantiles of the cells that hold RTSs, empty cells clear with a thin grey border.

    Built from the bundled ``density.qml`` (a graduated renderer as QGIS writes it: a "no RTS"
    range and one class, whose symbol is copied for each class), so the style is stored in the
    GeoPackage and looks the same in any QGIS, with or without the plugin.
    """
    import copy
    import xml.etree.ElementTree as ET

    template = style_qml("density")
    root = ET.fromstring(template)  # noqa: S314 (the plugin's own file, not user data)
    renderer = root.find("renderer-v2")
    renderer.set("attr", field_name)
    ranges, symbols = renderer.find("ranges"), renderer.find("symbols")
    _no_rts, class_range = list(ranges)  # the first range, "no RTS", stays as it is
    class_symbol = next(s for s in symbols if s.get("name") == "1")
    ranges.remove(class_range)
    symbols.remove(class_symbol)
    positive = sorted(float(a[field_name]) for a in grid.attributes if (a.get(field_name) or 0) > 0)
    breaks = (
        sorted({float(v) for v in np.quantile(positive, np.linspace(0, 1, classes + 1))}) if positive else []
    )
    uppers = breaks[1:] if len(breaks) > 1 else breaks
    lower = 0.0
    for index, upper in enumerate(uppers):
        r, g, b = REDS[round((index + 1) / len(uppers) * (len(REDS) - 1))]
        symbol = copy.deepcopy(class_symbol)
        symbol.set("name", str(index + 1))
        for option in symbol.iter("Option"):
            if option.get("name") == "color":
                option.set("value", f"{r},{g},{b},255")
        for prop in symbol.iter("prop"):
            if prop.get("k") == "color":
                prop.set("v", f"{r},{g},{b},255")
        symbols.append(symbol)
        entry = copy.deepcopy(class_range)
        entry.set("lower", f"{lower:.15f}")
        entry.set("upper", f"{upper:.15f}")
        entry.set("label", f"{lower:g} - {upper:g}")
        entry.set("symbol", str(index + 1))
        ranges.append(entry)
        lower = upper
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(
        root, encoding="unicode"
    )


def density_grid(
    inventory: FeatureSet, cell_km: float, bounds: tuple[float, float, float, float], periods: list[str] = ()
) -> FeatureSet:
    """Square cells of ``cell_km`` (aligned to multiples of the size) covering ``bounds`` (in the
    inventory's projected CRS), with the number of RTSs (by centroid), their area (ha), counts
    per 100 km² and per initiation period (fields named by :func:`period_field`)."""
    size = cell_km * 1000.0
    minx, miny, maxx, maxy = bounds
    x0, y0 = math.floor(minx / size) * size, math.floor(miny / size) * size
    nx, ny = max(1, math.ceil((maxx - x0) / size)), max(1, math.ceil((maxy - y0) / size))
    counts = np.zeros((ny, nx), int)
    areas = np.zeros((ny, nx))
    by_period = {p: np.zeros((ny, nx), int) for p in periods}
    for geometry, attributes in zip(inventory.geometries, inventory.attributes):
        if geometry is None:
            continue
        c = geometry.centroid
        i, j = int((c.y - y0) // size), int((c.x - x0) // size)
        if not (0 <= i < ny and 0 <= j < nx):
            continue
        counts[i, j] += 1
        areas[i, j] += geometry.area / 1e4
        period = attributes.get("initiation_period")
        if period in by_period:
            by_period[period][i, j] += 1
    geometries, rows = [], []
    cell_area_100km2 = (size / 1000.0) ** 2 / 100.0
    for i in range(ny):
        for j in range(nx):
            geometries.append(
                shapely.box(x0 + j * size, y0 + i * size, x0 + (j + 1) * size, y0 + (i + 1) * size)
            )
            row = {
                "cell_id": i * nx + j + 1,
                "cell_km": cell_km,
                "rts_count": int(counts[i, j]),
                "rts_area_ha": round(float(areas[i, j]), 3),
                "per_100km2": round(counts[i, j] / cell_area_100km2, 3),
                "area_share_pct": round(100 * areas[i, j] / ((size / 100.0) ** 2), 5),
            }
            for period in periods:
                row[period_field(period)] = int(by_period[period][i, j])
            rows.append(row)
    return FeatureSet(geometries, rows, inventory.crs)


def _histogram(rts_values, landscape_values, bins) -> dict:
    rts = np.asarray([v for v in rts_values if v is not None and np.isfinite(v)], dtype=float)
    land = np.asarray(landscape_values, dtype=float)
    land = land[np.isfinite(land)]
    r, _ = np.histogram(rts, bins)
    n, _ = np.histogram(land, bins)
    return {
        "bins": [round(float(b), 3) for b in bins],
        "rts_count": r.tolist(),
        "rts_pct": (100 * r / max(r.sum(), 1)).round(2).tolist(),
        "landscape_pct": (100 * n / max(n.sum(), 1)).round(2).tolist(),
        "rts_mean": round(float(rts.mean()), 2) if rts.size else None,
        "landscape_mean": round(float(land.mean()), 2) if land.size else None,
    }


def nice_bins(values: np.ndarray, count: int = 12) -> np.ndarray:
    values = values[np.isfinite(values)]
    if not values.size:
        return np.array([0.0, 1.0])
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.array([low - 0.5, high + 0.5])
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    return np.arange(start, high + step, step)


def landscape_sample(mask: np.ndarray, seed: int = 0) -> np.ndarray:
    """Flat indices of the landscape cells used for the distributions (all, or a random sample)."""
    index = np.flatnonzero(mask)
    if index.size > LANDSCAPE_SAMPLE:
        index = np.sort(np.random.default_rng(seed).choice(index, LANDSCAPE_SAMPLE, replace=False))
    return index


@dataclass
class AnalysisConfig:
    inventory: str
    dem: str
    out: str
    vegetation: str | None = None
    vegetation_field: str | None = None
    soil: str | None = None
    soil_field: str | None = None
    streams: str | None = None
    study_area: str | None = None
    stream_threshold_km2: float = 1.0
    adjacent_m: float = 100.0
    cell_sizes_km: tuple[float, ...] = (10.0, 25.0)
    transmittance: float = 0.7
    hour_step: float = 1.0
    title: str = "RTS distribution"


@dataclass
class AnalysisResult:
    out: Path
    report: Path
    summary: dict
    figures: list[Path]
    layers: dict[str, str]
    warnings: list[str]


def analyze(config: AnalysisConfig, feedback: Feedback | None = None) -> AnalysisResult:
    """Every step, then the figures and a self-contained HTML report in ``config.out``."""
    from . import figures as figure_module

    feedback = feedback or Feedback()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    inventory = read_features(config.inventory, polygons_only=True)
    inventory = FeatureSet(
        [g for g in inventory.geometries if g is not None],
        [a for g, a in zip(inventory.geometries, inventory.attributes) if g is not None],
        inventory.crs,
    )
    if not len(inventory):
        raise RtsMapperError("the inventory is empty: there is nothing to analyse", config.inventory)
    if inventory.crs is None:
        raise RtsMapperError("the inventory has no coordinate reference system", config.inventory)
    if inventory.crs.is_geographic:
        west, south, east, north = shapely.union_all(inventory.geometries).bounds
        inventory = inventory.to_crs(utm_for((west + east) / 2, (south + north) / 2))
    warnings: list[str] = []
    dem = load_dem(config.dem, inventory.crs)
    warnings += dem.notes
    if dem.crs != inventory.crs:
        warnings.append(
            f"the DEM ({dem.crs.to_string()}) and the inventory ({inventory.crs.to_string()}) differ: "
            "RTSs are reprojected to the DEM's CRS for sampling"
        )
    feedback.step(0.02)
    streams = read_features(config.streams) if config.streams else None
    layers = terrain_layers(
        dem,
        streams,
        config.stream_threshold_km2,
        config.transmittance,
        config.hour_step,
        feedback.scaled(0.02, 0.8),
    )
    enriched = rts_terrain(inventory, dem, layers, config.adjacent_m)
    uncovered = [a.get("rts_id", a.get("fid")) for a in enriched.attributes if a["dem_coverage"] != "full"]
    if uncovered:
        warnings.append(
            f"{len(uncovered)} RTS(s) not fully covered by the DEM (kept, flagged in dem_coverage): "
            + ", ".join(str(u) for u in uncovered[:20])
            + (" ..." if len(uncovered) > 20 else "")
        )

    # the landscape: the study area polygon, else every valid DEM cell
    study = None
    if config.study_area:
        area_layer = read_features(config.study_area, polygons_only=True)
        study = shapely.union_all(area_layer.to_crs(dem.crs).geometries)
    landscape_mask = np.isfinite(dem.elevation)
    if study is not None:
        from rasterio.features import geometry_mask

        landscape_mask &= ~geometry_mask([study], out_shape=landscape_mask.shape, transform=dem.transform)
    if not landscape_mask.any():
        raise RtsMapperError("the study area holds no valid DEM cell", config.study_area or config.dem)
    sample = landscape_sample(landscape_mask)
    land = {
        "elevation": dem.elevation.ravel()[sample],
        "slope": layers.slope.ravel()[sample],
        "pisr": layers.pisr.ravel()[sample],
        "stream_m": layers.stream_distance.ravel()[sample],
    }
    attributes = enriched.attributes
    distributions = {}
    for key, rts_key in (
        ("elevation", "elevation_c"),
        ("slope", "slope_c"),
        ("pisr", "pisr_c"),
        ("stream_m", "stream_m"),
    ):
        values = np.concatenate([land[key], [a[rts_key] for a in attributes if a[rts_key] is not None]])
        distributions[key] = _histogram([a[rts_key] for a in attributes], land[key], nice_bins(values))
    land_sectors = aspect_sector(layers.aspect.ravel()[sample])
    sector_counts = np.bincount(land_sectors[land_sectors >= 0], minlength=8)
    rts_sectors = [a["aspect_sec"] for a in attributes if a["aspect_sec"] in SECTORS]
    distributions["aspect"] = {
        "sectors": list(SECTORS),
        "rts_count": [rts_sectors.count(s) for s in SECTORS],
        "rts_pct": [round(100 * rts_sectors.count(s) / max(len(rts_sectors), 1), 2) for s in SECTORS],
        "landscape_pct": (100 * sector_counts / max(sector_counts.sum(), 1)).round(2).tolist(),
    }
    areas_ha = np.array([g.area / 1e4 for g in inventory.geometries])
    distributions["area_ha"] = {"values": areas_ha.round(4).tolist()}
    feedback.step(0.85)

    overlays = []
    inventory_study = None
    if study is not None:
        inventory_study = FeatureSet([study], [{}], dem.crs).to_crs(inventory.crs).geometries[0]
    for name, source, field_name in (
        ("vegetation", config.vegetation, config.vegetation_field),
        ("soil", config.soil, config.soil_field),
    ):
        if source:
            overlay = class_overlay(name, inventory, source, field_name, inventory_study)
            overlays.append(overlay)
            for a, value in zip(attributes, overlay.per_rts):
                a[name] = value

    periods = sorted({a.get("initiation_period") for a in attributes if a.get("initiation_period")})
    bounds = _study_bounds(dem, landscape_mask, inventory.crs)
    sizes = list(config.cell_sizes_km)
    width_km = min(bounds[2] - bounds[0], bounds[3] - bounds[1]) / 1000.0
    if width_km < 3 * min(sizes):
        adaptive = _nice_size(width_km / 6)
        sizes.append(adaptive)
        warnings.append(
            f"the study area is {width_km:.1f} km across: {', '.join(f'{s:g}' for s in config.cell_sizes_km)} km cells "
            f"say little here, so a {adaptive:g} km grid is added"
        )
    grids = {size: density_grid(enriched, size, bounds, periods) for size in sizes}

    # outputs
    layers_out = {}
    rts_path = write_features(
        out / "rts_distribution.gpkg",
        enriched,
        "rts_terrain",
        overwrite_file=True,
        qml=style_qml("inventory"),
    )
    layers_out["rts_terrain"] = f"{rts_path}|layername=rts_terrain"
    for size, grid in grids.items():
        name = f"density_{size:g}km".replace(".", "_")
        write_features(
            out / "rts_distribution.gpkg", grid, name, geometry_type="Polygon", qml=density_style(grid)
        )
        layers_out[name] = f"{rts_path}|layername={name}"
    if layers.stream_lines:
        lines = FeatureSet(
            layers.stream_lines, [{"source": layers.stream_source}] * len(layers.stream_lines), dem.crs
        )
        write_features(
            out / "rts_distribution.gpkg",
            lines,
            "streams",
            geometry_type="MultiLineString",
            qml=style_qml("streams"),
        )
        layers_out["streams"] = f"{rts_path}|layername=streams"
    for name, grid in (("slope", layers.slope), ("aspect", layers.aspect), ("pisr", layers.pisr)):
        layers_out[name] = str(write_grid(out / f"{name}.tif", grid, dem))

    summary = {
        "title": config.title,
        "rts_count": len(enriched),
        "total_area_ha": round(float(areas_ha.sum()), 3),
        "share_under_10_ha": round(float((areas_ha < 10).mean()), 3),
        "dem": {
            "crs": dem.crs.to_string(),
            "resolution_m": round(dem.xres, 2),
            "cells": int(landscape_mask.sum()),
        },
        "pisr_method": (
            f"Kumar et al. (1997): clear sky, transmittance {config.transmittance:g}, albedo 0.2, the 15th of each "
            f"month, every {config.hour_step:g} h, topographic shading in 16 directions up to 3 km"
        ),
        "streams": layers.stream_source,
        "adjacent_m": config.adjacent_m,
        "near_stream": sum(1 for a in attributes if a["near_stream"]),
        "distributions": distributions,
        "overlays": {
            o.name: {"rts_shares": o.rts_shares, "landscape_shares": o.landscape_shares} for o in overlays
        },
        "density": {
            f"{size:g}": {
                "cells": len(grid),
                "max_count": max(a["rts_count"] for a in grid.attributes),
                "max_per_100km2": max(a["per_100km2"] for a in grid.attributes),
            }
            for size, grid in grids.items()
        },
        "coverage": {
            k: sum(1 for a in attributes if a["dem_coverage"] == k) for k in ("full", "partial", "none")
        },
        "warnings": warnings,
    }
    feedback.step(0.9)
    figures = figure_module.all_figures(summary, enriched, grids, layers, dem, out / "figures")
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    report = figure_module.write_report(out / "report.html", summary, figures)
    feedback.step(1.0)
    return AnalysisResult(out, report, summary, figures, layers_out, warnings)


def _study_bounds(dem: Dem, mask: np.ndarray, crs: CRS) -> tuple[float, float, float, float]:
    from rasterio.warp import transform_bounds

    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    x0, y0 = dem.transform * (cols[0], rows[-1] + 1)
    x1, y1 = dem.transform * (cols[-1] + 1, rows[0])
    if dem.crs == crs:
        return (x0, y0, x1, y1)
    return transform_bounds(dem.crs, crs, x0, y0, x1, y1)


def _nice_size(km: float) -> float:
    for size in (0.25, 0.5, 1, 2, 2.5, 5):
        if size >= km:
            return float(size)
    return 5.0
