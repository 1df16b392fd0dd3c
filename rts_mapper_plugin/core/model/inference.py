"""Tiled DeepLabv3+ inference over whole regions, streamed, in bounded memory.

The image (or an extent of it) is cut into tiles of the card's size with overlap, on one global
grid. A reader thread reads the next strip of tiles while the model works on the current one.
Predictions are blended across overlaps with smooth (raised-cosine) weights, rows are written out
as soon as no later tile touches them, and candidates are vectorised from those rows on the fly
(see :mod:`.candidates`). Memory depends on the tile size and the image width only. Fully
nodata tiles are skipped. A GPU out-of-memory halves the batch, then falls back to the CPU.

Output: a tiled, compressed probability GeoTIFF (percent, 0-100, nodata 255) with the input's
georeferencing, written to a partial file renamed only on success; and the candidates.
"""

from __future__ import annotations

import os
import queue
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rasterio.enums import MaskFlags
from rasterio.windows import Window, from_bounds

from ..defaults import BACKEND, BACKENDS, DEVICE, DEVICES, TTA_VIEWS
from ..errors import RtsMapperError
from ..progress import Feedback
from ..raster_io import (
    GTIFF_PROFILE,
    READ_ERRORS,
    atomic_output,
    check_writable,
    gdal_env,
    is_gdal_url,
    open_raster,
    pixel_area_m2,
    require_crs,
)
from ..vectors import FeatureSet, read_features
from .candidates import Candidate, CandidateBuilder, set_aside_known, write_candidates
from .model_file import (
    ModelCard,
    configure_threads,
    is_onnx,
    load_model,
    pick_device,
    read_card,
    require_torch,
)
from .onnx_model import OnnxModel

PROB_NODATA = 255
WRITE_ROWS = 256  # write the probability raster in whole 256-row blocks


@dataclass(frozen=True)
class InferConfig:
    """How to run a model over an image; carried unchanged from every face (CLI, Processing, the
    Inference dock, the iterative loop) to :func:`predict_raster`. ``None``: the model card's
    value (its calibrated threshold and minimum area, its tile size and overlap)."""

    device: str = DEVICE
    backend: str = BACKEND  # what runs a .safetensors model: see defaults.BACKENDS
    threshold: float | None = None
    min_area_m2: float | None = None
    tta: int = 1  # views averaged per tile (test-time ensemble), one of TTA_VIEWS
    batch_size: int | None = None  # tiles per forward pass; None: 1 on the CPU, 8 on a GPU
    tile_size: int | None = None
    overlap: int | None = None


@dataclass
class InferenceResult:
    candidates: list[Candidate]
    set_aside_known: int
    prob_path: Path | None
    tiles: int
    skipped_tiles: int
    megapixels: float
    area_km2: float
    seconds: float
    forward_seconds: float
    device: str
    batch_size: int
    card: ModelCard
    crs: str
    threshold: float  # the operating point used: the config's, else the card's
    min_area_m2: float
    notes: list[str] = field(default_factory=list)

    @property
    def km2_per_minute(self) -> float:
        return self.area_km2 / (self.seconds / 60) if self.seconds else float("nan")


def blend_weights(size: int, overlap: int) -> np.ndarray:
    """2-D tile weights: 1 in the middle, raised-cosine ramps over the overlap, never 0."""
    ramp = np.ones(size, dtype=np.float32)
    if overlap > 0:
        position = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        rise = 0.5 - 0.5 * np.cos(np.pi * position)
        ramp[:overlap] = rise
        ramp[-overlap:] = np.minimum(ramp[-overlap:], rise[::-1])
    ramp = np.maximum(ramp, 1e-3)
    return np.outer(ramp, ramp)


def tile_origins(length: int, tile: int, stride: int) -> list[int]:
    """Tile starts covering [0, length): on the stride grid, the last one flush with the end."""
    if length <= tile:
        return [0]
    origins = list(range(0, length - tile, stride))
    origins.append(length - tile)
    return sorted(set(origins))


class _Reader(threading.Thread):
    """Reads strips of rows ahead of the model (I/O overlapped with compute).

    Each strip re-uses the rows it shares with the previous one, so every row is decoded once.
    Validity comes from the pixels when the image's mask is a nodata value (prepared images: 0);
    GDAL's mask is read only for alpha bands and internal masks.
    """

    def __init__(self, dataset, window: Window, rows: list[int], tile: int) -> None:
        super().__init__(daemon=True, name="rts-inference-reader")
        self.dataset, self.window, self.rows, self.tile = dataset, window, rows, tile
        self.queue: queue.Queue = queue.Queue(maxsize=2)
        self.stop = threading.Event()
        flags = [set(dataset.mask_flag_enums[i]) for i in range(3)]
        self.needs_gdal_mask = any(
            MaskFlags.per_dataset in f or MaskFlags.alpha in f for f in flags
        ) or not all(MaskFlags.nodata in f or MaskFlags.all_valid in f for f in flags)
        self.nodata = [dataset.nodatavals[i] for i in range(3)]

    def _read(self, row: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        rows = Window(self.window.col_off, self.window.row_off + row, self.window.width, height)
        rgb = self.dataset.read([1, 2, 3], window=rows, boundless=True, fill_value=0)
        if self.needs_gdal_mask:
            valid = self.dataset.dataset_mask(window=rows, boundless=True) > 0
        else:
            valid = np.zeros(rgb.shape[1:], dtype=bool)
            for band, nodata in zip(rgb, self.nodata):
                valid |= band != (0 if nodata is None else nodata)
        return rgb, valid & np.any(rgb > 0, axis=0)

    def run(self) -> None:
        try:
            previous = None  # (row, rgb, valid) of the last strip
            for row in self.rows:
                if previous is not None and row < previous[0] + self.tile:
                    shared = previous[0] + self.tile - row
                    new_rgb, new_valid = self._read(row + shared, self.tile - shared)
                    rgb = np.concatenate([previous[1][:, -shared:], new_rgb], axis=1)
                    valid = np.concatenate([previous[2][-shared:], new_valid], axis=0)
                else:
                    rgb, valid = self._read(row, self.tile)
                previous = (row, rgb, valid)
                if not self._put((row, rgb, valid)):
                    return
        except READ_ERRORS as exc:
            self._put(
                RtsMapperError(
                    f"cannot be read completely: truncated or corrupt? ({str(exc).splitlines()[0]})",
                    self.dataset.name,
                )
            )
        except Exception as exc:  # handed to the main thread, which raises it
            self._put(exc)

    def _put(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False


class _OptimisedModels:
    """The last few traced and frozen models, by model file, device and tile size. Tracing again
    for every run kept ~40-65 MB each time (TorchScript does not free traced graphs): in a QGIS
    session every inference run grew the desktop's memory. A run with the same model reuses it."""

    def __init__(self, size: int = 2) -> None:
        self.size, self.items, self.lock = size, {}, threading.Lock()

    def get(self, key):
        with self.lock:
            return self.items.get(key)

    def put(self, key, model) -> None:
        with self.lock:
            self.items.pop(key, None)
            self.items[key] = model
            while len(self.items) > self.size:
                self.items.pop(next(iter(self.items)))


_OPTIMISED = _OptimisedModels()


def _optimised_key(path, device: str, tile: int) -> tuple:
    stat = Path(path).stat()
    return (str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size, device, tile)


def optimise_for_inference(model, device: str, tile: int):
    """The model moved to ``device`` and, for segmentation-models-pytorch models, traced and
    frozen with BatchNorm folded into the convolutions (1.4x faster on this CPU, same output to
    1e-5). Anything that cannot be traced runs as it is. Already optimised models pass through."""
    torch, smp = require_torch()
    if isinstance(model, torch.jit.ScriptModule):
        return model
    model = model.eval().to(device)
    if device == "cpu":
        model = model.to(memory_format=torch.channels_last)
    if not isinstance(model, smp.base.SegmentationModel):
        return model
    example = torch.zeros(1, 3, tile, tile, device=device)
    if device == "cpu":
        example = example.contiguous(memory_format=torch.channels_last)
    try:
        # TorchScript is deprecated in favour of torch.compile, which needs a C++ toolchain at run
        # time (not on field laptops); if a future torch drops it, eager mode takes over below.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model, example)))
    except Exception:  # an exotic encoder, or no TorchScript: eager mode is slower but correct
        return model


class _Predictor:
    """Runs batches through the model; on out-of-memory halves the batch, then moves to the CPU."""

    def __init__(
        self, model, device: str, batch_size: int, torch, tile: int, card: ModelCard, tta: int = 1
    ) -> None:
        self.original, self.device, self.batch_size, self.torch = model, device, max(1, batch_size), torch
        self.tile = tile
        self.views = tta_views(tta)
        # normalisation as one multiply-add per channel, done by torch on the uint8 tiles
        norm = card.normalisation
        std = np.asarray(norm["std"], dtype=np.float32)
        self.scale = torch.from_numpy(np.float32(norm["scale"]) / std).reshape(1, 3, 1, 1)
        self.offset = torch.from_numpy(-np.asarray(norm["mean"], dtype=np.float32) / std).reshape(1, 3, 1, 1)
        self.forward_seconds = 0.0
        self.notes: list[str] = []
        self._prepare()

    def _prepare(self) -> None:
        self.model = optimise_for_inference(self.original, self.device, self.tile)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """(n, 3, tile, tile) uint8 tiles -> (n, tile, tile) probabilities."""
        outputs, start = [], 0
        while start < len(batch):
            chunk = batch[start : start + self.batch_size]
            try:
                outputs.append(self._forward(chunk))
                start += len(chunk)
            except (RuntimeError, MemoryError) as exc:
                if not _is_out_of_memory(exc):
                    raise
                self._shrink(exc)
        return np.concatenate(outputs)

    def _forward(self, chunk: np.ndarray) -> np.ndarray:
        torch = self.torch
        started = time.perf_counter()
        with torch.inference_mode():
            memory_format = torch.channels_last if self.device == "cpu" else torch.contiguous_format
            tensor = (
                torch.from_numpy(chunk).to(self.device).to(dtype=torch.float32, memory_format=memory_format)
            )
            tensor = tensor * self.scale.to(self.device) + self.offset.to(self.device)
            total = None
            for view, back in self.views:
                seen = view(tensor).contiguous(memory_format=memory_format)
                one = back(torch.sigmoid(self.model(seen)[:, 0].float()))
                total = one if total is None else total + one
            probability = (total / len(self.views)).cpu().numpy()
        self.forward_seconds += time.perf_counter() - started
        return probability

    def _shrink(self, exc: BaseException) -> None:
        if self.device.startswith("cuda"):
            self.torch.cuda.empty_cache()
        if self.batch_size > 1:
            self.batch_size //= 2
            self.notes.append(f"out of memory: batch size reduced to {self.batch_size}")
        elif self.device.startswith("cuda"):
            self.device = "cpu"
            if isinstance(self.original, self.torch.jit.ScriptModule):
                self.original = self.original.to("cpu")
            self._prepare()
            self.notes.append("out of GPU memory even with one tile per batch: continued on the CPU")
        else:
            raise RtsMapperError(
                "not enough memory for even one tile: use a smaller tile size or close other programs"
            ) from exc


class _OnnxPredictor:
    """The inference loop's predictor for an ONNX model: uint8 tiles in, probabilities out, with
    the same test-time ensemble as the torch predictor (numpy flips and turns)."""

    def __init__(self, model: OnnxModel, batch_size: int, card: ModelCard, tta: int = 1) -> None:
        self.model, self.device = model, f"{model.device} (onnxruntime)"  # as runs record it
        self.batch_size = model.fixed_batch() or max(1, batch_size)
        self.views = tta_views(tta, numpy=True)
        norm = card.normalisation
        std = np.asarray(norm["std"], dtype=np.float32)
        self.scale = (np.float32(norm["scale"]) / std).reshape(1, 3, 1, 1)
        self.offset = (-np.asarray(norm["mean"], dtype=np.float32) / std).reshape(1, 3, 1, 1)
        self.forward_seconds = 0.0
        self.notes: list[str] = ["ONNX model run by onnxruntime"]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        outputs = []
        for start in range(0, len(batch), self.batch_size):
            chunk = batch[start : start + self.batch_size].astype(np.float32) * self.scale + self.offset
            pad = self.batch_size - len(chunk) if self.model.fixed_batch() else 0
            if pad:  # a graph fixed to a batch size: fill the last batch, drop the extra outputs
                chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), np.float32)])
            total = None
            for view, back in self.views:
                one = back(self.model(view(chunk)))
                total = one if total is None else total + one
            probability = total / len(self.views)
            outputs.append(probability[: len(probability) - pad])
        self.forward_seconds += time.perf_counter() - started
        return np.concatenate(outputs).astype(np.float32, copy=False)


def tta_views(count: int, numpy: bool = False) -> list[tuple]:
    """The first ``count`` of the eight flips/rotations of a square tile, each with its inverse
    (applied to the (n, h, w) output): identity, flips, transpose, quarter turns. On torch
    tensors, or on numpy arrays (``numpy``: the ONNX predictor)."""
    if numpy:
        flip, turn, swap = np.flip, np.rot90, np.swapaxes
    else:
        torch, _ = require_torch()
        flip, turn, swap = torch.flip, torch.rot90, torch.transpose
    d = (-2, -1)
    views = [
        (lambda x: x, lambda y: y),
        (lambda x: flip(x, (-1,)), lambda y: flip(y, (-1,))),
        (lambda x: flip(x, (-2,)), lambda y: flip(y, (-2,))),
        (lambda x: swap(x, -2, -1), lambda y: swap(y, -2, -1)),
        (lambda x: flip(x, d), lambda y: flip(y, d)),
        (lambda x: turn(x, 1, d), lambda y: turn(y, -1, d)),
        (lambda x: turn(x, -1, d), lambda y: turn(y, 1, d)),
        (lambda x: flip(swap(x, -2, -1), d), lambda y: swap(flip(y, d), -2, -1)),
    ]
    return views[:count]


def _is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or "out of memory" in str(exc).lower()


@dataclass
class Engine:
    """A model ready to run with a configuration's tiles and threshold (what a run and each of
    a cluster's workers set up once)."""

    model: object
    card: ModelCard
    tile: int
    overlap: int
    threshold: float
    min_area_m2: float
    device: str | None = None  # torch's; None for an ONNX model
    cache_key: tuple | None = None
    notes: list[str] = field(default_factory=list)

    def predictor(self, config: InferConfig):
        if isinstance(self.model, OnnxModel):
            return _OnnxPredictor(self.model, config.batch_size or 1, self.card, config.tta)
        batch_size = config.batch_size or (1 if self.device == "cpu" else 8)
        predictor = _Predictor(
            self.model, self.device, batch_size, require_torch()[0], self.tile, self.card, config.tta
        )
        if self.cache_key is not None:
            _OPTIMISED.put(self.cache_key, predictor.model)
        return predictor


def load_engine(
    model_path, config: InferConfig, model=None, card: ModelCard | None = None, weights: bool = True
) -> Engine:
    """The model of ``model_path`` (ONNX in onnxruntime, or .safetensors in torch or exported to
    ONNX: see :data:`~..defaults.BACKENDS`) with the configuration's tile, overlap, threshold
    and minimum area checked. ``weights=False``: a .safetensors model's card and the
    configuration are checked, its weights are not loaded (a cluster's client, whose workers load
    them: no torch and no model in the client's memory)."""
    tta = config.tta
    backend_notes: list[str] = []
    device = cache_key = None
    if model is None and is_onnx(model_path):
        model = OnnxModel(model_path, _onnx_device(config.device))
    elif model is None and weights:
        exported = _onnx_for(model_path, config, backend_notes)
        if exported is not None:
            model = OnnxModel(exported, _onnx_device(config.device))
    if isinstance(model, OnnxModel):
        card = model.card
        fixed = model.fixed_size()
        tile = int(config.tile_size or card.tile_size)
        if fixed is not None and tile != fixed:
            raise RtsMapperError(f"this ONNX model takes {fixed}-pixel tiles only, not {tile}", model.path)
    else:
        if model is None:
            card = read_card(model_path)
        tile = int(config.tile_size or card.tile_size)
        if weights:
            device = pick_device(config.device)
            if model is None:
                cache_key = _optimised_key(model_path, device, tile)
                model = _OPTIMISED.get(cache_key)
                if model is None:
                    model = load_model(model_path)[0]
            configure_threads()
        if tile % 32:
            raise RtsMapperError(f"tile size {tile} must be a multiple of 32 (DeepLabv3+)")
    overlap = int(card.overlap if config.overlap is None else config.overlap)
    if tile < 64 or not 0 <= overlap < tile // 2:
        raise RtsMapperError(f"tile size {tile} must be >= 64 and overlap {overlap} below half of it")
    threshold = card.threshold if config.threshold is None else float(config.threshold)
    min_area_m2 = card.min_area_m2 if config.min_area_m2 is None else float(config.min_area_m2)
    if tta not in TTA_VIEWS:
        raise RtsMapperError(
            f"the test-time ensemble takes {', '.join(map(str, TTA_VIEWS))} views, not {tta}"
        )
    return Engine(model, card, tile, overlap, threshold, min_area_m2, device, cache_key, backend_notes)


def predict_raster(
    model_path: str | os.PathLike,
    image_path: str | os.PathLike,
    prob_out: str | os.PathLike | None = None,
    config: InferConfig | None = None,
    extent: tuple[float, float, float, float] | None = None,
    known: str | os.PathLike | FeatureSet | None = None,
    feedback: Feedback | None = None,
    model=None,
    card: ModelCard | None = None,
    image_crs: str | None = None,
) -> InferenceResult:
    """Infer RTS probability over ``image_path`` (or ``extent`` of it, in the image's CRS).

    Args:
        model_path: the model file: safetensors + card, or ONNX with Deepness metadata (run by
            onnxruntime, without torch).
        image_path: an 8-bit RGB image made by ``prepare``.
        prob_out: where to write the probability GeoTIFF (None: do not keep it).
        config: device, threshold, minimum area, test-time ensemble, batch and tile sizes
            (:class:`InferConfig`). A batch that runs out of GPU memory is halved automatically;
            the ensemble's N views take N times the model time.
        extent: (minx, miny, maxx, maxy) to infer over, in the image CRS.
        known: confirmed RTS polygons: candidates that touch them are set aside.
        model, card: an already loaded model (the benchmarks reuse one).
        image_crs: the CRS to assume when the image file has none (its QGIS layer's).

    Raises:
        RtsMapperError: bad model or image, extent outside the image, unwritable output.
        Cancelled: the user cancelled; nothing is left behind.
    """
    feedback = feedback or Feedback()
    started = time.perf_counter()
    image_path = image_path if is_gdal_url(image_path) else Path(image_path)
    config = config or InferConfig()
    engine = load_engine(model_path, config, model, card)
    card, tile, overlap, threshold, tta = (
        engine.card,
        engine.tile,
        engine.overlap,
        engine.threshold,
        config.tta,
    )
    min_area_m2, backend_notes = engine.min_area_m2, engine.notes
    known_features = (
        read_features(known, polygons_only=True) if isinstance(known, (str, os.PathLike)) else known
    )

    with gdal_env(), open_raster(image_path, image_crs) as dataset:
        _check_image(dataset, image_path)
        window = _window_for(dataset, extent, image_path)
        width, height = int(window.width), int(window.height)
        window_transform = dataset.window_transform(window)
        stride = tile - overlap
        rows, cols = tile_origins(height, tile, stride), tile_origins(width, tile, stride)
        weights = blend_weights(tile, overlap)
        predictor = engine.predictor(config)
        builder = CandidateBuilder(window_transform, dataset.crs, threshold)
        reader = _Reader(dataset, window, rows, tile)
        counters = {"tiles": 0, "skipped": 0, "valid_pixels": 0}
        output = atomic_output(prob_out) if prob_out is not None else _NoOutput()
        try:
            with output as partial:
                writer = _ProbabilityWriter(partial, width, height, dataset.crs, window_transform)
                reader.start()
                _run(
                    reader,
                    rows,
                    cols,
                    tile,
                    width,
                    height,
                    weights,
                    predictor,
                    builder,
                    writer,
                    counters,
                    feedback,
                )
                writer.close()
        finally:
            reader.stop.set()
            if reader.ident is not None:  # started
                reader.join(timeout=5)
        pixel_area = pixel_area_m2(dataset)
        crs = dataset.crs
    candidates = builder.finish(min_area_m2)
    candidates, set_aside = set_aside_known(candidates, known_features, crs)
    feedback.step(1.0)
    return InferenceResult(
        candidates=candidates,
        set_aside_known=set_aside,
        prob_path=Path(prob_out) if prob_out is not None else None,
        tiles=counters["tiles"],
        skipped_tiles=counters["skipped"],
        megapixels=width * height / 1e6,
        area_km2=counters["valid_pixels"] * pixel_area / 1e6,
        seconds=time.perf_counter() - started,
        forward_seconds=predictor.forward_seconds,
        device=predictor.device,
        batch_size=predictor.batch_size,
        card=card,
        crs=crs.to_string(),
        threshold=threshold,
        min_area_m2=min_area_m2,
        notes=backend_notes
        + predictor.notes
        + ([f"test-time ensemble of {tta} views ({tta}x the model time)"] if tta > 1 else []),
    )


def infer_to_file(
    model_path: str | os.PathLike,
    image_path: str | os.PathLike,
    out: str | os.PathLike,
    config: InferConfig | None = None,
    prob_out: str | os.PathLike | None = None,
    extent: tuple[float, float, float, float] | None = None,
    known: str | os.PathLike | FeatureSet | None = None,
    feedback: Feedback | None = None,
    year: int | None = None,
    iteration: int | None = None,
    predict=None,
) -> InferenceResult:
    """:func:`predict_raster`, then the candidates into the file ``out`` (GeoPackage, GeoJSON or
    shapefile), written atomically. The output folder is checked before the long work; if the
    candidates cannot be written, the probability raster is removed too (nothing half done is
    left). ``year`` and ``iteration`` are recorded on each candidate. ``predict``: what computes
    the result, with :func:`predict_raster`'s arguments (a Dask cluster's:
    :func:`.distributed.on_cluster`)."""
    from rasterio.crs import CRS

    check_writable(out)
    result = (predict or predict_raster)(
        model_path, image_path, prob_out, config, extent=extent, known=known, feedback=feedback
    )
    for candidate in result.candidates:
        candidate.year, candidate.iteration = year, iteration
    try:
        write_candidates(out, result.candidates, CRS.from_user_input(result.crs))
    except BaseException:
        if prob_out is not None:
            Path(prob_out).unlink(missing_ok=True)
        raise
    return result


def _onnx_for(model_path: str | os.PathLike, config: InferConfig, notes: list[str]) -> Path | None:
    """The ONNX export of a .safetensors model when onnxruntime is to run it (``config.backend``:
    "onnxruntime", or "auto" on the CPU where onnx and onnxruntime are installed and the tile is
    the model's own); None when torch runs it."""
    from ..environment import missing_packages

    backend = (config.backend or BACKEND).lower()
    if backend not in BACKENDS:
        raise RtsMapperError(f"unknown backend {backend!r} ({', '.join(BACKENDS)})")
    if backend == "torch":
        return None
    card = read_card(model_path)
    own_tile = config.tile_size in (None, card.tile_size)
    missing = missing_packages({"onnx": "onnx", "onnxruntime": "onnxruntime"})
    if backend == "auto":
        if missing or not own_tile or missing_packages({"torch": "torch"}):
            return None
        if _onnx_device(config.device) != "cpu" or pick_device(config.device) != "cpu":
            return None  # a GPU: torch's batches there are measured, onnxruntime's are not
    elif missing:
        raise RtsMapperError(
            f"the onnxruntime backend needs {', '.join(missing)} (python -m pip install {' '.join(missing)})"
        )
    elif not own_tile:
        raise RtsMapperError(
            f"the onnxruntime backend runs the model's own {card.tile_size}-pixel tiles, not {config.tile_size}"
        )
    from .onnx_export import cached_export

    try:
        return cached_export(model_path)
    except RtsMapperError as exc:
        if backend == "onnxruntime":
            raise
        notes.append(f"PyTorch ran the model: its ONNX export for onnxruntime failed ({exc})")
        return None  # auto: a cache that cannot be written (a full or read-only home) costs speed only


def _onnx_device(choice: str) -> str:
    """The device for onnxruntime: "auto" takes CUDA when this onnxruntime has it."""
    choice = (choice or DEVICE).lower()
    if choice == "auto":
        from .onnx_model import require_onnxruntime

        return "cuda" if "CUDAExecutionProvider" in require_onnxruntime().get_available_providers() else "cpu"
    if choice not in DEVICES and not choice.startswith("cuda"):
        raise RtsMapperError(f"unknown device {choice!r} ({', '.join(DEVICES)})")
    return choice


def _check_image(dataset, path: Path) -> None:
    require_crs(dataset, path)
    if dataset.count != 3 or dataset.dtypes[0] != "uint8":
        raise RtsMapperError(
            f"has {dataset.count} band(s) of {dataset.dtypes[0]}; the model takes the 8-bit RGB made by "
            "`prepare` (python -m rts_mapper_plugin prepare, or RTS Mapper › Prepare imagery…)",
            path,
        )


def _window_for(dataset, extent, path: Path) -> Window:
    full = Window(0, 0, dataset.width, dataset.height)
    if extent is None:
        return full
    minx, miny, maxx, maxy = extent
    if not (minx < maxx and miny < maxy):
        raise RtsMapperError(f"the extent {extent} is empty")
    window = from_bounds(minx, miny, maxx, maxy, dataset.transform).round_offsets().round_lengths()
    try:
        window = window.intersection(full)
    except Exception as exc:  # rasterio raises WindowError when they do not intersect
        raise RtsMapperError("the extent lies outside the image", path) from exc
    if window.width < 1 or window.height < 1:
        raise RtsMapperError("the extent lies outside the image", path)
    return Window(int(window.col_off), int(window.row_off), int(window.width), int(window.height))


class _NoOutput:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def percent_of(probability: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The probability as the raster stores it: whole percent, :data:`PROB_NODATA` where invalid."""
    return np.where(valid, np.rint(probability * 100), PROB_NODATA).astype(np.uint8)


class _ProbabilityWriter:
    """Writes finished rows in whole 256-row blocks (compressed tiles are written once)."""

    def __init__(self, path: Path | None, width: int, height: int, crs, transform) -> None:
        import rasterio

        profile = {
            **GTIFF_PROFILE,
            "width": width,
            "height": height,
            "count": 1,
            "dtype": "uint8",
            "nodata": PROB_NODATA,
            "crs": crs,
            "transform": transform,
            "zlevel": 1,  # a smooth 8-bit surface: level 1 is nearly as small and several times faster
        }
        self.dataset = rasterio.open(path, "w", **profile) if path is not None else None
        if self.dataset is not None:
            self.dataset.set_band_description(1, "RTS probability (%)")
            self.dataset.update_tags(1, UNITS="percent", SCALE="0-100")
        self.pending: list[np.ndarray] = []
        self.pending_rows = 0
        self.next_row = 0

    def add(self, probability: np.ndarray, valid: np.ndarray) -> None:
        if self.dataset is None:
            return
        self.add_percent(percent_of(probability, valid))

    def add_percent(self, percent: np.ndarray) -> None:
        """Rows already in percent (a cluster's block)."""
        self.pending.append(percent)
        self.pending_rows += percent.shape[0]
        if self.pending_rows >= WRITE_ROWS:
            self._flush(whole_blocks=True)

    def _flush(self, whole_blocks: bool) -> None:
        block = np.concatenate(self.pending) if len(self.pending) > 1 else self.pending[0]
        rows = (block.shape[0] // WRITE_ROWS) * WRITE_ROWS if whole_blocks else block.shape[0]
        if rows:
            self.dataset.write(block[:rows], 1, window=Window(0, self.next_row, block.shape[1], rows))
            self.next_row += rows
        rest = block[rows:]
        self.pending = [rest] if rest.shape[0] else []
        self.pending_rows = rest.shape[0]

    def close(self) -> None:
        if self.dataset is None:
            return
        if self.pending_rows:
            self._flush(whole_blocks=False)
        self.dataset.close()
        from ..raster_io import cloud_optimize

        cloud_optimize(self.dataset.name, "average", level=1)


def _run(
    reader,
    rows,
    cols,
    tile,
    width,
    height,
    weights,
    predictor,
    builder,
    writer,
    counters,
    feedback,
    count_from: int = 0,
) -> None:
    """Main loop: predict each strip, blend into a rolling buffer, flush finished rows.

    ``rows`` may be a run of the window's strips (a cluster's block and the strip before it):
    the rows from the first strip on come out as in a whole run, each from the same tiles added
    in the same order; tiles are counted from the strip at ``count_from`` on."""
    accumulated = np.zeros((tile, width), dtype=np.float32)
    weight_sum = np.zeros((tile, width), dtype=np.float32)
    valid_buffer = np.zeros((tile, width), dtype=bool)
    buffer_top = rows[0]  # image row (within the window) of buffer row 0
    for strip_index, expected_row in enumerate(rows):
        item = reader.queue.get()
        if isinstance(item, BaseException):
            raise item
        row, rgb, valid = item
        assert row == expected_row
        feedback.check()
        shift = row - buffer_top
        if shift:  # move the buffer down to start at this strip
            _flush(
                accumulated[:shift],
                weight_sum[:shift],
                valid_buffer[:shift],
                buffer_top,
                builder,
                writer,
                counters,
            )
            for array in (accumulated, weight_sum, valid_buffer):
                array[:-shift] = array[shift:]
                array[-shift:] = 0
            buffer_top = row
        rows_here = min(tile, height - row)
        valid_buffer[:rows_here] |= valid[:rows_here, :width]
        wanted = [c for c in cols if valid[:, c : c + tile].any()]
        if row >= count_from:
            counters["tiles"] += len(cols)
            counters["skipped"] += len(cols) - len(wanted)
        if wanted:
            batch = np.stack([_tile(rgb, c, tile) for c in wanted])
            probabilities = predictor(batch)
            for col, probability in zip(wanted, probabilities):
                span = min(tile, width - col)
                accumulated[:, col : col + span] += (probability * weights)[:, :span]
                weight_sum[:, col : col + span] += weights[:, :span]
        feedback.step(0.97 * (strip_index + 1) / len(rows))
    last_rows = height - buffer_top
    _flush(
        accumulated[:last_rows],
        weight_sum[:last_rows],
        valid_buffer[:last_rows],
        buffer_top,
        builder,
        writer,
        counters,
    )


def _tile(rgb: np.ndarray, col: int, tile: int) -> np.ndarray:
    piece = rgb[:, :, col : col + tile]
    if piece.shape[2] < tile:  # the image is narrower than a tile: pad with nodata
        piece = np.pad(piece, ((0, 0), (0, 0), (0, tile - piece.shape[2])))
    return piece


def _flush(accumulated, weight_sum, valid, row_start, builder, writer, counters) -> None:
    if not len(accumulated):
        return
    covered = weight_sum > 0
    probability = np.divide(accumulated, weight_sum, out=np.zeros_like(accumulated), where=covered)
    valid = valid & covered
    counters["valid_pixels"] += int(valid.sum())
    builder.add_rows(row_start, probability, valid)
    writer.add(probability, valid)
