"""The "Roads: [line layer] within [N m]" row the Review and Iterations docks share."""

from __future__ import annotations

from qgis.core import QgsMapLayerProxyModel, QgsProject
from qgis.gui import QgsMapLayerComboBox
from qgis.PyQt.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QWidget

from ..toolbelt.preferences import PlgSettings


class RoadRow(QWidget):
    """A road / railway layer (remembered per QGIS project) and a distance in metres.

    ``any_distance``: 0 is allowed and reads "any distance" (a filter that can be off);
    otherwise the distance starts at the remembered near-road threshold.
    """

    def __init__(self, label: str, any_distance: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        settings = PlgSettings.load()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.combo = QgsMapLayerComboBox(self)
        self.combo.setFilters(QgsMapLayerProxyModel.Filter.LineLayer)
        self.combo.setAllowEmptyLayer(True)
        self.combo.setLayer(QgsProject.instance().mapLayer(settings.road_layer_id))
        self.distance = QDoubleSpinBox(self)
        self.distance.setRange(0 if any_distance else 1, 100000)
        self.distance.setSuffix(" m")
        if any_distance:
            self.distance.setSpecialValueText("any distance")
            self.distance.setValue(0)
        else:
            self.distance.setValue(settings.near_road_m)
        layout.addWidget(self.combo, 2)
        layout.addWidget(QLabel(label, self))
        layout.addWidget(self.distance, 1)
