"""No path from a user's file to code execution: the plugin's code is scanned for the ways there
are (unpickling, eval/exec, shell strings, SQL built from text), and a pickle with code in it,
renamed as a model, is refused without being loaded.

A scan finding that is safe is marked on its line (or the line above) with ``# sql-safe: why``;
anything new fails this test until someone has looked at it.
"""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import pytest

from rts_mapper_plugin.core.errors import RtsMapperError

PACKAGE = Path(__file__).resolve().parents[2] / "rts_mapper_plugin"
SOURCES = sorted(PACKAGE.rglob("*.py"))
SQL_WORDS = ("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "PRAGMA", "WITH", "REPLACE")
QUOTING = {"quoted", "_identifier", "_column_type"}  # core.gpkg: checked identifiers and column types


def trees():
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        yield path.relative_to(PACKAGE.parent), text.splitlines(), ast.parse(text)


def called(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def test_nothing_unpickles_evaluates_or_runs_a_shell():
    found = []
    for where, _lines, tree in trees():
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if any(
                    n.split(".")[0] in ("pickle", "cPickle", "marshal", "shelve", "dill", "joblib")
                    for n in names
                ):
                    found.append(f"{where}:{node.lineno}: imports a pickle-like module")
            if not isinstance(node, ast.Call):
                continue
            name = called(node)
            keywords = {k.arg: k.value for k in node.keywords}
            if name in ("eval", "exec", "compile") and isinstance(node.func, ast.Name):
                found.append(f"{where}:{node.lineno}: {name}()")
            if (
                name == "load"
                and isinstance(node.func, ast.Attribute)
                and getattr(node.func.value, "id", "") == "torch"
            ):
                weights_only = keywords.get("weights_only")
                if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                    found.append(f"{where}:{node.lineno}: torch.load without weights_only=True (unpickles)")
            owner = getattr(getattr(node.func, "value", None), "id", "")
            if name in ("system", "popen") and owner == "os":
                found.append(f"{where}:{node.lineno}: os.{name} (a shell string)")
            shell = keywords.get("shell")
            if shell is not None and not (isinstance(shell, ast.Constant) and shell.value is False):
                found.append(f"{where}:{node.lineno}: a subprocess with shell=")
            first = node.args[0] if node.args else None
            one_string = isinstance(first, (ast.JoinedStr, ast.BinOp)) or (
                isinstance(first, ast.Constant) and isinstance(first.value, str)
            )
            if name in ("run", "Popen", "call", "check_call", "check_output") and one_string:
                found.append(f"{where}:{node.lineno}: a command as one string (use an argument list)")
    assert not found, "\n".join(found)


def _safe_expression(expr: ast.AST, assigned: dict[str, ast.AST], depth: int = 0) -> bool:
    """Is ``{expr}`` in an SQL f-string made only of checked identifiers and constants?"""
    if depth > 8:
        return False
    if isinstance(expr, ast.Constant):
        return True
    if isinstance(expr, ast.Call) and called(expr) in QUOTING:
        return True
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):  # a local lambda that quotes
        helper = assigned.get(expr.func.id)
        return isinstance(helper, ast.Lambda) and _safe_expression(helper.body, assigned, depth + 1)
    if isinstance(expr, ast.Name):
        if expr.id.isupper():  # a module constant
            return True
        value = assigned.get(expr.id)
        return value is not None and _safe_expression(value, assigned, depth + 1)
    if isinstance(expr, ast.Call) and called(expr) == "join":  # ", ".join(quoted(c) for c in ...)
        argument = expr.args[0] if expr.args else None
        if isinstance(argument, (ast.GeneratorExp, ast.ListComp)):
            return _safe_expression(argument.elt, assigned, depth + 1)
        return isinstance(argument, ast.Name) and argument.id.isupper()  # ", ".join(CONSTANT_NAMES)
    if isinstance(expr, ast.JoinedStr):
        return all(
            _safe_expression(v.value, assigned, depth + 1)
            for v in expr.values
            if isinstance(v, ast.FormattedValue)
        )
    if isinstance(expr, ast.IfExp):  # "" if ... else f"..."
        return _safe_expression(expr.body, assigned, depth + 1) and _safe_expression(
            expr.orelse, assigned, depth + 1
        )
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        return _safe_expression(expr.left, assigned, depth + 1) and _safe_expression(
            expr.right, assigned, depth + 1
        )
    return False


def sql_interpolations():
    """(where, line text, expression) for every value put into an SQL f-string or format()."""
    for where, lines, tree in trees():
        for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
            assigned = {}
            for node in ast.walk(function):
                if not isinstance(node, ast.Assign):
                    continue
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        assigned[target.id] = node.value
                    elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                        for name, value in zip(target.elts, node.value.elts):
                            if isinstance(name, ast.Name):
                                assigned[name.id] = value
            for node in ast.walk(function):
                if not isinstance(node, ast.JoinedStr):
                    continue
                text = "".join(
                    v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
                )
                if not text.lstrip().startswith(tuple(f"{word} " for word in SQL_WORDS)):
                    continue
                for value in node.values:
                    if isinstance(value, ast.FormattedValue) and not _safe_expression(value.value, assigned):
                        near = "\n".join(
                            lines[max(0, node.lineno - 2) : node.lineno]
                        )  # its line, the one above
                        yield where, near, ast.unparse(value.value), node.lineno


def test_sql_is_built_from_checked_identifiers_only():
    """Values go in as parameters (?); only identifiers checked and quoted by core.gpkg (or a
    constant) are put into SQL text. Names read from a GeoPackage therefore cannot inject SQL: an
    odd table name is refused by the identifier check before any SQL is run."""
    unreviewed = sorted(
        {
            f"{where}:{line}: {{{expr}}}"
            for where, text, expr, line in sql_interpolations()
            if "# sql-safe:" not in text
        }
    )
    assert not unreviewed, "SQL text built from values (use ? parameters or gpkg.quoted):\n" + "\n".join(
        unreviewed
    )


def test_a_table_name_from_a_file_cannot_inject_sql():
    from rts_mapper_plugin.core import gpkg

    assert gpkg.quoted("candidates") == '"candidates"'
    for hostile in ('x"; DROP TABLE reviews; --', "a b", "rts]", ""):
        with pytest.raises(ValueError):
            gpkg.quoted(hostile)
    assert gpkg._column_type("TEXT NOT NULL CHECK (d IN ('a', 'b'))")
    for hostile in ("TEXT); DROP TABLE reviews; --", "TEXT /* x */", 'TEXT "x"', "TEXT DEFAULT 'a;b'"):
        with pytest.raises(ValueError):
            gpkg._column_type(hostile)


class RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "pickle was loaded"))


@pytest.mark.parametrize("name", ["model.safetensors", "weights.pth", "weights.pt"])
def test_a_pickle_renamed_as_a_model_is_refused_without_running(tmp_path, name):
    from rts_mapper_plugin.core.model.model_file import load_model, read_card

    marker = tmp_path / "ran"
    path = tmp_path / name
    path.write_bytes(pickle.dumps({"state_dict": RunsCode(str(marker))}))
    with pytest.raises(RtsMapperError):
        if name.endswith(".safetensors"):
            read_card(path)
        else:
            load_model(path)
    if not name.endswith(".safetensors"):  # local ImageNet weights in PyTorch format
        torch = pytest.importorskip("torch")
        from rts_mapper_plugin.core.model.model_file import create_model, load_encoder_weights

        with pytest.raises((RtsMapperError, pickle.UnpicklingError, RuntimeError)):
            load_encoder_weights(create_model("mobilenet_v2"), path)
        del torch
    assert not marker.exists(), "the pickle's code ran"
