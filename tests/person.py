"""Drive Qt widgets the way a person does: mouse clicks on the widget, key presses, typing.

Used by the real-QGIS tests and by the desktop walk (scripts/scenes/desktop_walk.py). Nothing
here sets a widget's value through its API: a combo is opened and an item in its popup clicked,
a path is typed into the field, a menu entry is clicked in the open menu. So a test fails when a
person could not do the same (a disabled widget, an item missing from a list, a trapped focus).
"""

from __future__ import annotations

import time

from qgis.PyQt.QtCore import QPoint, QPointF, Qt
from qgis.PyQt.QtGui import QWheelEvent
from qgis.PyQt.QtTest import QTest
from qgis.PyQt.QtWidgets import QAbstractItemView, QApplication, QComboBox, QLineEdit, QMenu, QWidget


class CannotDo(AssertionError):  # noqa: N818 (reads as what it says)
    """What a person would have found impossible (an item not offered, a disabled button)."""


def settle(ms: int = 50) -> None:
    """Let Qt deliver what the last gesture caused (popups, signals, repaints)."""
    end = time.monotonic() + ms / 1000
    while True:
        QApplication.processEvents()
        if time.monotonic() >= end:
            return
        time.sleep(0.01)


def _activate(widget: QWidget) -> None:
    # Xvfb has no window manager to make a window active as a desktop would, and Qt delivers
    # shortcuts and focus only in the active window
    window = widget.window()
    window.raise_()
    window.activateWindow()
    QApplication.setActiveWindow(window)


def click(widget: QWidget, pos: QPoint | None = None, button=Qt.LeftButton) -> None:
    """A mouse click on ``widget`` (its centre by default); refused when a person could not."""
    if not widget.isVisible():
        raise CannotDo(f"{widget.objectName() or type(widget).__name__} is not on screen")
    if not widget.isEnabled():
        raise CannotDo(f"{widget.objectName() or type(widget).__name__} is disabled")
    _activate(widget)
    QTest.mouseClick(widget, button, Qt.NoModifier, pos if pos is not None else widget.rect().center())
    settle()


def press(key, modifier=Qt.NoModifier, widget: QWidget | None = None) -> None:
    """A key press where the keyboard focus is (or on ``widget``)."""
    target = widget or QApplication.focusWidget()
    if target is None:
        raise CannotDo("no widget has the keyboard focus")
    _activate(target)
    QTest.keyClick(target, key, modifier)
    settle()


def type_text(text: str, widget: QWidget | None = None) -> None:
    """Type ``text`` where the focus is (or into ``widget`` after clicking it)."""
    if widget is not None:
        click(widget)
    target = QApplication.focusWidget()
    if target is None:
        raise CannotDo("no widget has the keyboard focus to type into")
    QTest.keyClicks(target, text)
    settle()


def replace_text(line_edit: QLineEdit, text: str, enter: bool = True) -> None:
    """Click a text field, select what it holds (Ctrl+A), type ``text``, press Enter."""
    click(line_edit)
    QTest.keyClick(line_edit, Qt.Key_A, Qt.ControlModifier)
    QTest.keyClick(line_edit, Qt.Key_Delete)
    QTest.keyClicks(line_edit, text)
    if enter:
        QTest.keyClick(line_edit, Qt.Key_Return)
    settle()


def type_path(file_widget, path: str) -> None:
    """Type a path into a QgsFileWidget's field, as a person pastes one."""
    replace_text(file_widget.lineEdit(), str(path))


def items(combo: QComboBox) -> list[str]:
    return [combo.itemText(i) for i in range(combo.count())]


def choose(combo: QComboBox, text: str, exact: bool = False) -> None:
    """Open ``combo``'s list with a click and click the item whose text starts with ``text``
    (equals it with ``exact``)."""
    click(combo)
    view: QAbstractItemView = combo.view()
    # a combo ignores a release that follows its opening within a double-click interval
    settle(QApplication.doubleClickInterval() + 100)
    model = combo.model()
    for row in range(model.rowCount(combo.rootModelIndex())):
        index = model.index(row, combo.modelColumn(), combo.rootModelIndex())
        label = str(index.data() or "")
        if label == text or (not exact and label.startswith(text)):
            if not (model.flags(index) & Qt.ItemIsEnabled):
                combo.hidePopup()
                raise CannotDo(f"{label!r} is offered but disabled")
            view.scrollTo(index)
            settle()
            rect = view.visualRect(index)
            QTest.mouseMove(view.viewport(), rect.center())
            settle()
            QTest.mouseClick(view.viewport(), Qt.LeftButton, Qt.NoModifier, rect.center())
            settle(100)
            if combo.view().isVisible():  # some styles need a release on the item to close
                combo.hidePopup()
            if combo.currentText() != label:
                raise CannotDo(f"clicking {label!r} did not select it (holds {combo.currentText()!r})")
            return
    combo.hidePopup()
    raise CannotDo(f"{text!r} is not offered; the list holds {items(combo)}")


def wheel(widget: QWidget, steps: int = -1) -> None:
    """Turn the mouse wheel over ``widget`` (negative: towards the user, scrolling down).

    Qt passes a real (spontaneous) wheel event that a widget ignores on to its parents; an event
    sent from code is not passed on, so this walks up the parents the way Qt does."""
    pos = QPointF(widget.rect().center())
    target = widget
    while target is not None:
        event = QWheelEvent(
            pos,
            QPointF(target.mapToGlobal(pos.toPoint())),
            QPoint(0, 0),
            QPoint(0, 120 * steps),
            Qt.NoButton,
            Qt.NoModifier,
            Qt.NoScrollPhase,
            False,
        )
        QApplication.sendEvent(target, event)
        if event.isAccepted() or target.isWindow():
            break
        pos += QPointF(target.pos())
        target = target.parentWidget()
    settle()


def menu_entry(menu: QMenu, text: str, prefix: bool = False) -> None:
    """Click the entry ``text`` (its text up to an ellipsis; with ``prefix``, the first entry that
    starts with it) in an open ``menu``."""
    for action in menu.actions():
        label = action.text().replace("&", "")
        same = label.rstrip("…").rstrip(".") == text.rstrip("…").rstrip(".")
        if label == text or same or (prefix and label.startswith(text)):
            if not action.isEnabled():
                raise CannotDo(f"menu entry {label!r} is disabled")
            rect = menu.actionGeometry(action)
            QTest.mouseClick(menu, Qt.LeftButton, Qt.NoModifier, rect.center())
            settle()
            return
    raise CannotDo(f"{text!r} is not in the menu: {[a.text() for a in menu.actions()]}")
