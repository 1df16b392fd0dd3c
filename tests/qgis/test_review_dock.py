"""The Review dock in a real QgsApplication, driven by key presses over a synthetic candidate
layer with five registered years; decisions checked in the GeoPackage itself."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from qgis.core import QgsGeometry, QgsProject
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtWidgets import QApplication, QPushButton

from rts_mapper_plugin.core.project.store import MappingProject
from rts_mapper_plugin.gui.review_dock import ReviewDock
from rts_mapper_plugin.qgis_layers.layers import RUN_PROPERTY
from rts_mapper_plugin.tasks.base import TaskRunner
from rts_mapper_plugin.toolbelt.preferences import PlgSettings
from tests import person
from tests.data.fixtures import copy_project, on_the_map, review_project
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return review_project(tmp_path_factory.mktemp("review_dock"), with_probability=True)


@pytest.fixture
def project(source, tmp_path, qgis_new_project, qgis_iface):
    original, _, run_id = source
    mapping = copy_project(original, tmp_path / "p")
    layer = on_the_map(mapping, run_id)
    PlgSettings.load().update(reviewer_name="", review_shortcuts="", review_order="id")
    assert layer.customProperty(RUN_PROPERTY) == run_id, "the dock reviews this run's candidates"
    return mapping, layer


def open_dock(qgis_iface, qtbot, layer, reviewer="alice", parent=None) -> ReviewDock:
    """The dock as a person opens it: the project's path typed, its candidate set picked from the
    list, the name typed, Start clicked."""
    dock = ReviewDock(qgis_iface, TaskRunner(), parent)
    qtbot.addWidget(dock)
    dock.show()
    person.type_path(dock.project_picker.file_widget, layer.source().split("|")[0])
    person.choose(dock.set_combo, "Candidates 2019, iteration 1")
    person.replace_text(dock.reviewer, reviewer)
    person.click(dock.start_button)
    assert dock.layer is layer, "the set's layer on the map is the one reviewed"
    QApplication.setActiveWindow(dock)
    dock.setFocus()
    wait_until(qtbot, dock.views_ready)
    return dock


def press(qtbot, dock, key, modifier=Qt.NoModifier):
    QApplication.setActiveWindow(dock)
    qtbot.keyClick(dock.focusWidget() or dock, key, modifier)


def stored(mapping) -> list[sqlite3.Row]:
    with sqlite3.connect(mapping.path) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM reviews ORDER BY fid").fetchall()


def test_keyboard_decisions_land_in_the_geopackage(project, qgis_iface, qtbot):
    mapping, layer = project
    dock = open_dock(qgis_iface, qtbot, layer)
    assert len(dock.views.labels) == 5, "one view per registered year"
    assert all(not label.pixmap().isNull() for label in dock.views.labels)
    first = dock.current.fid
    canvas_extent = qgis_iface.mapCanvas().extent()
    assert canvas_extent.contains(QgsGeometry.fromWkt(dock.current.geometry.wkt).boundingBox()), (
        "zoomed to it"
    )

    press(qtbot, dock, Qt.Key_H)
    press(qtbot, dock, Qt.Key_T)
    press(qtbot, dock, Qt.Key_8)
    press(qtbot, dock, Qt.Key_P)
    press(qtbot, dock, Qt.Key_P)
    press(qtbot, dock, Qt.Key_A)
    press(qtbot, dock, Qt.Key_R)
    press(qtbot, dock, Qt.Key_U)
    rows = stored(mapping)
    assert [r["decision"] for r in rows] == ["accepted", "rejected", "unsure"]
    first_row = rows[0]
    assert first_row["candidate_id"] == first and first_row["reviewer"] == "alice"
    assert (first_row["headwall_highest"], first_row["colour_contrast"], first_row["upslope_retreat"]) == (
        1,
        0,
        1,
    )
    assert first_row["probability"] == 80 and first_row["initiation_period"] == "2016-2017"
    assert first_row["seconds_spent"] is not None and first_row["decided_at"]
    assert rows[1]["probability"] is None and rows[1]["headwall_highest"] == 0, (
        "the form resets per candidate"
    )
    with sqlite3.connect(mapping.path) as conn:
        statuses = dict(conn.execute("SELECT fid, status FROM candidates").fetchall())
    assert statuses[first] == "accepted"
    assert "3 / " in dock.progress_label.text()

    press(qtbot, dock, Qt.Key_Left)
    assert dock.current.fid == rows[2]["candidate_id"]
    assert dock.my_decision == "unsure", "going back shows my decision"
    press(qtbot, dock, Qt.Key_Right, Qt.ShiftModifier)
    assert dock.current.fid not in {r["candidate_id"] for r in rows}, "next undecided"
    dock.shutdown()


def test_year_key_steps_the_main_map_through_the_years(project, qgis_iface, qtbot):
    _mapping, layer = project
    dock = open_dock(qgis_iface, qtbot, layer)
    group = QgsProject.instance().layerTreeRoot().findGroup("Time-lapse")
    press(qtbot, dock, Qt.Key_Y)
    visible = [n.layer().name() for n in group.findLayers() if n.isVisible()]
    assert visible == ["2017"]
    press(qtbot, dock, Qt.Key_Y, Qt.ShiftModifier)
    assert [n.layer().name() for n in group.findLayers() if n.isVisible()] == ["2016"]
    dock.shutdown()


def test_year_views_come_from_tasks_and_only_those_near_stay(project, qgis_iface, qtbot):
    """The views are cut by QGIS tasks ahead of the reviewer (no private thread or timer), and a
    long walk keeps only the views around the current candidate."""
    import threading

    from qgis.core import QgsApplication

    from rts_mapper_plugin.gui.review_dock import PREFETCH

    _mapping, layer = project
    seen = []
    QgsApplication.taskManager().taskAdded.connect(
        lambda task_id: seen.append(QgsApplication.taskManager().task(task_id).description())
    )
    dock = open_dock(qgis_iface, qtbot, layer)
    assert any("year views of candidate" in d for d in seen), seen
    ahead = [i.fid for i in dock.queue[1 : PREFETCH + 1]]
    wait_until(qtbot, lambda: all(fid in dock.views.pixmaps for fid in ahead))
    for _ in range(len(dock.queue) - 1):
        press(qtbot, dock, Qt.Key_Right)
        wait_until(qtbot, dock.views_ready)
        assert len(dock.views.pixmaps) <= PREFETCH + 3, "memory stays flat"
    assert not [t.name for t in threading.enumerate() if "review" in t.name], "no private thread pool"
    dock.shutdown()


def test_an_edited_boundary_is_saved_with_the_decision(project, qgis_iface, qtbot):
    mapping, layer = project
    dock = open_dock(qgis_iface, qtbot, layer)
    fid = dock.current.fid
    press(qtbot, dock, Qt.Key_E)
    assert layer.isEditable() and layer.selectedFeatureIds() == [fid]
    geometry = layer.getFeature(fid).geometry()
    vertex = geometry.vertexAt(0)
    geometry.moveVertex(vertex.x() + 30, vertex.y() + 30, 0)  # what a vertex-tool drag does
    assert layer.changeGeometry(fid, geometry)
    press(qtbot, dock, Qt.Key_A)
    assert not layer.isEditable(), "the edit was committed with the decision"
    row = stored(mapping)[0]
    assert row["edited"] == 1
    reopened = MappingProject.open(mapping.path).features("candidates", "fid = ?", (fid,))
    assert reopened.geometries[0].area == pytest.approx(geometry.area(), rel=1e-6)
    dock.shutdown()


def test_reopening_resumes_and_two_reviewers_are_both_kept(project, qgis_iface, qtbot):
    mapping, layer = project
    dock = open_dock(qgis_iface, qtbot, layer)
    decided = []
    for key in (Qt.Key_A, Qt.Key_R, Qt.Key_A):
        decided.append(dock.current.fid)
        press(qtbot, dock, key)
    dock.shutdown()
    dock.close()

    again = open_dock(qgis_iface, qtbot, layer)
    assert again.index == 3, "resumes at the first candidate alice has not decided"
    again.shutdown()

    bob = open_dock(qgis_iface, qtbot, layer, reviewer="bob")
    assert bob.index == 0
    for key in (Qt.Key_A, Qt.Key_A, Qt.Key_A):
        press(qtbot, bob, key)
    rows = stored(mapping)
    assert sorted((r["reviewer"], r["candidate_id"]) for r in rows) == sorted(
        [("alice", f) for f in decided] + [("bob", f) for f in decided]
    )
    with sqlite3.connect(mapping.path) as conn:
        statuses = dict(conn.execute("SELECT fid, status FROM candidates").fetchall())
    assert statuses[decided[1]] == "conflict" and statuses[decided[0]] == "accepted"

    # the conflicts view: only the disagreement, decided as final
    bob.show_filter.setCurrentIndex(bob.show_filter.findData("conflict"))
    qtbot.mouseClick(bob.start_button, Qt.LeftButton)
    assert [item.fid for item in bob.queue] == [decided[1]]
    press(qtbot, bob, Qt.Key_R)
    with sqlite3.connect(mapping.path) as conn:
        assert (
            conn.execute("SELECT status FROM candidates WHERE fid = ?", (decided[1],)).fetchone()[0]
            == "rejected"
        )
        assert conn.execute("SELECT COUNT(*) FROM reviews WHERE is_final = 1").fetchone()[0] == 1
    bob.shutdown()


def test_shortcuts_are_configurable(project, qgis_iface, qtbot):
    mapping, layer = project
    PlgSettings.load().update(review_shortcuts='{"accept": "K"}')
    dock = open_dock(qgis_iface, qtbot, layer)
    press(qtbot, dock, Qt.Key_A)
    assert stored(mapping) == [], "A is no longer accept"
    press(qtbot, dock, Qt.Key_K)
    assert [r["decision"] for r in stored(mapping)] == ["accepted"]
    assert dock.keys["help"] == "", "the default that K had gives way to the user's own key"
    dock.shutdown()


def test_decisions_survive_a_killed_process(project, tmp_path):
    """A subprocess reviews by key presses and is killed with SIGKILL after N decisions."""
    mapping, layer = project
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("review_worker.py")),
            str(mapping.path),
            layer.customProperty(RUN_PROPERTY),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    decided = 0
    deadline = time.monotonic() + 120
    while decided < 7 and time.monotonic() < deadline:
        line = worker.stdout.readline()
        if not line:
            break
        if line.startswith("decided"):
            decided += 1
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    assert decided == 7, worker.stderr.read()
    rows = stored(MappingProject.open(mapping.path))
    assert len(rows) >= 7, "every decision reported before the kill is in the GeoPackage"


PEEL = ROOT.parent / "shared" / "data" / "real" / "peel"


def test_processing_exports_time_lapse_and_measures_agreement(project, plugin, tmp_path):
    from qgis import processing

    from rts_mapper_plugin.core.review.decisions import Decision, record_decision

    mapping, layer = project
    fids = [f.id() for f in layer.getFeatures()][:2]
    for fid in fids:
        record_decision(mapping, Decision(fid, "alice", "accepted"))
    result = processing.run(
        "rts_mapper:export_timelapse",
        {"PROJECT": str(mapping.path), "STATUS": 0, "SIZE": 64, "OUTPUT": str(tmp_path / "tl")},
    )
    assert result["FILES"] == 4
    assert sorted(p.name for p in (tmp_path / "tl").iterdir()) == sorted(
        f"candidate_{fid}.{ext}" for fid in fids for ext in ("png", "gif")
    )
    if PEEL.exists():
        layers = [str(p) for p in sorted((PEEL / "digitized").glob("expert0[1-3].shp"))]
        result = processing.run("rts_mapper:polygon_agreement", {"LAYERS": layers, "IOU": 0.5, "CELL": 5.0})
        assert 0 < result["MEAN_F1"] <= 1 and 0 < result["FLEISS_KAPPA"] <= 1


def test_enter_and_escape_in_the_note_give_the_keyboard_back(project, qgis_iface, qtbot):
    """N, type, Enter: the note is kept and the next key decides; Escape undoes the typing."""
    mapping, layer = project
    dock = open_dock(qgis_iface, qtbot, layer)
    first = dock.current.fid
    press(qtbot, dock, Qt.Key_N)
    assert QApplication.focusWidget() is dock.form.note
    person.type_text("gully nearby")
    person.press(Qt.Key_Return)
    assert QApplication.focusWidget() is not dock.form.note, "Enter hands the keyboard back"
    person.press(Qt.Key_R)
    row = stored(mapping)[0]
    assert (row["candidate_id"], row["decision"], row["note"]) == (first, "rejected", "gully nearby")

    second = dock.current.fid
    assert dock.form.note.text() == ""
    person.press(Qt.Key_N)
    person.type_text("oops")
    person.press(Qt.Key_Escape)
    assert dock.form.note.text() == "" and QApplication.focusWidget() is not dock.form.note
    person.press(Qt.Key_A)
    rows = {r["candidate_id"]: r for r in stored(mapping)}
    assert rows[second]["decision"] == "accepted" and rows[second]["note"] is None

    person.press(Qt.Key_Left)
    person.press(Qt.Key_Left)
    assert dock.current.fid == first and dock.form.note.text() == "gully nearby"
    person.press(Qt.Key_N)
    person.type_text(" and a pond")
    person.press(Qt.Key_Return)
    rows = {r["candidate_id"]: r for r in stored(mapping)}
    assert rows[first]["note"] == "gully nearby and a pond", "a decided candidate's note is saved at once"
    assert rows[first]["decision"] == "rejected" and len(rows) == 2
    dock.shutdown()


def test_the_shortcuts_key_is_not_qgis_help(project, qgis_iface, qtbot):
    """F1 belongs to QGIS's Help: the dock's list of keys opens with K; a key given to two of
    the dock's actions is refused."""
    _mapping, layer = project
    dock = open_dock(qgis_iface, qtbot, layer)
    assert "F1" not in dock.keys.values()
    seen = []

    def close_it():
        widget = QApplication.activeModalWidget()
        if widget is not None:
            seen.append(widget.windowTitle())
            widget.reject()

    QTimer.singleShot(300, close_it)
    person.press(Qt.Key_K, widget=dock)
    assert seen == ["RTS Mapper review: keyboard shortcuts"]

    from rts_mapper_plugin.gui.review_keys import ShortcutsDialog

    dialog = ShortcutsDialog(dock.keys, dock)
    dialog.show()
    person.click(dialog.editors["unsure"])
    person.press(Qt.Key_A)
    wait_until(qtbot, lambda: dialog.editors["unsure"].keySequence().toString() == "A")
    assert any(p.startswith("A: both") for p in dialog.clashes()), dialog.clashes()
    dialog.close()
    dock.shutdown()


def test_keys_qgis_also_uses_are_the_docks_while_it_has_the_keyboard(project, qgis_iface, qtbot):
    """QGIS binds S (toggle snapping), R (stream digitizing), T (tracing) in its main window: with
    the dock in that window, the dock's S toggles its criterion, and QGIS's action does not fire
    (two application shortcuts on one key would fire neither: "Ambiguous shortcut overload")."""
    from qgis.PyQt.QtWidgets import QAction

    window = qgis_iface.mainWindow()
    window.show()
    fired = []
    for key, text in (("S", "Toggle Snapping"), ("R", "Stream Digitizing")):
        action = QAction(text, window)
        action.setShortcut(key)
        action.triggered.connect(lambda _=False, t=text: fired.append(t))
        window.addAction(action)
    _mapping, layer = project
    dock = open_dock(qgis_iface, qtbot, layer, parent=window)
    first = dock.current.fid
    person.press(Qt.Key_S, widget=dock)
    assert dock.form.criteria["arcuate_shaded_headwall"].isChecked()
    person.press(Qt.Key_R, widget=dock)
    assert dock.current.fid != first, "R rejected the candidate and moved on"
    assert fired == [], "QGIS's own S and R did not fire"
    for action in window.actions():
        window.removeAction(action)
    dock.shutdown()


def test_area_and_perimeter_follow_every_geometry_edit(project, qgis_iface, qtbot):
    """A vertex moved (what the vertex tool does), or the geometry rewritten (the field
    calculator): area_m2 and perimeter_m in the GeoPackage follow; they are read-only in forms."""
    from qgis.core import QgsVectorLayerEditUtils

    mapping, layer = project
    fid = next(layer.getFeatures()).id()
    before = layer.getFeature(fid)
    assert before["area_m2"] == pytest.approx(before.geometry().area(), rel=1e-6)
    assert layer.startEditing()
    vertex = before.geometry().vertexAt(0)
    assert QgsVectorLayerEditUtils(layer).moveVertex(vertex.x() + 25, vertex.y() + 25, fid, 0)
    assert layer.commitChanges(), layer.commitErrors()
    with sqlite3.connect(mapping.path) as conn:
        area, perimeter = conn.execute(
            "SELECT area_m2, perimeter_m FROM candidates WHERE fid = ?", (fid,)
        ).fetchone()
    edited = MappingProject.open(mapping.path).features("candidates", "fid = ?", (fid,)).geometries[0]
    assert area != pytest.approx(before["area_m2"]), "the stored area changed"
    assert area == pytest.approx(edited.area, rel=1e-6) and perimeter == pytest.approx(
        edited.length, rel=1e-6
    )

    assert layer.startEditing()
    shrunk = layer.getFeature(fid).geometry().buffer(-5, 4)
    assert layer.changeGeometry(fid, shrunk)
    assert layer.commitChanges()
    assert layer.getFeature(fid)["area_m2"] == pytest.approx(shrunk.area(), rel=1e-6)
    index = layer.fields().indexOf("area_m2")
    assert layer.editFormConfig().readOnly(index), "nobody types an area by hand"


def test_opening_another_qgis_project_mid_review_is_no_error(project, qgis_iface, qtbot):
    """Project › Open (or New) removes every layer, the reviewed one with them: the dock lets go of
    it without touching a deleted layer (a Python error in QGIS's log, once)."""
    _mapping, layer = project
    dock = open_dock(qgis_iface, qtbot, layer)
    with qtbot.captureExceptions() as raised:
        QgsProject.instance().clear()
        person.settle()
    assert not raised, raised
    assert dock.layer is None and dock.queue == [] and "removed" in dock.position.text()
    person.press(Qt.Key_A, widget=dock)  # a decision key with nothing to decide does nothing
    dock.shutdown()


def test_ctrl_z_takes_back_decisions_and_an_edited_boundary(project, qgis_iface, qtbot):
    """A, then E with a vertex moved and R, then Ctrl+Z twice: the edit and both decisions come
    back undone, the outline as it was, each undo in the GeoPackage at once, and the candidate's
    history under the form says so. The Undo button does the same."""
    mapping, layer = project
    dock = open_dock(qgis_iface, qtbot, layer)
    first = dock.current.fid
    press(qtbot, dock, Qt.Key_A)
    second = dock.current.fid
    outline = layer.getFeature(second).geometry()
    press(qtbot, dock, Qt.Key_E)
    geometry = layer.getFeature(second).geometry()
    vertex = geometry.vertexAt(0)
    geometry.moveVertex(vertex.x() + 30, vertex.y() + 30, 0)  # what a vertex-tool drag does
    assert layer.changeGeometry(second, geometry)
    press(qtbot, dock, Qt.Key_R)
    assert [r["decision"] for r in stored(mapping)] == ["accepted", "rejected"]

    press(qtbot, dock, Qt.Key_Z, Qt.ControlModifier)
    assert [r["candidate_id"] for r in stored(mapping)] == [first], "the rejection is taken back"
    assert dock.current.fid == second, "the undone candidate is shown again"
    assert dock.my_decision is None
    back = MappingProject.open(mapping.path).features("candidates", "fid = ?", (second,)).geometries[0]
    assert back.area == pytest.approx(outline.area(), rel=1e-6), "the outline as it was"
    assert layer.getFeature(second).geometry().area() == pytest.approx(outline.area(), rel=1e-6)
    assert "rejected, boundary edited [undone]" in dock.history.text()
    assert "undo → undecided" in dock.history.text()

    person.click(next(b for b in dock.findChildren(QPushButton) if b.text() == "Undo (Ctrl+Z)"))
    assert stored(mapping) == [] and dock.current.fid == first
    with sqlite3.connect(mapping.path) as conn:
        assert (
            conn.execute("SELECT status FROM candidates WHERE fid = ?", (first,)).fetchone()[0] == "pending"
        )
        actions = [a for (a,) in conn.execute("SELECT action FROM review_log ORDER BY fid")]
    assert actions == ["decision", "decision", "undo", "undo"], "the log only grows"
    dock.shutdown()


def test_the_year_stack_suggests_and_only_g_takes_it(project, qgis_iface, qtbot):
    """A truth slump's suggestion (initiation period, growth) is shown beside the form, read with
    the year views in their task; the form stays empty until G, and A then stores it."""
    mapping, layer = project
    dock = open_dock(qgis_iface, qtbot, layer)
    suggested = None
    for _ in range(len(dock.queue)):  # the first candidate the years say something about
        wait_until(qtbot, lambda: dock.current.fid in dock.views.suggestions)
        suggested = dock.views.suggestions[dock.current.fid]
        if suggested.initiation_period is not None:
            break
        press(qtbot, dock, Qt.Key_Right)
    assert suggested is not None and suggested.initiation_period is not None
    hint = dock.form.hint.text()
    assert hint.startswith("Suggested (G takes it): initiation " + suggested.initiation_period), hint
    assert dock.form.values()["initiation_period"] is None, "never set without a key press"
    press(qtbot, dock, Qt.Key_G)
    assert dock.form.values()["initiation_period"] == suggested.initiation_period
    if suggested.grew is not None:
        assert dock.form.values()["criteria"]["upslope_retreat"] is suggested.grew
    fid = dock.current.fid
    press(qtbot, dock, Qt.Key_A)
    row = next(r for r in stored(mapping) if r["candidate_id"] == fid)
    assert row["initiation_period"] == suggested.initiation_period
    dock.shutdown()


def test_b_redraws_the_outline_from_the_probability_and_shift_b_keeps_it(project, qgis_iface, qtbot):
    """B shows the outline at the slider's threshold on the map and over the year views; [ grows
    it, ] shrinks it; Shift+B keeps it, A saves it as the edited boundary, Ctrl+Z puts the
    candidate's outline back. B twice drops it and changes nothing."""
    mapping, layer = project
    dock = open_dock(qgis_iface, qtbot, layer)
    fid = dock.current.fid
    before = dock.views.labels[0].pixmap().toImage()
    press(qtbot, dock, Qt.Key_B)
    assert dock.redrawn is not None and dock.redraw_band.asGeometry().area() > 0
    assert dock.views.labels[0].pixmap().toImage() != before, "drawn over the year views"
    at_50 = dock.redrawn.area
    press(qtbot, dock, Qt.Key_BracketLeft)
    press(qtbot, dock, Qt.Key_BracketLeft)
    assert dock.threshold_slider.value() == 40 and dock.redrawn.area > at_50, "a lower threshold: larger"
    press(qtbot, dock, Qt.Key_B)
    assert dock.redrawn is None and dock.redraw_band.asGeometry().isEmpty() and not layer.isEditable()
    assert dock.views.labels[0].pixmap().toImage() == before, "dropped: the views as they were"

    press(qtbot, dock, Qt.Key_B)
    kept = dock.redrawn
    press(qtbot, dock, Qt.Key_B, Qt.ShiftModifier)
    assert layer.isEditable() and fid in layer.editBuffer().changedGeometries()
    press(qtbot, dock, Qt.Key_A)
    (row,) = stored(mapping)
    assert row["edited"] == 1
    saved = MappingProject.open(mapping.path).features("candidates", "fid = ?", (fid,)).geometries[0]
    assert saved.symmetric_difference(kept).area < 1e-6 * kept.area, "the kept outline is the candidate's now"
    press(qtbot, dock, Qt.Key_Z, Qt.ControlModifier)
    back = MappingProject.open(mapping.path).features("candidates", "fid = ?", (fid,)).geometries[0]
    assert stored(mapping) == [] and back.symmetric_difference(kept).area > 0.01 * kept.area, "undone"
    dock.shutdown()


def test_the_completeness_check_by_keyboard(project, qgis_iface, qtbot):
    """Completeness check…: the sample dialog (3 plots per stratum), then the plots in the same
    views: E and a drawn outline, A saves the plot with it; R says none; once every stratum has
    two answers the dock shows the estimate of what is still unmapped."""
    from rts_mapper_plugin.core.review.completeness import plots_of

    mapping, layer = project
    dock = open_dock(qgis_iface, qtbot, layer)

    QTimer.singleShot(200, lambda: _answer_sample_dialog(qtbot))
    person.click(next(b for b in dock.findChildren(QPushButton) if b.text() == "Completeness check…"))
    assert dock.plots is not None and dock.queue, "stepping through plots"
    wait_until(qtbot, dock.views_ready)
    assert dock.position.text().startswith("<b>Plot 1 / ")
    plot = dock.current
    press(qtbot, dock, Qt.Key_E)
    finds = dock.plots.finds
    assert finds.isEditable(), "QGIS's add-polygon tool on the finds layer"
    from qgis.core import QgsFeature

    centre = plot.geometry.centroid
    feature = QgsFeature(finds.fields())
    feature.setGeometry(QgsGeometry.fromWkt(centre.buffer(20).wkt))  # what drawing a polygon adds
    assert finds.addFeature(feature)
    press(qtbot, dock, Qt.Key_A)
    saved = {p.fid: p for p in plots_of(mapping, dock.run_id)}
    assert saved[plot.fid].found == 1 and saved[plot.fid].reviewer == "alice"
    assert not finds.isEditable() and finds.featureCount() == 1, "the outline is the project's now"
    assert dock.current.fid != plot.fid, "on to the next plot"
    for _ in range(len(dock.queue)):
        if all(p.found is not None for p in plots_of(mapping, dock.run_id)):
            break
        press(qtbot, dock, Qt.Key_R)
    assert dock.progress_label.text().startswith("Still unmapped: "), dock.progress_label.text()
    assert "still unmapped where the model flagged nothing" in dock.progress_label.text()
    dock.shutdown()


def _answer_sample_dialog(qtbot):
    from qgis.PyQt.QtWidgets import QDialogButtonBox

    from rts_mapper_plugin.gui.completeness import SampleDialog

    dialog = QApplication.activeModalWidget()
    assert isinstance(dialog, SampleDialog), dialog
    dialog.size.setValue(3)
    person.click(dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.Ok))
