"""Scene: a field package's project (field.qgz, made by `field-export`) opened in the real QGIS
desktop, the latest year shown, and the review form of the first candidate open, as a field
reviewer sees it. Argument: qgz (the project file). Screenshot: field_form."""

import qgis.utils
from qgis.core import QgsProject, QgsVectorLayer
from qgis.PyQt.QtWidgets import QApplication
from scene_kit import Scene

scene = Scene(SCENE_ARGS)  # noqa: F821 (injected by the launcher)


def start():
    iface = qgis.utils.iface
    iface.mainWindow().setGeometry(QApplication.primaryScreen().availableGeometry())
    iface.addProject(scene.args["qgz"])
    review = next(
        layer for layer in QgsProject.instance().mapLayers().values() if isinstance(layer, QgsVectorLayer)
    )
    feature = next(review.getFeatures())
    box = feature.geometry().boundingBox()
    box.grow(max(box.width(), box.height()) * 2)
    iface.mapCanvas().setExtent(box)
    iface.mapCanvas().refresh()
    review.startEditing()
    scene.report["fields"] = [f.name() for f in review.fields()]
    scene.report["widgets"] = {
        f.name(): review.editorWidgetSetup(i).type() for i, f in enumerate(review.fields())
    }
    scene.later(1500, lambda: open_form(review, feature))


def open_form(review, feature):
    qgis.utils.iface.openFeatureForm(review, feature, False, False)
    scene.later(2500, finish)


def finish():
    scene.shot("field_form")
    scene.done()


scene.later(3000, start)
