"""The Inference and Training docks in a real QgsApplication: real widgets, real tasks in QGIS's
task manager, real layers from the project GeoPackage."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from qgis.core import (
    Qgis,
    QgsApplication,
    QgsCategorizedSymbolRenderer,
    QgsProject,
    QgsRasterLayer,
    QgsTask,
    QgsVectorDataProvider,
)
from qgis.PyQt.QtCore import Qt, QTimer

from rts_mapper_plugin.core.model.model_file import read_card
from rts_mapper_plugin.core.project.store import MappingProject
from rts_mapper_plugin.gui.inference_dock import InferenceDock
from rts_mapper_plugin.gui.training_dock import TrainingDock
from rts_mapper_plugin.qgis_layers.layers import RUNS_GROUP
from rts_mapper_plugin.tasks.base import TaskRunner
from rts_mapper_plugin.toolbelt.preferences import PlgSettings
from tests import person
from tests.data.fixtures import trained_model, write_raster
from tests.waiting import dock_progress, wait_until


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """The cached trained model, the image it was trained on (the 2019 prepared region)."""
    model = trained_model()
    folder = tmp_path_factory.mktemp("docks")
    shutil.copy(model.parent / "2019.tif", folder / "2019.tif")
    return model, folder / "2019.tif", model.parent / "region"


@pytest.fixture
def project(tmp_path, qgis_new_project, qgis_iface, assets):
    _, image, _ = assets
    mapping = MappingProject.create(tmp_path / "project.gpkg", "EPSG:32646")
    mapping.register_year(2019, image)
    from rts_mapper_plugin.qgis_layers.timelapse import load_time_lapse

    load_time_lapse(mapping, QgsProject.instance())
    PlgSettings.load().update(project_gpkg=str(mapping.path), model_path="")
    qgis_iface.messageBar().clear_messages()
    return mapping


@pytest.fixture
def inference_dock(qgis_iface, qtbot, project):
    dock = InferenceDock(qgis_iface, TaskRunner())
    qtbot.addWidget(dock)
    yield dock
    dock.shutdown()


def run_dock(dock, qtbot) -> str:
    qtbot.mouseClick(dock.run_button, Qt.LeftButton)
    wait_until(qtbot, lambda: dock.outcome is not None, progress=dock_progress(dock))
    return dock.outcome


def run_layers():
    group = QgsProject.instance().layerTreeRoot().findGroup(RUNS_GROUP)
    return [node.layer() for node in group.findLayers()] if group else []


def test_inference_dock_puts_editable_styled_candidates_on_the_map(
    inference_dock, qtbot, assets, project, qgis_iface
):
    model, _, _ = assets
    assert inference_dock.image_combo.currentText() == "2019 (registered year)", "registered years come first"
    inference_dock.min_area_spin.setValue(12345)
    inference_dock.model_widget.setFilePath(str(model))
    assert "DeepLabv3+ / resnet18" in inference_dock.card_label.text()
    card = read_card(model)
    assert (inference_dock.threshold_spin.value(), inference_dock.min_area_spin.value()) == pytest.approx(
        (card.threshold, card.min_area_m2)
    ), "choosing a model sets its calibrated operating point"
    assert run_dock(inference_dock, qtbot) == "succeeded", inference_dock.status.text()

    candidates, probability = run_layers()
    assert candidates.isValid() and candidates.featureCount() == inference_dock.last_run.candidates > 0
    assert {
        "run_id",
        "iteration",
        "year",
        "area_m2",
        "perimeter_m",
        "mean_prob",
        "max_prob",
        "status",
    } <= set(candidates.fields().names())
    capabilities = candidates.dataProvider().capabilities()
    assert (
        capabilities & QgsVectorDataProvider.ChangeGeometries
        and capabilities & QgsVectorDataProvider.ChangeAttributeValues
    )
    assert candidates.startEditing() and candidates.rollBack()
    renderer = candidates.renderer()
    assert isinstance(renderer, QgsCategorizedSymbolRenderer) and renderer.classAttribute() == "status"
    assert {c.value() for c in renderer.categories()} >= {"pending", "accepted", "rejected", "unsure"}
    assert not candidates.labelsEnabled()
    assert (
        isinstance(probability, QgsRasterLayer) and probability.renderer().type() == "singlebandpseudocolor"
    )
    (run,) = MappingProject.open(project.path).runs()
    assert run.iteration == 1 and run.year == 2019 and run.candidates == candidates.featureCount()
    messages = qgis_iface.messageBar().get_messages(Qgis.Success)
    assert any("candidates found" in m and "km²/min" in m for m in messages)

    # a second run (the next iteration) adds a new layer; it does not replace the first
    assert inference_dock.iteration_spin.value() == 2
    assert run_dock(inference_dock, qtbot) == "succeeded"
    assert len(run_layers()) == 4
    assert [r.iteration for r in MappingProject.open(project.path).runs()] == [1, 2]
    assert candidates.featureCount() == run.candidates, "the first layer still shows only its own run"


def test_the_ensemble_a_person_picks_goes_to_the_run(inference_dock, assets):
    model, _, _ = assets
    inference_dock.show()
    inference_dock.model_widget.setFilePath(str(model))
    assert inference_dock.request().config.tta == 1, "off by default"
    person.choose(inference_dock.tta_combo, "4 views")
    assert inference_dock.tta_combo.currentText().endswith("(4× the model time)")
    assert inference_dock.request().config.tta == 4


def test_the_engine_a_person_picks_runs_the_model(inference_dock, qtbot, assets, project):
    """Auto runs a .safetensors model in ONNX Runtime on the CPU; PyTorch when picked; the run
    (its message, and the run record in the project) says which."""
    model, _, _ = assets
    inference_dock.show()
    inference_dock.model_widget.setFilePath(str(model))
    assert person.items(inference_dock.backend_combo) == ["Auto", "PyTorch", "ONNX Runtime"]
    for label, engine in (("Auto", "cpu (onnxruntime)"), ("PyTorch", "cpu")):
        person.choose(inference_dock.backend_combo, label, exact=True)
        assert inference_dock.request().config.backend == inference_dock.backend_combo.currentData()
        assert run_dock(inference_dock, qtbot) == "succeeded"
        assert inference_dock.status.text().endswith(f"on {engine}."), inference_dock.status.text()
    devices = [run.device for run in MappingProject.open(project.path).runs()]
    assert devices == ["cpu (onnxruntime)", "cpu"], devices


def test_cancel_mid_run_adds_nothing(inference_dock, qtbot, assets, project, qgis_iface):
    model, _, _ = assets
    inference_dock.model_widget.setFilePath(str(model))
    layers_before = set(QgsProject.instance().mapLayers())
    inference_dock.show()
    person.click(inference_dock.run_button)
    statuses = []
    inference_dock.task.statusChanged.connect(statuses.append)
    wait_until(qtbot, lambda: inference_dock.progress.value() >= 10)
    person.click(inference_dock.cancel_button)
    wait_until(qtbot, lambda: inference_dock.outcome is not None, progress=dock_progress(inference_dock))
    assert inference_dock.outcome == "cancelled"
    # a deliberate cancel is no failure: QGIS's task manager must not show "Task failed"
    assert QgsTask.Terminated not in statuses and statuses[-1] == QgsTask.Complete, statuses
    assert not qgis_iface.messageBar().get_messages(Qgis.Critical)
    assert any("cancelled" in m for m in qgis_iface.messageBar().get_messages(Qgis.Info))
    assert set(QgsProject.instance().mapLayers()) == layers_before
    assert MappingProject.open(project.path).runs() == []
    assert (
        not list((project.path.parent / "probability").glob("*"))
        if (project.path.parent / "probability").exists()
        else True
    )
    assert QgsApplication.taskManager().countActiveTasks() == 0


def test_missing_model_file_is_reported(inference_dock, qtbot, tmp_path, qgis_iface):
    inference_dock.model_widget.setFilePath(str(tmp_path / "missing.safetensors"))
    assert "no such model file" in inference_dock.card_label.text()
    assert run_dock(inference_dock, qtbot) == "failed"
    assert "missing.safetensors: no such model file" in inference_dock.status.text()
    assert any("no such model file" in m for m in qgis_iface.messageBar().get_messages(Qgis.Warning))


def test_one_band_layer_is_reported(inference_dock, qtbot, tmp_path, assets, qgis_iface):
    model, _, _ = assets
    single = write_raster(tmp_path / "dem_like.tif", np.ones((1, 64, 64), np.uint8))
    layer = QgsRasterLayer(str(single), "one band", "gdal")
    QgsProject.instance().addMapLayer(layer)
    inference_dock.show()
    person.choose(inference_dock.image_combo, "one band")
    inference_dock.model_widget.setFilePath(str(model))
    assert run_dock(inference_dock, qtbot) == "failed"
    assert "dem_like.tif: has 1 band(s) of uint8" in inference_dock.status.text()
    assert "prepare" in inference_dock.status.text()
    assert any("has 1 band" in m for m in qgis_iface.messageBar().get_messages(Qgis.Critical))


def test_settings_are_remembered_per_project(inference_dock, qtbot, assets, qgis_iface):
    model, _, _ = assets
    inference_dock.model_widget.setFilePath(str(model))
    inference_dock.threshold_spin.setValue(0.35)
    inference_dock.min_area_spin.setValue(800)
    assert run_dock(inference_dock, qtbot) == "succeeded"
    stored, ok = QgsProject.instance().readEntry("rts_mapper", "model_path", "")
    assert ok and stored == str(model)
    again = InferenceDock(qgis_iface, TaskRunner())
    assert again.model_widget.filePath() == str(model)
    assert (again.threshold_spin.value(), again.min_area_spin.value()) == (0.35, 800), "not the card's"
    again.shutdown()


def test_training_dock_trains_with_a_live_curve_and_offers_the_model(
    qgis_iface, qtbot, project, assets, tmp_path
):
    _, _, region = assets
    from qgis.core import QgsVectorLayer

    positives = QgsVectorLayer(f"{region / 'truth.gpkg'}|layername=rts", "rts truth", "ogr")
    negatives = QgsVectorLayer(f"{region / 'truth.gpkg'}|layername=lookalikes", "look-alikes", "ogr")
    QgsProject.instance().addMapLayers([positives, negatives])
    dock = TrainingDock(qgis_iface, TaskRunner())
    qtbot.addWidget(dock)
    dock.positives_combo.setLayer(positives)
    dock.negatives_combo.setLayer(negatives)
    assert dock.checked_images(), "the registered year is ticked"
    dock.encoder_combo.setCurrentText("mobilenet_v2")
    dock.epochs_spin.setValue(2)
    dock.batch_spin.setValue(4)
    dock.chip_spin.setValue(128)
    dock.output_widget.setFilePath(str(tmp_path / "models" / "new.safetensors"))
    offered = []
    dock.modelTrained.connect(offered.append)
    qtbot.mouseClick(dock.run_button, Qt.LeftButton)
    # the duration is measured on the first steps and said before the first epoch ends
    wait_until(qtbot, lambda: dock.eta_label.text().startswith("Expected: 2 epochs ≈"))
    assert not dock.curve.points and "s per step" in dock.eta_label.text()
    wait_until(qtbot, lambda: dock.outcome is not None, progress=dock_progress(dock))
    assert dock.outcome == "succeeded", dock.status.text()
    assert [p["epoch"] for p in dock.curve.points] == [1, 2]
    assert all(0 <= p["val_f1"] <= 1 for p in dock.curve.points), "the F1 curve is drawn from these"
    assert "validation F1" in dock.status.text() and "calibrated threshold" in dock.status.text()
    assert offered == [str(tmp_path / "models" / "new.safetensors")]
    assert PlgSettings.load().model_path == offered[0]
    assert "offered in the Inference dock" in dock.status.text()
    dock.shutdown()


def test_training_cancel_keeps_the_best_model(qgis_iface, qtbot, project, assets, tmp_path):
    _, _, region = assets
    from qgis.core import QgsVectorLayer

    positives = QgsVectorLayer(f"{region / 'truth.gpkg'}|layername=rts", "rts truth", "ogr")
    QgsProject.instance().addMapLayer(positives)
    dock = TrainingDock(qgis_iface, TaskRunner())
    qtbot.addWidget(dock)
    dock.positives_combo.setLayer(positives)
    dock.encoder_combo.setCurrentText("mobilenet_v2")
    dock.epochs_spin.setValue(50)
    dock.batch_spin.setValue(4)
    dock.chip_spin.setValue(128)
    out = tmp_path / "models" / "cancelled.safetensors"
    dock.output_widget.setFilePath(str(out))
    qtbot.mouseClick(dock.run_button, Qt.LeftButton)
    wait_until(qtbot, lambda: len(dock.curve.points) >= 1)
    qtbot.mouseClick(dock.cancel_button, Qt.LeftButton)
    wait_until(qtbot, lambda: dock.outcome is not None, progress=dock_progress(dock))
    assert dock.outcome == "cancelled"
    assert out.exists() and "best model so far is kept" in dock.status.text()
    dock.shutdown()


def test_training_needs_positives(qgis_iface, qtbot, project):
    dock = TrainingDock(qgis_iface, TaskRunner())
    qtbot.addWidget(dock)
    dock.positives_combo.setCurrentIndex(dock.positives_combo.findText("Project: training positives"))
    assert run_dock(dock, qtbot) == "failed"
    assert "no training positives" in dock.status.text()
    dock.shutdown()


def test_a_file_that_is_no_model_is_called_that(inference_dock, qtbot, tmp_path, qgis_iface):
    bad = tmp_path / "bad.safetensors"
    bad.write_text("x\n")  # what `echo x > bad.safetensors` leaves
    inference_dock.show()
    person.type_path(inference_dock.model_widget, str(bad))
    assert "is not an RTS Mapper model file" in inference_dock.card_label.text()
    assert "truncated" not in inference_dock.card_label.text()
    person.click(inference_dock.run_button)
    wait_until(qtbot, lambda: inference_dock.outcome is not None, progress=dock_progress(inference_dock))
    assert inference_dock.outcome == "failed"
    assert "bad.safetensors: is not an RTS Mapper model file" in inference_dock.status.text()


def test_a_raster_without_crs_runs_once_its_layer_is_given_one(
    inference_dock, qtbot, assets, project, qgis_iface, tmp_path
):
    """The advice works: set the CRS in the layer's properties dialog, run again, done (the file
    itself is never rewritten)."""
    import rasterio
    from qgis.core import QgsCoordinateReferenceSystem
    from qgis.gui import QgsProjectionSelectionWidget, QgsRasterLayerProperties
    from qgis.PyQt.QtWidgets import QDialogButtonBox

    model, image, _ = assets
    with rasterio.open(image) as dataset:
        bare = write_raster(
            tmp_path / "no_crs.tif",
            dataset.read(),
            crs=None,
            origin=(dataset.bounds.left, dataset.bounds.top),
        )
    layer = QgsRasterLayer(str(bare), "no crs", "gdal")
    QgsProject.instance().addMapLayer(layer)
    assert not layer.crs().isValid()
    inference_dock.show()
    person.choose(inference_dock.image_combo, "no crs")
    person.type_path(inference_dock.model_widget, str(model))
    person.click(inference_dock.run_button)
    assert inference_dock.outcome == "failed"
    assert "no crs: the layer has no coordinate reference system: set it in Layer Properties › Source" in (
        inference_dock.status.text()
    )

    properties = QgsRasterLayerProperties(layer, qgis_iface.mapCanvas())
    properties.show()
    from qgis.PyQt import sip
    from qgis.PyQt.QtWidgets import QWidget

    selector = sip.cast(properties.findChild(QWidget, "mCrsSelector"), QgsProjectionSelectionWidget)
    selector.setCrs(QgsCoordinateReferenceSystem("EPSG:32646"))  # what picking it in the selector does
    person.click(properties.findChild(QDialogButtonBox).button(QDialogButtonBox.Ok))
    assert layer.crs().authid() == "EPSG:32646"

    person.click(inference_dock.run_button)
    wait_until(qtbot, lambda: inference_dock.outcome is not None, progress=dock_progress(inference_dock))
    assert inference_dock.outcome == "succeeded", inference_dock.status.text()
    assert inference_dock.last_run.candidates > 0
    with rasterio.open(bare) as dataset:
        assert dataset.crs is None, "the file was not rewritten"


def test_training_dock_exports_a_model_as_onnx(qgis_iface, qtbot, project, assets, tmp_path, monkeypatch):
    import onnx
    from qgis.PyQt.QtWidgets import QFileDialog

    model, _, _ = assets
    dock = TrainingDock(qgis_iface, TaskRunner())
    qtbot.addWidget(dock)
    out = tmp_path / "rts.onnx"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(out), ""))
    dock.output_widget.setFilePath(str(tmp_path / "not_trained_yet.safetensors"))
    qtbot.mouseClick(dock.export_onnx_button, Qt.LeftButton)
    assert dock.outcome is None and not out.exists(), "no model yet: said so, nothing started"
    assert any("Train a model first" in m for m in qgis_iface.messageBar().get_messages(Qgis.Warning))
    dock.output_widget.setFilePath(str(model))
    qtbot.mouseClick(dock.export_onnx_button, Qt.LeftButton)
    wait_until(qtbot, lambda: dock.outcome is not None, progress=dock_progress(dock))
    assert dock.outcome == "succeeded" and "ONNX written" in dock.status.text()
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["model_type"] == '"Segmentor"'
    dock.shutdown()


def test_an_onnx_model_typed_into_the_inference_dock_maps(inference_dock, qtbot, assets, project, tmp_path):
    """A person picks an ONNX model (here, the trained model exported): the dock shows its card and
    its operating point, and the run puts the same number of candidates on the map as the
    safetensors model."""
    from rts_mapper_plugin.core.model.onnx_export import export_onnx

    model, _, _ = assets
    onnx_model = export_onnx(model, tmp_path / "exported.onnx")
    assert "*.onnx" in inference_dock.model_widget.filter()
    inference_dock.show()
    person.type_path(inference_dock.model_widget, str(onnx_model))
    assert inference_dock.card_label.text().startswith("ONNX: DeepLabv3+ / resnet18")
    assert inference_dock.threshold_spin.value() == pytest.approx(read_card(model).threshold)
    assert run_dock(inference_dock, qtbot) == "succeeded", inference_dock.status.text()
    from_onnx = inference_dock.last_run.candidates
    person.type_path(inference_dock.model_widget, str(model))
    assert run_dock(inference_dock, qtbot) == "succeeded", inference_dock.status.text()
    assert from_onnx == inference_dock.last_run.candidates > 0
    runs = MappingProject.open(project.path).runs()
    assert [r.model_path.endswith(".onnx") for r in runs] == [True, False]


def test_a_local_cluster_picked_in_the_dock_gives_the_same_run(inference_dock, qtbot, assets, project):
    """Cluster: None, then a local cluster of two worker processes: the second run shows the
    cluster's dashboard link while it runs, and gives the same probability raster and candidates."""
    import numpy as np
    import rasterio

    model, _, _ = assets
    inference_dock.show()
    inference_dock.model_widget.setFilePath(str(model))
    person.choose(inference_dock.backend_combo, "PyTorch", exact=True)
    assert person.items(inference_dock.cluster_combo)[:2] == [
        "None: this QGIS, one process",
        "Local cluster: 2 worker processes",
    ]
    assert run_dock(inference_dock, qtbot) == "succeeded"
    person.choose(inference_dock.cluster_combo, "Local cluster: 2 worker processes")
    assert inference_dock.request().cluster == "local:2"
    shown = []
    timer = QTimer()
    timer.timeout.connect(lambda: shown.append(inference_dock.dashboard.text()))
    timer.start(200)
    assert run_dock(inference_dock, qtbot) == "succeeded"
    timer.stop()
    assert any(t.startswith('Running on the cluster: <a href="http://') for t in shown), "while it ran"
    last = inference_dock.dashboard.text()
    assert "blocks done" in last and "km²/min on the cluster" in last, "the live line's last figures"
    assert "dashboard" not in last, "a local cluster's dashboard goes with it"
    single, cluster = MappingProject.open(project.path).runs()
    assert cluster.device.endswith("worker(s)") and cluster.candidates == single.candidates
    pixels = []
    for run in (single, cluster):
        with rasterio.open(MappingProject.open(project.path).resolve_path(run.prob_path)) as dataset:
            pixels.append(dataset.read(1))
    assert np.array_equal(*pixels), "pixel for pixel"
    assert PlgSettings.load().cluster == "local:2", "remembered"
