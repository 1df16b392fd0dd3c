"""Common frame of the plugin's docks: title, object name, a dependency banner."""

from __future__ import annotations

import contextlib

from qgis.gui import QgsDockWidget
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QLabel, QScrollArea, QVBoxLayout, QWidget

from ..core.environment import install_command


class RtsDock(QgsDockWidget):
    """A dock with a scrollable body; subclasses fill ``self.body_layout``."""

    title = ""
    object_name = ""

    def __init__(self, iface, parent: QWidget | None = None) -> None:
        super().__init__(self.title, parent)
        self.iface = iface
        self.setObjectName(self.object_name)
        self.setAllowedAreas(Qt.LeftDockWidgetArea | Qt.RightDockWidgetArea)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        body = QWidget(scroll)
        self.body_layout = QVBoxLayout(body)
        scroll.setWidget(body)
        self.setWidget(scroll)
        self.task = None
        self._connections: list = []

    def listen(self, signal, slot) -> None:
        """Connect to a signal from outside the dock (the project, the canvas); undone at shutdown."""
        signal.connect(slot)
        self._connections.append((signal, slot))

    def shutdown(self) -> None:
        """Called by the plugin at unload: cancel running work, drop outside connections."""
        if self.task is not None:
            self.task.cancel()
        for signal, slot in self._connections:
            with contextlib.suppress(TypeError):  # already gone with its sender
                signal.disconnect(slot)
        self._connections = []

    def add_banner(self, text: str, kind: str = "info") -> QLabel:
        """A wrapped, selectable note at the top of the dock (``kind``: info or warning)."""
        colours = {"info": ("#e8f0fb", "#2b5797"), "warning": ("#fff4e0", "#8a5300")}
        background, border = colours[kind]
        label = QLabel(text, self)
        label.setWordWrap(True)
        label.setTextFormat(Qt.RichText)
        label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        label.setStyleSheet(
            f"QLabel {{ background: {background}; border: 1px solid {border};"
            " border-radius: 4px; padding: 6px; }"
        )
        self.body_layout.insertWidget(0, label)
        return label

    def add_missing_packages_banner(self, missing: list[str], what: str) -> QLabel:
        """Say which packages ``what`` needs and how to install them into QGIS's Python."""
        return self.add_banner(
            f"<b>{what} needs packages that are not installed:</b> {', '.join(missing)}.<br>"
            f"Install them, then restart QGIS:<br><code>{install_command(missing)}</code><br>"
            "Reviewing candidates works without them.",
            kind="warning",
        )
