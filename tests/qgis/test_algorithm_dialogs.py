"""Every RTS Mapper algorithm through the Processing dialog a person opens (not processing.run):
parameters set through the dialog's widget wrappers with the kinds of layers a user picks
(class layers as rasters and as polygons), Run clicked, the dialog closed, all in one process
that must not crash. See tests/qgis/algorithm_dialogs.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.data.fixtures import class_polygons, review_project, trained_model
from tests.waiting import run_watched

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ENV = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONDONTWRITEBYTECODE": "1"}


def open_dialogs(spec_path, report) -> subprocess.CompletedProcess:
    """Run algorithm_dialogs.py on a spec in a process of its own (a crash ends only that)."""
    return run_watched(  # stopped only when it prints nothing for long: a hung dialog
        [sys.executable, str(HERE / "algorithm_dialogs.py"), str(spec_path), str(report)], cwd=ROOT, env=ENV
    )


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    from rts_mapper_plugin.core.model.chips import make_chips

    folder = tmp_path_factory.mktemp("dialogs")
    project, region, _run_id = review_project(folder / "p", size=400, seed=5)
    image = project.years()[-2].raster_path  # the prepared main year (2019)
    chips = make_chips(
        image,
        region.truth_uri("rts"),
        region.truth_uri("lookalikes"),
        folder / "chips",
        size=256,
        buffer_m=120,
    )
    model = trained_model()
    vegetation_polygons = class_polygons(region.vegetation, folder / "vegetation_polygons.gpkg")
    out = folder / "out"
    out.mkdir()
    scene = str(region.scenes[2019][0])
    layers = {
        "scene": {"kind": "raster", "path": scene, "name": "2019 scene"},
        "scene_2018": {"kind": "raster", "path": str(region.scenes[2018][0]), "name": "2018 scene"},
        "image": {"kind": "raster", "path": str(image), "name": "2019"},
        "dem": {"kind": "raster", "path": str(region.dem), "name": "DEM"},
        "vegetation": {"kind": "raster", "path": str(region.vegetation), "name": "Vegetation"},
        "soil": {"kind": "raster", "path": str(region.soil), "name": "Soil texture"},
        "vegetation_polygons": {
            "kind": "vector",
            "path": f"{vegetation_polygons}|layername=classes",
            "name": "Vegetation polygons",
        },
        "rts": {"kind": "vector", "path": region.truth_uri("rts"), "name": "RTS inventory"},
        "lookalikes": {"kind": "vector", "path": region.truth_uri("lookalikes"), "name": "Look-alikes"},
        "candidates": {
            "kind": "vector",
            "path": f"{project.path}|layername=candidates",
            "name": "Candidates",
        },
    }
    inventory = {"INVENTORY": {"layer": "rts"}}
    runs = [
        ("environment_check", {}),
        (
            "prepare_imagery",
            {"INPUT": {"layer": "scene"}, "BANDS": "auto", "OUTPUT": str(out / "prepared.tif")},
        ),
        (
            "build_yearly_mosaic",
            {
                "SCENES": {"layers": ["scene", "scene_2018"]},
                "BANDS": "auto",
                "YEAR": 2019,
                "PROJECT": str(project.path),
                "SENSOR": "PlanetScope",
                "CLUSTER": "local:1",  # a local Dask cluster, typed into the advanced field
                "OUTPUT": str(out / "mosaic.tif"),
            },
        ),
        (
            "make_chips",
            {
                "IMAGE": {"layer": "image"},
                "POSITIVES": {"layer": "rts"},
                "NEGATIVES": {"layer": "lookalikes"},
                "SIZE": 256,
                "BUFFER": 120.0,
                "OUTPUT": str(out / "chips"),
            },
        ),
        (
            "train_model",
            {
                "CHIPS": str(chips.folder),
                "ENCODER": 1,  # resnet18
                "EPOCHS": 1,
                "BATCH_SIZE": 4,
                "OUTPUT": str(out / "model.safetensors"),
            },
        ),
        (
            "infer",
            {
                "MODEL": str(model),
                "IMAGE": {"layer": "image"},
                "KNOWN": {"layer": "rts"},
                "MIN_AREA": 300.0,
                "PROBABILITY": str(out / "probability.tif"),
                "OUTPUT": str(out / "candidates.gpkg"),
            },
        ),
        ("evaluate", {"PRED": {"layer": "lookalikes"}, "TRUTH": {"layer": "rts"}, "IOU": 0.5}),
        ("export_onnx", {"MODEL": str(model), "OUTPUT": str(out / "model.onnx")}),
        (
            "infer",  # on a local Dask cluster of one worker process, typed into the advanced field
            {
                "MODEL": str(model),
                "IMAGE": {"layer": "image"},
                "CLUSTER": "local:1",
                "OUTPUT": str(out / "candidates_cluster.gpkg"),
            },
        ),
        (
            "infer",  # the ONNX model just exported, typed into the same dialog
            {
                "MODEL": str(out / "model.onnx"),
                "IMAGE": {"layer": "image"},
                "OUTPUT": str(out / "candidates_onnx.gpkg"),
            },
        ),
        (
            "export_timelapse",
            {
                "PROJECT": str(project.path),
                "STATUS": 2,
                "IDS": "1,2",
                "GIF": False,
                "OUTPUT": str(out / "tl"),
            },
        ),
        (
            "export_field_package",
            {
                "CANDIDATES": {"layer": "candidates"},
                "STATUS": 2,
                "REVIEWER": "Field team",
                "OUTPUT": str(out / "field"),
            },
        ),
        ("merge_field_package", {"PROJECT": str(project.path), "PACKAGE": str(out / "field")}),
        ("polygon_agreement", {"LAYERS": {"layers": ["rts", "lookalikes"]}, "IOU": 0.5, "CELL": 3.0}),
        (
            "terrain_rasters",
            {
                "DEM": {"layer": "dem"},
                "SLOPE": str(out / "slope.tif"),
                "ASPECT": str(out / "aspect.tif"),
                "PISR": str(out / "pisr.tif"),
            },
        ),
        (
            "streams_from_dem",
            {
                "DEM": {"layer": "dem"},
                "THRESHOLD": 0.05,
                "OUTPUT": str(out / "streams.gpkg"),
                "DISTANCE": str(out / "stream_distance.tif"),
            },
        ),
        (
            "rts_terrain",
            {**inventory, "DEM": {"layer": "dem"}, "THRESHOLD": 0.05, "OUTPUT": str(out / "terrain.gpkg")},
        ),
        (
            "class_overlay",
            {**inventory, "CLASSES": {"layer": "soil"}, "NAME": "soil", "OUTPUT": str(out / "soil.gpkg")},
        ),
        (
            "class_overlay",
            {
                **inventory,
                "CLASSES_POLYGONS": {"layer": "vegetation_polygons"},
                "CLASSES_FIELD": "class",
                "NAME": "vegetation",
                "OUTPUT": str(out / "vegetation.gpkg"),
            },
        ),
        (
            "density_grid",
            {**inventory, "CELL_KM": 0.5, "EXTENT": {"layer": "dem"}, "OUTPUT": str(out / "density.gpkg")},
        ),
        (
            "distribution_report",
            {
                **inventory,
                "DEM": {"layer": "dem"},
                "VEGETATION": {"layer": "vegetation"},
                "SOIL": {"layer": "soil"},
                "CELLS": "0.5,1",
                "OUTPUT": str(out / "report_rasters"),
            },
        ),
        (
            "distribution_report",
            {
                **inventory,
                "DEM": {"layer": "dem"},
                "VEGETATION_POLYGONS": {"layer": "vegetation_polygons"},
                "VEGETATION_FIELD": "class",
                "SOIL": {"layer": "soil"},
                "CELLS": "0.5",
                "OUTPUT": str(out / "report_polygons"),
            },
        ),
    ]
    data = {
        "layers": layers,
        "runs": [{"algorithm": f"rts_mapper:{a}", "parameters": p} for a, p in runs],
        "timeout_s": 600,
    }
    path = folder / "spec.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path, out


def test_every_algorithm_runs_from_its_dialog_without_a_crash(spec, tmp_path):
    from rts_mapper_plugin.processing.algorithms import all_algorithms

    spec_path, out = spec
    report = tmp_path / "report.json"
    done = open_dialogs(spec_path, report)
    outcomes = json.loads(report.read_text()) if report.exists() else []
    assert done.returncode == 0, (
        f"the dialog process ended with {done.returncode} after {[o['algorithm'] for o in outcomes]}:\n"
        + done.stderr[-3000:]
    )
    opened = {o["algorithm"].split(":")[1] for o in outcomes}
    assert opened == {a.name() for a in all_algorithms()}, "every algorithm's dialog was opened"
    for outcome in outcomes:
        assert not outcome["refused"], outcome
        assert outcome["ok"], outcome
    by_name = {}
    for outcome in outcomes:
        by_name.setdefault(outcome["algorithm"].split(":")[1], []).append(outcome)
    assert len(by_name["distribution_report"]) == 2, "class layers as rasters, then as polygons"
    for folder in (out / "report_rasters", out / "report_polygons"):
        assert (folder / "report.html").stat().st_size > 10_000
    html = (out / "report_polygons" / "report.html").read_text(encoding="utf-8")
    assert "Vegetation" in html and "Soil" in html
    assert (out / "model.safetensors").stat().st_size > 1_000_000, "one epoch trained from the dialog"
    assert Path(by_name["infer"][0]["results"]["OUTPUT"]).exists()
    assert (out / "model.onnx").stat().st_size > 1_000_000, "exported from its dialog"
    assert by_name["infer"][1]["results"]["OUTPUT"].endswith("candidates_cluster.gpkg")
    mosaic_log = by_name["build_yearly_mosaic"][0]["log_tail"]
    assert "1 of 1 pieces prepared on the cluster now" in mosaic_log, mosaic_log
    assert "Dask dashboard: http://" in mosaic_log, mosaic_log
    assert by_name["infer"][2]["results"]["OUTPUT"].endswith("candidates_onnx.gpkg")
    assert (out / "candidates_onnx.gpkg").exists(), "the ONNX model ran from the Detect dialog"
    assert (out / "field" / "field.qgz").exists(), (
        "the field package's QGIS project, written on the main thread"
    )


def test_a_raster_class_layer_does_not_crash_the_report_dialog(spec, tmp_path):
    """The reported crash, on its own: choosing a raster vegetation layer in the report dialog."""
    spec_path, _out = spec
    data = json.loads(spec_path.read_text())
    data["runs"] = [
        {
            "algorithm": "rts_mapper:distribution_report",
            "parameters": {
                "INVENTORY": {"layer": "rts"},
                "DEM": {"layer": "dem"},
                "VEGETATION": {"layer": "vegetation"},
                "VEGETATION_POLYGONS": {"layer": "vegetation_polygons"},
                "CELLS": "1",
                "OUTPUT": str(tmp_path / "both"),
            },
        }
    ]
    one = tmp_path / "one.json"
    one.write_text(json.dumps(data))
    report = tmp_path / "report.json"
    done = open_dialogs(one, report)
    assert done.returncode == 0, done.stderr[-2000:]
    (outcome,) = json.loads(report.read_text())
    assert not outcome["ok"], "a raster and polygons for one class layer is refused"
    assert any("give a raster or polygons, not both" in m for m in outcome["messages"]), outcome
    assert not (tmp_path / "both").exists(), "refused before it started"
