"""Real-QGIS fixtures: pytest-qgis starts one QgsApplication (offscreen) for the session."""

from __future__ import annotations

import logging

import pytest
from qgis.core import Qgis, QgsApplication

LEVELS = {Qgis.Info: logging.INFO, Qgis.Warning: logging.WARNING, Qgis.Critical: logging.ERROR}


@pytest.fixture(autouse=True, scope="session")
def forward_message_log(qgis_app):
    """QgsMessageLog -> Python logging, so failures show what QGIS said."""
    logger = logging.getLogger("qgis")

    def forward(message, tag, level):
        logger.log(LEVELS.get(level, logging.INFO), "[%s] %s", tag, message)

    QgsApplication.messageLog().messageReceived.connect(forward)
    yield
    QgsApplication.messageLog().messageReceived.disconnect(forward)


@pytest.fixture
def plugin(qgis_iface, qgis_processing, monkeypatch):
    """The plugin, started as QGIS starts it (classFactory, initGui); unloaded afterwards."""
    from qgis.gui import QgsBrowserGuiModel

    import rts_mapper_plugin

    # Processing's dialogs ask iface for these; pytest-qgis's stand-in answers with MagicMocks
    browser = QgsBrowserGuiModel()
    monkeypatch.setattr(qgis_iface, "browserModel", lambda: browser, raising=False)
    monkeypatch.setattr(qgis_iface, "activeLayer", lambda: None, raising=False)

    instance = rts_mapper_plugin.classFactory(qgis_iface)
    instance.initGui()
    yield instance
    if instance.menu is not None:
        instance.unload()


@pytest.fixture(autouse=True)
def no_cluster_remembered():
    """A test that picks a Dask cluster in a dock or dialog leaves none remembered for the next:
    the choice lives in QgsSettings, which outlives a test (and the next dialog would open on it)."""
    yield
    from rts_mapper_plugin.toolbelt.preferences import PlgSettings

    if PlgSettings.load().cluster:
        PlgSettings.load().update(cluster="")
