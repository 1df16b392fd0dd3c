"""Iterations dock: the paper's loop in QGIS. Table 1 of the project, "Next iteration" (close the
iteration under review, pick representative false positives, train from the previous model,
infer, set aside what is known), and the inventory with its summary and exports."""

from __future__ import annotations

import html
from pathlib import Path

from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsGeometry,
    QgsProject,
)
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
)

from ..core.defaults import ENCODERS, MAX_EPOCHS
from ..core.environment import deep_learning_missing
from ..core.errors import RtsMapperError
from ..core.model.model_file import MODEL_FILTER
from ..core.project.store import MappingProject
from ..tasks.base import TaskRunner
from ..tasks.loop_tasks import NextIterationRequest, next_iteration_task
from ..toolbelt.i18n import QT_TR_NOOP, tr
from ..toolbelt.log_handler import notify
from ..toolbelt.preferences import PlgSettings
from .dock_base import RtsDock
from .inference_dock import fill_image_combo, image_choices
from .project_picker import ProjectPicker, model_row, read_card_or_say
from .road_row import RoadRow

INVENTORY_FORMATS = {
    "GeoPackage (*.gpkg)": ".gpkg",
    "GeoJSON (*.geojson)": ".geojson",
    "ESRI Shapefile (*.shp)": ".shp",
}


def _item(value, align_right: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem("" if value is None else str(value))
    item.setFlags(Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled)
    if align_right:
        item.setTextAlignment(int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter))
    return item


class NegativesDialog(QDialog):
    """Tick the rejected candidates that should train the model as non-RTSs (default: none, as
    the paper added only a few representative false positives). Double-click zooms the map."""

    def __init__(self, iface, rejected, chosen: set[int], parent=None) -> None:
        super().__init__(parent)
        self.iface = iface
        self.rejected = rejected
        self.setWindowTitle("RTS Mapper: rejected candidates to train on as non-RTSs")
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel(
                "Tick a few representative false positives (look-alikes the model keeps proposing: "
                "drained ponds, pits, bare slopes). Most convincing first. Double-click a row to see it.",
                self,
            )
        )
        self.table = QTableWidget(len(rejected), 4, self)
        self.table.setObjectName("negativesTable")
        self.table.setHorizontalHeaderLabels(["Candidate", "Mean probability", "Area (ha)", "Year"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        for row, attributes in enumerate(rejected.attributes):
            fid = QTableWidgetItem(str(attributes["fid"]))
            fid.setFlags(
                Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
            )
            fid.setCheckState(
                Qt.CheckState.Checked if attributes["fid"] in chosen else Qt.CheckState.Unchecked
            )
            fid.setData(Qt.ItemDataRole.UserRole, attributes["fid"])
            self.table.setItem(row, 0, fid)
            self.table.setItem(row, 1, _item(f"{attributes['mean_prob'] or 0:.2f}", True))
            self.table.setItem(row, 2, _item(f"{(attributes['area_m2'] or 0) / 1e4:.2f}", True))
            self.table.setItem(row, 3, _item(attributes.get("year")))
        self.table.cellDoubleClicked.connect(self.zoom_to)
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(520, 420)

    def chosen(self) -> list[int]:
        return [
            self.table.item(row, 0).data(Qt.ItemDataRole.UserRole)
            for row in range(self.table.rowCount())
            if self.table.item(row, 0).checkState() == Qt.CheckState.Checked
        ]

    def zoom_to(self, row: int, _column: int = 0) -> None:
        if self.iface is None:
            return
        canvas = self.iface.mapCanvas()
        geometry = QgsGeometry.fromWkt(self.rejected.geometries[row].wkt)
        source = QgsCoordinateReferenceSystem.fromWkt(self.rejected.crs.to_wkt())
        geometry.transform(
            QgsCoordinateTransform(source, canvas.mapSettings().destinationCrs(), QgsProject.instance())
        )
        extent = geometry.boundingBox()
        extent.grow(max(extent.width(), extent.height(), 50.0))
        canvas.setExtent(extent)
        canvas.refresh()


class IterationsDock(RtsDock):
    title = QT_TR_NOOP("RTS Mapper: Iterations")
    object_name = "RtsMapperIterationsDock"

    def __init__(self, iface, runner: TaskRunner | None = None, parent=None) -> None:
        super().__init__(iface, parent)
        self.runner = runner or TaskRunner()
        self.negatives: list[int] = []
        self.open: list[int] = []  # iterations under review
        self.result = None
        self.inventory = None
        self.opened: MappingProject | None = None
        self.project_error = ""
        self.missing = deep_learning_missing()
        if self.missing:
            self.add_missing_packages_banner(self.missing, "Training and inference")
        self.project_picker = ProjectPicker(self, self.iface)
        self.project_picker.projectChanged.connect(self.refresh)
        self.project_picker.projectChanged.connect(self.refresh_images)
        self.body_layout.addWidget(self.project_picker)
        self._build_table()
        self._build_next()
        self._build_inventory()
        self.body_layout.addStretch(1)
        self.listen(QgsProject.instance().layersAdded, self.refresh_images)
        self.listen(QgsProject.instance().layersRemoved, self.refresh_images)
        self.refresh_images()
        self.refresh()

    # -- widgets --
    def _build_table(self) -> None:
        from ..core.project.loop import TABLE1_COLUMNS

        box = QGroupBox("Table 1: the iterations of this project", self)
        layout = QVBoxLayout(box)
        self.state = QLabel("", box)
        self.state.setObjectName("iterationState")
        self.state.setWordWrap(True)
        layout.addWidget(self.state)
        self.table = QTableWidget(0, len(TABLE1_COLUMNS), box)
        self.table.setObjectName("table1")
        self.table.setHorizontalHeaderLabels([label for _, label in TABLE1_COLUMNS])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setMinimumHeight(120)
        layout.addWidget(self.table)
        buttons = QHBoxLayout()
        refresh = QPushButton("Refresh", box)
        refresh.clicked.connect(self.refresh)
        self.export_table_button = QPushButton("Export Table 1…", box)
        self.export_table_button.setToolTip("CSV, and Markdown beside it")
        self.export_table_button.clicked.connect(lambda: self.export_table1())
        buttons.addWidget(refresh)
        buttons.addWidget(self.export_table_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.body_layout.addWidget(box)

    def _build_next(self) -> None:
        settings = PlgSettings.load()
        box = QGroupBox("Next iteration", self)
        outer = QVBoxLayout(box)
        form = QFormLayout()
        self.image_combo = QComboBox(box)
        self.image_combo.setToolTip("The prepared image to train on and infer over (usually the latest year)")
        form.addRow("Image", self.image_combo)
        negatives = QHBoxLayout()
        self.negatives_label = QLabel("", box)
        self.negatives_button = QPushButton("Choose…", box)
        self.negatives_button.clicked.connect(lambda: self.choose_negatives())
        negatives.addWidget(self.negatives_label, 1)
        negatives.addWidget(self.negatives_button)
        form.addRow("Non-RTSs", negatives)
        self.encoder_combo = QComboBox(box)
        self.encoder_combo.addItems(ENCODERS)
        self.encoder_combo.setCurrentText(settings.encoder)
        self.encoder_combo.setToolTip("For a first model; later iterations fine-tune the previous one")
        form.addRow("Encoder", self.encoder_combo)
        self.first_model = QgsFileWidget(box)
        self.first_model.setObjectName("firstModel")
        self.first_model.setFilter(MODEL_FILTER)
        # not the last model used anywhere (maybe a cancelled one-epoch try): see _show_model
        self.first_model.setToolTip(
            "A model to fine-tune when the project has none yet (e.g. one trained elsewhere); "
            "later iterations always fine-tune the previous iteration's model"
        )
        form.addRow("First model", model_row(self.first_model, self.project_picker, box))
        self.model_note = QLabel("", box)
        self.model_note.setObjectName("modelNote")
        self.model_note.setWordWrap(True)
        form.addRow("", self.model_note)
        self.first_model.fileChanged.connect(lambda _path: self._show_model())
        self.encoder_combo.currentTextChanged.connect(lambda _text: self._show_model())
        self.epochs_spin = QSpinBox(box)
        self.epochs_spin.setRange(1, MAX_EPOCHS)
        self.epochs_spin.setValue(6)
        self.epochs_spin.setToolTip("Fine-tuning epochs (early stopping may end sooner)")
        form.addRow("Epochs", self.epochs_spin)
        outer.addLayout(form)
        self.body_layout.addWidget(box)
        self.add_run_controls(tr("Next iteration"))
        self.run_button.setToolTip(
            "Promote the accepted candidates (edited boundaries kept) into the training RTSs, add the "
            "chosen non-RTSs, fine-tune from the previous model, infer, and set aside everything "
            "already confirmed or reviewed"
        )
        if self.missing:
            self.run_button.setEnabled(False)
        self.add_status()
        self._update_negatives_label()

    def _build_inventory(self) -> None:
        box = QGroupBox("Inventory", self)
        layout = QVBoxLayout(box)
        form = QFormLayout()
        roads = RoadRow("near within", any_distance=False, parent=box)
        self.road_combo, self.near_road = roads.combo, roads.distance
        form.addRow("Roads", roads)
        self.region_name = QLineEdit(box)
        self.region_name.setPlaceholderText("e.g. Qinghai-Tibet Engineering Corridor (ARTS RegionName)")
        form.addRow("Region", self.region_name)
        self.creator_lab = QLineEdit(box)
        self.creator_lab.setPlaceholderText("your lab or team (ARTS CreatorLab)")
        form.addRow("Creator", self.creator_lab)
        self.arts_main = QgsFileWidget(box)
        self.arts_main.setFilter("ARTS data set (*.geojson *.gpkg *.shp)")
        self.arts_main.setToolTip(
            "Optional: ARTS's main data set. The contribution's relationship fields (repeats, merged, "
            "split, stabilized slumps...) are then filled against it, as ARTS's own checks do."
        )
        form.addRow("ARTS main set", self.arts_main)
        layout.addLayout(form)
        buttons = QHBoxLayout()
        self.summary_button = QPushButton("Summary", box)
        self.summary_button.clicked.connect(self.show_summary)
        self.export_inventory_button = QPushButton("Export…", box)
        self.export_inventory_button.setToolTip(
            "GeoPackage, GeoJSON or Shapefile, with ARTS fields and a summary"
        )
        self.export_inventory_button.clicked.connect(lambda: self.export_inventory())
        self.export_arts_button = QPushButton("Contribute to ARTS…", box)
        self.export_arts_button.setToolTip(
            "The confirmed RTSs, and the rejected candidates kept as non-RTSs, as a GeoJSON that "
            "ARTS's own checks accept (github.com/whrc/ARTS)"
        )
        self.export_arts_button.clicked.connect(lambda: self.export_arts())
        buttons.addWidget(self.summary_button)
        buttons.addWidget(self.export_inventory_button)
        buttons.addWidget(self.export_arts_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.summary = QTextBrowser(box)
        self.summary.setObjectName("inventorySummary")
        self.summary.setMinimumHeight(150)
        layout.addWidget(self.summary)
        self.body_layout.addWidget(box)

    def refresh_images(self, *_args) -> None:
        fill_image_combo(self.image_combo, image_choices(QgsProject.instance(), self.project()))

    # -- state --
    def project(self) -> MappingProject | None:
        """The chosen mapping project, opened (and checked) once per choice of file."""
        path = self.project_picker.path()
        if not path or not Path(path).is_file():
            self.opened, self.project_error = None, ""
            return None
        if self.opened is not None and self.opened.path == Path(path):
            return self.opened
        try:
            self.opened, self.project_error = MappingProject.open(path), ""
        except RtsMapperError as exc:
            self.opened, self.project_error = None, str(exc)
        return self.opened

    def refresh(self, *_args) -> None:
        from ..core.project.loop import iterations, open_iterations, pending_count, table1_cells

        project = self.project()
        self.table.setRowCount(0)
        self.open = []
        if project is None:
            self.state.setText(self.project_error or "Choose a mapping project.")
            self._show_model(project)
            return
        records = iterations(project)
        self.table.setRowCount(len(records))
        for row, record in enumerate(records):
            for column, value in enumerate(table1_cells(record)):
                self.table.setItem(row, column, _item(value, isinstance(value, (int, float))))
        self.open = open_iterations(project)
        if not self.open:
            self.negatives = []
        if self.open:
            pending = pending_count(project, self.open)
            self.state.setText(
                f"Iteration {self._open_text()} is under review: {pending} candidate(s) still pending. "
                "Next iteration closes it first."
            )
        elif records:
            last = records[-1]
            converged = (
                " The loop has converged: the last iteration found no new RTS."
                if not last.newly_found
                else ""
            )
            self.state.setText(f"{len(records)} iteration(s), {last.total_rts} confirmed RTSs.{converged}")
        else:
            self.state.setText(
                "No iteration yet. Add known RTSs to the training positives, then press Next iteration "
                "(or run a first inference from the Inference dock)."
            )
        self._update_negatives_label()
        self._show_model(project)

    def _show_model(self, project: MappingProject | None = None) -> None:
        """Which model the next iteration fine-tunes, what it is, and whether its encoder is the
        one chosen: the last iteration's model once there is one, else the First model given."""
        from ..core.project.loop import previous_model

        project = project if project is not None else self.project()
        previous = previous_model(project) if project is not None else None
        self.first_model.setEnabled(previous is None)
        self.encoder_combo.setEnabled(previous is None)
        if previous is not None:
            self.first_model.blockSignals(True)
            self.first_model.setFilePath(str(previous))
            self.first_model.blockSignals(False)
        path = self.first_model.filePath().strip()
        if not path:
            self.model_note.setText(f"A new {self.encoder_combo.currentText()} model is trained.")
            return
        card, problem = read_card_or_say(path)
        if card is None:
            self.model_note.setText(problem)
            return
        summary = card.brief()
        if previous is not None:
            self.encoder_combo.setCurrentText(card.encoder)
            self.model_note.setText(f"Fine-tunes the last iteration's model: {Path(path).name} ({summary}).")
        elif card.encoder != self.encoder_combo.currentText():
            self.model_note.setText(
                f"<span style='color:#8a5300'><b>{Path(path).name} is a {card.encoder} model</b>, not "
                f"{self.encoder_combo.currentText()}: it is fine-tuned as {card.encoder} ({summary}). "
                "Clear First model to train a new one.</span>"
            )
        else:
            self.model_note.setText(f"Fine-tunes {Path(path).name} ({summary}).")

    def _open_text(self) -> str:
        return ", ".join(str(i) for i in self.open)

    def _update_negatives_label(self) -> None:
        if not self.open:
            self.negatives_label.setText("no iteration under review")
            self.negatives_button.setEnabled(False)
            return
        self.negatives_button.setEnabled(True)
        self.negatives_label.setText(
            f"{len(self.negatives)} rejected candidate(s) of iteration {self._open_text()} chosen"
        )

    # -- negatives --
    def choose_negatives(self, exec_dialog: bool = True) -> NegativesDialog | None:
        from ..core.project.loop import rejected_candidates

        project = self.project()
        if project is None or not self.open:
            return None
        dialog = NegativesDialog(
            self.iface, rejected_candidates(project, self.open), set(self.negatives), self
        )
        if exec_dialog and dialog.exec():
            self.set_negatives(dialog.chosen())
        return dialog

    def set_negatives(self, fids: list[int]) -> None:
        self.negatives = list(fids)
        self._update_negatives_label()

    # -- Next iteration --
    def request(self) -> NextIterationRequest:
        project = self.project()
        if project is None:
            raise RtsMapperError("choose a mapping project first")
        data = self.image_combo.currentData()
        if not data:
            raise RtsMapperError(
                "load a prepared year layer to train on and infer over (RTS Mapper › Load time-lapse layers)"
            )
        from ..core.model.inference import InferConfig
        from ..core.project.loop import IterationSettings, fine_tuning, starting_model
        from ..qgis_layers.layers import layer_crs_wkt

        layer = QgsProject.instance().mapLayer(data.layer_id) if data.layer_id else None
        image_crs = layer_crs_wkt(layer) if layer is not None else None

        first_model = starting_model(project, self.first_model.filePath().strip() or None)
        remembered = PlgSettings.load()
        settings = IterationSettings(
            image=data.path,
            image_crs=image_crs,
            year=data.year,
            train=fine_tuning(
                init_model=first_model,
                encoder=self.encoder_combo.currentText(),
                epochs=self.epochs_spin.value(),
                device=remembered.device,
            ),
            infer=InferConfig(device=remembered.device, min_area_m2=remembered.min_area_m2),
        )
        return NextIterationRequest(
            project_gpkg=str(project.path),
            settings=settings,
            close=tuple(self.open),
            negatives=tuple(self.negatives),
        )

    def run(self, confirm: bool = True) -> None:
        self.refresh()
        request = self.checked_request()
        if request is None:
            return
        if confirm and request.close:
            from ..core.project.loop import pending_count

            pending = pending_count(self.project(), list(request.close))
            if pending and (
                QMessageBox.question(
                    self,
                    "RTS Mapper",
                    f"{pending} candidate(s) of iteration {self._open_text()} are still pending. They will stay "
                    "pending and will not be set aside. Close the iteration anyway?",
                )
                != QMessageBox.StandardButton.Yes
            ):
                return
        self.result = None
        closing = f"Closing iteration {self._open_text()}, then " if request.close else ""
        self.start_task(
            next_iteration_task(request),
            f"{closing}training and inferring…",
            succeeded=self._succeeded,
            cancelled=lambda: self._ended("cancelled", "cancelled", Qgis.MessageLevel.Info),
            failed=lambda message: self._ended("failed", message, Qgis.MessageLevel.Critical),
        )

    def _closed_text(self, closed: list) -> str:
        return "".join(
            f"Iteration {c.iteration} closed: {c.newly_found} new RTSs (total {c.total_rts}). "
            for c in closed
        )

    def _ended(self, outcome: str, message: str, level) -> None:
        closed = self.task.closed if self.task is not None else []
        if closed:
            self.negatives = []
        what = "was cancelled" if outcome == "cancelled" else f"failed: {message}"
        self.refresh()
        self.finish(
            outcome,
            f"{self._closed_text(closed)}The new iteration {what}. Nothing of it was recorded.",
            level,
        )

    def _succeeded(self, result) -> None:
        from ..qgis_layers.layers import add_run_layers

        self.result = result
        self.negatives = []
        project = self.project()
        try:
            add_run_layers(project, result.run)
        except ValueError as exc:
            self.refresh()
            self.finish("failed", str(exc), Qgis.MessageLevel.Critical)
            return
        self.refresh()
        started = result.started
        message = (
            f"{self._closed_text(result.closed)}Iteration {started.iteration}: trained in "
            f"{started.train_seconds / 60:.1f} min, {started.inferred} new candidates to review, "
            f"{started.set_aside_known} set aside as already known or reviewed."
        )
        if started.inferred == 0:
            message += " Nothing new: the loop has converged."
        self.finish("succeeded", message, Qgis.MessageLevel.Success)

    # -- Table 1 --
    def export_table1(self, path: str | None = None) -> Path | None:
        from ..core.project.loop import write_table1

        project = self.project()
        if project is None:
            notify(self.iface, "Choose a mapping project first.", Qgis.MessageLevel.Warning)
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export Table 1", "table1.csv", "CSV (*.csv)")
            if not path:
                return None
        csv_path = Path(path).with_suffix(".csv")
        write_table1(project, csv_path, csv_path.with_suffix(".md"))
        notify(
            self.iface,
            f"Table 1 written: {csv_path} and {csv_path.with_suffix('.md').name}",
            Qgis.MessageLevel.Success,
        )
        return csv_path

    # -- inventory --
    def build_inventory(self):
        from ..core.analysis.inventory import build_inventory, inventory_summary

        project = self.project()
        if project is None:
            raise RtsMapperError("choose a mapping project first")
        roads = None
        road_layer = self.road_combo.currentLayer()
        if road_layer is not None:
            from ..qgis_layers.layers import layer_features

            roads = layer_features(road_layer)
        PlgSettings.load().update(
            road_layer_id=road_layer.id() if road_layer is not None else "",
            near_road_m=self.near_road.value(),
        )
        years = [y.year for y in project.years()]
        inventory = build_inventory(
            project, roads=roads, near_road_m=self.near_road.value(), metadata=self._metadata(project)
        )
        return inventory, {**inventory_summary(inventory, years), "unmapped": latest_unmapped(project)}

    def _metadata(self, project):
        """The ARTS fields the dock knows: Region and Creator typed here, the base map from the
        project's latest registered year."""
        from ..core.analysis.inventory import metadata_for

        return metadata_for(project, self.region_name.text(), self.creator_lab.text())

    def show_summary(self) -> dict | None:
        try:
            self.inventory, summary = self.build_inventory()
        except RtsMapperError as exc:
            notify(self.iface, str(exc), Qgis.MessageLevel.Warning)
            return None
        self.summary.setHtml(
            summary_html(summary, self.road_combo.currentLayer() is not None, self.near_road.value())
        )
        return summary

    def export_inventory(self, path: str | None = None) -> Path | None:
        from ..core.analysis.inventory import export_inventory
        from ..qgis_layers.layers import inventory_layer

        summary = self.show_summary()
        if summary is None:
            return None
        if path is None:
            path, chosen = QFileDialog.getSaveFileName(
                self, "Export the RTS inventory", "rts_inventory.gpkg", ";;".join(INVENTORY_FORMATS)
            )
            if not path:
                return None
            if Path(path).suffix.lower() not in INVENTORY_FORMATS.values():
                path += INVENTORY_FORMATS.get(chosen, ".gpkg")
        try:
            out = export_inventory(self.inventory, path, summary)
            layer = inventory_layer(out, f"RTS inventory ({summary['count']})")
        except (RtsMapperError, ValueError) as exc:
            notify(self.iface, str(exc), Qgis.MessageLevel.Critical)
            return None
        QgsProject.instance().addMapLayer(layer)
        notify(
            self.iface,
            f"Inventory exported: {summary['count']} RTSs, {summary['total_area_ha']} ha → {out} (summary beside it).",
            Qgis.MessageLevel.Success,
        )
        return out

    def export_arts(self, path: str | None = None) -> Path | None:
        """The project as a contribution to the ARTS data set (see the user guide, section 6)."""
        from ..core.analysis.inventory import arts_contribution, export_arts

        project = self.project()
        if project is None:
            notify(self.iface, "Choose a mapping project first.", Qgis.MessageLevel.Warning)
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self, "Contribute to ARTS", "arts_contribution.geojson", "GeoJSON (*.geojson)"
            )
            if not path:
                return None
        metadata = self._metadata(project)
        try:
            contribution = arts_contribution(project, metadata, main=self.arts_main.filePath() or None)
            out = export_arts(contribution, Path(path).with_suffix(".geojson"))
        except (RtsMapperError, ValueError) as exc:
            notify(self.iface, str(exc), Qgis.MessageLevel.Critical)
            return None
        classes = [a["TrainClass"] for a in contribution.attributes]
        notify(
            self.iface,
            f"ARTS contribution written: {classes.count('Positive')} RTSs and {classes.count('Negative')} "
            f"non-RTSs → {out}",
            Qgis.MessageLevel.Success,
        )
        return out


def latest_unmapped(project) -> str:
    """What the latest completeness check says is still unmapped ("" when none was made)."""
    from ..core.review.completeness import estimate

    for run in reversed(project.runs()):
        result = estimate(project, run.run_id)
        if result is not None:
            return f"{run.run_id}: {result.text()}"
    return ""


def summary_html(summary: dict, with_roads: bool, near_road_m: float) -> str:
    """The inventory summary for the dock: counts, areas, initiation periods, near-road list."""
    if not summary["count"]:
        return "<p>No confirmed RTS yet.</p>"
    rows = [
        ("RTSs", summary["count"]),
        ("Total area", f"{summary['total_area_ha']} ha"),
        ("Largest / smallest", f"{summary['largest_ha']} ha / {summary['smallest_ha']} ha"),
        ("Mean area", f"{summary['mean_ha']} ha"),
        ("Under 10 ha", f"{summary['share_under_10_ha']:.0%}"),
    ]
    parts = ["<table>"]
    parts += [f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(str(v))}</td></tr>" for k, v in rows]
    parts.append("</table>")
    if summary.get("unmapped"):
        parts.append(f"<p><b>Completeness</b>: {html.escape(summary['unmapped'])}</p>")
    parts.append("<p><b>Initiation periods</b>: ")
    parts.append(", ".join(f"{html.escape(k)}: {v}" for k, v in summary["initiation_periods"].items()))
    parts.append("</p>")
    if not with_roads:
        parts.append("<p>Choose a road / railway layer for the near-road list.</p>")
    else:
        near = summary["near_road"]
        parts.append(f"<p><b>{len(near)} within {near_road_m:g} m of a road or railway</b>")
        if near:
            parts.append(
                ": " + ", ".join(f"#{n['rts_id']} ({n['road_distance_m']:.0f} m)" for n in near[:30])
            )
            if len(near) > 30:
                parts.append(f", and {len(near) - 30} more")
        parts.append("</p>")
    return "".join(parts)
