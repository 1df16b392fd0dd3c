"""Desktop walk, session 1 (scripts/desktop_walk.py): open the project's .qgz from the Project
menu, open the Review dock from the toolbar, review candidates by keyboard, one with a note.
The walk then kills QGIS (SIGKILL) and counts the decisions in the GeoPackage.

Scene arguments: ``qgz``, ``decisions``, ``reviewer``, ``root``, ``shots``.
"""

import qgis.utils
from qgis.core import QgsProject
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QApplication, QFileDialog, QToolBar
from scene_kit import Scene, answer_file_dialog, open_menu, person_module, record_log, watch_tasks, when_modal

scene = Scene(SCENE_ARGS)  # noqa: F821 (injected by the launcher)
ARGS = scene.args
person = person_module(ARGS["root"])
NOTE = "gully to the east: look again next year"


def start():
    iface = qgis.utils.iface
    record_log(str(ARGS["ready"]).replace("ready.json", "message_log.txt"))
    watch_tasks(scene.report)
    iface.mainWindow().showMaximized()
    scene.step = 1  # Project › Open…, the file typed into the dialog
    when_modal(scene, lambda dialog: answer_file_dialog(person, dialog, ARGS["qgz"]), (QFileDialog,))
    person.menu_entry(open_menu("Project"), "Open…")
    scene.later(3000, open_review)


def toolbar_button(key):
    plugin = qgis.utils.plugins["rts_mapper_plugin"]
    toolbar = qgis.utils.iface.mainWindow().findChild(QToolBar, "RtsMapperToolbar")
    return toolbar.widgetForAction(plugin.actions[key])


def open_review():
    scene.step = 2
    layers = [layer.name() for layer in QgsProject.instance().mapLayers().values()]
    scene.report["layers_opened"] = sorted(layers)
    person.click(toolbar_button("review"))
    plugin = qgis.utils.plugins["rts_mapper_plugin"]
    review = plugin.docks["review"]
    scene.review = review
    qgis.utils.iface.mainWindow().resizeDocks([review], [540], Qt.Horizontal)
    scene.report["project_in_dock"] = review.project_picker.path()
    scene.report["set_offered"] = review.set_combo.currentText()
    scene.report["run_id"] = review.set_combo.currentData()
    # the review keys that QGIS binds too (S toggles snapping, R stream digitizing, T tracing)
    from qgis.gui import QgsGui
    from qgis.PyQt.QtGui import QKeySequence

    manager = QgsGui.shortcutsManager()
    scene.report["keys_qgis_binds_too"] = {
        key: manager.actionForSequence(QKeySequence(key)).text()
        for key in review.keys.values()
        if key and manager.actionForSequence(QKeySequence(key)) is not None
    }
    # an editor keeps the Snapping toolbar open: QGIS's S is then live beside the dock's
    snapping_bar = qgis.utils.iface.mainWindow().findChild(QToolBar, "mSnappingToolBar")
    if snapping_bar is not None:
        snapping_bar.show()
    person.replace_text(review.reviewer, ARGS["reviewer"])
    person.click(review.start_button)
    scene.decided = 0
    scene.wait_for(review.views_ready, shared_key, timeout_s=60)


def shared_key():
    """S in the dock toggles the criterion, not QGIS's snapping (and is not ambiguous)."""
    review = scene.review
    snapping = QgsProject.instance().snappingConfig().enabled()
    box = review.form.criteria["arcuate_shaded_headwall"]
    before = box.isChecked()
    person.press(Qt.Key_S)
    scene.report["shared_key_s"] = {
        "criterion_toggled": box.isChecked() != before,
        "snapping_unchanged": QgsProject.instance().snappingConfig().enabled() == snapping,
    }
    person.press(Qt.Key_S)  # back as it was
    decide_next()


def decide_next():
    review = scene.review
    n = scene.decided
    if n >= int(ARGS["decisions"]) or review.current is None:
        scene.later(800, finish)
        return
    scene.step = 10 + n
    if n % 4 != 1:  # most are slumps: the criteria, a probability, the initiation period
        for key in (Qt.Key_H, Qt.Key_S, Qt.Key_T) if n % 3 else (Qt.Key_H, Qt.Key_C):
            person.press(key)
        person.press(Qt.Key_7 + n % 3)
        person.press(Qt.Key_P)
        decision = Qt.Key_U if n % 7 == 6 else Qt.Key_A
    else:  # a look-alike
        person.press(Qt.Key_2)
        decision = Qt.Key_R
    if n == 3:  # a note: N, type, Enter hands the keyboard back, the next key decides
        person.press(Qt.Key_N)
        person.type_text(NOTE)
        person.press(Qt.Key_Return)
        scene.report["note_typed"] = NOTE
        scene.report["focus_after_enter"] = type(QApplication.focusWidget()).__name__
    if n == 5:
        person.press(Qt.Key_Y)
        scene.later(1500, lambda: (scene.shot("walk_review"), decide(decision)))
        return
    decide(decision)


def decide(key):
    person.press(key)
    scene.decided += 1
    scene.later(150, decide_next)


def finish():
    review = scene.review
    scene.report.update(
        decisions_pressed=scene.decided,
        progress=review.progress_label.text(),
        at_candidate=review.index,
    )
    scene.done()


scene.later(3000, start)
