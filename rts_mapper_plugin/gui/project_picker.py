"""The mapping project (GeoPackage) the docks work on: one for the whole plugin, picked in any
dock, followed by all of them, found again when a .qgz is opened, and listed from the GeoPackage
itself (years, candidate sets, models, iterations) with a menu to (re)load its layers."""

from __future__ import annotations

import contextlib
from pathlib import Path

from qgis.core import QgsProject, QgsVectorLayer
from qgis.gui import QgsFileWidget, QgsProjectionSelectionDialog
from qgis.PyQt.QtCore import QObject, pyqtSignal
from qgis.PyQt.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QLabel,
    QMenu,
    QToolButton,
    QWidget,
)

from ..core.errors import RtsMapperError
from ..qgis_layers.sources import layer_file, layer_table, shows_table
from ..toolbelt.preferences import PlgSettings

GPKG_FILTER = "GeoPackage (*.gpkg)"


class CurrentProject(QObject):
    """The mapping project of the session (the ``project_gpkg`` setting, said there once): every
    picker shows it and follows its changes."""

    changed = pyqtSignal(str)

    @property
    def path(self) -> str:
        return PlgSettings.load().project_gpkg

    def set(self, path: str) -> None:
        path = path.strip()
        if path != self.path:
            PlgSettings.load().update(project_gpkg=path)
        self.changed.emit(path)

    def announce(self) -> None:
        """Tell every picker the setting again (another QGIS project was opened or cleared)."""
        self.changed.emit(self.path)


_CURRENT: CurrentProject | None = None


def current_project() -> CurrentProject:
    global _CURRENT
    if _CURRENT is None:
        _CURRENT = CurrentProject()
    return _CURRENT


def is_mapping_project(path: str | Path) -> bool:
    from ..core.project.store import MappingProject

    try:
        MappingProject.open(path)
    except RtsMapperError:
        return False
    return True


def mapping_project_of(qgs_project: QgsProject) -> str:
    """The mapping project a QGIS project shows: the GeoPackage behind its candidate or training
    layers (resolved by QGIS, so a moved project folder still works), else the one it recorded."""
    seen = set()
    for layer in qgs_project.mapLayers().values():
        if not isinstance(layer, QgsVectorLayer) or layer.providerType() != "ogr":
            continue
        path = layer_file(layer)
        if path in seen or not path.lower().endswith(".gpkg") or not Path(path).is_file():
            continue
        seen.add(path)
        if is_mapping_project(path):
            return path
    stored, ok = qgs_project.readEntry("rts_mapper", "project_gpkg", "")
    return stored if ok and stored and Path(stored).is_file() and is_mapping_project(stored) else ""


def follow_qgis_project(qgs_project: QgsProject | None = None) -> str:
    """After a .qgz is read: select its mapping project in every dock, and make its candidate
    layers keep their measures in step with edits (a .qgz saved before did not say so)."""
    from ..qgis_layers.layers import RUN_PROPERTY, keep_measures_in_step

    qgs_project = qgs_project or QgsProject.instance()
    path = mapping_project_of(qgs_project)
    for layer in qgs_project.mapLayers().values():
        if isinstance(layer, QgsVectorLayer) and (
            layer.customProperty(RUN_PROPERTY) or layer_table(layer) == "candidates"
        ):
            keep_measures_in_step(layer)
    if path:
        current_project().set(path)
    return path


def layer_of_run(run_id: str | None, project_path: str | Path, qgs_project: QgsProject | None = None):
    """The candidate layer on the map that shows ``run_id`` of this project (None: not loaded)."""
    from ..qgis_layers.layers import RUN_PROPERTY

    qgs_project = qgs_project or QgsProject.instance()
    wanted = Path(project_path).resolve()
    for layer in qgs_project.mapLayers().values():
        if not isinstance(layer, QgsVectorLayer) or not shows_table(layer, wanted, "candidates"):
            continue
        if (layer.customProperty(RUN_PROPERTY) or None) == run_id:
            return layer
    return None


class ProjectPicker(QWidget):
    """``Mapping project: [file] [New…]`` and, under it, what the project holds with a menu to
    (re)load it. Shows the session's mapping project (see :class:`CurrentProject`)."""

    projectChanged = pyqtSignal(str)  # noqa: N815 (Qt naming)
    loaded = pyqtSignal()  # layers of the project were added by the Load menu

    def __init__(self, parent: QWidget | None = None, iface=None) -> None:
        super().__init__(parent)
        self.iface = iface  # for the temporal controller when the years are loaded
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Mapping project", self), 0, 0)
        self.file_widget = QgsFileWidget(self)
        self.file_widget.setObjectName("mappingProjectFile")
        self.file_widget.setStorageMode(QgsFileWidget.StorageMode.GetFile)
        self.file_widget.setFilter(GPKG_FILTER)
        self.file_widget.setToolTip(
            "The GeoPackage that holds candidates, reviews, training polygons and the inventory"
        )
        layout.addWidget(self.file_widget, 0, 1)
        self.new_button = QToolButton(self)
        self.new_button.setText("New…")
        self.new_button.setToolTip("Create a new mapping project GeoPackage")
        self.new_button.clicked.connect(self.create_project)
        layout.addWidget(self.new_button, 0, 2)
        self.summary = QLabel("", self)
        self.summary.setObjectName("projectSummary")
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet("color: palette(dark);")
        layout.addWidget(self.summary, 1, 1)
        self.load_button = QToolButton(self)
        self.load_button.setObjectName("projectLoadButton")
        self.load_button.setText("Load ▾")
        self.load_button.setToolTip("Put what the project holds on the map again")
        self.load_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.load_menu = QMenu(self.load_button)
        self.load_menu.aboutToShow.connect(self.fill_load_menu)
        self.load_button.setMenu(self.load_menu)
        layout.addWidget(self.load_button, 1, 2)
        layout.setColumnStretch(1, 1)
        current = current_project()
        self.file_widget.setFilePath(current.path)
        self.file_widget.fileChanged.connect(current.set)
        current.changed.connect(self._follow)
        self.refresh_summary()

    def path(self) -> str:
        return self.file_widget.filePath().strip()

    def set_path(self, path: str) -> None:
        self.file_widget.setFilePath(path)

    def _follow(self, path: str) -> None:
        if self.path() != path:
            self.file_widget.blockSignals(True)
            self.file_widget.setFilePath(path)
            self.file_widget.blockSignals(False)
        self.refresh_summary()
        self.projectChanged.emit(path)

    def disconnect_current(self) -> None:
        """Called when the dock goes: the session's project outlives it."""
        current = current_project()
        for signal, slot in ((current.changed, self._follow), (self.file_widget.fileChanged, current.set)):
            with contextlib.suppress(TypeError):  # already gone
                signal.disconnect(slot)

    def mapping_project(self):
        from ..core.project.store import MappingProject

        path = self.path()
        if not path or not Path(path).is_file():
            return None
        try:
            return MappingProject.open(path)
        except RtsMapperError:
            return None

    def refresh_summary(self) -> None:
        """What the project holds, or why it cannot be opened (in the file's own words)."""
        from ..core.project.contents import contents
        from ..core.project.store import MappingProject

        path = self.path()
        project, why = None, ""
        if path and Path(path).is_file():
            try:
                project = MappingProject.open(path)
            except RtsMapperError as exc:
                why = exc.message
        elif path:
            why = "no mapping project at this path yet"
        self.load_button.setEnabled(project is not None)
        self.summary.setText(contents(project).summary() if project is not None else why)

    # -- the Load menu: what the GeoPackage holds, whether or not a .qgz shows it --
    def fill_load_menu(self) -> None:
        from ..core.project.contents import candidate_sets
        from ..qgis_layers.layers import add_run_layers, add_training_layer, training_layer_loaded
        from ..qgis_layers.timelapse import year_layers

        menu = self.load_menu
        menu.clear()
        project = self.mapping_project()
        if project is None:
            menu.addAction("Choose a mapping project first").setEnabled(False)
            return
        years = project.years()
        loaded_years = year_layers()
        missing_years = [y for y in years if y.year not in loaded_years]
        action = menu.addAction(
            f"Time-lapse: {len(years)} years" + ("" if missing_years or not years else " (on the map)")
        )
        action.setEnabled(bool(years))
        action.triggered.connect(self.load_time_lapse)
        menu.addSeparator()
        for candidate_set in candidate_sets(project):
            on_map = layer_of_run(candidate_set.run.run_id, project.path) is not None
            action = menu.addAction(candidate_set.label + (" (on the map)" if on_map else ""))
            action.triggered.connect(
                lambda _=False, run=candidate_set.run: self._load(add_run_layers, project, run)
            )
        menu.addSeparator()
        for table, label in (
            ("training_positives", "Training RTSs (positives)"),
            ("training_negatives", "Training non-RTSs (negatives)"),
        ):
            on_map = training_layer_loaded(project.path, table)
            action = menu.addAction(label + (" (on the map)" if on_map else ""))
            action.triggered.connect(
                lambda _=False, t=table, n=label: self._load(add_training_layer, project.path, t, n)
            )
        menu.addSeparator()
        menu.addAction("Everything not on the map", self.load_everything)

    def _load(self, add, *args) -> None:
        add(*args)
        self.loaded.emit()

    def load_time_lapse(self) -> None:
        from ..qgis_layers.timelapse import load_time_lapse

        project = self.mapping_project()
        if project is not None:
            navigation = self.iface.mapCanvas().temporalController() if self.iface is not None else None
            load_time_lapse(project, QgsProject.instance(), navigation)
            self.loaded.emit()

    def load_everything(self) -> int:
        """Every year, candidate set and training set of the project that is not on the map."""
        from ..core.project.contents import candidate_sets
        from ..qgis_layers.layers import add_run_layers, add_training_layer, training_layer_loaded

        project = self.mapping_project()
        if project is None:
            return 0
        added = 0
        self.load_time_lapse()
        for candidate_set in candidate_sets(project):
            if layer_of_run(candidate_set.run.run_id, project.path) is None:
                add_run_layers(project, candidate_set.run)
                added += 1
        for table, label in (
            ("training_positives", "Training RTSs (positives)"),
            ("training_negatives", "Training non-RTSs (negatives)"),
        ):
            if not training_layer_loaded(project.path, table):
                add_training_layer(project.path, table, label)
                added += 1
        self.loaded.emit()
        return added

    def create_project(self, path: str | None = None, crs_wkt: str | None = None) -> str | None:
        """Ask for a file and a CRS (the current project's by default), then create the project."""
        from ..core.project.store import MappingProject

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
            if not dialog.exec():
                return None
            crs_wkt = dialog.crs().toWkt()
        MappingProject.create(Path(path), crs_wkt)
        self.set_path(path)
        return path


def read_card_or_say(path: str):
    """(the model card, "") or (None, what is wrong with the file as red HTML): what a dock shows
    under a model field."""
    import html

    from ..core.model.onnx_model import read_model_card

    try:
        return read_model_card(path), ""
    except RtsMapperError as exc:
        return None, f"<span style='color:#b00020'>{html.escape(str(exc))}</span>"


def model_row(file_widget: QgsFileWidget, picker: ProjectPicker, parent: QWidget) -> QWidget:
    """``[model file] [Project ▾]``: the file field, and a menu of the models the mapping project
    holds (its iterations', its runs', its models folder), newest first."""
    from qgis.PyQt.QtWidgets import QHBoxLayout

    row = QWidget(parent)
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(file_widget, 1)
    button = QToolButton(row)
    button.setObjectName("projectModelsButton")
    button.setText("Project ▾")
    button.setToolTip("The models this mapping project holds")
    button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    menu = QMenu(button)
    button.setMenu(menu)
    layout.addWidget(button)

    def fill() -> None:
        from ..core.project.contents import project_models

        menu.clear()
        project = picker.mapping_project()
        models = project_models(project) if project is not None else []
        if not models:
            menu.addAction("The project has no model yet").setEnabled(False)
        for entry in models:
            action = menu.addAction(f"{entry.path.name} ({entry.label}; {entry.summary})")
            action.triggered.connect(lambda _=False, path=str(entry.path): file_widget.setFilePath(path))

    menu.aboutToShow.connect(fill)
    return row
