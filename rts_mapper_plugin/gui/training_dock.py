"""Training dock: fine-tune DeepLabv3+ from positive and negative polygons, with a live curve."""

from __future__ import annotations

import queue
import time
from pathlib import Path

from qgis.core import Qgis, QgsMapLayer, QgsMapLayerProxyModel, QgsProject
from qgis.gui import QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt.QtCore import Qt, QTimer, pyqtSignal
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
)

from ..core.defaults import CHIP_SIZE, CHIP_SIZE_RANGE, ENCODERS, MAX_BATCH_SIZE, MAX_EPOCHS
from ..core.environment import deep_learning_missing
from ..core.errors import RtsMapperError
from ..core.model.model_file import MODEL_FILTER
from ..core.model.weights import IMAGENET, is_imagenet
from ..core.project.store import CANDIDATE_STATUSES
from ..tasks.base import TaskRunner
from ..tasks.model_tasks import TrainingRequest, onnx_export_task, training_task
from ..toolbelt.i18n import QT_TR_NOOP, tr
from ..toolbelt.log_handler import notify
from ..toolbelt.preferences import PlgSettings
from .curve_widget import CurveWidget
from .dock_base import RtsDock
from .inference_dock import image_choices
from .project_picker import ProjectPicker, model_row

PROJECT_POSITIVES = "Project: training positives"
PROJECT_NEGATIVES = "Project: training negatives"
WEIGHTS_NONE = "None (random start)"
WEIGHTS_IMAGENET = "ImageNet (download or cache)"
WEIGHTS_FROM_FILE = "From file…"
WEIGHTS_CHOICES = (WEIGHTS_NONE, WEIGHTS_IMAGENET, WEIGHTS_FROM_FILE)
UNCONFIRMED = tuple(status for status in CANDIDATE_STATUSES if status != "accepted")


def epoch_scores(entry: dict) -> str:
    """ "loss 0.412, validation F1 0.71 (threshold 0.45, 500 m²), IoU 0.52" for the status line."""
    text = f"loss {entry['train_loss']:.3f}"
    if entry.get("val_f1") is None:
        return text + ", no validation chips"
    return (
        f"{text}, validation F1 {entry['val_f1']:.2f} (threshold {entry['val_threshold']:.2f}, "
        f"{entry['val_min_area_m2']:.0f} m²), IoU {entry['val_iou']:.2f}"
    )


def refuse_unconfirmed(layer, project_item: str) -> None:
    """A candidate layer trains a model only on its accepted features: rejected or unreviewed
    ones would teach it that look-alikes are slumps."""
    if layer.fields().indexOf("status") < 0:
        return
    counts: dict[str, int] = {}
    total = 0
    for feature in layer.getFeatures():  # what the layer shows: its filter applies
        total += 1
        status = str(feature["status"])
        if status in UNCONFIRMED:
            counts[status] = counts.get(status, 0) + 1
    if counts:
        listed = ", ".join(f"{n} {status}" for status, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        raise RtsMapperError(
            f"{layer.name()}: {listed} of its {total} features are not confirmed RTSs. Train from "
            f"“{project_item}”, or filter the layer to the accepted ones "
            "(Layer › Filter…: \"status\" = 'accepted')"
        )


class TrainingDock(RtsDock):
    title = QT_TR_NOOP("RTS Mapper: Training")
    object_name = "RtsMapperTrainingDock"
    reset_progress_on_failure = False
    cancelling_text = "Cancelling: the best model so far is kept…"

    modelTrained = pyqtSignal(str)  # noqa: N815 (Qt naming): a new model file to offer for inference

    def __init__(self, iface, runner: TaskRunner | None = None, parent=None) -> None:
        super().__init__(iface, parent)
        self.runner = runner or TaskRunner()
        self.result = None
        self._started = 0.0
        self._estimate = ""
        settings = PlgSettings.load()
        missing = deep_learning_missing()
        if missing:
            self.add_missing_packages_banner(missing, "Training")

        self.project_picker = ProjectPicker(self, self.iface)
        self.body_layout.addWidget(self.project_picker)
        form = QFormLayout()
        self.positives_combo = QgsMapLayerComboBox(self)
        self.positives_combo.setObjectName("positivesCombo")
        self.positives_combo.setFilters(QgsMapLayerProxyModel.Filter.PolygonLayer)
        self.positives_combo.setAdditionalItems([PROJECT_POSITIVES])
        # the confirmed RTSs by default, never whichever polygon layer happens to come first
        self.positives_combo.setCurrentIndex(self.positives_combo.findText(PROJECT_POSITIVES))
        self.positives_combo.setToolTip(
            "The project's confirmed RTSs, or a polygon layer of RTSs (a candidate layer only when "
            "filtered to its accepted features)"
        )
        form.addRow("RTS polygons", self.positives_combo)
        self.negatives_combo = QgsMapLayerComboBox(self)
        self.negatives_combo.setObjectName("negativesCombo")
        self.negatives_combo.setFilters(QgsMapLayerProxyModel.Filter.PolygonLayer)
        self.negatives_combo.setAllowEmptyLayer(True)
        self.negatives_combo.setAdditionalItems([PROJECT_NEGATIVES])
        self.negatives_combo.setLayer(None)
        form.addRow("Non-RTS polygons", self.negatives_combo)
        self.images_list = QListWidget(self)
        self.images_list.setObjectName("imagesList")
        self.images_list.setMaximumHeight(90)
        self.images_list.setToolTip(
            "Prepared images to cut chips from (a polygon uses the first image covering it)"
        )
        form.addRow("Images", self.images_list)
        self.encoder_combo = QComboBox(self)
        self.encoder_combo.addItems(ENCODERS)
        self.encoder_combo.setCurrentText(settings.encoder)
        form.addRow("Encoder", self.encoder_combo)
        self.weights_combo = QComboBox(self)
        self.weights_combo.setObjectName("weightsCombo")
        self.weights_combo.addItems(WEIGHTS_CHOICES)
        self.weights_combo.setToolTip(
            "How the encoder starts: at random; from segmentation-models-pytorch's ImageNet weights "
            "(downloaded once into the Hugging Face cache, then reused offline); or from a local file"
        )
        form.addRow("ImageNet weights", self.weights_combo)
        self.weights_widget = QgsFileWidget(self)
        self.weights_widget.setObjectName("weightsFile")
        self.weights_widget.setFilter("Weights (*.safetensors *.pth *.pt)")
        self.weights_widget.setToolTip("Local ImageNet weights for the encoder (.safetensors, .pth)")
        form.addRow("Weights file", self.weights_widget)
        self.weights_combo.currentTextChanged.connect(
            lambda choice: self.weights_widget.setEnabled(choice == WEIGHTS_FROM_FILE)
        )
        self._restore_weights(settings.imagenet_weights)
        self.init_widget = QgsFileWidget(self)
        self.init_widget.setFilter(MODEL_FILTER)
        self.init_widget.setToolTip("Fine-tune from a previous model (the iterative loop); empty: train anew")
        form.addRow("Fine-tune from", model_row(self.init_widget, self.project_picker, self))
        self.epochs_spin = QSpinBox(self)
        self.epochs_spin.setRange(1, MAX_EPOCHS)
        self.epochs_spin.setValue(settings.epochs)
        form.addRow("Epochs", self.epochs_spin)
        self.batch_spin = QSpinBox(self)
        self.batch_spin.setRange(1, MAX_BATCH_SIZE)
        self.batch_spin.setValue(settings.batch_size)
        form.addRow("Batch size", self.batch_spin)
        self.chip_spin = QSpinBox(self)
        self.chip_spin.setRange(*CHIP_SIZE_RANGE)
        self.chip_spin.setSingleStep(32)
        self.chip_spin.setValue(CHIP_SIZE)
        self.chip_spin.setSuffix(" px")
        form.addRow("Chip size", self.chip_spin)
        self.output_widget = QgsFileWidget(self)
        self.output_widget.setObjectName("modelOutput")
        self.output_widget.setStorageMode(QgsFileWidget.StorageMode.SaveFile)
        self.output_widget.setFilter(MODEL_FILTER)
        form.addRow("Save model as", self.output_widget)
        self.export_onnx_button = QPushButton("Export as ONNX…", self)
        self.export_onnx_button.setToolTip(
            "The model above as ONNX, with the metadata the Deepness plugin reads (also for onnxruntime)"
        )
        self.export_onnx_button.clicked.connect(lambda: self.export_onnx())
        form.addRow("", self.export_onnx_button)
        self.body_layout.addLayout(form)

        self.add_run_controls(tr("Train"), tr("Cancel (keep best)"))
        self.eta_label = QLabel("", self)
        self.eta_label.setObjectName("etaLabel")
        self.eta_label.setWordWrap(True)
        self.body_layout.addWidget(self.eta_label)
        self.curve = CurveWidget(self)
        self.body_layout.addWidget(self.curve)
        self.add_status()
        self.body_layout.addStretch(1)

        self.poll = QTimer(self)
        self.poll.setInterval(300)
        self.poll.timeout.connect(self._drain_events)
        self.project_picker.projectChanged.connect(self._suggest_output)
        self.project_picker.projectChanged.connect(self.refresh_images)
        project = QgsProject.instance()
        for signal in (project.layersAdded, project.layersRemoved):
            self.listen(signal, self.refresh_images)
        self.refresh_images()
        self._suggest_output()

    # -- choices --
    def _restore_weights(self, saved: str) -> None:
        """The saved choice: "" (none), "imagenet", or a file path."""
        if is_imagenet(saved):
            choice = WEIGHTS_IMAGENET
        else:
            choice = WEIGHTS_FROM_FILE if saved else WEIGHTS_NONE
            self.weights_widget.setFilePath(saved)
        self.weights_combo.setCurrentText(choice)
        self.weights_widget.setEnabled(choice == WEIGHTS_FROM_FILE)

    def chosen_weights(self) -> str | None:
        """None, "imagenet" or a weights file path, as TrainConfig takes it."""
        choice = self.weights_combo.currentText()
        if choice == WEIGHTS_IMAGENET:
            return IMAGENET
        if choice == WEIGHTS_FROM_FILE:
            path = self.weights_widget.filePath().strip()
            if not path:
                raise RtsMapperError("choose the weights file, or set ImageNet weights to None or ImageNet")
            return path
        return None

    def refresh_images(self, *_args) -> None:
        checked = set(self.checked_images())
        first = self.images_list.count() == 0
        self.images_list.clear()
        choices = image_choices(QgsProject.instance(), self.project_picker.mapping_project())
        for index, choice in enumerate(choices):
            item = QListWidgetItem(choice.label, self.images_list)
            item.setData(Qt.ItemDataRole.UserRole, choice.path)
            item.setData(Qt.ItemDataRole.UserRole + 1, choice.layer_id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            wanted = (first and index == 0) or item.data(Qt.ItemDataRole.UserRole) in checked
            item.setCheckState(Qt.CheckState.Checked if wanted else Qt.CheckState.Unchecked)

    def checked_images(self) -> list[str]:
        return [item.data(Qt.ItemDataRole.UserRole) for item in self._checked_items()]

    def _checked_items(self) -> list[QListWidgetItem]:
        items = (self.images_list.item(i) for i in range(self.images_list.count()))
        return [item for item in items if item.checkState() == Qt.CheckState.Checked]

    def _image_crs(self) -> tuple[tuple[str, str], ...]:
        """(image, its layer's CRS) of the ticked images, read now: a CRS just set counts."""
        from ..qgis_layers.layers import layer_crs_wkt

        pairs = []
        for item in self._checked_items():
            layer = QgsProject.instance().mapLayer(item.data(Qt.ItemDataRole.UserRole + 1) or "")
            if layer is not None:
                pairs.append((item.data(Qt.ItemDataRole.UserRole), layer_crs_wkt(layer)))
        return tuple(pairs)

    def _suggest_output(self, *_args) -> None:
        project = self.project_picker.path()
        if project and not self.output_widget.filePath():
            stamp = time.strftime("%Y%m%d-%H%M")
            folder = Path(project).parent / "models"
            self.output_widget.setFilePath(
                str(folder / f"model-{stamp}-{self.encoder_combo.currentText()}.safetensors")
            )

    def _polygon_source(self, combo: QgsMapLayerComboBox, project_item: str, table: str, required: bool):
        """What to train from: the project's table (a URI), or a layer's features as QGIS shows
        them (its filter applied, any provider), refused when they carry unreviewed or rejected
        candidates."""
        if combo.currentText() == project_item and combo.currentLayer() is None:
            project = self.project_picker.path()
            if not project:
                raise RtsMapperError("choose a mapping project to use its training sets")
            from ..core.project.store import MappingProject

            if not len(MappingProject.open(project).features(table)):
                if required:
                    raise RtsMapperError(f"the project has no {table.replace('_', ' ')} yet")
                return None
            return f"{project}|layername={table}"
        layer = combo.currentLayer()
        if layer is None:
            if required:
                raise RtsMapperError("choose the RTS polygons to train from")
            return None
        if layer.type() != QgsMapLayer.VectorLayer:
            raise RtsMapperError(f"{layer.name()}: not a polygon layer")
        if not layer.crs().isValid():
            raise RtsMapperError(
                f"{layer.name()}: the layer has no coordinate reference system: set it in "
                "Layer Properties › Source"
            )
        if required:
            refuse_unconfirmed(layer, project_item)
        from ..qgis_layers.layers import layer_features

        return layer_features(layer)

    def request(self) -> TrainingRequest:
        positives = self._polygon_source(self.positives_combo, PROJECT_POSITIVES, "training_positives", True)
        negatives = self._polygon_source(self.negatives_combo, PROJECT_NEGATIVES, "training_negatives", False)
        images = self.checked_images()
        if not images:
            raise RtsMapperError("tick at least one prepared image to cut training chips from")
        out = self.output_widget.filePath().strip()
        if not out:
            raise RtsMapperError("choose where to save the model (.safetensors)")
        if not out.endswith(".safetensors"):
            out += ".safetensors"
        chips_dir = str(Path(out).with_suffix("")) + "_chips"
        from ..core.model.training import TrainConfig

        return TrainingRequest(
            images=tuple(images),
            positives=positives,
            negatives=negatives,
            chips_dir=chips_dir,
            model_out=out,
            config=TrainConfig(
                encoder=self.encoder_combo.currentText(),
                epochs=self.epochs_spin.value(),
                batch_size=self.batch_spin.value(),
                imagenet_weights=self.chosen_weights(),
                init_model=self.init_widget.filePath() or None,
            ),
            chip_size=self.chip_spin.value(),
            image_crs=self._image_crs(),
        )

    # -- running --
    def run(self) -> None:
        request = self.checked_request()
        if request is None:
            return
        PlgSettings.load().update(
            encoder=request.config.encoder,
            epochs=request.config.epochs,
            batch_size=request.config.batch_size,
            imagenet_weights=request.config.imagenet_weights or "",
        )
        self.result = None
        self._model_out = request.model_out
        self.curve.reset(request.config.epochs)
        self._estimate = ""
        self.eta_label.setText("The expected duration is measured on the first training steps…")
        self._started = time.monotonic()
        fetching = is_imagenet(request.config.imagenet_weights) and not request.config.init_model
        self.start_task(
            training_task(request),
            "Getting the ImageNet weights (cache or download), then cutting chips…"
            if fetching
            else "Cutting chips…",
            succeeded=self._succeeded,
            cancelled=self._cancelled,
            progress=self._progress,
        )
        self.poll.start()

    def _progress(self, value: float) -> None:
        self.progress.setValue(int(value))
        elapsed = time.monotonic() - self._started
        if value > 1:
            remaining = elapsed * (100 - value) / value
            self.eta_label.setText(
                f"{self._estimate}\n{elapsed / 60:.1f} min elapsed, about {remaining / 60:.1f} min to go".strip()
            )

    def _drain_events(self) -> None:
        if self.task is None:
            self.poll.stop()
            return
        while True:
            try:
                event = self.task.events.get_nowait()
            except queue.Empty:
                break
            if event["kind"] == "chips":
                self.status.setText(
                    f"{event['chips']} chips ({event['train_chips']} training, {event['val_chips']} validation); training…"
                )
            elif event["kind"] == "estimate":
                self._estimate = f"Expected: {event['text']}"
                self.eta_label.setText(self._estimate)
            elif event["kind"] == "epoch":
                self.curve.add(event)
                self.status.setText(f"Epoch {event['epoch']}: {epoch_scores(event)}")

    def _succeeded(self, result) -> None:
        self._drain_events()
        self.result = result
        card = result.card
        scores = (
            "no validation chips"
            if result.best_val_iou is None
            else f"validation F1 {result.best_val_f1:.2f} at IoU 0.5, calibrated threshold "
            f"{card.threshold:.2f} and minimum area {card.min_area_m2:.0f} m²"
        )
        message = (
            f"Model saved: {result.model_path.name} (best epoch {result.best_epoch}, {scores}; "
            f"{result.epochs_run} epochs in {result.seconds / 60:.1f} min on {result.device}). "
            "It is now offered in the Inference dock."
        )
        self._offer(str(result.model_path))
        self.finish("succeeded", message, Qgis.MessageLevel.Success)

    def _cancelled(self) -> None:
        self._drain_events()
        kept = Path(self._model_out)
        if kept.exists():
            self._offer(str(kept))
            message = (
                f"Training cancelled; the best model so far is kept: {kept.name} (offered for inference)."
            )
        else:
            message = "Training cancelled before the first epoch ended: no model was saved."
        self.finish("cancelled", message, Qgis.MessageLevel.Info)

    def export_onnx(self, out: str | None = None) -> None:
        """The model in "Save model as" (the one just trained, or any chosen) as ONNX, in a task."""
        model = self.output_widget.filePath().strip()
        if not model or not Path(model).is_file():
            notify(
                self.iface,
                "Train a model first, or choose a model file in “Save model as”.",
                Qgis.MessageLevel.Warning,
            )
            return
        if out is None:
            out, _ = QFileDialog.getSaveFileName(
                self, "Export as ONNX", str(Path(model).with_suffix(".onnx")), "ONNX (*.onnx)"
            )
            if not out:
                return
        self.start_task(
            onnx_export_task(model, out),
            "Exporting as ONNX…",
            succeeded=lambda path: self.finish(
                "succeeded",
                f"ONNX written: {path} (for the Deepness plugin and onnxruntime)",
                Qgis.MessageLevel.Success,
            ),
            cancelled=lambda: self.finish(
                "cancelled", "ONNX export cancelled: nothing written.", Qgis.MessageLevel.Info
            ),
        )

    def _offer(self, path: str) -> None:
        PlgSettings.load().update(model_path=path)
        self.modelTrained.emit(path)

    def finish(self, outcome: str, message: str, level) -> None:
        self.poll.stop()
        super().finish(outcome, message, level)

    def shutdown(self) -> None:
        self.poll.stop()
        super().shutdown()
