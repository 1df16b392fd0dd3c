"""A seeded synthetic mapping region that looks like PlanetScope over the Qinghai-Tibet Plateau.

Used by the tests, ``make demo`` and the benchmarks. What it makes (``generate_region``):

* a DEM at 3 m (written at 30 m like SRTM) of rolling plateau terrain, 4500-4800 m;
* vegetation (swamp meadow, alpine meadow, alpine steppe, arid desert meadow) and soil texture
  (silt loam, loamy sand, silt) following the terrain, as class rasters;
* the Qinghai-Tibet highway and railway crossing the region, as lines and in the imagery;
* retrogressive thaw slumps on gentle slopes, most facing north, clustered: a bright
  yellowish-brown floor with flow-parallel mudflow streaks, an arcuate headwall at the upslope
  edge in a narrow band of shadow; each initiates in a period (before the first year or between
  two years) and retreats upslope year by year. Shapes are real RTS outlines (Willow River,
  when given) or procedural ones, scaled to 0.05-25 ha (most under 10 ha);
* the look-alikes the paper names: drained ponds (water, then a bare basin), artificial pits by
  the road, and bare patches with an RTS-like colour but no shaded headwall and no retreat;
* for each year 2016-2020, two overlapping 16-bit BGRN scenes (surface reflectance x 10000,
  nodata 0) with per-year and per-scene radiometric differences; one scene misses a corner;
* truth: the RTS polygons of the main year with their initiation period, and every year's
  outline; the look-alikes; a JSON summary and a preview PNG.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from rasterio.crs import CRS
from rasterio.features import rasterize
from rasterio.transform import Affine, from_origin
from scipy import ndimage
from shapely import affinity
from shapely.geometry import LineString, Point, Polygon, box
from shapely.ops import unary_union

from ..core.progress import Feedback
from ..core.project.store import initiation_periods
from ..core.vectors import FeatureSet, read_features, write_features

# PlanetScope-like surface reflectance x 10000 in band order blue, green, red, NIR.
VEGETATION_CLASSES = {1: "swamp meadow", 2: "alpine meadow", 3: "alpine steppe", 4: "arid desert meadow"}
SOIL_CLASSES = {1: "silt loam", 2: "loamy sand", 3: "silt"}
_VEGETATION_BGRN = {
    1: (540, 770, 770, 2550),  # swamp meadow: darker, greener
    2: (590, 830, 920, 2350),  # alpine meadow
    3: (610, 870, 1000, 2200),  # alpine steppe: browner, sparser
    4: (640, 910, 1070, 2050),  # arid desert meadow: tan
}
_RTS_FLOOR_BGRN = np.array([690, 1050, 1340, 1800], dtype=np.float32)  # wet yellowish-brown soil
_RTS_TONGUE_BGRN = np.array([760, 960, 1180, 1650], dtype=np.float32)  # greyer mudflow lobe
_BARE_BGRN = np.array([740, 1000, 1290, 1950], dtype=np.float32)  # bare patch: RTS-like colour
_POND_WATER_BGRN = np.array([620, 560, 380, 260], dtype=np.float32)
_POND_BASIN_BGRN = np.array([980, 1080, 1160, 1500], dtype=np.float32)
_PIT_BGRN = np.array([1250, 1330, 1400, 1550], dtype=np.float32)
_ASPHALT_BGRN = np.array([600, 720, 790, 950], dtype=np.float32)
_GRAVEL_BGRN = np.array([1050, 1180, 1290, 1450], dtype=np.float32)
PERIODS_WEIGHTS = (0.5, 0.2, 0.15, 0.15)  # before the first year, then each following period


@dataclass
class RegionConfig:
    """Parameters of a synthetic region; the same config and seed give the same region."""

    size: int = 2000
    pixel_m: float = 3.0
    years: tuple[int, ...] = (2016, 2017, 2018, 2019, 2020)
    main_year: int = 2019
    seed: int = 0
    crs: str = "EPSG:32646"  # UTM 46N: the Beiluhe region of the Qinghai-Tibet Engineering Corridor
    origin: tuple[float, float] = (488_000.0, 3_862_000.0)
    rts_per_km2: float = 1.1
    ponds_per_km2: float = 0.25
    pits_per_km2: float = 0.18
    bare_per_km2: float = 0.4
    shapes_path: str | None = None  # a polygon file of real RTS outlines to borrow shapes from
    scenes_per_year: int = 2

    @property
    def extent_km2(self) -> float:
        return (self.size * self.pixel_m / 1000.0) ** 2


@dataclass
class SlumpTruth:
    rts_id: int
    initiation_period: str
    first_year: int
    retreat_m_per_year: float
    outlines: dict[int, Polygon] = field(default_factory=dict)  # year -> outline
    downslope: tuple[float, float] = (0.0, -1.0)


@dataclass
class Region:
    """Paths and facts of a generated region."""

    folder: Path
    config: RegionConfig
    scenes: dict[int, list[Path]]
    dem: Path
    roads: Path
    truth: Path
    vegetation: Path
    soil: Path
    preview: Path | None
    summary: dict

    def truth_uri(self, layer: str = "rts") -> str:
        return f"{self.truth}|layername={layer}"


# -- terrain --


def _fractal_field(rng: np.random.Generator, shape: tuple[int, int], beta: float) -> np.ndarray:
    """Gaussian random field with power spectrum ~ f^-beta, normalised to zero mean, unit std."""
    noise = rng.standard_normal(shape)
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    frequency = np.sqrt(fx * fx + fy * fy)
    frequency[0, 0] = 1.0
    spectrum = np.fft.rfft2(noise) / frequency ** (beta / 2)
    spectrum[0, 0] = 0
    field_ = np.fft.irfft2(spectrum, s=shape)
    return ((field_ - field_.mean()) / field_.std()).astype(np.float32)


def _make_dem(rng: np.random.Generator, config: RegionConfig) -> np.ndarray:
    coarse_n = config.size // 10 + 8
    coarse = _fractal_field(rng, (coarse_n, coarse_n), beta=3.8) * 26.0
    # a regional tilt and a couple of broad hills so that long gentle slopes exist
    yy, xx = np.mgrid[0:coarse_n, 0:coarse_n] / coarse_n
    tilt_angle = rng.uniform(0, 2 * math.pi)
    coarse += 40.0 * (np.cos(tilt_angle) * xx + np.sin(tilt_angle) * yy)
    for _ in range(3):
        cx, cy, r, h = (
            rng.uniform(0.1, 0.9),
            rng.uniform(0.1, 0.9),
            rng.uniform(0.15, 0.35),
            rng.uniform(15, 40),
        )
        coarse += h * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
    fine = ndimage.zoom(coarse, 10, order=3)[4 : 4 + config.size, 4 : 4 + config.size]
    detail = _unit_noise(rng, fine.shape[0], 8.0)[: fine.shape[0], : fine.shape[1]] * 1.2
    dem = 4600.0 + fine + detail
    return dem.astype(np.float32)


def _unit_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """Gaussian noise smoothed over ``sigma`` pixels, rescaled to unit standard deviation."""
    noise = ndimage.gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), sigma)
    return noise / (noise.std() + 1e-9)


def _slope_aspect(
    dem: np.ndarray, pixel_m: float, smooth_px: float = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """slope (deg), aspect (deg from north, direction the slope faces), and the gradient (dz/dx east,
    dz/dy north) of ``dem`` (rows run south)."""
    surface = ndimage.gaussian_filter(dem, smooth_px) if smooth_px else dem
    d_row, d_col = np.gradient(surface, pixel_m)
    gx, gy = d_col, -d_row  # east and north components of the gradient
    slope = np.degrees(np.arctan(np.hypot(gx, gy)))
    aspect = (np.degrees(np.arctan2(-gx, -gy)) + 360.0) % 360.0  # downslope direction
    return slope, aspect, gx, gy


def _hillshade(dem: np.ndarray, pixel_m: float, azimuth: float = 135.0, altitude: float = 60.0) -> np.ndarray:
    _, _, gx, gy = _slope_aspect(dem, pixel_m)
    az, alt = math.radians(azimuth), math.radians(altitude)
    # surface normal (-gx, -gy, 1); sun vector (sin az cos alt, cos az cos alt, sin alt)
    sun = np.array(
        [math.sin(az) * math.cos(alt), math.cos(az) * math.cos(alt), math.sin(alt)], dtype=np.float32
    )
    norm = np.sqrt(gx * gx + gy * gy + 1.0)
    shade = (-gx * sun[0] - gy * sun[1] + sun[2]) / norm
    return np.clip(shade / sun[2], 0.3, 1.4).astype(np.float32)


def _land_cover(rng, dem, slope, aspect, config) -> tuple[np.ndarray, np.ndarray]:
    size = config.size
    valley = ndimage.gaussian_filter(dem, 60) - dem  # positive in valleys (topographic position)
    northness = np.cos(np.radians(aspect))
    noise = ndimage.gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), 25)
    noise /= noise.std() + 1e-6
    elevation = (dem - dem.mean()) / (dem.std() + 1e-6)
    vegetation = np.full((size, size), 2, dtype=np.uint8)
    dry = 0.8 * elevation - 0.7 * northness * np.clip(slope / 6.0, 0, 1) + 0.5 * noise
    vegetation[dry > 0.55] = 3
    vegetation[dry > 1.9] = 4
    vegetation[(valley > 4.0) & (slope < 3.0)] = 1
    soil = np.where(np.isin(vegetation, (1, 2)), 1, 2).astype(np.uint8)
    soil_noise = ndimage.gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), 40)
    soil[(soil_noise > 2.2 * soil_noise.std())] = 3
    flip = soil_noise < -1.6 * soil_noise.std()
    soil[flip & (soil == 1)] = 2
    return vegetation, soil


# -- shapes --


def _procedural_slump(rng: np.random.Generator) -> Polygon:
    """An RTS outline in local metres: u downslope (+), v across; headwall arc at u < 0."""
    width = 1.0
    length = rng.uniform(0.7, 1.6)
    arc = rng.uniform(0.2, 0.35)
    tongue = rng.uniform(0.25, 0.55)
    wobble = rng.uniform(0.02, 0.06)
    points = []
    for v in np.linspace(-0.5, 0.5, 25):  # headwall, left to right
        points.append((-arc * (1 - (2 * v) ** 2), v))
    for t in np.linspace(0, 1, 16)[1:]:  # right side down to the tongue
        half = 0.5 - (0.5 - tongue / 2) * t**1.3
        points.append((t * length, half))
    for a in np.linspace(0, math.pi, 9)[1:-1]:  # rounded tongue
        points.append((length + tongue / 2 * math.sin(a) * 0.8, tongue / 2 * math.cos(a)))
    for t in np.linspace(1, 0, 16)[:-1]:  # left side back up
        half = 0.5 - (0.5 - tongue / 2) * t**1.3
        points.append((t * length, -half))
    jitter = 1.0 + wobble * rng.standard_normal(len(points))
    points = [(u * j, v * j) for (u, v), j in zip(points, jitter)]
    polygon = Polygon([(v * width, u * width) for u, v in points]).buffer(0)
    return _largest(polygon)


def _largest(geometry) -> Polygon:
    if geometry.geom_type == "MultiPolygon":
        return max(geometry.geoms, key=lambda g: g.area)
    return geometry


def _real_slump_templates(path: str | None) -> list[Polygon]:
    """Real RTS outlines centred and oriented: the long axis along +u (downslope), wide end upslope.

    Local coordinates are (x = v across, y = u downslope) to match the procedural shapes.
    """
    if not path or not Path(path).exists():
        return []
    templates = []
    for geometry in read_features(path, polygons_only=True).geometries:
        polygon = _largest(geometry.buffer(0))
        if polygon.area < 300:
            continue
        coords = np.asarray(polygon.exterior.coords)
        centred = coords - coords.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        angle = math.degrees(math.atan2(vt[0][1], vt[0][0]))
        rotated = affinity.rotate(polygon, -angle + 90.0, origin="centroid", use_radians=False)
        rotated = affinity.translate(rotated, -rotated.centroid.x, -rotated.centroid.y)
        minx, miny, maxx, maxy = rotated.bounds
        span = maxy - miny
        low = rotated.intersection(box(minx, miny, maxx, miny + span / 4)).area
        high = rotated.intersection(box(minx, maxy - span / 4, maxx, maxy)).area
        if high > low:  # put the wider end at negative u (upslope)
            rotated = affinity.scale(rotated, 1, -1, origin=(0, 0))
        scale = 1.0 / math.sqrt(rotated.area)
        templates.append(affinity.scale(rotated, scale, scale, origin=(0, 0)))
    return templates


def _place(
    template: Polygon, centre: tuple[float, float], downslope: tuple[float, float], area_m2: float
) -> Polygon:
    """Scale a unit-area local template to ``area_m2`` and orient +u along ``downslope``."""
    scale = math.sqrt(area_m2 / template.area)
    scaled = affinity.scale(template, scale, scale, origin=(0, 0))
    dx, dy = downslope
    # local (x=v, y=u) -> map: point = centre + u*d + v*c, with c = (dy, -dx) (right of d)
    matrix = [dy, dx, -dx, dy, centre[0], centre[1]]
    return affinity.affine_transform(scaled, matrix)


def _blob(rng, centre, radius_m, irregularity=0.35, n=28) -> Polygon:
    angles = np.linspace(0, 2 * math.pi, n, endpoint=False)
    harmonics = sum(
        rng.uniform(0, irregularity / k) * np.cos(k * angles + rng.uniform(0, 2 * math.pi))
        for k in range(2, 5)
    )
    radii = radius_m * (1 + harmonics)
    return Polygon(
        [(centre[0] + r * math.cos(a), centre[1] + r * math.sin(a)) for r, a in zip(radii, angles)]
    ).buffer(0)


# -- the generator --


class _Canvas:
    """Map <-> pixel helpers for one region."""

    def __init__(self, config: RegionConfig) -> None:
        self.config = config
        self.transform: Affine = from_origin(
            config.origin[0], config.origin[1], config.pixel_m, config.pixel_m
        )
        self.size = config.size

    def to_pixel(self, x: float, y: float) -> tuple[float, float]:
        col, row = ~self.transform * (x, y)
        return col, row

    def to_map(self, col: float, row: float) -> tuple[float, float]:
        return self.transform * (col, row)

    def window_of(self, geometry, pad: int = 6) -> tuple[int, int, int, int]:
        minx, miny, maxx, maxy = geometry.bounds
        c0, r0 = self.to_pixel(minx, maxy)
        c1, r1 = self.to_pixel(maxx, miny)
        c0, r0 = max(0, int(c0) - pad), max(0, int(r0) - pad)
        c1, r1 = min(self.size, math.ceil(c1) + pad), min(self.size, math.ceil(r1) + pad)
        return r0, r1, c0, c1

    def mask(self, geometry, window) -> np.ndarray:
        r0, r1, c0, c1 = window
        transform = self.transform * Affine.translation(c0, r0)
        return rasterize(
            [(geometry, 1)], out_shape=(r1 - r0, c1 - c0), transform=transform, dtype="uint8"
        ).astype(bool)

    def soft_mask(self, geometry, window, sigma: float = 0.6) -> np.ndarray:
        return ndimage.gaussian_filter(self.mask(geometry, window).astype(np.float32), sigma)

    def local_coords(self, window, centre, downslope) -> tuple[np.ndarray, np.ndarray]:
        """(u downslope, v across) in metres of every pixel centre of ``window``."""
        r0, r1, c0, c1 = window
        rows, cols = np.mgrid[r0:r1, c0:c1] + 0.5
        x = self.transform.c + cols * self.transform.a
        y = self.transform.f + rows * self.transform.e
        dx, dy = downslope
        ex, ey = x - centre[0], y - centre[1]
        return ex * dx + ey * dy, ex * dy - ey * dx


def generate_region(
    out_dir: str | os.PathLike, config: RegionConfig | None = None, feedback: Feedback | None = None
) -> Region:
    """Generate the synthetic region into ``out_dir`` (see the module docstring)."""
    config = config or RegionConfig()
    feedback = feedback or Feedback()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    canvas = _Canvas(config)
    size, pixel = config.size, config.pixel_m
    crs = CRS.from_user_input(config.crs)

    dem = _make_dem(rng, config)
    slope, aspect, gx, gy = _slope_aspect(dem, pixel, smooth_px=8)
    shade = _hillshade(dem, pixel)
    vegetation, soil = _land_cover(rng, dem, slope, aspect, config)
    feedback.step(0.1)

    # base reflectance: class colour x texture x hillshade
    base = np.zeros((4, size, size), dtype=np.float32)
    for code, colour in _VEGETATION_BGRN.items():
        selected = vegetation == code
        for band in range(4):
            base[band][selected] = colour[band]
    base = np.stack([ndimage.gaussian_filter(b, 2.0) for b in base])
    texture = 1.0 + 0.03 * _unit_noise(rng, size, 0.8) + 0.03 * _unit_noise(rng, size, 4.0)
    texture += 0.03 * _unit_noise(rng, size, 15.0)
    base *= (texture * shade)[None]

    # roads: the highway and, a few hundred metres away, the railway
    extent = size * pixel
    x0, y_top = config.origin
    control_x = x0 + extent * (0.35 + 0.3 * rng.random()) + rng.normal(0, extent * 0.08, 5)
    control_y = np.linspace(y_top + 50, y_top - extent - 50, 5)
    highway = LineString(zip(control_x, control_y)).simplify(0)
    highway = _smooth_line(highway)
    railway = highway.parallel_offset(rng.uniform(250, 420), "left" if rng.random() < 0.5 else "right")
    railway = _largest_line(railway)
    occupied = [highway.buffer(25), railway.buffer(25)]

    # features
    cluster_centres = [
        (x0 + rng.uniform(0.15, 0.85) * extent, y_top - rng.uniform(0.15, 0.85) * extent) for _ in range(3)
    ]
    templates = _real_slump_templates(config.shapes_path)
    slumps = _place_slumps(
        rng, config, canvas, slope, aspect, gx, gy, occupied, cluster_centres, templates, highway, railway
    )
    ponds = _place_blobs(
        rng, config, canvas, slope, occupied, config.ponds_per_km2, (18, 70), max_slope=2.5, kind="pond"
    )
    pits = _place_pits(rng, config, canvas, highway, occupied)
    bare = _place_blobs(
        rng, config, canvas, slope, occupied, config.bare_per_km2, (20, 75), max_slope=14, kind="bare"
    )
    feedback.step(0.2)

    periods = initiation_periods(list(config.years))
    # per-pond drainage year (None: drained before the first year)
    pond_drained = [None if rng.random() < 0.4 else int(rng.choice(config.years[1:])) for _ in ponds]
    pit_opened = [config.years[0] if rng.random() < 0.6 else int(rng.choice(config.years[1:])) for _ in pits]

    scenes: dict[int, list[Path]] = {}
    year_gain = {year: rng.normal(1.0, 0.045, 4) for year in config.years}
    year_haze = {year: rng.uniform(0, 120) for year in config.years}
    green_up = {year: rng.normal(1.0, 0.05) for year in config.years}
    missing_corner_year = config.years[1] if len(config.years) > 1 else None
    for index, year in enumerate(config.years):
        image = base.copy()
        image[3] *= green_up[year]
        _draw_roads(image, canvas, highway, railway)
        for pit, opened in zip(pits, pit_opened):
            if year >= opened:
                _draw_pit(image, canvas, pit)
        for pond, drained in zip(ponds, pond_drained):
            _draw_pond(image, canvas, pond, water=(drained is not None and year < drained))
        for patch in bare:
            _draw_flat(image, canvas, patch, _BARE_BGRN, rng, streaks=False)
        for slump in slumps:
            outline = slump.outlines.get(year)
            if outline is not None:
                _draw_slump(image, canvas, outline, slump, rng)
        image = image * year_gain[year][:, None, None]
        image[0] += year_haze[year]
        image[1] += 0.5 * year_haze[year]
        image += rng.normal(0, 12, image.shape).astype(np.float32)
        scenes[year] = _write_scenes(out, year, image, canvas, crs, rng, config, missing_corner_year == year)
        feedback.step(0.2 + 0.6 * (index + 1) / len(config.years))

    # rasters: DEM at 30 m (as SRTM), vegetation and soil at 30 m
    factor = max(1, round(30.0 / pixel))
    dem_path = _write_coarse(out / "dem.tif", dem, factor, canvas, crs, "float32", -9999.0, np.mean)
    veg_path = _write_coarse(
        out / "vegetation.tif", vegetation, factor, canvas, crs, "uint8", 0, _mode, VEGETATION_CLASSES
    )
    soil_path = _write_coarse(out / "soil.tif", soil, factor, canvas, crs, "uint8", 0, _mode, SOIL_CLASSES)

    # vectors
    roads_path = out / "roads.gpkg"
    write_features(
        roads_path,
        FeatureSet(
            [highway, railway],
            [
                {"kind": "highway", "name": "Qinghai-Tibet Highway (G109)"},
                {"kind": "railway", "name": "Qinghai-Tibet Railway"},
            ],
            crs,
        ),
        "roads",
        geometry_type="LineString",
        overwrite_file=True,
    )
    truth_path = out / "truth.gpkg"
    main = config.main_year
    main_slumps = [s for s in slumps if main in s.outlines]
    write_features(
        truth_path,
        FeatureSet(
            [s.outlines[main] for s in main_slumps],
            [
                {
                    "rts_id": s.rts_id,
                    "initiation_period": s.initiation_period,
                    "first_year": s.first_year,
                    "retreat_m_per_year": round(s.retreat_m_per_year, 1),
                    "area_m2": round(s.outlines[main].area, 1),
                    "year": main,
                }
                for s in main_slumps
            ],
            crs,
        ),
        "rts",
        overwrite_file=True,
    )
    write_features(
        truth_path,
        FeatureSet(
            [outline for s in slumps for outline in s.outlines.values()],
            [
                {"rts_id": s.rts_id, "year": y, "area_m2": round(o.area, 1)}
                for s in slumps
                for y, o in s.outlines.items()
            ],
            crs,
        ),
        "rts_by_year",
    )
    lookalike_geometries = ponds + pits + bare
    lookalike_attributes = (
        [{"kind": "drained_pond", "drained_year": d} for d in pond_drained]
        + [{"kind": "artificial_pit", "opened_year": o} for o in pit_opened]
        + [{"kind": "bare_patch"} for _ in bare]
    )
    write_features(truth_path, FeatureSet(lookalike_geometries, lookalike_attributes, crs), "lookalikes")

    areas_ha = np.array([s.outlines[main].area / 1e4 for s in main_slumps]) if main_slumps else np.zeros(0)
    near_road = sum(
        1
        for s in main_slumps
        if min(highway.distance(s.outlines[main].centroid), railway.distance(s.outlines[main].centroid))
        <= 500
    )
    summary = {
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
        "extent_km2": round(config.extent_km2, 2),
        "rts_main_year": len(main_slumps),
        "rts_total": len(slumps),
        "rts_area_ha": {
            "min": round(float(areas_ha.min()), 3) if areas_ha.size else None,
            "median": round(float(np.median(areas_ha)), 3) if areas_ha.size else None,
            "max": round(float(areas_ha.max()), 3) if areas_ha.size else None,
            "share_under_10ha": round(float((areas_ha < 10).mean()), 3) if areas_ha.size else None,
        },
        "rts_near_road_500m": near_road,
        "initiation_periods": {p: sum(1 for s in main_slumps if s.initiation_period == p) for p in periods},
        "north_facing_share": round(
            float(
                np.mean(
                    [
                        abs(((math.degrees(math.atan2(s.downslope[0], s.downslope[1])) + 180) % 360) - 180)
                        <= 90
                        for s in main_slumps
                    ]
                )
            )
            if main_slumps
            else 0.0,
            3,
        ),
        "lookalikes": {"drained_pond": len(ponds), "artificial_pit": len(pits), "bare_patch": len(bare)},
        "templates": "real outlines" if templates else "procedural",
        "scenes": {str(y): [p.name for p in paths] for y, paths in scenes.items()},
    }
    (out / "region.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    region = Region(out, config, scenes, dem_path, roads_path, truth_path, veg_path, soil_path, None, summary)
    feedback.step(1.0)
    return region


def _smooth_line(line: LineString, n: int = 200) -> LineString:
    from scipy.interpolate import CubicSpline

    coords = np.asarray(line.coords)
    t = np.linspace(0, 1, len(coords))
    spline_x, spline_y = CubicSpline(t, coords[:, 0]), CubicSpline(t, coords[:, 1])
    tt = np.linspace(0, 1, n)
    return LineString(zip(spline_x(tt), spline_y(tt)))


def _largest_line(geometry) -> LineString:
    if geometry.geom_type == "MultiLineString":
        return max(geometry.geoms, key=lambda g: g.length)
    return geometry


def _free(geometry, occupied: list) -> bool:
    return not any(geometry.intersects(o) for o in occupied)


def _inside(geometry, canvas: _Canvas, margin_m: float) -> bool:
    x0, y_top = canvas.config.origin
    extent = canvas.size * canvas.config.pixel_m
    return box(x0 + margin_m, y_top - extent + margin_m, x0 + extent - margin_m, y_top - margin_m).contains(
        geometry
    )


def _place_slumps(
    rng, config, canvas, slope, aspect, gx, gy, occupied, clusters, templates, highway, railway
) -> list[SlumpTruth]:
    target = max(1, round(config.rts_per_km2 * config.extent_km2))
    x0, y_top = config.origin
    extent = config.size * config.pixel_m
    periods = initiation_periods(list(config.years))
    weights = np.array(PERIODS_WEIGHTS[: len(periods)] + (0.1,) * max(0, len(periods) - len(PERIODS_WEIGHTS)))
    weights = weights / weights.sum()
    slumps: list[SlumpTruth] = []
    for _ in range(target * 150):
        if len(slumps) >= target:
            break
        roll = rng.random()
        if roll < 0.6:
            cx, cy = clusters[rng.integers(len(clusters))]
            centre = (cx + rng.normal(0, extent * 0.1), cy + rng.normal(0, extent * 0.1))
        elif roll < 0.72:  # some along the corridor, as the paper's near-road slumps
            along = highway.interpolate(rng.uniform(0, highway.length))
            centre = (along.x + rng.normal(0, 250), along.y + rng.normal(0, 250))
        else:
            centre = (x0 + rng.uniform(0, extent), y_top - rng.uniform(0, extent))
        col, row = canvas.to_pixel(*centre)
        if not (0 <= col < config.size and 0 <= row < config.size):
            continue
        r, c = int(row), int(col)
        slope_deg = slope[r, c]
        if not 2.0 <= slope_deg <= 16.0:
            continue
        north_facing = abs(((aspect[r, c] + 180) % 360) - 180) <= 90
        if rng.random() > (0.9 if north_facing else 0.2):
            continue
        norm = math.hypot(gx[r, c], gy[r, c])
        downslope = (-gx[r, c] / norm, -gy[r, c] / norm)
        area = float(np.clip(rng.lognormal(math.log(9000), 0.8), 800, 120_000))
        if rng.random() < 0.03:
            area = float(rng.uniform(100_000, 200_000))
        template = (
            templates[rng.integers(len(templates))]
            if templates and rng.random() < 0.6
            else _procedural_slump(rng)
        )
        base = _place(template, centre, downslope, area * 0.8)
        period_index = int(rng.choice(len(periods), p=weights))
        first_year = config.years[0] if period_index == 0 else config.years[period_index]
        rate = float(rng.uniform(3.0, 14.0)) * (1.0 + area / 60_000)
        outlines: dict[int, Polygon] = {}
        for year in config.years:
            if year < first_year:
                continue
            retreat = rate * (year - first_year) + (rate if period_index == 0 else 0.0)
            outlines[year] = _retreat(base, downslope, retreat)
        final = outlines[config.years[-1]]
        if not final.is_valid or not _inside(final, canvas, 40) or not _free(final.buffer(30), occupied):
            continue
        if highway.distance(final) < 40 or railway.distance(final) < 40:
            continue
        occupied.append(final.buffer(30))
        slumps.append(
            SlumpTruth(len(slumps) + 1, periods[period_index], first_year, rate, outlines, downslope)
        )
    return slumps


def _retreat(base: Polygon, downslope: tuple[float, float], distance_m: float) -> Polygon:
    """The outline after the headwall has retreated ``distance_m`` upslope (the floor stays)."""
    if distance_m <= 0:
        return base
    steps = max(2, int(distance_m / 1.5) + 1)
    copies = [
        affinity.translate(base, -downslope[0] * d, -downslope[1] * d)
        for d in np.linspace(0, distance_m, steps)
    ]
    return _largest(unary_union(copies).buffer(0.5).buffer(-0.5))


def _place_blobs(
    rng, config, canvas, slope, occupied, density, radius_range, max_slope, kind
) -> list[Polygon]:
    target = max(1, round(density * config.extent_km2))
    x0, y_top = config.origin
    extent = config.size * config.pixel_m
    placed: list[Polygon] = []
    for _ in range(target * 200):
        if len(placed) >= target:
            break
        centre = (x0 + rng.uniform(0, extent), y_top - rng.uniform(0, extent))
        col, row = canvas.to_pixel(*centre)
        if not (0 <= col < config.size and 0 <= row < config.size) or slope[int(row), int(col)] > max_slope:
            continue
        radius = rng.uniform(*radius_range)
        if kind == "pond":
            blob = affinity.scale(Point(centre).buffer(radius, quad_segs=16), 1.0, rng.uniform(0.6, 1.0))
            blob = affinity.rotate(blob, rng.uniform(0, 180))
        else:
            blob = _blob(rng, centre, radius)
        if not blob.is_valid or not _inside(blob, canvas, 30) or not _free(blob.buffer(25), occupied):
            continue
        occupied.append(blob.buffer(25))
        placed.append(blob)
    return placed


def _place_pits(rng, config, canvas, highway, occupied) -> list[Polygon]:
    target = max(1, round(config.pits_per_km2 * config.extent_km2))
    placed: list[Polygon] = []
    for _ in range(target * 200):
        if len(placed) >= target:
            break
        at = rng.uniform(0.05, 0.95) * highway.length
        point, ahead = highway.interpolate(at), highway.interpolate(min(highway.length, at + 10))
        heading = math.degrees(math.atan2(ahead.y - point.y, ahead.x - point.x))
        offset = rng.uniform(45, 250) * (1 if rng.random() < 0.5 else -1)
        normal = math.radians(heading + 90)
        centre = (point.x + offset * math.cos(normal), point.y + offset * math.sin(normal))
        pit = affinity.rotate(
            box(-rng.uniform(12, 40), -rng.uniform(8, 22), rng.uniform(12, 40), rng.uniform(8, 22)),
            heading + rng.normal(0, 8),
            origin=(0, 0),
        )
        pit = affinity.translate(pit, *centre)
        if not _inside(pit, canvas, 30) or not _free(pit.buffer(20), occupied):
            continue
        occupied.append(pit.buffer(20))
        placed.append(pit)
    return placed


# -- drawing --


def _blend(image: np.ndarray, window, alpha: np.ndarray, colour: np.ndarray) -> None:
    r0, r1, c0, c1 = window
    view = image[:, r0:r1, c0:c1]
    view *= 1 - alpha[None]
    view += alpha[None] * colour


def _draw_flat(image, canvas, polygon, colour, rng, streaks=False) -> None:
    window = canvas.window_of(polygon)
    alpha = canvas.soft_mask(polygon, window)
    r0, r1, c0, c1 = window
    texture = 1 + 0.06 * rng.standard_normal((r1 - r0, c1 - c0)).astype(np.float32)
    texture = ndimage.gaussian_filter(texture, 1.0)
    _blend(image, window, alpha, colour[:, None, None] * texture[None])


def _draw_pond(image, canvas, pond, water: bool) -> None:
    window = canvas.window_of(pond)
    alpha = canvas.soft_mask(pond, window, sigma=1.0)
    if water:
        _blend(image, window, alpha, _POND_WATER_BGRN[:, None, None])
        return
    core = canvas.soft_mask(pond.buffer(-pond.length / 40), window, sigma=2.0)
    colour = _POND_BASIN_BGRN[:, None, None] * (1 - 0.25 * core[None])  # wetter, darker centre
    _blend(image, window, alpha, colour)


def _draw_pit(image, canvas, pit) -> None:
    window = canvas.window_of(pit)
    alpha = canvas.soft_mask(pit, window, sigma=0.5)
    inner = canvas.soft_mask(pit.buffer(-6), window, sigma=0.5)
    colour = _PIT_BGRN[:, None, None] * (1 - 0.15 * inner[None])
    _blend(image, window, alpha, colour)


def _draw_roads(image, canvas, highway, railway) -> None:
    for line, width, colour, rim in (
        (highway, 6.0, _ASPHALT_BGRN, _GRAVEL_BGRN),
        (railway, 4.0, _ASPHALT_BGRN * 0.7, _GRAVEL_BGRN),
    ):
        embankment = line.buffer(width + 5, cap_style=2)
        core = line.buffer(width, cap_style=2)
        clipped = embankment.intersection(box(*_bounds(canvas)))
        if clipped.is_empty:
            continue
        window = canvas.window_of(clipped)
        _blend(image, window, canvas.soft_mask(clipped, window, 0.5), rim[:, None, None])
        _blend(
            image, window, canvas.soft_mask(core.intersection(clipped), window, 0.5), colour[:, None, None]
        )


def _bounds(canvas) -> tuple[float, float, float, float]:
    x0, y_top = canvas.config.origin
    extent = canvas.size * canvas.config.pixel_m
    return x0, y_top - extent, x0 + extent, y_top


def _draw_slump(image, canvas, outline: Polygon, slump: SlumpTruth, rng) -> None:
    window = canvas.window_of(outline, pad=8)
    mask = canvas.mask(outline, window)
    alpha = ndimage.gaussian_filter(mask.astype(np.float32), 0.6)
    u, v = canvas.local_coords(window, (outline.centroid.x, outline.centroid.y), slump.downslope)
    inside_u = u[mask]
    u_min, u_max = (inside_u.min(), inside_u.max()) if inside_u.size else (0.0, 1.0)
    t = np.clip((u - u_min) / max(1e-6, u_max - u_min), 0, 1)  # 0 at the headwall, 1 at the toe
    streaks = 0.5 + 0.5 * np.sin(2 * math.pi * v / rng.uniform(9, 16) + 0.8 * np.sin(u / 17.0))
    colour = (1 - t)[None] * _RTS_FLOOR_BGRN[:, None, None] + t[None] * _RTS_TONGUE_BGRN[:, None, None]
    grain = ndimage.gaussian_filter(rng.standard_normal(t.shape).astype(np.float32), 0.7)
    colour = colour * (0.95 + 0.06 * streaks + 0.08 * grain)[None]
    _blend(image, window, alpha, colour)
    # the headwall: a narrow band of shadow along the upslope edge, inside the slump
    dx, dy = slump.downslope
    up_col, up_row = -dx, dy  # one pixel upslope, in (col, row)
    shadow = np.zeros_like(mask)
    width_px = 2 + int(outline.area > 20_000)
    for k in range(1, width_px + 1):
        shifted = ndimage.shift(mask.astype(np.uint8), (-up_row * k, -up_col * k), order=0, mode="constant")
        shadow |= mask & ~shifted.astype(bool)
    shadow &= t < 0.5
    shadow_alpha = ndimage.gaussian_filter(shadow.astype(np.float32), 0.5)
    r0, r1, c0, c1 = window
    image[:, r0:r1, c0:c1] *= (1 - 0.6 * shadow_alpha)[None]


def _mode(blocks: np.ndarray, axis: int = -1) -> np.ndarray:
    """Most frequent class along the last axis (classes are small positive integers)."""
    classes = np.arange(1, int(blocks.max()) + 1)
    counts = np.stack([(blocks == k).sum(axis=axis) for k in classes], axis=-1)
    return classes[counts.argmax(axis=-1)]


def _block_reduce(array: np.ndarray, factor: int, reducer) -> np.ndarray:
    """Reduce ``factor`` x ``factor`` blocks with ``reducer(blocks, axis=-1)``."""
    rows, cols = array.shape[0] // factor, array.shape[1] // factor
    blocks = array[: rows * factor, : cols * factor].reshape(rows, factor, cols, factor)
    blocks = blocks.swapaxes(1, 2).reshape(rows, cols, -1)
    return reducer(blocks, axis=-1).astype(array.dtype)


def _write_coarse(path, array, factor, canvas, crs, dtype, nodata, reducer, classes=None) -> Path:
    import rasterio

    from ..core.raster_io import GTIFF_PROFILE

    data = _block_reduce(array, factor, reducer)
    transform = canvas.transform * Affine.scale(factor)
    profile = {
        **GTIFF_PROFILE,
        "width": data.shape[1],
        "height": data.shape[0],
        "count": 1,
        "dtype": dtype,
        "nodata": nodata,
        "crs": crs,
        "transform": transform,
    }
    if dtype == "float32":
        profile["predictor"] = 3  # the floating-point predictor
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
        if classes:
            dst.update_tags(1, **{f"CLASS_{k}": v for k, v in classes.items()})
            dst.set_band_description(1, "class")
    if classes:
        _set_category_names(path, classes)
    return Path(path)


def _set_category_names(path: Path, classes: dict[int, str]) -> None:
    """Write class names as GDAL category names, which QGIS shows as the legend."""
    from osgeo import gdal

    dataset = gdal.Open(str(path), gdal.GA_Update)
    names = [""] * (max(classes) + 1)
    for code, name in classes.items():
        names[code] = name
    dataset.GetRasterBand(1).SetCategoryNames(names)
    dataset = None


def _write_scenes(out, year, image, canvas, crs, rng, config, missing_corner) -> list[Path]:
    import rasterio

    from ..core.raster_io import GTIFF_PROFILE

    folder = out / "scenes" / str(year)
    folder.mkdir(parents=True, exist_ok=True)
    size = config.size
    if config.scenes_per_year <= 1:
        extents = [(0, size)]
    else:
        extents = [(0, int(size * 0.64)), (int(size * 0.36), size)]
    paths = []
    for index, (c0, c1) in enumerate(extents):
        scene = image[:, :, c0:c1] * np.float32(1.0 + 0.015 * index)
        data = np.clip(np.rint(scene), 1, 10000).astype(np.uint16)
        if missing_corner and index == len(extents) - 1:
            rows, cols = np.mgrid[0:size, 0 : c1 - c0]
            data[:, rows + (c1 - c0 - cols) < size * 0.22] = 0
            # the other scene does not reach this corner either
        transform = canvas.transform * Affine.translation(c0, 0)
        profile = {
            **GTIFF_PROFILE,
            "width": c1 - c0,
            "height": size,
            "count": 4,
            "dtype": "uint16",
            "nodata": 0,
            "crs": crs,
            "transform": transform,
            "interleave": "pixel",
        }
        path = folder / f"PS_{year}0{7 + index % 2}15_scene{'ab'[index % 2]}.tif"
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
            for band, name in enumerate(("blue", "green", "red", "nir"), start=1):
                dst.set_band_description(band, name)
            dst.update_tags(
                ACQUISITION_DATE=f"{year}-0{7 + index % 2}-15", SYNTHETIC="RTS Mapper synthetic region"
            )
        paths.append(path)
    return paths


def render_preview(
    region: Region, out_png: str | os.PathLike | None = None, slumps_in_strip: int = 3
) -> Path:
    """A preview PNG: the main year with truth and look-alikes, terrain, land cover, and time-lapse
    strips of a few slumps (to check by eye that it reads like the paper's figures)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import rasterio

    out_png = Path(out_png or region.folder / "preview.png")
    config = region.config
    rgb_by_year = {year: _quicklook(paths) for year, paths in region.scenes.items()}
    truth = read_features(region.truth_uri("rts"))
    by_year = read_features(region.truth_uri("rts_by_year"))
    lookalikes = read_features(region.truth_uri("lookalikes"))
    roads = read_features(region.roads)
    transform = from_origin(config.origin[0], config.origin[1], config.pixel_m, config.pixel_m)

    def draw(ax, geometries, colour, width=0.8):
        for geometry in geometries:
            for part in getattr(geometry, "geoms", [geometry]):
                coords = np.asarray(part.exterior.coords if hasattr(part, "exterior") else part.coords)
                cols, rows = (~transform) * (coords[:, 0], coords[:, 1])
                ax.plot(cols, rows, color=colour, linewidth=width)

    figure = plt.figure(figsize=(15, 14), dpi=110)
    grid = figure.add_gridspec(3, 3, height_ratios=[1, 1, 1.15])
    main_ax = figure.add_subplot(grid[0:2, 0:2])
    main_ax.imshow(rgb_by_year[config.main_year])
    draw(main_ax, truth.geometries, "yellow")
    draw(main_ax, lookalikes.geometries, "cyan")
    main_ax.set_title(
        f"Synthetic PlanetScope {config.main_year} (RGB, 3 m): RTSs yellow, look-alikes cyan (ponds, pits, bare)",
        fontsize=10,
    )
    main_ax.set_axis_off()

    with rasterio.open(region.dem) as dataset:
        dem = dataset.read(1)
    terrain_ax = figure.add_subplot(grid[0, 2])
    shade = _hillshade(dem, 30.0, azimuth=315, altitude=45)
    terrain_ax.imshow(dem, cmap="terrain", extent=(0, config.size, config.size, 0))
    terrain_ax.imshow(shade, cmap="gray", alpha=0.35, extent=(0, config.size, config.size, 0))
    draw(terrain_ax, truth.geometries, "black", 0.6)
    draw(terrain_ax, roads.geometries, "red", 1.0)
    terrain_ax.set_title(f"DEM 30 m ({dem.min():.0f}-{dem.max():.0f} m), roads red", fontsize=9)
    terrain_ax.set_axis_off()

    with rasterio.open(region.vegetation) as dataset:
        vegetation = dataset.read(1)
    cover_ax = figure.add_subplot(grid[1, 2])
    cover_ax.imshow(
        vegetation,
        cmap=matplotlib.colors.ListedColormap(["#2f6f4e", "#7fae5a", "#c8b46a", "#d9c7a0"]),
        vmin=1,
        vmax=4,
        extent=(0, config.size, config.size, 0),
        interpolation="nearest",
    )
    draw(cover_ax, truth.geometries, "black", 0.6)
    cover_ax.set_title("Vegetation: swamp / alpine meadow / steppe / desert meadow", fontsize=9)
    cover_ax.set_axis_off()

    # time-lapse strips: slumps with visible retreat, each year side by side
    ranked = sorted(
        range(len(truth)),
        key=lambda i: -(truth.attributes[i]["retreat_m_per_year"] * (truth.geometries[i].area > 8000)),
    )[:slumps_in_strip]
    years = sorted(rgb_by_year)
    strip = grid[2, :].subgridspec(slumps_in_strip, len(years), wspace=0.02, hspace=0.05)
    for row, index in enumerate(ranked):
        rts_id = truth.attributes[index]["rts_id"]
        outline = truth.geometries[index]
        minx, miny, maxx, maxy = outline.buffer(60).bounds
        c0, r0 = (~transform) * (minx, maxy)
        c1, r1 = (~transform) * (maxx, miny)
        side = int(max(c1 - c0, r1 - r0))
        c0, r0 = int(max(0, c0)), int(max(0, r0))
        for col, year in enumerate(years):
            ax = figure.add_subplot(strip[row, col])
            ax.imshow(
                rgb_by_year[year][r0 : r0 + side, c0 : c0 + side], extent=(c0, c0 + side, r0 + side, r0)
            )
            year_outlines = [
                g
                for g, a in zip(by_year.geometries, by_year.attributes)
                if a["rts_id"] == rts_id and a["year"] == year
            ]
            draw(ax, year_outlines, "white", 0.7)
            ax.set_xlim(c0, c0 + side)
            ax.set_ylim(r0 + side, r0)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(str(year), fontsize=8)
            if col == 0:
                ax.set_ylabel(f"RTS {rts_id}", fontsize=7)
    figure.suptitle(f"RTS Mapper synthetic region (seed {config.seed}) — SYNTHETIC DATA", fontsize=12)
    figure.savefig(out_png, bbox_inches="tight")
    plt.close(figure)
    region.preview = out_png
    return out_png


def _quicklook(scene_paths: list[Path]) -> np.ndarray:
    """8-bit RGB of a year's scenes (first on top), 2-98 % stretch; for previews only."""
    import rasterio

    with rasterio.open(scene_paths[0]) as first:
        transform = first.transform
    frames = []
    for path in scene_paths:
        with rasterio.open(path) as dataset:
            offset = round((dataset.transform.c - transform.c) / transform.a)
            frames.append((offset, dataset.read([3, 2, 1])))
    width = max(offset + frame.shape[2] for offset, frame in frames)
    height = frames[0][1].shape[1]
    canvas = np.zeros((3, height, width), dtype=np.float32)
    for offset, frame in reversed(frames):
        target = canvas[:, :, offset : offset + frame.shape[2]]
        valid = frame.any(axis=0)
        target[:, valid] = frame[:, valid]
    valid = canvas.any(axis=0)
    out = np.zeros((height, width, 3), dtype=np.uint8)
    for band in range(3):
        low, high = np.percentile(canvas[band][valid], (2, 98))
        out[..., band] = np.where(valid, np.clip((canvas[band] - low) / (high - low) * 254 + 1, 1, 255), 0)
    return out
