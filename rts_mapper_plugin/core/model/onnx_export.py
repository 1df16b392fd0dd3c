"""A model as ONNX, for the tools outside RTS Mapper: the Deepness QGIS plugin, onnxruntime, GDAL-
based pipelines.

The graph takes what Deepness feeds a model: a batch of RGB tiles, channels first, values 0-1
(its ``normalize_values_to_01``); the model card's normalisation (ImageNet mean and std) is inside
the graph, so ``standardization_mean`` / ``standardization_std`` are the identity. It returns the
RTS probability, one channel (Deepness reads a single-channel output as a sigmoid and names the
classes ``background`` and the one given). The metadata are the keys Deepness's model loader
reads (``model_type``, ``class_names``, ``resolution`` in cm per pixel, ``tile_size``,
``tiles_overlap`` in percent of the tile, ``seg_thresh``, ``seg_small_segment`` in pixels), each
a JSON value as Deepness parses them, and the whole model card under ``rts_mapper_card``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from ..errors import RtsMapperError
from ..raster_io import atomic_output
from .model_file import ModelCard, load_model

ONNX_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "image", "rts_probability"


def deepness_metadata(card: ModelCard) -> dict[str, str]:
    """The ONNX metadata of a model, as Deepness's loader reads them (JSON values)."""
    pixel_area_m2 = card.pixel_size_m**2
    return {
        "model_type": json.dumps("Segmentor"),
        "class_names": json.dumps({"0": card.classes[-1]}),
        "resolution": json.dumps(round(card.pixel_size_m * 100, 3)),
        "tile_size": json.dumps(card.tile_size),
        "tiles_overlap": json.dumps(math.ceil(100 * card.overlap / card.tile_size)),
        "standardization_mean": json.dumps([0.0, 0.0, 0.0]),
        "standardization_std": json.dumps([1.0, 1.0, 1.0]),
        "seg_thresh": json.dumps(card.threshold),
        "seg_small_segment": json.dumps(max(1, round(math.sqrt(card.min_area_m2 / pixel_area_m2)))),
        "rts_mapper_card": card.to_json(),
    }


def export_onnx(model_path: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write the model at ``model_path`` as ONNX to ``out`` (checked by ``onnx.checker``)."""
    try:
        import onnx
    except ImportError as exc:
        raise RtsMapperError("exporting to ONNX needs the onnx package (python -m pip install onnx)") from exc
    import torch

    model, card = load_model(model_path, "cpu")
    graph = _ZeroToOneInput(model, card, torch)
    example = torch.rand(1, card.in_channels, card.tile_size, card.tile_size)
    out = Path(out)
    with atomic_output(out) as partial:
        with torch.no_grad():
            torch.onnx.export(
                graph,
                (example,),
                str(partial),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=ONNX_OPSET,
                dynamo=False,  # the TorchScript exporter: no onnxscript needed, a plain static graph
            )
        exported = onnx.load(str(partial))
        for key, value in deepness_metadata(card).items():
            entry = exported.metadata_props.add()
            entry.key, entry.value = key, value
        exported.doc_string = f"RTS Mapper {card.architecture} ({card.encoder}): {card.input_description}"
        try:
            onnx.checker.check_model(exported, full_check=True)
        except onnx.checker.ValidationError as exc:
            raise RtsMapperError(f"the exported graph is not valid ONNX ({exc})", out) from exc
        onnx.save(exported, str(partial))
    return out


def _ZeroToOneInput(model, card: ModelCard, torch):  # noqa: N802 (a module factory)
    """The model with the card's normalisation and the sigmoid inside: 0-1 RGB in, probability out."""
    norm = card.normalisation
    # the card normalises 0-255 values: value * scale, minus mean, over std; inputs here are 0-1
    factor = 255.0 * float(norm["scale"])
    mean = torch.tensor(norm["mean"], dtype=torch.float32).reshape(1, -1, 1, 1)
    std = torch.tensor(norm["std"], dtype=torch.float32).reshape(1, -1, 1, 1)

    class Graph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.register_buffer("mean", mean)
            self.register_buffer("std", std)

        def forward(self, image):
            return torch.sigmoid(self.model((image * factor - self.mean) / self.std))

    return Graph().eval()


def cache_folder() -> Path:
    """Where models exported for onnxruntime are kept between runs: the user's cache, or
    ``RTS_MAPPER_CACHE`` (the tests point it at a temporary folder)."""
    if os.environ.get("RTS_MAPPER_CACHE"):
        return Path(os.environ["RTS_MAPPER_CACHE"]) / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return Path(base) / "rts_mapper" / "onnx"


def cached_export(model_path: str | os.PathLike) -> Path:
    """The model as ONNX, exported once per model file version into :func:`cache_folder`."""
    import hashlib

    from ...__about__ import __version__

    path = Path(model_path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_mtime_ns}|{stat.st_size}|{ONNX_OPSET}|{__version__}"
    out = cache_folder() / f"{path.stem}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.onnx"
    if not out.is_file():
        export_onnx(path, out)
    return out
