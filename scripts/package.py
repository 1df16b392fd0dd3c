"""Build the plugin zip that QGIS's "Install from ZIP" accepts.

One top-level folder ``rts_mapper_plugin/`` holding the package sources, metadata.txt, LICENSE
and the compiled resources; no bytecode, no binaries, no tests. Standard library only, so it
runs with any Python.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "rts_mapper_plugin"
MAX_BYTES = 25 * 1024 * 1024
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache"}
SKIP_SUFFIXES = {
    ".pyc",
    ".pyo",
    ".so",
    ".pyd",
    ".dll",
    ".exe",
    ".pt",
    ".pth",
    ".safetensors",
    ".tif",
    ".gpkg",
    ".ts",  # translation sources: the compiled .qm files ship
}
REQUIRED = ("metadata.txt", "LICENSE", "__init__.py", "plugin.py")


def plugin_files() -> list[tuple[Path, str]]:
    """(source path, name inside the zip) for every file that ships."""
    files = []
    for path in sorted((ROOT / PACKAGE).rglob("*")):
        relative = path.relative_to(ROOT)
        if path.is_dir() or SKIP_DIRS & set(relative.parts) or path.suffix in SKIP_SUFFIXES:
            continue
        files.append((path, relative.as_posix()))
    files.append((ROOT / "metadata.txt", f"{PACKAGE}/metadata.txt"))
    files.append((ROOT / "LICENSE", f"{PACKAGE}/LICENSE"))
    return files


def build(out: Path) -> Path:
    files = plugin_files()
    names = {name.split("/", 1)[1] for _, name in files}
    missing = [r for r in REQUIRED if r not in names]
    if missing:
        raise SystemExit(f"cannot package: missing {', '.join(missing)} (run `make resources`)")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for source, name in files:
            archive.write(source, name)
    size = partial.stat().st_size
    if size > MAX_BYTES:
        partial.unlink()
        raise SystemExit(f"the zip would be {size / 1e6:.1f} MB, over the 25 MB limit")
    partial.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the zip to write")
    args = parser.parse_args(argv)
    out = build(args.out)
    print(f"{out} ({out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
