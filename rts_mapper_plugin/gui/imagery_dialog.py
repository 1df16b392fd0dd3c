"""Dialog: prepare a year's imagery (one scene or a mosaic of several) and register it."""

from __future__ import annotations

from pathlib import Path

from qgis.core import Qgis, QgsMapLayerProxyModel, QgsProject
from qgis.gui import QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from ..core.cluster import LOCAL
from ..core.defaults import BANDS, YEAR_RANGE
from ..core.errors import RtsMapperError
from ..tasks.base import TaskRunner
from ..tasks.imagery import PrepareImageryRequest, prepare_imagery_task
from ..toolbelt.log_handler import notify
from ..toolbelt.preferences import PlgSettings
from .cluster_choice import KEPT_ON_CANCEL, ClusterChoice, ClusterProgress
from .project_picker import ProjectPicker

RASTER_FILTER = "Rasters (*.tif *.tiff *.vrt *.jp2 *.img);;Sentinel-2 SAFE (MTD_MSIL2A.xml);;All files (*)"


class ImageryDialog(QDialog):
    """Scenes in priority order -> one 8-bit RGB GeoTIFF, registered as a year of the project."""

    def __init__(self, iface, runner: TaskRunner, parent=None) -> None:
        super().__init__(parent)
        self.iface = iface
        self.runner = runner
        self.task = None
        self.outcome: str | None = None  # "succeeded", "failed" or "cancelled" after a run
        self._suggested = ""
        self.setWindowTitle("RTS Mapper: prepare imagery")
        self.setObjectName("RtsMapperImageryDialog")
        self.resize(560, 560)
        layout = QVBoxLayout(self)

        scenes_box = QGroupBox("Scenes of one year — highest priority first (least cloudy on top)", self)
        scenes_layout = QVBoxLayout(scenes_box)
        self.scene_list = QListWidget(scenes_box)
        self.scene_list.setObjectName("sceneList")
        scenes_layout.addWidget(self.scene_list)
        row = QHBoxLayout()
        self.add_files_button = QPushButton("Add files…", scenes_box)
        self.add_files_button.clicked.connect(self._browse_files)
        self.layer_combo = QgsMapLayerComboBox(scenes_box)
        self.layer_combo.setFilters(QgsMapLayerProxyModel.Filter.RasterLayer)
        self.add_layer_button = QPushButton("Add layer", scenes_box)
        self.add_layer_button.clicked.connect(self._add_current_layer)
        for widget in (self.add_files_button, self.layer_combo, self.add_layer_button):
            row.addWidget(widget)
        scenes_layout.addLayout(row)
        row = QHBoxLayout()
        for label, slot in (("Up", -1), ("Down", 1)):
            button = QPushButton(label, scenes_box)
            button.clicked.connect(lambda _=False, step=slot: self._move(step))
            row.addWidget(button)
        remove = QPushButton("Remove", scenes_box)
        remove.clicked.connect(lambda: self.scene_list.takeItem(self.scene_list.currentRow()))
        row.addWidget(remove)
        row.addStretch(1)
        scenes_layout.addLayout(row)
        layout.addWidget(scenes_box)

        form = QFormLayout()
        self.year_spin = QSpinBox(self)
        self.year_spin.setObjectName("yearSpin")
        self.year_spin.setRange(*YEAR_RANGE)
        self.year_spin.setValue(2019)
        form.addRow("Year", self.year_spin)
        self.sensor_edit = QLineEdit("", self)
        self.sensor_edit.setPlaceholderText("from the scenes' metadata")
        form.addRow("Sensor", self.sensor_edit)
        self.bands_edit = QLineEdit(BANDS, self)
        self.bands_edit.setObjectName("bandsEdit")
        self.bands_edit.setToolTip(
            "auto: from band names, the product's metadata (Planet _metadata.json / .xml, a Sentinel-2\n"
            "SAFE), colour interpretation, or 4 bands = PlanetScope BGRN.\n"
            "Or R,G,B band numbers, e.g. 3,2,1 for Sentinel-2 / Landsat chips starting with B2,B3,B4."
        )
        form.addRow("RGB bands", self.bands_edit)
        self.percentiles_edit = QLineEdit("2,98", self)
        self.percentiles_edit.setToolTip(
            "Linear stretch between these percentiles of the valid pixels, once per mosaic"
        )
        form.addRow("Stretch percentiles", self.percentiles_edit)
        self.output_widget = QgsFileWidget(self)
        self.output_widget.setObjectName("outputFile")
        self.output_widget.setStorageMode(QgsFileWidget.StorageMode.SaveFile)
        self.output_widget.setFilter("GeoTIFF (*.tif)")
        form.addRow("Output GeoTIFF", self.output_widget)
        self.cluster_choice = ClusterChoice(
            PlgSettings.load().cluster,
            "Large regions: read, mask and stretch the scenes' windows on a Dask cluster (the same "
            "image as one process). A local cluster starts worker processes here; a scheduler's "
            "workers must see the scenes and the output folder at the same paths.",
            self,
        )
        form.addRow("Cluster", self.cluster_choice)
        layout.addLayout(form)

        self.project_picker = ProjectPicker(self, iface)
        layout.addWidget(self.project_picker)
        self.register_check = QCheckBox("Register as this year of the mapping project", self)
        self.register_check.setChecked(True)
        self.load_check = QCheckBox('Load the years into the "Time-lapse" group', self)
        self.load_check.setChecked(True)
        layout.addWidget(self.register_check)
        layout.addWidget(self.load_check)

        self.progress = QProgressBar(self)
        self.progress.setRange(0, 100)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.cluster_progress = ClusterProgress(self)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.cluster_progress)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.run_button = self.buttons.addButton("Run", QDialogButtonBox.ButtonRole.AcceptRole)
        self.run_button.setObjectName("runButton")
        self.cancel_button = self.buttons.addButton("Cancel run", QDialogButtonBox.ButtonRole.RejectRole)
        self.cancel_button.setEnabled(False)
        self.buttons.clicked.connect(self._button_clicked)
        layout.addWidget(self.buttons)
        self.year_spin.valueChanged.connect(self._suggest_output)
        self.project_picker.projectChanged.connect(self._suggest_output)
        self._suggest_output()

    # -- scenes --
    def add_files(self, paths) -> None:
        for path in paths:
            self.scene_list.addItem(str(path))

    def scenes(self) -> list[str]:
        return [self.scene_list.item(i).text() for i in range(self.scene_list.count())]

    def _browse_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Scenes of one year", "", RASTER_FILTER)
        self.add_files(paths)

    def _add_current_layer(self) -> None:
        layer = self.layer_combo.currentLayer()
        if layer is not None:
            from ..qgis_layers.sources import layer_file

            self.add_files([layer_file(layer)])

    def _move(self, step: int) -> None:
        row = self.scene_list.currentRow()
        target = row + step
        if row < 0 or not 0 <= target < self.scene_list.count():
            return
        item = self.scene_list.takeItem(row)
        self.scene_list.insertItem(target, item)
        self.scene_list.setCurrentRow(target)

    def _suggest_output(self, *_args) -> None:
        """<project folder>/imagery/<year>.tif, unless the user typed another path."""
        current = self.output_widget.filePath()
        if current and current != self._suggested:
            return
        project = self.project_picker.path()
        if project:
            suggestion = str(Path(project).parent / "imagery" / f"{self.year_spin.value()}.tif")
            self._suggested = suggestion
            self.output_widget.setFilePath(suggestion)

    # -- running --
    def _button_clicked(self, button) -> None:
        if button is self.run_button:
            self.run()
        elif button is self.cancel_button:
            if self.task is not None:
                self.task.cancel()
        else:
            self.close()

    def request(self) -> PrepareImageryRequest:
        scenes = self.scenes()
        if not scenes:
            raise RtsMapperError("add at least one scene")
        out = self.output_widget.filePath().strip()
        if not out:
            raise RtsMapperError("choose where to write the prepared GeoTIFF")
        register = self.register_check.isChecked()
        project = self.project_picker.path() if register else ""
        if register and not project:
            raise RtsMapperError("choose or create a mapping project to register the year in (or untick it)")
        return PrepareImageryRequest(
            sources=tuple(scenes),
            out=out,
            year=self.year_spin.value() if register else None,
            project_gpkg=project or None,
            sensor=self.sensor_edit.text().strip(),
            bands=self.bands_edit.text().strip() or BANDS,
            percentiles=self.percentiles_edit.text().strip() or None,
            cluster=self.cluster_choice.value() or None,
        )

    def run(self) -> None:
        try:
            request = self.request()
        except RtsMapperError as exc:
            self._finish("failed", str(exc), Qgis.MessageLevel.Warning)
            return
        self.outcome = None
        PlgSettings.load().update(cluster=request.cluster or "")
        self.task = prepare_imagery_task(request)
        self.task.progressChanged.connect(lambda value: self.progress.setValue(int(value)))
        self.task.succeeded.connect(lambda result, r=request: self._succeeded(r, result))
        self.task.failed.connect(lambda message: self._finish("failed", message, Qgis.MessageLevel.Critical))
        cancelled = "Cancelled: nothing was written." + (KEPT_ON_CANCEL if request.cluster else "")
        self.task.cancelled.connect(lambda: self._finish("cancelled", cancelled, Qgis.MessageLevel.Info))
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText("Preparing…")
        self.cluster_progress.follow(self.task)
        self.runner.start(self.task)

    def _succeeded(self, request: PrepareImageryRequest, result) -> None:
        message = (
            f"{result.path.name}: {result.width} x {result.height} px, bands R,G,B = "
            f"{result.bands.red},{result.bands.green},{result.bands.blue} ({result.bands.reason}), "
            f"{result.seconds:.1f} s"
        )
        if result.date_start:
            message += f", acquired {result.date_start}..{result.date_end}"
        if request.project_gpkg:
            message += f"; registered as {request.year}"
            if self.load_check.isChecked():
                from ..core.project.store import MappingProject
                from ..qgis_layers.timelapse import load_time_lapse

                navigation = self.iface.mapCanvas().temporalController() if self.iface else None
                load_time_lapse(MappingProject.open(request.project_gpkg), QgsProject.instance(), navigation)
        self._finish("succeeded", message, Qgis.MessageLevel.Success)

    def _finish(self, outcome: str, message: str, level) -> None:
        self.outcome = outcome
        self.task = None
        self.cluster_progress.stop(local=self.cluster_choice.value().startswith(LOCAL))
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setValue(100 if outcome == "succeeded" else 0)
        self.status.setText(message)
        notify(self.iface, message, level)
