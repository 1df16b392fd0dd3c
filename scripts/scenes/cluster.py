"""Scene: the Inference dock on a local Dask cluster in the real QGIS desktop. The demo region's
2019 image, Cluster: a local cluster of two worker processes (started by QGIS's own Python, as
QGIS itself is no Python interpreter), Run; the dashboard link while it runs (screenshot), the
candidates on the map at the end (screenshot). Then RTS Mapper › Prepare imagery… from the
menu: the region's two 2019 scenes, Cluster: a local cluster of two, Run; the dashboard link and
the live line while it runs, the outcome at the end (screenshots). Arguments: project, model,
region (the demo's). Screenshots: cluster_running, cluster_done, prepare_cluster_running,
prepare_cluster_done.
"""

from pathlib import Path

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
    scene.later(1500, lambda: (scene.shot("cluster_done"), prepare()))


def prepare():
    plugin = qgis.utils.plugins["rts_mapper_plugin"]
    plugin.actions["prepare_imagery"].trigger()
    dialog = plugin.dialogs["imagery"]
    scene.dialog = dialog
    scenes = sorted(Path(ARGS["region"]).rglob("PS_2019*.tif"))
    scene.report["prepare_scenes"] = [p.name for p in scenes]
    dialog.add_files(scenes)
    dialog.register_check.setChecked(False)
    dialog.output_widget.setFilePath(str(Path(ARGS["project"]).parent / "imagery" / "2019_cluster.tif"))
    combo = dialog.cluster_choice.combo
    combo.setCurrentIndex(combo.findData("local:2"))
    scene.step = 3
    dialog.run_button.click()
    scene.wait_for(
        lambda: "dashboard" in dialog.cluster_progress.text() or dialog.outcome is not None,
        prepare_running,
        timeout_s=300,
    )


def prepare_running():
    scene.report["prepare_dashboard"] = scene.dialog.cluster_progress.text()
    scene.shot("prepare_cluster_running")
    scene.step = 4
    scene.wait_for(lambda: scene.dialog.outcome is not None, prepare_done, timeout_s=900)


def prepare_done():
    dialog = scene.dialog
    scene.report["prepare_outcome"] = dialog.outcome
    scene.report["prepare_status"] = dialog.status.text()
    scene.report["prepare_live_line"] = dialog.cluster_progress.text()
    scene.later(1000, lambda: (scene.shot("prepare_cluster_done"), scene.done()))


scene.later(3000, start)
