"""Inference dock: run DeepLabv3+ over a year layer in a background task, candidates on the map."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsMapLayer,
    QgsProject,
    QgsRasterLayer,
)
from qgis.gui import QgsExtentWidget, QgsFileWidget
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
)

from ..core.cluster import LOCAL
from ..core.defaults import BACKENDS, DEVICES, THRESHOLD_RANGE, TTA_VIEWS
from ..core.environment import deep_learning_missing, missing_packages
from ..core.errors import RtsMapperError
from ..core.model.model_file import INFERENCE_MODEL_FILTER
from ..qgis_layers.layers import layer_crs_wkt
from ..qgis_layers.sources import layer_file
from ..qgis_layers.timelapse import YEAR_PROPERTY
from ..tasks.base import CoreTask, TaskRunner
from ..tasks.model_tasks import InferenceRequest, inference_task
from ..toolbelt.i18n import QT_TR_NOOP, tr
from ..toolbelt.preferences import PlgSettings
from .cluster_choice import KEPT_ON_CANCEL, ClusterChoice, ClusterProgress
from .dock_base import RtsDock
from .project_picker import ProjectPicker, model_row, read_card_or_say


@dataclass(frozen=True)
class ImageChoice:
    """A prepared image to train on or infer over: a raster on the map, or a year the mapping
    project registered that is not on the map (read from its file)."""

    label: str
    path: str
    year: int | None = None
    layer_id: str | None = None  # None: not on the map


def image_choices(qgs_project: QgsProject, mapping=None) -> list[ImageChoice]:
    """Registered years first (newest first; those of ``mapping`` not on the map too), then the
    other file-backed rasters on the map."""
    years, others = {}, []
    for layer in qgs_project.mapLayers().values():
        path = layer_file(layer)
        if layer.type() != QgsMapLayer.RasterLayer or not Path(path).is_file():
            continue
        year = layer.customProperty(YEAR_PROPERTY)
        if year is not None:
            years[int(year)] = ImageChoice(f"{int(year)} (registered year)", path, int(year), layer.id())
        else:
            others.append(ImageChoice(layer.name(), path, None, layer.id()))
    if mapping is not None:
        for year_layer in mapping.years():
            if year_layer.year not in years and year_layer.raster_path.is_file():
                label = f"{year_layer.year} (registered year, not on the map)"
                years[year_layer.year] = ImageChoice(label, str(year_layer.raster_path), year_layer.year)
    return [years[y] for y in sorted(years, reverse=True)] + sorted(others, key=lambda c: c.label.lower())


def fill_image_combo(combo: QComboBox, choices: list[ImageChoice]) -> None:
    """Refill an image combo, keeping the image chosen (by its file) when it is still offered."""
    current = combo.currentData()
    combo.blockSignals(True)
    combo.clear()
    for choice in choices:
        combo.addItem(choice.label, choice)
    paths = [c.path for c in choices]
    combo.setCurrentIndex(paths.index(current.path) if current is not None and current.path in paths else 0)
    combo.blockSignals(False)


def _file_crs(path: str) -> str:
    """The CRS (WKT) a raster file says it is in, read by QGIS's GDAL provider."""
    return QgsRasterLayer(path, "probe", "gdal").crs().toWkt()


TTA_CHOICES = tuple((n, "Off (1 view)" if n == 1 else f"{n} views ({n}× the model time)") for n in TTA_VIEWS)


BACKEND_LABELS = ("Auto", "PyTorch", "ONNX Runtime")  # for defaults.BACKENDS, in order


class InferenceDock(RtsDock):
    title = QT_TR_NOOP("RTS Mapper: Inference")
    object_name = "RtsMapperInferenceDock"

    def __init__(self, iface, runner: TaskRunner | None = None, parent=None) -> None:
        super().__init__(iface, parent)
        self.runner = runner or TaskRunner()
        self.last_run = None
        self.last_layers: tuple = ()
        self._request: InferenceRequest | None = None
        settings = PlgSettings.load()
        missing = deep_learning_missing()
        if missing:
            self.add_missing_packages_banner(
                missing,
                "Inference of .safetensors models",
                ""
                if missing_packages({"onnxruntime": "onnxruntime"})
                else "ONNX models (.onnx) run without them, through onnxruntime. ",
            )

        self.project_picker = ProjectPicker(self, self.iface)
        self.body_layout.addWidget(self.project_picker)
        form = QFormLayout()
        self.image_combo = QComboBox(self)
        self.image_combo.setObjectName("imageCombo")
        self.image_combo.setToolTip(
            "A prepared 8-bit RGB layer backed by a file; registered years come first"
        )
        form.addRow("Image", self.image_combo)
        self.model_widget = QgsFileWidget(self)
        self.model_widget.setObjectName("modelFile")
        self.model_widget.setFilter(INFERENCE_MODEL_FILTER)
        form.addRow("Model file", model_row(self.model_widget, self.project_picker, self))
        self.card_label = QLabel("", self)
        self.card_label.setWordWrap(True)
        self.card_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.card_label.setStyleSheet("color: palette(dark);")
        form.addRow("", self.card_label)
        self.extent_widget = QgsExtentWidget(self, QgsExtentWidget.WidgetStyle.CondensedStyle)
        self.extent_widget.setNullValueAllowed(True, "Whole layer")
        self.extent_widget.clear()  # null: the whole layer
        if iface is not None:
            self.extent_widget.setMapCanvas(iface.mapCanvas())
        form.addRow("Extent", self.extent_widget)
        device_row = QHBoxLayout()
        self.device_combo = QComboBox(self)
        for key in DEVICES:
            self.device_combo.addItem(key.upper() if key != "auto" else "Auto", key)
        self.device_combo.setCurrentIndex(max(0, self.device_combo.findData(settings.device)))
        self.device_label = QLabel("", self)
        device_row.addWidget(self.device_combo)
        device_row.addWidget(self.device_label, 1)
        form.addRow("Device", device_row)
        self.backend_combo = QComboBox(self)
        self.backend_combo.setObjectName("backendCombo")
        for key, label in zip(BACKENDS, BACKEND_LABELS):
            self.backend_combo.addItem(label, key)
        self.backend_combo.setCurrentIndex(max(0, self.backend_combo.findData(settings.backend)))
        self.backend_combo.setToolTip(
            "What runs a .safetensors model. Auto: ONNX Runtime on the CPU (faster there, same "
            "probabilities within 1e-4; the model is converted once and cached) where onnx and "
            "onnxruntime are installed, else PyTorch. An .onnx model always runs in ONNX Runtime."
        )
        form.addRow("Engine", self.backend_combo)
        self.threshold_spin = QDoubleSpinBox(self)
        self.threshold_spin.setRange(*THRESHOLD_RANGE)
        self.threshold_spin.setSingleStep(0.05)
        self.threshold_spin.setValue(settings.threshold)
        form.addRow("Threshold", self.threshold_spin)
        self.min_area_spin = QDoubleSpinBox(self)
        self.min_area_spin.setRange(0, 1_000_000)
        self.min_area_spin.setDecimals(0)
        self.min_area_spin.setSingleStep(100)
        self.min_area_spin.setSuffix(" m²")
        self.min_area_spin.setValue(settings.min_area_m2)
        self.min_area_spin.setToolTip(
            "Smallest candidate kept; choosing a model sets the value calibrated on its validation "
            "chips (the paper's smallest slump is 0.05 ha, 500 m²)"
        )
        form.addRow("Minimum area", self.min_area_spin)
        self.tta_combo = QComboBox(self)
        self.tta_combo.setObjectName("ttaCombo")
        for views, label in TTA_CHOICES:
            self.tta_combo.addItem(label, views)
        self.tta_combo.setToolTip(
            "Test-time ensemble: each tile is also seen flipped and rotated and the probabilities are "
            "averaged (smoother, more complete outlines); N views take N times the model time"
        )
        form.addRow("Ensemble", self.tta_combo)
        self.cluster_choice = ClusterChoice(
            settings.cluster,
            "Large regions: run the blocks of the image on a Dask cluster (the same raster and "
            "candidates as one process). A local cluster starts worker processes here; a "
            "scheduler's workers must see the image and model at the same paths.",
            self,
        )
        self.cluster_combo, self.scheduler_edit = self.cluster_choice.combo, self.cluster_choice.address
        form.addRow("Cluster", self.cluster_choice)
        self.iteration_spin = QSpinBox(self)
        self.iteration_spin.setRange(1, 999)
        form.addRow("Iteration", self.iteration_spin)
        self.body_layout.addLayout(form)

        self.add_run_controls(tr("Run inference"))
        self.add_status()
        self.dashboard = ClusterProgress(self)
        self.body_layout.addWidget(self.dashboard)
        self.body_layout.addStretch(1)

        self.model_widget.fileChanged.connect(self._show_card)
        self.project_picker.projectChanged.connect(self._project_changed)
        project = QgsProject.instance()
        for signal in (project.layersAdded, project.layersRemoved):
            self.listen(signal, self.refresh_images)
        # the remembered model comes back with the threshold and area the user ran it with
        self.model_widget.blockSignals(True)
        self.model_widget.setFilePath(settings.model_path)
        self.model_widget.blockSignals(False)
        self._show_card(settings.model_path, operating_point=False)
        self._project_changed(self.project_picker.path())  # the images too
        self._detect_devices()

    # -- choices --
    def refresh_images(self, *_args) -> None:
        fill_image_combo(
            self.image_combo, image_choices(QgsProject.instance(), self.project_picker.mapping_project())
        )

    def set_model_path(self, path: str) -> None:
        self.model_widget.setFilePath(path)

    def _show_card(self, path: str, operating_point: bool = True) -> None:
        if not path:
            self.card_label.setText(
                "Choose a model: one trained by RTS Mapper (.safetensors), or an ONNX segmentation model "
                "with Deepness metadata (.onnx)."
            )
            return
        card, problem = read_card_or_say(path)
        if card is None:
            self.card_label.setText(problem)
            return
        self.card_label.setText(card.summary())
        if operating_point:  # a model chosen: its operating point calibrated on validation chips
            self.threshold_spin.setValue(card.threshold)
            self.min_area_spin.setValue(card.min_area_m2)

    def _project_changed(self, path: str) -> None:
        from ..core.project.store import MappingProject

        try:
            self.iteration_spin.setValue(MappingProject.open(path).next_iteration() if path else 1)
        except RtsMapperError:
            self.iteration_spin.setValue(1)
        self.refresh_images()

    def _detect_devices(self) -> None:
        """Ask torch about CUDA in a background task (importing torch takes seconds)."""
        if deep_learning_missing():
            self.device_label.setText("torch is not installed")
            return

        def job(_feedback):
            from ..core.environment import environment_report

            return environment_report()

        task = CoreTask("RTS Mapper: detect devices", job)
        task.succeeded.connect(self._devices_detected)
        self.runner.start(task)

    def _devices_detected(self, report) -> None:
        index = self.device_combo.findData("cuda")
        if report.cuda_available:
            self.device_combo.setItemText(index, f"CUDA ({', '.join(report.cuda_devices)})")
            self.device_label.setText(f"detected: {report.cuda_devices[0]}")
        else:
            self.device_combo.model().item(index).setEnabled(False)
            self.device_combo.setItemText(index, "CUDA (not available)")
            if self.device_combo.currentData() == "cuda":
                self.device_combo.setCurrentIndex(0)
            self.device_label.setText(f"detected: CPU, {report.torch_threads} threads")

    # -- running --
    def request(self) -> InferenceRequest:
        project = self.project_picker.path()
        if not project:
            raise RtsMapperError(
                "choose or create a mapping project first (the GeoPackage that will hold the candidates)"
            )
        choice = self.image_combo.currentData()
        if choice is None:
            raise RtsMapperError("choose an image: prepare a year (RTS Mapper › Prepare imagery…)")
        layer = QgsProject.instance().mapLayer(choice.layer_id) if choice.layer_id else None
        model = self.model_widget.filePath().strip()
        if not model:
            raise RtsMapperError("choose a model file (.safetensors or .onnx)")
        if not Path(model).is_file():
            raise RtsMapperError("no such model file", model)
        extent = None
        image_crs = layer_crs_wkt(layer) if layer is not None else None
        if self.extent_widget.isValid():  # not null: a canvas, layer or drawn extent
            rectangle = self.extent_widget.outputExtent()
            target = (
                layer.crs() if layer is not None else QgsCoordinateReferenceSystem(_file_crs(choice.path))
            )
            transform = QgsCoordinateTransform(self.extent_widget.outputCrs(), target, QgsProject.instance())
            rectangle = transform.transformBoundingBox(rectangle)
            extent = (rectangle.xMinimum(), rectangle.yMinimum(), rectangle.xMaximum(), rectangle.yMaximum())
        from ..core.model.inference import InferConfig

        return InferenceRequest(
            project_gpkg=project,
            model_path=model,
            image_path=choice.path,
            config=InferConfig(
                device=self.device_combo.currentData(),
                backend=self.backend_combo.currentData(),
                threshold=self.threshold_spin.value(),
                min_area_m2=self.min_area_spin.value(),
                tta=self.tta_combo.currentData(),
            ),
            extent=extent,
            iteration=self.iteration_spin.value(),
            year=choice.year,
            image_crs=image_crs,
            cluster=self.cluster() or None,
        )

    def cluster(self) -> str:
        return self.cluster_choice.value()

    def run(self) -> None:
        request = self.checked_request()
        if request is None:
            return
        PlgSettings.load().update(
            model_path=request.model_path,
            device=request.config.device,
            backend=request.config.backend,
            threshold=request.config.threshold,
            min_area_m2=request.config.min_area_m2,
            project_gpkg=request.project_gpkg,
            cluster=request.cluster or "",
        )
        self._request = request
        self.start_task(
            inference_task(request),
            "Running inference…",
            succeeded=self._succeeded,
            cancelled=lambda: self.finish(
                "cancelled",
                "Inference cancelled: nothing was added." + (KEPT_ON_CANCEL if request.cluster else ""),
                Qgis.MessageLevel.Info,
            ),
        )
        self.dashboard.follow(self.task)

    def finish(self, outcome: str, message: str, level) -> None:
        super().finish(outcome, message, level)
        self.dashboard.stop(local=self.cluster().startswith(LOCAL))

    def _succeeded(self, run) -> None:
        from ..core.project.store import MappingProject
        from ..qgis_layers.layers import add_run_layers

        project = MappingProject.open(self._request.project_gpkg)
        self.last_run = run
        try:
            self.last_layers = add_run_layers(project, run)
        except ValueError as exc:
            self.finish("failed", str(exc), Qgis.MessageLevel.Critical)
            return
        rate = run.area_km2 / (run.seconds / 60) if run.seconds else 0.0
        message = (
            f"{run.candidates} candidates found, {run.set_aside_known} set aside as already known; "
            f"{run.area_km2:.1f} km² in {run.seconds:.0f} s ({rate:.1f} km²/min) on {run.device}."
        )
        self.iteration_spin.setValue(max(self.iteration_spin.value(), (run.iteration or 0) + 1))
        self.finish("succeeded", message, Qgis.MessageLevel.Success)
