"""RTS Mapper › Environment check…: what is installed, what each part of the plugin needs, and
the command that installs what is missing, as a readable report (the Processing algorithm of the
same name stays for scripts)."""

from __future__ import annotations

import html

from qgis.core import Qgis
from qgis.PyQt.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
)

from ..__about__ import __title__
from ..core.environment import BASE_PACKAGES, DEEP_LEARNING_PACKAGES, install_command
from ..tasks.base import CoreTask, TaskRunner
from ..toolbelt.i18n import tr
from .install_dialog import MENU_LABEL, InstallDialog

NEEDED_FOR = {
    **dict.fromkeys(BASE_PACKAGES.values(), "reviewing, imagery, analysis"),
    **dict.fromkeys(DEEP_LEARNING_PACKAGES.values(), "training and inference"),
    "scipy": "streams and distances (distribution report)",
    "matplotlib": "the distribution report's figures",
}


def report_html(report) -> str:
    """The environment report as a page: a verdict, one row per package, CUDA, the fix."""
    ok, missing = "#1b7f3b", "#b00020"
    if report.deep_learning_ready and not report.missing:
        verdict = f"<p style='color:{ok}'><b>Everything RTS Mapper uses is installed.</b></p>"
    elif report.deep_learning_ready:
        verdict = f"<p style='color:{missing}'><b>Some packages are missing (see below).</b></p>"
    else:
        verdict = (
            f"<p style='color:{missing}'><b>Training and inference are not available</b>: "
            "their packages are missing. Reviewing, imagery and analysis work without them.</p>"
        )
    rows = []
    for requirement, purpose in NEEDED_FOR.items():
        name = requirement.split("<")[0].split(">")[0]
        version = report.versions.get(name)
        if version is not None:
            state = f"<span style='color:{ok}'>✔ {html.escape(version)}</span>"
        else:
            problem = report.problems.get(requirement)
            state = f"<span style='color:{missing}'>✘ missing</span>" + (
                f"<br><small>installed but does not import: {html.escape(problem)}</small>" if problem else ""
            )
        rows.append(
            f"<tr><td><b>{html.escape(name)}</b></td><td>{state}</td><td>{html.escape(purpose)}</td></tr>"
        )
    if report.cuda_available:
        device = f"CUDA: {html.escape(', '.join(report.cuda_devices))}"
    elif report.deep_learning_ready:
        device = f"CPU only (no CUDA device), {report.torch_threads} torch threads"
    else:
        device = "—"
    parts = [
        verdict,
        f"<p>QGIS {html.escape(Qgis.QGIS_VERSION)}, Python {html.escape(report.python)} on "
        f"{html.escape(report.platform)}</p>",
        "<table cellpadding='4'><tr><th align='left'>Package</th><th align='left'>Installed</th>"
        "<th align='left'>Needed for</th></tr>",
        *rows,
        "</table>",
        f"<p><b>Training and inference run on</b>: {device}</p>",
    ]
    if report.missing:
        parts.append(
            f"<p><b>To install what is missing</b>: <b>Install packages…</b> below ({__title__} › "
            f"{html.escape(tr(MENU_LABEL))}) installs a profile sized for the job (review, ONNX "
            "inference, or full) into a folder of the plugin's own. Or run this, then restart QGIS:</p>"
            f"<pre>{html.escape(install_command(report.missing))}</pre>"
        )
    return "".join(parts)


class EnvironmentDialog(QDialog):
    """Checks in a background task (importing torch takes seconds), then shows the report."""

    def __init__(self, runner: TaskRunner, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("RtsMapperEnvironmentDialog")
        self.setWindowTitle("RTS Mapper: environment check")
        self.report = None
        layout = QVBoxLayout(self)
        self.state = QLabel("Checking the installed packages…", self)
        layout.addWidget(self.state)
        self.page = QTextBrowser(self)
        self.page.setObjectName("environmentReport")
        layout.addWidget(self.page)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.copy_button = QPushButton("Copy install command", self)
        self.copy_button.setEnabled(False)
        self.copy_button.clicked.connect(self.copy_command)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.install_button = QPushButton("Install packages…", self)
        self.install_button.setObjectName("openInstaller")
        self.install_button.clicked.connect(self.open_installer)
        buttons.addButton(self.install_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.installer = None
        self.recheck_button = QPushButton("Check again", self)
        self.recheck_button.clicked.connect(self.check)
        buttons.addButton(self.recheck_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.runner = runner
        self.resize(620, 520)
        self.check()

    def check(self) -> None:
        from ..core.environment import environment_report

        self.recheck_button.setEnabled(False)
        self.state.setText("Checking the installed packages…")
        task = CoreTask("RTS Mapper: environment check", lambda _feedback: environment_report())
        task.succeeded.connect(self.show_report)
        task.failed.connect(lambda message: self.state.setText(f"The check failed: {message}"))
        self.runner.start(task)

    def show_report(self, report) -> None:
        self.report = report
        self.recheck_button.setEnabled(True)
        self.state.setText("")
        self.state.setVisible(False)
        self.page.setHtml(report_html(report))
        self.copy_button.setEnabled(bool(report.missing))

    def copy_command(self) -> None:
        if self.report is not None and self.report.missing:
            QApplication.clipboard().setText(install_command(self.report.missing))

    def open_installer(self) -> None:
        """The package installer; when it has installed or removed something, check again."""
        if self.installer is None:
            self.installer = InstallDialog(self)
            self.installer.finished_step.connect(lambda _outcome: self.check())
        self.installer.refresh()
        self.installer.show()
        self.installer.raise_()
