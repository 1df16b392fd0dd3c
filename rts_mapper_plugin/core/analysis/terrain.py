"""Terrain from a DEM: slope, aspect, aspect sectors and potential incoming solar radiation (PISR).

Slope and aspect follow Horn (1981), as GDAL's ``gdaldem`` does: slope in degrees, aspect in
degrees clockwise from north (0 = the slope faces north, 90 = east), NaN where the ground is
flat. Rows run north to south (a north-up raster).

PISR follows Kumar, Skidmore and Knowles (1997, Int. J. Geogr. Inf. Sci. 11: 475-497), as Xia et
al. (2022) did: for each sun position of the year (one representative day per month, weighted
by the month's length; hourly, at mid-hour), clear-sky direct beam ``I0 * tau**m * cos(i)``
where the sun is above the local horizon (topographic shading), diffuse
``I0 * (0.271 - 0.294 tau**m) * sin(alt)`` times the sky view ``cos²(slope/2)``, and reflected
``rho * I0 * (0.271 + 0.706 tau**m) * sin(alt)`` times ``sin²(slope/2)``; ``I0`` is the solar
constant corrected for the Earth-Sun distance, ``m`` the relative air mass corrected for
pressure at the cell's elevation. Horizons are found in 16 directions up to ``horizon_m`` away
(vectorised: whole-array shifts), and a large DEM is processed in tiles with a margin of
``horizon_m``, so memory stays bounded. Output in kWh/m² per year.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SOLAR_CONSTANT = 1367.0  # W/m²
SECTORS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")
MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def slope_aspect(dem: np.ndarray, xres: float, yres: float) -> tuple[np.ndarray, np.ndarray]:
    """(slope in degrees, aspect in degrees from north, NaN on flat ground) by Horn's method.

    Border cells use their nearest neighbours (edge padding); NaN (nodata) spreads to the
    cells whose window touches it.
    """
    # float32 throughout: centimetre differences survive at Tibetan elevations, and a 10,000^2
    # DEM needs half the memory of float64
    z = np.pad(np.asarray(dem, dtype=np.float32), 1, mode="edge")
    a, b, c = z[:-2, :-2], z[:-2, 1:-1], z[:-2, 2:]
    d, f = z[1:-1, :-2], z[1:-1, 2:]
    g, h, i = z[2:, :-2], z[2:, 1:-1], z[2:, 2:]
    dz_east = (c - a) + 2 * (f - d) + (i - g)
    dz_east /= np.float32(8 * abs(xres))
    dz_north = (a - g) + 2 * (b - h) + (c - i)
    dz_north /= np.float32(8 * abs(yres))
    slope = np.degrees(np.arctan(np.hypot(dz_east, dz_north)))
    # the slope faces down the gradient: azimuth of (-dz_east, -dz_north), clockwise from north
    np.negative(dz_east, out=dz_east)
    np.negative(dz_north, out=dz_north)
    aspect = np.degrees(np.arctan2(dz_east, dz_north)) % np.float32(360.0)
    aspect[slope < 1e-6] = np.nan
    return slope, aspect


def aspect_sector(aspect) -> np.ndarray:
    """Index into :data:`SECTORS` (N = 337.5-22.5°, ...); -1 for NaN (flat or nodata)."""
    aspect = np.asarray(aspect, dtype=np.float64)
    index = np.floor(((aspect + 22.5) % 360.0) / 45.0)
    return np.where(np.isnan(aspect), -1, index).astype(np.int8)


@dataclass(frozen=True)
class SunPosition:
    weight_h: float  # hours this position stands for (hour step x days represented)
    altitude: float  # radians
    azimuth: float  # radians clockwise from north
    irradiance: float  # extraterrestrial normal irradiance, W/m²


def sun_positions(latitude: float, hour_step: float = 1.0, days: list[tuple[int, float]] | None = None):
    """Sun positions of a year at ``latitude`` (degrees) above the horizon.

    ``days``: (day of year, days it represents); by default the 15th of each month weighted
    by the month's length. Times are at the middle of each ``hour_step`` of solar time.
    """
    if days is None:
        starts = np.cumsum((0, *MONTH_DAYS[:-1]))
        days = [(int(start) + 15, float(length)) for start, length in zip(starts, MONTH_DAYS)]
    phi = math.radians(latitude)
    positions = []
    hours = np.arange(hour_step / 2, 24.0, hour_step)
    for day, represents in days:
        declination = math.radians(23.45) * math.sin(2 * math.pi * (284 + day) / 365.0)
        irradiance = SOLAR_CONSTANT * (1 + 0.033 * math.cos(2 * math.pi * day / 365.0))
        for hour in hours:
            omega = math.radians(15.0 * (hour - 12.0))
            sin_alt = math.sin(phi) * math.sin(declination) + math.cos(phi) * math.cos(
                declination
            ) * math.cos(omega)
            if sin_alt <= 0:
                continue
            azimuth = math.atan2(
                -math.cos(declination) * math.sin(omega),
                math.sin(declination) * math.cos(phi)
                - math.cos(declination) * math.sin(phi) * math.cos(omega),
            ) % (2 * math.pi)
            positions.append(SunPosition(hour_step * represents, math.asin(sin_alt), azimuth, irradiance))
    return positions


def horizon_tangents(
    dem: np.ndarray, xres: float, yres: float, directions: int = 16, horizon_m: float = 3000.0
) -> np.ndarray:
    """(directions, rows, cols): the tangent of the highest terrain angle seen from each cell in
    each azimuth (direction k at 360 k / directions degrees clockwise from north), looking up to
    ``horizon_m`` away, at distances growing geometrically (1, 2, 3, 4, 6, 8, 11 ... cells).
    Beyond the array's edge nothing blocks the sun."""
    z = np.asarray(dem, dtype=np.float32)
    rows, cols = z.shape
    cell = min(abs(xres), abs(yres))
    steps = sorted({round(s) for s in np.geomspace(1, max(1.0, horizon_m / cell), 24)})
    out = np.full((directions, rows, cols), -np.inf, dtype=np.float32)
    for k in range(directions):
        angle = 2 * math.pi * k / directions
        east, north = math.sin(angle), math.cos(angle)
        best = out[k]
        for step in steps:
            dc, dr = round(step * east), round(-step * north)  # rows run south
            if abs(dr) >= rows or abs(dc) >= cols or (dr == 0 and dc == 0):
                continue
            distance = math.hypot(dc * xres, dr * yres)
            target = z[max(dr, 0) : rows + min(dr, 0), max(dc, 0) : cols + min(dc, 0)]
            source = z[max(-dr, 0) : rows + min(-dr, 0), max(-dc, 0) : cols + min(-dc, 0)]
            view = best[max(-dr, 0) : rows + min(-dr, 0), max(-dc, 0) : cols + min(-dc, 0)]
            np.fmax(view, (target - source) / distance, out=view)
    return out


def pisr(
    dem: np.ndarray,
    xres: float,
    yres: float,
    latitude: float,
    transmittance: float = 0.7,
    albedo: float = 0.2,
    hour_step: float = 1.0,
    shading: bool = True,
    diffuse: bool = True,
    horizon_m: float = 3000.0,
    directions: int = 16,
    days: list[tuple[int, float]] | None = None,
) -> np.ndarray:
    """Annual potential incoming solar radiation (kWh/m²) of each cell of ``dem`` (metres, in a
    projected CRS) at ``latitude``; NaN where the DEM is NaN. See the module docstring."""
    z = np.asarray(dem, dtype=np.float64)
    valid = np.isfinite(z)
    filled = np.where(valid, z, np.nanmean(z) if valid.any() else 0.0)
    slope, aspect = slope_aspect(filled, xres, yres)
    s = np.radians(slope.astype(np.float64))
    a = np.radians(np.nan_to_num(aspect.astype(np.float64), nan=0.0))
    cos_s = np.cos(s)
    north_part = np.sin(s) * np.cos(a)  # multiplies cos(sun azimuth)
    east_part = np.sin(s) * np.sin(a)  # multiplies sin(sun azimuth)
    pressure = ((288.0 - 0.0065 * filled) / 288.0) ** 5.256
    log_tau = math.log(transmittance)
    horizons = horizon_tangents(filled, xres, yres, directions, horizon_m) if shading else None

    direct = np.zeros_like(filled)
    sky = np.zeros_like(filled)  # diffuse on a horizontal surface
    ground = np.zeros_like(filled)  # reflected on a horizontal surface
    for sun in sun_positions(latitude, hour_step, days):
        sin_alt, cos_alt = math.sin(sun.altitude), math.cos(sun.altitude)
        beam = np.exp(pressure * (log_tau / sin_alt))  # tau ** m, m = (p / p0) / sin(alt)
        cos_i = cos_s * sin_alt + cos_alt * (
            north_part * math.cos(sun.azimuth) + east_part * math.sin(sun.azimuth)
        )
        lit = cos_i > 0
        if horizons is not None:
            k = round(sun.azimuth / (2 * math.pi) * directions) % directions
            lit &= math.tan(sun.altitude) > horizons[k]
        weight = sun.weight_h * sun.irradiance
        direct += np.where(lit, weight * beam * cos_i, 0.0)
        if diffuse:
            sky += weight * np.maximum(0.271 - 0.294 * beam, 0.0) * sin_alt
            ground += weight * (0.271 + 0.706 * beam) * sin_alt
    total = direct
    if diffuse:
        total = direct + sky * np.cos(s / 2) ** 2 + albedo * ground * np.sin(s / 2) ** 2
    total = total / 1000.0  # Wh -> kWh
    total[~valid] = np.nan
    return total.astype(np.float32)


def pisr_tiled(
    dem: np.ndarray,
    xres: float,
    yres: float,
    latitude_of_row,
    tile: int = 1024,
    horizon_m: float = 3000.0,
    feedback=None,
    **options,
) -> np.ndarray:
    """:func:`pisr` over a large DEM in tiles with a ``horizon_m`` margin (so shading across tile
    borders is right and memory is bounded); ``latitude_of_row(row)`` gives each tile's latitude."""
    z = np.asarray(dem, dtype=np.float32)
    rows, cols = z.shape
    margin = math.ceil(horizon_m / min(abs(xres), abs(yres))) if options.get("shading", True) else 1
    out = np.full(z.shape, np.nan, dtype=np.float32)
    tiles = [(r, c) for r in range(0, rows, tile) for c in range(0, cols, tile)]
    for done, (r, c) in enumerate(tiles):
        if feedback is not None:
            feedback.check()
        r0, c0 = max(r - margin, 0), max(c - margin, 0)
        r1, c1 = min(r + tile + margin, rows), min(c + tile + margin, cols)
        block = z[r0:r1, c0:c1]
        if not np.isfinite(block[r - r0 : r - r0 + tile, c - c0 : c - c0 + tile]).any():
            continue
        latitude = latitude_of_row(min(r + tile // 2, rows - 1))
        result = pisr(block, xres, yres, latitude, horizon_m=horizon_m, **options)
        out[r : r + tile, c : c + tile] = result[r - r0 : r - r0 + tile, c - c0 : c - c0 + tile]
        if feedback is not None:
            feedback.step((done + 1) / len(tiles))
    return out
