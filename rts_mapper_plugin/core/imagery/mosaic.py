"""Yearly mosaics: the scenes of one summer on one pixel grid, read window by window.

Each output pixel comes from the first scene in the list that has a usable pixel there: valid
data (not nodata, not blackfill, alpha > 0) that its usable-data mask (Planet UDM2, Sentinel-2
SCL) does not mark as cloud, shadow, haze or snow. So list the least cloudy scenes first, and a
cloud in the first scene is filled from the next. Nothing is read whole: every read is one
window of one scene (and of its mask).

The grid is the first scene's: its CRS, its pixel size, its pixel corners, extended to cover
every scene. A scene whose pixels line up with that grid is read straight from its file; a
scene in another CRS (or off the grid) is reprojected on the fly through a WarpedVRT (bilinear;
its mask nearest), and the result's notes say so.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.enums import MaskFlags, Resampling
from rasterio.transform import Affine
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from rasterio.windows import from_bounds as window_from_bounds

from ..errors import RtsMapperError
from ..raster_io import check_readable, open_raster, reading, require_crs
from .products import Scene, scl_unusable, udm2_unusable

_ALIGNED = 1e-6  # pixel fraction under which two grids count as the same


@dataclass(frozen=True)
class Grid:
    """A pixel grid: CRS, north-up transform, size."""

    crs: object
    transform: Affine
    width: int
    height: int


def _offset_on(dataset, grid: Grid) -> tuple[int, int] | None:
    """(col, row) of the dataset's first pixel in ``grid`` when its pixels are the grid's pixels."""
    t, g = dataset.transform, grid.transform
    if dataset.crs != grid.crs or t.b or t.d or g.b or g.d:
        return None
    if abs(t.a - g.a) > _ALIGNED * abs(g.a) or abs(t.e - g.e) > _ALIGNED * abs(g.e):
        return None
    col, row = (t.c - g.c) / g.a, (t.f - g.f) / g.e
    if abs(col - round(col)) > _ALIGNED or abs(row - round(row)) > _ALIGNED:
        return None
    return round(col), round(row)


def _intersection(a: Window, b: Window) -> Window | None:
    col0, row0 = max(a.col_off, b.col_off), max(a.row_off, b.row_off)
    col1 = min(a.col_off + a.width, b.col_off + b.width)
    row1 = min(a.row_off + a.height, b.row_off + b.height)
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)


class _OnGrid:
    """One raster read in the mosaic's pixel coordinates: straight from the file when its pixels
    line up with the grid, else through a WarpedVRT onto the grid."""

    def __init__(self, dataset, grid: Grid, resampling: Resampling, stack: contextlib.ExitStack) -> None:
        offset = _offset_on(dataset, grid)
        self.warped = offset is None
        if offset is not None:
            self.source, self.shift = dataset, offset
            self.extent = Window(offset[0], offset[1], dataset.width, dataset.height)
        else:
            self.source = stack.enter_context(
                WarpedVRT(
                    dataset,
                    crs=grid.crs,
                    transform=grid.transform,
                    width=grid.width,
                    height=grid.height,
                    resampling=resampling,
                )
            )
            self.shift = (0, 0)
            bounds = transform_bounds(dataset.crs, grid.crs, *dataset.bounds, densify_pts=21)
            footprint = window_from_bounds(*bounds, transform=grid.transform)
            col0, row0 = math.floor(footprint.col_off) - 1, math.floor(footprint.row_off) - 1
            col1 = math.ceil(footprint.col_off + footprint.width) + 1
            row1 = math.ceil(footprint.row_off + footprint.height) + 1
            self.extent = _intersection(
                Window(col0, row0, col1 - col0, row1 - row0), Window(0, 0, grid.width, grid.height)
            ) or Window(0, 0, 0, 0)

    def part(self, window: Window) -> Window | None:
        """The part of ``window`` (mosaic pixels) this raster covers."""
        return _intersection(window, self.extent)

    def source_window(self, part: Window) -> Window:
        return Window(part.col_off - self.shift[0], part.row_off - self.shift[1], part.width, part.height)


class _SceneOnGrid:
    """A scene (its RGB bands, its validity, its usable-data mask) read in mosaic windows."""

    def __init__(self, scene: Scene, dataset, mask_dataset, grid: Grid, stack: contextlib.ExitStack) -> None:
        self.scene = scene
        self.indexes = list(scene.bands.indexes)
        self.data = _OnGrid(dataset, grid, Resampling.bilinear, stack)
        self.mask = None if mask_dataset is None else _OnGrid(mask_dataset, grid, Resampling.nearest, stack)
        # integer images that declare no nodata and no mask use 0 in every band as fill
        self.zero_is_fill = (
            np.issubdtype(np.dtype(dataset.dtypes[0]), np.integer)
            and all(dataset.nodatavals[i - 1] is None for i in self.indexes)
            and all(MaskFlags.all_valid in dataset.mask_flag_enums[i - 1] for i in self.indexes)
        )
        self.floating = np.issubdtype(np.dtype(dataset.dtypes[0]), np.floating)

    def read(self, window: Window) -> tuple[Window, np.ndarray, np.ndarray] | None:
        """(part of window covered, (3, h, w) values, (h, w) usable) or None when not covered."""
        part = self.data.part(window)
        if part is None:
            return None
        source = self.data.source
        source_window = self.data.source_window(part)
        values = source.read(self.indexes, window=source_window)
        usable = np.all(source.read_masks(self.indexes, window=source_window) > 0, axis=0)
        if self.floating:
            usable &= np.all(np.isfinite(values), axis=0)
        elif self.zero_is_fill:
            usable &= np.any(values != 0, axis=0)
        if self.scene.alpha_band:
            usable &= source.read(self.scene.alpha_band, window=source_window) > 0
        if self.mask is not None and usable.any():
            usable &= ~self._unusable(part)
        return part, values, usable

    def _unusable(self, part: Window) -> np.ndarray:
        mask = self.scene.mask
        source = self.mask.source
        window = self.mask.source_window(part)
        if mask.kind == "udm2":
            bands = source.read(window=window)
            return udm2_unusable(bands)
        classes = source.read(mask.band, window=window)
        unusable = scl_unusable(classes)
        if self.mask.warped:  # outside the SCL (warped edges): unknown, so not usable
            unusable |= source.read_masks(mask.band, window=window) == 0
        return unusable


class YearMosaic:
    """The scenes of one year on one pixel grid; :meth:`read` gives RGB and usability per window.

    Args:
        scenes: described scenes (see :func:`~.products.describe_scene`), highest priority first.
        label: what to name in errors about the mosaic as a whole.

    Raises:
        RtsMapperError: a scene or mask is unreadable, has no CRS, its mask is on another grid, or
            the scenes cannot share a mosaic (data types, band layouts, visual and analytic mixed).
    """

    def __init__(self, scenes: Sequence[Scene], label: str | Path) -> None:
        if not scenes:
            raise RtsMapperError("no scenes given for the mosaic")
        self.scenes = list(scenes)
        self.notes: list[str] = []
        self._stack = contextlib.ExitStack()
        try:
            self._open(label)
        except BaseException:
            self._stack.close()
            raise

    def _open(self, label) -> None:
        datasets, masks = [], []
        for scene in self.scenes:
            dataset = self._stack.enter_context(open_raster(scene.raster))
            require_crs(dataset, scene.source)
            check_readable(dataset, scene.source)
            datasets.append(dataset)
            masks.append(self._open_mask(scene, dataset))
        self._check_compatible(datasets)
        first = datasets[0]
        self.dtype = np.dtype(first.dtypes[0])
        self.visual_8bit = self.scenes[0].visual_8bit
        self.grid = _union_grid(datasets)
        self.readers = []
        for scene, dataset, mask in zip(self.scenes, datasets, masks):
            reader = _SceneOnGrid(scene, dataset, mask, self.grid, self._stack)
            if reader.data.warped:
                how = "reprojected" if dataset.crs != self.grid.crs else "resampled"
                self.notes.append(
                    f"{scene.source.name}: {how} from {dataset.crs.to_string()} onto the grid of "
                    f"{self.scenes[0].source.name} ({self.grid.crs.to_string()}, bilinear, through a WarpedVRT)"
                )
            self.readers.append(reader)

    def _open_mask(self, scene: Scene, dataset):
        if scene.mask is None:
            return None
        path = scene.mask.path
        if path == scene.raster:
            return dataset
        mask = self._stack.enter_context(open_raster(path))
        with reading(path):
            if scene.mask.kind == "udm2":
                if mask.count != 8:
                    raise RtsMapperError(f"has {mask.count} bands; a Planet UDM2 has 8", path)
                same = (
                    mask.crs == dataset.crs
                    and mask.width == dataset.width
                    and mask.height == dataset.height
                    and mask.transform.almost_equals(dataset.transform)
                )
                if not same:
                    raise RtsMapperError(
                        f"is {mask.width} x {mask.height} px on another grid than its scene "
                        f"{scene.source.name} ({dataset.width} x {dataset.height} px): a UDM2 must match "
                        "its scene pixel for pixel",
                        path,
                    )
            else:
                if scene.mask.band > mask.count:
                    raise RtsMapperError(f"has no band {scene.mask.band} (the SCL)", path)
                tolerance = 0.5 * max(abs(dataset.transform.a), abs(dataset.transform.e))
                same = mask.crs == dataset.crs and all(
                    abs(a - b) <= tolerance for a, b in zip(mask.bounds, dataset.bounds)
                )
                if not same:
                    raise RtsMapperError(
                        f"covers another area or grid ({mask.crs.to_string() if mask.crs else 'no CRS'}, "
                        f"bounds {tuple(round(v, 1) for v in mask.bounds)}) than its scene "
                        f"{scene.source.name} ({dataset.crs.to_string()}, bounds "
                        f"{tuple(round(v, 1) for v in dataset.bounds)}): an SCL must cover its scene's tile",
                        path,
                    )
            check_readable(mask, path)
        return mask

    def _check_compatible(self, datasets) -> None:
        ref_scene, ref = self.scenes[0], datasets[0]
        for scene, dataset in zip(self.scenes[1:], datasets[1:]):
            if scene.visual_8bit != ref_scene.visual_8bit:
                visual, other = (scene, ref_scene) if scene.visual_8bit else (ref_scene, scene)
                raise RtsMapperError(
                    f"cannot share a mosaic with {other.source.name}: {visual.source.name} is a display-ready "
                    "8-bit basemap, the other an image to stretch",
                    scene.source,
                )
            positional = scene.bands.positional or ref_scene.bands.positional
            if dataset.count != ref.count and positional:
                raise RtsMapperError(
                    f"has {dataset.count} bands but {ref_scene.source.name} has {ref.count}: "
                    "the scenes of one mosaic must have the same bands",
                    scene.source,
                )
            if dataset.dtypes[0] != ref.dtypes[0]:
                raise RtsMapperError(
                    f"is {dataset.dtypes[0]} but {ref_scene.source.name} is {ref.dtypes[0]}: "
                    "the scenes of one mosaic must have the same data type",
                    scene.source,
                )

    # -- the mosaic as an image --
    @property
    def width(self) -> int:
        return self.grid.width

    @property
    def height(self) -> int:
        return self.grid.height

    @property
    def crs(self):
        return self.grid.crs

    @property
    def transform(self) -> Affine:
        return self.grid.transform

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """(3, h, w) RGB values and (h, w) usable pixels of ``window``: each pixel from the first
        scene usable there."""
        height, width = int(window.height), int(window.width)
        rgb = np.zeros((3, height, width), dtype=self.dtype)
        usable = np.zeros((height, width), dtype=bool)
        for reader in self.readers:
            got = reader.read(window)
            if got is None:
                continue
            part, values, ok = got
            rows = slice(int(part.row_off - window.row_off), int(part.row_off - window.row_off + part.height))
            cols = slice(int(part.col_off - window.col_off), int(part.col_off - window.col_off + part.width))
            take = ok & ~usable[rows, cols]
            if take.any():
                target = rgb[:, rows, cols]  # a view: filling it fills rgb
                target[:, take] = values[:, take]
                usable[rows, cols] |= take
            if usable.all():
                break
        return rgb, usable

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> YearMosaic:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _union_grid(datasets) -> Grid:
    """The first dataset's grid, extended (on its own pixel corners) to cover every dataset."""
    first = datasets[0]
    t = first.transform
    if t.b or t.d:
        raise RtsMapperError("is rotated: RTS Mapper needs north-up images", first.name)
    xres, yres = t.a, t.e  # yres < 0 for north-up
    left, bottom, right, top = first.bounds
    for dataset in datasets[1:]:
        bounds = dataset.bounds
        if dataset.crs != first.crs:
            bounds = transform_bounds(dataset.crs, first.crs, *bounds, densify_pts=21)
        left, bottom = min(left, bounds[0]), min(bottom, bounds[1])
        right, top = max(right, bounds[2]), max(top, bounds[3])
    col0 = math.floor((left - t.c) / xres + _ALIGNED)
    col1 = math.ceil((right - t.c) / xres - _ALIGNED)
    row0 = math.floor((top - t.f) / yres + _ALIGNED)
    row1 = math.ceil((bottom - t.f) / yres - _ALIGNED)
    transform = Affine(xres, 0.0, t.c + col0 * xres, 0.0, yres, t.f + row0 * yres)
    return Grid(first.crs, transform, col1 - col0, row1 - row0)
