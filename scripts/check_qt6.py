"""Is the plugin's code ready for Qt6 and QGIS 4, while still running on QGIS 3.22 (Qt5)?

The rules are those of QGIS's own migration script (qgis/QGIS, scripts/pyqt5_to_pyqt6/
pyqt5_to_pyqt6.py), checked here with the Qt5 bindings this machine has (that script needs PyQt6
or an enum table made with it):

- Qt and QGIS enums by their scoped name: ``Qt.MouseButton.LeftButton``, not ``Qt.LeftButton``
  (PyQt6 has only the scoped one; PyQt5 5.15 and QGIS 3.22 take both). Found by looking each
  ``Class.Member`` of the code up in the real bindings: a member whose type is an enum of the class;
- ``exec()``, not ``exec_()``; no ``qApp``; enums renamed in Qt6 (``Qt.MidButton``...);
- imports through ``qgis.PyQt`` only (never ``PyQt5`` / ``PyQt6`` / ``sip`` directly);
- no compiled resources (``resources_rc``, ``:/`` paths): Qt6 has no pyrcc;
- nothing Qt6 removed: ``QRegExp``, ``QDesktopWidget``, ``QApplication.desktop()``,
  ``activated[str]``, ``QFontMetrics.width``.

``QVariant.String`` and friends stay: QGIS 3.22's QgsField takes nothing else (QGIS's script
keeps them too unless told to break QGIS 3).

Usage: python scripts/check_qt6.py [--fix] [PATH...]   (default: rts_mapper_plugin)
Prints one line per finding (file:line: what, and the Qt6 spelling); exit 1 when any.
``--fix`` rewrites the enum and exec_ findings in place.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINDINGS = ("qgis.core", "qgis.gui", "qgis.PyQt.QtCore", "qgis.PyQt.QtGui", "qgis.PyQt.QtWidgets")
REMOVED = {
    "QRegExp": "QRegExp is removed in Qt6: use QRegularExpression",
    "QDesktopWidget": "QDesktopWidget is removed in Qt6: use QScreen",
    "qApp": "qApp is removed in Qt6: use QApplication.instance()",
}
RENAMED = {
    ("Qt", "MidButton"): "Qt.MouseButton.MiddleButton",
    ("Qt", "TextColorRole"): "Qt.ItemDataRole.ForegroundRole",
    ("Qt", "BackgroundColorRole"): "Qt.ItemDataRole.BackgroundRole",
    ("QPainter", "HighQualityAntialiasing"): "QPainter.RenderHint.Antialiasing",
}


def enum_of(owner, member: str) -> str | None:
    """The name of the enum of ``owner`` that ``owner.member`` belongs to, when ``member`` is an
    enum value reached unscoped; None when it is anything else (a class, a method, a scoped use)."""
    try:
        value = getattr(owner, member)
    except AttributeError:
        return None
    kind = type(value)
    if isinstance(value, type) or kind is int or kind is bool or not issubclass(kind, int):
        return None
    if not kind.__module__.startswith(("PyQt", "qgis", "sip")):
        return None
    name = kind.__name__
    return name if getattr(owner, name, None) is kind and name != member else None


def bound_classes(tree: ast.Module) -> dict[str, object]:
    """Names the file imports from the Qt/QGIS bindings, bound to the real classes."""
    classes = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in BINDINGS:
            module = importlib.import_module(node.module)
            for alias in node.names:
                value = getattr(module, alias.name, None)
                if isinstance(value, type):
                    classes[alias.asname or alias.name] = value
    return classes


def check_file(path: Path, fix: bool = False) -> list[str]:
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    classes = bound_classes(tree)
    findings, edits = [], []  # edits: (line, column of the member, insertion)
    where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}"
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.split(".")[0] in ("PyQt5", "PyQt6", "sip")
        ):
            findings.append(f"{where}:{node.lineno}: import from {node.module}: import through qgis.PyQt")
        elif isinstance(node, ast.Import) and any(
            a.name.split(".")[0] in ("PyQt5", "PyQt6", "sip") for a in node.names
        ):
            findings.append(f"{where}:{node.lineno}: import of PyQt5/PyQt6/sip: import through qgis.PyQt")
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            if any(n.endswith("resources_rc") for n in names):
                findings.append(
                    f"{where}:{node.lineno}: compiled resources: Qt6 has no pyrcc, load files by path"
                )
            for name in names:
                if name in REMOVED:
                    findings.append(f"{where}:{node.lineno}: {REMOVED[name]}")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith(":/"):
            findings.append(f"{where}:{node.lineno}: a Qt resource path {node.value!r}: Qt6 has no pyrcc")
        if isinstance(node, ast.Attribute):
            if node.attr == "exec_":
                findings.append(f"{where}:{node.lineno}: exec_(): exec() (Qt6 has only exec)")
                edits.append((node.end_lineno, node.end_col_offset - len("exec_"), "exec", len("exec_")))
            if (
                node.attr == "desktop"
                and isinstance(node.value, ast.Name)
                and node.value.id == "QApplication"
            ):
                findings.append(f"{where}:{node.lineno}: QApplication.desktop() is removed in Qt6")
            if node.attr == "width" and isinstance(node.value, ast.Call):
                func = node.value.func
                if getattr(func, "attr", getattr(func, "id", "")) in ("fontMetrics", "QFontMetrics"):
                    findings.append(
                        f"{where}:{node.lineno}: QFontMetrics.width() is removed: horizontalAdvance()"
                    )
            if isinstance(node.value, ast.Name) and node.value.id in classes:
                owner_name, member = node.value.id, node.attr
                if (owner_name, member) in RENAMED:
                    findings.append(
                        f"{where}:{node.lineno}: {owner_name}.{member} is gone in Qt6: {RENAMED[owner_name, member]}"
                    )
                    continue
                enum = enum_of(classes[owner_name], member)
                if enum:
                    findings.append(
                        f"{where}:{node.lineno}: {owner_name}.{member}: {owner_name}.{enum}.{member} (scoped enum)"
                    )
                    edits.append((node.end_lineno, node.end_col_offset - len(member), f"{enum}.", 0))
        if (
            isinstance(node, ast.Subscript)
            and getattr(node.value, "attr", "") == "activated"
            and isinstance(node.slice, ast.Name)
            and node.slice.id == "str"
        ):
            findings.append(f"{where}:{node.lineno}: activated[str] is removed in Qt6: textActivated")
    if fix and edits:
        lines = text.splitlines(keepends=True)
        for line, column, insertion, replaced in sorted(edits, reverse=True):
            source = lines[line - 1].encode("utf-8")  # ast columns are UTF-8 byte offsets
            lines[line - 1] = (source[:column] + insertion.encode() + source[column + replaced :]).decode(
                "utf-8"
            )
        path.write_text("".join(lines), encoding="utf-8")
    return sorted(findings, key=lambda f: int(f.split(":")[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=[str(ROOT / "rts_mapper_plugin")])
    parser.add_argument("--fix", action="store_true", help="rewrite enums and exec_ in place")
    args = parser.parse_args(argv)
    files = []
    for given in map(Path, args.paths):
        files += sorted(given.rglob("*.py")) if given.is_dir() else [given]
    findings = [f for path in files for f in check_file(path.resolve(), args.fix)]
    print("\n".join(findings) if findings else f"Qt6-ready: {len(files)} files, no findings")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
