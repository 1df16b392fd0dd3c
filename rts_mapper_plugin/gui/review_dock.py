"""Review dock: step through candidates with every registered year side by side, decide by keyboard.

Works without torch. Every decision goes to the project's GeoPackage at once (core.review), so
quitting QGIS, or QGIS crashing, loses nothing; reopening resumes at the first candidate this
reviewer has not decided. The dock assembles three parts: the year views (gui/year_views.py,
cut ahead by tasks), the decision form (gui/decision_form.py) and the keys (gui/review_keys.py);
what is reviewed, and how a decision counts, are rules of core.review.decisions.
"""

from __future__ import annotations

import time

from qgis.core import Qgis, QgsGeometry, QgsProject, QgsRectangle, QgsWkbTypes
from qgis.gui import QgsRubberBand
from qgis.PyQt.QtCore import QEvent, Qt, QTimer
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtWidgets import (
    QApplication,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
)

from ..core.errors import RtsMapperError
from ..core.project.store import MappingProject
from ..core.review import decisions as review
from ..qgis_layers.timelapse import GROUP_NAME, year_layers
from ..toolbelt.i18n import QT_TR_NOOP
from ..toolbelt.log_handler import notify
from ..toolbelt.preferences import PlgSettings
from .decision_form import DecisionForm
from .dock_base import RtsDock
from .project_picker import ProjectPicker
from .review_keys import (
    TEXT_INPUTS,
    MapKeys,
    ShortcutsDialog,
    action_of,
    current_shortcuts,
    key_actions,
    save_shortcuts,
)
from .road_row import RoadRow
from .year_views import YearViews

PREFETCH = 3  # candidates whose views are prepared ahead
HISTORY_LINES = 6  # a candidate's latest history steps shown under the form
REDRAW_STEP = 5  # percent: one [ or ] moves the redraw threshold this much
ALL_SETS = "*"  # the candidate-set combo's "every set" (a run id never is "*")
SHOW_LABELS = {
    "all": "all candidates",
    "pending": "only pending",
    "mine": "only those I have not decided",
    "conflict": "only conflicts (final decision)",
}
ORDER_LABELS = {
    "id": "id",
    "probability": "probability (highest first)",
    "area": "area (largest first)",
    "road": "distance to road (nearest first)",
    "yield": "expected yield (learns from decisions)",
    "doubt": "doubt (learns from decisions)",
}


class ReviewDock(RtsDock):
    title = QT_TR_NOOP("RTS Mapper: Review")
    object_name = "RtsMapperReviewDock"

    def __init__(self, iface, runner, parent=None) -> None:
        super().__init__(iface, parent)
        self.runner = runner
        self.project: MappingProject | None = None
        self.layer = None
        self.my_decision: str | None = None
        self.run_id: str | None = None
        self.queue: list[review.QueueItem] = []
        self.queue_order = "id"
        self.plots = None  # the completeness check's PlotsMode while it runs, else None
        self.index = -1
        self.shown_at = time.monotonic()
        self.years: list = []
        self.year_index = 0
        self.last_status: str | None = None
        self.rubber_band = (
            QgsRubberBand(iface.mapCanvas(), QgsWkbTypes.GeometryType.PolygonGeometry) if iface else None
        )
        if self.rubber_band is not None:
            self.rubber_band.setStrokeColor(QColor(0, 229, 255))
            self.rubber_band.setFillColor(QColor(0, 0, 0, 0))
            self.rubber_band.setWidth(3)
        self.redrawn = None  # the outline redrawn from the probability, until kept or dropped
        self.redraw_band = (
            QgsRubberBand(iface.mapCanvas(), QgsWkbTypes.GeometryType.PolygonGeometry) if iface else None
        )
        if self.redraw_band is not None:
            self.redraw_band.setStrokeColor(QColor(255, 0, 255))
            self.redraw_band.setFillColor(QColor(255, 0, 255, 40))
            self.redraw_band.setLineStyle(Qt.PenStyle.DashLine)
            self.redraw_band.setWidth(2)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # a click on the dock gives it the keyboard
        self._build()
        self.apply_shortcuts(current_shortcuts())
        self.map_keys = MapKeys(self)
        if iface is not None:
            iface.mapCanvas().installEventFilter(self.map_keys)
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
        for key in review.ORDERS:
            self.order.addItem(ORDER_LABELS[key], key)
        self.order.setCurrentIndex(max(0, self.order.findData(settings.review_order)))
        form.addRow("Order by", self.order)
        self.show_filter = QComboBox(self)
        for key in review.SHOWS:
            self.show_filter.addItem(SHOW_LABELS[key], key)
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

        self.views = YearViews(self.runner, self)
        self.views.yearClicked.connect(self.show_year)
        self.views.suggested.connect(self._suggestion_arrived)
        self.body_layout.addWidget(self.views)
        self.form = DecisionForm(self)
        self.form.noteDone.connect(self.finish_note)
        self.body_layout.addWidget(self.form)

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
            ("Undo (Ctrl+Z)", self.undo),
        ):
            button = QPushButton(text, self)
            button.clicked.connect(slot)
            navigation.addWidget(button)
        self.body_layout.addLayout(navigation)
        redraw = QHBoxLayout()
        redraw_button = QPushButton("Outline from probability (B)", self)
        redraw_button.clicked.connect(self.toggle_redraw)
        redraw.addWidget(redraw_button)
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.threshold_slider.setObjectName("redrawThreshold")
        self.threshold_slider.setRange(REDRAW_STEP, 100 - REDRAW_STEP)
        self.threshold_slider.setSingleStep(REDRAW_STEP)
        self.threshold_slider.setPageStep(REDRAW_STEP * 2)
        self.threshold_slider.setValue(50)
        self.threshold_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the dock keeps the keys
        self.threshold_slider.valueChanged.connect(self._redraw)
        redraw.addWidget(self.threshold_slider)
        self.keep_button = QPushButton("Keep (Shift+B)", self)
        self.keep_button.clicked.connect(self.keep_redraw)
        self.keep_button.setEnabled(False)
        redraw.addWidget(self.keep_button)
        self.body_layout.addLayout(redraw)
        self.redraw_label = QLabel("", self)
        self.redraw_label.setWordWrap(True)
        self.body_layout.addWidget(self.redraw_label)
        tools = QHBoxLayout()
        for text, slot in (
            ("Shortcuts… (K)", self.show_shortcuts),
            ("Agreement…", self.show_agreement),
            ("Completeness check…", self.start_completeness),
            ("Export time-lapse…", self.export_timelapse),
        ):
            button = QPushButton(text, self)
            button.clicked.connect(slot)
            tools.addWidget(button)
        self.body_layout.addLayout(tools)
        self.others = QLabel("", self)
        self.others.setWordWrap(True)
        self.body_layout.addWidget(self.others)
        self.history = QLabel("", self)
        self.history.setObjectName("candidateHistory")
        self.history.setWordWrap(True)
        self.history.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.body_layout.addWidget(self.history)
        self.body_layout.addStretch(1)
        self._set_enabled(False)

    def _set_enabled(self, enabled: bool) -> None:
        for widget in (self.accept_button, self.reject_button, self.unsure_button, self.form):
            widget.setEnabled(enabled)

    # -- keys --
    def apply_shortcuts(self, keys: dict[str, str]) -> None:
        """Keys work while the dock has the keyboard, and (all but the arrows, which pan) on the
        main map while a review runs, so that A / R / U work straight after editing a boundary.

        They are the dock's, not application shortcuts: while the dock (or, in a review, the map)
        has the keyboard, its keys come first, so a key QGIS also uses (S toggles snapping, R
        stream digitizing, T tracing) is never ambiguous and does not fire both."""
        form = self.form
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
            "undo": self.undo,
            "redraw": self.toggle_redraw,
            "redraw_keep": self.keep_redraw,
            "threshold_down": lambda: self.threshold_slider.setValue(
                self.threshold_slider.value() - REDRAW_STEP
            ),
            "threshold_up": lambda: self.threshold_slider.setValue(
                self.threshold_slider.value() + REDRAW_STEP
            ),
            "period_next": form.next_period,
            "suggestion": form.take_suggestion,
            "note": form.begin_note,
            "zoom": self.zoom_to_current,
            "help": self.show_shortcuts,
            **{name: box.toggle for name, box in form.criteria.items()},
            **{f"probability_{d}": (lambda v=d * 10: form.set_probability(v)) for d in range(1, 10)},
            "probability_100": lambda: form.set_probability(100),
        }
        self.keys = keys
        self.key_actions = key_actions(keys)

    def action_for(self, event) -> str | None:
        """The review action a key event means, or None."""
        return action_of(self.key_actions, event)

    def event(self, event) -> bool:
        """The review's keys come first while the dock has the keyboard (not in its text fields)."""
        if event.type() in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress):
            action = self.action_for(event)
            focus = QApplication.focusWidget()
            if action is not None and not (focus is not self and isinstance(focus, TEXT_INPUTS)):
                event.accept()  # on ShortcutOverride: no application shortcut takes this key
                if event.type() == QEvent.Type.KeyPress:
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
        notify(
            self.iface,
            f"{layer.name()}: loaded from the project (it was not on the map).",
            Qgis.MessageLevel.Info,
        )
        return layer

    # -- starting --
    def start_review(self) -> None:
        project = self.project_picker.mapping_project()
        reviewer = self.reviewer.text().strip()
        if project is None:
            notify(self.iface, "Choose a mapping project first.", Qgis.MessageLevel.Warning)
            return
        if self.set_combo.count() == 0:
            notify(
                self.iface,
                "The project has no candidates yet: run inference first.",
                Qgis.MessageLevel.Warning,
            )
            return
        if not reviewer:
            notify(
                self.iface,
                "Type your name first: it is stored with each decision.",
                Qgis.MessageLevel.Warning,
            )
            self.reviewer.setFocus()
            return
        run_id = self.set_combo.currentData()
        run_id = None if run_id == ALL_SETS else run_id
        show = self.show_filter.currentData()
        road_layer = self.road_combo.currentLayer()
        try:
            self.project = project
            layer = self.candidate_layer(project, run_id)
            self.run_id = run_id
            roads = None
            if road_layer is not None:
                from ..qgis_layers.layers import layer_features

                roads = layer_features(road_layer)
            queue, start = review.queue_for(
                project,
                reviewer,
                show,
                run_id,
                order=self.order.currentData(),
                roads=roads,
                near_road_m=self.near_road.value() or None,
            )
        except RtsMapperError as exc:
            notify(self.iface, str(exc), Qgis.MessageLevel.Warning)
            return
        review.save_review_session(
            project, reviewer, review.ReviewSession(run_id, show, self.order.currentData())
        )
        PlgSettings.load().update(
            reviewer_name=reviewer,
            review_order=self.order.currentData(),
            road_layer_id=road_layer.id() if road_layer else "",
        )
        self._leave_plots()
        self.layer = layer
        self.queue = queue
        self.queue_order = self.order.currentData()
        self.years = project.years()
        self.form.set_years([y.year for y in self.years])
        self.views.set_years(self.years)
        self.year_index = self._visible_year_index()
        if not queue:
            self.position.setText("No candidate matches: nothing to review.")
            self._set_enabled(False)
            return
        self._set_enabled(True)
        self.show_candidate(start)
        self.setFocus()

    # -- stepping --
    @property
    def current(self):
        return self.queue[self.index] if 0 <= self.index < len(self.queue) else None

    def show_candidate(self, index: int) -> None:
        if not self.queue:
            return
        self.index = max(0, min(index, len(self.queue) - 1))
        self._drop_redraw()
        item = self.current
        self.shown_at = time.monotonic()
        self.zoom_to_current()
        self._load_form(item)
        nearby = self.queue[max(0, self.index - 2) : self.index + PREFETCH + 1]
        self.views.forget({i.fid for i in nearby})  # memory stays flat over a long review
        for ahead in self.queue[self.index : self.index + PREFETCH + 1]:
            self.views.prepare(ahead.fid, ahead.geometry)
        self.views.show_candidate(item.fid)
        self._update_labels()

    def views_ready(self) -> bool:
        """True when every year view of the current candidate is on screen."""
        return self.current is not None and self.views.ready(self.current.fid)

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
        if self.project is None or not self.queue:
            return
        if self.plots is not None:
            ahead = [i for i in range(len(self.queue)) if self.queue[i].status == "to look at"]
            following = next((i for i in ahead if i > self.index), ahead[0] if ahead else None)
            if following is not None:
                self.show_candidate(following)
            return
        decided = set(review.my_decisions(self.project, self.reviewer.text().strip()))
        index = review.next_undecided(self.queue, self.index, decided)
        if index is None:
            notify(self.iface, "You have decided every candidate in this list.", Qgis.MessageLevel.Success)
        else:
            self.show_candidate(index)

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
        self.views.highlight(self.year_index)
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

    # -- the decision --
    def _is_final(self) -> bool:
        return review.decides_finally(self.show_filter.currentData())

    def _load_form(self, item) -> None:
        if self.plots is not None:  # a plot is no candidate: nothing to decide about it
            self.form.load(None)
            self.form.hint.setText("")
            self.others.setText("")
            self.history.setText("")
            self.my_decision = None
            return
        reviewer = self.reviewer.text().strip()
        rows = review.decisions_of(self.project, [item.fid])
        mine = next((r for r in rows if r["reviewer"] == reviewer and not r["is_final"]), None)
        self.form.load(mine)
        others = [
            f"{r['reviewer']}{' (final)' if r['is_final'] else ''}: {r['decision']}"
            for r in rows
            if r["reviewer"] != reviewer or r["is_final"]
        ]
        self.others.setText(("Other decisions: " + "; ".join(others)) if others else "")
        self.my_decision = mine["decision"] if mine else None
        self.form.show_suggestion(self.views.suggestions.get(item.fid))
        self._show_history(item.fid)

    def _suggestion_arrived(self, candidate_id: int) -> None:
        if self.current is not None and self.current.fid == candidate_id:
            self.form.show_suggestion(self.views.suggestions[candidate_id])

    def _show_history(self, candidate_id: int) -> None:
        """The candidate's history from the project's audit log: the latest steps, newest last."""
        from ..core.review.history import candidate_history

        lines = [line.text() for line in candidate_history(self.project, candidate_id)]
        shown = lines[-HISTORY_LINES:]
        more = f"({len(lines) - len(shown)} earlier steps not shown)<br>" if len(lines) > len(shown) else ""
        self.history.setText(("<b>History</b><br>" + more + "<br>".join(shown)) if lines else "")

    def finish_note(self, kept: bool) -> None:
        """Enter in the note keeps it (stored at once when this candidate is already decided,
        else with the decision); Enter or Escape gives the keyboard back to the dock, so that
        the next key decides."""
        item = self.current
        if kept and item is not None and self.project is not None and self.my_decision:
            review.update_note(
                self.project,
                item.fid,
                self.reviewer.text().strip(),
                self.form.note.text().strip(),
                is_final=self._is_final(),
            )
        self.setFocus()

    def decide(self, decision: str) -> None:
        item = self.current
        reviewer = self.reviewer.text().strip()
        if item is None or self.project is None:
            return
        if self.plots is not None:
            if decision != "unsure":  # a plot holds slumps or not: there is no unsure
                self.answer_plot(nothing=decision == "rejected")
            return
        if not reviewer:
            notify(
                self.iface,
                "Type your name first: it is stored with each decision.",
                Qgis.MessageLevel.Warning,
            )
            return
        from shapely import wkb

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
                    Qgis.MessageLevel.Critical,
                    0,
                )
                return
        outline_before = None
        if edited:
            feature = self.layer.getFeature(item.fid)
            geometry = wkb.loads(bytes(feature.geometry().asWkb()))
            outline_before, item.geometry = item.geometry, geometry
        try:
            status = review.record_decision(
                self.project,
                review.Decision(
                    candidate_id=item.fid,
                    reviewer=reviewer,
                    decision=decision,
                    seconds_spent=round(time.monotonic() - self.shown_at, 1),
                    geometry=geometry,
                    edited=edited,
                    outline_before=outline_before,
                    is_final=self._is_final(),
                    **self.form.values(),
                ),
            )
        except RtsMapperError as exc:
            notify(self.iface, str(exc), Qgis.MessageLevel.Critical, 0)
            return
        item.status = status
        self.last_status = status
        self.summary_timer.start()
        # a learning order ranks what is left by what this decision taught
        self.queue = review.rerank_rest(self.project, self.queue, self.index, self.queue_order)
        self.layer.triggerRepaint()
        if self.index < len(self.queue) - 1:
            self.show_candidate(self.index + 1)
        else:
            self._load_form(item)
            self._update_labels()
            notify(self.iface, "End of the list: every candidate shown.", Qgis.MessageLevel.Success)
        self.setFocus()

    # -- the completeness check --
    def start_completeness(self) -> None:
        """Draw (or go on with) a stratified sample of the places the chosen run did not flag,
        and step through its plots with the same views and keys."""
        from ..core.review import completeness
        from .completeness import PlotsMode, SampleDialog

        project = self.project_picker.mapping_project()
        run_id = self.set_combo.currentData()
        if project is None or run_id in (None, ALL_SETS):
            notify(
                self.iface, "Choose a mapping project and one candidate set first.", Qgis.MessageLevel.Warning
            )
            return
        if not self.reviewer.text().strip():
            notify(
                self.iface, "Type your name first: it is stored with each answer.", Qgis.MessageLevel.Warning
            )
            return
        dialog = SampleDialog(self.set_combo.currentText(), completeness.plots_of(project, run_id), self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        try:
            if dialog.draw_new:
                landscape = dialog.landscape.currentLayer()
                completeness.draw_sample(
                    project,
                    run_id,
                    dialog.size.value(),
                    plot_m=dialog.plot_m.value(),
                    landscape=landscape.source() if landscape is not None else None,
                    seed=int(time.time()),
                    replace=dialog.replace,
                )
            mode = PlotsMode(self, project, run_id)
            queue, start = mode.queue()
        except RtsMapperError as exc:
            notify(self.iface, str(exc), Qgis.MessageLevel.Warning)
            return
        self._leave_plots()
        self.project, self.run_id, self.plots = project, run_id, mode
        self.layer = self.candidate_layer(project, run_id)
        self.queue, self.queue_order = queue, "id"
        self.years = project.years()
        self.form.set_years([y.year for y in self.years])
        self.views.set_years(self.years)
        self._set_enabled(True)
        self.form.setEnabled(False)
        self.unsure_button.setEnabled(False)
        self.show_candidate(start)
        self.setFocus()

    def answer_plot(self, nothing: bool) -> None:
        item, reviewer = self.current, self.reviewer.text().strip()
        try:
            found = self.plots.answer(item, reviewer, nothing)
        except RtsMapperError as exc:
            notify(self.iface, str(exc), Qgis.MessageLevel.Critical, 0)
            return
        notify(self.iface, f"Plot saved: {found} unmapped slump(s) in it.", Qgis.MessageLevel.Info, 3)
        following = next(
            (i for i in range(self.index + 1, len(self.queue)) if self.queue[i].status == "to look at"), None
        )
        if following is None:
            self._update_labels()
            notify(
                self.iface,
                "Every plot of the sample looked at. " + self.plots.estimate_text(),
                Qgis.MessageLevel.Success,
                0,
            )
        else:
            self.show_candidate(following)
        self.setFocus()

    def _leave_plots(self) -> None:
        if self.plots is not None:
            self.plots.leave()
            self.plots = None
            self.views.set_years(self.years)  # plot ids are not candidate ids: forget their views

    def undo(self) -> None:
        """Take back my last decision, note or boundary edit (saved at once), and show that
        candidate again as it now is."""
        reviewer = self.reviewer.text().strip()
        if self.project is None or not reviewer:
            return
        if self.plots is not None:
            notify(
                self.iface, "In a plot, answer again (E, then A; or R) to change it.", Qgis.MessageLevel.Info
            )
            return
        from ..core.review.history import undo_last

        try:
            undone = undo_last(self.project, reviewer)
        except RtsMapperError as exc:
            notify(self.iface, str(exc), Qgis.MessageLevel.Critical, 0)
            return
        if undone is None:
            notify(self.iface, "Nothing of yours left to undo in this project.", Qgis.MessageLevel.Info)
            return
        self.summary_timer.start()
        index = next((i for i, q in enumerate(self.queue) if q.fid == undone.candidate_id), None)
        if index is not None:
            item = self.queue[index]
            item.status = undone.status
            if undone.outline_restored:
                item.geometry = self.project.features("candidates", "fid = ?", (item.fid,)).geometries[0]
        if self.layer is not None:
            if undone.outline_restored:
                self.layer.dataProvider().reloadData()
            self.layer.triggerRepaint()
        if index is not None:
            self.show_candidate(index)
        now = f"now {undone.now}" if undone.now else "undecided again"
        outline = "; its outline is back" if undone.outline_restored else ""
        notify(
            self.iface,
            f"Undone: candidate {undone.candidate_id}, {undone.took_back}: {now}{outline}.",
            Qgis.MessageLevel.Info,
        )
        self.setFocus()

    # -- an outline redrawn from the probability raster --
    def toggle_redraw(self) -> None:
        if self.redrawn is not None:
            self._drop_redraw()
            self.redraw_label.setText("Outline from the probability dropped.")
        else:
            self._redraw()

    def _redraw(self, _value=None) -> None:
        """Draw the current candidate's outline from its run's probability raster at the slider's
        threshold, on the map and over the year views (moving the slider starts it too)."""
        from ..core.review.redraw import outline_at, probability_of

        item = self.current
        if item is None or self.project is None or self.plots is not None:
            return
        threshold = self.threshold_slider.value() / 100
        try:
            outline = outline_at(probability_of(self.project, item.fid), item.geometry, threshold)
        except RtsMapperError as exc:
            notify(self.iface, str(exc), Qgis.MessageLevel.Warning)
            return
        self.redrawn = outline
        self.keep_button.setEnabled(outline is not None)
        if outline is None:
            self._drop_redraw()
            self.redraw_label.setText(f"Nothing here reaches {threshold:.0%}: lower the threshold ([).")
            return
        if self.redraw_band is not None:
            self.redraw_band.setToGeometry(QgsGeometry.fromWkt(outline.wkt), self.layer)
        self.views.overlay(item.fid, outline)
        self.redraw_label.setText(
            f"At {threshold:.0%}: {outline.area / 10000:.2f} ha (the candidate: {item.geometry.area / 10000:.2f} ha). "
            "Shift+B keeps it (saved with your decision), B drops it, [ and ] change the threshold."
        )

    def _drop_redraw(self) -> None:
        self.redrawn = None
        self.keep_button.setEnabled(False)
        self.redraw_label.setText("")
        if self.redraw_band is not None:
            self.redraw_band.reset()
        if self.current is not None:
            self.views.overlay(self.current.fid, None)

    def keep_redraw(self) -> None:
        """The redrawn outline becomes the candidate's edited boundary, as a vertex edit does:
        saved with the next decision, taken back by Ctrl+Z after it."""
        item, outline = self.current, self.redrawn
        if item is None or outline is None or self.layer is None:
            return
        from ..core.vectors import as_multipolygon

        if not self.layer.isEditable():
            self.layer.startEditing()
        if not self.layer.changeGeometry(item.fid, QgsGeometry.fromWkt(as_multipolygon(outline).wkt)):
            notify(self.iface, "QGIS refused the redrawn outline.", Qgis.MessageLevel.Critical)
            return
        self._drop_redraw()
        if self.rubber_band is not None:
            self.rubber_band.setToGeometry(QgsGeometry.fromWkt(outline.wkt), self.layer)
        self.redraw_label.setText("Outline kept: it is saved with your decision (A / R / U).")
        self.setFocus()

    def edit_boundary(self) -> None:
        item = self.current
        if item is None or self.iface is None:
            return
        if self.plots is not None:
            self.plots.draw()
            notify(
                self.iface,
                "Outline each slump not yet mapped whose centre is in the square; then A saves them (R: none here).",
                Qgis.MessageLevel.Info,
                6,
            )
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
            Qgis.MessageLevel.Info,
            6,
        )

    def _update_labels(self) -> None:
        item = self.current
        if item is None:
            return
        if self.plots is not None:
            self.position.setText(
                f"<b>Plot {self.index + 1} / {len(self.queue)}</b> ({item.why}): {item.status}. "
                "E outlines a slump not yet mapped, A saves the plot with them, R: none here."
            )
            self.progress_label.setText(self.plots.estimate_text())
            return
        road = f", road {item.road_distance_m:.0f} m" if item.road_distance_m is not None else ""
        year = f"; main map: {self.years[self.year_index].year}" if self.years else ""
        mine = f"; you: {self.my_decision}" if self.my_decision else ""
        why = f"<br><i>Here because: {item.why}</i>" if item.why else ""
        self.position.setText(
            f"<b>{self.index + 1} / {len(self.queue)}</b>: candidate {item.fid}, {item.status}{mine}; "
            f"{item.area_m2 / 10000:.2f} ha, p {item.mean_prob:.2f}{road}{year}{why}"
        )
        from ..core.review.decisions import review_progress

        progress = review_progress(self.project, [i.fid for i in self.queue], self.reviewer.text().strip())
        self.progress_label.setText(progress.summary())

    # -- dialogs and exports --
    def show_shortcuts(self) -> None:
        dialog = ShortcutsDialog(self.keys, self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            save_shortcuts(dialog.keys())
            self.apply_shortcuts(dialog.keys())

    def show_agreement(self) -> None:
        if self.project is None:
            notify(self.iface, "Start a review first.", Qgis.MessageLevel.Warning)
            return
        from ..core.review.agreement import decision_agreement
        from ..core.review.decisions import decisions_of, reviewed_boundaries

        result = decision_agreement(decisions_of(self.project), reviewed_boundaries(self.project)).as_dict()
        if result["candidates_compared"] == 0:
            notify(self.iface, "No candidate has decisions from two reviewers yet.", Qgis.MessageLevel.Info)
            return
        kappas = ", ".join(f"{k.replace('|', ' vs ')} {v}" for k, v in result["cohen_kappa"].items())
        fleiss = f"; Fleiss' kappa {result['fleiss_kappa']}" if result["fleiss_kappa"] is not None else ""
        notify(
            self.iface,
            f"{result['candidates_compared']} candidates with 2+ reviewers, {result['unanimous']} unanimous; "
            f"Cohen's kappa {kappas}{fleiss}; boundary IoU {result['mean_boundary_iou']}; "
            f"{len(result['conflicts'])} conflicts (Show: only conflicts, to decide them).",
            Qgis.MessageLevel.Info,
            0,
        )

    def export_timelapse(self) -> None:
        if self.project is None:
            notify(self.iface, "Start a review first.", Qgis.MessageLevel.Warning)
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
                self.iface, f"{len(files)} time-lapse files written to {folder}", Qgis.MessageLevel.Success
            )
        )
        task.failed.connect(lambda message: notify(self.iface, message, Qgis.MessageLevel.Critical))
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
        self.views.shutdown()
        for band in (self.rubber_band, self.redraw_band):
            if band is not None:
                self.iface.mapCanvas().scene().removeItem(band)
        self.rubber_band = self.redraw_band = None
