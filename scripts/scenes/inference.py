"""Scene: the Inference dock in the real QGIS desktop, driven as a user would.

Loads the demo project's time-lapse, runs inference from the dock (screenshot while it runs),
cancels, runs again to the end (screenshot with candidates over the imagery), then edits one
candidate's boundary with QGIS's own vertex tool, dragging a vertex with the mouse (screenshot),
saves the edit and checks it reached the GeoPackage. Runs inside QGIS (``qgis --code``).
"""

import qgis.utils
from qgis.core import QgsGeometry, QgsPointXY, QgsProject
from qgis.PyQt.QtCore import Qt, QTimer
from scene_kit import Scene, canvas_point, drag, open_demo_project

scene = Scene(SCENE_ARGS)  # noqa: F821 (injected by the launcher)
ARGS = scene.args


def start():
    plugin = open_demo_project(ARGS)
    plugin.actions["inference"].setChecked(True)
    dock = plugin.docks["inference"]
    scene.dock = dock
    qgis.utils.iface.mainWindow().resizeDocks([dock], [480], Qt.Horizontal)
    dock.project_picker.set_path(ARGS["project"])
    dock.model_widget.setFilePath(ARGS["model"])
    scene.step = 1
    dock.run_button.click()
    scene.wait_for(lambda: dock.progress.value() >= 25, during_run)


def during_run():
    scene.shot("inference_progress")
    scene.step = 2
    scene.dock.cancel_button.click()
    scene.wait_for(lambda: scene.dock.outcome is not None, after_cancel)


def after_cancel():
    dock = scene.dock
    scene.report["cancel_outcome"] = dock.outcome
    scene.report["layers_after_cancel"] = len(QgsProject.instance().mapLayers())
    scene.step = 3
    dock.run_button.click()
    scene.wait_for(lambda: dock.outcome == "succeeded", after_run)


def after_run():
    dock = scene.dock
    iface = qgis.utils.iface
    scene.report["run"] = {"candidates": dock.last_run.candidates, "status": dock.status.text()}
    candidates = dock.last_layers[0]
    biggest = max(candidates.getFeatures(), key=lambda f: f["area_m2"])
    scene.fid = biggest.id()
    box = biggest.geometry().boundingBox()
    box.grow(max(box.width(), box.height()) * 1.5)
    iface.mapCanvas().setExtent(box)
    iface.mapCanvas().refresh()
    scene.later(2500, show_candidates)


def show_candidates():
    scene.shot("inference_candidates")
    iface = qgis.utils.iface
    candidates = scene.dock.last_layers[0]
    iface.setActiveLayer(candidates)
    candidates.startEditing()
    iface.actionVertexTool().trigger()
    scene.before = QgsGeometry(candidates.getFeature(scene.fid).geometry())
    scene.later(800, drag_vertex)


def drag_vertex(attempt=1):
    """Drag the candidate's northernmost vertex 40 m north with the real vertex tool.

    The vertex tool finds vertices through a snapping index that QGIS builds in the background,
    so the first drags can miss; a user would simply try again, and so does this scene.
    """
    north = max(scene.before.vertices(), key=lambda v: v.y())
    scene.report["dragged_vertex"] = [north.x(), north.y()]
    drag(
        canvas_point(QgsPointXY(north.x(), north.y())),
        canvas_point(QgsPointXY(north.x(), north.y() + 40)),
    )
    scene.later(1200, lambda: check_drag(attempt))


def check_drag(attempt):
    candidates = scene.dock.last_layers[0]
    moved = candidates.getFeature(scene.fid).geometry().area() != scene.before.area()
    scene.report["drag_attempts"] = attempt
    if moved or attempt >= 8:
        zoom_to_edit()
    else:
        scene.later(1000, lambda: drag_vertex(attempt + 1))


def zoom_to_edit():
    box = scene.before.boundingBox()
    box.grow(max(box.width(), box.height()) * 0.3)
    qgis.utils.iface.mapCanvas().setExtent(box)  # close enough to see the dragged vertex
    qgis.utils.iface.mapCanvas().refresh()
    scene.later(2000, after_edit)


def after_edit():
    scene.shot("inference_vertex_edit")
    candidates = scene.dock.last_layers[0]
    edited = candidates.getFeature(scene.fid).geometry()
    scene.report["area_change_m2"] = round(edited.area() - scene.before.area(), 1)
    scene.report["committed"] = candidates.commitChanges()
    from rts_mapper_plugin.core import gpkg
    from rts_mapper_plugin.core.project.store import MappingProject

    with MappingProject.open(ARGS["project"]).connection() as conn:
        blob = conn.execute("SELECT geom FROM candidates WHERE fid = ?", (scene.fid,)).fetchone()[0]
    stored = gpkg.decode_geometry(blob)
    scene.report["stored_area_change_m2"] = round(stored.area - scene.before.area(), 1)
    qgis.utils.iface.actionPan().trigger()
    scene.done()


QTimer.singleShot(4000, lambda: scene.later(0, start))
