"""Icons and bundled files, from the compiled Qt resources when built, else from disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qgis.PyQt.QtGui import QIcon

from ..__about__ import PLUGIN_DIR

RESOURCES_DIR = PLUGIN_DIR / "resources"
STYLES_DIR = RESOURCES_DIR / "styles"

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


def style_density(layer, field: str = "rts_count", classes: int = 5) -> None:
    """A density grid as a choropleth: graduated yellow-to-red by ``field`` (natural breaks),
    empty cells left clear, thin grey cell borders."""
    from qgis.core import (
        QgsFillSymbol,
        QgsGraduatedSymbolRenderer,
        QgsRendererRange,
        QgsStyle,
    )

    values = [f[field] for f in layer.getFeatures() if f[field] is not None]
    positive = sorted(v for v in values if v > 0)
    empty = QgsFillSymbol.createSimple(
        {"color": "0,0,0,0", "outline_color": "120,120,120,160", "outline_width": "0.2"}
    )
    renderer = QgsGraduatedSymbolRenderer(field, [QgsRendererRange(-1, 0, empty, "no RTS")])
    if positive:
        template = QgsFillSymbol.createSimple({"outline_color": "120,120,120,160", "outline_width": "0.2"})
        renderer.setSourceSymbol(template)
        ramp = QgsStyle.defaultStyle().colorRamp("Reds") or QgsStyle.defaultStyle().colorRamp("YlOrRd")
        breaks = sorted({float(v) for v in np.quantile(positive, np.linspace(0, 1, classes + 1))})
        lower = 0.0
        for index, upper in enumerate(breaks[1:] if len(breaks) > 1 else breaks):
            symbol = template.clone()
            symbol.setColor(ramp.color((index + 1) / max(len(breaks) - 1, 1)))
            symbol.setOpacity(0.75)
            renderer.addClassRange(QgsRendererRange(lower, upper, symbol, f"{lower:g} - {upper:g}"))
            lower = upper
    layer.setRenderer(renderer)
    layer.triggerRepaint()
