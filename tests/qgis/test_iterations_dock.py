"""The Iterations dock in a real QgsApplication: "Next iteration" through QGIS's task manager,
the negatives picker, Table 1, and inventory exports that QGIS re-opens with the same features."""

from __future__ import annotations

import csv
import shutil

import pytest
from qgis.core import QgsProject, QgsVectorLayer
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QPushButton

from rts_mapper_plugin.core.model.inference import InferConfig
from rts_mapper_plugin.core.project.loop import add_positives, iterations, pending_count
from rts_mapper_plugin.core.project.store import MappingProject
from rts_mapper_plugin.core.project.workflow import infer_into_project
from rts_mapper_plugin.core.review.decisions import Decision, record_decision
from rts_mapper_plugin.core.vectors import FeatureSet, read_features
from rts_mapper_plugin.gui.iterations_dock import IterationsDock
from rts_mapper_plugin.qgis_layers.timelapse import load_time_lapse
from rts_mapper_plugin.tasks.base import TaskRunner
from rts_mapper_plugin.toolbelt.preferences import PlgSettings
from tests.data.fixtures import trained_model
from tests.waiting import dock_progress, wait_until


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    model = trained_model()
    folder = tmp_path_factory.mktemp("iterations")
    shutil.copy(model.parent / "2019.tif", folder / "2019.tif")
    region = model.parent / "region"
    truth = read_features(f"{region / 'truth.gpkg'}|layername=rts")
    return model, folder / "2019.tif", truth, region / "roads.gpkg"


@pytest.fixture
def project(tmp_path, qgis_new_project, qgis_iface, assets):
    """A mapping project with the 2019 year loaded and two known RTSs as training positives."""
    _, image, truth, _ = assets
    mapping = MappingProject.create(tmp_path / "project.gpkg", "EPSG:32646")
    mapping.register_year(2019, image, "PlanetScope (synthetic)", "2019-07-15", "2019-08-15")
    load_time_lapse(mapping, QgsProject.instance())
    add_positives(mapping, FeatureSet(truth.geometries[:2], truth.attributes[:2], truth.crs), 0, "initial")
    PlgSettings.load().update(project_gpkg=str(mapping.path), device="cpu", min_area_m2=300.0)
    qgis_iface.messageBar().clear_messages()
    return mapping


@pytest.fixture
def dock(qgis_iface, qtbot, project):
    dock = IterationsDock(qgis_iface, TaskRunner())
    qtbot.addWidget(dock)
    yield dock
    dock.shutdown()


def review_first_run(project, truth) -> tuple[list[int], list[int]]:
    """Accept candidates over a truth slump, reject the others; returns (accepted, rejected) fids."""
    run = project.runs()[0]
    candidates = project.features("candidates", "run_id = ?", (run.run_id,))
    accepted, rejected = [], []
    for geometry, attributes in zip(candidates.geometries, candidates.attributes):
        hit = any(geometry.intersects(t) for t in truth.geometries)
        record_decision(
            project, Decision(attributes["fid"], "ana", "accepted" if hit else "rejected", seconds_spent=20)
        )
        (accepted if hit else rejected).append(attributes["fid"])
    return accepted, rejected


def test_next_iteration_closes_the_review_trains_infers_and_fills_table1(
    dock, qtbot, project, assets, qgis_iface
):
    model, image, truth, _ = assets
    assert "No iteration yet" in dock.state.text() and dock.table.rowCount() == 0
    assert not dock.negatives_button.isEnabled(), "nothing to pick negatives from yet"
    infer_into_project(
        project.path, model, image, InferConfig(min_area_m2=300), year=2019
    )  # the Inference dock's run
    dock.refresh()
    assert dock.table.rowCount() == 0 and "Iteration 1 is under review" in dock.state.text()
    accepted, rejected = review_first_run(project, truth)
    assert accepted and len(rejected) >= 2

    dialog = dock.choose_negatives(exec_dialog=False)
    shown = [dialog.table.item(r, 0).data(Qt.UserRole) for r in range(dialog.table.rowCount())]
    assert sorted(shown) == sorted(rejected), "only this iteration's rejected candidates are offered"
    dialog.table.item(1, 0).setCheckState(Qt.Checked)
    dock.set_negatives(dialog.chosen())
    assert (
        dock.negatives == [shown[1]]
        and "1 rejected candidate(s) of iteration 1" in dock.negatives_label.text()
    )

    dock.encoder_combo.setCurrentText("resnet34")  # ignored: fine-tuning keeps the previous model's encoder
    dock.epochs_spin.setValue(1)
    assert dock.image_combo.currentText() == "2019 (registered year)"
    dock.run(confirm=False)
    wait_until(qtbot, lambda: dock.outcome is not None, progress=dock_progress(dock))
    assert dock.outcome == "succeeded", dock.status.text()
    assert f"Iteration 1 closed: {len(accepted)} new RTSs (total {2 + len(accepted)})" in dock.status.text()

    rows = iterations(project)
    assert [r.iteration for r in rows] == [1, 2]
    assert (rows[0].positives, rows[0].negatives, rows[0].newly_found) == (2, 0, len(accepted))
    assert rows[0].reviewers == "ana" and rows[0].finished_at
    assert (rows[1].positives, rows[1].negatives) == (2 + len(accepted), 1) and not rows[1].finished_at
    assert project.resolve_path(rows[1].model_path).name == "iteration_2.safetensors"
    assert dock.table.rowCount() == 2 and dock.table.item(1, 5).text() == "in review"
    assert dock.table.item(0, 5).text() == str(len(accepted))
    assert "Iteration 2 is under review" in dock.state.text() and dock.negatives == []

    # the new candidates are on the map, and none overlaps anything already reviewed or confirmed
    layer_names = [layer.name() for layer in QgsProject.instance().mapLayers().values()]
    assert any(name.startswith("Candidates 2019, iteration 2") for name in layer_names)
    new = project.features("candidates", "iteration = 2").geometries
    known = (
        project.features("candidates", "iteration = 1").geometries
        + project.features("training_positives").geometries
    )
    assert not any(a.intersects(b) for a in new for b in known)
    assert pending_count(project, [2]) == rows[1].inferred

    out = dock.export_table1(str(project.path.parent / "t1.csv"))
    with open(out, newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [row["Newly found RTSs"] for row in table] == [str(len(accepted)), "0"]
    assert "| Iteration |" in out.with_suffix(".md").read_text()


def test_cancelled_next_iteration_keeps_the_close_and_records_nothing_new(dock, qtbot, project, assets):
    model, image, truth, _ = assets
    infer_into_project(project.path, model, image, InferConfig(min_area_m2=300), year=2019)
    accepted, _ = review_first_run(project, truth)
    dock.refresh()
    dock.epochs_spin.setValue(50)
    dock.run(confirm=False)
    wait_until(qtbot, lambda: dock.task is not None and bool(dock.task.closed))
    qtbot.mouseClick(dock.cancel_button, Qt.LeftButton)
    wait_until(qtbot, lambda: dock.outcome is not None, progress=dock_progress(dock))
    assert dock.outcome == "cancelled"
    assert "Iteration 1 closed" in dock.status.text() and "Nothing of it was recorded" in dock.status.text()
    rows = iterations(project)
    assert [r.iteration for r in rows] == [1] and rows[0].newly_found == len(accepted)
    assert [r.iteration for r in project.runs()] == [1], "no run of the cancelled iteration"
    assert "1 iteration(s)" in dock.state.text()


def test_inventory_summary_and_exports_reopen_in_qgis(dock, project, assets, tmp_path):
    _, _, _, roads_path = assets
    roads = QgsVectorLayer(str(roads_path), "roads", "ogr")
    assert roads.isValid()
    QgsProject.instance().addMapLayer(roads)
    dock.road_combo.setLayer(roads)
    dock.near_road.setValue(2000)
    dock.region_name.setText("Test region")
    summary = dock.show_summary()
    assert summary["count"] == 2 and "2000 m of a road" in dock.summary.toPlainText()
    inventory = dock.inventory
    for name, ext in (("inv", "gpkg"), ("inv", "geojson"), ("inv", "shp")):
        out = dock.export_inventory(str(tmp_path / f"{name}.{ext}"))
        layer = QgsVectorLayer(str(out), "reopened", "ogr")
        assert layer.isValid() and layer.featureCount() == len(inventory), ext
        fields = layer.fields().names()
        uid, area = ("UID", "Area")
        assert uid in fields and area in fields and ("CentLat" if ext == "shp" else "CentroidLat") in fields
        reopened = sorted(f["UID"] for f in layer.getFeatures())
        assert reopened == sorted(a["UID"] for a in inventory.attributes), f"{ext}: same features"
        flags = {f["UID"]: bool(f["near_road"]) for f in layer.getFeatures()}
        assert flags == {a["UID"]: bool(a["near_road"]) for a in inventory.attributes}
        assert (tmp_path / f"{name}_summary.json").is_file()
    added = [
        lyr for lyr in QgsProject.instance().mapLayers().values() if lyr.name().startswith("RTS inventory")
    ]
    assert len(added) == 3 and all(lyr.renderer().symbol().color().alpha() < 255 for lyr in added), "styled"
    assert {a["RegionName"] for a in inventory.attributes} == {"Test region"}
    assert {a["BaseMapDate"] for a in inventory.attributes} == {"2019-07-15,2019-08-15"}, (
        "ARTS: a comma between the dates"
    )
    assert {a["BaseMapSource"] for a in inventory.attributes} == {"PlanetScope (synthetic)"}


def test_a_geopackage_that_is_no_mapping_project_is_said_so(dock, tmp_path):
    from shapely.geometry import box

    from rts_mapper_plugin.core.vectors import write_features

    other = tmp_path / "roads.gpkg"
    write_features(other, FeatureSet([box(0, 0, 1, 1)], [{}], "EPSG:32646"), "x")
    dock.project_picker.set_path(str(other))
    assert "roads.gpkg" in dock.state.text() and dock.table.rowCount() == 0
    assert dock.state.text() != "Choose a mapping project."


def test_scrolling_the_dock_scrolls_it_and_leaves_the_combos_alone(qgis_iface, qtbot, qgis_new_project):
    """The wheel over an unfocused combo (Roads, Image, Encoder) scrolls the dock instead."""
    from qgis.core import QgsVectorLayer
    from qgis.PyQt.QtWidgets import QScrollArea

    from tests import person

    for name in ("highway", "railway"):
        QgsProject.instance().addMapLayer(QgsVectorLayer("LineString?crs=EPSG:32646", name, "memory"))
    dock = IterationsDock(qgis_iface, TaskRunner())
    qtbot.addWidget(dock)
    dock.resize(420, 260)
    dock.show()
    person.settle(100)
    scroll = dock.findChild(QScrollArea).verticalScrollBar()
    assert scroll.maximum() > 0, "the dock is taller than its window"
    person.choose(dock.road_combo, "highway")  # a person picks a road layer...
    dock.setFocus()  # ...and moves on
    for combo in (dock.road_combo, dock.encoder_combo):
        before_text, before_scroll = combo.currentText(), scroll.value()
        person.wheel(combo, -1)
        assert combo.currentText() == before_text, "the wheel did not change the combo under the mouse"
        assert scroll.value() > before_scroll or scroll.value() == scroll.maximum(), "it scrolled the dock"
        scroll.setValue(0)
    person.click(dock.encoder_combo)  # opens the list: focus is now on the combo
    dock.encoder_combo.hidePopup()
    before = dock.encoder_combo.currentIndex()
    person.wheel(dock.encoder_combo, -1)
    assert dock.encoder_combo.currentIndex() != before, "a focused combo still takes the wheel"
    dock.shutdown()


def test_first_model_is_not_the_last_model_used_and_warns_on_another_encoder(
    qgis_iface, qtbot, project, assets, tmp_path
):
    """A cancelled one-epoch try saved as the last model used must not become the loop's first
    model; a first model of another encoder is named as such; once an iteration has a model, it
    is the one fine-tuned, shown read-only."""
    from tests import person

    model, image, _, _ = assets
    PlgSettings.load().update(model_path=str(model), encoder="resnet34")  # the last model used: resnet18
    dock = IterationsDock(qgis_iface, TaskRunner())
    qtbot.addWidget(dock)
    dock.show()
    assert dock.first_model.filePath() == "", "nothing is pre-filled from elsewhere"
    assert "A new resnet34 model is trained" in dock.model_note.text()
    person.type_path(dock.first_model, str(model))
    assert "is a resnet18 model" in dock.model_note.text() and "not resnet34" in dock.model_note.text()
    person.choose(dock.encoder_combo, "resnet18", exact=True)
    assert "Fine-tunes model.safetensors (resnet18" in dock.model_note.text()

    infer_into_project(
        project.path, model, image, InferConfig(device="cpu", min_area_m2=300), iteration=1, year=2019
    )
    from qgis.PyQt.QtWidgets import QPushButton

    person.click(next(b for b in dock.findChildren(QPushButton) if b.text() == "Refresh"))
    assert not dock.first_model.isEnabled() and not dock.encoder_combo.isEnabled()
    assert dock.first_model.filePath() == str(model)
    assert "Fine-tunes the last iteration's model" in dock.model_note.text()
    dock.shutdown()


def test_next_iteration_asks_before_closing_an_iteration_with_pending_candidates(
    dock, qtbot, project, assets
):
    """Clicked, not called: the button once passed Qt's `checked` (False) as `confirm` and closed
    the review without asking."""
    from qgis.PyQt.QtCore import QTimer
    from qgis.PyQt.QtWidgets import QApplication, QMessageBox

    from tests import person

    model, image, _, _ = assets
    infer_into_project(
        project.path, model, image, InferConfig(device="cpu", min_area_m2=300), iteration=1, year=2019
    )
    dock.show()
    person.click(next(b for b in dock.findChildren(QPushButton) if b.text() == "Refresh"))
    asked = []

    def answer_no():
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            asked.append(box.text())
            person.click(box.button(QMessageBox.No))
        else:
            QTimer.singleShot(100, answer_no)

    QTimer.singleShot(100, answer_no)
    person.click(dock.run_button)
    assert asked and "still pending" in asked[0], asked
    assert dock.task is None and dock.open == [1], "No: nothing closed, nothing started"
    assert iterations(project) == []


def test_a_contribution_to_arts_from_the_dock(dock, project, tmp_path, monkeypatch, qtbot, qgis_iface):
    import json

    from qgis.core import Qgis
    from qgis.PyQt.QtWidgets import QFileDialog

    from rts_mapper_plugin.core.analysis import arts

    out = tmp_path / "contribution.geojson"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(out), ""))
    dock.creator_lab.setText("Lab")
    qtbot.mouseClick(dock.export_arts_button, Qt.LeftButton)
    assert not out.exists(), "no RegionName: refused, nothing written"
    assert any("RegionName is missing" in m for m in qgis_iface.messageBar().get_messages(Qgis.Critical))
    dock.region_name.setText("Test region")
    qtbot.mouseClick(dock.export_arts_button, Qt.LeftButton)
    assert any(
        "ARTS contribution written: 2 RTSs" in m for m in qgis_iface.messageBar().get_messages(Qgis.Success)
    )
    written = json.loads(out.read_text())["features"]
    assert written and {f["properties"]["TrainClass"] for f in written} <= {"Positive", "Negative"}
    for feature in written:
        assert arts.problems(feature["properties"]) == [], feature["properties"]
    assert {f["properties"]["BaseMapDate"] for f in written} == {"2019-07-15,2019-08-15"}


def test_the_inventory_summary_says_what_is_still_unmapped(tmp_path):
    from rts_mapper_plugin.core.review.completeness import answer_plot, draw_sample
    from rts_mapper_plugin.gui.iterations_dock import latest_unmapped, summary_html
    from tests.data.fixtures import review_project

    project, _region, run_id = review_project(tmp_path / "p", size=300, seed=6, with_probability=True)
    assert latest_unmapped(project) == ""
    for plot in draw_sample(project, run_id, 3, seed=1):
        answer_plot(project, plot.fid, "ana", [])
    text = latest_unmapped(project)
    assert (
        text.startswith(f"{run_id}: 0 (95 % CI 0-")
        and "still unmapped where the model flagged nothing" in text
    )
    summary = {
        "count": 1,
        "total_area_ha": 1.0,
        "largest_ha": 1.0,
        "smallest_ha": 1.0,
        "mean_ha": 1.0,
        "share_under_10_ha": 1.0,
        "initiation_periods": {},
        "near_road": [],
        "unmapped": text,
    }
    assert "<b>Completeness</b>: " + text.split(":")[0] in summary_html(summary, False, 500)
