"""The zip from `make package`, unpacked into a temporary profile, loads and unloads cleanly."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_python

SCRIPT = Path(__file__).with_name("load_plugin_in_profile.py")


@pytest.fixture(scope="module")
def plugins_dir(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    zip_path = dist / "rts_mapper_plugin.zip"
    done = run_python([str(ROOT / "scripts" / "package.py"), "--out", str(zip_path)])
    assert done.returncode == 0, done.stderr
    plugins = tmp_path_factory.mktemp("profile") / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    zipfile.ZipFile(zip_path).extractall(plugins)
    return plugins


def load(plugins_dir: Path, *extra: str) -> dict:
    # cwd outside the repository, so the source tree cannot shadow the installed plugin
    done = run_python([str(SCRIPT), "--plugins-dir", str(plugins_dir), *extra], cwd=plugins_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def test_zip_loads_like_a_user_install(plugins_dir):
    result = load(plugins_dir)
    assert result["available"]
    before = result["before"]
    # the first load must not import the heavy packages (opening docks may, later)
    assert result["cycles"][0]["heavy_imported_at_load"] == [], "plugin load must stay light"
    for cycle in result["cycles"]:
        assert cycle["loaded"] and cycle["started"]
        assert cycle["module_file"].startswith(str(plugins_dir)), "loaded the source tree, not the zip"
        during = cycle["while_loaded"]
        assert "&RTS Mapper" in during["menus"]
        assert "RtsMapperToolbar" in during["toolbars"]
        assert {"Inference", "Review", "Training"} <= set(cycle["toolbar_actions"])
        assert "Environment check…" in cycle["menu_actions"]
        assert set(during["docks"]) >= {
            "RtsMapperInferenceDock",
            "RtsMapperReviewDock",
            "RtsMapperTrainingDock",
        }
        assert "rts_mapper" in during["providers"]
        assert "rts_mapper:environment_check" in cycle["algorithms"]
        assert cycle["unloaded"]
        assert cycle["after"] == before, "unload left something behind"


def test_loads_without_deep_learning_packages(plugins_dir):
    result = load(plugins_dir, "--hide-deep-learning")
    cycle = result["cycles"][0]
    assert cycle["loaded"] and cycle["started"]
    for dock in ("inference", "training"):
        text = cycle["dock_text"][dock]
        assert "torch" in text and "segmentation-models-pytorch" in text
        assert "pip install" in text
    assert "not installed" not in cycle["dock_text"]["review"]
    assert cycle["after"] == result["before"]
