"""Install profiles into a folder the plugin owns, with QGIS's own Python and pip.

A field laptop needs less than the desk: *review* (numpy, rasterio, shapely... no deep learning),
*inference* (plus onnxruntime: ONNX models, no torch), *full* (plus torch, segmentation-models-
pytorch and onnx: training, and inference of .safetensors models). Each is installed with
``pip install --prefix FOLDER`` (one folder per QGIS profile and Python version, added to
``sys.path`` when the plugin loads), so QGIS's own site-packages are never written to, and with
constraints that pin what QGIS's Python already has and must keep (numpy, GDAL): pip sees them
installed and leaves them alone. Offline, pip takes the wheels from a folder (``--no-index
--find-links``). After an install every module of the profile is imported in a separate
process: a broken install can fail that check, never QGIS. Uninstalling removes the folder.

Commands are argument lists (never a shell string); the faces run them (QProcess in QGIS, a
subprocess in the command line) and stream pip's output to the user.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from .environment import BASE_PACKAGES, DEEP_LEARNING_PACKAGES, ONNX_PACKAGES, findable, module_spec
from .errors import RtsMapperError

# What QGIS's Python brings and the plugin must never replace (numpy: Debian's GDAL, rasterio,
# scipy and matplotlib are built against its 1.x ABI; GDAL: QGIS's own bindings).
KEEP = {"numpy": "numpy<2", "GDAL": "GDAL"}
# Installed with QGIS itself (its Python bindings, GDAL's): not pip's to install.
WITH_QGIS = {"osgeo"}


@dataclass(frozen=True)
class Profile:
    """A set of packages sized for a job: import name -> pip requirement."""

    key: str
    title: str
    purpose: str
    modules: dict[str, str]

    def requirements(self) -> list[str]:
        return [r for m, r in self.modules.items() if m not in WITH_QGIS]


PROFILES: dict[str, Profile] = {
    p.key: p
    for p in (
        Profile(
            "review",
            "Review only",
            "review candidates, prepare imagery, time-lapses and analyses: no deep learning",
            dict(BASE_PACKAGES),
        ),
        Profile(
            "inference",
            "Inference (ONNX)",
            "review, and map with ONNX models through onnxruntime: no torch",
            {**BASE_PACKAGES, "onnxruntime": ONNX_PACKAGES["onnxruntime"]},
        ),
        Profile(
            "full",
            "Full (training)",
            "everything: train, map with .safetensors and ONNX models, export ONNX",
            {**BASE_PACKAGES, **DEEP_LEARNING_PACKAGES, **ONNX_PACKAGES},
        ),
    )
}


def python_tag() -> str:
    return f"py{sys.version_info.major}{sys.version_info.minor}"


def packages_folder(settings_dir: str | os.PathLike) -> Path:
    """The plugin's own packages folder in a QGIS profile's settings folder (per Python version:
    wheels built for 3.11 do not import in 3.12)."""
    return Path(settings_dir) / "python" / "rts_mapper_packages" / python_tag()


def site_dirs(folder: Path) -> list[Path]:
    """Where ``pip install --prefix folder`` puts packages for this Python (pip follows the
    interpreter's default scheme: Debian's puts them under local/.../dist-packages)."""
    paths = sysconfig.get_paths(vars={"base": str(folder), "platbase": str(folder)})
    return list(dict.fromkeys(Path(paths[key]) for key in ("purelib", "platlib")))


def activate(folder: Path) -> list[str]:
    """Put the folder's packages first on ``sys.path`` (at plugin load); returns what was added.
    First, because what is there was installed as missing or too old elsewhere, while what QGIS
    must keep was pinned and so never installed there."""
    added = []
    for path in reversed(site_dirs(folder)):
        if path.is_dir() and str(path) not in sys.path:
            sys.path.insert(0, str(path))
            added.append(str(path))
    if added:
        importlib.invalidate_caches()
    return added


def deactivate(folder: Path) -> None:
    for path in site_dirs(folder):
        with contextlib.suppress(ValueError):
            sys.path.remove(str(path))
    importlib.invalidate_caches()


def qgis_python() -> str:
    """The Python interpreter of the running QGIS. Not ``sys.executable``: in QGIS that is QGIS
    itself, or whatever ``python3`` comes first on PATH (seen: a pyenv shim of another Python),
    so the interpreter is found from the running Python's own prefix first."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for prefix in dict.fromkeys((Path(sys.exec_prefix), Path(sys.base_exec_prefix))):
        for candidate in (
            prefix / "bin" / f"python{version}",  # Linux, macOS, a virtualenv
            prefix / "python.exe",  # Windows (OSGeo4W, the standalone installer)
            prefix / "python3.exe",
        ):
            if candidate.is_file():
                return str(candidate)
    executable = Path(sys.executable)
    if executable.name.lower().startswith(f"python{version}"):
        return str(executable)
    raise RtsMapperError(
        f"cannot find QGIS's Python {version} interpreter (in {sys.exec_prefix}) to run pip with"
    )


@dataclass
class ModuleState:
    module: str
    requirement: str
    version: str | None  # None: missing
    where: str  # "QGIS" (its own Python), "plugin folder", or "" when missing


def status(profile: Profile, folder: Path | None = None) -> list[ModuleState]:
    """What of ``profile`` is present (cheap: modules are found, not imported)."""
    own = [str(p) for p in site_dirs(folder)] if folder is not None else []
    states = []
    for module, requirement in profile.modules.items():
        spec = module_spec(module)
        if spec is None:
            states.append(ModuleState(module, requirement, None, ""))
            continue
        origin = str(spec.origin or next(iter(spec.submodule_search_locations or [""])))
        if Path(origin).is_absolute() and not Path(origin).exists():  # uninstalled while imported
            states.append(ModuleState(module, requirement, None, "removed; loaded until QGIS restarts"))
            continue
        where = "plugin folder" if any(origin.startswith(p) for p in own) else "QGIS"
        states.append(ModuleState(module, requirement, _distribution_version(requirement), where))
    return states


def _distribution_version(requirement: str) -> str:
    name = requirement.split(";")[0]
    for mark in "<>=!~[ ":
        name = name.split(mark)[0]
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "present"


def constraints() -> str:
    """pip constraints that keep what QGIS's Python has and needs (written to a file for pip)."""
    lines = []
    for name, fallback in KEEP.items():
        try:
            lines.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            lines.append(fallback)
    return "\n".join(lines) + "\n"


def install_argv(
    profile: Profile,
    folder: Path,
    constraints_file: Path,
    wheels: Path | None = None,
    python: str | None = None,
    platform: str = sys.platform,
) -> list[str]:
    """The pip command that installs ``profile`` into ``folder`` (from ``wheels`` when offline)."""
    argv = [python or qgis_python(), "-m", "pip", "install", "--prefix", str(folder)]
    argv += ["--constraint", str(constraints_file), "--progress-bar", "off"]
    argv += ["--disable-pip-version-check", "--no-warn-script-location", "--no-input"]
    requirements = profile.requirements()
    # On Linux shapely must use the GEOS QGIS has loaded: built here against the system's
    # (libgeos-dev), not a manylinux wheel with its own GEOS (seen: "WKB output dimension must
    # be 2 or 3" in the desktop).
    own_geos = platform.startswith("linux") and not findable("shapely")
    if wheels is not None:
        if not Path(wheels).is_dir():
            raise RtsMapperError("is not a folder of wheels", wheels)
        argv += ["--no-index", "--find-links", str(wheels)]
        shapely = list(Path(wheels).glob("[sS]hapely-*"))
        if own_geos and (not shapely or any(_bundles_geos(w) for w in shapely)):
            raise RtsMapperError(
                "needs a shapely built on this system and no other (a manylinux wheel brings a GEOS "
                "that clashes with QGIS's): make one here with `python3 -m pip wheel --no-binary "
                "shapely shapely -w FOLDER`",
                wheels,
            )
        if own_geos and not any(w.suffix == ".whl" for w in shapely):
            argv += ["--no-binary", "shapely"]  # only its source: build it here
    elif own_geos:
        argv += ["--no-binary", "shapely"]
    return argv + requirements


def _bundles_geos(path: Path) -> bool:
    """A shapely wheel from PyPI (manylinux/musllinux: its own GEOS inside)."""
    return path.suffix == ".whl" and ("manylinux" in path.name or "musllinux" in path.name)


def pip_env(folder: Path) -> dict[str, str]:
    """pip's environment: what is already in ``folder`` counts as installed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_REQUIRE")}
    existing = [str(p) for p in site_dirs(folder)]
    env["PYTHONPATH"] = os.pathsep.join([*existing, *filter(None, [os.environ.get("PYTHONPATH")])])
    env["PYTHONNOUSERSITE"] = "1"  # ~/.local is not QGIS's: do not count on it
    return env


VERIFY_CODE = """
import importlib, json, sys
sys.modules.setdefault("triton", None)  # as the plugin does: torch only probes for it
found = {}
for name in sys.argv[1:]:
    try:
        module = importlib.import_module(name)
        found[name] = str(getattr(module, "__version__", "ok"))
    except Exception as exc:
        found[name] = "error: " + (f"{type(exc).__name__}: {exc}".splitlines() or [""])[0]
print(json.dumps(found))
"""


def verify_argv(profile: Profile, python: str | None = None) -> list[str]:
    """Import every module of ``profile`` in a new process (run with :func:`pip_env`)."""
    return [python or qgis_python(), "-c", VERIFY_CODE, *profile.modules]


def verify_result(output: str) -> dict[str, str]:
    """Module -> version, or "error: ..." for those that did not import."""
    lines = [line for line in output.splitlines() if line.startswith("{")]
    if not lines:
        raise RtsMapperError("the import check printed nothing: QGIS's Python could not run it")
    return json.loads(lines[-1])


def uninstall(folder: Path) -> None:
    """Remove the plugin's packages folder (what is imported stays until QGIS restarts)."""
    deactivate(folder)
    if folder.exists():
        try:
            shutil.rmtree(folder)
        except OSError as exc:
            raise RtsMapperError(
                f"cannot be removed ({exc.strerror}); close QGIS and delete it", folder
            ) from exc


def install_profile(
    profile: Profile,
    folder: Path,
    wheels: Path | None = None,
    python: str | None = None,
    on_line=print,
) -> dict[str, str]:
    """Install ``profile`` into ``folder`` and check that it imports, streaming pip's lines to
    ``on_line`` (the command line's way; QGIS runs the same commands in a QProcess). Returns the
    import check: module -> version. Raises RtsMapperError when pip fails or a module does not
    import (the folder is then left as pip left it: uninstall removes it)."""
    import subprocess
    import tempfile

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rts_mapper_pip_") as scratch:
        pins = Path(scratch) / "constraints.txt"
        pins.write_text(constraints(), encoding="utf-8")
        argv = install_argv(profile, folder, pins, wheels, python)
        on_line("$ " + " ".join(argv))
        with subprocess.Popen(
            argv,
            env=pip_env(folder),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        ) as process:
            last = ""
            for line in process.stdout:
                line = line.rstrip()
                if line:
                    last = line
                    on_line(line)
        if process.returncode != 0:
            raise RtsMapperError(f"pip could not install the {profile.key} profile: {last}", folder)
    done = subprocess.run(
        verify_argv(profile, python), env=pip_env(folder), capture_output=True, text=True, errors="replace"
    )
    found = verify_result(done.stdout)
    broken = {m: v for m, v in found.items() if v.startswith("error")}
    if broken:
        first = next(iter(broken.items()))
        raise RtsMapperError(
            f"installed, but {len(broken)} module(s) do not import: {first[0]} ({first[1][7:]})", folder
        )
    return found
