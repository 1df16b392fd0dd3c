"""The zip that QGIS's "Install from ZIP" accepts (built by scripts/package.py, as `make package`)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_python


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist") / "rts_mapper_plugin.zip"
    done = run_python([str(ROOT / "scripts" / "package.py"), "--out", str(out)])
    assert done.returncode == 0, done.stderr + done.stdout
    return out


def test_one_top_folder_with_metadata_license_and_resources(plugin_zip):
    names = zipfile.ZipFile(plugin_zip).namelist()
    assert {n.split("/")[0] for n in names} == {"rts_mapper_plugin"}
    for required in ("metadata.txt", "LICENSE", "__init__.py", "plugin.py", "resources/icons/rts_mapper.svg"):
        assert f"rts_mapper_plugin/{required}" in names


def test_no_bytecode_binaries_or_tests(plugin_zip):
    names = zipfile.ZipFile(plugin_zip).namelist()
    assert not [n for n in names if n.endswith((".pyc", ".so", ".pyd", ".dll", ".safetensors", ".pt"))]
    assert not [n for n in names if "__pycache__" in n or "/tests/" in n]


def test_small_enough(plugin_zip):
    assert plugin_zip.stat().st_size < 25 * 1024 * 1024


def test_metadata_in_zip_is_the_repository_one(plugin_zip):
    packed = zipfile.ZipFile(plugin_zip).read("rts_mapper_plugin/metadata.txt").decode()
    assert packed == (ROOT / "metadata.txt").read_text(encoding="utf-8")
