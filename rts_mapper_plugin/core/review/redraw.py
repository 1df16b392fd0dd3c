"""A candidate's outline drawn again from its run's probability raster at another threshold.

The reviewer sees the model's own field: a lower threshold takes in the faint edge of a slump
the model was unsure of, a higher one trims a candidate that spills onto the tundra. The
outline is the region above the threshold that overlaps the candidate (its connected parts,
holes filled), in the project's CRS, simplified by half a pixel. Probability rasters hold
percent (0-100) with their own nodata, as inference writes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from shapely.geometry.base import BaseGeometry

from ..errors import RtsMapperError
from ..project.store import MappingProject
from ..raster_io import open_raster


def probability_of(project: MappingProject, candidate_id: int) -> Path:
    """The probability raster of the run that proposed ``candidate_id``."""
    with project.connection() as conn:
        row = conn.execute(
            "SELECT runs.prob_path FROM candidates JOIN runs ON runs.run_id = candidates.run_id "
            "WHERE candidates.fid = ?",
            (candidate_id,),
        ).fetchone()
    if row is None or not row[0]:
        raise RtsMapperError(f"candidate {candidate_id}'s run kept no probability raster", project.path)
    path = project.resolve_path(row[0])
    if not path.is_file():
        raise RtsMapperError(f"candidate {candidate_id}'s probability raster is gone", path)
    return path


def outline_at(probability: str | Path, geometry: BaseGeometry, threshold: float) -> BaseGeometry | None:
    """The outline above ``threshold`` (0-1) that overlaps ``geometry``; None when nothing
    there reaches it."""
    import shapely
    from rasterio.features import geometry_mask, shapes
    from rasterio.windows import from_bounds
    from scipy import ndimage
    from shapely.geometry import Polygon, shape

    margin = max(30.0, 0.5 * geometry.area**0.5)  # room to grow at a low threshold
    with open_raster(probability) as dataset:
        window = from_bounds(*geometry.buffer(margin).bounds, transform=dataset.transform)
        window = window.round_offsets().round_lengths()
        percent = dataset.read(1, window=window, boundless=True, fill_value=dataset.nodata or 0)
        transform = dataset.window_transform(window)
        nodata, pixel = dataset.nodata, abs(dataset.transform.a)
    if 0 in percent.shape:
        return None
    valid = percent != nodata if nodata is not None else np.ones(percent.shape, bool)
    above = valid & (percent >= round(threshold * 100))
    inside = ~geometry_mask([geometry], percent.shape, transform)
    parts, _count = ndimage.label(above, structure=np.ones((3, 3)))
    touching = np.unique(parts[inside & above])
    touching = touching[touching > 0]
    if touching.size == 0:
        return None
    kept = np.isin(parts, touching).astype(np.uint8)
    polygons = [
        Polygon(shape(polygon).exterior)  # holes filled: a slump has none
        for polygon, value in shapes(kept, mask=kept.astype(bool), transform=transform)
        if value == 1
    ]
    return shapely.union_all(polygons).simplify(pixel / 2)
