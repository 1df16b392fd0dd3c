"""The candidate in every registered year, side by side (the Review dock's time-lapse).

Views are cut from the rasters by tasks (tasks/review.py) run ahead of the reviewer, so that
stepping to the next candidate does not wait on rendering; the widget keeps only the views near
the current candidate, so memory stays flat over a long review.
"""

from __future__ import annotations

from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QImage, QPixmap
from qgis.PyQt.QtWidgets import QGridLayout, QLabel, QWidget

from ..core.review.suggestions import Suggestion
from ..tasks.review import YearViewsRequest, suggestion_task, year_views_task

VIEW_PX = 150
HIGHLIGHT = "background: #222; border: 3px solid #00e5ff;"
PLAIN = "background: #222; color: #ddd;"


def pixmap_of(rgb) -> QPixmap:
    """A QPixmap of an (rows, columns, 3) uint8 array (copied: the array may go)."""
    rows, columns = rgb.shape[:2]
    return QPixmap.fromImage(QImage(rgb.data, columns, rows, 3 * columns, QImage.Format.Format_RGB888).copy())


class YearViews(QWidget):
    """One view per registered year of the shown candidate; a click on a view emits its index."""

    yearClicked = pyqtSignal(int)  # noqa: N815 (Qt naming)
    suggested = pyqtSignal(int)  # a candidate's suggestion arrived (with its views)

    def __init__(self, runner, parent=None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(4)
        self.labels: list[QLabel] = []
        self.years: list = []
        self.tasks: dict = {}  # candidate id -> its running task
        self.pixmaps: dict[int, list[QPixmap]] = {}  # candidate id -> its views ([] if they failed)
        self.suggestions: dict = {}  # candidate id -> core.review.suggestions.Suggestion
        self.suggestion_tasks: dict = {}  # candidate id -> its running suggestion task
        self.shown: int | None = None  # the candidate whose views are on screen
        self.framed: dict = {}  # candidate id -> the geometry its views were cut around
        self.wanted: int | None = None  # the candidate the reviewer is on

    def set_years(self, years: list) -> None:
        """Lay out one view per year (a new review), forgetting every view made before."""
        self.forget(set())
        self.years = list(years)
        for label in self.labels:
            label.deleteLater()
        self.labels = []
        columns = 3 if len(self.years) > 4 else max(1, len(self.years))
        for i, year in enumerate(self.years):
            label = QLabel(str(year.year), self)
            label.setFixedSize(VIEW_PX, VIEW_PX)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setStyleSheet(PLAIN)
            label.setToolTip(f"{year.year}: click to show this year on the main map")
            label.mousePressEvent = lambda _event, index=i: self.yearClicked.emit(index)
            self.grid.addWidget(label, i // columns, i % columns)
            self.labels.append(label)

    def prepare(self, candidate_id: int, geometry) -> None:
        """Start cutting a candidate's views, unless they are made or being made."""
        if not self.years or candidate_id in self.pixmaps or candidate_id in self.tasks:
            return
        self.framed[candidate_id] = geometry
        task = year_views_task(YearViewsRequest(candidate_id, tuple(self.years), geometry, VIEW_PX))
        task.succeeded.connect(lambda frames, fid=candidate_id: self._arrived(fid, frames))
        task.failed.connect(lambda message, fid=candidate_id: self._failed(fid, message))
        task.cancelled.connect(lambda fid=candidate_id: self.tasks.pop(fid, None))
        self.tasks[candidate_id] = task
        self.runner.start(task)

    def show_candidate(self, candidate_id: int) -> None:
        """Show its views, or a placeholder per year until they arrive."""
        self.wanted = candidate_id
        pixmaps = self.pixmaps.get(candidate_id)
        if pixmaps is None:
            self.shown = None
            for label, year in zip(self.labels, self.years):
                label.setPixmap(QPixmap())
                label.setText(f"{year.year}\n…")
            return
        for label, pixmap in zip(self.labels, pixmaps):
            label.setPixmap(pixmap)
        self.shown = candidate_id

    def overlay(self, candidate_id: int, outline) -> None:
        """Draw ``outline`` (project CRS; None: none) over the candidate's views, in magenta:
        an outline redrawn from the probability, before the reviewer keeps or drops it."""
        from qgis.PyQt.QtCore import QPointF
        from qgis.PyQt.QtGui import QColor, QPainter, QPen, QPolygonF

        from ..core.review.timelapse import frame_bounds

        pixmaps = self.pixmaps.get(candidate_id)
        if self.shown != candidate_id or not pixmaps:
            return
        if outline is None or outline.is_empty:
            self.show_candidate(candidate_id)
            return
        minx, _miny, maxx, maxy = frame_bounds(self.framed[candidate_id])
        scale = VIEW_PX / (maxx - minx)
        for label, base in zip(self.labels, pixmaps):
            drawn = base.copy()
            painter = QPainter(drawn)
            painter.setPen(QPen(QColor(255, 0, 255), 2, Qt.PenStyle.DashLine))
            for polygon in getattr(outline, "geoms", [outline]):
                ring = QPolygonF(
                    [QPointF((x - minx) * scale, (maxy - y) * scale) for x, y in polygon.exterior.coords]
                )
                painter.drawPolygon(ring)
            painter.end()
            label.setPixmap(drawn)

    def ready(self, candidate_id: int) -> bool:
        """True when every view of ``candidate_id`` is on screen."""
        return self.shown == candidate_id and candidate_id in self.pixmaps

    def forget(self, keep: set[int]) -> None:
        """Drop the views (and stop the tasks) of every candidate not in ``keep``."""
        for fid in [f for f in self.tasks if f not in keep]:
            self.tasks.pop(fid).cancel()
            self.framed.pop(fid, None)
        for fid in [f for f in self.suggestion_tasks if f not in keep]:
            self.suggestion_tasks.pop(fid).cancel()
        for fid in [f for f in self.pixmaps if f not in keep]:
            del self.pixmaps[fid]
            self.suggestions.pop(fid, None)
            self.framed.pop(fid, None)

    def highlight(self, index: int) -> None:
        """Frame the view of the year shown on the main map."""
        for i, label in enumerate(self.labels):
            label.setStyleSheet(HIGHLIGHT if i == index else PLAIN)

    def _arrived(self, candidate_id: int, frames) -> None:
        if self.tasks.pop(candidate_id, None) is None:
            return  # forgotten meanwhile
        self.pixmaps[candidate_id] = [pixmap_of(f.rgb) for f in frames]
        self.setToolTip("")
        if self.wanted == candidate_id:
            self.show_candidate(candidate_id)
        self._suggest(candidate_id)

    def _suggest(self, candidate_id: int) -> None:
        """Read the suggestion once the views are up (the views come first: they are waited for)."""
        task = suggestion_task(
            YearViewsRequest(candidate_id, tuple(self.years), self.framed[candidate_id], VIEW_PX)
        )
        task.succeeded.connect(lambda suggestion, fid=candidate_id: self._suggested(fid, suggestion))
        task.failed.connect(
            lambda message, fid=candidate_id: self._suggested(fid, Suggestion(failed=message))
        )
        task.cancelled.connect(lambda fid=candidate_id: self.suggestion_tasks.pop(fid, None))
        self.suggestion_tasks[candidate_id] = task
        self.runner.start(task)

    def _suggested(self, candidate_id: int, suggestion) -> None:
        if self.suggestion_tasks.pop(candidate_id, None) is None or candidate_id not in self.pixmaps:
            return  # forgotten meanwhile
        self.suggestions[candidate_id] = suggestion
        self.suggested.emit(candidate_id)

    def _failed(self, candidate_id: int, message: str) -> None:
        """A raster gone missing: say so over the views, keep reviewing."""
        if self.tasks.pop(candidate_id, None) is None:
            return
        self.pixmaps[candidate_id] = []
        self.setToolTip(f"year views: {message}")
        if self.wanted == candidate_id:
            for label, year in zip(self.labels, self.years):
                label.setText(f"{year.year}\n(no view)")
            self.shown = candidate_id

    def shutdown(self) -> None:
        self.forget(set())
