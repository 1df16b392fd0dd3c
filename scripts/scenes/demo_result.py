"""Scene: the project `make demo` wrote, opened in the real QGIS desktop as a user would
(Project › Open), with the Iterations dock showing its Table 1 and inventory summary.

Scene arguments: ``qgz`` (the demo's .qgz) and ``gpkg`` (its mapping project).
"""

import qgis.utils
from qgis.core import QgsProject
from qgis.PyQt.QtCore import Qt
from scene_kit import Scene, open_project_file

scene = Scene(SCENE_ARGS)  # noqa: F821 (injected by the launcher)
ARGS = scene.args


def start():
    iface = open_project_file(ARGS["qgz"])
    project = QgsProject.instance()
    root = project.layerTreeRoot()
    scene.report["groups"] = [g.name() for g in root.children()]
    scene.report["layers"] = sorted(
        f"{layer.name()} ({'valid' if layer.isValid() else 'INVALID'})"
        for layer in project.mapLayers().values()
    )
    # the latest year under the results, as an analyst would look at them
    group = root.findGroup("Time-lapse")
    for node in group.findLayers():
        node.setItemVisibilityChecked(node.layer().name() == "2019")
    plugin = qgis.utils.plugins["rts_mapper_plugin"]
    plugin.actions["iterations"].setChecked(True)
    dock = plugin.docks["iterations"]
    iface.mainWindow().resizeDocks([dock], [560], Qt.Horizontal)
    dock.project_picker.set_path(ARGS["gpkg"])
    roads = project.mapLayersByName("Roads and railway")
    if roads:
        dock.road_combo.setLayer(roads[0])
    dock.region_name.setText("Synthetic Beiluhe-like region (SIMULATION)")
    scene.report["summary"] = dock.show_summary()
    scene.report["table_rows"] = dock.table.rowCount()
    scene.report["state"] = dock.state.text()
    inventory = project.mapLayersByName("RTS inventory")
    if inventory:
        extent = inventory[0].extent()
        extent.grow(300)
        iface.mapCanvas().setExtent(extent)
    iface.mapCanvas().refresh()
    scene.later(3000, finish)


def finish():
    scene.shot("demo_project")
    scene.done()


scene.later(2000, start)
