"""Nothing a person did becomes unreachable because a .qgz was not saved: after QGIS died, every
dock lists the project's work from its GeoPackage and loads it again; opening a .qgz selects its
mapping project everywhere; the Review dock brings back each reviewer's set and filter."""

from __future__ import annotations

import pytest
from qgis.core import QgsProject, QgsVectorLayer
from qgis.PyQt.QtCore import Qt

from rts_mapper_plugin.core.project.store import MappingProject, RunRecord, new_run_id
from rts_mapper_plugin.core.review.decisions import Decision, record_decision
from rts_mapper_plugin.qgis_layers.layers import RUN_PROPERTY
from rts_mapper_plugin.qgis_layers.timelapse import GROUP_NAME
from rts_mapper_plugin.toolbelt.preferences import PlgSettings
from tests import person
from tests.data.fixtures import copy_project, review_project
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return review_project(tmp_path_factory.mktemp("reachable"))


@pytest.fixture
def mapping(source, tmp_path, qgis_new_project, qgis_iface):
    """A copy of a project whose last run's candidates are all pending, and an empty QGIS
    project: what a person finds after QGIS died before the .qgz was saved."""
    original, _, _ = source
    project = copy_project(original, tmp_path / "p")
    PlgSettings.load().update(project_gpkg=str(project.path), reviewer_name="")
    assert not QgsProject.instance().mapLayers()
    return project


def open_docks(plugin) -> dict:
    """The four docks, opened as their toolbar actions open them (the desktop walk clicks the
    real toolbar; pytest-qgis's stand-in main window has no dock areas)."""
    plugin.iface.mainWindow().show()
    for key in ("inference", "review", "training", "iterations"):
        plugin.actions[key].setChecked(True)
        plugin.docks[key].setFloating(True)  # a window of its own there
        plugin.docks[key].show()
    return plugin.docks


def test_after_a_crash_every_dock_offers_the_work_in_the_geopackage(plugin, mapping, qtbot):
    (run,) = mapping.runs()
    pending = len(mapping.features("candidates"))
    docks = open_docks(plugin)
    for key, dock in docks.items():
        assert dock.project_picker.path() == str(mapping.path), key
        summary = dock.project_picker.summary.text()
        assert f"5 years · 1 candidate set ({pending} pending)" in summary, (key, summary)

    expected = [f"{y} (registered year, not on the map)" for y in (2020, 2019, 2018, 2017, 2016)]
    assert person.items(docks["inference"].image_combo) == expected, "the years, straight from the project"
    assert person.items(docks["iterations"].image_combo) == expected
    training_images = docks["training"].images_list
    assert [training_images.item(i).text() for i in range(training_images.count())] == expected

    review = docks["review"]
    assert [person.items(review.set_combo)] == [
        [f"Candidates 2019, iteration 1: {pending} ({pending} pending)"]
    ]
    person.replace_text(review.reviewer, "ana")
    person.click(review.start_button)
    assert review.layer is not None and review.layer.customProperty(RUN_PROPERTY) == run.run_id
    assert review.layer.id() in QgsProject.instance().mapLayers(), "the set was loaded onto the map"
    assert len(review.queue) == pending
    wait_until(qtbot, review.views_ready)

    # the Load menu puts the rest back: the years and the training sets
    picker = docks["iterations"].project_picker
    picker.fill_load_menu()
    labels = [a.text() for a in picker.load_menu.actions() if a.text()]
    assert labels[0] == "Time-lapse: 5 years"
    assert f"Candidates 2019, iteration 1: {pending} ({pending} pending) (on the map)" in labels
    assert "Everything not on the map" in labels
    picker.load_everything()
    group = QgsProject.instance().layerTreeRoot().findGroup(GROUP_NAME)
    assert group is not None and len(group.findLayers()) == 5
    names = {layer.name() for layer in QgsProject.instance().mapLayers().values()}
    assert {"Training RTSs (positives)", "Training non-RTSs (negatives)"} <= names
    sets = [x for x in QgsProject.instance().mapLayers().values() if x.customProperty(RUN_PROPERTY)]
    assert len(sets) == 1, "a set on the map is not loaded twice"


def test_opening_a_qgz_selects_its_mapping_project_in_every_dock(plugin, mapping, tmp_path, qgis_iface):
    from rts_mapper_plugin.qgis_layers.project_file import write_qgis_project

    qgz = write_qgis_project(mapping.path, tmp_path / "p" / "session.qgz")
    elsewhere = MappingProject.create(tmp_path / "other.gpkg", "EPSG:32646")
    PlgSettings.load().update(project_gpkg=str(elsewhere.path))
    docks = open_docks(plugin)
    person.type_path(docks["inference"].project_picker.file_widget, str(elsewhere.path))
    assert all(d.project_picker.path() == str(elsewhere.path) for d in docks.values())

    assert QgsProject.instance().read(str(qgz))  # Project › Open
    for key, dock in docks.items():
        assert dock.project_picker.path() == str(mapping.path), key
    plugin.show_dock("review", False)
    plugin.docks.pop("review").shutdown()  # a dock opened after the .qgz shows it too
    assert plugin.dock("review").project_picker.path() == str(mapping.path)


def test_a_qgz_that_does_not_say_it_is_found_through_its_layers(plugin, mapping, tmp_path):
    from qgis.core import QgsProject as Project

    saved = Project()
    layer = QgsVectorLayer(f"{mapping.path}|layername=candidates", "my candidates", "ogr")
    saved.addMapLayer(layer)
    saved.write(str(tmp_path / "p" / "hand_made.qgz"))
    PlgSettings.load().update(project_gpkg="")
    docks = open_docks(plugin)
    assert QgsProject.instance().read(str(tmp_path / "p" / "hand_made.qgz"))
    assert docks["training"].project_picker.path() == str(mapping.path)


def test_the_review_dock_brings_back_a_reviewers_set_filter_and_order(plugin, mapping, qtbot):
    first = mapping.runs()[0]
    second = RunRecord(run_id=new_run_id(2), iteration=2, year=2020)
    mapping.add_run(second, [])
    review = open_docks(plugin)["review"]
    person.choose(review.set_combo, "Candidates 2019, iteration 1")
    person.choose(review.show_filter, "only pending")
    person.choose(review.order, "area")
    person.replace_text(review.reviewer, "ana")
    person.click(review.start_button)
    decided = []
    for _ in range(2):
        decided.append(review.current.fid)
        person.press(Qt.Key_A, widget=review)
    assert all(r["decision"] == "accepted" for r in _reviews(mapping))

    # QGIS dies; a new session, a new empty QGIS project, the docks opened afresh
    plugin.unload()
    QgsProject.instance().clear()
    plugin.initGui()
    review = open_docks(plugin)["review"]
    assert review.reviewer.text() == "ana", "the name is remembered"
    assert review.set_combo.currentData() == first.run_id, "and so is where ana was in this project"
    person.replace_text(review.reviewer, "bob")  # another reviewer at this laptop...
    person.choose(review.set_combo, "Candidates 2020")
    person.replace_text(review.reviewer, "ana")  # ...and ana again
    assert review.set_combo.currentData() == first.run_id
    assert review.show_filter.currentData() == "pending" and review.order.currentData() == "area"
    assert "Where you left off" in review.position.text()
    person.click(review.start_button)
    assert review.current.fid not in decided and len(review.queue) == len(mapping.features("candidates")) - 2
    wait_until(qtbot, review.views_ready)


def _reviews(mapping):
    from rts_mapper_plugin.core.review.decisions import decisions_of

    return decisions_of(mapping)


def test_record_decision_is_what_the_dock_stores(mapping):
    """Guard for the fixture: decisions go to the copy, not the shared source project."""
    fid = mapping.features("candidates").attributes[0]["fid"]
    record_decision(mapping, Decision(fid, "ana", "rejected"))
    assert [r["decision"] for r in _reviews(mapping)] == ["rejected"]
