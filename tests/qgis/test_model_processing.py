"""The model engine's Processing algorithms chain: chips -> train -> infer -> evaluate."""

from __future__ import annotations

import json

import pytest
from qgis.core import QgsVectorLayer

from rts_mapper_plugin.core.imagery.prepare import prepare_image
from rts_mapper_plugin.core.model.model_file import read_card
from tests.data.fixtures import small_region


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    folder = tmp_path_factory.mktemp("processing_model")
    region = small_region(folder / "region", size=400, seed=13)
    image = prepare_image(region.scenes[2019], folder / "2019.tif").path
    return region, image, folder


def test_chips_train_infer_evaluate(plugin, region):
    from qgis import processing

    truth, image, folder = region
    chips = processing.run(
        "rts_mapper:make_chips",
        {
            "IMAGE": str(image),
            "POSITIVES": truth.truth_uri("rts"),
            "NEGATIVES": truth.truth_uri("lookalikes"),
            "SIZE": 128,
            "BUFFER": 60,
            "OUTPUT": str(folder / "chips"),
        },
    )
    assert json.loads(chips["SUMMARY"])["chips"] > 0
    trained = processing.run(
        "rts_mapper:train_model",
        {
            "CHIPS": chips["OUTPUT"],
            "ENCODER": 3,
            "EPOCHS": 1,
            "BATCH_SIZE": 4,
            "OUTPUT": str(folder / "m.safetensors"),
        },
    )
    assert read_card(trained["OUTPUT"]).encoder == "mobilenet_v2"
    inferred = processing.run(
        "rts_mapper:infer",
        {
            "MODEL": trained["OUTPUT"],
            "IMAGE": str(image),
            "THRESHOLD": 0.3,
            "MIN_AREA": 0,
            "PROBABILITY": str(folder / "prob.tif"),
            "OUTPUT": str(folder / "candidates.gpkg"),
        },
    )
    layer = QgsVectorLayer(inferred["OUTPUT"], "candidates", "ogr")
    assert layer.isValid() and layer.featureCount() == inferred["CANDIDATES"]
    assert {"area_m2", "perimeter_m", "mean_prob", "max_prob", "status"} <= set(layer.fields().names())
    assert (folder / "prob.tif").exists()
    evaluated = processing.run(
        "rts_mapper:evaluate", {"PRED": inferred["OUTPUT"], "TRUTH": truth.truth_uri("rts"), "IOU": 0.5}
    )
    assert 0 <= evaluated["F1"] <= 1 and json.loads(evaluated["JSON"])["truths"] > 0
    exported = processing.run(
        "rts_mapper:export_onnx", {"MODEL": trained["OUTPUT"], "OUTPUT": str(folder / "m.onnx")}
    )
    import onnx

    model = onnx.load(exported["OUTPUT"])
    onnx.checker.check_model(model)
    meta = {p.key: json.loads(p.value) for p in model.metadata_props}
    assert meta["model_type"] == "Segmentor" and meta["rts_mapper_card"]["encoder"] == "mobilenet_v2"
