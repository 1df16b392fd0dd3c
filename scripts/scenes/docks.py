"""Scene for scripts/screenshot.py: the plugin's menu open-able, toolbar and three docks shown.

Runs inside the real QGIS desktop (``qgis --code``); SCENE_ARGS comes from the launcher.
"""

import json
import traceback

import qgis.utils
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication

ARGS = SCENE_ARGS  # noqa: F821 (injected by the launcher)


def done(**report):
    with open(ARGS["ready"], "w", encoding="utf-8") as handle:
        json.dump(report, handle)


def stage():
    try:
        plugin = qgis.utils.plugins["rts_mapper_plugin"]
        iface = qgis.utils.iface
        # no window manager under Xvfb: fill the screen by hand
        iface.mainWindow().setGeometry(QApplication.primaryScreen().availableGeometry())
        for key in ("inference", "training", "iterations", "review"):
            plugin.actions[key].setChecked(True)
        inference, training = plugin.docks["inference"], plugin.docks["training"]
        iface.mainWindow().tabifyDockWidget(inference, training)
        iface.mainWindow().tabifyDockWidget(inference, plugin.docks["iterations"])
        inference.raise_()
        done(docks=sorted(plugin.docks), menus=[a.text() for a in iface.mainWindow().menuBar().actions()])
    except Exception:
        done(error=traceback.format_exc())


QTimer.singleShot(3000, stage)
