"""Wheels written by hand (a zip with its dist-info: no build tool, no network) and a profile
made of them, for driving the package installer offline in tests."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

from rts_mapper_plugin.core.install import Profile

# two packages (one needing the other) and QGIS's numpy, which must be kept, not reinstalled
PROBE = Profile(
    "probe", "Probe", "two packages and QGIS's numpy", {"rtsm_probe_a": "rtsm-probe-a", "numpy": "numpy<2"}
)


def make_wheel(folder: Path, name: str, version: str, requires=(), code: str = "") -> Path:
    """A real wheel file (a zip with its dist-info), written by hand: no build tool, no network."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": f"__version__ = {version!r}\n{code}",
        f"{dist_info}/METADATA": "Metadata-Version: 2.1\n"
        f"Name: {name}\nVersion: {version}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{dist_info}/RECORD,,")
    wheel = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
        archive.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return wheel


def probe_wheels(folder: Path) -> Path:
    """rtsm-probe-a 1.2.0 (needs rtsm-probe-b and numpy), rtsm-probe-b 2.0.1, and a package
    that installs but does not import (rtsm-probe-broken)."""
    folder.mkdir(parents=True, exist_ok=True)
    make_wheel(folder, "rtsm-probe-a", "1.2.0", requires=["rtsm-probe-b>=2", "numpy>=1.20"])
    make_wheel(folder, "rtsm-probe-b", "2.0.1")
    make_wheel(folder, "rtsm-probe-broken", "0.1", code="raise ImportError('needs libfoo.so.3')\n")
    return folder
