"""Scene: a field laptop's QGIS (run with --qgis-python-only: QGIS's own Python, no torch, no
shapely, no onnxruntime) installs the Inference profile from a folder of wheels with
RTS Mapper › Install deep-learning packages…, then maps with an ONNX model in the Inference dock,
in the same session.

Arguments: wheels (folder), project (a mapping project with the 2019 image registered), model
(an .onnx file). Screenshots: installer_before, installer_done, installer_inference,
installer_uninstalled (the same dialog after *Uninstall*).
"""

import sys

import qgis.utils
from qgis.core import QgsProject
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QApplication
from scene_kit import Scene

scene = Scene(SCENE_ARGS)  # noqa: F821 (injected by the launcher)
ARGS = scene.args


def start():
    iface = qgis.utils.iface
    iface.mainWindow().setGeometry(QApplication.primaryScreen().availableGeometry())
    scene.report["before"] = {
        m: m in sys.modules or _importable(m) for m in ("torch", "shapely", "onnxruntime")
    }
    plugin = qgis.utils.plugins["rts_mapper_plugin"]
    plugin.actions["install_packages"].trigger()
    dialog = plugin.dialogs["install"]
    dialog.move(200, 80)
    dialog.profile_combo.setCurrentIndex(dialog.profile_combo.findData("inference"))
    dialog.wheels_widget.setFilePath(ARGS["wheels"])
    scene.dialog = dialog
    scene.later(1500, install)


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def install():
    scene.shot("installer_before")
    scene.step = 1
    scene.dialog.install_button.click()
    scene.wait_for(lambda: scene.dialog.outcome is not None, installed, timeout_s=900)


def installed():
    dialog = scene.dialog
    scene.report["install"] = {
        "outcome": dialog.outcome,
        "status": dialog.status.text(),
        "folder": str(dialog.folder),
    }
    scene.shot("installer_done")
    if dialog.outcome != "installed":
        scene.done(error=f"install: {dialog.status.text()}", log=dialog.log.toPlainText()[-4000:])
        return
    dialog.close()
    plugin = qgis.utils.plugins["rts_mapper_plugin"]
    from rts_mapper_plugin.core.project.store import MappingProject
    from rts_mapper_plugin.qgis_layers.timelapse import load_time_lapse
    from rts_mapper_plugin.toolbelt.preferences import PlgSettings

    PlgSettings.load().update(project_gpkg=ARGS["project"], model_path="")
    load_time_lapse(MappingProject.open(ARGS["project"]), QgsProject.instance())
    iface = qgis.utils.iface
    iface.mapCanvas().setExtent(QgsProject.instance().mapLayersByName("2019")[0].extent())
    plugin.actions["inference"].setChecked(True)
    dock = plugin.docks["inference"]
    iface.mainWindow().resizeDocks([dock], [520], Qt.Horizontal)
    scene.dock = dock
    dock.model_widget.setFilePath(ARGS["model"])
    scene.step = 2
    scene.later(1000, lambda: run(dock))


def run(dock):
    dock.run_button.click()
    scene.wait_for(lambda: dock.outcome == "succeeded", mapped, timeout_s=900)


def mapped():
    dock = scene.dock
    scene.report["inference"] = {"status": dock.status.text(), "candidates": dock.last_run.candidates}
    scene.report["after"] = {m: m in sys.modules for m in ("torch", "shapely", "onnxruntime")}
    qgis.utils.iface.mapCanvas().refresh()
    scene.later(2500, finish)


def finish():
    scene.shot("installer_inference")
    plugin = qgis.utils.plugins["rts_mapper_plugin"]
    plugin.actions["install_packages"].trigger()
    dialog = plugin.dialogs["install"]
    dialog.uninstall_button.click()
    scene.report["uninstall"] = {"outcome": dialog.outcome, "status": dialog.status.text()}
    scene.later(1500, uninstalled)


def uninstalled():
    scene.shot("installer_uninstalled")
    scene.done()


scene.later(3000, start)
