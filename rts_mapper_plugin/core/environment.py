"""What the plugin needs, what is installed, and how to install what is missing.

Two levels: :func:`missing_packages` only looks for the packages (cheap, safe at plugin load:
nothing heavy is imported), :func:`environment_report` imports them to read their versions and
to ask torch about CUDA (seconds; run it on demand).
"""

from __future__ import annotations

import importlib
import importlib.util
import platform
import sys
import threading
from dataclasses import dataclass, field

# import name -> pip requirement. The base set serves review, imagery and analysis.
BASE_PACKAGES: dict[str, str] = {
    "numpy": "numpy<2",
    "rasterio": "rasterio",
    "shapely": "shapely>=2",
    "osgeo": "GDAL",
    "scipy": "scipy",  # streams and distances of the distribution analysis
    "matplotlib": "matplotlib",  # its figures
    "PIL": "Pillow",  # the time-lapse strips and GIFs
}
# Training and inference only: field laptops may run without these.
DEEP_LEARNING_PACKAGES: dict[str, str] = {
    "torch": "torch",
    "torchvision": "torchvision",
    "segmentation_models_pytorch": "segmentation-models-pytorch",
    "safetensors": "safetensors",
}
# ONNX: exporting models (onnx) and running ONNX models (onnxruntime, no torch needed).
ONNX_PACKAGES: dict[str, str] = {"onnx": "onnx", "onnxruntime": "onnxruntime"}


def module_spec(module: str):
    """The import spec of ``module`` (found, not imported), or None."""
    try:
        return importlib.util.find_spec(module)
    except (ImportError, ValueError):  # a broken parent package, or a module without spec
        return None


def findable(module: str) -> bool:
    return module_spec(module) is not None


# torch (and triton, torchvision, timm behind it) must not be imported by two threads at once:
# in QGIS two background tasks doing it together crashed the whole application.
IMPORT_LOCK = threading.Lock()


def import_module_safely(name: str):
    """importlib.import_module under :data:`IMPORT_LOCK` (cheap once the module is loaded).

    triton is kept out: torch only probes for it (for torch.compile GPU kernels, never used
    here), and its bundled LLVM crashed the QGIS desktop, which already has Mesa's LLVM loaded.
    """
    module = sys.modules.get(name)
    if module is not None:
        return module
    with IMPORT_LOCK:
        sys.modules.setdefault("triton", None)  # `import triton` now raises ImportError
        return importlib.import_module(name)


def missing_packages(names: dict[str, str]) -> list[str]:
    """The pip requirements of the packages in ``names`` that cannot be found (not imported)."""
    return [requirement for module, requirement in names.items() if not findable(module)]


def install_command(requirements: list[str], system: str | None = None) -> str:
    """The command that installs ``requirements`` into the Python QGIS uses on ``system``."""
    quoted = " ".join(f'"{r}"' if any(c in r for c in "<>=") else r for r in requirements)
    system = system or platform.system()
    if system == "Windows":
        return f"In the OSGeo4W Shell: python -m pip install {quoted}"
    if system == "Darwin":
        return f"/Applications/QGIS.app/Contents/MacOS/bin/python3 -m pip install {quoted}"
    # On Linux shapely must use the GEOS QGIS has loaded: build it against it (needs libgeos-dev).
    source = "--no-binary shapely " if any(r.startswith("shapely") for r in requirements) else ""
    return f"python3 -m pip install --user {source}{quoted}"


def deep_learning_missing() -> list[str]:
    """Requirements missing for training and inference (cheap: nothing is imported)."""
    return missing_packages(DEEP_LEARNING_PACKAGES)


@dataclass
class EnvironmentReport:
    """Versions of everything the plugin uses, CUDA availability, and what is missing."""

    python: str
    platform: str
    versions: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    cuda_available: bool = False
    cuda_devices: list[str] = field(default_factory=list)
    torch_threads: int | None = None

    @property
    def deep_learning_ready(self) -> bool:
        return not any(r in self.missing for r in DEEP_LEARNING_PACKAGES.values())

    def as_dict(self) -> dict:
        return {
            "python": self.python,
            "platform": self.platform,
            "versions": self.versions,
            "missing": self.missing,
            "problems": self.problems,
            "cuda_available": self.cuda_available,
            "cuda_devices": self.cuda_devices,
            "torch_threads": self.torch_threads,
            "deep_learning_ready": self.deep_learning_ready,
            "install_command": install_command(self.missing) if self.missing else "",
        }

    def lines(self) -> list[str]:
        """A human-readable report, one fact per line."""
        out = [f"Python {self.python} on {self.platform}"]
        out += [f"{name}: {version}" for name, version in self.versions.items()]
        cuda = ", ".join(self.cuda_devices) if self.cuda_available else "not available"
        out.append(f"CUDA: {cuda}")
        if self.torch_threads:
            out.append(f"torch CPU threads: {self.torch_threads}")
        for name, problem in self.problems.items():
            out.append(f"{name} is installed but does not import: {problem}")
        if self.missing:
            out.append("Missing: " + ", ".join(self.missing))
            out.append("Install with: " + install_command(self.missing))
        else:
            out.append("Nothing is missing.")
        return out


def _version_of(module) -> str:
    version = getattr(module, "__version__", None)
    if version is None and module.__name__ == "osgeo":
        from osgeo import gdal

        version = gdal.__version__
    return str(version or "unknown")


def environment_report() -> EnvironmentReport:
    """Import each package to read its version; ask torch about CUDA. Takes a few seconds."""
    report = EnvironmentReport(python=platform.python_version(), platform=sys.platform)
    for module_name, requirement in {**BASE_PACKAGES, **DEEP_LEARNING_PACKAGES, **ONNX_PACKAGES}.items():
        try:
            module = import_module_safely(module_name)
        except ImportError as exc:
            report.missing.append(requirement)
            if findable(module_name):
                report.problems[requirement] = str(exc).splitlines()[0]
            continue
        except Exception as exc:  # a package that crashes at import is as good as missing
            report.missing.append(requirement)
            report.problems[requirement] = f"{type(exc).__name__}: {exc}".splitlines()[0]
            continue
        report.versions[requirement.split("<")[0].split(">")[0]] = _version_of(module)
        if module_name == "torch":
            report.cuda_available = bool(module.cuda.is_available())
            if report.cuda_available:
                report.cuda_devices = [
                    module.cuda.get_device_name(i) for i in range(module.cuda.device_count())
                ]
            report.torch_threads = module.get_num_threads()
    return report
