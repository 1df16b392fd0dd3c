"""Translations of what a person reads in QGIS.

Strings are marked with :func:`tr` where they are shown, or with :func:`QT_TR_NOOP` where they
are constants (dock names, Processing algorithm names) and translated with ``tr`` when shown.
``make translations`` extracts them with pylupdate5 into ``i18n/rts_mapper_<language>.ts``
(English is the source language) and compiles those with lrelease into ``.qm`` files, which the
plugin loads for QGIS's user-interface language (Settings › Options › General › Locale).
Messages of the core and the command line stay English.
"""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsApplication, QgsSettings
from qgis.PyQt.QtCore import QCoreApplication, QLocale, QTranslator

from ..__about__ import PLUGIN_DIR

I18N_DIR = PLUGIN_DIR / "i18n"
CONTEXT = "@default"  # the context pylupdate5 gives a plain tr("...") call
FILE_PREFIX = "rts_mapper_"


def tr(text: str) -> str:
    """``text`` in the user's language, when a translation is loaded; else as it is."""
    return QCoreApplication.translate(CONTEXT, text)


def QT_TR_NOOP(text: str) -> str:  # noqa: N802 (the name pylupdate5 looks for)
    """Marks a constant for translation; it is translated where shown, with :func:`tr`."""
    return text


def user_language() -> str:
    """QGIS's user-interface language, e.g. "de" (what QGIS itself loads its translation for)."""
    app = QgsApplication.instance()
    translation = app.translation() if hasattr(app, "translation") else ""
    if translation:
        return translation[:2]
    settings = QgsSettings()
    override = str(settings.value("locale/overrideFlag", False)).lower() in ("true", "1")
    name = settings.value("locale/userLocale", "") if override else ""
    return (name or QLocale.system().name() or "en")[:2]


def install_translator(language: str | None = None, folder: Path | None = None) -> QTranslator | None:
    """Load and install the plugin's translation for ``language`` (default: QGIS's) from
    ``folder`` (default: the plugin's i18n); None when there is none (English, or a language not
    translated yet)."""
    language = language or user_language()
    path = (folder or I18N_DIR) / f"{FILE_PREFIX}{language}.qm"
    if language == "en" or not path.is_file():
        return None
    translator = QTranslator()
    if not translator.load(str(path)):
        return None
    QCoreApplication.installTranslator(translator)
    return translator


def remove_translator(translator: QTranslator | None) -> None:
    if translator is not None:
        QCoreApplication.removeTranslator(translator)
