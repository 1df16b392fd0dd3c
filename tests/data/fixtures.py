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
    from rts_mapper_plugin.example.synthetic import RegionConfig, generate_region

    config = RegionConfig(
        size=size,
        seed=seed,
        years=years,
        main_year=years[-2] if len(years) > 1 else years[0],
        rts_per_km2=6.0,
        shapes_path=str(WILLOW) if WILLOW.exists() else None,
    )
    return generate_region(out, config)


def class_polygons(raster: Path, out: Path) -> Path:
    """The class raster as polygons with a text ``class`` field (as a vegetation map often comes)."""
    import rasterio
    import rasterio.features
    import shapely.geometry

    from rts_mapper_plugin.core.vectors import FeatureSet, write_features

    with rasterio.open(raster) as dataset:
        data = dataset.read(1)
        names = {int(k.split("_", 1)[1]): v for k, v in dataset.tags(1).items() if k.startswith("CLASS_")}
        shapes = [
            (shapely.geometry.shape(geometry), names.get(int(value), str(int(value))))
            for geometry, value in rasterio.features.shapes(data, mask=data != 0, transform=dataset.transform)
        ]
        crs = dataset.crs
    write_features(
        out,
        FeatureSet([g for g, _ in shapes], [{"class": c} for _, c in shapes], crs),
        "classes",
        overwrite_file=True,
    )
    return out


class _Candidate:
    def __init__(self, geometry, **attributes) -> None:
        self.geometry = geometry
        self._attributes = attributes

    def attributes(self) -> dict:
        return self._attributes


def review_project(folder: Path, size: int = 400, seed: int = 1, with_probability: bool = False):
    """A mapping project ready for review, without torch: five registered years of a small
    synthetic region and one run whose candidates are the truth RTSs plus the look-alikes. With
    ``with_probability``, the run has a probability raster as inference writes one (percent, nodata
    255): each candidate's mean probability inside it, fading out across its edge.

    Returns (project, region, run_id).
    """
    from rts_mapper_plugin.core.imagery.prepare import prepare_and_register
    from rts_mapper_plugin.core.project.store import MappingProject, RunRecord, new_run_id
    from rts_mapper_plugin.core.vectors import read_features

    region = small_region(folder / "region", size=size, seed=seed)
    project_path = folder / "project.gpkg"
    for year, scenes in region.scenes.items():
        prepare_and_register(scenes, folder / f"{year}.tif", year=year, project_path=project_path)
    project = MappingProject.open(project_path)
    main_year = region.config.main_year
    candidates = []
    for layer, probability in (("rts", 0.8), ("lookalikes", 0.6)):
        features = read_features(region.truth_uri(layer)).to_crs(project.crs)
        for geometry, attributes in zip(features.geometries, features.attributes):
            if layer == "rts" and attributes.get("year", main_year) != main_year:
                continue
            candidates.append(
                _Candidate(
                    geometry,
                    area_m2=geometry.area,
                    perimeter_m=geometry.length,
                    mean_prob=probability,
                    max_prob=min(1.0, probability + 0.15),
                    status="pending",
                    year=main_year,
                    iteration=1,
                )
            )
    run = RunRecord(run_id=new_run_id(1), iteration=1, year=main_year)
    if with_probability:
        run.prob_path = f"probability/{run.run_id}.tif"
        _fading_probability(candidates, folder / f"{main_year}.tif", folder / run.prob_path)
    project.add_run(run, candidates)
    return project, region, run.run_id


def _fading_probability(candidates, grid: Path, out: Path) -> None:
    import numpy as np
    import rasterio
    from rasterio.features import rasterize
    from scipy import ndimage

    with rasterio.open(grid) as template:
        shape, transform, crs = (template.height, template.width), template.transform, template.crs
    burnt = rasterize(
        [(c.geometry, c.attributes()["mean_prob"] * 100) for c in candidates],
        out_shape=shape,
        transform=transform,
        dtype="float32",
    )
    percent = np.clip(ndimage.gaussian_filter(burnt, 3.0), 0, 100).round().astype(np.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    profile = {"driver": "GTiff", "width": shape[1], "height": shape[0], "count": 1, "dtype": "uint8"}
    with rasterio.open(out, "w", crs=crs, transform=transform, nodata=255, **profile) as dataset:
        dataset.write(percent, 1)


def copy_project(project, folder: Path):
    """A copy of a mapping project's folder (without the synthetic region), opened: each test
    writes to its own."""
    import shutil

    from rts_mapper_plugin.core.project.store import MappingProject

    shutil.copytree(project.path.parent, folder, ignore=shutil.ignore_patterns("region"))
    return MappingProject.open(folder / project.path.name)


def on_the_map(project, run_id: str, name: str = "Candidates"):
    """In QGIS: the project's years in the Time-lapse group and one run's candidates as a layer."""
    from qgis.core import QgsProject

    from rts_mapper_plugin.qgis_layers.layers import candidates_layer
    from rts_mapper_plugin.qgis_layers.timelapse import load_time_lapse

    load_time_lapse(project, QgsProject.instance())
    layer = candidates_layer(project.path, run_id, name)
    QgsProject.instance().addMapLayer(layer)
    return layer


if __name__ == "__main__":
    from rts_mapper_plugin.example.synthetic import render_preview

    region = small_region(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("tiny_region"))
    print(render_preview(region))


def red_threshold_model(threshold: int = 200):
    """A stand-in "model" whose logit is high where the red band is above ``threshold``.

    Lets the inference machinery (tiling, blending, streaming, vectorising) be checked against
    exactly known shapes, independently of training. Works on normalised input as the card says.
    """
    import torch

    from rts_mapper_plugin.core.model.model_file import IMAGENET_MEAN, IMAGENET_STD

    class RedThreshold(torch.nn.Module):
        def forward(self, x):
            red = (x[:, :1] * IMAGENET_STD[0] + IMAGENET_MEAN[0]) * 255.0
            return (red - threshold) * 0.5

    return RedThreshold()


def trained_model(cache_root: Path | None = None) -> Path:
    """A small resnet18 model trained for a few epochs on a small region (cached on disk, keyed by
    the source of everything that shapes it, so a second test session reuses it)."""
    import hashlib

    from rts_mapper_plugin.core.imagery.prepare import prepare_image
    from rts_mapper_plugin.core.model.chips import make_chips
    from rts_mapper_plugin.core.model.training import TrainConfig, train_model

    sources = [
        "example/synthetic.py",
        "core/defaults.py",
        "core/model/chips.py",
        "core/model/training.py",
        "core/model/model_file.py",
    ]
    sources.append("core/imagery/prepare.py")
    digest = hashlib.sha256()
    for name in sources:
        digest.update((ROOT / "rts_mapper_plugin" / name).read_bytes())
    digest.update(Path(__file__).read_bytes())
    cache = (cache_root or Path("/tmp") / "rts_mapper_test_cache") / digest.hexdigest()[:16]
    model = cache / "model.safetensors"
    if model.exists():
        return model
    work = cache.with_name(cache.name + ".partial")
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    region = small_region(work / "region", size=700, seed=21)
    image = prepare_image(region.scenes[2019], work / "2019.tif").path
    chips = make_chips(
        image, region.truth_uri("rts"), region.truth_uri("lookalikes"), work / "chips", size=256, buffer_m=150
    )
    config = TrainConfig(
        encoder="resnet18",
        epochs=5,
        batch_size=8,
        crop_size=192,
        learning_rate=1e-3,
        tile_size=256,
        overlap=64,
    )
    train_model(chips, work / "model.safetensors", config)
    shutil.rmtree(cache, ignore_errors=True)
    work.rename(cache)
    return model
