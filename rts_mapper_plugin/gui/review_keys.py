"""The Review dock's keys: what each does, the user's own choice of keys, and the dialog that
shows and changes them. One key, one action; while a review has the keyboard its keys come
before QGIS's own."""

from __future__ import annotations

import contextlib
import json

from qgis.PyQt.QtCore import QEvent, QObject, Qt
from qgis.PyQt.QtGui import QKeySequence
from qgis.PyQt.QtWidgets import (
    QAbstractSpinBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QKeySequenceEdit,
    QLabel,
    QLineEdit,
    QMessageBox,
    QTableWidget,
    QVBoxLayout,
)

from ..toolbelt.preferences import PlgSettings

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
    "undo": ("Undo my last decision, note or boundary edit", "Ctrl+Z"),
    "redraw": ("Outline from the probability raster: show / drop", "B"),
    "redraw_keep": ("Keep the outline from the probability (saved with the decision)", "Shift+B"),
    "threshold_down": ("Outline from the probability: lower threshold (larger)", "["),
    "threshold_up": ("Outline from the probability: higher threshold (smaller)", "]"),
    "headwall_highest": ("Criterion: headwall at the highest elevation", "H"),
    "colour_contrast": ("Criterion: colour contrast", "C"),
    "arcuate_shaded_headwall": ("Criterion: arcuate, shaded headwall", "S"),
    "upslope_retreat": ("Criterion: upslope retreat over the years", "T"),
    "period_next": ("Initiation period: next", "P"),
    "suggestion": ("Take the suggestion (initiation period, upslope retreat)", "G"),
    "note": ("Write a note", "N"),
    "zoom": ("Zoom back to the candidate", "Z"),
    # not F1: QGIS's Help has it, and two shortcuts on one key fire neither ("Ambiguous shortcut")
    "help": ("Show these shortcuts", "K"),
    **{f"probability_{d}": (f"Probability {d * 10} %", str(d)) for d in range(1, 10)},
    "probability_100": ("Probability 100 %", "0"),
}
NOT_ON_MAP = ("next", "previous", "next_unreviewed")  # the arrows pan the main map
TEXT_INPUTS = (QLineEdit, QAbstractSpinBox, QComboBox, QKeySequenceEdit)  # keep their keys


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


def save_shortcuts(keys: dict[str, str]) -> None:
    """Remember the keys that differ from the defaults."""
    changed = {a: k for a, k in keys.items() if k != SHORTCUTS[a][1]}
    PlgSettings.load().update(review_shortcuts=json.dumps(changed))


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
            QDialogButtonBox.StandardButton.Save
            | QDialogButtonBox.StandardButton.Close
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(self._defaults)
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


def action_of(key_actions: dict[str, str], event) -> str | None:
    """The action a key event means in ``key_actions`` (key text -> action), or None."""
    if event.key() in (Qt.Key.Key_Shift, Qt.Key.Key_Control, Qt.Key.Key_Alt, Qt.Key.Key_Meta, 0):
        return None
    modifiers = int(event.modifiers()) & ~int(Qt.KeyboardModifier.KeypadModifier)
    return key_actions.get(QKeySequence(event.key() | modifiers).toString())


def key_actions(keys: dict[str, str]) -> dict[str, str]:
    """action -> key becomes key text -> action (keys left empty do nothing)."""
    return {QKeySequence(k).toString(): a for a, k in keys.items() if k}


class MapKeys(QObject):
    """The review's keys on the main map while a review runs and the dock is open (they come
    first there too, as in the dock)."""

    def __init__(self, dock) -> None:
        super().__init__(dock)
        self.dock = dock

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt naming)
        if event.type() not in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress):
            return False
        dock = self.dock
        action = dock.action_for(event) if dock.queue and dock.isVisible() else None
        if action is None or action in NOT_ON_MAP:
            return False
        if action == "undo" and dock.layer is not None and dock.layer.isEditable():
            return False  # while a boundary is being drawn, QGIS's own undo takes back a vertex
        event.accept()
        if event.type() == QEvent.Type.KeyPress:
            dock.slots[action]()
        return True
