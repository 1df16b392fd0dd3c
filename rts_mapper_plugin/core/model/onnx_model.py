"""ONNX segmentation models for inference: the ones RTS Mapper exports, and any other that follows
the Deepness plugin's metadata contract, run by onnxruntime (no torch needed: a field laptop can
map with a 20 MB runtime instead of the deep-learning stack).

A model's card comes from its metadata, read as Deepness reads them (each value JSON):
``model_type`` must be ``Segmentor``; ``class_names``; ``resolution`` (cm per pixel);
``tile_size``; ``tiles_overlap`` (percent of the tile); ``standardization_mean`` / ``_std``
(applied to values scaled to 0-1); ``seg_thresh``; ``seg_small_segment`` (pixels a side). A model
exported by RTS Mapper also carries its whole card (``rts_mapper_card``): its training history
and calibrated operating point come back with it. Outputs are probabilities, as Deepness expects:
one channel (a sigmoid) or one channel per class (a softmax, class 0 the background).

ONNX files are protocol buffers of tensors and operators: loading one runs no code from the file.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from .. import defaults
from ..cluster import process_threads
from ..errors import MissingDependencyError, RtsMapperError
from .model_file import CARD_KEY, ModelCard, is_onnx, read_card

RTS_WORDS = ("rts", "slump", "thaw")  # a class of a many-class model that is the one mapped here


def require_onnxruntime():
    from ..environment import import_module_safely

    try:
        return import_module_safely("onnxruntime")
    except ImportError as exc:
        from ..environment import install_command

        raise MissingDependencyError(
            f"running an ONNX model needs onnxruntime ({exc}); install with: "
            f"{install_command(['onnxruntime'])}"
        ) from exc


class OnnxModel:
    """An onnxruntime session over one ONNX segmentation model, with what is needed to feed it."""

    def __init__(self, path: str | os.PathLike, device: str = "cpu") -> None:
        ort = require_onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise RtsMapperError("no such model file", self.path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = process_threads()
        options.log_severity_level = 3  # errors only: no warnings on the console of the desktop
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise RtsMapperError(
                    "CUDA was asked for but this onnxruntime has no CUDA provider (install "
                    "onnxruntime-gpu, or choose auto or cpu)"
                )
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail / InvalidProtobuf / ... errors
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RtsMapperError(f"is not a readable ONNX model ({first[:200]})", self.path) from exc
        self.device = "cuda" if self.session.get_providers()[0].startswith("CUDA") else "cpu"
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or not outputs:
            raise RtsMapperError(
                f"has {len(inputs)} inputs and {len(outputs)} outputs; a segmentation model takes "
                "one image and gives at least one output",
                self.path,
            )
        self.input_name = inputs[0].name
        self.input_shape = list(inputs[0].shape)
        self.output_shape = list(outputs[0].shape)
        if len(self.input_shape) != 4 or self.input_shape[1] != 3:
            raise RtsMapperError(
                f"takes input of shape {self.input_shape}; RTS Mapper feeds RGB tiles "
                "(batch, 3, height, width)",
                self.path,
            )
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.card = card_from_metadata(self.metadata, self.path, self.fixed_size())
        self.channel = rts_channel(self.card.classes, self.output_shape, self.path)

    def fixed_size(self) -> int | None:
        """The tile size the graph is fixed to, if it is (square tiles)."""
        height, width = self.input_shape[2:]
        if isinstance(height, int) and isinstance(width, int) and height > 0:
            if height != width:
                raise RtsMapperError(
                    f"takes {height} x {width} tiles; RTS Mapper cuts square tiles", self.path
                )
            return height
        return None

    def fixed_batch(self) -> int | None:
        batch = self.input_shape[0]
        return batch if isinstance(batch, int) and batch > 0 else None

    def __call__(self, tiles: np.ndarray) -> np.ndarray:
        """(n, 3, h, w) float32, normalised -> (n, h, w) RTS probability."""
        output = self.session.run(None, {self.input_name: np.ascontiguousarray(tiles, dtype=np.float32)})[0]
        if output.ndim == 3:
            return output
        if output.ndim != 4:
            raise RtsMapperError(f"gave an output of shape {list(output.shape)}", self.path)
        return output[:, self.channel]


def card_from_metadata(metadata: dict[str, str], path: Path, fixed_size: int | None = None) -> ModelCard:
    """The model card of an ONNX model, from its Deepness metadata (and RTS Mapper's card, when
    it is one of ours): what predict_raster needs to cut tiles, normalise them and threshold."""

    def value(key: str, default=None):
        if key not in metadata:
            return default
        try:
            return json.loads(metadata[key])
        except json.JSONDecodeError as exc:
            raise RtsMapperError(
                f"has metadata {key!r} that is not JSON ({metadata[key][:60]!r})", path
            ) from exc

    model_type = value("model_type", "Segmentor")
    if model_type != "Segmentor":
        raise RtsMapperError(
            f"is a {model_type} model; RTS Mapper runs segmentation models (Segmentor)", path
        )
    if CARD_KEY in metadata:
        card = ModelCard.from_json(metadata[CARD_KEY], path)
    else:
        card = ModelCard(
            encoder="unknown",
            architecture="unknown",
            encoder_init="unknown (an ONNX model made outside RTS Mapper)",
            input_description="RGB tiles, 0-1, standardised with the model's metadata",
        )
    card = replace(card, versions={**card.versions, "format": "onnx"})
    names = value("class_names")
    if names is not None:
        try:
            ordered = [str(n) for _, n in sorted(dict(names).items(), key=lambda kv: int(kv[0]))]
        except (TypeError, ValueError) as exc:
            raise RtsMapperError("has class_names that are not {index: name}", path) from exc
        # one name: a sigmoid output (Deepness adds the background the same way)
        card.classes = ["background", *ordered] if len(ordered) == 1 else ordered
    resolution_cm = value("resolution")
    if isinstance(resolution_cm, (int, float)) and resolution_cm > 0:
        card.pixel_size_m = float(resolution_cm) / 100
    tile = value("tile_size", fixed_size)
    if isinstance(tile, int) and tile > 0:
        card.tile_size = tile
    if fixed_size is not None and card.tile_size != fixed_size:
        card.tile_size = fixed_size  # the graph decides
    overlap_percent = value("tiles_overlap")
    own_overlap = CARD_KEY in metadata and card.overlap < card.tile_size // 2  # in pixels: exact
    if not own_overlap:
        known = isinstance(overlap_percent, (int, float)) and 0 <= overlap_percent < 50
        card.overlap = (
            math.ceil(card.tile_size * overlap_percent / 100)
            if known
            else min(defaults.OVERLAP, card.tile_size // 4)
        )
    mean, std = value("standardization_mean", [0.0] * 3), value("standardization_std", [1.0] * 3)
    try:
        mean, std = [float(v) for v in mean], [float(v) for v in std]
    except (TypeError, ValueError) as exc:
        raise RtsMapperError("has standardization values that are not numbers", path) from exc
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise RtsMapperError("has standardization values that are not three numbers (std > 0)", path)
    # Deepness scales 0-255 to 0-1, then standardises: the card's (value * scale - mean) / std
    card.normalisation = {"scale": 1 / 255, "mean": mean, "std": std}
    threshold = value("seg_thresh")
    if isinstance(threshold, (int, float)) and 0 < threshold < 1 and CARD_KEY not in metadata:
        card.threshold = float(threshold)
    small = value("seg_small_segment")
    if isinstance(small, (int, float)) and small > 0 and CARD_KEY not in metadata:
        card.min_area_m2 = float(small) ** 2 * card.pixel_size_m**2
    card.check(path)
    return card


def rts_channel(classes: list[str], output_shape: list, path: Path) -> int:
    """Which output channel is the RTS probability: the only one, the one class beside the
    background, or the class whose name says RTS / slump / thaw."""
    if len(output_shape) == 3 or output_shape[1] in (1, "1") or not isinstance(output_shape[1], int):
        return 0
    channels = output_shape[1]
    if channels == 2:
        return 1
    named = [i for i, name in enumerate(classes[:channels]) if any(w in name.lower() for w in RTS_WORDS)]
    if len(named) == 1:
        return named[0]
    raise RtsMapperError(
        f"has {channels} classes ({', '.join(classes)}) and none (or several) of them named as RTS "
        f"({', '.join(RTS_WORDS)}): RTS Mapper maps one class",
        path,
    )


def read_model_card(path: str | os.PathLike) -> ModelCard:
    """The card of any model file inference takes: RTS Mapper's (.safetensors) or ONNX."""
    return OnnxModel(path).card if is_onnx(path) else read_card(path)
