"""Common frame of the plugin's docks: title, object name, a dependency banner."""

from __future__ import annotations

import contextlib

from qgis.core import Qgis
from qgis.gui import QgsDockWidget
from qgis.PyQt.QtCore import QEvent, QObject, Qt
from qgis.PyQt.QtWidgets import (
    QAbstractSpinBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ..__about__ import __title__
from ..core.environment import install_command
from ..core.errors import RtsMapperError
from ..core.install import PROFILES
from ..toolbelt.i18n import tr
from ..toolbelt.log_handler import notify
from .install_dialog import MENU_LABEL


class WheelGuard(QObject):
    """Scrolling a dock must scroll the dock: a combo or spin box under the mouse takes the
    wheel only once it has the focus (clicked or tabbed into)."""

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt naming)
        if event.type() == QEvent.Type.Wheel and not watched.hasFocus():
            event.ignore()  # travels on to the scroll area, as if the widget were not there
            return True
        return False


class RtsDock(QgsDockWidget):
    """A dock with a scrollable body; subclasses fill ``self.body_layout``."""

    title = ""
    object_name = ""
    # a failed or cancelled run empties the progress bar (training keeps it: its best model stays)
    reset_progress_on_failure = True

    def __init__(self, iface, parent: QWidget | None = None) -> None:
        super().__init__(tr(self.title), parent)
        self.iface = iface
        self.setObjectName(self.object_name)
        self.setAllowedAreas(Qt.DockWidgetArea.LeftDockWidgetArea | Qt.DockWidgetArea.RightDockWidgetArea)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        body = QWidget(scroll)
        self.body_layout = QVBoxLayout(body)
        scroll.setWidget(body)
        self.setWidget(scroll)
        self.task = None
        self.outcome: str | None = None  # of the last task: succeeded, failed or cancelled
        self._connections: list = []
        self._wheel_guard = WheelGuard(self)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        """Guard every combo and spin box the dock holds by now (some are built after __init__);
        let combos narrow with the dock (a long item, e.g. a candidate set, would widen it past
        QGIS's dock area and cut the dock off on the right)."""
        for widget in [*self.findChildren(QComboBox), *self.findChildren(QAbstractSpinBox)]:
            if not widget.property("rts_wheel_guarded"):
                widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # not WheelFocus: a wheel gives no focus
                widget.installEventFilter(self._wheel_guard)
                widget.setProperty("rts_wheel_guarded", True)
                if isinstance(widget, QComboBox):
                    widget.setSizeAdjustPolicy(
                        QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
                    )
                    widget.setMinimumContentsLength(10)
        # as wide as the body needs (QGIS's dock area is narrower by default, cutting it off)
        scroll = self.widget()
        needed = scroll.widget().minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 8
        self.setMinimumWidth(min(needed, 620))
        super().showEvent(event)

    def listen(self, signal, slot) -> None:
        """Connect to a signal from outside the dock (the project, the canvas); undone at shutdown."""
        signal.connect(slot)
        self._connections.append((signal, slot))

    def shutdown(self) -> None:
        """Called by the plugin at unload: cancel running work, drop outside connections."""
        if self.task is not None:
            self.task.cancel()
        from .project_picker import ProjectPicker

        for picker in self.findChildren(ProjectPicker):
            picker.disconnect_current()
        for signal, slot in self._connections:
            with contextlib.suppress(TypeError):  # already gone with its sender
                signal.disconnect(slot)
        self._connections = []

    def add_run_controls(self, run_text: str, cancel_text: str = "") -> None:
        """Run and Cancel buttons (wired to ``run`` / ``cancel``) and a progress bar; the texts as
        shown (translated by the caller)."""
        cancel_text = cancel_text or tr("Cancel")
        buttons = QHBoxLayout()
        self.run_button = QPushButton(run_text, self)
        self.run_button.setObjectName("runButton")
        self.cancel_button = QPushButton(cancel_text, self)
        self.cancel_button.setEnabled(False)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        self.body_layout.addLayout(buttons)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 100)
        self.body_layout.addWidget(self.progress)
        self.run_button.clicked.connect(lambda _checked=False: self.run())  # not run(checked)
        self.cancel_button.clicked.connect(self.cancel)

    def add_status(self) -> None:
        """The wrapped, selectable line that tells how the last task went."""
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.body_layout.addWidget(self.status)

    def run(self) -> None:
        raise NotImplementedError

    def request(self):
        """What the dock's task needs (a frozen request); raises RtsMapperError when it cannot."""
        raise NotImplementedError

    def checked_request(self):
        """``request()``, or None after saying what is wrong in the dock and the message bar."""
        if self.task is not None:
            return None
        try:
            return self.request()
        except RtsMapperError as exc:
            self.finish("failed", str(exc), Qgis.MessageLevel.Warning)
            return None

    def start_task(self, task, status: str, succeeded, cancelled, failed=None, progress=None) -> None:
        """Wire ``task`` to the run bar and the dock's slots, then start it in QGIS's task manager."""
        self.outcome = None
        self.task = task
        task.progressChanged.connect(progress or (lambda value: self.progress.setValue(int(value))))
        task.succeeded.connect(succeeded)
        task.failed.connect(
            failed or (lambda message: self.finish("failed", message, Qgis.MessageLevel.Critical))
        )
        task.cancelled.connect(cancelled)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        self.status.setText(status)
        self.runner.start(task)

    cancelling_text = "Cancelling…"

    def cancel(self) -> None:
        if self.task is not None:
            self.status.setText(self.cancelling_text)
            self.task.cancel()

    def finish(self, outcome: str, message: str, level) -> None:
        """A task ended: buttons back, the message in the dock and the message bar."""
        self.outcome = outcome
        self.task = None
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if outcome != "succeeded" and self.reset_progress_on_failure:
            self.progress.setValue(0)
        self.status.setText(message)
        notify(self.iface, message, level)
        from .project_picker import ProjectPicker

        for picker in self.findChildren(ProjectPicker):  # a run or an iteration more
            picker.refresh_summary()

    def add_banner(self, text: str, kind: str = "info") -> QLabel:
        """A wrapped, selectable note at the top of the dock (``kind``: info or warning)."""
        colours = {"info": ("#e8f0fb", "#2b5797"), "warning": ("#fff4e0", "#8a5300")}
        background, border = colours[kind]
        label = QLabel(text, self)
        label.setWordWrap(True)
        label.setTextFormat(Qt.TextFormat.RichText)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        label.setStyleSheet(
            f"QLabel {{ background: {background}; border: 1px solid {border};"
            " border-radius: 4px; padding: 6px; }"
        )
        self.body_layout.insertWidget(0, label)
        return label

    def add_missing_packages_banner(self, missing: list[str], what: str, also: str = "") -> QLabel:
        """Say which packages ``what`` needs and where to install them: the plugin's installer
        (or, for those who prefer it, the pip command into QGIS's Python)."""
        return self.add_banner(
            f"<b>{what} needs packages that are not installed:</b> {', '.join(missing)}.<br>"
            f"Install them with <b>{__title__} › {tr(MENU_LABEL)}</b> (the {PROFILES['full'].title} profile), "
            f"then restart QGIS. Or run:<br><code>{install_command(missing)}</code><br>"
            f"{also}Reviewing candidates works without them.",
            kind="warning",
        )
