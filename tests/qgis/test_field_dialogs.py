"""The field package from the menu, as a person makes one: candidates selected on the map,
*RTS Mapper › Export field package (QField)…* (the dialog filled in with that selection and the
reviewer), Run; the package edited as QField edits it (plain OGR); *Merge field package…*, Run:
the new decisions in the project, the conflict listed in the log and in a Conflicts table."""

from __future__ import annotations

import json

from osgeo import ogr
from qgis.core import QgsProcessingFeatureSourceDefinition, QgsProject
from qgis.PyQt.QtCore import QPoint
from qgis.PyQt.QtWidgets import QComboBox, QDialogButtonBox, QLineEdit, QTextEdit

from rts_mapper_plugin.core.review.decisions import Decision, decisions_of, record_decision
from rts_mapper_plugin.gui.project_picker import current_project
from rts_mapper_plugin.qgis_layers.layers import candidates_layer
from rts_mapper_plugin.toolbelt.preferences import PlgSettings
from tests import person
from tests.data.fixtures import review_project
from tests.waiting import wait_until

REVIEWER = "Field team"


def run_from_menu(qtbot, plugin, entry: str, key: str, fill) -> tuple[bool, dict, str]:
    """Open ``entry`` of the plugin's menu, let ``fill`` type into its dialog, click Run; the
    dialog's outcome, results and log."""
    plugin.menu.popup(QPoint(10, 10))
    wait_until(qtbot, plugin.menu.isVisible)
    person.menu_entry(plugin.menu, entry)
    dialog = plugin.dialogs[key]
    assert dialog.isVisible()
    fill(dialog)
    finished = {}
    dialog.algorithmFinished.connect(lambda ok, results: finished.update(ok=ok, results=results))
    person.click(dialog.buttonBox().button(QDialogButtonBox.Ok))
    wait_until(qtbot, lambda: "ok" in finished, what=f"{entry} to finish")
    log = dialog.findChild(QTextEdit, "txtLog").toPlainText()
    return finished["ok"], finished["results"], log


def combo_of(dialog, name: str) -> QComboBox:
    widget = dialog.mainWidget().wrappers[name].wrappedWidget()
    return widget if isinstance(widget, QComboBox) else widget.findChild(QComboBox)


def typed_into(dialog, name: str, text: str) -> None:
    """Type ``text`` into the line edit of parameter ``name``'s widget."""
    widget = dialog.mainWidget().wrappers[name].wrappedWidget()
    edit = widget if isinstance(widget, QLineEdit) else widget.findChild(QLineEdit)
    person.replace_text(edit, text, enter=False)


def test_selected_candidates_go_to_the_field_and_their_decisions_come_back(
    qtbot, plugin, qgis_iface, monkeypatch, tmp_path, qgis_new_project
):
    project, _region, _run = review_project(tmp_path / "desk", size=300, seed=2)
    ids = sorted(a["fid"] for a in project.features("candidates").attributes)
    assert len(ids) >= 4
    picked = ids[:3]
    # at the desk, the field team had already accepted the first one
    record_decision(project, Decision(picked[0], REVIEWER, "accepted", probability=80))
    layer = candidates_layer(project.path, None, "Candidates (every set)")
    QgsProject.instance().addMapLayer(layer)
    layer.selectByIds(picked)
    monkeypatch.setattr(qgis_iface, "activeLayer", lambda: layer, raising=False)
    PlgSettings.load().update(reviewer_name=REVIEWER)
    current_project().set(str(project.path))
    package = tmp_path / "near_road"

    def fill_export(dialog):
        held = dialog.mainWidget().createProcessingParameters()
        source = held["CANDIDATES"]
        assert isinstance(source, QgsProcessingFeatureSourceDefinition)
        assert source.selectedFeaturesOnly and source.source.staticValue() == layer.id(), "the selection"
        assert held["REVIEWER"] == REVIEWER
        person.choose(combo_of(dialog, "STATUS"), "every status")
        typed_into(dialog, "OUTPUT", str(package))

    ok, results, log = run_from_menu(
        qtbot, plugin, "Export field package (QField)…", "export_field_package", fill_export
    )
    assert ok, log
    assert results["COUNT"] == 3 and results["QGZ"] == str(package / "field.qgz"), results
    assert (package / "field.qgz").is_file()
    assert json.loads((package / "package.json").read_text())["candidates"] == picked

    # in the field, as QField writes: the accepted one rejected (a conflict), two decided anew
    source = ogr.Open(str(package / "field.gpkg"), update=1)
    rows = source.GetLayerByName("review")
    for feature in rows:
        decision = {picked[0]: "rejected", picked[1]: "accepted", picked[2]: "unsure"}[
            feature["candidate_id"]
        ]
        feature.SetField("decision", decision)
        feature.SetField("headwall_highest", 1)
        rows.SetFeature(feature)
    source = rows = None

    def fill_merge(dialog):
        project_value = dialog.mainWidget().wrappers["PROJECT"].parameterValue()
        assert project_value == str(project.path), "the current mapping project"
        typed_into(dialog, "PACKAGE", str(package))

    ok, results, log = run_from_menu(qtbot, plugin, "Merge field package…", "merge_field_package", fill_merge)
    assert ok, log
    assert (results["RECORDED"], results["UNCHANGED"], results["CONFLICT_COUNT"]) == (2, 0, 1)
    assert f"conflict: candidate {picked[0]}, {REVIEWER}: accepted at the desk, rejected in the field" in log
    conflicts = [lyr for lyr in QgsProject.instance().mapLayers().values() if lyr.name() == "Conflicts"]
    assert len(conflicts) == 1, "the conflicts table is added to the map"
    (row,) = list(conflicts[0].getFeatures())
    assert (row["candidate_id"], row["desk"], row["field"]) == (picked[0], "accepted", "rejected")
    mine = {d["candidate_id"]: d["decision"] for d in decisions_of(project) if d["reviewer"] == REVIEWER}
    assert mine == {picked[0]: "accepted", picked[1]: "accepted", picked[2]: "unsure"}, "the desk's kept"


def test_a_layer_that_is_not_candidates_is_refused_in_one_line(qtbot, plugin, tmp_path, qgis_new_project):
    from qgis.core import QgsVectorLayer

    _project, region, _run = review_project(tmp_path / "desk", size=300, seed=2)
    QgsProject.instance().addMapLayer(
        QgsVectorLayer(region.truth_uri("rts"), "Slumps, not candidates", "ogr")
    )

    def fill(dialog):
        person.choose(combo_of(dialog, "CANDIDATES"), "Slumps, not candidates")
        typed_into(dialog, "REVIEWER", REVIEWER)
        typed_into(dialog, "OUTPUT", str(tmp_path / "pkg"))

    ok, _results, log = run_from_menu(
        qtbot, plugin, "Export field package (QField)…", "export_field_package", fill
    )
    assert not ok
    assert "Slumps, not candidates: not a mapping project's candidates layer" in log
    assert not (tmp_path / "pkg").exists()
