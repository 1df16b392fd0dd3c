"""The Review dock's decision form: the paper's four criteria, the reviewer's probability, the
initiation period and a note, as one reviewer's judgement of one candidate."""

from __future__ import annotations

from qgis.PyQt.QtCore import QEvent, Qt, pyqtSignal
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..core.project.store import CRITERIA, initiation_periods

NOT_SET = "—"


class DecisionForm(QWidget):
    """What goes with a decision. The note is typed in its field; Enter keeps it, Escape undoes
    the typing; either way ``noteDone`` tells the dock to take the keyboard back."""

    noteDone = pyqtSignal(bool)  # noqa: N815 (Qt naming); True: kept, False: undone

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.criteria: dict[str, QCheckBox] = {}
        for name, label in CRITERIA:
            box = QCheckBox(label, self)
            self.criteria[name] = box
            layout.addWidget(box)
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
            quick.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            quick.clicked.connect(lambda _=False, v=value: self.probability.setValue(v))
            probability.addWidget(quick)
        details.addRow("Probability", probability)
        self.period = QComboBox(self)
        details.addRow("Initiation", self.period)
        self.note = QLineEdit(self)
        self.note.setObjectName("reviewNote")
        self.note.setPlaceholderText("note (N; Enter keeps it, Esc undoes the edit)")
        self.note.returnPressed.connect(self._keep_note)
        self.note.installEventFilter(self)
        self._note_before: str | None = None
        details.addRow("Note", self.note)
        layout.addLayout(details)
        self.hint = QLabel("", self)  # what the year stack suggests: taken only with a key (G)
        self.hint.setObjectName("suggestionHint")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #555;")
        layout.addWidget(self.hint)
        self.suggestion = None

    def set_years(self, years: list[int]) -> None:
        """The initiation periods the registered years allow."""
        self.period.clear()
        self.period.addItem(NOT_SET, "")
        for period in initiation_periods(years):
            self.period.addItem(period, period)

    def load(self, row: dict | None) -> None:
        """Show a stored decision (a ``reviews`` row), or a blank form for None."""
        for name, box in self.criteria.items():
            box.setChecked(bool(row and row[name]))
        self.probability.setValue(row["probability"] if row and row["probability"] is not None else -1)
        self.period.setCurrentIndex(
            max(0, self.period.findData(row["initiation_period"] or "")) if row else 0
        )
        self.note.setText((row["note"] or "") if row else "")

    def values(self) -> dict:
        """The form as core.review.decisions.Decision's fields."""
        return {
            "probability": self.probability.value() if self.probability.value() >= 0 else None,
            "initiation_period": self.period.currentData() or None,
            "criteria": {name: box.isChecked() for name, box in self.criteria.items()},
            "note": self.note.text().strip(),
        }

    def show_suggestion(self, suggestion) -> None:
        """Show what the year stack suggests (core.review.suggestions.Suggestion, or None while
        it is being read); nothing in the form changes."""
        self.suggestion = suggestion
        if suggestion is None:
            self.hint.setText("Suggestion: reading the years…")
        elif suggestion.initiation_period is None:
            self.hint.setText(f"Suggestion: {suggestion.text()}")
        else:
            self.hint.setText(f"Suggested (G takes it): {suggestion.text()}")

    def take_suggestion(self) -> bool:
        """Set the suggested initiation period and, where the years tell, upslope retreat."""
        suggestion = self.suggestion
        if suggestion is None or suggestion.initiation_period is None:
            return False
        index = self.period.findData(suggestion.initiation_period)
        if index >= 0:
            self.period.setCurrentIndex(index)
        if suggestion.grew is not None and "upslope_retreat" in self.criteria:
            self.criteria["upslope_retreat"].setChecked(suggestion.grew)
        return True

    # -- what keys do --
    def set_probability(self, percent: int) -> None:
        self.probability.setValue(percent)

    def next_period(self) -> None:
        if self.period.count():
            self.period.setCurrentIndex((self.period.currentIndex() + 1) % self.period.count())

    def begin_note(self) -> None:
        if not self.note.isEnabled():
            return
        self._note_before = self.note.text()
        self.note.setFocus()
        self.note.end(False)

    def _keep_note(self) -> None:
        self._note_before = None
        self.noteDone.emit(True)

    def _undo_note(self) -> None:
        if self._note_before is not None:
            self.note.setText(self._note_before)
        self._note_before = None
        self.noteDone.emit(False)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt naming)
        is_key = event.type() in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress)
        if watched is self.note and is_key and event.key() == Qt.Key.Key_Escape:
            event.accept()  # QGIS's own Esc (stop rendering) must not take it
            if event.type() == QEvent.Type.KeyPress:
                self._undo_note()
            return True
        return super().eventFilter(watched, event)
