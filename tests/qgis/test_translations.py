"""Translations end to end: the strings marked in the code are the ones in the .ts file (German,
the test language, fully translated); lrelease compiles it; with QGIS set to German the plugin's
menu, docks and Processing algorithms speak German, and English again once unloaded."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from qgis.core import QgsApplication, QgsSettings

import rts_mapper_plugin
from rts_mapper_plugin.toolbelt import i18n

ROOT = Path(__file__).resolve().parents[2]
TS = ROOT / "rts_mapper_plugin" / "i18n" / "rts_mapper_de.ts"

pytestmark = pytest.mark.skipif(
    not (shutil.which("pylupdate5") and shutil.which("lrelease")),
    reason="needs pylupdate5 (pyqt5-dev-tools) and lrelease (qttools5-dev-tools): make setup",
)


def messages(ts: Path) -> dict[str, str]:
    root = ET.parse(ts).getroot()
    return {m.findtext("source"): m.find("translation") for m in root.iter("message")}


def test_the_ts_file_holds_every_marked_string_translated(tmp_path):
    fresh = tmp_path / "now.ts"
    sources = sorted(str(p) for p in (ROOT / "rts_mapper_plugin").rglob("*.py"))
    subprocess.run(
        ["pylupdate5", "-noobsolete", *sources, "-ts", str(fresh)], check=True, capture_output=True
    )
    marked, committed = messages(fresh), messages(TS)
    assert len(marked) >= 40 and set(marked) == set(committed), "run `make translations`"
    untranslated = [
        s for s, t in committed.items() if t.get("type") == "unfinished" or not (t.text or "").strip()
    ]
    assert not untranslated, untranslated


@pytest.fixture
def german(tmp_path, monkeypatch):
    subprocess.run(["lrelease", "-silent", str(TS), "-qm", str(tmp_path / "rts_mapper_de.qm")], check=True)
    monkeypatch.setattr(i18n, "I18N_DIR", tmp_path)
    settings = QgsSettings()
    before = settings.value("locale/overrideFlag"), settings.value("locale/userLocale")
    settings.setValue("locale/overrideFlag", True)
    settings.setValue("locale/userLocale", "de_DE")
    yield
    for key, value in zip(("locale/overrideFlag", "locale/userLocale"), before):
        if value is None:
            settings.remove(key)
        else:
            settings.setValue(key, value)


def test_the_plugin_speaks_german_when_qgis_does(german, qgis_iface, qgis_processing):
    plugin = rts_mapper_plugin.classFactory(qgis_iface)
    try:
        assert plugin.translator is not None
        plugin.initGui()
        assert plugin.actions["inference"].text() == "Inferenz"
        assert plugin.actions["prepare_imagery"].text() == "Bilder vorbereiten…"
        assert "Kandidaten mit Zeitreihenbildern prüfen" in plugin.actions["review"].toolTip()
        plugin.actions["inference"].setChecked(True)
        dock = plugin.docks["inference"]
        assert dock.windowTitle() == "RTS Mapper: Inferenz"
        assert (dock.run_button.text(), dock.cancel_button.text()) == ("Inferenz starten", "Abbrechen")
        algorithm = QgsApplication.processingRegistry().algorithmById("rts_mapper:infer")
        assert (algorithm.displayName(), algorithm.group()) == ("RTS-Kandidaten erkennen", "Modell")
        assert algorithm.groupId() == "model", "ids stay English"
    finally:
        plugin.unload()
    assert i18n.tr("Inference") == "Inference", "the translator leaves with the plugin"


def test_english_and_untranslated_languages_load_nothing(tmp_path):
    assert i18n.install_translator("en") is None
    assert i18n.install_translator("xx", tmp_path) is None
