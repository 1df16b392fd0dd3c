"""Plugin lifecycle and wiring: menu, toolbar, docks, Processing provider. The only holder of iface.

Loading must stay fast and must never import torch: docks are created the first time they are
opened, and the heavy packages are imported only by the jobs that need them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from qgis.core import QgsApplication, QgsProject
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QAction, QMenu

from .__about__ import __title__
from .core import install
from .processing.provider import RtsMapperProvider
from .toolbelt.i18n import QT_TR_NOOP, install_translator, remove_translator, tr
from .toolbelt.log_handler import install_log_handler, remove_log_handler
from .toolbelt.resources import plugin_icon

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class DockSpec:
    key: str
    label: str
    tooltip: str
    module: str
    class_name: str
    area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea


DOCKS = (  # labels and tooltips are translated where shown
    DockSpec(
        "inference",
        QT_TR_NOOP("Inference"),
        QT_TR_NOOP("Run DeepLabv3+ over a year layer"),
        "inference_dock",
        "InferenceDock",
    ),
    DockSpec(
        "review",
        QT_TR_NOOP("Review"),
        QT_TR_NOOP("Review candidates with time-lapse imagery"),
        "review_dock",
        "ReviewDock",
    ),
    DockSpec(
        "training",
        QT_TR_NOOP("Training"),
        QT_TR_NOOP("Train or fine-tune the model"),
        "training_dock",
        "TrainingDock",
    ),
    DockSpec(
        "iterations",
        QT_TR_NOOP("Iterations"),
        QT_TR_NOOP("The loop: Table 1, next iteration, inventory"),
        "iterations_dock",
        "IterationsDock",
    ),
)


class RtsMapperPlugin:
    """Created by :func:`classFactory`; QGIS calls initProcessing, initGui and unload."""

    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider: RtsMapperProvider | None = None
        self.menu: QMenu | None = None
        self.toolbar = None
        self.actions: dict[str, QAction] = {}
        self.docks: dict = {}
        self.dialogs: dict = {}
        self.runner = None
        self._log_handler = None
        self.translator = install_translator()  # before any text is made: QGIS's language
        # what *Install deep-learning packages…* put in this QGIS profile, before anything imports
        # it (importing this module imports none of those packages: a test checks it)
        install.activate(install.packages_folder(QgsApplication.qgisSettingsDirPath()))

    # -- Processing (also called alone under qgis_process, where iface is None) --
    def initProcessing(self) -> None:  # noqa: N802
        from .core.host import share_gdal_with_host

        share_gdal_with_host()  # QGIS owns GDAL's block cache: never resize it from a task
        if self.provider is None:
            self.provider = RtsMapperProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    # -- GUI --
    def initGui(self) -> None:  # noqa: N802
        self._log_handler = install_log_handler()
        self.initProcessing()
        main_window = self.iface.mainWindow()

        self.menu = QMenu(f"&{__title__}", main_window)
        self.menu.setObjectName("RtsMapperMenu")
        menu_bar = main_window.menuBar()
        help_menu = next(
            (a for a in menu_bar.actions() if a.menu() and a.menu().objectName() == "mHelpMenu"), None
        )
        if help_menu is not None:
            menu_bar.insertMenu(help_menu, self.menu)
        else:
            menu_bar.addMenu(self.menu)

        self.toolbar = self.iface.addToolBar(__title__)
        self.toolbar.setObjectName("RtsMapperToolbar")

        for spec in DOCKS:
            action = QAction(plugin_icon(spec.key), tr(spec.label), main_window)
            action.setObjectName(f"RtsMapper{spec.class_name}Action")
            action.setToolTip(f"{__title__}: {tr(spec.tooltip)}")
            action.setCheckable(True)
            action.toggled.connect(lambda checked, s=spec: self.show_dock(s.key, checked))
            self.menu.addAction(action)
            self.toolbar.addAction(action)
            self.actions[spec.key] = action

        from .gui.install_dialog import MENU_LABEL as INSTALL_MENU_LABEL
        from .tasks.base import TaskRunner

        self.runner = TaskRunner()
        self.menu.addSeparator()
        for key, label, slot in (
            ("prepare_imagery", tr("Prepare imagery…"), self.open_imagery_dialog),
            ("load_time_lapse", tr("Load time-lapse layers"), self.load_time_lapse),
            ("export_field_package", tr("Export field package (QField)…"), self.open_field_export),
            ("merge_field_package", tr("Merge field package…"), self.open_field_merge),
            ("distribution_report", tr("Distribution report…"), self.open_distribution_report),
            ("environment_check", tr("Environment check…"), self.open_environment_check),
            ("install_packages", tr(INSTALL_MENU_LABEL), self.open_install_dialog),
        ):
            action = QAction(label, main_window)
            action.setObjectName(f"RtsMapper_{key}")
            action.triggered.connect(slot)
            self.menu.addAction(action)
            self.actions[key] = action
        # the GeoPackage is the source of truth: a .qgz that shows a mapping project selects it
        project = QgsProject.instance()
        project.readProject.connect(self._qgis_project_read)
        project.cleared.connect(self._qgis_project_cleared)
        LOGGER.info("%s loaded", __title__)

    def _qgis_project_read(self, *_args) -> None:
        from .gui.project_picker import follow_qgis_project

        follow_qgis_project(QgsProject.instance())

    def _qgis_project_cleared(self) -> None:
        from .gui.project_picker import current_project

        current_project().announce()

    def dock(self, key: str):
        """The dock for ``key``, created (hidden) on first use."""
        if key not in self.docks:
            import importlib

            spec = next(s for s in DOCKS if s.key == key)
            module = importlib.import_module(f".gui.{spec.module}", __package__)
            dock = getattr(module, spec.class_name)(self.iface, self.runner, self.iface.mainWindow())
            self.iface.addDockWidget(spec.area, dock)
            if key == "training":  # a newly trained model is offered for inference
                dock.modelTrained.connect(self._offer_model)
            # opened/closed, not visibilityChanged: a dock hidden behind a tab is still open
            dock.openedStateChanged.connect(self.actions[key].setChecked)
            self.docks[key] = dock
        return self.docks[key]

    def _offer_model(self, path: str) -> None:
        if "inference" in self.docks:
            self.docks["inference"].set_model_path(path)

    def show_dock(self, key: str, visible: bool = True) -> None:
        if not visible and key not in self.docks:
            return
        self.dock(key).setUserVisible(visible)  # also raises it when it sits behind a tab

    def open_imagery_dialog(self) -> None:
        if "imagery" not in self.dialogs:
            from .gui.imagery_dialog import ImageryDialog

            self.dialogs["imagery"] = ImageryDialog(self.iface, self.runner, self.iface.mainWindow())
        dialog = self.dialogs["imagery"]
        dialog.show()
        dialog.raise_()

    def load_time_lapse(self) -> None:
        from qgis.core import Qgis

        from .core.errors import RtsMapperError
        from .core.project.store import MappingProject
        from .qgis_layers.timelapse import load_time_lapse
        from .toolbelt.log_handler import notify
        from .toolbelt.preferences import PlgSettings

        path = PlgSettings.load().project_gpkg
        if not path:
            notify(
                self.iface,
                "Choose a mapping project first (Prepare imagery… or a dock).",
                Qgis.MessageLevel.Warning,
            )
            return
        try:
            project = MappingProject.open(path)
            group = load_time_lapse(
                project, QgsProject.instance(), self.iface.mapCanvas().temporalController()
            )
        except (RtsMapperError, ValueError) as exc:
            notify(self.iface, str(exc), Qgis.MessageLevel.Critical)
            return
        notify(self.iface, f"Time-lapse: {len(group.findLayers())} years from {path}", Qgis.MessageLevel.Info)

    def open_algorithm_dialog(self, algorithm_id: str, parameters: dict, finished=None):
        """A Processing algorithm's own dialog, filled in. Not modal: the results come as soon as
        the run ends, while the dialog keeps its log open (QGIS's default)."""
        from processing.gui.AlgorithmDialog import AlgorithmDialog

        if algorithm_id in self.dialogs:
            self.dialogs.pop(algorithm_id).close()
        algorithm = QgsApplication.processingRegistry().createAlgorithmById(f"rts_mapper:{algorithm_id}")
        dialog = AlgorithmDialog(algorithm, False, self.iface.mainWindow())
        dialog.setParameters(parameters)
        if finished is not None:
            dialog.algorithmFinished.connect(finished)
        self.dialogs[algorithm_id] = dialog
        dialog.show()
        dialog.raise_()
        return dialog

    def open_distribution_report(self) -> None:
        """The report, filled in from the project's layers (the inventory, a DEM, vegetation and
        soil, found by name); its figures and layers come when it ends."""
        from .qgis_layers.layers import distribution_defaults

        self.open_algorithm_dialog("distribution_report", distribution_defaults(), self._report_finished)

    def open_field_export(self) -> None:
        """The field package export, filled in: the candidates layer in front (its selection if
        any), the Review dock's road layer and reviewer."""
        from .qgis_layers.layers import field_export_defaults
        from .toolbelt.preferences import PlgSettings

        settings = PlgSettings.load()
        self.open_algorithm_dialog(
            "export_field_package",
            field_export_defaults(self.iface.activeLayer(), settings.reviewer_name, settings.road_layer_id),
        )

    def open_field_merge(self) -> None:
        from .toolbelt.preferences import PlgSettings

        project = PlgSettings.load().project_gpkg
        self.open_algorithm_dialog(
            "merge_field_package", {"PROJECT": project} if project else {}, self._merge_finished
        )

    def _merge_finished(self, ok: bool, _results: dict) -> None:
        """Decisions came in from the field: the docks and the candidate layers show them."""
        if not ok:
            return
        from .gui.project_picker import current_project

        for layer in QgsProject.instance().mapLayers().values():
            if layer.providerType() == "ogr":
                layer.triggerRepaint()
        current_project().announce()

    def _report_finished(self, ok: bool, results: dict) -> None:
        if ok and results.get("OUTPUT"):
            from .qgis_layers.layers import add_distribution_layers

            add_distribution_layers(results["LAYERS"])
            self.show_figures(results["OUTPUT"])

    def show_figures(self, folder: str) -> None:
        """The report's figures in a dialog (kept until unload, like the imagery dialog)."""
        from .gui.figures_dialog import FiguresDialog

        if "figures" in self.dialogs:
            self.dialogs["figures"].close()
            self.dialogs["figures"].deleteLater()
        self.dialogs["figures"] = FiguresDialog(folder, self.iface.mainWindow())
        self.dialogs["figures"].show()

    def open_environment_check(self) -> None:
        """A readable report in a dialog (the Processing algorithm stays for scripts)."""
        from .gui.environment_dialog import EnvironmentDialog

        if "environment" in self.dialogs:
            self.dialogs["environment"].check()
        else:
            self.dialogs["environment"] = EnvironmentDialog(self.runner, self.iface.mainWindow())
        dialog = self.dialogs["environment"]
        dialog.show()
        dialog.raise_()

    def open_install_dialog(self) -> None:
        from .gui.install_dialog import InstallDialog

        if "install" not in self.dialogs:
            self.dialogs["install"] = InstallDialog(self.iface.mainWindow())
        dialog = self.dialogs["install"]
        dialog.refresh()
        dialog.show()
        dialog.raise_()

    def unload(self) -> None:
        """Undo everything initGui and initProcessing did."""
        if self.menu is not None:
            QgsProject.instance().readProject.disconnect(self._qgis_project_read)
            QgsProject.instance().cleared.disconnect(self._qgis_project_cleared)
        if self.runner is not None:
            self.runner.cancel_all()
            self.runner = None
        for dialog in self.dialogs.values():
            dialog.close()
            dialog.deleteLater()
        self.dialogs.clear()
        for key, dock in self.docks.items():
            dock.openedStateChanged.disconnect()
            if key == "training":
                dock.modelTrained.disconnect()
            close = getattr(dock, "shutdown", None)
            if close:
                close()
            self.iface.removeDockWidget(dock)
            dock.deleteLater()
        self.docks.clear()
        for action in self.actions.values():
            if action.isCheckable():
                action.toggled.disconnect()
            else:
                action.triggered.disconnect()
            if self.toolbar is not None:
                self.toolbar.removeAction(action)
            action.deleteLater()
        self.actions.clear()
        if self.menu is not None:
            self.iface.mainWindow().menuBar().removeAction(self.menu.menuAction())
            self.menu.deleteLater()
            self.menu = None
        if self.toolbar is not None:
            self.iface.mainWindow().removeToolBar(self.toolbar)
            self.toolbar.deleteLater()
            self.toolbar = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        remove_log_handler(self._log_handler)
        self._log_handler = None
        remove_translator(self.translator)
        self.translator = None
