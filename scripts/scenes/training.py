"""Scene: the Training dock in the real QGIS desktop, trained while the map renders (the expected
duration measured on the first steps, the loss and validation F1 curves).

The known slumps of the western third become the project's training positives; the dock trains
from "Project: training positives" on the newest year for three epochs while five year layers
render (the situation that once crashed QGIS in a chip write), and the live curve is captured.
Runs inside QGIS (``qgis --code``).
"""

import qgis.utils
from qgis.PyQt.QtCore import Qt
from scene_kit import Scene, add_known_positives, open_demo_project

scene = Scene(SCENE_ARGS)  # noqa: F821 (injected by the launcher)
ARGS = scene.args


def start():
    plugin = open_demo_project(ARGS)
    add_known_positives(ARGS)
    plugin.actions["training"].setChecked(True)
    dock = plugin.docks["training"]
    scene.dock = dock
    qgis.utils.iface.mainWindow().resizeDocks([dock], [520], Qt.Horizontal)
    dock.project_picker.set_path(ARGS["project"])
    dock.positives_combo.setLayer(None)
    dock.positives_combo.setCurrentIndex(dock.positives_combo.findText("Project: training positives"))
    dock.encoder_combo.setCurrentText("resnet18")
    dock.epochs_spin.setValue(3)
    dock.chip_spin.setValue(256)
    dock.output_widget.setFilePath(
        str(ARGS["project"]).replace("rts_project.gpkg", "models/scene.safetensors")
    )
    scene.report["images"] = dock.checked_images()
    scene.step = 1
    dock.run_button.click()
    scene.wait_for(lambda: dock.outcome is not None, trained, timeout_s=900)


def trained():
    dock = scene.dock
    scene.report["outcome"] = dock.outcome
    scene.report["status"] = dock.status.text()
    scene.later(1000, finish)


def finish():
    scene.shot("training_dock")
    scene.done()


scene.later(1500, start)
