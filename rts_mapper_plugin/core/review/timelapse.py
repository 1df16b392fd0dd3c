"""Time-lapse strips and animations of one place through the registered years.

For each candidate: the same window cut from every year's prepared 8-bit RGB layer, the outline
drawn on each, the year written on each; saved as one PNG strip (side by side, as the paper's
authors inspected and published them) and an animated GIF (one frame per year).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.windows import from_bounds
from shapely.geometry.base import BaseGeometry

from ..errors import RtsMapperError
from ..progress import Feedback
from ..project.store import MappingProject, YearLayer
from ..raster_io import open_raster

OUTLINE_RGB = (255, 221, 0)  # the candidates' "pending" yellow


@dataclass
class Frame:
    year: int
    rgb: np.ndarray  # (height, width, 3) uint8


@functools.lru_cache(maxsize=8)
def _font(size: int):
    from PIL import ImageFont

    try:
        from matplotlib import font_manager

        return ImageFont.truetype(font_manager.findfont("DejaVu Sans:bold"), size)
    except Exception:  # matplotlib or the font missing: PIL's own small bitmap font
        return ImageFont.load_default()


def frame_bounds(geometry: BaseGeometry, margin: float = 0.6, min_span_m: float = 150.0) -> tuple:
    """The square a frame of ``geometry`` shows: its bounding square grown by ``margin`` on each
    side, at least ``min_span_m`` across (minx, miny, maxx, maxy)."""
    if geometry is None or geometry.is_empty:
        raise RtsMapperError("the candidate has no geometry")
    minx, miny, maxx, maxy = geometry.bounds
    span = max(maxx - minx, maxy - miny, min_span_m / (1 + 2 * margin)) * (1 + 2 * margin)
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    return (cx - span / 2, cy - span / 2, cx + span / 2, cy + span / 2)


def frames_for(
    years: list[YearLayer],
    geometry: BaseGeometry,
    margin: float = 0.6,
    size_px: int = 192,
    min_span_m: float = 150.0,
) -> list[Frame]:
    """One square RGB frame per year around ``geometry`` (in the rasters' CRS), outline drawn.

    The window is the geometry's bounding square grown by ``margin`` on each side (at least
    ``min_span_m`` across), resampled to ``size_px``; outside a raster is black.
    """
    from PIL import Image, ImageDraw

    bounds = frame_bounds(geometry, margin, min_span_m)
    span = bounds[2] - bounds[0]
    frames = []
    for year_layer in years:
        with open_raster(year_layer.raster_path) as dataset:
            window = from_bounds(*bounds, transform=dataset.transform)
            bands = [1, 2, 3] if dataset.count >= 3 else [1, 1, 1]
            data = dataset.read(
                bands, window=window, out_shape=(3, size_px, size_px), boundless=True, fill_value=0
            )
        image = Image.fromarray(np.ascontiguousarray(np.moveaxis(data, 0, -1)).astype(np.uint8))
        draw = ImageDraw.Draw(image)
        scale = size_px / span
        polygons = getattr(geometry, "geoms", [geometry])
        for polygon in polygons:
            for ring in [polygon.exterior, *polygon.interiors]:
                points = [((x - bounds[0]) * scale, (bounds[3] - y) * scale) for x, y in ring.coords]
                draw.line(points, fill=OUTLINE_RGB, width=max(1, size_px // 96), joint="curve")
        frames.append(Frame(year_layer.year, np.asarray(image)))
    return frames


def _labelled(frame: Frame):
    from PIL import Image, ImageDraw

    image = Image.fromarray(frame.rgb)
    draw = ImageDraw.Draw(image)
    font = _font(max(10, image.width // 9))
    text = str(frame.year)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = 3
    draw.rectangle((0, 0, right - left + 2 * pad, bottom - top + 2 * pad), fill=(0, 0, 0))
    draw.text((pad - left, pad - top), text, fill=(255, 255, 255), font=font)
    return image


def labelled_frames(years: list[YearLayer], geometry: BaseGeometry, size_px: int = 150) -> list[Frame]:
    """:func:`frames_for` with the year written on each frame (what the review dock shows)."""
    return [Frame(f.year, np.asarray(_labelled(f))) for f in frames_for(years, geometry, size_px=size_px)]


def write_strip(frames: list[Frame], out: str | os.PathLike, gap: int = 4) -> Path:
    """The frames side by side with year labels, as one PNG."""
    from PIL import Image

    images = [_labelled(f) for f in frames]
    width = sum(i.width for i in images) + gap * (len(images) - 1)
    strip = Image.new("RGB", (width, max(i.height for i in images)), (255, 255, 255))
    x = 0
    for image in images:
        strip.paste(image, (x, 0))
        x += image.width + gap
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    strip.save(out)
    return out


def write_gif(frames: list[Frame], out: str | os.PathLike, seconds_per_year: float = 0.8) -> Path:
    """The frames as an animated GIF, one year after another, looping."""
    images = [_labelled(f) for f in frames]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(
        out, save_all=True, append_images=images[1:], duration=int(seconds_per_year * 1000), loop=0
    )
    return out


def export_timelapses(
    project: MappingProject,
    out_dir: str | os.PathLike,
    candidate_ids: list[int] | None = None,
    statuses: tuple[str, ...] | None = ("accepted",),
    strip: bool = True,
    gif: bool = True,
    size_px: int = 192,
    feedback: Feedback | None = None,
) -> list[Path]:
    """Strips / GIFs for the chosen candidates (by id, else by status) into ``out_dir``.

    Files are named ``candidate_<id>.png`` / ``.gif``. Needs registered years.
    """
    feedback = feedback or Feedback()
    years = project.years()
    if not years:
        raise RtsMapperError("the project has no registered years: prepare imagery first", project.path)
    features = project.features("candidates")
    chosen = [
        (attrs["fid"], geometry)
        for geometry, attrs in zip(features.geometries, features.attributes)
        if (candidate_ids is not None and attrs["fid"] in candidate_ids)
        or (candidate_ids is None and (statuses is None or attrs["status"] in statuses))
    ]
    if candidate_ids is not None:
        missing = set(candidate_ids) - {fid for fid, _ in chosen}
        if missing:
            raise RtsMapperError(f"no such candidates: {', '.join(map(str, sorted(missing)))}", project.path)
    written: list[Path] = []
    out_dir = Path(out_dir)
    for index, (fid, geometry) in enumerate(chosen):
        feedback.check()
        frames = frames_for(years, geometry, size_px=size_px)
        if strip:
            written.append(write_strip(frames, out_dir / f"candidate_{fid}.png"))
        if gif:
            written.append(write_gif(frames, out_dir / f"candidate_{fid}.gif"))
        feedback.step((index + 1) / len(chosen))
    return written
