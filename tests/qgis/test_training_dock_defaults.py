"""The Training dock as a person meets it: it starts from the project's confirmed RTSs, and refuses
to train on a candidate layer's rejected or unreviewed polygons unless the layer is filtered."""

from __future__ import annotations

import json

import pytest
from qgis.core import Qgis, QgsProject

from rts_mapper_plugin.core.model import weights
from rts_mapper_plugin.core.review.decisions import Decision, record_decision
from rts_mapper_plugin.gui.training_dock import (
    PROJECT_POSITIVES,
    WEIGHTS_FROM_FILE,
    WEIGHTS_IMAGENET,
    WEIGHTS_NONE,
    TrainingDock,
)
from rts_mapper_plugin.tasks.base import TaskRunner
from rts_mapper_plugin.toolbelt.preferences import PlgSettings
from tests import person
from tests.data.fixtures import copy_project, on_the_map, review_project
from tests.waiting import dock_progress, wait_until


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return review_project(tmp_path_factory.mktemp("training_defaults"))


@pytest.fixture
def project(source, tmp_path, qgis_new_project, qgis_iface):
    original, _, run_id = source
    mapping = copy_project(original, tmp_path / "p")
    layer = on_the_map(mapping, run_id, "Candidates 2019, iteration 1")
    PlgSettings.load().update(project_gpkg=str(mapping.path), imagenet_weights="")
    yield mapping, layer
    PlgSettings.load().update(imagenet_weights="")  # a remembered "imagenet" would reach for the network


@pytest.fixture
def dock(qgis_iface, qtbot, project):
    dock = TrainingDock(qgis_iface, TaskRunner())
    qtbot.addWidget(dock)
    dock.show()
    yield dock
    dock.shutdown()


def test_the_confirmed_rts_are_the_default_not_the_first_polygon_layer(dock, project, tmp_path):
    from qgis.core import QgsVectorLayer

    mapping, _layer = project
    assert dock.positives_combo.currentText() == PROJECT_POSITIVES
    later = QgsVectorLayer(f"{mapping.path}|layername=candidates", "another candidate layer", "ogr")
    QgsProject.instance().addMapLayer(later)
    assert dock.positives_combo.currentText() == PROJECT_POSITIVES, "a layer added later changes nothing"


def test_a_candidate_layer_with_rejected_and_pending_polygons_is_refused(dock, project, qtbot):
    mapping, layer = project
    fids = [f.id() for f in layer.getFeatures()]
    record_decision(mapping, Decision(fids[0], "alice", "accepted"))
    record_decision(mapping, Decision(fids[1], "alice", "rejected"))
    layer.reload()
    person.choose(dock.positives_combo, layer.name())
    person.type_path(dock.output_widget, str(mapping.path.parent / "models" / "m.safetensors"))
    person.click(dock.run_button)
    assert dock.outcome == "failed" and dock.task is None, "nothing started"
    message = dock.status.text()
    assert "1 rejected" in message and f"{len(fids) - 2} pending" in message
    assert PROJECT_POSITIVES in message and "\"status\" = 'accepted'" in message


def test_a_layer_filtered_to_accepted_candidates_trains_on_exactly_those(dock, project, qtbot):
    mapping, layer = project
    fids = [f.id() for f in layer.getFeatures()]
    for fid in fids[:3]:
        record_decision(mapping, Decision(fid, "alice", "accepted"))
    record_decision(mapping, Decision(fids[3], "alice", "rejected"))
    assert layer.setSubsetString(f"{layer.subsetString()} AND \"status\" = 'accepted'"), layer.subsetString()
    assert [f["status"] for f in layer.getFeatures()] == ["accepted"] * 3
    person.choose(dock.positives_combo, layer.name())
    person.choose(dock.encoder_combo, "mobilenet_v2")
    for spin, value in ((dock.epochs_spin, "1"), (dock.batch_spin, "2"), (dock.chip_spin, "128")):
        person.replace_text(spin.lineEdit(), value, enter=False)
    out = mapping.path.parent / "models" / "filtered.safetensors"
    person.type_path(dock.output_widget, str(out))
    person.click(dock.run_button)
    wait_until(qtbot, lambda: dock.outcome is not None, progress=dock_progress(dock))
    assert dock.outcome == "succeeded", dock.status.text()
    index = json.loads((out.with_suffix("").parent / "filtered_chips" / "index.json").read_text())
    assert index["summary"]["positives"] == 3, "the layer's filter decided what was trained on"


def test_imagenet_weights_offline_say_in_the_message_bar_what_to_fetch(
    dock, project, qtbot, qgis_iface, tmp_path, monkeypatch
):
    from huggingface_hub import constants

    def offline(*_args, **_kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # an empty cache
    monkeypatch.setattr(weights, "_download", offline)
    qgis_iface.messageBar().clear_messages()
    mapping, layer = project
    fids = [f.id() for f in layer.getFeatures()]
    record_decision(mapping, Decision(fids[0], "alice", "accepted"))
    assert layer.setSubsetString(f"{layer.subsetString()} AND \"status\" = 'accepted'")
    person.choose(dock.positives_combo, layer.name())
    assert person.items(dock.weights_combo) == [WEIGHTS_NONE, WEIGHTS_IMAGENET, WEIGHTS_FROM_FILE]
    assert dock.weights_combo.currentText() == WEIGHTS_NONE and not dock.weights_widget.isEnabled()
    person.choose(dock.weights_combo, WEIGHTS_IMAGENET)
    out = mapping.path.parent / "models" / "imagenet.safetensors"
    person.type_path(dock.output_widget, str(out))
    assert dock.request().config.imagenet_weights == "imagenet", "a plain string travels to the task"
    person.click(dock.run_button)
    wait_until(qtbot, lambda: dock.outcome is not None, progress=dock_progress(dock))
    assert dock.outcome == "failed"
    source = weights.imagenet_source(dock.encoder_combo.currentText())
    message = dock.status.text()
    assert "\n" not in message and source.url in message and str(source.cache_path()) in message
    assert message.endswith(weights.DOCK_ALTERNATIVE) and "--weights" not in message
    (in_the_bar,) = qgis_iface.messageBar().get_messages(Qgis.Critical)
    assert in_the_bar.endswith(message)
    assert not (out.parent / "imagenet_chips").exists(), "it failed before cutting chips"

    # the choice is remembered; a file choice needs its file
    again = TrainingDock(qgis_iface)
    qtbot.addWidget(again)
    again.show()
    assert again.weights_combo.currentText() == WEIGHTS_IMAGENET
    person.choose(again.weights_combo, WEIGHTS_FROM_FILE)
    assert again.weights_widget.isEnabled()
    person.choose(again.positives_combo, layer.name())
    person.type_path(again.output_widget, str(out))
    person.click(again.run_button)
    assert again.outcome == "failed" and "choose the weights file" in again.status.text()
    again.shutdown()
