"""metadata.txt holds every field plugins.qgis.org requires; the package reads its version there."""

from __future__ import annotations

from configparser import ConfigParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def metadata() -> dict[str, str]:
    config = ConfigParser(interpolation=None)
    config.read(ROOT / "metadata.txt", encoding="utf-8")
    return dict(config.items("general"))


REQUIRED = ("name", "qgisminimumversion", "description", "about", "version", "author", "email", "repository")
OPTIONAL_WANTED = (
    "qgismaximumversion",
    "tracker",
    "homepage",
    "category",
    "tags",
    "icon",
    "experimental",
    "hasprocessingprovider",
)


@pytest.mark.parametrize("key", REQUIRED + OPTIONAL_WANTED)
def test_field_present_and_filled(metadata, key):
    assert metadata.get(key, "").strip(), f"metadata.txt lacks {key}"


def test_values(metadata):
    assert metadata["qgisminimumversion"] == "3.22"
    assert metadata["category"] == "Raster"
    assert metadata["hasprocessingprovider"] == "yes"
    assert metadata["experimental"] in ("True", "False")
    assert (ROOT / "rts_mapper_plugin" / metadata["icon"]).is_file()
    for url in ("repository", "tracker", "homepage"):
        assert metadata[url].startswith("https://")


def test_about_names_the_deep_learning_dependencies(metadata):
    about = metadata["about"]
    assert "torch" in about and "segmentation-models-pytorch" in about
    assert "pip install" in about


def test_version_single_sourced(metadata):
    from rts_mapper_plugin.__about__ import __title__, __version__

    assert __version__ == metadata["version"]
    assert __title__ == metadata["name"]
    sources = (ROOT / "rts_mapper_plugin").rglob("*.py")
    hard_coded = [p for p in sources if f'"{metadata["version"]}"' in p.read_text(encoding="utf-8")]
    assert not hard_coded, f"version hard-coded in {hard_coded}"


def test_the_icon_metadata_names_ships_with_the_plugin(metadata):
    assert (ROOT / "rts_mapper_plugin" / metadata["icon"]).is_file()
