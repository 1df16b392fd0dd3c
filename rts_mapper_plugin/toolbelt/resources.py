"""Icons and bundled files, from the compiled Qt resources when built, else from disk."""

from __future__ import annotations

from pathlib import Path

from qgis.PyQt.QtGui import QIcon

from ..__about__ import PLUGIN_DIR, STYLES_DIR

RESOURCES_DIR = PLUGIN_DIR / "resources"

try:  # built by `make resources` (pyrcc5); never committed
    from .. import resources_rc  # noqa: F401

    _COMPILED = True
except ImportError:
    _COMPILED = False


def plugin_icon(name: str = "rts_mapper") -> QIcon:
    """An icon of the plugin: ``rts_mapper`` (the one metadata.txt names), ``inference``..."""
    if _COMPILED:
        return QIcon(f":/plugins/rts_mapper/{'icon' if name == 'rts_mapper' else name}.svg")
    return QIcon(str(RESOURCES_DIR / "icons" / f"{name}.svg"))


def style_path(name: str) -> Path:
    """Path of a bundled QML style, e.g. ``style_path("candidates")``."""
    return STYLES_DIR / f"{name}.qml"
