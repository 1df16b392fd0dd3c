"""Loading and unloading the plugin in a real QgsApplication leaves QGIS as it was."""

from __future__ import annotations

import logging

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QCoreApplication, QEvent
from qgis.PyQt.QtWidgets import QDockWidget, QToolBar

import rts_mapper_plugin


def flush():
    for _ in range(3):
        QCoreApplication.processEvents()
        QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)


def qgis_state(iface) -> dict:
    window = iface.mainWindow()
    return {
        "menus": [a.text() for a in window.menuBar().actions()],
        "toolbars": sorted(t.objectName() for t in window.findChildren(QToolBar)),
        "docks": sorted(d.objectName() for d in window.findChildren(QDockWidget)),
        "providers": sorted(p.id() for p in QgsApplication.processingRegistry().providers()),
        "log_handlers": len(logging.getLogger("rts_mapper_plugin").handlers),
    }


def test_load_unload_twice_leaves_qgis_clean(qgis_iface, qgis_processing):
    flush()
    before = qgis_state(qgis_iface)
    for _ in range(2):
        plugin = rts_mapper_plugin.classFactory(qgis_iface)
        plugin.initGui()
        for key in ("inference", "review", "training", "iterations"):
            plugin.actions[key].setChecked(True)
        during = qgis_state(qgis_iface)
        assert "&RTS Mapper" in during["menus"]
        assert "RtsMapperToolbar" in during["toolbars"]
        assert {
            "RtsMapperInferenceDock",
            "RtsMapperReviewDock",
            "RtsMapperTrainingDock",
            "RtsMapperIterationsDock",
        } <= set(during["docks"])
        assert "rts_mapper" in during["providers"]
        assert during["log_handlers"] == before["log_handlers"] + 1
        plugin.unload()
        flush()
        assert qgis_state(qgis_iface) == before


def test_actions_toggle_their_docks(plugin, qgis_iface):
    qgis_iface.mainWindow().show()
    action = plugin.actions["review"]
    assert "review" not in plugin.docks, "docks are created lazily, on first use"
    action.setChecked(True)
    dock = plugin.docks["review"]
    assert not dock.isHidden()
    action.setChecked(False)
    assert dock.isHidden()
    dock.show()
    assert action.isChecked(), "showing the dock another way checks its action"
    dock.close()
    assert not action.isChecked(), "closing the dock with its X unchecks its action"
    qgis_iface.mainWindow().hide()


def test_init_processing_alone_then_gui_registers_one_provider(qgis_iface, qgis_processing):
    """qgis_process calls initProcessing only; the desktop calls both: never two providers."""
    plugin = rts_mapper_plugin.classFactory(qgis_iface)
    plugin.initProcessing()
    plugin.initGui()
    ids = [p.id() for p in QgsApplication.processingRegistry().providers()]
    assert ids.count("rts_mapper") == 1
    plugin.unload()
    assert "rts_mapper" not in [p.id() for p in QgsApplication.processingRegistry().providers()]
