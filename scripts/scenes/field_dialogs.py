"""Scene: a field package made and merged back from the real QGIS desktop. The three candidates
nearest the road are selected on the map (one already accepted at the desk); RTS Mapper › Export field package (QField)… opens
filled in with that selection and the reviewer; every status chosen; Run. The package is then edited as QField edits
it (plain OGR: three decisions, one of them contradicting the reviewer's own desk decision);
RTS Mapper › Merge field package…, Run: the log lists the conflict, the Conflicts table opens.

Arguments: root (the repository: its test fixtures build a small review project), work (an
empty folder). Screenshots: field_export_dialog, field_merge_done.
"""

import sys
from pathlib import Path

import qgis.utils
from qgis.core import QgsProject, QgsTemporalNavigationObject, QgsVectorLayer
from qgis.PyQt.QtWidgets import QApplication, QDialogButtonBox, QLineEdit, QTextEdit
from scene_kit import Scene, open_menu, person_module

scene = Scene(SCENE_ARGS)  # noqa: F821 (injected by the launcher)
ARGS = scene.args
REVIEWER = "Field team"
person = person_module(ARGS["root"])


def start():
    sys.path.insert(0, ARGS["root"])
    from rts_mapper_plugin.core.review.decisions import Decision, record_decision, review_queue
    from rts_mapper_plugin.core.vectors import read_features
    from rts_mapper_plugin.gui.project_picker import current_project
    from rts_mapper_plugin.qgis_layers.layers import candidates_layer
    from rts_mapper_plugin.qgis_layers.timelapse import load_time_lapse
    from rts_mapper_plugin.toolbelt.preferences import PlgSettings
    from tests.data.fixtures import review_project

    iface = qgis.utils.iface
    iface.mainWindow().setGeometry(QApplication.primaryScreen().availableGeometry())
    work = Path(ARGS["work"])
    project, region, _run = review_project(work / "desk", size=400, seed=5)
    roads_path = str(region.folder / "roads.gpkg")
    nearest = [item.fid for item in review_queue(project, order="road", roads=read_features(roads_path))][:3]
    record_decision(project, Decision(nearest[0], REVIEWER, "accepted", probability=70))  # at the desk
    scene.report["picked"] = nearest
    PlgSettings.load().update(reviewer_name=REVIEWER)
    current_project().set(str(project.path))
    load_time_lapse(project, QgsProject.instance(), iface.mapCanvas().temporalController())
    iface.mapCanvas().temporalController().setNavigationMode(QgsTemporalNavigationObject.NavigationOff)
    roads = QgsVectorLayer(roads_path, "Roads", "ogr")
    QgsProject.instance().addMapLayer(roads)
    layer = candidates_layer(project.path, None, "Candidates")
    QgsProject.instance().addMapLayer(layer)
    layer.selectByIds(nearest)
    iface.setActiveLayer(layer)
    iface.mapCanvas().setExtent(layer.extent())
    iface.mapCanvas().refresh()
    scene.project = project
    scene.later(2500, open_export)


def from_menu(entry: str):
    menu = open_menu("RTS Mapper")
    person.menu_entry(menu, entry)
    return qgis.utils.plugins["rts_mapper_plugin"]


def typed_into(dialog, name: str, text: str) -> None:
    widget = dialog.mainWidget().wrappers[name].wrappedWidget()
    edit = widget if isinstance(widget, QLineEdit) else widget.findChild(QLineEdit)
    person.replace_text(edit, text, enter=False)


def open_export():
    scene.step = 1
    dialog = from_menu("Export field package (QField)…").dialogs["export_field_package"]
    dialog.move(120, 60)
    scene.package = str(Path(ARGS["work"]) / "near_road")
    typed_into(dialog, "OUTPUT", scene.package)
    status = dialog.mainWidget().wrappers["STATUS"].wrappedWidget()
    person.choose(status, "every status")  # the desk-decided one goes too: checked on the ground
    held = dialog.mainWidget().createProcessingParameters()
    scene.report["export_parameters"] = {k: str(v) for k, v in held.items()}
    scene.dialog = dialog
    scene.later(1000, run_export)


def run_export():
    scene.shot("field_export_dialog")
    run(scene.dialog, exported)


def run(dialog, then):
    finished = {}
    dialog.algorithmFinished.connect(lambda ok, results: finished.update(ok=ok, results=results))
    person.click(dialog.buttonBox().button(QDialogButtonBox.Ok))
    scene.wait_for(lambda: "ok" in finished, lambda: then(dialog, finished), timeout_s=300)


def exported(dialog, finished):
    scene.report["export"] = {
        "ok": finished["ok"],
        "results": {k: str(v) for k, v in finished["results"].items()},
    }
    dialog.close()
    from osgeo import ogr  # in the field, as QField writes: plain edits of the GeoPackage

    picked = scene.report["picked"]
    source = ogr.Open(str(Path(scene.package) / "field.gpkg"), update=1)
    rows = source.GetLayerByName("review")
    for feature in rows:
        feature.SetField(
            "decision", {picked[0]: "rejected", picked[1]: "accepted"}.get(feature["candidate_id"], "unsure")
        )
        rows.SetFeature(feature)
    source = rows = None
    scene.step = 2
    merge = from_menu("Merge field package…").dialogs["merge_field_package"]
    merge.move(120, 60)
    typed_into(merge, "PACKAGE", scene.package)
    scene.later(800, lambda: run(merge, merged))


def merged(dialog, finished):
    scene.report["merge"] = {
        "ok": finished["ok"],
        "results": {k: str(v) for k, v in finished["results"].items()},
    }
    scene.report["log"] = dialog.findChild(QTextEdit, "txtLog").toPlainText()[-1200:]
    conflicts = QgsProject.instance().mapLayersByName("Conflicts")
    scene.report["conflicts_layers"] = len(conflicts)
    if conflicts:  # beside the dialog, as a person would drag it
        table = qgis.utils.iface.showAttributeTable(conflicts[0])
        table.setGeometry(720, 560, 760, 220)
    dialog.raise_()
    scene.later(2000, finish)


def finish():
    scene.shot("field_merge_done")
    scene.done()


scene.later(3000, start)
