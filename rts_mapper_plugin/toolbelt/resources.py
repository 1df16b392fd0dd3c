"""Icons and bundled files, read from the plugin's folder (no compiled Qt resources: Qt6, and so
QGIS 4, has no pyrcc)."""

from __future__ import annotations

from pathlib import Path

from qgis.PyQt.QtGui import QIcon

from ..__about__ import PLUGIN_DIR, STYLES_DIR

RESOURCES_DIR = PLUGIN_DIR / "resources"


def plugin_icon(name: str = "rts_mapper") -> QIcon:
    """An icon of the plugin: ``rts_mapper`` (the one metadata.txt names), ``inference``..."""
    return QIcon(str(RESOURCES_DIR / "icons" / f"{name}.svg"))


def style_path(name: str) -> Path:
    """Path of a bundled QML style, e.g. ``style_path("candidates")``."""
    return STYLES_DIR / f"{name}.qml"
