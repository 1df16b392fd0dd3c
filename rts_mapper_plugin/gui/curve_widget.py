"""A small live plot of training: loss, validation F1 and IoU per epoch (QPainter, no extra packages)."""

from __future__ import annotations

from qgis.PyQt.QtCore import QPointF, QRectF, Qt
from qgis.PyQt.QtGui import QColor, QPainter, QPen
from qgis.PyQt.QtWidgets import QSizePolicy, QWidget

LOSS_COLOUR = QColor("#2b83ba")
IOU_COLOUR = QColor("#1a9641")
F1_COLOUR = QColor("#d7191c")


class CurveWidget(QWidget):
    """Training loss (left axis, scaled to its first value); validation polygon F1 at IoU 0.5 (what
    selects the model) and pixel IoU (right axis, 0-1)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.epochs_planned = 1
        self.points: list[dict] = []
        self.best_epoch = 0

    def reset(self, epochs_planned: int) -> None:
        self.epochs_planned = max(1, epochs_planned)
        self.points = []
        self.best_epoch = 0
        self.update()

    def add(self, entry: dict) -> None:
        self.points.append(entry)
        self.best_epoch = entry.get("best_epoch", self.best_epoch)
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        area = QRectF(self.rect()).adjusted(34, 10, -34, -22)
        painter.fillRect(self.rect(), self.palette().base())
        painter.setPen(QPen(self.palette().mid().color(), 1))
        painter.drawRect(area)
        painter.setPen(self.palette().text().color())
        painter.drawText(
            QRectF(area.left(), area.bottom() + 3, area.width(), 18), Qt.AlignmentFlag.AlignCenter, "epoch"
        )
        painter.drawText(QRectF(0, area.top() - 4, 32, 14), Qt.AlignmentFlag.AlignRight, "loss")
        painter.setPen(F1_COLOUR)
        painter.drawText(QRectF(area.right() + 2, area.top() - 4, 32, 14), Qt.AlignmentFlag.AlignLeft, "F1")
        painter.setPen(IOU_COLOUR)
        painter.drawText(QRectF(area.right() + 2, area.top() + 26, 32, 14), Qt.AlignmentFlag.AlignLeft, "IoU")
        painter.setPen(self.palette().text().color())
        painter.drawText(
            QRectF(area.right() + 2, area.bottom() - 12, 32, 14), Qt.AlignmentFlag.AlignLeft, "0"
        )
        painter.drawText(QRectF(area.right() + 2, area.top() + 8, 32, 14), Qt.AlignmentFlag.AlignLeft, "1")
        if not self.points:
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter, "The curve appears after the first epoch")
            return

        def x(epoch: float) -> float:
            return area.left() + area.width() * (epoch - 0.5) / max(1, self.epochs_planned)

        first_loss = max(1e-9, self.points[0]["train_loss"])
        top_loss = max(p["train_loss"] for p in self.points) / first_loss
        for key, colour, scale in (
            ("train_loss", LOSS_COLOUR, lambda v: v / first_loss / max(1e-9, top_loss)),
            ("val_iou", IOU_COLOUR, lambda v: v),
            ("val_f1", F1_COLOUR, lambda v: v),
        ):
            values = [(p["epoch"], p[key]) for p in self.points if p.get(key) is not None]
            painter.setPen(QPen(colour, 2))
            previous = None
            for epoch, value in values:
                point = QPointF(x(epoch), area.bottom() - area.height() * min(1.0, max(0.0, scale(value))))
                if previous is not None:
                    painter.drawLine(previous, point)
                painter.drawEllipse(point, 2.5, 2.5)
                previous = point
        if self.best_epoch:
            painter.setPen(QPen(F1_COLOUR, 1, Qt.PenStyle.DashLine))
            painter.drawLine(
                QPointF(x(self.best_epoch), area.top()), QPointF(x(self.best_epoch), area.bottom())
            )
        painter.end()
