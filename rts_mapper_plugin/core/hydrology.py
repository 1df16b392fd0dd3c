"""Streams from a DEM: depressions filled, D8 flow directions, flow accumulation, a stream network
where the contributing area passes a threshold, and the distance from every cell to it.

* Depression filling: Planchon and Darboux (2002), vectorised (whole-array sweeps with a 3 x 3
  minimum filter), with a small gradient ``epsilon`` so flats drain. Only cells whose steepest
  descent ends in a pit can lie in a depression, so every other cell starts at its own
  elevation and the sweeps needed scale with the largest pit catchment, not with the DEM.
* Flow directions: D8 (O'Callaghan and Mark 1984), steepest descent to one of eight neighbours.
* Accumulation: cells are processed from the ridges down in waves (a cell is ready when all its
  donors are), each wave one vectorised step, so the work is linear in the number of cells.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .errors import RtsMapperError

# D8 neighbours: (row offset, column offset)
OFFSETS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


def fill_depressions(
    dem: np.ndarray, epsilon: float = 1e-3, max_sweeps: int = 100000, feedback=None
) -> np.ndarray:
    """The DEM with every depression filled so that each cell drains to the edge or to nodata.

    Cells whose steepest descent ends in a pit form connected regions; each is filled on its own
    bounding box (Planchon-Darboux sweeps), the rest of the DEM is untouched.
    """
    z = np.asarray(dem, dtype=np.float64)
    valid = np.isfinite(z)
    border = np.zeros_like(valid)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    # cells next to nodata drain out of the DEM, like the border
    border |= valid & ndimage.binary_dilation(~valid, structure=np.ones((3, 3), bool))
    # a cell whose steepest-descent path reaches an outlet is in no depression: it keeps its height
    direction = flow_directions(z, 1.0, 1.0)
    terminal = np.where(direction.ravel() >= 0, receivers(direction), np.arange(z.size))
    for _ in range(64):  # pointer jumping: path lengths up to 2**64
        following = terminal[terminal]
        if np.array_equal(following, terminal):
            break
        terminal = following
    drains_out = (border | ~valid).ravel()[terminal].reshape(z.shape)
    inner = valid & ~border & ~drains_out
    filled = z.copy()
    labels, _count = ndimage.label(inner, structure=np.ones((3, 3), bool))
    footprint = np.ones((3, 3), bool)
    footprint[1, 1] = False
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if feedback is not None and index % 50 == 0:
            feedback.check()
        rows = slice(box[0].start - 1, box[0].stop + 1)  # never past the DEM: inner cells are not border
        cols = slice(box[1].start - 1, box[1].stop + 1)
        region = labels[rows, cols] == index
        ground = z[rows, cols]
        fixed = np.where(np.isfinite(ground), ground, -1e12)  # nodata drains
        water = np.where(region, np.inf, fixed)
        for _sweep in range(max_sweeps):
            target = ndimage.minimum_filter(water, footprint=footprint, mode="nearest") + epsilon
            new = np.where(region & (ground >= target), ground, water)
            new = np.where(region & (ground < target) & (water > target), target, new)
            if np.array_equal(new, water):
                break
            water = new
        else:
            raise RtsMapperError(f"depression filling did not converge in {max_sweeps} sweeps")
        filled[rows, cols][region] = water[region]
    return filled


def flow_directions(filled: np.ndarray, xres: float, yres: float) -> np.ndarray:
    """Index into :data:`OFFSETS` of each cell's steepest downhill neighbour; -1 where none
    (outlets at the edge or next to nodata, nodata itself)."""
    z = np.asarray(filled, dtype=np.float64)
    rows, cols = z.shape
    padded = np.pad(z, 1, constant_values=np.nan)
    best = np.zeros_like(z)
    direction = np.full(z.shape, -1, dtype=np.int8)
    for k, (dr, dc) in enumerate(OFFSETS):
        neighbour = padded[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols]
        drop = (z - neighbour) / np.hypot(dr * yres, dc * xres)
        better = drop > best  # NaN compares False: never flow into nodata
        best = np.where(better, drop, best)
        direction[better] = k
    direction[~np.isfinite(z)] = -1
    return direction


def receivers(direction: np.ndarray) -> np.ndarray:
    """Flat index of each cell's downstream cell, -1 for outlets."""
    _rows, cols = direction.shape
    r, c = np.indices(direction.shape)
    offsets = np.array((*OFFSETS, (0, 0)))
    dr, dc = offsets[direction.astype(np.int64)].transpose(2, 0, 1)  # direction -1 -> (0, 0)
    target = (r + dr) * cols + (c + dc)
    return np.where(direction >= 0, target, -1).ravel()


def flow_accumulation(direction: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Number of cells (or sum of ``weights``) draining through each cell, itself included."""
    receiver = receivers(direction)
    n = receiver.size
    accumulation = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64).ravel().copy()
    has_receiver = receiver >= 0
    donors = np.bincount(receiver[has_receiver], minlength=n)
    ready = np.flatnonzero(donors == 0)
    while ready.size:
        ready = ready[has_receiver[ready]]
        downstream = receiver[ready]
        np.add.at(accumulation, downstream, accumulation[ready])
        np.subtract.at(donors, downstream, 1)
        candidates = np.unique(downstream)
        ready = candidates[donors[candidates] == 0]
    return accumulation.reshape(direction.shape)


def stream_mask(
    dem: np.ndarray, xres: float, yres: float, threshold_km2: float = 1.0, feedback=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(stream cells, flow directions, contributing area in km²): streams where at least
    ``threshold_km2`` drains through a cell."""
    filled = fill_depressions(dem, feedback=feedback)
    direction = flow_directions(filled, xres, yres)
    area_km2 = flow_accumulation(direction) * abs(xres * yres) / 1e6
    area_km2[~np.isfinite(np.asarray(dem, dtype=float))] = np.nan
    return area_km2 >= threshold_km2, direction, area_km2


def stream_lines(streams: np.ndarray, direction: np.ndarray, transform) -> list:
    """The stream network as shapely lines: each stream cell joined to its downstream cell."""
    import shapely
    from shapely.geometry import LineString

    rows, cols = np.nonzero(streams)
    if not rows.size:
        return []
    offsets = np.array(OFFSETS)
    k = direction[rows, cols]
    keep = k >= 0
    rows, cols, k = rows[keep], cols[keep], k[keep]
    to_rows, to_cols = rows + offsets[k, 0], cols + offsets[k, 1]
    xs, ys = transform * (cols + 0.5, rows + 0.5)
    tx, ty = transform * (to_cols + 0.5, to_rows + 0.5)
    segments = [LineString([(a, b), (c, d)]) for a, b, c, d in zip(xs, ys, tx, ty)]
    merged = shapely.line_merge(shapely.union_all(segments))
    return list(getattr(merged, "geoms", [merged]))


def distance_to(mask: np.ndarray, xres: float, yres: float) -> np.ndarray:
    """Distance in metres from every cell's centre to the nearest cell of ``mask``
    (infinite when the mask is empty)."""
    if not mask.any():
        return np.full(mask.shape, np.inf, dtype=np.float32)
    return ndimage.distance_transform_edt(~mask, sampling=(abs(yres), abs(xres))).astype(np.float32)
