"""Where a large job runs (this process, a local Dask cluster, a scheduler's address), and the
cluster's live line while it runs: its dashboard link, blocks done and throughput. One widget pair
for every face that can run on a cluster (the Inference dock, the Prepare imagery dialog)."""

from __future__ import annotations

import html

from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QComboBox, QHBoxLayout, QLabel, QLineEdit, QWidget

SCHEDULER = "scheduler"  # the combo's "a scheduler's address" (typed beside it)
CLUSTER_CHOICES = (
    ("None: this QGIS, one process", ""),
    ("Local cluster: 2 worker processes", "local:2"),
    ("Local cluster: 4 worker processes", "local:4"),
    ("A scheduler at this address:", SCHEDULER),
)


KEPT_ON_CANCEL = (
    " The blocks finished on the cluster are kept: running it again with the same settings goes on from them."
)


class ClusterChoice(QWidget):
    """The combo and the scheduler's address; :meth:`value` is what the core takes."""

    def __init__(self, remembered: str, tooltip: str, parent=None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.combo = QComboBox(self)
        self.combo.setObjectName("clusterCombo")
        for label, value in CLUSTER_CHOICES:
            self.combo.addItem(label, value)
        self.combo.setToolTip(tooltip)
        self.address = QLineEdit(self)
        self.address.setObjectName("schedulerAddress")
        self.address.setPlaceholderText("tcp://host:8786")
        index = self.combo.findData(remembered)
        if index < 0 and remembered:  # an address typed before
            index = self.combo.findData(SCHEDULER)
            self.address.setText(remembered)
        self.combo.setCurrentIndex(max(0, index))
        self.combo.currentIndexChanged.connect(self._changed)
        self._changed()
        row.addWidget(self.combo)
        row.addWidget(self.address, 1)

    def value(self) -> str:
        """The cluster chosen ("" for this process): a local one, or the scheduler's address."""
        value = self.combo.currentData()
        return self.address.text().strip() if value == SCHEDULER else value

    def _changed(self, *_args) -> None:
        self.address.setEnabled(self.combo.currentData() == SCHEDULER)


class ClusterProgress(QLabel):
    """The running task's cluster events (``task.events``: {"kind": "dashboard", "link"} and
    {"kind": "status", "text"}), drained by a timer while it runs."""

    def __init__(self, parent=None) -> None:
        super().__init__("", parent)
        self.setObjectName("clusterDashboard")
        self.setOpenExternalLinks(True)
        self.setWordWrap(True)
        self.link, self.figures, self.task = "", "", None
        self.timer = QTimer(self)
        self.timer.setInterval(300)
        self.timer.timeout.connect(self.drain)

    def follow(self, task) -> None:
        self.link, self.figures, self.task = "", "", task
        self.setText("")
        self.timer.start()

    def stop(self, local: bool) -> None:
        """The run ended: the last figures stay, and a scheduler's dashboard link (a local
        cluster's went with the run)."""
        self.drain()
        self.timer.stop()
        self.task = None
        if local:
            self.link = ""
        self._show()

    def drain(self) -> None:
        while self.task is not None and not self.task.events.empty():
            event = self.task.events.get_nowait()
            if event.get("kind") == "dashboard":
                self.link = event["link"]
            elif event.get("kind") == "status":
                self.figures = event["text"]
        self._show()

    def _show(self) -> None:
        parts = []
        if self.link:
            link = html.escape(self.link, quote=True)
            parts.append(f'Running on the cluster: <a href="{link}">dashboard</a> ({link})')
        if self.figures:
            parts.append(html.escape(self.figures))
        self.setText("<br>".join(parts))
