"""Inference cut into blocks that run anywhere (a cluster's workers), with the same output as one
run: the probability raster pixel for pixel and the candidates outline for outline.

A block is a run of consecutive strips (tile rows) of the image; it owns the rows from its first
strip's origin to the next block's, and also runs the strip before its own (the tiles reaching
into its first rows), so every owned pixel is blended from the same tiles, added in the same
order, as in a whole run (:func:`~.inference._run` is the one loop both use). A block writes its
rows (percent, as the raster stores them; the above-threshold mask and its probabilities, as the
candidate builder reads them) to a file of its own, atomically; :func:`assemble` then streams the
blocks in order into one probability GeoTIFF and one :class:`~.candidates.CandidateBuilder`, fed
in exactly the chunks a whole run feeds it, so the candidates are identical by construction.
Blocks are cut across the full width: a strip's tiles go through the model together, as in a
whole run, so batches (and with them any GPU kernel choice) are the same too.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..cluster import file_key, maybe_die
from ..errors import RtsMapperError
from ..progress import Feedback
from .inference import InferConfig, load_engine, tile_origins

BLOCK_STRIPS = 8  # strips (tile rows) a block owns: ~1800 rows of 3 m pixels at the default tile


@dataclass(frozen=True)
class Block:
    index: int
    own_start: int  # the first row it owns (in the window)
    own_end: int  # one past its last owned row
    strips: tuple[int, ...]  # the strip origins it runs: those reaching into its rows


def plan_blocks(height: int, tile: int, overlap: int, strips_per_block: int = BLOCK_STRIPS) -> list[Block]:
    """The blocks of a window ``height`` rows high, on the whole run's own strip grid."""
    if strips_per_block < 1:
        raise RtsMapperError(f"a block holds at least one strip, not {strips_per_block}")
    rows = tile_origins(height, tile, tile - overlap)
    blocks = []
    for index, first in enumerate(range(0, len(rows), strips_per_block)):
        last = min(first + strips_per_block, len(rows))
        own_start, own_end = rows[first], rows[last] if last < len(rows) else height
        strips = tuple(o for o in rows if o < own_end and o + tile > own_start)
        blocks.append(Block(index, own_start, own_end, strips))
    return blocks


@dataclass(frozen=True)
class BlockRequest:
    """One block's work, in plain values (it travels to a worker; the image and the model are
    read there, from a path every worker sees)."""

    model_path: str
    image_path: str
    image_crs: str | None
    window: tuple[int, int, int, int]  # col_off, row_off, width, height in the image
    config: InferConfig
    block: Block
    out: str  # the block's file


class _Owned:
    """Stands in for the candidate builder in a block's run: keeps the rows the block owns, in
    the chunks the run flushes them in."""

    def __init__(self, block: Block) -> None:
        self.block = block
        self.chunks: list[tuple[int, np.ndarray, np.ndarray]] = []

    def add_rows(self, row_start: int, probability: np.ndarray, valid: np.ndarray) -> None:
        low = max(row_start, self.block.own_start)
        high = min(row_start + probability.shape[0], self.block.own_end)
        if high > low:
            part = slice(low - row_start, high - row_start)
            self.chunks.append((low, probability[part].copy(), valid[part].copy()))


class _Discard:
    def add(self, probability, valid) -> None:
        pass


_ENGINES: dict = {}  # per process: a worker loads each model once


def _engine_for(request: BlockRequest):
    model = Path(request.model_path)
    stat = model.stat()
    key = (
        str(model.resolve()),
        stat.st_mtime_ns,
        stat.st_size,
        json.dumps(asdict(request.config), sort_keys=True),
    )
    if key not in _ENGINES:
        _ENGINES.clear()
        _ENGINES[key] = load_engine(model, request.config)
    return _ENGINES[key]


def run_block(request: BlockRequest) -> dict:
    """Infer one block and write its file; returns its counters."""
    from rasterio.windows import Window

    from ..raster_io import atomic_output, gdal_env, open_raster
    from .inference import _Reader, _run, blend_weights, percent_of

    maybe_die(request.block.index)
    started = time.perf_counter()
    engine = _engine_for(request)
    block, config = request.block, request.config
    tile = engine.tile
    col_off, row_off, width, height = request.window
    window = Window(col_off, row_off, width, height)
    with gdal_env(), open_raster(request.image_path, request.image_crs) as dataset:
        cols = tile_origins(width, tile, tile - engine.overlap)
        reader = _Reader(dataset, window, list(block.strips), tile)
        owned = _Owned(block)
        counters = {"tiles": 0, "skipped": 0, "valid_pixels": 0}
        predictor = engine.predictor(config)
        reader.start()
        try:
            _run(
                reader,
                list(block.strips),
                cols,
                tile,
                width,
                height,
                blend_weights(tile, engine.overlap),
                predictor,
                owned,
                _Discard(),
                counters,
                Feedback(),
                count_from=block.own_start,
            )
        finally:
            reader.stop.set()
            reader.join(timeout=5)
    probability = np.concatenate([c[1] for c in owned.chunks])
    valid = np.concatenate([c[2] for c in owned.chunks])
    mask = (probability >= engine.threshold) & valid
    with atomic_output(request.out) as partial, open(partial, "wb") as handle:
        np.savez_compressed(
            handle,
            percent=percent_of(probability, valid),
            mask=np.packbits(mask),
            shape=np.array(mask.shape),
            values=probability[mask],
            chunk_starts=np.array([c[0] for c in owned.chunks]),
        )
    return {
        "tiles": counters["tiles"],
        "skipped": counters["skipped"],
        "valid_pixels": int(valid.sum()),
        "seconds": round(time.perf_counter() - started, 3),
        "forward_seconds": round(predictor.forward_seconds, 3),
        "device": predictor.device,
        "worker_pid": os.getpid(),
        "notes": list(engine.notes),  # how the worker ran the model (e.g. exported to ONNX)
    }


def read_block(path: str | os.PathLike) -> dict:
    """A block's file: percent rows, the mask, the probabilities under it, its chunk starts."""
    with np.load(path) as data:
        shape = tuple(int(n) for n in data["shape"])
        mask = np.unpackbits(data["mask"], count=shape[0] * shape[1]).reshape(shape).astype(bool)
        probability = np.zeros(shape, dtype=np.float32)
        probability[mask] = data["values"]
        return {
            "percent": data["percent"],
            "mask": mask,
            "probability": probability,
            "chunk_starts": [int(s) for s in data["chunk_starts"]],
        }


def run_key(request_base: dict, blocks: list[Block]) -> dict:
    """What shapes a run's output: the model and image files as they are, the window, the
    configuration, the cut."""
    key = {name: file_key(request_base[name]) for name in ("model_path", "image_path")}
    key["window"] = list(request_base["window"])
    key["config"] = asdict(request_base["config"])
    key["blocks"] = [[b.own_start, b.own_end] for b in blocks]
    return key
