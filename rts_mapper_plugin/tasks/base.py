"""The one place where core jobs meet threads.

A :class:`CoreTask` runs one core function in QGIS's task manager. Its contract:

* it is given plain paths and parameters (a frozen request dataclass), never a QgsMapLayer;
* ``run()`` (worker thread) calls the core job with a :class:`Feedback` wired to the task's
  progress and cancel flag, and stores the result or the error instead of raising;
* ``finished()`` (GUI thread) emits ``succeeded``, ``failed`` or ``cancelled``; layers are made
  and the message bar is used only in slots connected to those signals;
* a cancel is not a failure: the task ends as complete in QGIS's task manager (no "Task failed")
  and ``cancelled`` is emitted.

Never in ``run()`` or anything it calls: touching layers, the project, the canvas or widgets,
emitting Qt signals to the GUI, or ``print``. Progress goes through ``setProgress`` (which QGIS
forwards to the GUI safely); richer live data (training curves) through a queue that the GUI
polls (see :attr:`CoreTask.events`).
"""

from __future__ import annotations

import logging
import queue
import traceback
from collections.abc import Callable
from typing import Any

from qgis.core import QgsApplication, QgsTask
from qgis.PyQt.QtCore import pyqtSignal

from ..core.errors import Cancelled, RtsMapperError
from ..core.progress import Feedback

LOGGER = logging.getLogger(__name__)

Job = Callable[[Feedback], Any]


class CoreTask(QgsTask):
    """Runs ``job(feedback)`` off the GUI thread; reports the outcome on the GUI thread."""

    succeeded = pyqtSignal(object)
    failed = pyqtSignal(str)
    cancelled = pyqtSignal()

    def __init__(self, description: str, job: Job) -> None:
        super().__init__(description, QgsTask.Flag.CanCancel)
        self._job = job
        self.result: Any = None
        self.error: str | None = None
        self.details: str = ""
        self.was_cancelled = False
        # Worker -> GUI side channel for live data; the GUI drains it with a timer.
        self.events: queue.SimpleQueue = queue.SimpleQueue()

    def feedback(self) -> Feedback:
        return Feedback(
            progress=lambda f: self.setProgress(100.0 * f),
            is_cancelled=self.isCanceled,
            status=lambda text: self.events.put({"kind": "status", "text": text}),
        )

    def run(self) -> bool:
        try:
            self.result = self._job(self.feedback())
            return True
        except Cancelled:
            self.was_cancelled = True
        except RtsMapperError as exc:
            self.error = str(exc)
        except MemoryError:
            self.error = "not enough memory: try a smaller batch size or extent"
        except Exception as exc:  # report, never crash QGIS from a worker thread
            self.error = f"unexpected error: {type(exc).__name__}: {exc}"
            self.details = traceback.format_exc()
        if self.isCanceled() and self.error is None:
            self.was_cancelled = True
        # A cancel the user asked for ended the job cleanly: end as "complete", so that QGIS's
        # task manager does not show it as a failed task; finished() reports the cancel.
        return self.was_cancelled

    def finished(self, ok: bool) -> None:
        if self.was_cancelled or (not ok and self.error is None and self.isCanceled()):
            self.cancelled.emit()  # cancelled while queued, QGIS calls finished(False) itself
        elif ok:
            self.succeeded.emit(self.result)
        else:
            if self.details:
                LOGGER.error("%s failed:\n%s", self.description(), self.details)
            self.failed.emit(self.error or "the task stopped without saying why")


class TaskRunner:
    """Starts tasks and keeps a strong reference to each until it ends.

    A Python QgsTask that nothing references is garbage-collected and silently never runs.
    """

    def __init__(self) -> None:
        self._running: set[CoreTask] = set()

    def start(self, task: CoreTask) -> CoreTask:
        self._running.add(task)
        task.taskCompleted.connect(lambda: self._running.discard(task))
        task.taskTerminated.connect(lambda: self._running.discard(task))
        QgsApplication.taskManager().addTask(task)
        return task

    @property
    def running(self) -> list[CoreTask]:
        return list(self._running)

    def cancel_all(self) -> None:
        for task in list(self._running):
            task.cancel()
