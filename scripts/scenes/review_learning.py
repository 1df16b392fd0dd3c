"""Scene: the review that learns, by keyboard in the real QGIS desktop (issue 19).

A small synthetic project with five years and a probability raster. The reviewer decides six
candidates by keys (A / R), then orders by expected yield (the dock says why each candidate is
where it is), takes the year stack's suggestion with G, redraws an outline from the probability
with B and [ (live on the map and over the year views), keeps it with Shift+B, decides, takes it
back with Ctrl+Z (the history under the form), and runs a completeness check: the sample dialog,
a plot where a slump is outlined with QGIS's own add-polygon tool (mouse clicks on the map), A,
then R for the plots with nothing, until the dock shows the estimate.

Arguments: root (the repository), work (an empty folder). Screenshots: review_yield,
review_suggestion, review_redraw, review_undo, completeness_dialog, completeness_find,
review_completeness.
"""

import sys
from pathlib import Path

import qgis.utils
from qgis.core import QgsPointXY, QgsProject, QgsTemporalNavigationObject
from qgis.PyQt.QtCore import QEvent, QPoint, QPointF, Qt
from qgis.PyQt.QtGui import QMouseEvent
from qgis.PyQt.QtTest import QTest
from qgis.PyQt.QtWidgets import QApplication, QDialogButtonBox, QPushButton
from scene_kit import Scene, canvas_point, mouse, when_modal

scene = Scene(SCENE_ARGS)  # noqa: F821 (injected by the launcher)
ARGS = scene.args
REVIEWER = "field-analyst"


def start():
    sys.path.insert(0, ARGS["root"])
    from rts_mapper_plugin.gui.project_picker import current_project
    from rts_mapper_plugin.qgis_layers.layers import candidates_layer
    from rts_mapper_plugin.qgis_layers.timelapse import load_time_lapse
    from rts_mapper_plugin.toolbelt.preferences import PlgSettings
    from tests.data.fixtures import review_project

    iface = qgis.utils.iface
    iface.mainWindow().setGeometry(QApplication.primaryScreen().availableGeometry())
    project, _region, run_id = review_project(
        Path(ARGS["work"]) / "desk", size=600, seed=7, with_probability=True
    )
    PlgSettings.load().update(reviewer_name=REVIEWER, review_order="id")
    current_project().set(str(project.path))
    load_time_lapse(project, QgsProject.instance(), iface.mapCanvas().temporalController())
    iface.mapCanvas().temporalController().setNavigationMode(QgsTemporalNavigationObject.NavigationOff)
    layer = candidates_layer(project.path, run_id, "Candidates 2019, iteration 1")
    QgsProject.instance().addMapLayer(layer)
    plugin = qgis.utils.plugins["rts_mapper_plugin"]
    plugin.actions["review"].setChecked(True)
    review = plugin.docks["review"]
    iface.mainWindow().resizeDocks([review], [560], Qt.Horizontal)
    review.set_combo.setCurrentIndex(review.set_combo.findData(run_id))
    review.reviewer.setText(REVIEWER)
    review.start_button.click()
    scene.review, scene.project, scene.decided = review, project, 0
    scene.step = 1
    scene.wait_for(review.views_ready, decide_some)


def key(k, modifier=Qt.NoModifier):
    QApplication.setActiveWindow(qgis.utils.iface.mainWindow())
    target = QApplication.focusWidget() or scene.review
    QTest.keyClick(target, k, modifier)


def decide_some():
    """Three slumps accepted, then → past the rest of the slumps to three look-alikes, rejected
    (by keys, as the reviewer judges them: the truth slumps have p 0.8, the look-alikes 0.6)."""
    review = scene.review
    if scene.decided >= 6:
        scene.later(300, order_by_yield)
        return
    slump = review.current.mean_prob > 0.7
    if scene.decided < 3 and slump:
        key(Qt.Key_A)
    elif scene.decided >= 3 and not slump:
        key(Qt.Key_R)
    else:
        key(Qt.Key_Right)
        scene.later(120, decide_some)
        return
    scene.decided += 1
    scene.later(250, decide_some)


def scroll_dock(to_end: bool = True) -> None:
    """Scroll the dock as a person would, to show what is under the year views."""
    from qgis.PyQt.QtWidgets import QScrollArea

    area = scene.review.findChild(QScrollArea)
    if area is not None:
        bar = area.verticalScrollBar()
        bar.setValue(bar.maximum() if to_end else 0)


def order_by_yield():
    review = scene.review
    scene.step = 2
    review.order.setCurrentIndex(review.order.findData("yield"))
    review.start_button.click()
    review.setFocus()
    scene.report["yield_why"] = review.current.why
    scene.wait_for(review.views_ready, lambda: scene.later(800, shot_yield))


def shot_yield():
    scene.shot("review_yield")
    scene.step = 3
    scene.tries = 0
    find_suggestion()


def find_suggestion():
    review = scene.review
    fid = review.current.fid
    suggestion = review.views.suggestions.get(fid)
    if suggestion is None:
        scene.later(300, find_suggestion)
        return
    if suggestion.initiation_period is None and scene.tries < 10:
        scene.tries += 1
        key(Qt.Key_Right)
        scene.later(400, find_suggestion)
        return
    key(Qt.Key_G)
    scroll_dock()
    scene.report["suggestion"] = suggestion.text()
    scene.report["form_period"] = review.form.values()["initiation_period"]
    scene.later(800, shot_suggestion)


def shot_suggestion():
    scene.shot("review_suggestion")
    scene.step = 4
    key(Qt.Key_B)
    key(Qt.Key_BracketLeft)
    key(Qt.Key_BracketLeft)
    scene.report["redraw_threshold"] = scene.review.threshold_slider.value()
    scene.report["redrawn_m2"] = (
        round(scene.review.redrawn.area) if scene.review.redrawn is not None else None
    )
    scene.report["candidate_m2"] = round(scene.review.current.geometry.area)
    scene.later(1200, shot_redraw)


def shot_redraw():
    scene.shot("review_redraw")
    scene.step = 5
    scene.undo_fid = scene.review.current.fid
    key(Qt.Key_B, Qt.ShiftModifier)
    key(Qt.Key_A)
    scene.later(600, undo)


def undo():
    key(Qt.Key_Z, Qt.ControlModifier)
    review = scene.review
    scene.report["after_undo"] = {
        "shown": review.current.fid,
        "undone": scene.undo_fid,
        "history": review.history.text(),
    }
    scene.later(1200, shot_undo)


def shot_undo():
    scene.shot("review_undo")
    scroll_dock(to_end=False)
    scene.step = 6
    button = next(b for b in scene.review.findChildren(QPushButton) if b.text() == "Completeness check…")
    when_modal(scene, fill_sample_dialog)
    QTest.mouseClick(button, Qt.LeftButton)


def fill_sample_dialog(dialog):
    dialog.size.setValue(4)
    dialog.move(300, 200)
    scene.shot("completeness_dialog")
    dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.Ok).click()
    scene.later(500, lambda: scene.wait_for(scene.review.views_ready, outline_a_find))


def outline_a_find():
    """E, then a polygon clicked on the map inside the plot, right click to finish, A."""
    scene.step = 7
    review = scene.review
    scene.report["plots"] = len(review.queue)
    key(Qt.Key_E)
    centre = review.current.geometry.centroid
    for dx, dy in ((-25, -20), (20, -25), (30, 15), (-5, 30), (-30, 10)):
        point = canvas_point(QgsPointXY(centre.x + dx, centre.y + dy))
        mouse(QEvent.MouseMove, point)
        mouse(QEvent.MouseButtonPress, point)
        mouse(QEvent.MouseButtonRelease, point)
        QApplication.processEvents()
    right_click(canvas_point(QgsPointXY(centre.x - 30, centre.y + 10)))
    scene.report["drawn"] = (
        len(review.plots.finds.editBuffer().addedFeatures()) if review.plots.finds.editBuffer() else 0
    )
    scene.later(1200, lambda: (scene.shot("completeness_find"), save_plot()))


def right_click(point: QPoint) -> None:
    canvas = qgis.utils.iface.mapCanvas()
    for kind in (QEvent.MouseButtonPress, QEvent.MouseButtonRelease):
        event = QMouseEvent(
            kind,
            QPointF(point),
            Qt.RightButton,
            Qt.RightButton if kind == QEvent.MouseButtonPress else Qt.NoButton,
            Qt.NoModifier,
        )
        QApplication.sendEvent(canvas.viewport(), event)


def save_plot():
    scene.review.setFocus()
    key(Qt.Key_A)
    scene.later(400, nothing_in_the_rest)


def nothing_in_the_rest():
    review = scene.review
    if review.progress_label.text().startswith("Still unmapped") or scene.decided > 60:
        scene.later(1000, finish)
        return
    scene.decided += 1
    key(Qt.Key_R)
    scene.later(250, nothing_in_the_rest)


def finish():
    review = scene.review
    scene.report["estimate"] = review.progress_label.text()
    with scene.project.connection() as conn:
        scene.report["answered"] = conn.execute(
            "SELECT COUNT(*), SUM(found) FROM completeness_plots WHERE found IS NOT NULL"
        ).fetchone()[:]
    scene.shot("review_completeness")
    scene.done()


scene.later(3000, start)
