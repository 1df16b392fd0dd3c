"""Imagery preparation cut into pieces that run on a Dask cluster's workers, with the same image
as one run, pixel for pixel.

The expensive part of preparing a year is reading it: every window of every scene and its
usable-data mask, warped onto the mosaic's grid where the scenes are in another CRS. A piece is a
band of consecutive window rows across the full width; a worker reads exactly the windows a
single run reads (same sizes, same offsets: a warp or a mask gives the same pixels for the same
window), stretches them with the one stretch the client computed over the whole mosaic, and
writes them into a GeoTIFF of its own, atomically. The client then copies the pieces, window by
window, into the output as a single run writes it, and makes it cloud-optimised (overviews).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from rasterio.transform import Affine
from rasterio.windows import Window

from ..cluster import Manifest, file_key, maybe_die, run_blocks, session
from ..progress import Feedback
from ..raster_io import GTIFF_PROFILE, atomic_output, block_windows, gdal_env, open_raster
from .products import Scene

PIECE_ROWS = 4  # window rows a piece owns: 4096 rows of the default 1024-pixel windows


@dataclass(frozen=True)
class PieceRequest:
    """One piece's work, in plain values (it travels to a worker, which reads the scenes from
    paths every worker sees)."""

    index: int
    scenes: tuple[Scene, ...]
    label: str
    stretch: object  # prepare.Stretch
    rows: tuple[int, int]  # the mosaic rows it owns: start, end
    window_size: int
    out: str  # the piece's GeoTIFF


def plan_pieces(height: int, window_size: int, rows_per_piece: int = PIECE_ROWS) -> list[tuple[int, int]]:
    """Row bands of ``rows_per_piece`` window rows each, on a single run's window grid."""
    step = window_size * max(1, rows_per_piece)
    return [(start, min(start + step, height)) for start in range(0, height, step)]


def run_piece(request: PieceRequest) -> dict:
    """Read, mask, mosaic and stretch one piece's windows into its file; returns its counters."""
    import rasterio

    from .mosaic import YearMosaic

    maybe_die(request.index)
    started = time.perf_counter()
    start, end = request.rows
    valid = 0
    with gdal_env(), YearMosaic(list(request.scenes), request.label) as mosaic:
        windows = [
            w
            for w in block_windows(mosaic.width, mosaic.height, request.window_size)
            if start <= w.row_off < end
        ]
        profile = {
            **GTIFF_PROFILE,
            "width": mosaic.width,
            "height": end - start,
            "count": 3,
            "dtype": "uint8",
            "nodata": 0,
            "crs": mosaic.crs,
            "transform": mosaic.transform * Affine.translation(0, start),
        }
        with atomic_output(request.out) as partial, rasterio.open(partial, "w", **profile) as dst:
            for window in windows:
                values, usable = mosaic.read(window)
                valid += int(usable.sum())
                dst.write(request.stretch.apply(values, usable), window=_shifted(window, -start))
    return {
        "valid_pixels": valid,
        "pixel_km2": abs(mosaic.transform.a * mosaic.transform.e) / 1e6,
        "seconds": round(time.perf_counter() - started, 3),
        "worker_pid": os.getpid(),
    }


def _shifted(window: Window, rows: int) -> Window:
    return Window(window.col_off, window.row_off + rows, window.width, window.height)


class Pieces:
    """The finished pieces of a mosaic, read back in the windows a single run writes (in order:
    one piece open at a time)."""

    def __init__(self, folder: Path, bands: list[tuple[int, int]]) -> None:
        self.folder, self.bands = folder, bands
        self._open: tuple[int, object] | None = None

    def path(self, index: int) -> Path:
        return self.folder / f"piece_{index:05d}.tif"

    def read(self, window: Window) -> np.ndarray:
        index = next(i for i, (start, end) in enumerate(self.bands) if start <= window.row_off < end)
        if self._open is None or self._open[0] != index:
            self.close()
            self._open = (index, open_raster(self.path(index)))
        return self._open[1].read(window=_shifted(window, -self.bands[index][0]))

    def close(self) -> None:
        if self._open is not None:
            self._open[1].close()
            self._open = None

    def __enter__(self) -> Pieces:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def prepare_pieces(
    scenes: Sequence[Scene],
    label: str | os.PathLike,
    stretch,
    size: tuple[int, int],
    window_size: int,
    out: Path,
    cluster: str,
    feedback: Feedback,
    client=None,
    announce=None,
    rows_per_piece: int = PIECE_ROWS,
) -> tuple[Pieces, str]:
    """Every piece of the mosaic (``size``: width, height) on ``cluster``, those a previous run of
    the same output finished kept (its manifest in ``OUT.blocks/``). Returns the pieces and a note
    on what ran."""
    width, height = size
    bands = plan_pieces(height, window_size, rows_per_piece)
    folder = Path(str(out) + ".blocks")
    pieces = Pieces(folder, bands)
    key = {
        "scenes": json.loads(json.dumps([asdict(s) for s in scenes], default=str)),
        "files": [file_key(s.source) for s in scenes] + [file_key(s.mask.path) for s in scenes if s.mask],
        "stretch": asdict(stretch),
        "grid": [width, height, window_size],
        "pieces": bands,
    }
    manifest = Manifest(folder, key)
    requests = [
        PieceRequest(i, tuple(scenes), str(label), stretch, band, window_size, str(pieces.path(i)))
        for i, band in enumerate(bands)
    ]
    missing = [r for r in requests if not manifest.finished(r.index, Path(r.out))]
    with session(cluster, client, bool(missing), announce, gpus=0) as client:
        if missing:
            folder.mkdir(parents=True, exist_ok=True)
            run_blocks(
                client,
                run_piece,
                missing,
                lambda r: r.index,
                manifest,
                len(bands),
                feedback,
                km2_of=lambda figures: figures["valid_pixels"] * figures["pixel_km2"],
                fraction=1.0,
            )
    note = f"{len(missing)} of {len(bands)} pieces prepared on the cluster now ({len(bands) - len(missing)} finished before)"
    return pieces, note
