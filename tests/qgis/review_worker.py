"""Helper for test_review_dock: review by key presses in a real QgsApplication until killed.

Prints ``decided <fid>`` after each decision has returned (so it is stored), then goes on.
Usage: python review_worker.py PROJECT.gpkg RUN_ID
"""

import sys
import time

from qgis.core import QgsApplication, QgsProject
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtTest import QTest
from qgis.PyQt.QtWidgets import QApplication

app = QgsApplication([], True)
app.initQgis()

from rts_mapper_plugin.gui.review_dock import ReviewDock  # noqa: E402
from rts_mapper_plugin.qgis_layers.layers import candidates_layer  # noqa: E402
from rts_mapper_plugin.tasks.base import TaskRunner  # noqa: E402

layer = candidates_layer(sys.argv[1], sys.argv[2], "Candidates")
QgsProject.instance().addMapLayer(layer)
dock = ReviewDock(None, TaskRunner())
dock.show()
dock.project_picker.set_path(sys.argv[1])
dock.set_combo.setCurrentIndex(dock.set_combo.findData(sys.argv[2]))
dock.reviewer.setText("killed-reviewer")
dock.start_review()
QApplication.setActiveWindow(dock)
dock.setFocus()
while True:
    fid = dock.current.fid
    QTest.keyClick(dock, Qt.Key_R if fid % 2 else Qt.Key_A)
    print(f"decided {fid}", flush=True)
    app.processEvents()
    if dock.index == len(dock.queue) - 1:
        time.sleep(60)  # wait to be killed
