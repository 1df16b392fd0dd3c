"""RTS Mapper › Environment check… opens a readable report, not an empty Processing dialog."""

from __future__ import annotations

from qgis.PyQt.QtCore import QPoint

from rts_mapper_plugin.core.environment import EnvironmentReport
from rts_mapper_plugin.gui.environment_dialog import report_html
from tests import person
from tests.waiting import wait_until


def test_the_menu_opens_a_readable_report(plugin, qtbot):
    plugin.menu.popup(QPoint(10, 10))
    wait_until(qtbot, plugin.menu.isVisible)
    person.menu_entry(plugin.menu, "Environment check…")
    dialog = plugin.dialogs["environment"]
    assert dialog.isVisible()
    wait_until(qtbot, lambda: dialog.report is not None)
    text = dialog.page.toPlainText()
    assert "Everything RTS Mapper uses is installed." in text
    for package in ("torch", "segmentation-models-pytorch", "rasterio", "shapely", "GDAL"):
        assert package in text
    assert "{" not in text and "'versions'" not in text, "no raw dictionary"
    assert "Training and inference run on" in text
    assert not dialog.copy_button.isEnabled(), "nothing to install"
    person.click(dialog.recheck_button)
    wait_until(qtbot, dialog.recheck_button.isEnabled)
    dialog.close()


def test_missing_packages_are_named_with_the_command_that_installs_them():
    report = EnvironmentReport(
        python="3.11", platform="linux", versions={"numpy": "1.24", "rasterio": "1.3"}, missing=["torch"]
    )
    page = report_html(report)
    assert "Training and inference are not available" in page
    assert "✘ missing" in page and "python3 -m pip install --user torch" in page
    assert "Install packages…" in page and "Install deep-learning packages…" in page


def test_the_menu_and_the_environment_check_open_the_installer(plugin, qtbot):
    plugin.menu.popup(QPoint(10, 10))
    wait_until(qtbot, plugin.menu.isVisible)
    person.menu_entry(plugin.menu, "Install deep-learning packages…")
    installer = plugin.dialogs["install"]
    assert installer.isVisible() and installer.profile_combo.currentText() == "Inference (ONNX)"
    assert installer.table.rowCount() == len(installer.profile().modules)
    installer.close()
    plugin.menu.popup(QPoint(10, 10))
    wait_until(qtbot, plugin.menu.isVisible)
    person.menu_entry(plugin.menu, "Environment check…")
    dialog = plugin.dialogs["environment"]
    person.click(dialog.install_button)
    assert dialog.installer.isVisible()
    dialog.installer.close()
    dialog.close()
