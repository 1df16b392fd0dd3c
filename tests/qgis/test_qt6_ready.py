"""Qt6 / QGIS 4 readiness (metadata.txt says supportsQt6): the plugin's code passes the rules of
QGIS's migration script, checked against the real bindings by scripts/check_qt6.py, and the
checker itself finds and fixes what those rules name."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("check_qt6", ROOT / "scripts" / "check_qt6.py")
check_qt6 = importlib.util.module_from_spec(spec)
sys.modules["check_qt6"] = check_qt6
spec.loader.exec_module(check_qt6)


def test_the_plugin_code_is_qt6_ready(capsys):
    assert check_qt6.main([str(ROOT / "rts_mapper_plugin")]) == 0, capsys.readouterr().out
    metadata = (ROOT / "metadata.txt").read_text(encoding="utf-8")
    assert "\nsupportsQt6=True\n" in metadata and "\nqgisMaximumVersion=4.99\n" in metadata


OLD_STYLE = """from qgis.core import Qgis, QgsProcessing
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QDialog, QMessageBox
from PyQt5.QtGui import QIcon
from . import resources_rc

def run(dialog: QDialog, bar, painter, box):
    bar.pushMessage("x", level=Qgis.Warning)
    painter.drawText(0, 0, Qt.AlignLeft | Qt.AlignTop, "é")  # a non-ASCII line
    kinds = [QgsProcessing.TypeVectorPolygon, Qt.MidButton]
    icon = QIcon(":/plugins/x/icon.svg")
    if dialog.exec_() == QDialog.Accepted and box.exec_() == QMessageBox.Yes:
        return Qt.MouseButton.LeftButton, Qgis.MessageLevel.Info  # already scoped: fine
"""


def test_the_checker_finds_and_fixes_what_qt6_removed(tmp_path):
    sample = tmp_path / "old.py"
    sample.write_text(OLD_STYLE, encoding="utf-8")
    found = "\n".join(check_qt6.check_file(sample))
    for expected in (
        "import from PyQt5.QtGui",
        "compiled resources",
        "Qgis.Warning: Qgis.MessageLevel.Warning",
        "Qt.AlignLeft: Qt.AlignmentFlag.AlignLeft",
        "Qt.AlignTop: Qt.AlignmentFlag.AlignTop",
        "QgsProcessing.TypeVectorPolygon: QgsProcessing.SourceType.TypeVectorPolygon",
        "Qt.MidButton is gone in Qt6: Qt.MouseButton.MiddleButton",
        "a Qt resource path",
        "exec_(): exec()",
        "QDialog.Accepted: QDialog.DialogCode.Accepted",
        "QMessageBox.Yes: QMessageBox.StandardButton.Yes",
    ):
        assert expected in found, (expected, found)
    assert "LeftButton" not in found and "Info" not in found, "scoped uses are left alone"

    check_qt6.check_file(sample, fix=True)
    fixed = sample.read_text(encoding="utf-8")
    assert 'Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, "é"' in fixed
    assert (
        "dialog.exec() == QDialog.DialogCode.Accepted and box.exec() == QMessageBox.StandardButton.Yes"
        in fixed
    )
    compile(fixed, "fixed.py", "exec")
    remaining = "\n".join(check_qt6.check_file(sample))
    assert "scoped enum" not in remaining and "exec_" not in remaining
