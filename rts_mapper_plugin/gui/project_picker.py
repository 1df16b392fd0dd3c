"""The mapping project (GeoPackage) that the docks and dialogs work on: pick one or make one."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsProject
from qgis.gui import QgsFileWidget, QgsProjectionSelectionDialog
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QToolButton, QWidget

from ..toolbelt.preferences import PlgSettings

GPKG_FILTER = "GeoPackage (*.gpkg)"


class ProjectPicker(QWidget):
    """``Mapping project: [file] [New…]``; remembers the choice per QGIS project."""

    projectChanged = pyqtSignal(str)  # noqa: N815 (Qt naming)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Mapping project", self))
        self.file_widget = QgsFileWidget(self)
        self.file_widget.setObjectName("mappingProjectFile")
        self.file_widget.setStorageMode(QgsFileWidget.GetFile)
        self.file_widget.setFilter(GPKG_FILTER)
        self.file_widget.setToolTip(
            "The GeoPackage that holds candidates, reviews, training polygons and the inventory"
        )
        layout.addWidget(self.file_widget, 1)
        self.new_button = QToolButton(self)
        self.new_button.setText("New…")
        self.new_button.setToolTip("Create a new mapping project GeoPackage")
        self.new_button.clicked.connect(self.create_project)
        layout.addWidget(self.new_button)
        self.file_widget.setFilePath(PlgSettings.load().project_gpkg)
        self.file_widget.fileChanged.connect(self._changed)

    def path(self) -> str:
        return self.file_widget.filePath().strip()

    def set_path(self, path: str) -> None:
        self.file_widget.setFilePath(path)

    def _changed(self, path: str) -> None:
        PlgSettings.load().update(project_gpkg=path)
        self.projectChanged.emit(path)

    def create_project(self, path: str | None = None, crs_wkt: str | None = None) -> str | None:
        """Ask for a file and a CRS (the current project's by default), then create the project."""
        from ..core.project import MappingProject

        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "New mapping project", "", GPKG_FILTER)
            if not path:
                return None
        if not path.lower().endswith(".gpkg"):
            path += ".gpkg"
        if crs_wkt is None:
            dialog = QgsProjectionSelectionDialog(self)
            dialog.setMessage(
                "Coordinate reference system of the candidate and inventory layers (a projected CRS in metres)"
            )
            dialog.setCrs(QgsProject.instance().crs())
            if not dialog.exec_():
                return None
            crs_wkt = dialog.crs().toWkt()
        MappingProject.create(Path(path), crs_wkt)
        self.set_path(path)
        return path
