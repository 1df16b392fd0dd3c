"""The distribution report's figures in QGIS: a list of figures, the chosen one at full width,
and buttons to open the HTML report or the folder."""

from __future__ import annotations

from pathlib import Path

from qgis.PyQt.QtCore import Qt, QUrl
from qgis.PyQt.QtGui import QDesktopServices, QPixmap
from qgis.PyQt.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
)


class FiguresDialog(QDialog):
    def __init__(self, folder: str | Path, parent=None) -> None:
        super().__init__(parent)
        self.folder = Path(folder)
        self.setWindowTitle(f"RTS Mapper: distribution report — {self.folder}")
        self.figures = sorted((self.folder / "figures").glob("*.png"), key=_order)
        layout = QVBoxLayout(self)
        body = QHBoxLayout()
        self.list = QListWidget(self)
        self.list.setObjectName("figureList")
        self.list.addItems([_title(p) for p in self.figures])
        self.list.setMaximumWidth(200)
        body.addWidget(self.list)
        self.image = QLabel(self)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.image)
        body.addWidget(scroll, 1)
        layout.addLayout(body, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        report = QPushButton("Open the HTML report", self)
        report.clicked.connect(
            lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.folder / "report.html")))
        )
        folder_button = QPushButton("Open the folder", self)
        folder_button.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.folder))))
        buttons.addButton(report, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(folder_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.list.currentRowChanged.connect(self.show_figure)
        self.resize(1100, 760)
        if self.figures:
            self.list.setCurrentRow(0)
        else:
            self.image.setText("No figure in this folder.")

    def show_figure(self, row: int) -> None:
        if not 0 <= row < len(self.figures):
            return
        pixmap = QPixmap(str(self.figures[row]))
        width = max(400, self.image.parentWidget().width() - 20)
        self.image.setPixmap(
            pixmap.scaledToWidth(min(width, pixmap.width()), Qt.TransformationMode.SmoothTransformation)
        )


def _title(path: Path) -> str:
    if path.stem.startswith("density_"):
        return f"density map, {_density_km(path):g} km cells"
    return path.stem.replace("_", " ")


def _density_km(path: Path) -> float:
    return float(path.stem[8:-2].replace("_", "."))


def _order(path: Path) -> tuple[int, float, str]:
    """The paper's order: areas, terrain, aspect, vegetation, soil, then the density maps, finest
    grid first."""
    ranks = ("area", "terrain", "aspect", "vegetation", "soil", "density")
    rank = next((i for i, r in enumerate(ranks) if path.stem.startswith(r)), len(ranks))
    size = _density_km(path) if path.stem.startswith("density_") else 0.0
    return rank, size, path.stem
