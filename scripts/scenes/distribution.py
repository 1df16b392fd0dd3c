"""Scene: the distribution report from the QGIS desktop, on the project `make demo` wrote.

Opens the demo's .qgz (Project › Open), fills the report's parameters as the menu action does
(from the layers' names), runs the algorithm through Processing, and shows the figures dialog
(screenshot). Scene arguments: ``qgz``, ``out`` (the report folder).
"""

import qgis.utils
from qgis import processing
from scene_kit import Scene, open_project_file

from rts_mapper_plugin.qgis_layers.layers import distribution_defaults

scene = Scene(SCENE_ARGS)  # noqa: F821 (injected by the launcher)
ARGS = scene.args


def start():
    open_project_file(ARGS["qgz"])
    defaults = distribution_defaults()
    scene.report["defaults"] = sorted(defaults)
    result = processing.run("rts_mapper:distribution_report", {**defaults, "OUTPUT": ARGS["out"]})
    scene.report["report"] = result["REPORT"]
    plugin = qgis.utils.plugins["rts_mapper_plugin"]
    plugin.show_figures(result["OUTPUT"])
    dialog = plugin.dialogs["figures"]
    dialog.list.setCurrentRow(1)
    scene.report["figures"] = [dialog.list.item(i).text() for i in range(dialog.list.count())]
    scene.later(2500, finish)


def finish():
    scene.shot("distribution_figures")
    scene.done()


scene.later(2000, start)
