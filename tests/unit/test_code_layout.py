"""The architecture rules of DESIGN.md, checked on the source: layering and the Qt-free core."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "rts_mapper_plugin"
QT_OR_QGIS = ("qgis", "PyQt5", "PyQt6", "PySide2", "PySide6", "sip")


def imported_modules(path: Path) -> list[tuple[int, str, int]]:
    """(line, module, relative level) of every import in ``path``, nested ones included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, node.module or "", node.level))
    return found


def package_of(path: Path) -> str:
    """The plugin sub-package a file belongs to ('core', 'gui', ...; '' for top-level files)."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else ""


def resolve(path: Path, module: str, level: int) -> str:
    """Absolute dotted name inside the plugin of a (possibly relative) import."""
    if level == 0:
        return module
    base = list(path.relative_to(PACKAGE).parent.parts)
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join(["rts_mapper_plugin", *base, *([module] if module else [])])


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "resources_rc.py")


def test_sources_found():
    assert any(package_of(p) == "core" for p in SOURCES)


@pytest.mark.parametrize("path", [p for p in SOURCES if package_of(p) == "core"], ids=lambda p: p.name)
def test_core_never_imports_qt_or_qgis(path):
    bad = [
        (line, m) for line, m, level in imported_modules(path) if level == 0 and m.split(".")[0] in QT_OR_QGIS
    ]
    assert not bad, f"{path.relative_to(PACKAGE)} imports Qt/QGIS: {bad}"


# who may import whom inside the plugin: gui -> tasks -> core, processing -> core, __main__ -> core
ALLOWED = {
    "core": {"core"},
    "tasks": {"tasks", "core"},
    "processing": {"processing", "core", "toolbelt"},
    "gui": {"gui", "tasks", "core", "toolbelt"},
    "toolbelt": {"toolbelt", "core"},
}
SHARED = {"", "__about__", "resources_rc"}  # the package itself, its metadata, compiled resources


@pytest.mark.parametrize(
    "path", [p for p in SOURCES if package_of(p) in ALLOWED], ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_imports_run_one_way(path):
    own = package_of(path)
    for line, module, level in imported_modules(path):
        name = resolve(path, module, level)
        if not name.startswith("rts_mapper_plugin"):
            continue
        parts = name.split(".")
        target = parts[1] if len(parts) > 1 else ""
        if target in SHARED:
            continue
        assert target in ALLOWED[own], f"{path.relative_to(PACKAGE)}:{line}: {own} must not import {name}"


@pytest.mark.parametrize(
    "path", [p for p in SOURCES if package_of(p) != "gui"], ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_only_gui_and_plugin_import_qgis_gui(path):
    if path.name == "plugin.py" and package_of(path) == "":
        return
    bad = [m for _, m, level in imported_modules(path) if level == 0 and m.startswith("qgis.gui")]
    assert not bad, f"{path.relative_to(PACKAGE)} imports qgis.gui"


def test_main_and_init_import_no_qt_at_module_level():
    """The CLI must run without QGIS; classFactory imports plugin.py lazily."""
    for name in ("__main__.py", "__init__.py", "__about__.py"):
        tree = ast.parse((PACKAGE / name).read_text(encoding="utf-8"))
        top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        for node in top_level:
            module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            assert (module or "").split(".")[0] not in QT_OR_QGIS, f"{name} imports {module}"
            assert "torch" not in (module or ""), f"{name} imports torch at load"
