"""Scene: the Inference dock on a local Dask cluster in the real QGIS desktop. The demo region's
2019 image, Cluster: a local cluster of two worker processes (started by QGIS's own Python, as
QGIS itself is no Python interpreter), Run; the dashboard link while it runs (screenshot), the
candidates on the map at the end (screenshot). Arguments: project, model (the demo's).
Screenshots: cluster_running, cluster_done.
"""

import qgis.utils
from qgis.PyQt.QtCore import Qt
from scene_kit import Scene, open_demo_project

scene = Scene(SCENE_ARGS)  # noqa: F821 (injected by the launcher)
ARGS = scene.args


def start():
    plugin = open_demo_project(ARGS)
    plugin.actions["inference"].setChecked(True)
    dock = plugin.docks["inference"]
    scene.dock = dock
    qgis.utils.iface.mainWindow().resizeDocks([dock], [520], Qt.Horizontal)
    dock.project_picker.set_path(ARGS["project"])
    dock.model_widget.setFilePath(ARGS["model"])
    dock.cluster_combo.setCurrentIndex(dock.cluster_combo.findData("local:2"))
    scene.step = 1
    dock.run_button.click()
    scene.wait_for(lambda: dock.dashboard.text() != "" or dock.outcome is not None, running, timeout_s=300)


def running():
    scene.report["dashboard"] = scene.dock.dashboard.text()
    scene.shot("cluster_running")
    scene.step = 2
    scene.wait_for(lambda: scene.dock.outcome is not None, done, timeout_s=900)


def done():
    dock = scene.dock
    scene.report["outcome"] = dock.outcome
    scene.report["status"] = dock.status.text()
    scene.report["device"] = dock.last_run.device if getattr(dock, "last_run", None) else None
    scene.later(1500, lambda: (scene.shot("cluster_done"), scene.done()))


scene.later(3000, start)
