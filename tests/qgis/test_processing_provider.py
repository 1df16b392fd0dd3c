"""The provider's algorithms run through processing.run and through qgis_process.bin."""

from __future__ import annotations

import json
import os
import shutil
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.waiting import run_watched


def test_environment_check_through_processing_run(plugin):
    from qgis import processing

    result = processing.run("rts_mapper:environment_check", {})
    report = json.loads(result["REPORT"])
    assert report["qgis"].startswith("3.")
    assert "torch" in report["versions"] and "segmentation-models-pytorch" in report["versions"]
    assert result["DEEP_LEARNING_READY"] is True
    assert result["CUDA_AVAILABLE"] is report["cuda_available"]
    assert result["MISSING"] == ""


QGIS_PROCESS = shutil.which("qgis_process.bin") or "/usr/bin/qgis_process.bin"


@pytest.fixture(scope="module")
def qgis_process_profile(tmp_path_factory) -> dict:
    """A throw-away QGIS profile with the plugin linked in and enabled, as qgis_process sees it."""
    config = tmp_path_factory.mktemp("qgis_config")
    plugins = config / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    target = plugins / "rts_mapper_plugin"
    shutil.copytree(ROOT / "rts_mapper_plugin", target, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "metadata.txt", target / "metadata.txt")
    env = {**os.environ, "QGIS_CUSTOM_CONFIG_PATH": str(config), "QT_QPA_PLATFORM": "offscreen"}
    done = run_watched([QGIS_PROCESS, "plugins", "enable", "rts_mapper_plugin"], env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return env


def run_environment_check(env: dict) -> dict:
    done = run_watched([QGIS_PROCESS, "--json", "run", "rts_mapper:environment_check"], env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(done.stdout[done.stdout.index("{") :])["results"]


needs_qgis_process = pytest.mark.skipif(
    not Path(QGIS_PROCESS).exists(), reason="qgis_process.bin not installed"
)


@needs_qgis_process
def test_environment_check_through_qgis_process(qgis_process_profile):
    """qgis_process runs the system Python: the venv's packages come in through PYTHONPATH."""
    env = {**qgis_process_profile, "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    results = run_environment_check(env)
    report = json.loads(results["REPORT"])
    assert report["versions"]["numpy"] < "2"
    assert results["DEEP_LEARNING_READY"] is True


@needs_qgis_process
def test_qgis_process_without_deep_learning_packages(qgis_process_profile):
    """The system Python alone has no torch: the algorithm still runs and says what is missing."""
    env = {k: v for k, v in qgis_process_profile.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    results = run_environment_check(env)
    assert results["DEEP_LEARNING_READY"] is False
    assert "torch" in results["MISSING"]
    assert "pip install" in json.loads(results["REPORT"])["install_command"]


def test_every_algorithm_links_its_user_guide_section_and_has_search_tags():
    import re

    from rts_mapper_plugin.__about__ import __uri_repository__
    from rts_mapper_plugin.processing.algorithms import all_algorithms
    from rts_mapper_plugin.processing.base import heading_anchor

    guide = (ROOT / "docs" / "user_guide.md").read_text(encoding="utf-8")
    anchors = {heading_anchor(h) for h in re.findall(r"^#+ (.+)$", guide, flags=re.MULTILINE)}
    assert (
        heading_anchor("1. Prepare the imagery, one layer per year")
        == "1-prepare-the-imagery-one-layer-per-year"
    )
    for algorithm in all_algorithms():
        url = algorithm.helpUrl()
        assert url.startswith(f"{__uri_repository__}/blob/main/docs/user_guide.md#"), algorithm.name()
        assert url.split("#", 1)[1] in anchors, f"{algorithm.name()}: {url} is no heading of the guide"
        assert {"thaw slump", "permafrost"} <= set(algorithm.tags()), algorithm.name()
