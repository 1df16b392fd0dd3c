"""Install profiles into a folder of the plugin's own, as *Install deep-learning packages…* does:
with pip from a local folder of wheels (never the network), QGIS's numpy kept, an import check in
a separate process, a clear line when pip or an import fails, and an uninstall that removes it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rts_mapper_plugin.core import install
from rts_mapper_plugin.core.errors import RtsMapperError
from tests.conftest import run_python
from tests.data.wheels import PROBE, probe_wheels


@pytest.fixture
def wheels(tmp_path):
    return probe_wheels(tmp_path / "wheels")


def test_a_profile_installs_from_a_wheel_folder_keeps_numpy_and_uninstalls(tmp_path, wheels):
    folder = tmp_path / "packages" / install.python_tag()
    lines: list[str] = []
    found = install.install_profile(PROBE, folder, wheels, sys.executable, lines.append)
    assert found["rtsm_probe_a"] == "1.2.0" and not found["numpy"].startswith("error"), found
    assert any("--no-index" in line for line in lines) and any(
        "Successfully installed" in line for line in lines
    )
    site = [p for p in install.site_dirs(folder) if p.is_dir()]
    installed = {p.name for d in site for p in d.iterdir()}
    assert {"rtsm_probe_a", "rtsm_probe_b"} <= installed, installed  # the dependency came along
    assert not any(name.startswith("numpy") for name in installed), "QGIS's numpy is kept, not reinstalled"
    # the folder on sys.path (as at plugin load) makes them importable, found as the plugin's own
    added = install.activate(folder)
    try:
        states = {s.module: s for s in install.status(PROBE, folder)}
        assert states["rtsm_probe_a"].version == "1.2.0" and states["rtsm_probe_a"].where == "plugin folder"
        assert states["numpy"].where == "QGIS"
    finally:
        install.deactivate(folder)
    assert added and not set(added) & set(sys.path)
    install.uninstall(folder)
    assert not folder.exists()


def test_a_missing_wheel_is_one_clear_line(tmp_path, wheels):
    needs = install.Profile("x", "X", "", {"rtsm_probe_c": "rtsm-probe-c"})
    with pytest.raises(RtsMapperError) as caught:
        install.install_profile(needs, tmp_path / "p", wheels, sys.executable, lambda line: None)
    assert "pip could not install the x profile" in str(caught.value)
    assert "rtsm-probe-c" in str(caught.value) and "\n" not in str(caught.value)


def test_a_package_that_installs_but_does_not_import_is_named(tmp_path, wheels):
    broken = install.Profile("b", "B", "", {"rtsm_probe_broken": "rtsm-probe-broken"})
    with pytest.raises(RtsMapperError) as caught:
        install.install_profile(broken, tmp_path / "p", wheels, sys.executable, lambda line: None)
    assert "do not import: rtsm_probe_broken (ImportError: needs libfoo.so.3)" in str(caught.value)
    assert "rtsm_probe_broken" not in sys.modules, "the check ran in another process"


def test_the_command_line_installs_and_uninstalls_a_profile(tmp_path, wheels, monkeypatch):
    """`packages install` / `uninstall` through the command line, a real profile's status."""
    folder = tmp_path / "folder"
    done = run_python(["-m", "rts_mapper_plugin", "packages", "status", "inference", "--folder", str(folder)])
    assert done.returncode == 0 and "onnxruntime" in done.stdout and "shapely>=2" in done.stdout, done.stderr
    done = run_python(["-m", "rts_mapper_plugin", "packages", "uninstall", "--folder", str(folder)])
    assert done.returncode == 0, done.stderr
    done = run_python(["-m", "rts_mapper_plugin", "packages", "install", "nothing", "--folder", str(folder)])
    assert done.returncode == 2 and "no profile 'nothing'" in done.stderr


def test_profiles_grow_and_keep_to_the_project_requirements():
    review, inference, full = (set(install.PROFILES[k].modules) for k in ("review", "inference", "full"))
    assert review < inference < full
    assert "torch" not in inference and "onnxruntime" in inference
    listed = (Path(__file__).parents[2] / "requirements" / "runtime.txt").read_text()
    listed += (Path(__file__).parents[2] / "requirements" / "torch.txt").read_text()
    for profile in install.PROFILES.values():
        for requirement in profile.requirements():
            name = requirement.split("<")[0].split(">")[0].split("=")[0]
            if name not in ("numpy", "rasterio", "scipy", "matplotlib"):  # Debian's, in QGIS's Python
                assert name in listed, f"{name} of the {profile.key} profile is not in requirements/"


def test_linux_offline_needs_a_shapely_built_here(tmp_path, monkeypatch):
    monkeypatch.setattr(install, "findable", lambda module: module != "shapely")
    folder = tmp_path / "w"
    folder.mkdir()
    pins = tmp_path / "c.txt"
    (folder / "shapely-2.1.2-cp311-cp311-manylinux2014_x86_64.whl").write_bytes(b"")
    with pytest.raises(RtsMapperError, match="shapely built on this system"):
        install.install_argv(install.PROFILES["review"], tmp_path / "p", pins, folder, "python3", "linux")
    (folder / "shapely-2.1.2-cp311-cp311-manylinux2014_x86_64.whl").unlink()
    (folder / "shapely-2.1.2.tar.gz").write_bytes(b"")
    argv = install.install_argv(install.PROFILES["review"], tmp_path / "p", pins, folder, "python3", "linux")
    assert argv[argv.index("--no-binary") + 1] == "shapely"  # only its source: built here
    online = install.install_argv(install.PROFILES["review"], tmp_path / "p", pins, None, "python3", "linux")
    assert "--no-index" not in online and "--no-binary" in online
    windows = install.install_argv(install.PROFILES["review"], tmp_path / "p", pins, None, "python3", "win32")
    assert "--no-binary" not in windows


def test_pip_runs_with_the_running_python_not_the_first_python3_on_path(monkeypatch):
    """In the QGIS desktop sys.executable was a pyenv shim of another Python: pip then resolved
    against that Python's numpy and refused the profile."""
    monkeypatch.setattr(sys, "executable", "/root/.pyenv/shims/python3")
    python = install.qgis_python()
    assert python.startswith(sys.exec_prefix) and python.endswith(
        f"python{sys.version_info[0]}.{sys.version_info[1]}"
    )
