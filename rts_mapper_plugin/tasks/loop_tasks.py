"""The plugin's "Next iteration" as one background task: close the iteration under review,
then train from the previous model and infer (core.loop does the work)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .base import CoreTask

if TYPE_CHECKING:  # the core's training and inference load with the job, not with the dock
    from ..core.project.loop import IterationSettings


@dataclass(frozen=True)
class NextIterationRequest:
    project_gpkg: str
    settings: IterationSettings = field(hash=False)  # one TrainConfig and one InferConfig
    close: tuple[int, ...] = ()  # the iterations under review, closed first (in order)
    negatives: tuple[int, ...] = ()  # rejected candidates of those to train on as non-RTSs


@dataclass
class NextIterationResult:
    closed: list  # the completed IterationRecords of ``close``
    started: object | None  # the new IterationRecord; None when cancelled or failed after closing
    run: object | None  # the new run (its candidates are on the map for review)


def next_iteration_task(request: NextIterationRequest) -> CoreTask:
    """Result: a :class:`NextIterationResult`. A close that succeeded stays even if the training or
    inference after it is cancelled (``task.closed`` then lists it); nothing of the new iteration
    is recorded unless it completes."""
    task: CoreTask

    def job(feedback):
        from ..core.project.loop import close_iteration, start_iteration
        from ..core.project.store import MappingProject

        project = MappingProject.open(request.project_gpkg)
        for iteration in request.close:
            task.closed.append(close_iteration(project, iteration, list(request.negatives)))
        started = start_iteration(project, request.settings, feedback)
        run = next(r for r in reversed(project.runs()) if r.iteration == started.iteration)
        return NextIterationResult(task.closed, started, run)

    task = CoreTask("RTS Mapper: next iteration", job)
    task.closed = []
    return task
