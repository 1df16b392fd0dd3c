"""Load the plugin the way QGIS does, from a plugins folder, in a fresh interpreter; print JSON.

Used by test_installed_plugin.py: the zip from `make package` is unpacked into a temporary
profile's plugins folder, then this script loads, opens and unloads the plugin twice through
qgis.utils, recording what QGIS looks like before, during and after. With --hide-deep-learning,
torch and segmentation-models-pytorch are made unimportable first, as on a field laptop.
"""

from __future__ import annotations

import argparse
import json
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plugins-dir", required=True)
    parser.add_argument("--hide-deep-learning", action="store_true")
    args = parser.parse_args()
    if args.hide_deep_learning:
        import importlib.abc

        class Hide(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "torchvision", "segmentation_models_pytorch", "timm"):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, Hide())

    import qgis.utils
    from pytest_qgis.mock_qgis_classes import MockMessageBar
    from pytest_qgis.qgis_interface import QgisInterface  # before the app, as pytest-qgis does
    from qgis.core import QgsApplication
    from qgis.gui import QgsMapCanvas
    from qgis.PyQt.QtCore import QCoreApplication, QEvent
    from qgis.PyQt.QtWidgets import QDockWidget, QLabel, QMainWindow, QToolBar

    app = QgsApplication([], True)
    app.initQgis()

    window = QMainWindow()
    canvas = QgsMapCanvas(window)
    iface = QgisInterface(canvas, MockMessageBar(), window)
    qgis.utils.iface = iface
    sys.path.insert(0, args.plugins_dir)
    qgis.utils.plugin_paths.insert(0, args.plugins_dir)
    qgis.utils.updateAvailablePlugins()

    def snapshot() -> dict:
        registry = QgsApplication.processingRegistry()
        return {
            "menus": [a.text() for a in window.menuBar().actions()],
            "toolbars": [t.objectName() for t in window.findChildren(QToolBar)],
            "docks": [d.objectName() for d in window.findChildren(QDockWidget)],
            "providers": [p.id() for p in registry.providers()],
        }

    def flush():
        for _ in range(3):
            app.processEvents()
            QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)  # run deleteLater()

    name = "rts_mapper_plugin"
    result = {"available": name in qgis.utils.available_plugins, "before": snapshot(), "cycles": []}
    for _ in range(2):
        cycle = {"loaded": qgis.utils.loadPlugin(name), "started": qgis.utils.startPlugin(name)}
        heavy = ("torch", "segmentation_models_pytorch", "shapely", "rasterio", "onnxruntime")
        cycle["heavy_imported_at_load"] = [m for m in heavy if m in sys.modules]
        plugin = qgis.utils.plugins[name]
        cycle["module_file"] = sys.modules[name].__file__
        for action in plugin.actions.values():
            if action.isCheckable():
                action.setChecked(True)
        flush()
        cycle["while_loaded"] = snapshot()
        cycle["menu_actions"] = [a.text() for a in plugin.menu.actions() if a.text()]
        cycle["toolbar_actions"] = [a.text() for a in plugin.toolbar.actions()]
        cycle["dock_text"] = {
            key: " ".join(label.text() for label in dock.findChildren(QLabel))
            for key, dock in plugin.docks.items()
        }
        cycle["docks_visible"] = {
            key: dock.isVisible() or not dock.isHidden() for key, dock in plugin.docks.items()
        }
        cycle["algorithms"] = [
            a.id() for a in QgsApplication.processingRegistry().providerById("rts_mapper").algorithms()
        ]
        cycle["unloaded"] = qgis.utils.unloadPlugin(name)
        flush()
        cycle["after"] = snapshot()
        result["cycles"].append(cycle)
    print("RESULT " + json.dumps(result))
    app.exitQgis()
    return 0


if __name__ == "__main__":
    sys.exit(main())
