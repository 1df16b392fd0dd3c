"""Peak memory of `prepare` on a 4096² and a 16384² PlanetScope-like input (the latter a VRT).

The claim: preparation streams window by window, so memory does not grow with the image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import OUT, machine, record, run_measured

TILE = 4096


def make_tile(path: Path) -> Path:
    """A 4096² 4-band uint16 BGRN GeoTIFF with texture (written once, cached)."""
    if path.exists():
        return path
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(0)
    profile = {
        "driver": "GTiff",
        "width": TILE,
        "height": TILE,
        "count": 4,
        "dtype": "uint16",
        "nodata": 0,
        "crs": "EPSG:32646",
        "transform": from_origin(480_000, 3_870_000, 3, 3),
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "predictor": 2,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    base = np.array([600, 850, 950, 2400], dtype=np.float32)[:, None, None]
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, TILE, 1024):
            ramp = np.linspace(0.8, 1.2, 1024, dtype=np.float32)[None, :, None]
            noise = 1 + 0.1 * rng.standard_normal((4, 1024, TILE)).astype(np.float32)
            dst.write(
                np.clip(base * ramp * noise, 1, 10000).astype(np.uint16),
                window=((row, row + 1024), (0, TILE)),
            )
    return path


def make_mosaic_vrt(tile: Path, path: Path, repeat: int = 4) -> Path:
    """A VRT that lays ``tile`` out ``repeat`` x ``repeat`` times: a 16x larger input, cheaply."""
    import rasterio

    with rasterio.open(tile) as dataset:
        wkt, t = dataset.crs.to_wkt(), dataset.transform
        width, height, count = dataset.width, dataset.height, dataset.count
        gdal_type = {"uint8": "Byte", "uint16": "UInt16", "float32": "Float32"}[dataset.dtypes[0]]
        nodata = dataset.nodata
    bands = []
    for band in range(1, count + 1):
        sources = "".join(
            f'<SimpleSource><SourceFilename relativeToVRT="0">{tile}</SourceFilename><SourceBand>{band}</SourceBand>'
            f'<SrcRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/>'
            f'<DstRect xOff="{c * width}" yOff="{r * height}" xSize="{width}" ySize="{height}"/></SimpleSource>'
            for r in range(repeat)
            for c in range(repeat)
        )
        nodata_xml = f"<NoDataValue>{nodata:g}</NoDataValue>" if nodata is not None else ""
        bands.append(
            f'<VRTRasterBand dataType="{gdal_type}" band="{band}">{nodata_xml}{sources}</VRTRasterBand>'
        )
    path.write_text(
        f'<VRTDataset rasterXSize="{width * repeat}" rasterYSize="{height * repeat}"><SRS>{wkt}</SRS>'
        f"<GeoTransform>{t.c}, {t.a}, 0, {t.f}, 0, {t.e}</GeoTransform>{''.join(bands)}</VRTDataset>",
        encoding="utf-8",
    )
    return path


def main() -> dict:
    cache = OUT / "cache"
    tile = make_tile(cache / "ps_4096.tif")
    vrt = make_mosaic_vrt(tile, cache / "ps_16384.vrt")
    results = {}
    for label, source in (("4096", tile), ("16384", vrt)):
        out = OUT / f"prepared_{label}.tif"
        run = run_measured(["-m", "rts_mapper_plugin", "prepare", str(source), "--out", str(out)])
        megapixels = int(label) ** 2 / 1e6
        results[label] = {
            "peak_mib": round(run["peak_mib"], 1),
            "seconds": round(run["seconds"], 1),
            "mpix_per_s": round(megapixels / run["seconds"], 1),
        }
        out.unlink()
    ratio = results["16384"]["peak_mib"] / results["4096"]["peak_mib"]
    summary = {"machine": machine(), "results": results, "peak_ratio_16k_over_4k": round(ratio, 3)}
    record("imagery_memory", summary)
    return summary
