"""The architecture rules of DESIGN.md, checked on the source: layering and the Qt-free core."""

from __future__ import annotations

import ast
import re
import sys
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
    """The plugin sub-package a file belongs to ('core', 'gui', ...), or for a top-level file its
    module name ('__main__', 'plugin', ...)."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else path.stem


def resolve(path: Path, module: str, level: int) -> str:
    """Absolute dotted name inside the plugin of a (possibly relative) import."""
    if level == 0:
        return module
    base = list(path.relative_to(PACKAGE).parent.parts)
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join(["rts_mapper_plugin", *base, *([module] if module else [])])


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(["rts_mapper_plugin", *parts]).removesuffix(".__init__")


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_sources_found():
    assert any(package_of(p) == "core" for p in SOURCES)


@pytest.mark.parametrize("path", [p for p in SOURCES if package_of(p) == "core"], ids=lambda p: p.name)
def test_core_never_imports_qt_or_qgis(path):
    bad = [
        (line, m) for line, m, level in imported_modules(path) if level == 0 and m.split(".")[0] in QT_OR_QGIS
    ]
    assert not bad, f"{path.relative_to(PACKAGE)} imports Qt/QGIS: {bad}"


# who may import whom inside the plugin (DESIGN.md): gui -> tasks -> core, processing -> core,
# __main__ -> core; QGIS-layer helpers (qgis.core only) for every face that runs in QGIS; the
# built-in example over core; core imports nothing of the plugin's other packages
ALLOWED = {
    "core": {"core"},
    "example": {"example", "core"},
    "qgis_layers": {"qgis_layers", "core", "toolbelt"},
    "tasks": {"tasks", "core"},
    "processing": {"processing", "core", "toolbelt", "qgis_layers"},
    "gui": {"gui", "tasks", "core", "toolbelt", "qgis_layers"},
    "toolbelt": {"toolbelt", "core"},
    "__main__": {"core", "example", "qgis_layers"},  # the CLI runs without a display: never gui
    "__init__": {"plugin"},  # classFactory only
    "__about__": set(),
    "plugin": {"core", "tasks", "processing", "gui", "toolbelt", "qgis_layers"},
}
SHARED = {"", "__about__"}  # the package itself, its metadata


def test_every_file_has_a_rule():
    assert {package_of(p) for p in SOURCES} <= set(ALLOWED)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
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


def import_graph() -> dict[str, set[str]]:
    """Module -> the plugin modules it imports, at any depth of the file (nested imports count:
    a circle hidden inside functions is still a circle)."""
    modules = {module_name(p): p for p in SOURCES}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = resolve(path, node.module or "", node.level)
                # `from . import x` imports the module x; `from .x import y` the module x
                known = modules.keys()
                found = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
            else:
                continue
            targets |= {t for t in found if t in modules and t != name}
        graph[name] = targets
    return graph


def test_no_import_circles():
    graph = import_graph()
    circles = []
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                circles.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_the_layout_rules_catch_what_they_forbid(tmp_path, monkeypatch):
    """The rules above fail on a forbidden import and on a circle (they are not vacuous)."""
    fake = tmp_path / "rts_mapper_plugin"
    for folder in ("core", "gui"):
        (fake / folder).mkdir(parents=True)
    (fake / "core" / "a.py").write_text("def f():\n    from . import b\n", encoding="utf-8")
    (fake / "core" / "b.py").write_text("from .a import f\n", encoding="utf-8")
    (fake / "gui" / "dock.py").write_text("", encoding="utf-8")
    (fake / "__main__.py").write_text("from .gui import dock\n", encoding="utf-8")
    this = sys.modules[__name__]
    monkeypatch.setattr(this, "PACKAGE", fake)
    monkeypatch.setattr(this, "SOURCES", sorted(fake.rglob("*.py")))
    with pytest.raises(AssertionError, match=re.escape("__main__ must not import rts_mapper_plugin.gui")):
        test_imports_run_one_way(fake / "__main__.py")
    circle = "core.a -> rts_mapper_plugin.core.b -> rts_mapper_plugin.core.a"
    with pytest.raises(AssertionError, match=re.escape(circle)):
        test_no_import_circles()


@pytest.mark.parametrize("path", [p for p in SOURCES if package_of(p) == "qgis_layers"], ids=lambda p: p.name)
def test_qgis_layer_helpers_use_no_widgets(path):
    bad = [
        (line, m)
        for line, m, level in imported_modules(path)
        if level == 0 and m.startswith(("qgis.gui", "qgis.PyQt.QtWidgets", "PyQt5.QtWidgets"))
    ]
    assert not bad, f"{path.relative_to(PACKAGE)} imports widgets: {bad}"


@pytest.mark.parametrize(
    "path", [p for p in SOURCES if package_of(p) != "gui"], ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_only_gui_and_plugin_import_qgis_gui(path):
    if package_of(path) == "plugin":
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


WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER)\s")
# The project's schema is written by store.py only; gpkg.py is the GeoPackage format itself
# (tables, R-trees, extents), used by the store and by the exports that write their own files.
SCHEMA_WRITERS = {"core/project/store.py", "core/gpkg.py"}


def sql_writes(path: Path) -> list[tuple[int, str]]:
    """(line, statement start) of every string in ``path`` that writes SQL."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = WRITES.search(node.value)
            if match and node.value.lstrip().upper().startswith(match.group(1)):
                found.append((node.lineno, node.value.strip()[:40]))
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_one_writer_of_the_project_schema(path):
    """The workflow writes the project through MappingProject.writing(), never SQL of its own."""
    if path.relative_to(PACKAGE).as_posix() in SCHEMA_WRITERS:
        assert sql_writes(path), "the writer writes (else this rule checks nothing)"
        return
    assert not sql_writes(path), f"{path.relative_to(PACKAGE)} writes SQL itself: {sql_writes(path)}"


def test_the_writer_rule_catches_sql(tmp_path):
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text(
        'def f(conn):\n    conn.execute(f"UPDATE candidates SET status = {1}")\n', encoding="utf-8"
    )
    assert sql_writes(sneaky) == [(2, "UPDATE candidates SET status =")]
