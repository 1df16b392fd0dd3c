"""Open the real Processing dialog of RTS Mapper algorithms, as a person does, in a fresh process.

    python tests/qgis/algorithm_dialogs.py SPEC.json REPORT.json

For each run in SPEC: create the algorithm's ``AlgorithmDialog`` (what the toolbox and the
plugin's menu open), set every parameter through its widget wrapper (the layer combos get
layers of the project, as a person picks them), check that the dialog now holds those values,
click Run, wait for the algorithm to finish, note the outcome and close the dialog. A message
box that pops up (a refused value, a CRS question) is read, closed and reported as a failure.

Runs in its own process because the bug it guards against (QGIS 3.22 crashing in a field
parameter's widget when its parent layer parameter holds a raster) kills the process with
SIGSEGV: the caller sees the exit status instead of losing its own session.
"""

from __future__ import annotations

import faulthandler
import json
import sys
import time
from pathlib import Path

faulthandler.enable(all_threads=True)

from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsProcessingContext,
    QgsProject,
    QgsRasterLayer,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import Qt, QTimer  # noqa: E402
from qgis.PyQt.QtTest import QTest  # noqa: E402
from qgis.PyQt.QtWidgets import QApplication, QDialogButtonBox, QMessageBox, QTextEdit  # noqa: E402


def load_layers(spec: dict) -> dict:
    layers = {}
    for key, item in spec.items():
        if item["kind"] == "raster":
            layer = QgsRasterLayer(item["path"], item.get("name", key), "gdal")
        else:
            layer = QgsVectorLayer(item["path"], item.get("name", key), "ogr")
        if not layer.isValid():
            raise SystemExit(f"cannot load {item['path']}")
        QgsProject.instance().addMapLayer(layer)
        layers[key] = layer
    return layers


def value_of(given, layers: dict):
    if isinstance(given, dict) and "layer" in given:
        return layers[given["layer"]].id()
    if isinstance(given, dict) and "layers" in given:
        return [layers[k].id() for k in given["layers"]]
    return given


def source_of(value) -> str:
    """A layer id, a layer or a path, as the layer's source (what a widget may hand back)."""
    if hasattr(value, "source"):
        return value.source()
    layer = QgsProject.instance().mapLayer(str(value))
    return layer.source() if layer is not None else str(value)


def close_message_boxes(notes: list) -> None:
    """A modal box would block the run: read it, close it, and note it."""
    widget = QApplication.activeModalWidget()
    if isinstance(widget, QMessageBox):
        notes.append(f"{widget.windowTitle()}: {widget.text()}")
        button = widget.escapeButton() or widget.defaultButton() or widget.buttons()[0]
        button.click()


def run_dialog(run: dict, layers: dict, timeout_s: float) -> dict:
    from processing.gui.AlgorithmDialog import AlgorithmDialog

    algorithm = QgsApplication.processingRegistry().createAlgorithmById(run["algorithm"])
    if algorithm is None:
        return {"algorithm": run["algorithm"], "ok": False, "error": "no such algorithm"}
    dialog = AlgorithmDialog(algorithm, False, None)
    dialog.show()
    QApplication.processEvents()
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    wrappers = dialog.mainWidget().wrappers
    expected = {}
    for name, given in run["parameters"].items():
        value = value_of(given, layers)
        wrappers[name].setParameterValue(value, context)
        QApplication.processEvents()
        expected[name] = value
    held = dialog.mainWidget().createProcessingParameters()
    refused = {}
    for name, value in expected.items():
        got = held.get(name)
        got = getattr(got, "sink", got)  # an output definition: its destination
        got = got.staticValue() if hasattr(got, "staticValue") else got
        if isinstance(value, list):
            same = [source_of(v) for v in value] == [source_of(v) for v in (got or [])]
        elif isinstance(value, float) or isinstance(got, float):
            same = got is not None and abs(float(got) - float(value)) < 1e-9
        else:
            same = source_of(got) == source_of(value)
        if not same:
            refused[name] = f"set {value!r}, the dialog holds {got!r}"
    outcome: dict = {"algorithm": run["algorithm"], "refused": refused, "messages": []}
    finished = {}
    dialog.algorithmFinished.connect(lambda ok, results: finished.update(ok=ok, results=results))
    watchdog = QTimer()
    watchdog.timeout.connect(lambda: close_message_boxes(outcome["messages"]))
    watchdog.start(300)
    run_button = dialog.buttonBox().button(QDialogButtonBox.Ok)
    started = time.monotonic()
    QTest.mouseClick(run_button, Qt.LeftButton)
    while "ok" not in finished and time.monotonic() - started < timeout_s:
        QApplication.processEvents()
        if outcome["messages"] and not dialog.cancelButton().isEnabled():
            break  # refused before it started
        time.sleep(0.02)
    watchdog.stop()
    outcome["seconds"] = round(time.monotonic() - started, 1)
    outcome["ok"] = bool(finished.get("ok"))
    results = finished.get("results") or {}
    outcome["results"] = {k: str(v) for k, v in results.items() if k not in ("CHILD_RESULTS", "CHILD_INPUTS")}
    if "ok" not in finished:
        outcome["error"] = "did not finish" if not outcome["messages"] else "refused"
    text_log = dialog.findChild(QTextEdit, "txtLog")
    outcome["log_tail"] = text_log.toPlainText()[-1500:] if text_log is not None else ""
    dialog.close()
    dialog.deleteLater()
    QApplication.processEvents()
    return outcome


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    report_path = Path(sys.argv[2])
    app = QgsApplication([], True)
    app.initQgis()
    sys.path.insert(0, str(Path(QgsApplication.pkgDataPath()) / "python" / "plugins"))
    from processing.core.Processing import Processing

    Processing.initialize()
    from rts_mapper_plugin.processing.provider import RtsMapperProvider

    provider = RtsMapperProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    layers = load_layers(spec["layers"])
    outcomes = []
    for run in spec["runs"]:
        print(f"dialog: {run['algorithm']}", flush=True)
        outcomes.append(run_dialog(run, layers, spec.get("timeout_s", 600)))
        report_path.write_text(json.dumps(outcomes, indent=1), encoding="utf-8")  # kept if we crash later
    QgsApplication.processingRegistry().removeProvider(provider)
    QgsProject.instance().clear()
    app.exitQgis()
    return 0


if __name__ == "__main__":
    sys.exit(main())
