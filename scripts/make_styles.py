"""(Re)write the plugin's QML styles with PyQGIS, so they are valid for the QGIS that runs them.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/make_styles.py

The QML files in rts_mapper_plugin/resources/styles are resources like the icons: committed, and
made by this script rather than by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

from qgis.core import (
    QgsApplication,
    QgsCategorizedSymbolRenderer,
    QgsColorRampShader,
    QgsFillSymbol,
    QgsGraduatedSymbolRenderer,
    QgsLineSymbol,
    QgsPalLayerSettings,
    QgsRasterLayer,
    QgsRasterShader,
    QgsRendererCategory,
    QgsRendererRange,
    QgsSingleBandPseudoColorRenderer,
    QgsSingleSymbolRenderer,
    QgsTextFormat,
    QgsVectorLayer,
    QgsVectorLayerSimpleLabeling,
)
from qgis.PyQt.QtGui import QColor

STYLES = Path(__file__).resolve().parent.parent / "rts_mapper_plugin" / "resources" / "styles"
STATUS_COLOURS = {
    "pending": ("#ffd400", "Pending review"),
    "accepted": ("#1a9641", "Accepted (RTS)"),
    "rejected": ("#d7191c", "Rejected"),
    "unsure": ("#fdae61", "Unsure"),
    "conflict": ("#c51bff", "Reviewers disagree"),
}


def outline(colour: str, width: str = "0.66") -> QgsFillSymbol:
    return QgsFillSymbol.createSimple(
        {
            "color": "0,0,0,0",
            "style": "no",
            "outline_color": colour,
            "outline_width": width,
            "outline_width_unit": "MM",
        }
    )


def polygon_layer(fields: str) -> QgsVectorLayer:
    return QgsVectorLayer(f"MultiPolygon?crs=EPSG:32646&{fields}", "style", "memory")


def candidates_style(path: Path, field: str = "status") -> None:
    """Candidates by review status; with ``field="decision"`` the reviews (one per reviewer)."""
    layer = polygon_layer(f"field={field}:string&field=mean_prob:double&field=area_m2:double")
    categories = [
        QgsRendererCategory(value, outline(colour), label)
        for value, (colour, label) in STATUS_COLOURS.items()
        if field == "status" or value not in ("pending", "conflict")
    ]
    layer.setRenderer(QgsCategorizedSymbolRenderer(field, categories))
    label = QgsPalLayerSettings()
    label.fieldName = "round(\"mean_prob\" * 100) || ' %'"
    label.isExpression = True
    text = QgsTextFormat()
    text.setSize(8)
    text.setColor(QColor("#ffffff"))
    buffer = text.buffer()
    buffer.setEnabled(True)
    buffer.setColor(QColor("#000000"))
    label.setFormat(text)
    layer.setLabeling(QgsVectorLayerSimpleLabeling(label))
    layer.setLabelsEnabled(False)  # off by default; one click in the Layers panel shows them
    layer.saveNamedStyle(str(path))


def single_outline_style(path: Path, colour: str, width: str) -> None:
    layer = polygon_layer("field=id:integer")
    layer.setRenderer(QgsSingleSymbolRenderer(outline(colour, width)))
    layer.saveNamedStyle(str(path))


def density_style(path: Path) -> None:
    """The template of the density grids' choropleth: a "no RTS" range and one class, whose
    symbol core.analysis.distribution.density_style copies for each class of a real grid."""
    layer = polygon_layer("field=rts_count:integer")
    grey = {"outline_color": "120,120,120,160", "outline_width": "0.2"}
    empty = QgsFillSymbol.createSimple({"color": "0,0,0,0", **grey})
    renderer = QgsGraduatedSymbolRenderer("rts_count", [QgsRendererRange(-1, 0, empty, "no RTS")])
    filled = QgsFillSymbol.createSimple({"color": "203,24,29,255", **grey})
    filled.setOpacity(0.75)
    renderer.addClassRange(QgsRendererRange(0, 1, filled, "0 - 1"))
    layer.setRenderer(renderer)
    layer.saveNamedStyle(str(path))


def streams_style(path: Path) -> None:
    layer = QgsVectorLayer("MultiLineString?crs=EPSG:32646", "style", "memory")
    line = QgsLineSymbol.createSimple({"line_color": "31,120,180,255", "line_width": "0.4"})
    layer.setRenderer(QgsSingleSymbolRenderer(line))
    layer.saveNamedStyle(str(path))


def chips_style(path: Path) -> None:
    """Training chips' footprints by split."""
    layer = polygon_layer("field=split:string")
    splits = {"train": "#33a02c", "val": "#ff7f00", "excluded": "#969696"}
    categories = [QgsRendererCategory(name, outline(colour, "0.5"), name) for name, colour in splits.items()]
    layer.setRenderer(QgsCategorizedSymbolRenderer("split", categories))
    layer.saveNamedStyle(str(path))


def probability_style(path: Path) -> None:
    layer = QgsRasterLayer(str(Path(__file__).parent / "_probability_template.tif"), "p", "gdal")
    ramp = QgsColorRampShader(0, 100)
    ramp.setColorRampType(QgsColorRampShader.Interpolated)
    ramp.setColorRampItemList(
        [
            QgsColorRampShader.ColorRampItem(0, QColor(255, 255, 178, 0), "0 %"),
            QgsColorRampShader.ColorRampItem(30, QColor(254, 204, 92, 0), "30 %"),
            QgsColorRampShader.ColorRampItem(50, QColor(253, 141, 60, 60), "50 %"),
            QgsColorRampShader.ColorRampItem(75, QColor(240, 59, 32, 90), "75 %"),
            QgsColorRampShader.ColorRampItem(100, QColor(189, 0, 38, 120), "100 %"),
        ]
    )
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(ramp)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
    renderer.setClassificationMin(0)
    renderer.setClassificationMax(100)
    layer.setRenderer(renderer)
    layer.saveNamedStyle(str(path))


def main() -> int:
    app = QgsApplication([], False)
    app.initQgis()
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    template = Path(__file__).parent / "_probability_template.tif"
    with rasterio.open(
        template,
        "w",
        driver="GTiff",
        width=4,
        height=4,
        count=1,
        dtype="uint8",
        nodata=255,
        crs="EPSG:32646",
        transform=from_origin(0, 0, 1, 1),
    ) as dst:
        dst.write(np.zeros((1, 4, 4), np.uint8))
    try:
        STYLES.mkdir(parents=True, exist_ok=True)
        candidates_style(STYLES / "candidates.qml")
        candidates_style(STYLES / "reviews.qml", field="decision")
        density_style(STYLES / "density.qml")
        streams_style(STYLES / "streams.qml")
        chips_style(STYLES / "chips.qml")
        single_outline_style(STYLES / "training_positives.qml", "#1a9641", "0.5")
        single_outline_style(STYLES / "training_negatives.qml", "#2b83ba", "0.5")
        single_outline_style(STYLES / "inventory.qml", "#ffffff", "0.6")
        probability_style(STYLES / "probability.qml")
    finally:
        template.unlink(missing_ok=True)
        Path(str(template) + ".aux.xml").unlink(missing_ok=True)
    print("\n".join(str(p) for p in sorted(STYLES.glob("*.qml"))))
    app.exitQgis()
    return 0


if __name__ == "__main__":
    sys.exit(main())
