"""What every scene needs: report, screenshot, timers that report errors, waits, mouse events.

Scenes run inside the QGIS desktop (``qgis --code``); the launcher puts this folder on sys.path
and passes the scene's arguments as ``SCENE_ARGS``.
"""

import json
import traceback
from pathlib import Path

import qgis.utils
from qgis.core import QgsProject, QgsTemporalNavigationObject
from qgis.PyQt.QtCore import QEvent, QPoint, QPointF, Qt, QTimer
from qgis.PyQt.QtGui import QMouseEvent
from qgis.PyQt.QtWidgets import QApplication


class Scene:
    def __init__(self, args: dict) -> None:
        self.args = args
        self.shots = Path(args["shots"])
        self.report: dict = {}
        self.step = 0
        self.dock = None  # the dock whose outcome / status a wait watches

    def done(self, **report) -> None:
        with open(self.args["ready"], "w", encoding="utf-8") as handle:
            json.dump({**self.report, **report, "settle_s": 0.5}, handle)

    def shot(self, name: str) -> None:
        QApplication.processEvents()
        self.shots.mkdir(parents=True, exist_ok=True)
        QApplication.primaryScreen().grabWindow(0).save(str(self.shots / f"{name}.png"))
        self.report.setdefault("screenshots", []).append(f"{name}.png")

    def later(self, ms: int, function) -> None:
        def guarded():
            try:
                function()
            except Exception:
                self.done(error=traceback.format_exc())

        QTimer.singleShot(ms, guarded)

    def wait_for(self, condition, then, ms=250, timeout_s=300, waited=0.0) -> None:
        dock = self.dock
        if condition():
            self.later(300, then)
        elif dock is not None and getattr(dock, "outcome", None) == "failed":
            self.done(error=f"step {self.step}: the run failed: {dock.status.text()}")
        elif waited > timeout_s:
            self.done(error=f"timed out waiting in step {self.step}")
        else:
            self.later(ms, lambda: self.wait_for(condition, then, ms, timeout_s, waited + ms / 1000))


def canvas_point(map_point) -> QPoint:
    transform = qgis.utils.iface.mapCanvas().getCoordinateTransform()
    pixel = transform.transform(map_point)
    return QPoint(round(pixel.x()), round(pixel.y()))


def mouse(kind, point: QPoint) -> None:
    canvas = qgis.utils.iface.mapCanvas()
    button = Qt.LeftButton if kind != QEvent.MouseMove else Qt.NoButton
    buttons = Qt.LeftButton if kind == QEvent.MouseButtonPress else Qt.NoButton
    event = QMouseEvent(kind, QPointF(point), button, buttons, Qt.NoModifier)
    QApplication.sendEvent(canvas.viewport(), event)


def drag(start: QPoint, end: QPoint) -> None:
    """A vertex-tool drag: click to pick the vertex, move, click to drop it."""
    mouse(QEvent.MouseMove, start)
    QApplication.processEvents()
    mouse(QEvent.MouseButtonPress, start)
    mouse(QEvent.MouseButtonRelease, start)
    QApplication.processEvents()
    for step in range(1, 11):
        mouse(QEvent.MouseMove, start + (end - start) * step / 10)
        QApplication.processEvents()
    mouse(QEvent.MouseButtonPress, end)
    mouse(QEvent.MouseButtonRelease, end)


def open_demo_project(args: dict):
    """The demo project's years in the Time-lapse group, 2019 on the canvas; returns the plugin."""
    iface = qgis.utils.iface
    iface.mainWindow().setGeometry(QApplication.primaryScreen().availableGeometry())
    from rts_mapper_plugin.core.project.store import MappingProject
    from rts_mapper_plugin.qgis_layers.timelapse import load_time_lapse
    from rts_mapper_plugin.toolbelt.preferences import PlgSettings

    PlgSettings.load().update(project_gpkg=args["project"], model_path=args["model"])
    load_time_lapse(
        MappingProject.open(args["project"]), QgsProject.instance(), iface.mapCanvas().temporalController()
    )
    for node in QgsProject.instance().layerTreeRoot().findGroup("Time-lapse").findLayers():
        node.setItemVisibilityChecked(node.layer().name() == "2019")
    iface.mapCanvas().temporalController().setNavigationMode(QgsTemporalNavigationObject.NavigationOff)
    iface.mapCanvas().setExtent(QgsProject.instance().mapLayersByName("2019")[0].extent())
    iface.mapCanvas().refresh()
    return qgis.utils.plugins["rts_mapper_plugin"]


def open_project_file(qgz: str):
    """Open a .qgz as a user would (Project › Open), the window filling the screen; returns iface."""
    iface = qgis.utils.iface
    iface.mainWindow().setGeometry(QApplication.primaryScreen().availableGeometry())
    iface.addProject(qgz)
    return iface


def add_known_positives(args: dict, share: float = 1 / 3) -> tuple:
    """The truth slumps of the western ``share`` of the region become the project's training
    positives (the paper started from the slumps known in one subregion).

    Returns (project, truth in the project's CRS, indices of the known slumps)."""
    from rts_mapper_plugin.core.project.loop import add_positives
    from rts_mapper_plugin.core.project.store import MappingProject
    from rts_mapper_plugin.core.vectors import FeatureSet, read_features

    project = MappingProject.open(args["project"])
    truth = read_features(args["truth"]).to_crs(project.crs)
    xs = [g.centroid.x for g in truth.geometries]
    west = min(xs) + (max(xs) - min(xs)) * share
    known = [i for i, x in enumerate(xs) if x < west]
    add_positives(
        project,
        FeatureSet([truth.geometries[i] for i in known], [truth.attributes[i] for i in known], truth.crs),
        0,
        "known slumps of the western subregion",
    )
    return project, truth, known


# -- driving the desktop as a person: the helpers of tests/person.py, menus, modal dialogs --
def person_module(root: str):
    """tests/person.py of the repository, loaded by path (no `tests` package on QGIS's path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("rts_person", Path(root) / "tests" / "person.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def record_log(path: str) -> None:
    """Everything QGIS's message log says, into a file the walk reads afterwards."""
    from qgis.core import QgsApplication

    handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 (open for the whole session)

    def write(message, tag, level):
        handle.write(f"[{tag}] ({int(level)}) {message}\n")
        handle.flush()

    QgsApplication.messageLog().messageReceived.connect(write)
    record_log.keep = (handle, write)


def watch_tasks(report: dict) -> None:
    """Every task that ends in QGIS's task manager, with how it ended (Terminated shows as
    "Task failed" in QGIS)."""
    from qgis.core import QgsApplication, QgsTask

    manager = QgsApplication.taskManager()
    ended = report.setdefault("tasks", [])

    def changed(task_id, status):
        task = manager.task(task_id)
        if status in (QgsTask.Complete, QgsTask.Terminated) and task is not None:
            ended.append(
                {
                    "task": task.description(),
                    "ended": "complete" if status == QgsTask.Complete else "TERMINATED",
                }
            )

    manager.statusChanged.connect(changed)
    watch_tasks.keep = changed


def open_menu(title: str):
    """Click a menu of QGIS's menu bar (its title without "&"); returns the open QMenu."""
    from qgis.PyQt.QtTest import QTest

    bar = qgis.utils.iface.mainWindow().menuBar()
    for action in bar.actions():
        if action.text().replace("&", "") == title:
            QApplication.setActiveWindow(qgis.utils.iface.mainWindow())
            QTest.mouseClick(bar, Qt.LeftButton, Qt.NoModifier, bar.actionGeometry(action).center())
            QApplication.processEvents()
            return action.menu()
    raise AssertionError(f"no menu {title!r} in {[a.text() for a in bar.actions()]}")


def when_modal(scene: "Scene", handler, kinds=(), timeout_s: float = 60, waited: float = 0.0) -> None:
    """Call ``handler(dialog)`` once a dialog (of one of ``kinds``) is up: a person answering a
    question box or a file dialog that a click opened (the click's own call blocks meanwhile)."""
    # a modal dialog, or one that runs its own loop without being modal (QGIS's algorithm dialog)
    showing = [QApplication.activeModalWidget(), QApplication.activeWindow()]
    showing += [w for w in QApplication.topLevelWidgets() if w.isVisible()]
    widget = next((w for w in showing if w is not None and kinds and isinstance(w, kinds)), None)
    if widget is None and not kinds:
        widget = QApplication.activeModalWidget()
    if widget is not None:
        scene.later(400, lambda: handler(widget))
    elif waited > timeout_s:
        scene.done(error=f"step {scene.step}: no dialog came up within {timeout_s:.0f} s")
    else:
        QTimer.singleShot(200, lambda: when_modal(scene, handler, kinds, timeout_s, waited + 0.2))


def answer_file_dialog(person, dialog, path: str) -> None:
    """Type ``path`` into a Qt file dialog's name field and press Enter."""
    from qgis.PyQt.QtWidgets import QLineEdit

    field = dialog.findChild(QLineEdit, "fileNameEdit")
    if field is None:
        raise AssertionError(f"{dialog.windowTitle()}: not a file dialog with a file name field")
    person.replace_text(field, path)


def button(dialog, *texts: str):
    """The first visible button of ``dialog`` whose text (without "&") is one of ``texts``."""
    from qgis.PyQt.QtWidgets import QAbstractButton

    buttons = [b for b in dialog.findChildren(QAbstractButton) if b.isVisible()]
    for text in texts:
        for candidate in buttons:
            if candidate.text().replace("&", "") == text:
                return candidate
    raise AssertionError(
        f"{dialog.windowTitle()}: none of the buttons {texts} in {[b.text() for b in buttons]}"
    )
