"""Package metadata, read from ``metadata.txt`` so the version lives in one place.

In the installed plugin ``metadata.txt`` sits next to this file; in a source checkout it sits
one folder up, at the repository root.
"""

from __future__ import annotations

from configparser import ConfigParser
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent
PLUGIN_PACKAGE = PLUGIN_DIR.name
STYLES_DIR = PLUGIN_DIR / "resources" / "styles"  # the layers' QML styles, also stored in what we write


def style_qml(name: str) -> str:
    """The text of a bundled QML style, e.g. ``style_qml("candidates")``."""
    return (STYLES_DIR / f"{name}.qml").read_text(encoding="utf-8")


def _metadata_file() -> Path:
    for candidate in (PLUGIN_DIR / "metadata.txt", PLUGIN_DIR.parent / "metadata.txt"):
        if candidate.is_file():
            return candidate
    raise OSError(f"metadata.txt not found next to {PLUGIN_DIR} or in its parent folder")


def plugin_metadata() -> dict[str, str]:
    """The ``[general]`` section of metadata.txt as a dict (keys lower-cased)."""
    config = ConfigParser(interpolation=None)
    config.read(_metadata_file(), encoding="utf-8")
    return dict(config.items("general"))


_metadata = plugin_metadata()

__title__: str = _metadata["name"]
__version__: str = _metadata["version"]
__author__: str = _metadata["author"]
__email__: str = _metadata["email"]
__summary__: str = _metadata["description"]
__uri_repository__: str = _metadata["repository"]
__uri_tracker__: str = _metadata["tracker"]
__uri_homepage__: str = _metadata["homepage"]
__icon_path__: Path = PLUGIN_DIR / _metadata["icon"]
__license__ = "GPL-2.0-or-later"
