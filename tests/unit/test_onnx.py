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
from tests.waiting import run_watched

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


# --- ONNX models in, for inference ------------------------------------------------------------


def test_an_exported_model_maps_the_same_through_onnxruntime(tmp_path):
    """Export, then infer with the .onnx file: the probability raster and candidates of the torch
    model, with and without the test-time ensemble."""
    from rts_mapper_plugin.core.model.inference import InferConfig, predict_raster
    from rts_mapper_plugin.core.model.onnx_model import read_model_card

    model_path = trained_model()
    onnx_path = tmp_path / "rts.onnx"
    assert main(["export-onnx", str(model_path), str(onnx_path)]) == 0
    card, onnx_card = read_model_card(model_path), read_model_card(onnx_path)
    assert (onnx_card.threshold, onnx_card.min_area_m2, onnx_card.tile_size, onnx_card.overlap) == (
        card.threshold,
        card.min_area_m2,
        card.tile_size,
        card.overlap,
    ), "the calibrated operating point travels in the ONNX file"
    assert onnx_card.training == card.training and onnx_card.summary().startswith("ONNX: DeepLabv3+")
    image = model_path.parent / "2019.tif"
    for tta in (1, 4):
        config = InferConfig(device="cpu", tta=tta, backend="torch")
        torch_result = predict_raster(model_path, image, tmp_path / f"torch{tta}.tif", config)
        onnx_result = predict_raster(onnx_path, image, tmp_path / f"onnx{tta}.tif", config)
        with (
            rasterio.open(tmp_path / f"torch{tta}.tif") as a,
            rasterio.open(tmp_path / f"onnx{tta}.tif") as b,
        ):
            expected, found = a.read(1).astype(int), b.read(1).astype(int)
        assert np.abs(found - expected).max() <= 1, "percent values equal up to rounding"
        assert 0 < (expected > 50).mean() < 0.5
        assert len(onnx_result.candidates) == len(torch_result.candidates) > 0
        assert "ONNX model run by onnxruntime" in onnx_result.notes


def _foreign_model(path, metadata: dict, channels: int = 2, batch=None, size=None):
    """An ONNX segmentor made outside RTS Mapper, Deepness-style: a 1x1 convolution over the
    standardised RGB whose softmax says "slump" where red is high; fixed or free batch and size."""
    import torch

    class Softmax(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, channels, 1)
            with torch.no_grad():
                self.conv.weight.zero_()
                self.conv.bias.zero_()
                self.conv.weight[1, 0] = 2.0  # class 1 follows red
                self.conv.bias[1] = -1.0

        def forward(self, x):
            return torch.softmax(self.conv(x), dim=1)

    example = torch.rand(batch or 1, 3, size or 128, size or 128)
    axes = ({} if batch else {0: "batch"}) | ({} if size else {2: "h", 3: "w"})
    dynamic = {"image": axes, "out": dict(axes)}
    torch.onnx.export(
        Softmax().eval(),
        (example,),
        str(path),
        input_names=["image"],
        output_names=["out"],
        dynamic_axes=dynamic,
        opset_version=17,
        dynamo=False,
    )
    model = onnx.load(str(path))
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.save(model, str(path))
    return path


DEEPNESS_META = {
    "model_type": "Segmentor",
    "class_names": {"0": "background", "1": "thaw slump"},
    "resolution": 300,
    "tile_size": 128,
    "tiles_overlap": 10,
    "standardization_mean": [0.5, 0.4, 0.3],
    "standardization_std": [0.25, 0.2, 0.2],
    "seg_thresh": 0.3,
    "seg_small_segment": 5,
}


def _rgb_image(tmp_path):
    from tests.data.fixtures import write_raster

    rng = np.random.default_rng(7)
    rgb = rng.integers(1, 256, (3, 300, 260), dtype=np.uint8)
    rgb[0, 100:180, 60:150] = 250  # a red block: a slump to this model
    return write_raster(tmp_path / "rgb.tif", rgb), rgb


@pytest.mark.parametrize("batch,size", [(None, 128), (1, 128), (None, None)])
def test_a_deepness_model_made_elsewhere_maps_with_its_own_metadata(tmp_path, batch, size):
    """Card from the metadata (classes, 3 m, 128 px tiles, 10 % overlap, threshold, smallest
    segment); tiles standardised with the model's mean and std; the softmax channel of the class
    named as a slump; the probability equal to the model's formula at every pixel."""
    from rts_mapper_plugin.core.model.inference import InferConfig, predict_raster
    from rts_mapper_plugin.core.model.onnx_model import read_model_card

    path = _foreign_model(tmp_path / "elsewhere.onnx", DEEPNESS_META, batch=batch, size=size)
    card = read_model_card(path)
    assert card.classes == ["background", "thaw slump"] and card.pixel_size_m == 3.0
    assert (card.tile_size, card.overlap, card.threshold) == (128, 13, 0.3)
    assert card.min_area_m2 == pytest.approx(25 * 9) and card.summary().startswith(
        "ONNX: a segmentation model"
    )
    image, rgb = _rgb_image(tmp_path)
    result = predict_raster(path, image, tmp_path / "p.tif", InferConfig(device="cpu", batch_size=3))
    red = (rgb[0] / 255.0 - 0.5) / 0.25
    expected = np.rint(100 / (1 + np.exp(-(2.0 * red - 1.0))))  # softmax of (2 red - 1, 0)
    with rasterio.open(tmp_path / "p.tif") as found:
        assert np.abs(found.read(1) - expected).max() <= 1
    assert result.threshold == 0.3 and any(c.area_m2 > 80 * 90 * 9 * 0.9 for c in result.candidates)


def test_an_onnx_model_runs_without_torch(tmp_path):
    """A field laptop with onnxruntime and no deep-learning stack maps with an ONNX model (the CLI
    in a Python where importing torch fails)."""
    import sys

    path = _foreign_model(tmp_path / "elsewhere.onnx", DEEPNESS_META)
    image, _ = _rgb_image(tmp_path)
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['segmentation_models_pytorch'] = None\n"
        "from rts_mapper_plugin.__main__ import main\n"
        f"sys.exit(main(['infer', '--model', {str(path)!r}, '--image', {str(image)!r}, "
        f"'--out', {str(tmp_path / 'c.gpkg')!r}]))"
    )
    done = run_watched([sys.executable, "-c", code])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "torch" not in done.stderr and (tmp_path / "c.gpkg").exists()


@pytest.mark.parametrize(
    "change,message",
    [
        ({"model_type": "Detector"}, "RTS Mapper runs segmentation models"),
        ({"class_names": {"0": "background", "1": "road", "2": "lake"}}, "none (or several) of them"),
        ({"standardization_std": [1, 0, 1]}, "std > 0"),
    ],
)
def test_onnx_models_it_cannot_run_are_refused_in_one_line(tmp_path, capsys, change, message):
    path = _foreign_model(tmp_path / "m.onnx", {**DEEPNESS_META, **change}, channels=3)
    image, _ = _rgb_image(tmp_path)
    code = main(["infer", "--model", str(path), "--image", str(image), "--out", str(tmp_path / "c.gpkg")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1 and "m.onnx" in err
    assert not (tmp_path / "c.gpkg").exists()


def test_a_corrupt_onnx_file_and_training_from_onnx_are_clear_errors(tmp_path):
    from rts_mapper_plugin.core.model.model_file import load_model
    from rts_mapper_plugin.core.model.onnx_model import read_model_card

    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(RtsMapperError, match="is not a readable ONNX model"):
        read_model_card(broken)
    with pytest.raises(RtsMapperError, match="training starts from an RTS Mapper model"):
        load_model(broken)


def test_onnxruntime_and_torch_give_the_same_probabilities_within_1e_4(tmp_path):
    """The backend choice changes the speed, not the map: the same tiles (real-looking image tiles
    and random ones) through the traced torch model and through its ONNX export in onnxruntime."""
    import torch

    from rts_mapper_plugin.core.model.inference import _OnnxPredictor, _Predictor
    from rts_mapper_plugin.core.model.onnx_export import cached_export
    from rts_mapper_plugin.core.model.onnx_model import OnnxModel

    model_path = trained_model()
    model, card = load_model(model_path)
    with rasterio.open(model_path.parent / "2019.tif") as dataset:
        tiles = [
            dataset.read(window=Window(c, r, card.tile_size, card.tile_size)) for r, c in ((0, 0), (200, 300))
        ]
    tiles.append(
        np.random.default_rng(4).integers(0, 256, (3, card.tile_size, card.tile_size), dtype=np.uint8)
    )
    batch = np.stack(tiles)
    for tta in (1, 4):
        traced = _Predictor(model, "cpu", 1, torch, card.tile_size, card, tta)(batch)
        exported = OnnxModel(cached_export(model_path))  # its card says: 0-1 RGB in
        onnx_run = _OnnxPredictor(exported, 1, exported.card, tta)(batch)
        assert traced.shape == onnx_run.shape == (3, card.tile_size, card.tile_size)
        assert np.abs(traced - onnx_run).max() < 1e-4, np.abs(traced - onnx_run).max()


def test_the_backend_is_chosen_for_the_cpu_and_by_the_user(tmp_path):
    """auto: onnxruntime runs a .safetensors model on the CPU (exported once, cached); torch when
    asked, or for a tile size the export was not made for; onnxruntime refuses that in one line."""
    from rts_mapper_plugin.core.model.inference import InferConfig, predict_raster
    from rts_mapper_plugin.core.model.onnx_export import cache_folder

    model_path = trained_model()
    image = model_path.parent / "2019.tif"
    auto = predict_raster(model_path, image, None, InferConfig(device="cpu"))
    assert "ONNX model run by onnxruntime" in auto.notes and list(cache_folder().glob("model-*.onnx"))
    by_torch = predict_raster(model_path, image, None, InferConfig(device="cpu", backend="torch"))
    assert not any("onnxruntime" in n for n in by_torch.notes)
    assert len(auto.candidates) == len(by_torch.candidates) > 0
    other_tile = InferConfig(device="cpu", tile_size=auto.card.tile_size + 64)
    assert not any("onnxruntime" in n for n in predict_raster(model_path, image, None, other_tile).notes)
    with pytest.raises(RtsMapperError, match="runs the model's own"):
        predict_raster(
            model_path, image, None, InferConfig(device="cpu", backend="onnxruntime", tile_size=320)
        )


def test_auto_falls_back_to_torch_when_the_export_cannot_be_cached(tmp_path, monkeypatch):
    """A cache folder that cannot be made (a full or read-only home) costs speed, not the run."""
    from rts_mapper_plugin.core.model.inference import InferConfig, predict_raster

    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("RTS_MAPPER_CACHE", str(blocker))
    model_path = trained_model()
    result = predict_raster(model_path, model_path.parent / "2019.tif", None, InferConfig(device="cpu"))
    assert result.device == "cpu" and len(result.candidates) > 0
    assert any(
        n.startswith("PyTorch ran the model: its ONNX export for onnxruntime failed") for n in result.notes
    )
    with pytest.raises(RtsMapperError, match="cannot create the output folder"):
        predict_raster(
            model_path, model_path.parent / "2019.tif", None, InferConfig(device="cpu", backend="onnxruntime")
        )
