"""Imagery preparation: delivered scenes (or a year's mosaic of them) to 8-bit RGB for the model.

Inputs are recognised as their vendor delivers them (see :mod:`.products`): PlanetScope analytic
scenes (4-band BGRN or 8-band SuperDove, UInt16 reflectance x 10000) with their UDM2 and
metadata sidecars, Planet basemap quads (8-bit visual RGBA, kept as delivered), Sentinel-2 L2A
(a .SAFE folder, its band files, or a stacked file) with its SCL, or any other raster whose band
descriptions, colour interpretation or band count say which bands are RGB.

:func:`prepare_image` masks each scene's unusable pixels (cloud, shadow, haze, snow) first,
mosaics the scenes of one year (each pixel from the first scene usable there), computes one
linear stretch for the whole mosaic from a sample of usable pixels (so every tile of a year gets
the same mapping), and streams the result window by window into a tiled, compressed GeoTIFF with
overviews: values 1-255, 0 = nodata.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
from rasterio.enums import ColorInterp
from rasterio.windows import Window

from ..defaults import BANDS, BASE_MAP_SOURCE
from ..errors import RtsMapperError, write_failure
from ..progress import Feedback
from ..raster_io import (
    GTIFF_PROFILE,
    atomic_output,
    block_windows,
    check_writable,
    cloud_optimize,
    gdal_env,
    reading,
)
from .products import BandChoice, Scene, choose_rgb_bands, describe_scene, expand_sources

__all__ = [
    "DEFAULT_PERCENTILES",
    "BandChoice",
    "PreparedImage",
    "Stretch",
    "choose_rgb_bands",
    "compute_stretch",
    "prepare_and_register",
    "prepare_image",
]

DEFAULT_PERCENTILES = (2.0, 98.0)


@dataclass(frozen=True)
class Stretch:
    """Per-band linear stretch ``lo..hi -> 1..255`` (0 stays for nodata)."""

    low: tuple[float, float, float]
    high: tuple[float, float, float]
    percentiles: tuple[float, float]
    sampled_pixels: int

    def apply(self, rgb: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """(3, h, w) values + (h, w) validity -> (3, h, w) uint8, 0 where not valid."""
        out = np.zeros(rgb.shape, dtype=np.uint8)
        for band in range(3):
            low, high = self.low[band], self.high[band]
            scale = 254.0 / (high - low) if high > low else 0.0
            values = rgb[band].astype(np.float32, copy=False)
            scaled = np.rint(1.0 + (values - np.float32(low)) * np.float32(scale))
            np.clip(scaled, 1, 255, out=scaled)
            out[band] = np.where(valid, scaled, 0).astype(np.uint8)
        return out


@dataclass
class PreparedImage:
    """What :func:`prepare_image` wrote, and what it found out about its inputs."""

    path: Path
    width: int
    height: int
    crs: str
    bands: BandChoice  # the first scene's; each scene's is in ``scenes``
    stretch: Stretch
    seconds: float
    sources: list[Path] = field(default_factory=list)
    scenes: list[Scene] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    date_start: str = ""  # ISO dates: the earliest and latest acquisition of the scenes
    date_end: str = ""
    sensor: str = ""  # from the products' metadata ("" when none says)


def parse_band_override(text: str | Sequence[int] | None) -> tuple[int, int, int] | None:
    """``"auto"``/None -> None; ``"3,2,1"`` or (3, 2, 1) -> (3, 2, 1)."""
    if text is None or (isinstance(text, str) and text.strip().lower() in ("", "auto")):
        return None
    try:
        parts = [int(p) for p in text.split(",")] if isinstance(text, str) else [int(p) for p in text]
    except ValueError:
        parts = []
    if len(parts) != 3 or min(parts) < 1:
        raise RtsMapperError(f"--bands wants three 1-based band numbers R,G,B, not {text!r}")
    return parts[0], parts[1], parts[2]


def parse_percentiles(text: str | Sequence[float] | None) -> tuple[float, float]:
    if text is None:
        return DEFAULT_PERCENTILES
    try:
        parts = [float(p) for p in text.split(",")] if isinstance(text, str) else [float(p) for p in text]
    except ValueError:
        parts = []
    if len(parts) != 2 or not 0 <= parts[0] < parts[1] <= 100:
        raise RtsMapperError(f"--percentiles wants LO,HI with 0 <= LO < HI <= 100, not {text!r}")
    return parts[0], parts[1]


def valid_mask(dataset, indexes: Sequence[int], window: Window, values: np.ndarray) -> np.ndarray:
    """Pixels valid in all of ``indexes``: GDAL's masks (nodata, alpha, internal mask), finite
    values, and, for integer images that declare no nodata, not all-zero (black fill)."""
    masks = dataset.read_masks(list(indexes), window=window)
    valid = np.all(masks > 0, axis=0)
    if np.issubdtype(values.dtype, np.floating):
        valid &= np.all(np.isfinite(values), axis=0)
    elif all(dataset.nodatavals[i - 1] is None for i in indexes) and not _has_mask_band(dataset, indexes):
        valid &= np.any(values != 0, axis=0)
    return valid


def _has_mask_band(dataset, indexes: Sequence[int]) -> bool:
    from rasterio.enums import MaskFlags

    return any(MaskFlags.all_valid not in dataset.mask_flag_enums[i - 1] for i in indexes)


class _DatasetRgb:
    """One open dataset read as RGB + validity, the way :class:`~.mosaic.YearMosaic` reads."""

    def __init__(self, dataset, bands: BandChoice) -> None:
        self.dataset, self.bands = dataset, bands
        self.width, self.height = dataset.width, dataset.height

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        values = self.dataset.read(list(self.bands.indexes), window=window)
        return values, valid_mask(self.dataset, self.bands.indexes, window, values)


def sample_windows(width: int, height: int, budget_pixels: int = 4_000_000, size: int = 256) -> list[Window]:
    """Windows to sample for the stretch: the whole image when small, else an even grid."""
    if width * height <= budget_pixels:
        return block_windows(width, height, size=1024)
    per_side = max(1, math.ceil(math.sqrt(budget_pixels / (size * size))))
    cols = sorted({round(i * (width - size) / max(1, per_side - 1)) for i in range(per_side)})
    rows = sorted({round(i * (height - size) / max(1, per_side - 1)) for i in range(per_side)})
    return [Window(c, r, min(size, width - c), min(size, height - r)) for r in rows for c in cols]


def compute_stretch(
    source,
    path: str | os.PathLike,
    bands: BandChoice | None = None,
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
    budget_pixels: int = 4_000_000,
) -> Stretch:
    """Percentile limits per band from a sample of usable pixels, computed once per mosaic.

    ``source`` is a :class:`~.mosaic.YearMosaic` (masks already applied), or an open dataset
    together with its ``bands``.
    """
    reader = _DatasetRgb(source, bands) if bands is not None else source
    samples: list[np.ndarray] = []
    for window in sample_windows(reader.width, reader.height, budget_pixels):
        values, valid = reader.read(window)
        if valid.any():
            samples.append(values[:, valid])
    sample = np.concatenate(samples, axis=1) if samples else np.empty((3, 0))
    if sample.shape[1] < 1000 and reader.width * reader.height > budget_pixels:
        sample = _strided_sample(reader, budget_pixels)
    if sample.shape[1] == 0:
        raise RtsMapperError("contains no valid pixels (everything is nodata or masked)", path)
    low = np.percentile(sample, percentiles[0], axis=1)
    high = np.percentile(sample, percentiles[1], axis=1)
    return Stretch(
        low=tuple(float(v) for v in low),
        high=tuple(float(v) for v in high),
        percentiles=percentiles,
        sampled_pixels=int(sample.shape[1]),
    )


def _strided_sample(reader, budget_pixels: int) -> np.ndarray:
    """Sparse usable data (a mostly empty or cloudy mosaic): every n-th pixel of the whole image,
    read window by window."""
    factor = math.ceil(math.sqrt(reader.width * reader.height / budget_pixels))
    size = factor * math.ceil(1024 / factor)  # windows start on the stride, so the lattice is even
    samples = []
    for window in block_windows(reader.width, reader.height, size):
        values, valid = reader.read(window)
        values, valid = values[:, ::factor, ::factor], valid[::factor, ::factor]
        if valid.any():
            samples.append(values[:, valid])
    return np.concatenate(samples, axis=1) if samples else np.empty((3, 0))


# valid 8-bit values copied as they are; a valid 0 becomes 1 (0 is nodata)
AS_DELIVERED = Stretch((1.0, 1.0, 1.0), (255.0, 255.0, 255.0), (0.0, 100.0), 0)
# other 8-bit RGB keeps its look: 0..255 -> 1..255
EIGHT_BIT_KEPT = Stretch((0.0, 0.0, 0.0), (255.0, 255.0, 255.0), (0.0, 100.0), 0)


def prepare_image(
    sources: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike,
    bands: str | Sequence[int] | None = BANDS,
    percentiles: str | Sequence[float] | None = None,
    feedback: Feedback | None = None,
    window_size: int = 1024,
    masks: Sequence[str | os.PathLike | None] | None = None,
    cluster: str | None = None,
    client=None,
    announce=None,
) -> PreparedImage:
    """Turn one scene, or several scenes of one year (first = highest priority), into 8-bit RGB.

    Args:
        sources: rasters, Sentinel-2 .SAFE folders or Planet basemap mosaic folders, in priority
            order: each output pixel comes from the first scene usable there.
        out: the GeoTIFF to write (tiled, deflate, overviews; 0 = nodata).
        bands: "auto", "R,G,B" or a 3-tuple of 1-based band numbers (applies to every scene).
        percentiles: stretch limits "LO,HI" (default 2,98), computed once over the whole masked
            mosaic; 8-bit input is kept as it is unless percentiles are given, and Planet basemap
            quads are always used as delivered.
        feedback: progress and cancellation.
        window_size: pixels per side of the windows streamed through memory.
        masks: one usable-data mask per source: a path, None / "auto" (find it by the product's
            naming: Planet ``<id>_3B_udm2.tif``, the SAFE's SCL) or "none" (no mask).
        cluster: read, mask, mosaic and stretch the windows on a Dask cluster (``local:N`` or a
            scheduler's address; see :mod:`.pieces`), the same image as here, pixel for pixel;
            ``client``: an open Dask client to use instead; ``announce`` gets the dashboard link.

    Raises:
        RtsMapperError: bad input; nothing is written.
        Cancelled: the user cancelled; nothing is left behind.
    """
    from .mosaic import YearMosaic

    feedback = feedback or Feedback()
    started = time.perf_counter()
    out = Path(out)
    given = [Path(sources)] if isinstance(sources, (str, os.PathLike)) else [Path(s) for s in sources]
    if not given:
        raise RtsMapperError("no input image given")
    mask_list = list(masks) if masks is not None else [None] * len(given)
    on_cluster = bool(cluster) or client is not None
    if on_cluster:  # workers have working folders of their own: absolute paths
        out, given = out.absolute(), [s.absolute() for s in given]
        mask_list = [m if m in (None, "auto", "none") else Path(m).absolute() for m in mask_list]
    if len(mask_list) != len(given):
        raise RtsMapperError(f"{len(mask_list)} masks for {len(given)} scenes: give one per scene (or auto)")
    override = parse_band_override(bands)
    limits = parse_percentiles(percentiles)
    if any(out.resolve() == s.resolve() for s in given):
        raise RtsMapperError("the output would overwrite an input", out)

    with _scratch_near(out) as scratch, gdal_env():
        pairs = []
        for source, mask in zip(given, mask_list):
            expanded = expand_sources([source])
            if len(expanded) > 1 and mask not in (None, "auto", "none"):
                raise RtsMapperError("is a mosaic folder: a mask file cannot go with it", source)
            pairs.extend((path, mask) for path in expanded)
        label = pairs[0][0] if len(pairs) == 1 else out
        scenes = [describe_scene(path, mask, override, scratch) for path, mask in pairs]
        feedback.step(0.02)
        with YearMosaic(scenes, label) as mosaic, reading(label, writing=out):
            notes = [note for scene in scenes for note in scene.notes] + mosaic.notes
            if mosaic.visual_8bit:
                stretch = AS_DELIVERED
                if percentiles is not None:
                    notes.append("percentiles ignored: Planet basemap quads are display-ready 8-bit")
            elif percentiles is None and mosaic.dtype == np.uint8:
                stretch = EIGHT_BIT_KEPT
            else:
                stretch = compute_stretch(mosaic, label, percentiles=limits)
            feedback.step(0.05)
            start, end = _date_range(scenes, notes)
            if on_cluster:
                from .pieces import prepare_pieces

                check_writable(out)  # an unwritable output fails now, not after the cluster has run
                pieces, ran = prepare_pieces(
                    scenes,
                    label,
                    stretch,
                    (mosaic.width, mosaic.height),
                    window_size,
                    out,
                    cluster or "",
                    feedback.scaled(0.05, 0.8),
                    client,
                    announce,
                )
                with pieces:
                    written = feedback.scaled(0.8, 1.0)
                    _write_stretched(
                        mosaic, scenes, stretch, out, written, window_size, notes, (start, end), pieces.read
                    )
                shutil.rmtree(pieces.folder, ignore_errors=True)  # the image is whole: pieces go
                notes.append(ran)  # said in the result, not in the image's tags (the same as here)
            else:
                written = feedback.scaled(0.05, 1.0)
                stretched = _stretched_windows(mosaic, stretch)
                _write_stretched(
                    mosaic, scenes, stretch, out, written, window_size, notes, (start, end), stretched
                )
            width, height, crs = mosaic.width, mosaic.height, mosaic.crs.to_string()
    sensors = list(dict.fromkeys(s.sensor for s in scenes if s.sensor))
    return PreparedImage(
        path=out,
        width=width,
        height=height,
        crs=crs,
        bands=scenes[0].bands,
        stretch=stretch,
        seconds=time.perf_counter() - started,
        sources=[path for path, _ in pairs],
        scenes=scenes,
        notes=notes,
        date_start=start,
        date_end=end,
        sensor=", ".join(sensors),
    )


def _date_range(scenes: Sequence[Scene], notes: list[str]) -> tuple[str, str]:
    """Earliest and latest acquisition of the scenes (ISO), noting scenes without a date."""
    days: list[date] = [d for s in scenes if s.acquired for d in s.acquired]
    undated = [s.source.name for s in scenes if not s.acquired]
    if days and undated:
        notes.append(f"acquisition date unknown for {', '.join(undated)}: the year's dates cover the others")
    return (min(days).isoformat(), max(days).isoformat()) if days else ("", "")


@contextlib.contextmanager
def _scratch_near(out: Path) -> Iterator[str]:
    """A scratch folder for the warped scenes, beside ``out`` (its drive has room for the output)
    and named after it, ``<out>.scratch``: a run killed outright leaves it, visibly unfinished, and
    the next run of the same output removes it. In the system's temporary folder where ``out``'s
    folder cannot be written (the write of ``out`` then says why)."""
    parent = out.resolve().parent
    if not (parent.is_dir() and os.access(parent, os.W_OK)):
        with tempfile.TemporaryDirectory(prefix="rts_mosaic_") as scratch:
            yield scratch
        return
    scratch = parent / (out.name + ".scratch")
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        scratch.mkdir()
    except OSError as exc:
        raise RtsMapperError(write_failure(exc, out), out) from exc
    try:
        yield str(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _stretched_windows(mosaic, stretch: Stretch):
    """A window of the mosaic, read and stretched here."""

    def stretched(window: Window) -> np.ndarray:
        values, usable = mosaic.read(window)
        return stretch.apply(values, usable)

    return stretched


def _write_stretched(
    mosaic, scenes, stretch: Stretch, out: Path, feedback: Feedback, size: int, notes, dates, stretched
) -> None:
    """The output, written window by window from ``stretched(window)`` (read here, or a cluster's
    pieces), then cloud-optimised."""
    import rasterio

    profile = {
        **GTIFF_PROFILE,
        "width": mosaic.width,
        "height": mosaic.height,
        "count": 3,
        "dtype": "uint8",
        "nodata": 0,
        "crs": mosaic.crs,
        "transform": mosaic.transform,
        "photometric": "RGB",
        "interleave": "pixel",
    }
    choices = list(
        dict.fromkeys(
            f"red {s.bands.red}, green {s.bands.green}, blue {s.bands.blue} ({s.bands.reason})"
            for s in scenes
        )
    )
    tags = {
        "RTS_MAPPER_STRETCH": (
            f"percentiles {stretch.percentiles[0]:g}-{stretch.percentiles[1]:g}; "
            f"low {', '.join(f'{v:g}' for v in stretch.low)}; "
            f"high {', '.join(f'{v:g}' for v in stretch.high)}"
        ),
        "RTS_MAPPER_BANDS": "; ".join(choices),
    }
    if dates[0]:
        tags["RTS_MAPPER_ACQUIRED"] = f"{dates[0]}/{dates[1]}"
    if notes:
        tags["RTS_MAPPER_NOTES"] = " | ".join(notes)
    windows = block_windows(mosaic.width, mosaic.height, size)
    with atomic_output(out) as partial:
        with rasterio.open(partial, "w", **profile) as dst:
            dst.colorinterp = (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
            for band, name in enumerate(("red", "green", "blue"), start=1):
                dst.set_band_description(band, name)
            dst.update_tags(**tags)
            for done, window in enumerate(windows):
                dst.write(stretched(window), window=window)
                feedback.step(0.9 * (done + 1) / len(windows))
        cloud_optimize(partial, "average")
        feedback.step(1.0)


def prepare_and_register(
    sources: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike,
    year: int | None = None,
    project_path: str | os.PathLike | None = None,
    sensor: str | None = None,
    dates: tuple[str, str] = ("", ""),
    bands: str | Sequence[int] | None = BANDS,
    percentiles: str | Sequence[float] | None = None,
    feedback: Feedback | None = None,
    masks: Sequence[str | os.PathLike | None] | None = None,
    cluster: str | None = None,
    announce=None,
) -> PreparedImage:
    """:func:`prepare_image` (on a Dask ``cluster`` when one is named), then record the result as
    ``year`` in the mapping project (created in the image's CRS when it does not exist yet). Every
    face uses this one function.

    The year's sensor and date range come from the products' metadata (the earliest and latest
    acquisition of its scenes) unless ``sensor`` / ``dates`` are given; the sensor falls back to
    :data:`~..defaults.BASE_MAP_SOURCE`.
    """
    from ..project.store import MappingProject

    if (year is None) != (project_path is None):
        raise RtsMapperError("a year and a mapping project go together (register the output as that year)")
    result = prepare_image(
        sources,
        out,
        bands=bands,
        percentiles=percentiles,
        feedback=feedback,
        masks=masks,
        cluster=cluster,
        announce=announce,
    )
    if project_path is not None:
        start, end = dates if dates[0] else (result.date_start, result.date_end)
        project = MappingProject.open_or_create(project_path, result.crs)
        project.register_year(
            int(year),
            result.path,
            sensor=sensor or result.sensor or BASE_MAP_SOURCE,
            date_start=start,
            date_end=end,
        )
    return result
