"""Scene: the Inference dock in the real QGIS desktop, driven as a user would.

Loads the demo project's time-lapse, runs inference from the dock (screenshot while it runs),
cancels, runs again to the end (screenshot with candidates over the imagery), then edits one
candidate's boundary with QGIS's own vertex tool, dragging a vertex with the mouse (screenshot),
saves the edit and checks it reached the GeoPackage. Runs inside QGIS (``qgis --code``).
"""

import json
import traceback
from pathlib import Path

import qgis.utils
from qgis.core import QgsGeometry, QgsPointXY, QgsProject, QgsTemporalNavigationObject
from qgis.PyQt.QtCore import QEvent, QPoint, QPointF, Qt, QTimer
from qgis.PyQt.QtGui import QMouseEvent
from qgis.PyQt.QtWidgets import QApplication

ARGS = SCENE_ARGS  # noqa: F821 (injected by the launcher)
SHOTS = Path(ARGS["shots"])
state = {"report": {}, "step": 0}


def done(**report):
    with open(ARGS["ready"], "w", encoding="utf-8") as handle:
        json.dump({**state["report"], **report, "settle_s": 0.5}, handle)


def shot(name):
    QApplication.processEvents()
    SHOTS.mkdir(parents=True, exist_ok=True)
    QApplication.primaryScreen().grabWindow(0).save(str(SHOTS / f"{name}.png"))
    state["report"].setdefault("screenshots", []).append(f"{name}.png")


def later(ms, function):
    def guarded():
        try:
            function()
        except Exception:
            done(error=traceback.format_exc())

    QTimer.singleShot(ms, guarded)


def wait_for(condition, then, ms=250, timeout_s=300, waited=0.0):
    dock = state.get("dock")
    if condition():
        later(300, then)
    elif dock is not None and dock.outcome == "failed":
        done(error=f"step {state['step']}: the run failed: {dock.status.text()}")
    elif waited > timeout_s:
        status = dock.status.text() if dock is not None else ""
        done(error=f"timed out waiting in step {state['step']} ({status})")
    else:
        later(ms, lambda: wait_for(condition, then, ms, timeout_s, waited + ms / 1000))


def start():
    iface = qgis.utils.iface
    plugin = qgis.utils.plugins["rts_mapper_plugin"]
    window = iface.mainWindow()
    window.setGeometry(QApplication.primaryScreen().availableGeometry())
    from rts_mapper_plugin.core.project import MappingProject
    from rts_mapper_plugin.gui.timelapse import load_time_lapse
    from rts_mapper_plugin.toolbelt.preferences import PlgSettings

    PlgSettings.load().update(project_gpkg=ARGS["project"], model_path=ARGS["model"])
    load_time_lapse(
        MappingProject.open(ARGS["project"]), QgsProject.instance(), iface.mapCanvas().temporalController()
    )
    for node in QgsProject.instance().layerTreeRoot().findGroup("Time-lapse").findLayers():
        node.setItemVisibilityChecked(node.layer().name() == "2019")
    iface.mapCanvas().temporalController().setNavigationMode(QgsTemporalNavigationObject.NavigationOff)
    iface.mapCanvas().setExtent(QgsProject.instance().mapLayersByName("2019")[0].extent())
    iface.mapCanvas().refresh()
    plugin.actions["inference"].setChecked(True)
    dock = plugin.docks["inference"]
    state["dock"] = dock
    window.resizeDocks([dock], [480], Qt.Horizontal)
    dock.project_picker.set_path(ARGS["project"])
    dock.model_widget.setFilePath(ARGS["model"])
    state["step"] = 1
    dock.run_button.click()
    wait_for(lambda: dock.progress.value() >= 25, during_run)


def during_run():
    shot("inference_progress")
    state["step"] = 2
    state["dock"].cancel_button.click()
    wait_for(lambda: state["dock"].outcome is not None, after_cancel)


def after_cancel():
    dock = state["dock"]
    state["report"]["cancel_outcome"] = dock.outcome
    state["report"]["layers_after_cancel"] = len(QgsProject.instance().mapLayers())
    state["step"] = 3
    dock.run_button.click()
    wait_for(lambda: dock.outcome == "succeeded", after_run)


def after_run():
    dock = state["dock"]
    iface = qgis.utils.iface
    state["report"]["run"] = {"candidates": dock.last_run.candidates, "status": dock.status.text()}
    candidates = dock.last_layers[0]
    biggest = max(candidates.getFeatures(), key=lambda f: f["area_m2"])
    state["fid"] = biggest.id()
    box = biggest.geometry().boundingBox()
    box.grow(max(box.width(), box.height()) * 1.5)
    iface.mapCanvas().setExtent(box)
    iface.mapCanvas().refresh()
    later(2500, show_candidates)


def show_candidates():
    shot("inference_candidates")
    iface = qgis.utils.iface
    candidates = state["dock"].last_layers[0]
    iface.setActiveLayer(candidates)
    candidates.startEditing()
    iface.actionVertexTool().trigger()
    state["before"] = QgsGeometry(candidates.getFeature(state["fid"]).geometry())
    later(800, drag_vertex)


def canvas_point(map_point):
    transform = qgis.utils.iface.mapCanvas().getCoordinateTransform()
    pixel = transform.transform(map_point)
    return QPoint(round(pixel.x()), round(pixel.y()))


def mouse(kind, point, buttons):
    canvas = qgis.utils.iface.mapCanvas()
    button = Qt.LeftButton if kind != QEvent.MouseMove else Qt.NoButton
    event = QMouseEvent(kind, QPointF(point), button, buttons, Qt.NoModifier)
    QApplication.sendEvent(canvas.viewport(), event)


def drag_vertex(attempt=1):
    """Drag the candidate's northernmost vertex 40 m north with the real vertex tool.

    The vertex tool finds vertices through a snapping index that QGIS builds in the background,
    so the first drags can miss; a user would simply try again, and so does this scene.
    """
    geometry = state["before"]
    vertices = list(geometry.vertices())
    north = max(vertices, key=lambda v: v.y())
    start = canvas_point(QgsPointXY(north.x(), north.y()))
    end = canvas_point(QgsPointXY(north.x(), north.y() + 40))
    state["report"]["dragged_vertex"] = [north.x(), north.y()]
    mouse(QEvent.MouseMove, start, Qt.NoButton)
    QApplication.processEvents()
    mouse(QEvent.MouseButtonPress, start, Qt.LeftButton)
    mouse(QEvent.MouseButtonRelease, start, Qt.NoButton)  # the vertex tool picks on click...
    QApplication.processEvents()
    for step in range(1, 11):
        middle = start + (end - start) * step / 10
        mouse(QEvent.MouseMove, middle, Qt.NoButton)
        QApplication.processEvents()
    mouse(QEvent.MouseButtonPress, end, Qt.LeftButton)  # ...and drops on the second click
    mouse(QEvent.MouseButtonRelease, end, Qt.NoButton)
    later(1200, lambda: check_drag(attempt))


def check_drag(attempt):
    candidates = state["dock"].last_layers[0]
    moved = candidates.getFeature(state["fid"]).geometry().area() != state["before"].area()
    state["report"]["drag_attempts"] = attempt
    if moved or attempt >= 8:
        zoom_to_edit()
    else:
        later(1000, lambda: drag_vertex(attempt + 1))


def zoom_to_edit():
    box = state["before"].boundingBox()
    box.grow(max(box.width(), box.height()) * 0.3)
    qgis.utils.iface.mapCanvas().setExtent(box)  # close enough to see the dragged vertex
    qgis.utils.iface.mapCanvas().refresh()
    later(2000, after_edit)


def after_edit():
    shot("inference_vertex_edit")
    candidates = state["dock"].last_layers[0]
    edited = candidates.getFeature(state["fid"]).geometry()
    state["report"]["area_change_m2"] = round(edited.area() - state["before"].area(), 1)
    state["report"]["committed"] = candidates.commitChanges()
    from rts_mapper_plugin.core import gpkg
    from rts_mapper_plugin.core.project import MappingProject

    with MappingProject.open(ARGS["project"]).connection() as conn:
        blob = conn.execute("SELECT geom FROM candidates WHERE fid = ?", (state["fid"],)).fetchone()[0]
    stored = gpkg.decode_geometry(blob)
    state["report"]["stored_area_change_m2"] = round(stored.area - state["before"].area(), 1)
    qgis.utils.iface.actionPan().trigger()
    done()


QTimer.singleShot(4000, lambda: later(0, start))
