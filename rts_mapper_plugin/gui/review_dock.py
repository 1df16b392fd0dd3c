"""Review dock: step through candidates with every registered year side by side, decide by keyboard.

Works without torch. Every decision goes to the project's GeoPackage at once (core.review), so
quitting QGIS, or QGIS crashing, loses nothing; reopening resumes at the first candidate this
reviewer has not decided. Year views are cut from the registered rasters by a background worker
that prepares the next candidates ahead, so stepping does not wait on rendering.
"""

from __future__ import annotations

import contextlib
import json
import time
from concurrent.futures import Future, ThreadPoolExecutor

from qgis.core import Qgis, QgsGeometry, QgsProject, QgsRectangle, QgsWkbTypes
from qgis.gui import QgsRubberBand
from qgis.PyQt.QtCore import QEvent, QObject, Qt, QTimer
from qgis.PyQt.QtGui import QColor, QImage, QKeySequence, QPixmap
from qgis.PyQt.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QKeySequenceEdit,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import RtsMapperError
from ..core.project.store import CRITERIA, MappingProject, initiation_periods
from ..qgis_layers.timelapse import GROUP_NAME, year_layers
from ..toolbelt.log_handler import notify
from ..toolbelt.preferences import PlgSettings
from .dock_base import RtsDock
from .project_picker import ProjectPicker
from .road_row import RoadRow

# action -> (label, default key). Decisions move on to the next candidate.
SHORTCUTS: dict[str, tuple[str, str]] = {
    "accept": ("Accept (RTS) and go on", "A"),
    "reject": ("Reject and go on", "R"),
    "unsure": ("Unsure and go on", "U"),
    "next": ("Next candidate", "Right"),
    "previous": ("Previous candidate", "Left"),
    "next_unreviewed": ("Next candidate I have not decided", "Shift+Right"),
    "year_next": ("Main map: next year", "Y"),
    "year_previous": ("Main map: previous year", "Shift+Y"),
    "edit": ("Edit this boundary (vertex tool)", "E"),
    "headwall_highest": ("Criterion: headwall at the highest elevation", "H"),
    "colour_contrast": ("Criterion: colour contrast", "C"),
    "arcuate_shaded_headwall": ("Criterion: arcuate, shaded headwall", "S"),
    "upslope_retreat": ("Criterion: upslope retreat over the years", "T"),
    "period_next": ("Initiation period: next", "P"),
    "note": ("Write a note", "N"),
    "zoom": ("Zoom back to the candidate", "Z"),
    # not F1: QGIS's Help has it, and two shortcuts on one key fire neither ("Ambiguous shortcut")
    "help": ("Show these shortcuts", "K"),
    **{f"probability_{d}": (f"Probability {d * 10} %", str(d)) for d in range(1, 10)},
    "probability_100": ("Probability 100 %", "0"),
}
NOT_ON_MAP = ("next", "previous", "next_unreviewed")  # the arrows pan the main map
TEXT_INPUTS = (QLineEdit, QAbstractSpinBox, QComboBox, QKeySequenceEdit)  # keep their keys
PREFETCH = 3  # candidates prepared ahead
VIEW_PX = 150
NOT_SET = "—"
ALL_SETS = "*"  # the candidate-set combo's "every set" (a run id never is "*")


def current_shortcuts() -> dict[str, str]:
    """The defaults with the user's own keys over them; a default whose key the user gave to
    another action gives way (is left without a key): one key, one action."""
    own: dict[str, str] = {}
    with contextlib.suppress(json.JSONDecodeError, AttributeError):  # hand-mangled: the defaults
        own = {a: str(k) for a, k in json.loads(PlgSettings.load().review_shortcuts or "{}").items()}
    own = {a: k for a, k in own.items() if a in SHORTCUTS}
    taken = {QKeySequence(k).toString() for k in own.values() if k}
    keys = {}
    for action, (_, default) in SHORTCUTS.items():
        if action in own:
            keys[action] = own[action]
        else:
            keys[action] = "" if QKeySequence(default).toString() in taken else default
    return keys


class ShortcutsDialog(QDialog):
    """Every shortcut, editable: the help popup and the place to change keys."""

    def __init__(self, keys: dict[str, str], parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("RTS Mapper review: keyboard shortcuts")
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel(
                "Keys work while the Review dock has focus (click it once), and on the map during a "
                "review; there they come before QGIS's own. Change a key by clicking it."
            )
        )
        self.table = QTableWidget(len(SHORTCUTS), 2, self)
        self.table.setHorizontalHeaderLabels(["Action", "Key"])
        self.editors: dict[str, QKeySequenceEdit] = {}
        for row, (action, (label, _)) in enumerate(SHORTCUTS.items()):
            self.table.setCellWidget(row, 0, QLabel(label))
            editor = QKeySequenceEdit(QKeySequence(keys[action]), self)
            self.editors[action] = editor
            self.table.setCellWidget(row, 1, editor)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(
            QDialogButtonBox.Save | QDialogButtonBox.Close | QDialogButtonBox.RestoreDefaults
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.RestoreDefaults).clicked.connect(self._defaults)
        layout.addWidget(buttons)
        self.resize(520, 560)

    def _defaults(self) -> None:
        for action, (_, key) in SHORTCUTS.items():
            self.editors[action].setKeySequence(QKeySequence(key))

    def clashes(self) -> list[str]:
        """Keys given to two actions here (one key, one action). A key QGIS also uses is fine:
        the dock's keys come first while it has the keyboard."""
        problems, seen = [], {}
        for action, key in self.keys().items():
            if not key:
                continue
            if key in seen:
                problems.append(f"{key}: both “{SHORTCUTS[seen[key]][0]}” and “{SHORTCUTS[action][0]}”")
            seen[key] = action
        return problems

    def accept(self) -> None:
        problems = self.clashes()
        if problems:
            QMessageBox.warning(self, self.windowTitle(), "Choose other keys for:\n" + "\n".join(problems))
            return
        super().accept()

    def keys(self) -> dict[str, str]:
        return {a: e.keySequence().toString() for a, e in self.editors.items()}


class MapKeys(QObject):
    """The review's keys on the main map while a review runs and the dock is open (they come
    first there too, as in the dock)."""

    def __init__(self, dock) -> None:
        super().__init__(dock)
        self.dock = dock

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt naming)
        if event.type() not in (QEvent.ShortcutOverride, QEvent.KeyPress):
            return False
        dock = self.dock
        action = dock.action_for(event) if dock.queue and dock.isVisible() else None
        if action is None or action in NOT_ON_MAP:
            return False
        event.accept()
        if event.type() == QEvent.KeyPress:
            dock.slots[action]()
        return True


class ReviewDock(RtsDock):
    title = "RTS Mapper: Review"
    object_name = "RtsMapperReviewDock"

    def __init__(self, iface, runner=None, parent=None) -> None:
        super().__init__(iface, parent)
        self.runner = runner
        self.project: MappingProject | None = None
        self.layer = None
        self.my_decision: str | None = None
        self._shown_fid: int | None = None
        self.run_id: str | None = None
        self.queue = []
        self.index = -1
        self.shown_at = time.monotonic()
        self.years: list = []
        self.year_index = 0
        self.frames: dict[int, Future] = {}
        self.pixmaps: dict[int, list[QPixmap]] = {}
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rts-review-views")
        self.last_status: str | None = None
        self.rubber_band = QgsRubberBand(iface.mapCanvas(), QgsWkbTypes.PolygonGeometry) if iface else None
        if self.rubber_band is not None:
            self.rubber_band.setStrokeColor(QColor(0, 229, 255))
            self.rubber_band.setFillColor(QColor(0, 0, 0, 0))
            self.rubber_band.setWidth(3)
        self.setFocusPolicy(Qt.StrongFocus)  # a click on the dock gives it the keyboard
        self._build()
        self.apply_shortcuts(current_shortcuts())
        self.map_keys = MapKeys(self)
        if iface is not None:
            iface.mapCanvas().installEventFilter(self.map_keys)
        self.poll = QTimer(self)
        self.poll.setInterval(40)
        self.poll.timeout.connect(self._collect_views)
        # the project's "N pending" follows the decisions, a moment after the last one
        self.summary_timer = QTimer(self)
        self.summary_timer.setSingleShot(True)
        self.summary_timer.setInterval(1500)
        self.summary_timer.timeout.connect(self.project_picker.refresh_summary)
        self.summary_timer.timeout.connect(self.refresh_sets)  # the sets' pending counts too
        # WillBe: the layer still exists (on Project › Open it is deleted before layersRemoved)
        self.listen(QgsProject.instance().layersWillBeRemoved, self._layers_removed)
        self.listen(QgsProject.instance().layersAdded, self.refresh_sets)  # a new run's layer
        self.project_changed()

    # -- widgets --
    def _build(self) -> None:
        settings = PlgSettings.load()
        self.project_picker = ProjectPicker(self, self.iface)
        self.project_picker.projectChanged.connect(self.project_changed)
        self.project_picker.loaded.connect(self.refresh_sets)
        self.body_layout.addWidget(self.project_picker)
        form = QFormLayout()
        self.set_combo = QComboBox(self)
        self.set_combo.setObjectName("candidateSetCombo")
        self.set_combo.setToolTip(
            "The project's candidate sets (one per inference run), listed from its GeoPackage: "
            "a set that is not on the map is loaded when the review starts"
        )
        form.addRow("Candidates", self.set_combo)
        self.reviewer = QLineEdit(settings.reviewer_name, self)
        self.reviewer.setObjectName("reviewerName")
        self.reviewer.setPlaceholderText("your name (stored with each decision)")
        self.reviewer.editingFinished.connect(self.restore_session)
        form.addRow("Reviewer", self.reviewer)
        self.order = QComboBox(self)
        for key, label in (
            ("id", "id"),
            ("probability", "probability (highest first)"),
            ("area", "area (largest first)"),
            ("road", "distance to road (nearest first)"),
        ):
            self.order.addItem(label, key)
        self.order.setCurrentIndex(max(0, self.order.findData(settings.review_order)))
        form.addRow("Order by", self.order)
        self.show_filter = QComboBox(self)
        for key, label in (
            ("all", "all candidates"),
            ("pending", "only pending"),
            ("mine", "only those I have not decided"),
            ("conflict", "only conflicts (final decision)"),
        ):
            self.show_filter.addItem(label, key)
        form.addRow("Show", self.show_filter)
        roads = RoadRow("within", any_distance=True, parent=self)
        self.road_combo, self.near_road = roads.combo, roads.distance
        form.addRow("Roads", roads)
        self.body_layout.addLayout(form)
        start = QPushButton("Start / refresh review", self)
        start.clicked.connect(self.start_review)
        self.start_button = start
        self.body_layout.addWidget(start)

        self.position = QLabel("Choose the candidates to review, then Start.", self)
        self.position.setWordWrap(True)
        self.body_layout.addWidget(self.position)
        self.progress_label = QLabel("", self)
        self.progress_label.setWordWrap(True)
        self.body_layout.addWidget(self.progress_label)

        self.views_widget = QWidget(self)
        self.views = QGridLayout(self.views_widget)
        self.views.setContentsMargins(0, 0, 0, 0)
        self.views.setSpacing(4)
        self.view_labels: list[QLabel] = []
        self.body_layout.addWidget(self.views_widget)

        decision = QGridLayout()
        self.criteria: dict[str, QCheckBox] = {}
        for row, (name, label) in enumerate(CRITERIA):
            box = QCheckBox(label, self)
            self.criteria[name] = box
            decision.addWidget(box, row, 0)
        self.body_layout.addLayout(decision)
        details = QFormLayout()
        probability = QHBoxLayout()
        self.probability = QSpinBox(self)
        self.probability.setRange(-1, 100)
        self.probability.setSpecialValueText(NOT_SET)
        self.probability.setSuffix(" %")
        self.probability.setValue(-1)
        probability.addWidget(self.probability)
        for value in (25, 50, 75):
            quick = QPushButton(f"{value}", self)
            quick.setMaximumWidth(40)
            quick.setFocusPolicy(Qt.NoFocus)
            quick.clicked.connect(lambda _=False, v=value: self.probability.setValue(v))
            probability.addWidget(quick)
        details.addRow("Probability", probability)
        self.period = QComboBox(self)
        details.addRow("Initiation", self.period)
        self.note = QLineEdit(self)
        self.note.setObjectName("reviewNote")
        self.note.setPlaceholderText("note (N; Enter keeps it, Esc undoes the edit)")
        self.note.returnPressed.connect(self.finish_note)
        self.note.installEventFilter(self)
        self._note_before: str | None = None
        details.addRow("Note", self.note)
        self.body_layout.addLayout(details)

        buttons = QHBoxLayout()
        self.accept_button = QPushButton("Accept (A)", self)
        self.reject_button = QPushButton("Reject (R)", self)
        self.unsure_button = QPushButton("Unsure (U)", self)
        for button, decision_name in (
            (self.accept_button, "accepted"),
            (self.reject_button, "rejected"),
            (self.unsure_button, "unsure"),
        ):
            button.clicked.connect(lambda _=False, d=decision_name: self.decide(d))
            buttons.addWidget(button)
        self.body_layout.addLayout(buttons)
        navigation = QHBoxLayout()
        for text, slot in (
            ("◀ Previous", self.previous),
            ("Next ▶", self.next),
            ("Next undecided ▶▶", self.next_unreviewed),
            ("Edit boundary (E)", self.edit_boundary),
        ):
            button = QPushButton(text, self)
            button.clicked.connect(slot)
            navigation.addWidget(button)
        self.body_layout.addLayout(navigation)
        tools = QHBoxLayout()
        for text, slot in (
            ("Shortcuts… (K)", self.show_shortcuts),
            ("Agreement…", self.show_agreement),
            ("Export time-lapse…", self.export_timelapse),
        ):
            button = QPushButton(text, self)
            button.clicked.connect(slot)
            tools.addWidget(button)
        self.body_layout.addLayout(tools)
        self.others = QLabel("", self)
        self.others.setWordWrap(True)
        self.body_layout.addWidget(self.others)
        self.body_layout.addStretch(1)
        self._set_enabled(False)

    def _set_enabled(self, enabled: bool) -> None:
        for widget in (
            self.accept_button,
            self.reject_button,
            self.unsure_button,
            self.probability,
            self.period,
            self.note,
            *self.criteria.values(),
        ):
            widget.setEnabled(enabled)

    def apply_shortcuts(self, keys: dict[str, str]) -> None:
        """Keys work while the dock has the keyboard, and (all but the arrows, which pan) on the
        main map while a review runs, so that A / R / U work straight after editing a boundary.

        They are the dock's, not application shortcuts: while the dock (or, in a review, the map)
        has the keyboard, its keys come first, so a key QGIS also uses (S toggles snapping, R
        stream digitizing, T tracing) is never ambiguous and does not fire both."""
        self.slots = {
            "accept": lambda: self.decide("accepted"),
            "reject": lambda: self.decide("rejected"),
            "unsure": lambda: self.decide("unsure"),
            "next": self.next,
            "previous": self.previous,
            "next_unreviewed": self.next_unreviewed,
            "year_next": lambda: self.step_year(1),
            "year_previous": lambda: self.step_year(-1),
            "edit": self.edit_boundary,
            "period_next": self._next_period,
            "note": self.begin_note,
            "zoom": self.zoom_to_current,
            "help": self.show_shortcuts,
            **{name: self.criteria[name].toggle for name in self.criteria},
            **{f"probability_{d}": (lambda v=d * 10: self.probability.setValue(v)) for d in range(1, 10)},
            "probability_100": lambda: self.probability.setValue(100),
        }
        self.keys = keys
        self.key_actions = {QKeySequence(k).toString(): a for a, k in keys.items() if k}

    def action_for(self, event) -> str | None:
        """The review action a key event means, or None."""
        if event.key() in (Qt.Key_Shift, Qt.Key_Control, Qt.Key_Alt, Qt.Key_Meta, 0):
            return None
        modifiers = int(event.modifiers()) & ~int(Qt.KeypadModifier)
        return self.key_actions.get(QKeySequence(event.key() | modifiers).toString())

    def event(self, event) -> bool:
        """The review's keys come first while the dock has the keyboard (not in its text fields)."""
        if event.type() in (QEvent.ShortcutOverride, QEvent.KeyPress):
            action = self.action_for(event)
            focus = QApplication.focusWidget()
            if action is not None and not (focus is not self and isinstance(focus, TEXT_INPUTS)):
                event.accept()  # on ShortcutOverride: no application shortcut takes this key
                if event.type() == QEvent.KeyPress:
                    self.slots[action]()
                return True
        return super().event(event)

    # -- the candidate sets of the project, from its GeoPackage --
    def project_changed(self, *_args) -> None:
        self.refresh_sets()
        self.restore_session()

    def refresh_sets(self, *_args) -> None:
        """List the project's candidate sets again (a run may have added one), keeping the choice."""
        from ..core.project.contents import candidate_sets

        chosen = self.set_combo.currentData()
        self.set_combo.clear()
        project = self.project_picker.mapping_project()
        if project is None:
            return
        sets = candidate_sets(project)
        for candidate_set in reversed(sets):  # the newest first: usually the one under review
            self.set_combo.addItem(candidate_set.label, candidate_set.run.run_id)
        if len(sets) > 1:
            self.set_combo.addItem("Every candidate set", ALL_SETS)
        index = self.set_combo.findData(chosen)
        self.set_combo.setCurrentIndex(index if index >= 0 else 0)

    def restore_session(self) -> None:
        """This reviewer's last candidate set, filter and order in this project, from the project."""
        from ..core.review.decisions import review_session

        project = self.project_picker.mapping_project()
        reviewer = self.reviewer.text().strip()
        if project is None or not reviewer or self.queue:
            return
        session = review_session(project, reviewer)
        if session is None:
            return
        for combo, value in (
            (self.set_combo, session.run_id or ALL_SETS),
            (self.show_filter, session.show),
            (self.order, session.order_by),
        ):
            index = combo.findData(value)
            if index >= 0:
                combo.setCurrentIndex(index)
        self.position.setText(
            f"Where you left off: {self.set_combo.currentText()}, {self.show_filter.currentText()}. "
            "Start resumes at the first candidate you have not decided."
        )

    def candidate_layer(self, project: MappingProject, run_id: str | None):
        """The layer that shows the chosen set: the one on the map, else loaded now."""
        from ..qgis_layers.layers import add_run_layers, candidates_layer, runs_group
        from .project_picker import layer_of_run

        layer = layer_of_run(run_id, project.path)
        if layer is not None:
            return layer
        if run_id is None:
            layer = candidates_layer(project.path, None, "Candidates (every set)")
            QgsProject.instance().addMapLayer(layer, False)
            runs_group(QgsProject.instance()).insertLayer(0, layer)
        else:
            run = next(r for r in project.runs() if r.run_id == run_id)
            layer = add_run_layers(project, run)[0]
        notify(self.iface, f"{layer.name()}: loaded from the project (it was not on the map).", Qgis.Info)
        return layer

    # -- starting --
    def start_review(self) -> None:
        project = self.project_picker.mapping_project()
        reviewer = self.reviewer.text().strip()
        if project is None:
            notify(self.iface, "Choose a mapping project first.", Qgis.Warning)
            return
        if self.set_combo.count() == 0:
            notify(self.iface, "The project has no candidates yet: run inference first.", Qgis.Warning)
            return
        if not reviewer:
            notify(self.iface, "Type your name first: it is stored with each decision.", Qgis.Warning)
            self.reviewer.setFocus()
            return
        run_id = self.set_combo.currentData()
        run_id = None if run_id == ALL_SETS else run_id
        try:
            self.project = project
            layer = self.candidate_layer(project, run_id)
            self.run_id = run_id
            roads = None
            road_layer = self.road_combo.currentLayer()
            if road_layer is not None:
                from ..qgis_layers.layers import layer_features

                roads = layer_features(road_layer)
            choice = self.show_filter.currentData()
            from ..core.review.decisions import my_decisions, resume_index, review_queue

            queue = review_queue(
                self.project,
                self.run_id,
                order=self.order.currentData(),
                roads=roads,
                statuses={"pending": ("pending",), "conflict": ("conflict",)}.get(choice),
                near_road_m=self.near_road.value() or None,
            )
            decided = set(my_decisions(self.project, reviewer))
            if choice == "mine":
                queue = [item for item in queue if item.fid not in decided]
        except RtsMapperError as exc:
            notify(self.iface, str(exc), Qgis.Warning)
            return
        from ..core.review.decisions import ReviewSession, save_review_session

        save_review_session(
            project, reviewer, ReviewSession(run_id, self.show_filter.currentData(), self.order.currentData())
        )
        PlgSettings.load().update(
            reviewer_name=reviewer,
            review_order=self.order.currentData(),
            road_layer_id=road_layer.id() if road_layer else "",
        )
        self.layer = layer
        self.queue = queue
        self.years = self.project.years()
        self.period.clear()
        self.period.addItem(NOT_SET, "")
        for period in initiation_periods([y.year for y in self.years]):
            self.period.addItem(period, period)
        self._build_views()
        self.frames.clear()
        self.pixmaps.clear()
        self.year_index = self._visible_year_index()
        if not queue:
            self.position.setText("No candidate matches: nothing to review.")
            self._set_enabled(False)
            return
        self._set_enabled(True)
        self.show_candidate(resume_index(queue, decided))
        self.setFocus()

    def _build_views(self) -> None:
        for label in self.view_labels:
            label.deleteLater()
        self.view_labels = []
        columns = 3 if len(self.years) > 4 else max(1, len(self.years))
        for i, year in enumerate(self.years):
            label = QLabel(str(year.year), self.views_widget)
            label.setFixedSize(VIEW_PX, VIEW_PX)
            label.setAlignment(Qt.AlignCenter)
            label.setStyleSheet("background: #222; color: #ddd;")
            label.setToolTip(f"{year.year}: click to show this year on the main map")
            label.mousePressEvent = lambda _event, index=i: self.show_year(index)
            self.views.addWidget(label, i // columns, i % columns)
            self.view_labels.append(label)

    # -- stepping --
    @property
    def current(self):
        return self.queue[self.index] if 0 <= self.index < len(self.queue) else None

    def show_candidate(self, index: int) -> None:
        if not self.queue:
            return
        self.index = max(0, min(index, len(self.queue) - 1))
        item = self.current
        self.shown_at = time.monotonic()
        self.zoom_to_current()
        self._load_form(item)
        self._request_views(self.index)
        for ahead in range(1, PREFETCH + 1):
            self._request_views(self.index + ahead)
        self._show_views()
        self._update_labels()

    def zoom_to_current(self) -> None:
        item = self.current
        if item is None or self.iface is None:
            return
        geometry = QgsGeometry.fromWkt(item.geometry.wkt)
        box = geometry.boundingBox()
        side = max(box.width(), box.height(), 150.0)
        view = QgsRectangle.fromCenterAndSize(box.center(), side * 2.2, side * 2.2)
        canvas = self.iface.mapCanvas()
        canvas.setExtent(view)
        canvas.refresh()
        if self.rubber_band is not None:
            self.rubber_band.setToGeometry(geometry, self.layer)

    def next(self) -> None:
        self.show_candidate(self.index + 1)

    def previous(self) -> None:
        self.show_candidate(self.index - 1)

    def next_unreviewed(self) -> None:
        from ..core.review.decisions import my_decisions

        decided = set(my_decisions(self.project, self.reviewer.text().strip())) if self.project else set()
        for offset in range(1, len(self.queue) + 1):
            index = (self.index + offset) % len(self.queue)
            if self.queue[index].fid not in decided:
                self.show_candidate(index)
                return
        notify(self.iface, "You have decided every candidate in this list.", Qgis.Success)

    # -- year views, prepared ahead in a worker thread --
    def _request_views(self, index: int) -> None:
        if not (0 <= index < len(self.queue)) or not self.years:
            return
        fid = self.queue[index].fid
        if fid in self.frames:
            return
        from ..core.review.timelapse import labelled_frames

        self.frames[fid] = self.executor.submit(
            labelled_frames, self.years, self.queue[index].geometry, VIEW_PX
        )
        self.poll.start()

    def _collect_views(self) -> None:
        for fid, future in list(self.frames.items()):
            if future.done() and fid not in self.pixmaps:
                try:
                    frames = future.result()
                except Exception as exc:  # a raster gone missing: say so in the views
                    self.pixmaps[fid] = []
                    self.position.setToolTip(f"year views: {exc}")
                    continue
                self.pixmaps[fid] = [
                    QPixmap.fromImage(
                        QImage(
                            f.rgb.data,
                            f.rgb.shape[1],
                            f.rgb.shape[0],
                            3 * f.rgb.shape[1],
                            QImage.Format_RGB888,
                        ).copy()
                    )
                    for f in frames
                ]
        if all(f.done() for f in self.frames.values()):
            self.poll.stop()
        self._show_views()

    def views_ready(self) -> bool:
        """True when every year view of the current candidate is on screen."""
        item = self.current
        return item is not None and item.fid in self.pixmaps and self._shown_fid == item.fid

    def _show_views(self) -> None:
        item = self.current
        if item is None:
            return
        pixmaps = self.pixmaps.get(item.fid)
        if pixmaps is None:
            future = self.frames.get(item.fid)
            if future is not None and future.done():
                self._collect_views()
                return
            for label, year in zip(self.view_labels, self.years):
                label.setPixmap(QPixmap())
                label.setText(f"{year.year}\n…")
            return
        for label, pixmap in zip(self.view_labels, pixmaps):
            label.setPixmap(pixmap)
        self._shown_fid = item.fid
        # keep memory flat: forget views far behind
        keep = {
            self.queue[i].fid
            for i in range(max(0, self.index - 2), min(len(self.queue), self.index + PREFETCH + 1))
        }
        for fid in [f for f in self.pixmaps if f not in keep]:
            self.pixmaps.pop(fid, None)
            self.frames.pop(fid, None)

    # -- the main map's year --
    def show_year(self, index: int) -> None:
        layers = year_layers()
        if not layers or not self.years:
            return
        self.year_index = index % len(self.years)
        year = self.years[self.year_index].year
        group = QgsProject.instance().layerTreeRoot().findGroup(GROUP_NAME)
        if group is not None:
            for node in group.findLayers():
                node.setItemVisibilityChecked(node.layer() is layers.get(year))
        navigation = self.iface.mapCanvas().temporalController() if self.iface else None
        if navigation is not None and navigation.navigationMode() == navigation.Animated:
            navigation.setCurrentFrameNumber(self.year_index)
        for i, label in enumerate(self.view_labels):
            label.setStyleSheet(
                "background: #222; border: 3px solid #00e5ff;"
                if i == self.year_index
                else "background: #222;"
            )
        self._update_labels()

    def _visible_year_index(self) -> int:
        """The registered year shown on the main map now (the first one if none or several)."""
        group = QgsProject.instance().layerTreeRoot().findGroup(GROUP_NAME)
        if group is None:
            return 0
        layers = year_layers()
        visible = [y for y, layer in layers.items() if group.findLayer(layer.id()).isVisible()]
        years = [y.year for y in self.years]
        return years.index(visible[0]) if len(visible) == 1 and visible[0] in years else 0

    def step_year(self, step: int) -> None:
        self.show_year(self.year_index + step)

    # -- the decision form --
    def _load_form(self, item) -> None:
        from ..core.review.decisions import decisions_of

        reviewer = self.reviewer.text().strip()
        rows = decisions_of(self.project, [item.fid])
        mine = next((r for r in rows if r["reviewer"] == reviewer and not r["is_final"]), None)
        for name, box in self.criteria.items():
            box.setChecked(bool(mine and mine[name]))
        self.probability.setValue(mine["probability"] if mine and mine["probability"] is not None else -1)
        self.period.setCurrentIndex(
            max(0, self.period.findData(mine["initiation_period"] or "")) if mine else 0
        )
        self.note.setText((mine["note"] or "") if mine else "")
        others = [
            f"{r['reviewer']}{' (final)' if r['is_final'] else ''}: {r['decision']}"
            for r in rows
            if r["reviewer"] != reviewer or r["is_final"]
        ]
        self.others.setText(("Other decisions: " + "; ".join(others)) if others else "")
        self.my_decision = mine["decision"] if mine else None

    # -- the note: typed in its field, then Enter or Escape hands the keyboard back to the dock --
    def begin_note(self) -> None:
        if not self.note.isEnabled():
            return
        self._note_before = self.note.text()
        self.note.setFocus()
        self.note.end(False)

    def finish_note(self) -> None:
        """Enter: keep the note (stored at once when this candidate is already decided, else with
        the decision) and give the keyboard back to the dock, so that the next key decides."""
        self._note_before = None
        item = self.current
        if item is not None and self.project is not None and self.my_decision:
            from ..core.review.decisions import update_note

            update_note(
                self.project,
                item.fid,
                self.reviewer.text().strip(),
                self.note.text().strip(),
                is_final=self.show_filter.currentData() == "conflict",
            )
        self.setFocus()

    def cancel_note(self) -> None:
        """Escape: undo what was typed since N, give the keyboard back to the dock."""
        if self._note_before is not None:
            self.note.setText(self._note_before)
        self._note_before = None
        self.setFocus()

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt naming)
        is_key = event.type() in (QEvent.ShortcutOverride, QEvent.KeyPress)
        if watched is self.note and is_key and event.key() == Qt.Key_Escape:
            event.accept()  # QGIS's own Esc (stop rendering) must not take it
            if event.type() == QEvent.KeyPress:
                self.cancel_note()
            return True
        return super().eventFilter(watched, event)

    def _next_period(self) -> None:
        if self.period.count():
            self.period.setCurrentIndex((self.period.currentIndex() + 1) % self.period.count())

    def decide(self, decision: str) -> None:
        item = self.current
        reviewer = self.reviewer.text().strip()
        if item is None or self.project is None:
            return
        if not reviewer:
            notify(self.iface, "Type your name first: it is stored with each decision.", Qgis.Warning)
            return
        from shapely import wkb

        from ..core.review.decisions import Decision, record_decision

        edited = False
        geometry = None
        if self.layer.isEditable():
            edited = (
                self.layer.editBuffer() is not None
                and item.fid in self.layer.editBuffer().changedGeometries()
            )
            if not self.layer.commitChanges():
                notify(
                    self.iface,
                    "Could not save the edited boundary: " + "; ".join(self.layer.commitErrors()),
                    Qgis.Critical,
                    0,
                )
                return
        if edited:
            feature = self.layer.getFeature(item.fid)
            geometry = wkb.loads(bytes(feature.geometry().asWkb()))
            item.geometry = geometry
        try:
            status = record_decision(
                self.project,
                Decision(
                    candidate_id=item.fid,
                    reviewer=reviewer,
                    decision=decision,
                    probability=self.probability.value() if self.probability.value() >= 0 else None,
                    initiation_period=self.period.currentData() or None,
                    criteria={name: box.isChecked() for name, box in self.criteria.items()},
                    note=self.note.text().strip(),
                    seconds_spent=round(time.monotonic() - self.shown_at, 1),
                    geometry=geometry,
                    edited=edited,
                    is_final=self.show_filter.currentData() == "conflict",
                ),
            )
        except RtsMapperError as exc:
            notify(self.iface, str(exc), Qgis.Critical, 0)
            return
        item.status = status
        self.last_status = status
        self.summary_timer.start()
        self.layer.triggerRepaint()
        if self.index < len(self.queue) - 1:
            self.show_candidate(self.index + 1)
        else:
            self._load_form(item)
            self._update_labels()
            notify(self.iface, "End of the list: every candidate shown.", Qgis.Success)
        self.setFocus()

    def edit_boundary(self) -> None:
        item = self.current
        if item is None or self.iface is None:
            return
        self.iface.setActiveLayer(self.layer)
        if not self.layer.isEditable():
            self.layer.startEditing()
        self.layer.selectByIds([item.fid])
        self.iface.actionVertexTool().trigger()
        self.iface.mapCanvas().setFocus()
        notify(
            self.iface,
            "Drag the vertices of the outlined candidate; the edit is saved with your decision (A / R / U).",
            Qgis.Info,
            6,
        )

    def _update_labels(self) -> None:
        item = self.current
        if item is None:
            return
        road = f", road {item.road_distance_m:.0f} m" if item.road_distance_m is not None else ""
        year = f"; main map: {self.years[self.year_index].year}" if self.years else ""
        mine = f"; you: {self.my_decision}" if self.my_decision else ""
        self.position.setText(
            f"<b>{self.index + 1} / {len(self.queue)}</b>: candidate {item.fid}, {item.status}{mine}; "
            f"{item.area_m2 / 10000:.2f} ha, p {item.mean_prob:.2f}{road}{year}"
        )
        from ..core.review.decisions import review_progress

        progress = review_progress(self.project, [i.fid for i in self.queue], self.reviewer.text().strip())
        self.progress_label.setText(progress.summary())

    # -- dialogs and exports --
    def show_shortcuts(self) -> None:
        dialog = ShortcutsDialog(self.keys, self)
        if dialog.exec_() == QDialog.Accepted:
            keys = dialog.keys()
            changed = {a: k for a, k in keys.items() if k != SHORTCUTS[a][1]}
            PlgSettings.load().update(review_shortcuts=json.dumps(changed))
            self.apply_shortcuts(keys)

    def show_agreement(self) -> None:
        if self.project is None:
            notify(self.iface, "Start a review first.", Qgis.Warning)
            return
        from ..core.review.agreement import decision_agreement
        from ..core.review.decisions import decisions_of, reviewed_boundaries

        result = decision_agreement(decisions_of(self.project), reviewed_boundaries(self.project)).as_dict()
        if result["candidates_compared"] == 0:
            notify(self.iface, "No candidate has decisions from two reviewers yet.", Qgis.Info)
            return
        kappas = ", ".join(f"{k.replace('|', ' vs ')} {v}" for k, v in result["cohen_kappa"].items())
        fleiss = f"; Fleiss' kappa {result['fleiss_kappa']}" if result["fleiss_kappa"] is not None else ""
        notify(
            self.iface,
            f"{result['candidates_compared']} candidates with 2+ reviewers, {result['unanimous']} unanimous; "
            f"Cohen's kappa {kappas}{fleiss}; boundary IoU {result['mean_boundary_iou']}; "
            f"{len(result['conflicts'])} conflicts (Show: only conflicts, to decide them).",
            Qgis.Info,
            0,
        )

    def export_timelapse(self) -> None:
        if self.project is None:
            notify(self.iface, "Start a review first.", Qgis.Warning)
            return
        folder = QFileDialog.getExistingDirectory(self, "Folder for the time-lapse strips and GIFs")
        if not folder:
            return
        from ..core.review.timelapse import export_timelapses
        from ..tasks.base import CoreTask

        project = self.project
        task = CoreTask(
            "RTS Mapper: time-lapse export",
            lambda feedback: export_timelapses(project, folder, statuses=("accepted",), feedback=feedback),
        )
        task.succeeded.connect(
            lambda files: notify(
                self.iface, f"{len(files)} time-lapse files written to {folder}", Qgis.Success
            )
        )
        task.failed.connect(lambda message: notify(self.iface, message, Qgis.Critical))
        self.runner.start(task)

    # -- housekeeping --
    def _layers_removed(self, ids) -> None:
        if self.layer is not None and self.layer.id() in ids:
            self.queue, self.index, self.layer = [], -1, None
            self._set_enabled(False)
            self.position.setText("The candidate layer was removed.")
            if self.rubber_band is not None:
                self.rubber_band.reset()

    def shutdown(self) -> None:
        super().shutdown()
        if self.iface is not None:
            self.iface.mapCanvas().removeEventFilter(self.map_keys)
        self.poll.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self.rubber_band is not None:
            self.iface.mapCanvas().scene().removeItem(self.rubber_band)
            self.rubber_band = None
