"""DEM steps on large DEMs: slope/aspect, PISR (shaded, tiled) and streams (fill, D8,
accumulation), each timed with its peak memory in a child process.

The DEM is a seeded fractal terrain (spectral slope 3.2, 30 m cells, 600 m of relief) on a
regional tilt, so water drains somewhere, as on real ground; it is cached on disk.
"""

from __future__ import annotations

import json
import sys

from .common import OUT, record, run_measured

SIZES = (4096, 10000)


def make_dem(size: int):
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    path = OUT / "cache" / f"dem_{size}.tif"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(size)
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    frequency = np.hypot(fx, fy)
    frequency[0, 0] = 1.0
    spectrum = np.fft.rfft2(rng.standard_normal((size, size)).astype(np.float32)) / frequency**1.6
    spectrum[0, 0] = 0
    field = np.fft.irfft2(spectrum, s=(size, size)).astype(np.float32)
    field = (field - field.mean()) / field.std() * 150.0
    rows = np.arange(size, dtype=np.float32)[:, None]
    dem = 4500.0 + field + rows * 30.0 * 0.01  # 1 % regional tilt southwards
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=size,
        height=size,
        count=1,
        dtype="float32",
        crs="EPSG:32646",
        transform=from_origin(400000, 3900000, 30, 30),
        tiled=True,
        compress="deflate",
    ) as out:
        out.write(dem, 1)
    return path


def step(kind: str, path: str) -> None:
    """One step in this (child) process; prints its seconds as JSON."""
    import time

    from rts_mapper_plugin.core.analysis.distribution import load_dem
    from rts_mapper_plugin.core.analysis.hydrology import stream_mask
    from rts_mapper_plugin.core.analysis.terrain import pisr_tiled, slope_aspect

    dem = load_dem(path)
    started = time.perf_counter()
    if kind == "slope_aspect":
        slope_aspect(dem.elevation, dem.xres, dem.yres)
    elif kind == "pisr":
        pisr_tiled(dem.elevation, dem.xres, dem.yres, dem.latitude_of_row)
    elif kind == "streams":
        mask, _, _ = stream_mask(dem.elevation, dem.xres, dem.yres, 1.0)
        print(json.dumps({"stream_cells": int(mask.sum())}))
    print(json.dumps({"step_seconds": time.perf_counter() - started}))


def main() -> dict:
    """Every step on every size; RTS_TERRAIN_STEPS=streams,pisr picks steps."""
    import os

    steps = os.environ.get("RTS_TERRAIN_STEPS", "slope_aspect,pisr,streams").split(",")
    results = {}
    for size in SIZES:
        path = make_dem(size)
        for kind in steps:
            measured = run_measured(["-m", "benchmarks.terrain", kind, str(path)])
            lines = [json.loads(line) for line in measured["stdout"].splitlines() if line.startswith("{")]
            seconds = next(x["step_seconds"] for x in lines if "step_seconds" in x)
            result = {
                "size": size,
                "step": kind,
                "seconds": round(seconds, 1),
                "mpix_per_s": round(size * size / 1e6 / seconds, 2),
                "peak_mib": round(measured["peak_mib"]),
            }
            results[f"{kind}_{size}"] = result
            record(f"terrain_{kind}_{size}", result)
    return results


if __name__ == "__main__":
    if len(sys.argv) == 3:
        step(sys.argv[1], sys.argv[2])
    else:
        main()
