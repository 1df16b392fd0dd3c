"""Streams from a DEM: D8 flow with every depression routed out, flow accumulation, a stream
network where the contributing area passes a threshold, and the distance from every cell to it.

* Flow directions: D8 (O'Callaghan and Mark 1984), steepest descent to one of eight neighbours.
* Depressions: each cell's steepest-descent path ends in a terminal cell (found by pointer
  jumping). Terminals on the DEM's edge or next to nodata are outlets; the others are pits. The
  catchments of the terminals form a graph whose edges carry the lowest pass between two
  catchments; a priority flood over that graph (Barnes et al. 2014, on catchments rather than
  cells) gives each pit its spill level and the pass it leaves by. Water in a pit then flows
  back up its own steepest-descent path to the pass and over it, so every cell drains to an
  outlet without cycles, and the filled surface is ``max(elevation, spill level)``. Everything
  is whole-array numpy except the flood over catchments, which are few.
* Accumulation: cells are processed from the ridges down in waves (a cell is ready when all its
  donors are), each wave one vectorised step, so the work is linear in the number of cells.
"""

from __future__ import annotations

import heapq

import numpy as np
from scipy import ndimage

# D8 neighbours: (row offset, column offset)
OFFSETS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


def index_dtype(size: int):
    """int32 cell indices while they fit (half the memory of int64 on large DEMs)."""
    return np.int32 if size < 2**31 - 1 else np.int64


def d8_receivers(dem: np.ndarray, xres: float, yres: float) -> np.ndarray:
    """Flat index of each cell's steepest strictly-downhill neighbour; -1 where none (pits,
    flats, nodata)."""
    z = np.asarray(dem, dtype=np.float64)
    rows, cols = z.shape
    padded = np.pad(z, 1, constant_values=np.nan)
    best = np.zeros_like(z)
    dtype = index_dtype(z.size)
    index = np.arange(z.size, dtype=dtype).reshape(z.shape)
    receiver = np.full(z.shape, -1, dtype=dtype)
    for dr, dc in OFFSETS:
        neighbour = padded[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols]
        drop = (z - neighbour) / np.hypot(dr * yres, dc * xres)
        better = drop > best  # NaN compares False: never flow into nodata or off the DEM
        best[better] = drop[better]
        receiver[better] = index[better] + dtype(dr * cols + dc)
    return receiver.ravel()


def _terminals(receiver: np.ndarray) -> np.ndarray:
    """The cell each cell's path ends in (pointer jumping: log2 of the longest path steps)."""
    terminal = np.where(receiver >= 0, receiver, np.arange(receiver.size, dtype=receiver.dtype))
    while True:
        following = terminal[terminal]
        if np.array_equal(following, terminal):
            return terminal
        terminal = following


def route_depressions(dem: np.ndarray, receiver: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(receivers with every pit routed out over its lowest pass, filled elevations)."""
    z = np.asarray(dem, dtype=np.float64)
    rows, cols = z.shape
    valid = np.isfinite(z)
    edge = np.zeros_like(valid)
    edge[0, :] = edge[-1, :] = edge[:, 0] = edge[:, -1] = True
    edge |= valid & ndimage.binary_dilation(~valid, structure=np.ones((3, 3), bool))
    terminal = _terminals(receiver)
    ids, label = np.unique(terminal, return_inverse=True)  # catchment of each cell
    del terminal
    label = label.astype(index_dtype(len(ids) + 1)).reshape(z.shape)
    outlet = edge.ravel()[ids] | ~valid.ravel()[ids]
    # edges between catchments: the lowest pass, and its pair of cells
    keys, levels, cells_a, cells_b = [], [], [], []
    flat = np.arange(z.size, dtype=receiver.dtype).reshape(z.shape)
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a = (slice(0, rows - dr), slice(max(-dc, 0), cols - max(dc, 0)))
        b = (slice(dr, rows), slice(max(dc, 0), cols - max(-dc, 0)))
        la, lb = label[a], label[b]
        differ = (la != lb) & valid[a] & valid[b]
        if not differ.any():
            continue
        la, lb = la[differ], lb[differ]
        keys.append(np.minimum(la, lb).astype(np.int64) * len(ids) + np.maximum(la, lb))
        levels.append(np.maximum(z[a][differ], z[b][differ]))
        cells_a.append(flat[a][differ])
        cells_b.append(flat[b][differ])
    label_flat = label.ravel()
    new_receiver = receiver.copy()
    spill = np.where(outlet, -np.inf, np.inf)
    parent = np.full(len(ids), -1, dtype=np.int64)  # the pass a pit leaves by; -2: off the DEM
    # a pit catchment that reaches the DEM's edge (or nodata) can also spill off it there
    edge_cells = np.flatnonzero(edge.ravel() & valid.ravel())
    exit_cell = np.full(len(ids), -1, dtype=np.int64)
    if edge_cells.size:
        edge_label, edge_z = label_flat[edge_cells], z.ravel()[edge_cells]
        order = np.lexsort((edge_z, edge_label))
        first = order[np.r_[True, edge_label[order][1:] != edge_label[order][:-1]]]
        exit_cell[edge_label[first]] = edge_cells[first]
        off = ~outlet[edge_label[first]]
        spill[edge_label[first][off]] = edge_z[first][off]
        parent[edge_label[first][off]] = -2
    heap = [(float(spill[c]), int(c)) for c in np.flatnonzero(np.isfinite(spill) | outlet)]
    heapq.heapify(heap)
    level = cell_a = cell_b = np.zeros(0)
    if keys:
        key, level = np.concatenate(keys), np.concatenate(levels)
        cell_a, cell_b = np.concatenate(cells_a), np.concatenate(cells_b)
        order = np.lexsort((level, key))
        first = order[np.r_[True, key[order][1:] != key[order][:-1]]]
        key, level, cell_a, cell_b = key[first], level[first], cell_a[first], cell_b[first]
        u, v = key // len(ids), key % len(ids)
        adjacency: list[list[int]] = [[] for _ in range(len(ids))]
        for index, (p, q) in enumerate(zip(u.tolist(), v.tolist())):
            adjacency[p].append(index)
            adjacency[q].append(index)
        # priority flood over catchments, from every outlet at once
        done = np.zeros(len(ids), bool)
        levels_list, u_list, v_list = level.tolist(), u.tolist(), v.tolist()
        while heap:
            current, node = heapq.heappop(heap)
            if done[node]:
                continue
            done[node] = True
            for index in adjacency[node]:
                other = v_list[index] if u_list[index] == node else u_list[index]
                if done[other]:
                    continue
                candidate = max(current, levels_list[index])
                if candidate < spill[other]:
                    spill[other] = candidate
                    parent[other] = index
                    heapq.heappush(heap, (candidate, other))
    # route each pit out: over its pass (or off the edge), and back up its own path to the pass
    pits = np.flatnonzero(~outlet & (parent != -1))
    passes = parent[pits]
    over_edge = passes == -2
    safe = np.where(over_edge, 0, passes)
    if level.size:
        inside_a = label_flat[cell_a[safe]] == pits
        start = np.where(inside_a, cell_a[safe], cell_b[safe])
        over = np.where(inside_a, cell_b[safe], cell_a[safe])
    else:
        start = over = np.zeros(pits.size, dtype=np.int64)
    start = np.where(over_edge, exit_cell[pits], start)
    over = np.where(over_edge, -1, over)
    new_receiver[start] = over
    previous, current = start, receiver[start]
    while current.size:
        moving = current >= 0
        previous, current = previous[moving], current[moving]
        new_receiver[current] = previous
        previous, current = current, receiver[current]
    filled = np.where(valid, np.maximum(z, spill[label]), np.nan)
    return new_receiver, filled


def routed_receivers(dem: np.ndarray, xres: float, yres: float) -> tuple[np.ndarray, np.ndarray]:
    """(D8 receivers with depressions routed out, filled DEM): every valid cell drains to the
    DEM's edge or to nodata."""
    return route_depressions(dem, d8_receivers(dem, xres, yres))


def fill_depressions(dem: np.ndarray) -> np.ndarray:
    """The DEM with every depression filled to its spill level."""
    return routed_receivers(dem, 1.0, 1.0)[1]


def flow_accumulation(
    receiver: np.ndarray, shape: tuple[int, int], weights: np.ndarray | None = None
) -> np.ndarray:
    """Number of cells (or sum of ``weights``) draining through each cell, itself included."""
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
    return accumulation.reshape(shape)


def stream_mask(
    dem: np.ndarray, xres: float, yres: float, threshold_km2: float = 1.0, feedback=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(stream cells, receivers, contributing area in km²): streams where at least
    ``threshold_km2`` drains through a cell."""
    z = np.asarray(dem, dtype=np.float64)
    receiver, _filled = routed_receivers(z, xres, yres)
    if feedback is not None:
        feedback.check()
    area_km2 = flow_accumulation(receiver, z.shape) * abs(xres * yres) / 1e6
    area_km2[~np.isfinite(z)] = np.nan
    return area_km2 >= threshold_km2, receiver, area_km2


def stream_lines(streams: np.ndarray, receiver: np.ndarray, transform) -> list:
    """The stream network as shapely lines: each stream cell joined to its downstream cell."""
    import shapely
    from shapely.geometry import LineString

    cols = streams.shape[1]
    cells = np.flatnonzero(streams.ravel())
    targets = receiver[cells]
    keep = targets >= 0
    cells, targets = cells[keep], targets[keep]
    if not cells.size:
        return []
    xs, ys = transform * (cells % cols + 0.5, cells // cols + 0.5)
    tx, ty = transform * (targets % cols + 0.5, targets // cols + 0.5)
    segments = [LineString([(a, b), (c, d)]) for a, b, c, d in zip(xs, ys, tx, ty)]
    merged = shapely.line_merge(shapely.union_all(segments))
    return list(getattr(merged, "geoms", [merged]))


def distance_to(mask: np.ndarray, xres: float, yres: float) -> np.ndarray:
    """Distance in metres from every cell's centre to the nearest cell of ``mask``
    (infinite when the mask is empty)."""
    if not mask.any():
        return np.full(mask.shape, np.inf, dtype=np.float32)
    return ndimage.distance_transform_edt(~mask, sampling=(abs(yres), abs(xres))).astype(np.float32)
