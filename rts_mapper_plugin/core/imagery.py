"""Imagery preparation: any multispectral scene (or a year's mosaic) to 8-bit RGB for the model.

PlanetScope analytic scenes are 4-band BGRN surface reflectance (x10000, UInt16); Sentinel-2
and Landsat chips come as UInt16 or Float32 reflectance; some users bring 8-bit RGB already.
:func:`prepare_image` picks the RGB bands, computes one linear stretch per mosaic from a sample
of valid pixels (so that every tile of a year gets the same mapping), and streams the image
window by window into a tiled, compressed GeoTIFF with overviews: values 1-255, 0 = nodata.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rasterio.enums import ColorInterp, Resampling
from rasterio.windows import Window

from .errors import RtsMapperError
from .progress import Feedback
from .raster_io import (
    GTIFF_PROFILE,
    atomic_output,
    block_windows,
    check_readable,
    gdal_env,
    open_raster,
    overview_factors,
    reading,
    require_crs,
)

DEFAULT_PERCENTILES = (2.0, 98.0)
# Band descriptions that name a colour. Bare "B2/B3/B4" follow Sentinel-2 and Landsat 8-9 (blue,
# green, red); older Landsat numbering differs, so such files need an explicit --bands.
_BAND_NAMES = {
    "red": re.compile(r"^(red|r|sr_b4|b0?4|band ?4 ?\(?red\)?)$", re.IGNORECASE),
    "green": re.compile(r"^(green|g|sr_b3|b0?3|band ?3 ?\(?green\)?)$", re.IGNORECASE),
    "blue": re.compile(r"^(blue|b|sr_b2|b0?2|band ?2 ?\(?blue\)?)$", re.IGNORECASE),
}
_COLOR_INTERP = {"red": ColorInterp.red, "green": ColorInterp.green, "blue": ColorInterp.blue}


@dataclass(frozen=True)
class BandChoice:
    """Which 1-based bands give red, green and blue, and how that was decided."""

    red: int
    green: int
    blue: int
    reason: str

    @property
    def indexes(self) -> tuple[int, int, int]:
        return (self.red, self.green, self.blue)


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
    """What :func:`prepare_image` wrote."""

    path: Path
    width: int
    height: int
    crs: str
    bands: BandChoice
    stretch: Stretch
    seconds: float
    sources: list[Path] = field(default_factory=list)


def parse_band_override(text: str | Sequence[int] | None) -> tuple[int, int, int] | None:
    """``"auto"``/None -> None; ``"3,2,1"`` or (3, 2, 1) -> (3, 2, 1)."""
    if text is None or (isinstance(text, str) and text.strip().lower() in ("", "auto")):
        return None
    parts = [int(p) for p in text.split(",")] if isinstance(text, str) else [int(p) for p in text]
    if len(parts) != 3 or min(parts) < 1:
        raise RtsMapperError(f"--bands wants three 1-based band numbers R,G,B, not {text!r}")
    return parts[0], parts[1], parts[2]


def parse_percentiles(text: str | Sequence[float] | None) -> tuple[float, float]:
    if text is None:
        return DEFAULT_PERCENTILES
    parts = [float(p) for p in text.split(",")] if isinstance(text, str) else [float(p) for p in text]
    if len(parts) != 2 or not 0 <= parts[0] < parts[1] <= 100:
        raise RtsMapperError(f"--percentiles wants LO,HI with 0 <= LO < HI <= 100, not {text!r}")
    return parts[0], parts[1]


def choose_rgb_bands(
    dataset, path: str | os.PathLike, override: tuple[int, int, int] | None = None
) -> BandChoice:
    """Red, green, blue band numbers: explicit override, else the file's own band descriptions
    or colour interpretation, else by band count (3 = RGB, 4 = PlanetScope BGRN)."""
    count = dataset.count
    if count < 3:
        raise RtsMapperError(
            f"has {count} band{'s' if count > 1 else ''}; RTS Mapper needs at least 3 (RGB) "
            "or 4 (PlanetScope blue, green, red, NIR)",
            path,
        )
    if override is not None:
        bad = [b for b in override if b > count]
        if bad:
            raise RtsMapperError(f"has {count} bands, so band {bad[0]} in --bands does not exist", path)
        return BandChoice(*override, reason="given explicitly")

    found: dict[str, int] = {}
    for index, description in enumerate(dataset.descriptions, start=1):
        for colour, pattern in _BAND_NAMES.items():
            if description and colour not in found and pattern.match(description.strip()):
                found[colour] = index
    if len(found) == 3:
        return BandChoice(found["red"], found["green"], found["blue"], reason="band descriptions")

    found = {}
    for index, interp in enumerate(dataset.colorinterp, start=1):
        for colour, wanted in _COLOR_INTERP.items():
            if interp == wanted and colour not in found:
                found[colour] = index
    if len(found) == 3:
        return BandChoice(found["red"], found["green"], found["blue"], reason="colour interpretation")

    if count == 3:
        return BandChoice(1, 2, 3, reason="3 bands: assumed red, green, blue")
    if count == 4:
        return BandChoice(3, 2, 1, reason="4 bands: assumed PlanetScope blue, green, red, NIR")
    raise RtsMapperError(
        f"has {count} bands without red/green/blue descriptions: say which with --bands R,G,B "
        "(e.g. 3,2,1 when bands 1-3 are blue, green, red as in Sentinel-2 B2,B3,B4)",
        path,
    )


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


def sample_windows(width: int, height: int, budget_pixels: int = 4_000_000, size: int = 256) -> list[Window]:
    """Windows to sample for the stretch: the whole image when small, else an even grid."""
    if width * height <= budget_pixels:
        return block_windows(width, height, size=1024)
    per_side = max(1, math.ceil(math.sqrt(budget_pixels / (size * size))))
    cols = sorted({round(i * (width - size) / max(1, per_side - 1)) for i in range(per_side)})
    rows = sorted({round(i * (height - size) / max(1, per_side - 1)) for i in range(per_side)})
    return [Window(c, r, min(size, width - c), min(size, height - r)) for r in rows for c in cols]


def compute_stretch(
    dataset,
    path: str | os.PathLike,
    bands: BandChoice,
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
    budget_pixels: int = 4_000_000,
) -> Stretch:
    """Percentile limits per band from a sample of valid pixels, computed once per mosaic."""
    samples: list[np.ndarray] = []
    for window in sample_windows(dataset.width, dataset.height, budget_pixels):
        values = dataset.read(list(bands.indexes), window=window)
        valid = valid_mask(dataset, bands.indexes, window, values)
        if valid.any():
            samples.append(values[:, valid])
    sample = np.concatenate(samples, axis=1) if samples else np.empty((3, 0))
    if sample.shape[1] < 1000 and dataset.width * dataset.height > budget_pixels:
        sample = _decimated_sample(dataset, bands, budget_pixels)
    if sample.shape[1] == 0:
        raise RtsMapperError("contains no valid pixels (everything is nodata)", path)
    low = np.percentile(sample, percentiles[0], axis=1)
    high = np.percentile(sample, percentiles[1], axis=1)
    return Stretch(
        low=tuple(float(v) for v in low),
        high=tuple(float(v) for v in high),
        percentiles=percentiles,
        sampled_pixels=int(sample.shape[1]),
    )


def _decimated_sample(dataset, bands: BandChoice, budget_pixels: int) -> np.ndarray:
    """Sparse valid data (a mostly empty mosaic): sample the whole image at reduced resolution."""
    factor = math.ceil(math.sqrt(dataset.width * dataset.height / budget_pixels))
    shape = (3, max(1, dataset.height // factor), max(1, dataset.width // factor))
    values = dataset.read(list(bands.indexes), out_shape=shape, resampling=Resampling.nearest)
    masks = dataset.read_masks(list(bands.indexes), out_shape=shape, resampling=Resampling.nearest)
    valid = np.all(masks > 0, axis=0)
    if np.issubdtype(values.dtype, np.floating):
        valid &= np.all(np.isfinite(values), axis=0)
    return values[:, valid]


def prepare_image(
    sources: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike,
    bands: str | Sequence[int] | None = "auto",
    percentiles: str | Sequence[float] | None = None,
    feedback: Feedback | None = None,
    window_size: int = 1024,
) -> PreparedImage:
    """Turn one scene, or several scenes of one year (first = on top), into 8-bit RGB.

    Args:
        sources: one raster, or several to mosaic in priority order (the first wins overlaps).
        out: the GeoTIFF to write (tiled, deflate, overviews; 0 = nodata).
        bands: "auto", "R,G,B" or a 3-tuple of 1-based band numbers.
        percentiles: stretch limits "LO,HI" (default 2,98), computed once over the whole input;
            8-bit input is kept as it is (0..255 -> 1..255) unless percentiles are given.
        feedback: progress and cancellation.
        window_size: pixels per side of the windows streamed through memory.

    Raises:
        RtsMapperError: bad input; nothing is written.
        Cancelled: the user cancelled; nothing is left behind.
    """
    feedback = feedback or Feedback()
    started = time.perf_counter()
    out = Path(out)
    source_list = [Path(sources)] if isinstance(sources, (str, os.PathLike)) else [Path(s) for s in sources]
    if not source_list:
        raise RtsMapperError("no input image given")
    override = parse_band_override(bands)
    limits = parse_percentiles(percentiles)
    if any(out.resolve() == s.resolve() for s in source_list):
        raise RtsMapperError("the output would overwrite an input", out)

    with tempfile.TemporaryDirectory(prefix="rts_mosaic_", dir=_temp_dir_near(out)) as scratch:
        if len(source_list) == 1:
            source = source_list[0]
        else:
            from .mosaic import build_mosaic_vrt

            source = build_mosaic_vrt(source_list, Path(scratch) / "mosaic.vrt")
        feedback.step(0.02)
        with gdal_env(), open_raster(source) as dataset:
            label = source_list[0] if len(source_list) == 1 else out
            require_crs(dataset, label)
            choice = choose_rgb_bands(dataset, label, override)
            check_readable(dataset, label)
            with reading(label):
                if percentiles is None and dataset.dtypes[0] == "uint8":
                    # already 8-bit: keep the look, only move 0 out of the way of nodata
                    stretch = Stretch((0.0, 0.0, 0.0), (255.0, 255.0, 255.0), (0.0, 100.0), 0)
                else:
                    stretch = compute_stretch(dataset, label, choice, limits)
                feedback.step(0.05)
                _write_stretched(dataset, choice, stretch, out, feedback.scaled(0.05, 1.0), window_size)
            width, height, crs = dataset.width, dataset.height, dataset.crs.to_string()
    return PreparedImage(
        path=out,
        width=width,
        height=height,
        crs=crs,
        bands=choice,
        stretch=stretch,
        seconds=time.perf_counter() - started,
        sources=source_list,
    )


def _temp_dir_near(out: Path) -> str | None:
    parent = out.resolve().parent
    return str(parent) if parent.is_dir() and os.access(parent, os.W_OK) else None


def _write_stretched(
    dataset, choice: BandChoice, stretch: Stretch, out: Path, feedback: Feedback, size: int
) -> None:
    import rasterio

    profile = {
        **GTIFF_PROFILE,
        "width": dataset.width,
        "height": dataset.height,
        "count": 3,
        "dtype": "uint8",
        "nodata": 0,
        "crs": dataset.crs,
        "transform": dataset.transform,
        "photometric": "RGB",
        "interleave": "pixel",
    }
    windows = block_windows(dataset.width, dataset.height, size)
    with atomic_output(out) as partial:
        with rasterio.open(partial, "w", **profile) as dst:
            dst.colorinterp = (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
            for band, name in enumerate(("red", "green", "blue"), start=1):
                dst.set_band_description(band, name)
            dst.update_tags(
                RTS_MAPPER_STRETCH=(
                    f"percentiles {stretch.percentiles[0]:g}-{stretch.percentiles[1]:g}; "
                    f"low {', '.join(f'{v:g}' for v in stretch.low)}; "
                    f"high {', '.join(f'{v:g}' for v in stretch.high)}"
                ),
                RTS_MAPPER_BANDS=f"red {choice.red}, green {choice.green}, blue {choice.blue} ({choice.reason})",
            )
            for done, window in enumerate(windows):
                values = dataset.read(list(choice.indexes), window=window)
                valid = valid_mask(dataset, choice.indexes, window, values)
                dst.write(stretch.apply(values, valid), window=window)
                feedback.step(0.9 * (done + 1) / len(windows))
        with rasterio.open(partial, "r+") as dst:
            dst.build_overviews(overview_factors(dataset.width, dataset.height), Resampling.average)
            dst.update_tags(ns="rio_overview", resampling="average")
        feedback.step(1.0)


def prepare_and_register(
    sources: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike,
    year: int | None = None,
    project_path: str | os.PathLike | None = None,
    sensor: str = "",
    dates: tuple[str, str] = ("", ""),
    bands: str | Sequence[int] | None = "auto",
    percentiles: str | Sequence[float] | None = None,
    feedback: Feedback | None = None,
) -> PreparedImage:
    """:func:`prepare_image`, then record the result as ``year`` in the mapping project (created
    in the image's CRS when it does not exist yet). Every face uses this one function."""
    from .project import MappingProject

    if (year is None) != (project_path is None):
        raise RtsMapperError("a year and a mapping project go together (register the output as that year)")
    result = prepare_image(sources, out, bands=bands, percentiles=percentiles, feedback=feedback)
    if project_path is not None:
        project = MappingProject.open_or_create(project_path, result.crs)
        project.register_year(int(year), result.path, sensor=sensor, date_start=dates[0], date_end=dates[1])
    return result
