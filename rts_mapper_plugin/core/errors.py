"""Errors that the faces turn into a one-line message (CLI exit status 2, QGIS message bar)."""

from __future__ import annotations

from os import PathLike


class RtsMapperError(Exception):
    """Bad input or an impossible request: the message names the file and what is wrong.

    Args:
        message: what is wrong, in one line, in words a user understands.
        path: the file or layer concerned, if there is one.
    """

    def __init__(self, message: str, path: str | PathLike | None = None) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class MissingDependencyError(RtsMapperError):
    """An optional package (torch, segmentation-models-pytorch...) cannot be imported."""


class Cancelled(Exception):  # noqa: N818 (it is an outcome, not a failure)
    """The user cancelled a long job; whatever it was writing has been removed."""
