"""Review step latency: decision key -> next candidate shown with every year view rendered.

A 2000 x 2000 px synthetic region with five registered years, its truth RTSs and look-alikes as
candidates, the real Review dock in a real QgsApplication (offscreen) with a real map canvas.
Each step: the reviewer "thinks" (events keep flowing, prefetching goes on), presses R, and
the clock runs until the next candidate's five year views are on screen. Measured with a
think time of 0.5 s (a fast reviewer; the paper's experts averaged seconds per candidate) and
with none (keys hammered back to back, prefetch cannot keep up).
"""

from __future__ import annotations

import os
import shutil
import statistics
import time

from .common import OUT, machine, record


class _Iface:
    """The parts of QgisInterface the dock uses on the decision path, with a real canvas."""

    def __init__(self) -> None:
        from qgis.gui import QgsMapCanvas, QgsMessageBar

        self.canvas = QgsMapCanvas()
        self.canvas.resize(900, 700)
        self.bar = QgsMessageBar()

    def mapCanvas(self):  # noqa: N802
        return self.canvas

    def messageBar(self):  # noqa: N802
        return self.bar


def _steps(app, dock, count: int, think_s: float) -> list[float]:
    from qgis.PyQt.QtCore import Qt
    from qgis.PyQt.QtTest import QTest

    latencies = []
    for _ in range(count):
        until = time.perf_counter() + think_s
        while time.perf_counter() < until:
            app.processEvents()
            time.sleep(0.005)
        if dock.index >= len(dock.queue) - 1:
            break
        started = time.perf_counter()
        QTest.keyClick(dock, Qt.Key_R)
        while not dock.views_ready():
            app.processEvents()
            time.sleep(0.001)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def main() -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication, QgsProject

    from rts_mapper_plugin.core.project.store import MappingProject
    from rts_mapper_plugin.gui.project_picker import current_project
    from rts_mapper_plugin.gui.review_dock import ReviewDock
    from rts_mapper_plugin.qgis_layers.layers import candidates_layer
    from rts_mapper_plugin.qgis_layers.timelapse import load_time_lapse
    from rts_mapper_plugin.tasks.base import TaskRunner
    from tests.data.fixtures import review_project

    app = QgsApplication.instance() or QgsApplication([], True)
    app.initQgis()
    cache = OUT / "cache" / "review_2000"
    if not (cache / "done").exists():
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        _, _, run_id = review_project(cache, size=2000, seed=3)
        (cache / "done").write_text(run_id)
    run_id = (cache / "done").read_text()
    work = OUT / "review_latency"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(cache, work, ignore=shutil.ignore_patterns("region"))
    project = MappingProject.open(work / "project.gpkg")
    load_time_lapse(project, QgsProject.instance())
    layer = candidates_layer(project.path, run_id, "Candidates")
    QgsProject.instance().addMapLayer(layer)
    iface = _Iface()
    results = {}
    for label, think_s, reviewer in (("think_0.5s", 0.5, "bench-a"), ("no_think", 0.0, "bench-b")):
        dock = ReviewDock(iface, TaskRunner())
        dock.show()
        current_project().set(str(project.path))  # as the project picker sets it
        dock.set_combo.setCurrentIndex(dock.set_combo.findData(run_id))
        dock.reviewer.setText(reviewer)
        dock.start_review()
        while not dock.views_ready():
            app.processEvents()
        latencies = _steps(app, dock, 40, think_s)
        dock.shutdown()
        dock.close()
        results[label] = {
            "steps": len(latencies),
            "median_ms": round(statistics.median(latencies), 1),
            "p90_ms": round(sorted(latencies)[int(0.9 * (len(latencies) - 1))], 1),
            "max_ms": round(max(latencies), 1),
        }
    summary = {
        "machine": machine(),
        "region_px": 2000,
        "years": len(project.years()),
        "candidates": len(dock.queue),
        "results": results,
    }
    record("review_latency", summary)
    return summary
