"""RTS Mapper › Install deep-learning packages…: what each install profile needs and has, and an
installer that runs pip with QGIS's own Python into the plugin's packages folder (per QGIS
profile), online or from a folder of wheels, with pip's log, a cancel, an import check in a
separate process, and an uninstall. The commands come from core.install; this face runs them
in QProcess, so QGIS stays responsive and a broken package can never take it down."""

from __future__ import annotations

import tempfile
from pathlib import Path

from qgis.core import QgsApplication
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtCore import QProcess, QProcessEnvironment, pyqtSignal
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from ..core import install
from ..core.errors import RtsMapperError
from ..toolbelt.i18n import QT_TR_NOOP

MENU_LABEL = QT_TR_NOOP("Install deep-learning packages…")  # RTS Mapper's menu


def plugin_packages_folder() -> Path:
    """The packages folder of the running QGIS profile."""
    return install.packages_folder(QgsApplication.qgisSettingsDirPath())


class InstallDialog(QDialog):
    """Choose a profile, see what it needs, install or uninstall it."""

    finished_step = pyqtSignal(str)  # "installed", "failed", "cancelled", "uninstalled"

    def __init__(self, parent=None, folder: Path | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("RtsMapperInstallDialog")
        self.setWindowTitle("RTS Mapper: install deep-learning packages")
        self.folder = folder or plugin_packages_folder()
        self.process: QProcess | None = None
        self.outcome: str | None = None
        self._scratch: tempfile.TemporaryDirectory | None = None
        self._cancelled = False
        self._output: list[str] = []

        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.profile_combo = QComboBox(self)
        self.profile_combo.setObjectName("profileCombo")
        for profile in install.PROFILES.values():
            self.profile_combo.addItem(profile.title, profile.key)
        self.profile_combo.setCurrentIndex(self.profile_combo.findData("inference"))
        self.profile_combo.currentIndexChanged.connect(self.refresh)
        form.addRow("Profile", self.profile_combo)
        self.purpose = QLabel("", self)
        self.purpose.setWordWrap(True)
        form.addRow("", self.purpose)
        self.wheels_widget = QgsFileWidget(self)
        self.wheels_widget.setObjectName("wheelsFolder")
        self.wheels_widget.setStorageMode(QgsFileWidget.StorageMode.GetDirectory)
        self.wheels_widget.lineEdit().setPlaceholderText("empty: download from the Python Package Index")
        self.wheels_widget.setToolTip(
            "Offline: a folder of wheels made on a machine with internet, e.g. "
            "python3 -m pip download -d wheels onnxruntime (on Linux add a shapely built there: "
            "python3 -m pip wheel --no-binary shapely shapely -w wheels)"
        )
        form.addRow("Wheels folder (offline)", self.wheels_widget)
        folder_label = QLabel(f"<small>Installs into {self.folder}</small>", self)
        folder_label.setWordWrap(True)
        form.addRow("", folder_label)
        layout.addLayout(form)

        self.table = QTableWidget(0, 3, self)
        self.table.setObjectName("packagesTable")
        self.table.setHorizontalHeaderLabels(["Package", "Installed", "From"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        layout.addWidget(self.table)

        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        layout.addWidget(self.progress)
        self.status = QLabel("", self)
        self.status.setObjectName("installStatus")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.log = QPlainTextEdit(self)
        self.log.setObjectName("pipLog")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        layout.addWidget(self.log)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.install_button = QPushButton("Install", self)
        self.install_button.setObjectName("installButton")
        self.install_button.clicked.connect(self.start_install)
        self.cancel_button = QPushButton("Cancel install", self)
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.uninstall_button = QPushButton("Uninstall", self)
        self.uninstall_button.setObjectName("uninstallButton")
        self.uninstall_button.clicked.connect(self.uninstall)
        for button in (self.install_button, self.cancel_button, self.uninstall_button):
            button.setAutoDefault(False)  # Enter in the wheels field must not start an install
            buttons.addButton(button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.button(QDialogButtonBox.StandardButton.Close).setAutoDefault(False)  # nor close it
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(720, 640)
        self.refresh()

    # -- what is there --
    def profile(self) -> install.Profile:
        return install.PROFILES[self.profile_combo.currentData()]

    def refresh(self) -> None:
        profile = self.profile()
        self.purpose.setText(f"<i>{profile.purpose}</i>")
        states = install.status(profile, self.folder)
        self.table.setRowCount(len(states))
        for row, state in enumerate(states):
            cells = (state.requirement, state.version or "✘ missing", state.where)
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))
        missing = [s.requirement for s in states if s.version is None]
        self.uninstall_button.setEnabled(self.folder.exists() and self.process is None)
        if self.process is None:
            self.status.setText(
                f"Missing for this profile: {', '.join(missing)}."
                if missing
                else "Everything this profile needs is here."
            )

    # -- install: pip, then the import check, each a QProcess --
    def start_install(self) -> None:
        profile = self.profile()
        wheels_text = self.wheels_widget.filePath().strip()
        wheels = Path(wheels_text) if wheels_text else None
        self._scratch = tempfile.TemporaryDirectory(prefix="rts_mapper_pip_")
        pins = Path(self._scratch.name) / "constraints.txt"
        pins.write_text(install.constraints(), encoding="utf-8")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            argv = install.install_argv(profile, self.folder, pins, wheels)
        except (RtsMapperError, OSError) as exc:
            self._finish("failed", str(exc))
            return
        self.log.clear()
        self.log.appendPlainText("$ " + " ".join(argv))
        self._cancelled = False
        self.outcome = None
        self._run(argv, self._pip_done)
        self.status.setText(f"Installing the {profile.title} profile with pip…")

    def _run(self, argv: list[str], done) -> None:
        process = QProcess(self)
        environment = QProcessEnvironment()
        for key, value in install.pip_env(self.folder).items():
            environment.insert(key, value)
        process.setProcessEnvironment(environment)
        process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        process.readyReadStandardOutput.connect(self._read_output)
        process.finished.connect(done)
        self.process = process
        self._output = []
        self.progress.setRange(0, 0)  # busy: pip does not say how much is left
        self.install_button.setEnabled(False)
        self.uninstall_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        process.start(argv[0], argv[1:])

    def _read_output(self) -> None:
        process = self.sender()  # the one that has output (self.process may have moved on)
        if not isinstance(process, QProcess):
            return
        text = bytes(process.readAllStandardOutput()).decode("utf-8", "replace")
        self._output.append(text)
        for line in text.splitlines():
            if line.strip() and not line.startswith("{"):
                self.log.appendPlainText(line)

    def _pip_done(self, code: int, _status) -> None:
        if self._cancelled:
            self._finish(
                "cancelled",
                "Cancelled: the packages folder may be half filled; Install again completes it, Uninstall removes it.",
            )
            return
        if code != 0:
            lines = [line for line in "".join(self._output).splitlines() if line.startswith("ERROR")]
            self._finish("failed", f"pip could not install the profile: {(lines or ['see the log'])[-1]}")
            return
        self.status.setText("Checking that every package imports (in a separate process)…")
        self._run(install.verify_argv(self.profile()), self._verify_done)

    def _verify_done(self, _code: int, _status) -> None:
        if self._cancelled:
            self._finish("cancelled", "Cancelled during the import check; the packages are installed.")
            return
        try:
            found = install.verify_result("".join(self._output))
        except RtsMapperError as exc:
            self._finish("failed", str(exc))
            return
        broken = {m: v[7:] for m, v in found.items() if v.startswith("error")}
        if broken:
            module, why = next(iter(broken.items()))
            self._finish(
                "failed", f"Installed, but {len(broken)} package(s) do not import: {module} ({why})."
            )
            return
        install.activate(self.folder)
        self._finish(
            "installed",
            f"Installed and checked: {', '.join(f'{m} {v}' for m, v in found.items())}. "
            "Restart QGIS if a dock said a package was missing.",
        )

    def cancel(self) -> None:
        if self.process is not None:
            self._cancelled = True
            self.status.setText("Cancelling…")
            self.process.kill()

    def _finish(self, outcome: str, message: str) -> None:
        self.process = None
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if outcome == "installed" else 0)
        self.install_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.outcome = outcome
        self.refresh()
        self.status.setText(message)
        self.log.appendPlainText(message)
        self.finished_step.emit(outcome)

    def uninstall(self) -> None:
        try:
            install.uninstall(self.folder)
        except RtsMapperError as exc:
            self._finish("failed", str(exc))
            return
        self._finish(
            "uninstalled", f"Removed {self.folder}. Restart QGIS to unload what was imported from it."
        )

    def done(self, result: int) -> None:  # closing: never leave pip running behind
        if self.process is not None:
            self.cancel()
            self.process.waitForFinished(5000)
        super().done(result)
