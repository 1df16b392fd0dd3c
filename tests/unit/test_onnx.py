"""A model exported as ONNX, read the way the Deepness QGIS plugin reads it, and run by
onnxruntime: the same probabilities as the model in torch, on tiles of a prepared image."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from rts_mapper_plugin.__main__ import main
from rts_mapper_plugin.core.errors import RtsMapperError
from rts_mapper_plugin.core.model.model_file import load_model
from rts_mapper_plugin.core.model.onnx_export import deepness_metadata
from tests.data.fixtures import trained_model

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


class DeepnessSegmentor:
    """Deepness's contract for an ONNX segmentation model (its ModelBase and Segmentor, rewritten
    from their code, github.com/PUTvision/qgis-plugin-deepness, src/deepness/processing/models):
    one input; metadata as JSON values; tiles as NHWC uint8 RGB -> channels limited to the input's,
    / 255, standardised with the metadata's mean and std, NCHW; a one-channel output is a sigmoid
    and its classes are ``background`` and the one named."""

    def __init__(self, path) -> None:
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        inputs = self.session.get_inputs()
        if len(inputs) > 1:
            raise ValueError("ONNX model: unsupported number of inputs")
        self.input = inputs[0]
        self.meta = self.session.get_modelmeta().custom_metadata_map
        self.model_type = json.loads(self.meta["model_type"])
        mean = [float(v) for v in json.loads(self.meta["standardization_mean"])]
        std = [float(v) for v in json.loads(self.meta["standardization_std"])]
        self.mean = np.array(mean, np.float32).reshape(1, 1, 1, -1)
        self.std = np.array(std, np.float32).reshape(1, 1, 1, -1)
        class_names = json.loads(self.meta["class_names"])
        names = [name for _, name in sorted(class_names.items(), key=lambda kv: int(kv[0]))]
        if [int(k) for k in sorted(class_names, key=int)] != list(range(len(names))):
            raise ValueError("Class names in the model metadata are not consecutive")
        output = self.session.get_outputs()[0]
        self.sigmoid = len(output.shape) == 3 or output.shape[-3] == 1
        self.class_names = ["background", names[0]] if len(names) == 1 and self.sigmoid else names
        self.resolution_cm = float(json.loads(self.meta["resolution"]))
        self.tile_size = int(json.loads(self.meta["tile_size"]))
        self.tiles_overlap = int(json.loads(self.meta["tiles_overlap"]))
        self.threshold = float(json.loads(self.meta["seg_thresh"]))
        self.small_segment = int(json.loads(self.meta["seg_small_segment"]))
        batch = self.input.shape[0]
        self.batch_size = None if isinstance(batch, str) else batch

    def process(self, tiles_nhwc: np.ndarray) -> np.ndarray:
        tiles = tiles_nhwc[..., : self.input.shape[-3]]
        tiles = np.float32(tiles * 1.0 / 255.0)
        tiles = (tiles - self.mean) / self.std
        tiles = np.transpose(tiles, (0, 3, 1, 2))
        return self.session.run(None, {self.input.name: tiles})[0]


def test_an_exported_model_reads_and_runs_as_deepness_runs_it(tmp_path):
    model_path = trained_model()
    out = tmp_path / "rts.onnx"
    assert main(["export-onnx", str(model_path), str(out)]) == 0
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)

    deepness = DeepnessSegmentor(out)
    model, card = load_model(model_path, "cpu")
    assert deepness.model_type == "Segmentor" and deepness.class_names == ["background", "rts"]
    assert deepness.batch_size is None, "any batch size"
    assert list(deepness.input.shape[1:]) == [3, card.tile_size, card.tile_size]
    assert (deepness.tile_size, deepness.threshold) == (card.tile_size, card.threshold)
    assert deepness.resolution_cm == pytest.approx(card.pixel_size_m * 100)
    assert deepness.tiles_overlap * card.tile_size / 100 >= card.overlap, "at least the card's overlap"
    assert (
        deepness.small_segment >= 1
        and json.loads(deepness.meta["rts_mapper_card"])["encoder"] == card.encoder
    )

    # the same tiles of the prepared image through torch (the card's normalisation) and ONNX
    import torch

    size = card.tile_size
    with rasterio.open(model_path.parent / "2019.tif") as image:
        tiles = np.stack(
            [image.read(window=Window(col, row, size, size)) for row, col in ((0, 0), (size // 2, size // 3))]
        )  # (n, 3, h, w) uint8
    norm = card.normalisation
    mean = torch.tensor(norm["mean"]).reshape(1, 3, 1, 1)
    std = torch.tensor(norm["std"]).reshape(1, 3, 1, 1)
    with torch.no_grad():
        expected = torch.sigmoid(
            model((torch.from_numpy(tiles).float() * norm["scale"] - mean) / std)
        ).numpy()
    found = deepness.process(np.transpose(tiles, (0, 2, 3, 1)))
    assert found.shape == expected.shape == (2, 1, size, size)
    assert np.abs(found - expected).max() < 1e-4
    assert 0.0 < (expected > card.threshold).mean() < 1.0, "tiles with and without slumps"


def test_metadata_are_json_as_deepness_parses_them():
    from rts_mapper_plugin.core.model.model_file import ModelCard

    card = ModelCard(tile_size=512, overlap=64, pixel_size_m=3.0, threshold=0.4, min_area_m2=500.0)
    meta = {k: json.loads(v) for k, v in deepness_metadata(card).items() if k != "rts_mapper_card"}
    assert meta["resolution"] == 300.0 and meta["tile_size"] == 512 and meta["tiles_overlap"] == 13
    assert meta["seg_thresh"] == 0.4 and meta["seg_small_segment"] == 7  # sqrt(500 / 9) pixels a side
    assert meta["class_names"] == {"0": "rts"} and meta["model_type"] == "Segmentor"


def test_exporting_a_corrupt_model_is_one_clear_error(tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a model")
    from rts_mapper_plugin.core.model.onnx_export import export_onnx

    with pytest.raises(RtsMapperError):
        export_onnx(broken, tmp_path / "x.onnx")
    assert not list(tmp_path.glob("x.onnx*")), "nothing half-written"
