"""Scene: one iteration of the loop in the real QGIS desktop, as the user guide walks through it.

The known slumps of the western third are the training RTSs (as the paper started from the
slumps known in one subregion). Next iteration trains from the demo model and infers (shot:
Table 1 with the iteration in review and its candidates on the map). The candidates are then
decided from the synthetic truth (a SIMULATED reviewer: the review by key presses is the review
scene's subject), a few rejected ones are ticked as non-RTSs in the picker (shot), and Next
iteration closes iteration 1 and runs iteration 2 (shot: Table 1 with two rows, the inventory
summary). Runs inside QGIS (``qgis --code``).
"""

import qgis.utils
from qgis.core import QgsProject, QgsVectorLayer
from qgis.PyQt.QtCore import Qt
from scene_kit import Scene, add_known_positives, open_demo_project

from rts_mapper_plugin.core.project.loop import iterations
from rts_mapper_plugin.example.demo import simulated_review

scene = Scene(SCENE_ARGS)  # noqa: F821 (injected by the launcher)
ARGS = scene.args


def start():
    plugin = open_demo_project(ARGS)
    project, truth, known = add_known_positives(ARGS)
    scene.truth, scene.project, scene.matched = truth, project, set(known)
    roads = QgsVectorLayer(str(ARGS["region"]) + "/roads.gpkg", "Road and railway", "ogr")
    QgsProject.instance().addMapLayer(roads)
    plugin.actions["iterations"].setChecked(True)
    dock = plugin.docks["iterations"]
    scene.dock = dock
    qgis.utils.iface.mainWindow().resizeDocks([dock], [560], Qt.Horizontal)
    dock.project_picker.set_path(ARGS["project"])
    dock.first_model.setFilePath(ARGS["model"])
    dock.epochs_spin.setValue(3)
    dock.road_combo.setLayer(roads)
    scene.step = 1
    dock.run_button.click()
    scene.wait_for(lambda: dock.outcome is not None, first_done, timeout_s=900)


def first_done():
    dock = scene.dock
    scene.report["first"] = {"outcome": dock.outcome, "status": dock.status.text()}
    if dock.outcome != "succeeded":
        scene.done(error=f"iteration 1: {dock.status.text()}")
        return
    scene.later(2000, review)


def review():
    scene.shot("iteration_in_review")
    run = scene.project.runs()[-1]
    accepted, _ = simulated_review(scene.project, run, scene.truth, scene.matched, 0)
    scene.report["simulated_review"] = {"candidates": run.candidates, "accepted": accepted}
    dock = scene.dock
    dock.refresh()
    dialog = dock.choose_negatives(exec_dialog=False)
    for row in range(min(3, dialog.table.rowCount())):
        dialog.table.item(row, 0).setCheckState(Qt.Checked)
    dialog.table.selectRow(0)
    dialog.zoom_to(0)
    dialog.show()
    scene.dialog = dialog
    scene.later(2500, pick_negatives)


def pick_negatives():
    scene.shot("iteration_negatives")
    dock = scene.dock
    dock.set_negatives(scene.dialog.chosen())
    scene.report["negatives"] = dock.negatives
    scene.dialog.accept()
    qgis.utils.iface.mapCanvas().setExtent(QgsProject.instance().mapLayersByName("2019")[0].extent())
    scene.step = 2
    dock.outcome = None
    dock.run(confirm=False)
    scene.wait_for(lambda: dock.outcome is not None, second_done, timeout_s=900)


def second_done():
    dock = scene.dock
    scene.report["second"] = {"outcome": dock.outcome, "status": dock.status.text()}
    dock.show_summary()
    scene.report["table1"] = [r.__dict__ for r in iterations(scene.project)]
    scene.later(2500, finish)


def finish():
    scene.shot("iteration_table1")
    scene.done()


scene.later(1500, start)
