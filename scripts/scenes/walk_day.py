"""Desktop walk, session 2 (scripts/desktop_walk.py): QGIS starts again, empty, after it was
killed. Resume the review, infer (cancel, then run to the end), edit a boundary, train one epoch
from the defaults, start the next iteration, reopen the .qgz, export the inventory, run the
distribution report from the menu. Every step through the real widgets; checks go to
``problems`` in the report.

Scene arguments: ``qgz``, ``project``, ``decided`` (candidate ids decided in session 1),
``run_id`` (their set), ``reviewer``, ``inventory`` (where to export it), ``root``, ``shots``.
"""

import sqlite3
from pathlib import Path

import qgis.utils
from qgis.core import QgsGeometry, QgsPointXY, QgsProject
from qgis.gui import QgsProcessingAlgorithmDialogBase
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QApplication, QFileDialog, QMessageBox, QToolBar, QToolButton
from scene_kit import (
    Scene,
    answer_file_dialog,
    button,
    canvas_point,
    drag,
    open_menu,
    person_module,
    record_log,
    watch_tasks,
    when_modal,
)

scene = Scene(SCENE_ARGS)  # noqa: F821 (injected by the launcher)
ARGS = scene.args
person = person_module(ARGS["root"])
problems = scene.report.setdefault("problems", [])


def check(condition, what: str) -> bool:
    if not condition:
        problems.append(f"step {scene.step}: {what}")
    return bool(condition)


def plugin():
    return qgis.utils.plugins["rts_mapper_plugin"]


def open_dock(key: str, width: int = 540):
    """Open a dock from the RTS Mapper toolbar, as a person does; others are closed first."""
    for other in ("inference", "review", "training", "iterations"):
        if other != key and plugin().actions[other].isChecked():
            toolbar = qgis.utils.iface.mainWindow().findChild(QToolBar, "RtsMapperToolbar")
            person.click(toolbar.widgetForAction(plugin().actions[other]))
    toolbar = qgis.utils.iface.mainWindow().findChild(QToolBar, "RtsMapperToolbar")
    if not plugin().actions[key].isChecked():
        person.click(toolbar.widgetForAction(plugin().actions[key]))
    dock = plugin().docks[key]
    qgis.utils.iface.mainWindow().resizeDocks([dock], [width], Qt.Horizontal)
    person.settle(300)
    return dock


def pick_from_menu_button(tool_button: QToolButton, entry: str) -> None:
    """Click a ▾ button and the entry that starts with ``entry`` in the menu that pops up."""
    scene.later(600, lambda: person.menu_entry(QApplication.activePopupWidget(), entry, prefix=True))
    person.click(tool_button)


# -- 1. resume the review: the set restored, nothing lost --
def start():
    record_log(str(ARGS["ready"]).replace("ready.json", "message_log.txt"))
    watch_tasks(scene.report)
    qgis.utils.iface.mainWindow().showMaximized()
    scene.step = 1
    check(not QgsProject.instance().mapLayers(), "QGIS starts with an empty project")
    review = open_dock("review")
    scene.review = review
    check(
        review.project_picker.path() == ARGS["project"],
        f"the dock shows the project ({review.project_picker.path()})",
    )
    check(review.reviewer.text() == ARGS["reviewer"], "the reviewer's name is remembered")
    check(
        review.set_combo.currentData() == ARGS["run_id"], "the set reviewed before the crash is chosen again"
    )
    scene.report["resume_text"] = review.position.text()
    person.click(review.start_button)
    decided = set(ARGS["decided"])
    check(review.layer is not None, "the set's layer is loaded from the project")
    check(
        review.current is not None and review.current.fid not in decided, "it resumes after the decided ones"
    )
    with sqlite3.connect(ARGS["project"]) as conn:
        kept = conn.execute(
            "SELECT COUNT(*) FROM reviews WHERE reviewer = ?", (ARGS["reviewer"],)
        ).fetchone()[0]
    check(kept == len(decided), f"{kept} decisions kept of {len(decided)}")
    scene.report["resumed_at"] = review.index
    # the years are not on the map after the crash: the project's Load menu puts them back
    pick_from_menu_button(review.project_picker.load_button, "Time-lapse")
    check(
        len(QgsProject.instance().layerTreeRoot().findGroup("Time-lapse").findLayers()) == 5, "5 years loaded"
    )
    scene.wait_for(review.views_ready, lambda: scene.later(1500, resumed), timeout_s=60)


def resumed():
    scene.shot("walk_resumed")
    infer_and_cancel()


# -- 2. inference: started, cancelled, run to the end --
def infer_and_cancel():
    scene.step = 2
    dock = open_dock("inference")
    scene.dock = dock
    person.choose(dock.image_combo, "2019 (registered year")
    models = dock.findChild(QToolButton, "projectModelsButton")
    pick_from_menu_button(models, "demo-resnet18.safetensors")
    check(
        dock.model_widget.filePath().endswith("demo-resnet18.safetensors"),
        "the model came from the project's list",
    )
    scene.cancelled_task = None
    person.click(dock.run_button)
    scene.wait_for(lambda: dock.progress.value() >= 5, cancel_inference, ms=100, timeout_s=300)


def cancel_inference():
    dock = scene.dock
    person.click(dock.cancel_button)
    scene.wait_for(lambda: dock.outcome is not None, cancelled, timeout_s=300)


def cancelled():
    dock = scene.dock
    check(
        dock.outcome == "cancelled",
        f"the cancel is reported as a cancel ({dock.outcome}: {dock.status.text()})",
    )
    scene.report["cancel_message"] = dock.status.text()
    scene.shot("walk_inference_cancelled")
    person.click(dock.run_button)
    scene.wait_for(lambda: dock.outcome == "succeeded" and dock.task is None, inferred, timeout_s=600)


def inferred():
    dock = scene.dock
    scene.report["inference"] = dock.status.text()
    scene.new_run = dock.last_run
    scene.later(1500, lambda: (scene.shot("walk_inference_done"), edit_boundary()))


# -- 3. a boundary edited with QGIS's vertex tool, saved with the decision --
def edit_boundary():
    scene.step = 3
    review = open_dock("review")
    person.choose(review.set_combo, f"Candidates 2019, iteration {scene.new_run.iteration}")
    person.click(review.start_button)
    scene.wait_for(review.views_ready, start_edit, timeout_s=60)


def start_edit():
    review = scene.review
    scene.fid = review.current.fid
    scene.before = QgsGeometry(review.layer.getFeature(scene.fid).geometry())
    person.press(Qt.Key_E, widget=review)
    scene.later(1500, lambda: drag_vertex(1))


def drag_vertex(attempt):
    north = max(scene.before.vertices(), key=lambda v: v.y())
    drag(canvas_point(QgsPointXY(north.x(), north.y())), canvas_point(QgsPointXY(north.x(), north.y() + 40)))
    scene.later(1000, lambda: dragged(attempt))


def dragged(attempt):
    review = scene.review
    moved = review.layer.getFeature(scene.fid).geometry().area() != scene.before.area()
    if not moved and attempt < 8:
        scene.later(800, lambda: drag_vertex(attempt + 1))
        return
    check(moved, "the vertex tool moved the vertex")
    scene.shot("walk_boundary_edit")
    review.setFocus()
    person.press(Qt.Key_A, widget=review)
    with sqlite3.connect(ARGS["project"]) as conn:
        area = conn.execute("SELECT area_m2 FROM candidates WHERE fid = ?", (scene.fid,)).fetchone()[0]
        edited = conn.execute(
            "SELECT edited FROM reviews WHERE candidate_id = ? AND reviewer = ?",
            (scene.fid, ARGS["reviewer"]),
        ).fetchone()
    actual = review.layer.getFeature(scene.fid).geometry().area()
    scene.report["edited_area"] = {
        "stored_m2": area,
        "geometry_m2": round(actual, 1),
        "before_m2": round(scene.before.area(), 1),
    }
    check(abs(area - actual) < 0.5, f"area_m2 follows the edit ({area} stored, {actual:.1f} actual)")
    check(edited is not None and edited[0] == 1, "the decision records the edit")
    scene.later(500, train)


# -- 4. one epoch from the Training dock's defaults --
def train():
    scene.step = 4
    dock = open_dock("training")
    scene.dock = dock
    check(
        dock.positives_combo.currentText() == "Project: training positives", "it trains on the confirmed RTSs"
    )
    scene.report["training_defaults"] = {
        "encoder": dock.encoder_combo.currentText(),
        "images": dock.checked_images(),
        "chip": dock.chip_spin.value(),
        "batch": dock.batch_spin.value(),
        "out": dock.output_widget.filePath(),
    }
    person.replace_text(dock.epochs_spin.lineEdit(), "1", enter=False)
    person.click(dock.run_button)
    scene.wait_for(lambda: dock.outcome is not None, trained, timeout_s=900)


def trained():
    dock = scene.dock
    check(dock.outcome == "succeeded", f"training: {dock.status.text()}")
    scene.report["training"] = dock.status.text()
    scene.later(1000, lambda: (scene.shot("walk_training"), next_iteration()))


# -- 5. the next iteration, from the Iterations dock --
def next_iteration():
    scene.step = 5
    dock = open_dock("iterations", 580)
    scene.dock = dock
    scene.report["iterations_state"] = dock.state.text()
    person.replace_text(dock.epochs_spin.lineEdit(), "1", enter=False)

    def yes(box):
        scene.report["close_question"] = box.text()
        person.click(box.button(QMessageBox.Yes))

    when_modal(scene, yes, (QMessageBox,))
    person.click(dock.run_button)
    scene.wait_for(lambda: dock.outcome is not None, iterated, timeout_s=1200)


def iterated():
    dock = scene.dock
    check(dock.outcome == "succeeded", f"next iteration: {dock.status.text()}")
    scene.report["next_iteration"] = dock.status.text()
    scene.later(1500, lambda: (scene.shot("walk_next_iteration"), reopen_project()))


# -- 6. the .qgz reopened (its DEM, vegetation, soil), the inventory exported --
def reopen_project():
    scene.step = 6

    def answer(dialog):
        if isinstance(dialog, QMessageBox):
            # "save the changes?" (the GeoPackage holds them all: discard), "temporary layers,
            # proceed?" (the walk's files are under /tmp, which QGIS calls temporary: yes)
            scene.report.setdefault("questions_on_open", []).append(dialog.text())
            person.click(button(dialog, "Discard", "Close without Saving", "Yes"))
            when_modal(scene, answer, (QMessageBox, QFileDialog))
        else:
            answer_file_dialog(person, dialog, ARGS["qgz"])

    when_modal(scene, answer, (QMessageBox, QFileDialog))
    person.menu_entry(open_menu("Project"), "Open…")
    scene.later(3000, export_inventory)


def export_inventory():
    dock = open_dock("iterations", 580)
    check(dock.project_picker.path() == ARGS["project"], "the reopened .qgz keeps the mapping project")
    Path(ARGS["inventory"]).parent.mkdir(parents=True, exist_ok=True)
    when_modal(scene, lambda dialog: answer_file_dialog(person, dialog, ARGS["inventory"]), (QFileDialog,))
    person.click(dock.export_inventory_button)
    scene.later(2000, exported)


def exported():
    check(Path(ARGS["inventory"]).exists(), "the inventory file was written")
    names = [layer.name() for layer in QgsProject.instance().mapLayers().values()]
    check(any(n.startswith("RTS inventory (") for n in names), "the exported inventory is on the map")
    scene.report["inventory_summary"] = scene.dock.summary.toPlainText()[:400]
    scene.shot("walk_inventory")
    distribution_report()


# -- 7. the distribution report from the menu, with raster vegetation and soil --
def distribution_report():
    scene.step = 7

    def run_report(dialog):
        panel = dialog.mainWidget()
        held = panel.createProcessingParameters()
        names = {
            k: QgsProject.instance().mapLayer(str(v)).name()
            for k, v in held.items()
            if QgsProject.instance().mapLayer(str(v))
        }
        scene.report["report_dialog"] = names
        check(
            names.get("VEGETATION") == "Vegetation" and names.get("SOIL") == "Soil texture",
            f"raster vegetation and soil are filled in ({names})",
        )
        check("INVENTORY" in names and "DEM" in names, "the inventory and the DEM are filled in")
        scene.shot("walk_report_dialog")
        person.click(dialog.buttonBox().button(dialog.buttonBox().Ok))

    when_modal(scene, run_report, (QgsProcessingAlgorithmDialogBase,))
    person.menu_entry(open_menu("RTS Mapper"), "Distribution report…")
    scene.wait_for(
        lambda: "figures" in plugin().dialogs and plugin().dialogs["figures"].isVisible(),
        figures,
        timeout_s=900,
    )


def figures():
    report_dialog = plugin().dialogs["distribution_report"]
    person.click(button(report_dialog, "Close"))  # its log read: the run ended in seconds
    dialog = plugin().dialogs["figures"]
    scene.report["figures"] = [dialog.list.item(i).text() for i in range(dialog.list.count())]
    check(dialog.list.count() >= 5, "the figures are shown")
    check(any("vegetation" in f for f in scene.report["figures"]), "a vegetation figure is among them")
    dialog.list.setCurrentRow(1)
    scene.later(1500, finish)


def finish():
    scene.shot("walk_distribution")
    failed = [t for t in scene.report.get("tasks", []) if t["ended"] != "complete"]
    check(not failed, f"no task ended as failed in QGIS's task manager: {failed}")
    scene.done()


scene.later(3000, start)
