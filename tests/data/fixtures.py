"""Seeded synthetic test data: tiny rasters written on demand, and small synthetic regions.

Run as a script to (re)make the standard small region for a look:
``python -m tests.data.fixtures OUT_DIR``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import ColorInterp
from rasterio.transform import from_origin

ROOT = Path(__file__).resolve().parents[2]
WILLOW = ROOT.parent / "shared" / "data" / "real" / "willow_river" / "Willow_River_Thaw_Slumps.shp"
UTM46 = "EPSG:32646"


def write_raster(
    path: Path,
    array: np.ndarray,
    crs: str | None = UTM46,
    origin: tuple[float, float] = (490_000.0, 3_860_000.0),
    pixel: float = 3.0,
    nodata: float | None = 0,
    descriptions: Sequence[str] | None = None,
    colorinterp: Sequence[ColorInterp] | None = None,
    tiled: bool = False,
) -> Path:
    """Write a (bands, rows, cols) array as a GeoTIFF; returns the path."""
    array = array if array.ndim == 3 else array[None]
    profile = {
        "driver": "GTiff",
        "width": array.shape[2],
        "height": array.shape[1],
        "count": array.shape[0],
        "dtype": array.dtype.name,
        "nodata": nodata,
        "transform": from_origin(origin[0], origin[1], pixel, pixel),
    }
    if crs is not None:
        profile["crs"] = crs
    if tiled:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)
        if descriptions:
            for band, name in enumerate(descriptions, start=1):
                dst.set_band_description(band, name)
        if colorinterp:
            dst.colorinterp = colorinterp
    return path


def planetscope_like(
    rows: int = 120, cols: int = 160, seed: int = 0, nodata_corner: bool = True
) -> np.ndarray:
    """A 4-band BGRN uint16 array with varied values and (optionally) a nodata corner."""
    rng = np.random.default_rng(seed)
    base = np.array([600, 850, 950, 2400], dtype=np.float64)[:, None, None]
    values = base * (1 + 0.3 * rng.standard_normal((4, rows, cols)))
    array = np.clip(values, 1, 10000).astype(np.uint16)
    if nodata_corner:
        array[:, : rows // 4, : cols // 4] = 0
    return array


def small_region(
    out: Path, size: int = 400, seed: int = 1, years: tuple[int, ...] = (2016, 2017, 2018, 2019, 2020)
):
    """A small synthetic region (real RTS shapes when the shared data is present)."""
    from rts_mapper_plugin.core.synthetic import RegionConfig, generate_region

    config = RegionConfig(
        size=size,
        seed=seed,
        years=years,
        main_year=years[-2] if len(years) > 1 else years[0],
        rts_per_km2=6.0,
        shapes_path=str(WILLOW) if WILLOW.exists() else None,
    )
    return generate_region(out, config)


if __name__ == "__main__":
    from rts_mapper_plugin.core.synthetic import render_preview

    region = small_region(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("tiny_region"))
    print(render_preview(region))
