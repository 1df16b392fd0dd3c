"""Scene: a reviewer goes through 50 candidates in the real QGIS desktop by keyboard alone.

Runs inference from the Inference dock to get a candidate layer, opens the Review dock, then
only key presses: criteria (H C S T), probability digits, initiation period (P), years on the
main map (Y), A / R / U to decide and move on, E to edit one boundary, whose vertex is then
dragged with QGIS's own vertex tool (the one mouse gesture) before A saves it with the decision.
Screenshots along the way; the report says how many decisions the GeoPackage holds. The
launcher then kills QGIS with SIGKILL and counts them again (``kill_after``).
"""

import sqlite3

import qgis.utils
from qgis.core import QgsGeometry, QgsPointXY
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtTest import QTest
from qgis.PyQt.QtWidgets import QApplication
from scene_kit import Scene, canvas_point, drag, open_demo_project

scene = Scene(SCENE_ARGS)  # noqa: F821 (injected by the launcher)
ARGS = scene.args
DECISIONS = 50
EDIT_AT = 6
SHOT_AT = 3


def start():
    plugin = open_demo_project(ARGS)
    scene.plugin = plugin
    plugin.actions["inference"].setChecked(True)
    dock = plugin.docks["inference"]
    scene.dock = dock
    dock.project_picker.set_path(ARGS["project"])
    dock.model_widget.setFilePath(ARGS["model"])
    dock.run_button.click()
    scene.wait_for(lambda: dock.outcome == "succeeded", open_review)


def open_review():
    plugin = scene.plugin
    layer = scene.dock.last_layers[0]
    plugin.actions["inference"].setChecked(False)
    plugin.actions["review"].setChecked(True)
    review = plugin.docks["review"]
    qgis.utils.iface.mainWindow().resizeDocks([review], [520], Qt.Horizontal)
    review.set_combo.setCurrentIndex(review.set_combo.findData(layer.customProperty("rts_mapper/run_id")))
    review.reviewer.setText("field-analyst")
    review.start_button.click()
    review.setFocus()
    scene.review = review
    scene.layer = layer
    scene.decided = 0
    scene.step = 1
    scene.wait_for(review.views_ready, lambda: decide_next())


def key(k, modifier=Qt.NoModifier):
    # Xvfb has no window manager to make QGIS the active window, as a desktop would:
    # Qt matches shortcuts only in the active window.
    QApplication.setActiveWindow(qgis.utils.iface.mainWindow())
    target = QApplication.focusWidget() or scene.review
    QTest.keyClick(target, k, modifier)


def decide_next():
    review = scene.review
    if scene.decided >= DECISIONS or review.current is None:
        scene.later(500, finish)
        return
    n = scene.decided
    if n == EDIT_AT:
        edit_boundary()
        return
    if review.current.mean_prob > 0.7:
        for k in (Qt.Key_H, Qt.Key_S, Qt.Key_T) if n % 3 else (Qt.Key_H, Qt.Key_C):
            key(k)
        key(Qt.Key_7 + n % 3)
        for _ in range(1 + n % 4):
            key(Qt.Key_P)
        decision = Qt.Key_A
    else:
        key(Qt.Key_3)
        decision = Qt.Key_U if n % 5 == 0 else Qt.Key_R
    if n == SHOT_AT:
        key(Qt.Key_Y)
        key(Qt.Key_Y)
        scene.later(1500, lambda: (scene.shot("review_dock"), press_decision(decision)))
        return
    press_decision(decision)


def press_decision(decision):
    key(decision)
    scene.decided += 1
    scene.later(120, decide_next)


def edit_boundary():
    review = scene.review
    scene.fid = review.current.fid
    key(Qt.Key_H)
    key(Qt.Key_9)
    key(Qt.Key_E)
    scene.before = QgsGeometry(scene.layer.getFeature(scene.fid).geometry())
    scene.later(1500, drag_vertex)


def drag_vertex(attempt=1):
    north = max(scene.before.vertices(), key=lambda v: v.y())
    drag(canvas_point(QgsPointXY(north.x(), north.y())), canvas_point(QgsPointXY(north.x(), north.y() + 30)))
    scene.later(1000, lambda: check_drag(attempt))


def check_drag(attempt):
    moved = scene.layer.getFeature(scene.fid).geometry().area() != scene.before.area()
    scene.report["drag_attempts"] = attempt
    if not moved and attempt < 8:
        scene.later(800, lambda: drag_vertex(attempt + 1))
        return
    scene.report["edit_area_change_m2"] = round(
        scene.layer.getFeature(scene.fid).geometry().area() - scene.before.area(), 1
    )
    scene.shot("review_vertex_edit")
    scene.review.setFocus()
    press_decision(Qt.Key_A)


def finish():
    with sqlite3.connect(ARGS["project"]) as conn:
        rows = conn.execute(
            "SELECT COUNT(*), SUM(edited) FROM reviews WHERE reviewer = 'field-analyst'"
        ).fetchone()
    scene.report.update(
        decisions_pressed=scene.decided,
        decisions_stored=rows[0],
        edited_stored=rows[1],
        progress=scene.review.progress_label.text(),
        kill_after=True,
        project=ARGS["project"],
    )
    scene.done()


QTimer.singleShot(4000, lambda: scene.later(0, start))
