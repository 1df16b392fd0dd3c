"""Training chips from RTS (positive) and non-RTS (negative) polygons over prepared images.

As in the authors' setup (Huang et al. 2018): a chip around each training polygon, its extent the
polygon buffered by 300 m (at least ``size`` pixels a side), the label rasterised from every
positive polygon the chip touches; a negative polygon's chip therefore teaches "background"
unless a real slump lies in it too. Pixels without data get the ignore label. Chips that are
mostly nodata are skipped. Nearby polygons (overlapping chips) form one group that goes wholly
to training or to validation, so the validation IoU is not flattered by leakage.

On disk: ``images/chip_00001.tif`` (8-bit RGB), ``labels/chip_00001.tif`` (0 background,
1 RTS, 255 ignore), ``index.json`` (what training reads) and ``chips.gpkg`` (footprints to
inspect in QGIS).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from rasterio.features import rasterize
from rasterio.windows import Window, from_bounds
from shapely.geometry import box
from shapely.strtree import STRtree

from ...__about__ import style_qml
from .. import defaults
from ..errors import RtsMapperError
from ..progress import Feedback
from ..raster_io import GTIFF_PROFILE, atomic_folder, gdal_env, open_raster, reading, require_crs
from ..vectors import FeatureSet, read_features, write_features

IGNORE = 255
INDEX_NAME = "index.json"


@dataclass
class Chip:
    chip_id: int
    image: str  # relative to the chip folder
    label: str
    split: str  # "train", "val", or "excluded" (a buffer between the two, used by neither)
    source: str  # "positive" or "negative"
    group: int
    positive_fraction: float
    bounds: tuple[float, float, float, float]
    source_image: str
    polygon_index: int


@dataclass
class ChipSet:
    folder: Path
    chips: list[Chip]
    size: int
    buffer_m: float
    crs: str
    positives: int
    negatives: int
    skipped_nodata: int = 0
    skipped_outside: int = 0
    images: list[str] = field(default_factory=list)

    @property
    def train(self) -> list[Chip]:
        return [c for c in self.chips if c.split == "train"]

    @property
    def val(self) -> list[Chip]:
        return [c for c in self.chips if c.split == "val"]

    @property
    def excluded(self) -> list[Chip]:
        return [c for c in self.chips if c.split == "excluded"]

    def summary(self) -> dict:
        return {
            "chips": len(self.chips),
            "train_chips": len(self.train),
            "val_chips": len(self.val),
            "excluded_chips": len(self.excluded),
            "positives": self.positives,
            "negatives": self.negatives,
            "skipped_nodata": self.skipped_nodata,
            "skipped_outside": self.skipped_outside,
            "size": self.size,
            "buffer_m": self.buffer_m,
        }


def _as_features(source: str | os.PathLike | FeatureSet | None, label: str) -> FeatureSet:
    if source is None:
        return FeatureSet([], [], None)
    if isinstance(source, FeatureSet):
        return source
    features = read_features(source, polygons_only=True)
    if features.crs is None:
        raise RtsMapperError(f"the {label} layer has no coordinate reference system", source)
    return features


def make_chips(
    images: str | os.PathLike | Sequence[str | os.PathLike],
    positives: str | os.PathLike | FeatureSet,
    negatives: str | os.PathLike | FeatureSet | None,
    out_dir: str | os.PathLike,
    size: int = defaults.CHIP_SIZE,
    buffer_m: float = defaults.CHIP_BUFFER_M,
    val_fraction: float = 0.2,
    max_nodata: float = 0.5,
    seed: int = 0,
    feedback: Feedback | None = None,
    image_crs: dict[str, str] | None = None,
) -> ChipSet:
    """Cut training chips; see the module docstring. Replaces ``out_dir``'s previous chips.

    Raises:
        RtsMapperError: no positives, polygons outside every image, unreadable input.

    ``image_crs`` maps an image path to the CRS to assume when that file has none (the one its
    QGIS layer was given).
    """
    feedback = feedback or Feedback()
    image_paths = [Path(images)] if isinstance(images, (str, os.PathLike)) else [Path(p) for p in images]
    out = Path(out_dir)
    positives_set = _as_features(positives, "positive")
    negatives_set = _as_features(negatives, "negative")
    if not len(positives_set):
        raise RtsMapperError(
            "there are no positive (RTS) polygons to train from",
            positives if not isinstance(positives, FeatureSet) else None,
        )

    with gdal_env():
        datasets = []
        for path in image_paths:
            dataset = open_raster(path, (image_crs or {}).get(str(path)))
            require_crs(dataset, path)
            if dataset.count < 3:
                raise RtsMapperError(
                    f"has {dataset.count} band(s); train on 8-bit RGB made by `prepare`", path
                )
            datasets.append(dataset)
        try:
            crs = datasets[0].crs
            positives_set = positives_set.to_crs(crs)
            negatives_set = negatives_set.to_crs(crs)
            items = [
                (g, "positive", i)
                for i, g in enumerate(positives_set.geometries)
                if g is not None and not g.is_empty
            ]
            items += [
                (g, "negative", i)
                for i, g in enumerate(negatives_set.geometries)
                if g is not None and not g.is_empty
            ]
            all_positive = [g for g, kind, _ in items if kind == "positive"]
            footprints = [_chip_bounds(g, datasets[0].res[0], size, buffer_m) for g, _, _ in items]
            groups = _groups([box(*b) for b in footprints])
            splits = _assign_splits(groups, val_fraction, seed)
            in_val = sum(1 for g in groups if splits[g] == "val")
            if val_fraction > 0 and in_val < 0.5 * val_fraction * len(items) and len(items) >= 5:
                # one dense cluster holds nearly everything: cut it in space instead, with a buffer
                groups, splits = _spatial_split(footprints, val_fraction)

            with atomic_folder(out) as staging:
                (staging / "images").mkdir()
                (staging / "labels").mkdir()
                chips: list[Chip] = []
                skipped_nodata = skipped_outside = 0
                for index, ((geometry, kind, polygon_index), bounds) in enumerate(zip(items, footprints)):
                    dataset = next((d for d in datasets if _covers(d, geometry)), None)
                    if dataset is None:
                        skipped_outside += 1
                        continue
                    written = _write_chip(
                        dataset, bounds, all_positive, staging, len(chips) + 1, size, max_nodata, out
                    )
                    if written is None:
                        skipped_nodata += 1
                        continue
                    image_name, label_name, fraction, chip_bounds = written
                    chips.append(
                        Chip(
                            chip_id=len(chips) + 1,
                            image=image_name,
                            label=label_name,
                            split=splits[groups[index]],
                            source=kind,
                            group=groups[index],
                            positive_fraction=fraction,
                            bounds=chip_bounds,
                            source_image=str(Path(dataset.name).resolve()),
                            polygon_index=polygon_index,
                        )
                    )
                    feedback.step((index + 1) / len(items))
                if not chips:
                    raise RtsMapperError(
                        "no chip could be cut: the polygons fall outside the images or on nodata"
                    )
                _ensure_both_splits(chips)
                chip_set = ChipSet(
                    folder=out,
                    chips=chips,
                    size=size,
                    buffer_m=buffer_m,
                    crs=crs.to_string(),
                    positives=sum(1 for g, k, _ in items if k == "positive"),
                    negatives=sum(1 for g, k, _ in items if k == "negative"),
                    skipped_nodata=skipped_nodata,
                    skipped_outside=skipped_outside,
                    images=[str(p.resolve()) for p in image_paths],
                )
                _write_index(chip_set, staging)
        finally:
            for dataset in datasets:
                dataset.close()
    return chip_set


def _chip_bounds(geometry, pixel: float, size: int, buffer_m: float) -> tuple[float, float, float, float]:
    """Polygon bounds + buffer, grown to at least ``size`` pixels and a multiple of 32 pixels."""
    minx, miny, maxx, maxy = geometry.buffer(buffer_m).bounds
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    width_px = max(size, math.ceil((maxx - minx) / pixel))
    height_px = max(size, math.ceil((maxy - miny) / pixel))
    width_px, height_px = (math.ceil(v / 32) * 32 for v in (width_px, height_px))
    half_w, half_h = width_px * pixel / 2, height_px * pixel / 2
    return cx - half_w, cy - half_h, cx + half_w, cy + half_h


def _groups(footprints: list) -> list[int]:
    """Connected components of overlapping chip footprints (union-find)."""
    parent = list(range(len(footprints)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    tree = STRtree(footprints)
    for i, footprint in enumerate(footprints):
        for j in tree.query(footprint, predicate="intersects"):
            a, b = find(i), find(int(j))
            if a != b:
                parent[max(a, b)] = min(a, b)
    roots = [find(i) for i in range(len(footprints))]
    renumber = {root: n for n, root in enumerate(sorted(set(roots)))}
    return [renumber[r] for r in roots]


def _assign_splits(groups: list[int], val_fraction: float, seed: int) -> dict[int, str]:
    """Whole groups to validation, in seeded random order, until ~val_fraction of the chips."""
    sizes: dict[int, int] = {}
    for group in groups:
        sizes[group] = sizes.get(group, 0) + 1
    order = list(sizes)
    np.random.default_rng(seed).shuffle(order)
    target = val_fraction * len(groups)
    splits, in_val = {}, 0
    for group in order:
        if in_val < target and in_val + sizes[group] <= max(target * 1.5, 1):
            splits[group] = "val"
            in_val += sizes[group]
        else:
            splits[group] = "train"
    return splits


def _spatial_split(footprints: list, val_fraction: float) -> tuple[list[int], dict[int, str]]:
    """Validation = the chips at the far end of the region's longer side; training chips that
    would overlap them are excluded (neither split), so no pixel is in both."""
    centres = np.array([((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in footprints])
    axis = int(np.ptp(centres[:, 1]) > np.ptp(centres[:, 0]))
    order = np.argsort(centres[:, axis])
    n_val = max(1, round(val_fraction * len(footprints)))
    val = set(order[-n_val:].tolist())
    val_boxes = [box(*footprints[i]) for i in val]
    groups = []
    for i, bounds in enumerate(footprints):
        if i in val:
            groups.append(1)
        elif any(box(*bounds).intersects(v) for v in val_boxes):
            groups.append(2)
        else:
            groups.append(0)
    return groups, {0: "train", 1: "val", 2: "excluded"}


def _ensure_both_splits(chips: list[Chip]) -> None:
    """With very few chips, make sure training has something (validation may stay empty): a
    small region's validation end and the chips overlapping it can be every chip there is."""
    if chips and not any(c.split == "train" for c in chips):
        for chip in chips:
            chip.split = "train"


def _covers(dataset, geometry) -> bool:
    left, bottom, right, top = dataset.bounds
    return box(left, bottom, right, top).contains(geometry.centroid)


def _write_chip(
    dataset, bounds, positives, folder: Path, chip_id: int, size: int, max_nodata: float, out: Path
):
    import rasterio

    pixel_x, pixel_y = dataset.res
    minx, miny, maxx, maxy = bounds
    width, height = round((maxx - minx) / pixel_x), round((maxy - miny) / pixel_y)
    # snap the chip to the image's pixel grid
    window = from_bounds(minx, miny, maxx, maxy, dataset.transform).round_offsets()
    window = Window(window.col_off, window.row_off, width, height)
    transform = dataset.window_transform(window)
    with reading(dataset.name, writing=out):  # GDAL may raise a failed write at the next read
        rgb = dataset.read([1, 2, 3], window=window, boundless=True, fill_value=0)
        valid = np.all(dataset.read_masks([1, 2, 3], window=window, boundless=True) > 0, axis=0) & np.any(
            rgb > 0, axis=0
        )
    if 1.0 - valid.mean() > max_nodata:
        return None
    left, bottom, right, top = rasterio.transform.array_bounds(height, width, transform)
    chip_box = box(left, bottom, right, top)
    touching = [g for g in positives if g.intersects(chip_box)]
    label = (
        rasterize([(g, 1) for g in touching], out_shape=(height, width), transform=transform, dtype="uint8")
        if touching
        else np.zeros((height, width), dtype=np.uint8)
    )
    label[~valid] = IGNORE
    rgb[:, ~valid] = 0
    name = f"chip_{chip_id:05d}.tif"
    profile = {**GTIFF_PROFILE, "width": width, "height": height, "crs": dataset.crs, "transform": transform}
    profile.pop("bigtiff")
    with rasterio.open(folder / "images" / name, "w", **profile, count=3, dtype="uint8", nodata=0) as dst:
        dst.write(rgb)
    with rasterio.open(folder / "labels" / name, "w", **profile, count=1, dtype="uint8", nodata=None) as dst:
        dst.write(label, 1)
    fraction = float((label == 1).sum() / max(1, valid.sum()))
    return f"images/{name}", f"labels/{name}", fraction, (left, bottom, right, top)


def _write_index(chip_set: ChipSet, folder: Path) -> None:
    index = {
        "format": "rts_mapper_chips/1",
        "crs": chip_set.crs,
        "size": chip_set.size,
        "buffer_m": chip_set.buffer_m,
        "images": chip_set.images,
        "summary": chip_set.summary(),
        "chips": [asdict(c) for c in chip_set.chips],
    }
    (folder / INDEX_NAME).write_text(json.dumps(index, indent=1), encoding="utf-8")
    from rasterio.crs import CRS

    write_features(
        folder / "chips.gpkg",
        FeatureSet(
            [box(*c.bounds) for c in chip_set.chips],
            [
                {
                    "chip_id": c.chip_id,
                    "split": c.split,
                    "source": c.source,
                    "group": c.group,
                    "positive_fraction": round(c.positive_fraction, 4),
                    "image": c.image,
                }
                for c in chip_set.chips
            ],
            CRS.from_user_input(chip_set.crs),
        ),
        "chips",
        geometry_type="Polygon",
        qml=style_qml("chips"),
    )


def load_chip_set(folder: str | os.PathLike) -> ChipSet:
    """Read a chip folder written by :func:`make_chips`."""
    folder = Path(folder)
    index_path = folder / INDEX_NAME
    if not index_path.is_file():
        raise RtsMapperError(f"is not a chip folder (no {INDEX_NAME}); make chips first", folder)
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        chips = [Chip(**{**c, "bounds": tuple(c["bounds"])}) for c in index["chips"]]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise RtsMapperError(f"has an unreadable {INDEX_NAME} ({exc})", folder) from exc
    summary = index.get("summary", {})
    return ChipSet(
        folder=folder,
        chips=chips,
        size=index["size"],
        buffer_m=index["buffer_m"],
        crs=index["crs"],
        positives=summary.get("positives", 0),
        negatives=summary.get("negatives", 0),
        skipped_nodata=summary.get("skipped_nodata", 0),
        skipped_outside=summary.get("skipped_outside", 0),
        images=index.get("images", []),
    )
