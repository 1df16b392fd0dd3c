"""Scene: the GeoPackages RTS Mapper wrote, opened in a fresh QGIS where the plugin is NOT
installed, as a colleague would (Layer › Add Layer): each layer must show the plugin's style,
which QGIS reads from the GeoPackage's ``layer_styles`` table.

Scene arguments: ``layers`` (a list of ``file.gpkg|layername=x`` URIs, drawn bottom to top) and
optionally ``background`` (a raster shown beneath them).
"""

import qgis.utils
from qgis.core import QgsProject, QgsRasterLayer, QgsVectorLayer
from qgis.PyQt.QtWidgets import QApplication
from scene_kit import Scene

scene = Scene(SCENE_ARGS)  # noqa: F821 (injected by the launcher)
ARGS = scene.args


def start():
    iface = qgis.utils.iface
    iface.mainWindow().setGeometry(QApplication.primaryScreen().availableGeometry())
    scene.report["plugin_loaded"] = "rts_mapper_plugin" in qgis.utils.plugins
    project = QgsProject.instance()
    if ARGS.get("background"):
        project.addMapLayer(QgsRasterLayer(ARGS["background"], "imagery", "gdal"))
    renderers = {}
    for uri in ARGS["layers"]:
        name = uri.split("layername=")[-1]
        layer = QgsVectorLayer(uri, name, "ogr")  # what Layer › Add Layer › Vector does
        project.addMapLayer(layer)
        renderer = layer.renderer()
        attribute = getattr(renderer, "classAttribute", lambda: "")()
        renderers[name] = f"{renderer.type()} {attribute}".strip()
    scene.report["renderers"] = renderers
    extent = project.mapLayersByName(ARGS["layers"][0].split("layername=")[-1])[0].extent()
    extent.grow(max(extent.width(), extent.height()) * 0.05)
    iface.mapCanvas().setExtent(extent)
    iface.mapCanvas().refresh()
    scene.later(3000, finish)


def finish():
    scene.shot(ARGS.get("name", "no_plugin"))
    scene.done()


scene.later(2000, start)
