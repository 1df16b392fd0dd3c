"""RTS Mapper › Install deep-learning packages…, driven as a person does: pick a profile, type a
folder of wheels, click Install, read pip's log and the table, Uninstall; a cancel and a failure.
pip really runs (QGIS's Python, --no-index, hand-made wheels): only the profile list is the
test's own, since the real profiles' wheels cannot be had offline here."""

from __future__ import annotations

import sys

import pytest

from rts_mapper_plugin.core import install
from rts_mapper_plugin.gui.install_dialog import InstallDialog
from tests import person
from tests.data.wheels import PROBE, probe_wheels
from tests.waiting import wait_until

MISSING = install.Profile("needs-c", "Needs a missing wheel", "", {"rtsm_probe_c": "rtsm-probe-c"})


@pytest.fixture
def dialog(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(install, "PROFILES", {**install.PROFILES, "probe": PROBE, "needs-c": MISSING})
    folder = tmp_path / "profile" / "python" / "rts_mapper_packages" / install.python_tag()
    dialog = InstallDialog(folder=folder)
    qtbot.addWidget(dialog)
    dialog.show()
    yield dialog
    install.deactivate(folder)
    for name in ("rtsm_probe_a", "rtsm_probe_b"):
        sys.modules.pop(name, None)


def table(dialog) -> dict[str, tuple[str, str]]:
    rows = {}
    for row in range(dialog.table.rowCount()):
        rows[dialog.table.item(row, 0).text()] = (
            dialog.table.item(row, 1).text(),
            dialog.table.item(row, 2).text(),
        )
    return rows


def install_by_hand(dialog, qtbot, profile_title: str, wheels) -> str:
    person.choose(dialog.profile_combo, profile_title, exact=True)
    person.type_path(dialog.wheels_widget, str(wheels))
    person.click(dialog.install_button)
    wait_until(qtbot, lambda: dialog.outcome is not None, progress=lambda: dialog.log.blockCount())
    return dialog.outcome


def test_a_profile_installs_from_a_wheel_folder_and_uninstalls(dialog, qtbot, tmp_path):
    assert person.items(dialog.profile_combo)[:3] == ["Review only", "Inference (ONNX)", "Full (training)"]
    assert dialog.profile_combo.currentText() == "Inference (ONNX)", "the field laptop's profile first"
    person.choose(dialog.profile_combo, "Probe", exact=True)
    assert table(dialog)["rtsm-probe-a"][0] == "✘ missing" and "rtsm-probe-a" in dialog.status.text()
    assert install_by_hand(dialog, qtbot, "Probe", probe_wheels(tmp_path / "wheels")) == "installed"
    log = dialog.log.toPlainText()
    assert "--no-index" in log and "Successfully installed rtsm-probe-a-1.2.0 rtsm-probe-b-2.0.1" in log
    assert "Installed and checked" in dialog.status.text()
    assert table(dialog)["rtsm-probe-a"] == ("1.2.0", "plugin folder")
    assert table(dialog)["numpy<2"][1] == "QGIS", "QGIS's numpy kept"
    import rtsm_probe_a  # at once, in QGIS's own process: the folder is on sys.path

    assert rtsm_probe_a.__version__ == "1.2.0"
    assert dialog.uninstall_button.isEnabled()
    person.click(dialog.uninstall_button)
    assert dialog.outcome == "uninstalled" and not dialog.folder.exists()
    assert table(dialog)["rtsm-probe-a"][0] == "✘ missing"


def test_a_missing_wheel_fails_with_pips_reason(dialog, qtbot, tmp_path):
    assert install_by_hand(dialog, qtbot, "Needs a missing wheel", probe_wheels(tmp_path / "w")) == "failed"
    assert "pip could not install the profile" in dialog.status.text()
    assert "rtsm-probe-c" in dialog.status.text() and dialog.install_button.isEnabled()


def test_cancel_stops_pip(dialog, qtbot, tmp_path):
    person.choose(dialog.profile_combo, "Probe", exact=True)
    person.type_path(dialog.wheels_widget, str(probe_wheels(tmp_path / "w")))
    person.click(dialog.install_button)
    assert dialog.cancel_button.isEnabled() and not dialog.install_button.isEnabled()
    person.click(dialog.cancel_button)
    wait_until(qtbot, lambda: dialog.outcome is not None)
    assert dialog.outcome == "cancelled" and "Uninstall removes it" in dialog.status.text()
    assert dialog.install_button.isEnabled() and dialog.process is None


def test_an_offline_folder_that_is_not_there_is_said_at_once(dialog, qtbot, tmp_path):
    assert install_by_hand(dialog, qtbot, "Probe", tmp_path / "no_such_folder") == "failed"
    assert "no_such_folder: is not a folder of wheels" in dialog.status.text()


def test_the_plugin_puts_what_was_installed_on_sys_path_when_it_loads(
    dialog, qtbot, tmp_path, monkeypatch, qgis_iface
):
    """A QGIS started after an install: the plugin adds its profile's packages folder at load."""
    from qgis.core import QgsApplication

    from rts_mapper_plugin.plugin import RtsMapperPlugin

    assert install_by_hand(dialog, qtbot, "Probe", probe_wheels(tmp_path / "w")) == "installed"
    install.deactivate(dialog.folder)  # as in a new QGIS session
    settings_dir = dialog.folder.parents[2]  # <profile>/python/rts_mapper_packages/pyXY
    monkeypatch.setattr(QgsApplication, "qgisSettingsDirPath", staticmethod(lambda: str(settings_dir) + "/"))
    RtsMapperPlugin(qgis_iface)
    assert any(str(p) in sys.path for p in install.site_dirs(dialog.folder))
