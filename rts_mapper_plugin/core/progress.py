"""Progress reporting and cancellation shared by every long core job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .errors import Cancelled

ProgressCallback = Callable[[float], None]
CancelCheck = Callable[[], bool]
StatusCallback = Callable[[str], None]


def _no_progress(_fraction: float) -> None:
    return None


def _never_cancelled() -> bool:
    return False


def _no_status(_text: str) -> None:
    return None


@dataclass
class Feedback:
    """Reports progress in [0, 1] and raises :class:`Cancelled` once the user has cancelled.

    Jobs call :meth:`step` at every natural boundary (a batch, a window, a file); it is both the
    progress report and the cancellation point, so a cancel is honoured within one step.

    Args:
        progress: called with the fraction done, 0 to 1.
        is_cancelled: returns True once the user asked to stop.
        status: shown beside the progress while the job runs (a line of live figures, e.g. a
            cluster's blocks done and throughput); each call replaces the last.
    """

    progress: ProgressCallback = _no_progress
    is_cancelled: CancelCheck = _never_cancelled
    status: StatusCallback = _no_status

    def step(self, fraction: float) -> None:
        """Report ``fraction`` done (clamped to [0, 1]); raise Cancelled if asked to stop."""
        self.check()
        self.progress(min(1.0, max(0.0, float(fraction))))

    def check(self) -> None:
        """Raise :class:`Cancelled` if the user asked to stop."""
        if self.is_cancelled():
            raise Cancelled("cancelled by the user")

    def scaled(self, start: float, end: float) -> Feedback:
        """A Feedback for a sub-job that maps its 0..1 onto ``start``..``end`` of this one."""
        span = end - start
        return Feedback(lambda f: self.progress(start + span * f), self.is_cancelled, self.status)
