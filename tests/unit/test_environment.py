"""Dependency detection and install instructions, including with torch hidden."""

from __future__ import annotations

import json

from rts_mapper_plugin.core.environment import (
    DEEP_LEARNING_PACKAGES,
    environment_report,
    install_command,
    missing_packages,
)
from tests.conftest import HIDE_DEEP_LEARNING, run_python


def test_missing_packages_only_lists_absent_ones():
    assert missing_packages({"json": "json", "no_such_module_xyz": "no-such-package"}) == ["no-such-package"]


def test_install_command_per_platform():
    assert install_command(["torch"], "Linux") == "python3 -m pip install --user torch"
    # on Linux shapely is built against the GEOS QGIS has loaded, never taken as a wheel
    assert install_command(["shapely>=2", "torch"], "Linux") == (
        'python3 -m pip install --user --no-binary shapely "shapely>=2" torch'
    )
    assert "OSGeo4W Shell" in install_command(["torch"], "Windows")
    assert install_command(["shapely>=2"], "Darwin").endswith('pip install "shapely>=2"')


def test_report_in_this_environment():
    report = environment_report()
    assert report.versions["numpy"] < "2"
    assert "torch" in report.versions and "segmentation-models-pytorch" in report.versions
    assert report.deep_learning_ready
    assert report.torch_threads and report.torch_threads >= 1
    assert any(line.startswith("CUDA:") for line in report.lines())


def test_report_with_torch_hidden():
    code = HIDE_DEEP_LEARNING + (
        "import json\nfrom rts_mapper_plugin.core.environment import environment_report\n"
        "print(json.dumps(environment_report().as_dict()))"
    )
    done = run_python(["-c", code])
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert not report["deep_learning_ready"]
    assert set(DEEP_LEARNING_PACKAGES.values()) <= set(report["missing"])
    assert "torch" in report["install_command"] and "pip install" in report["install_command"]
    assert "numpy" in report["versions"]
