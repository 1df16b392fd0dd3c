"""Errors that the faces turn into a one-line message (CLI exit status 2, QGIS message bar)."""

from __future__ import annotations

import errno
import os
import shutil
from os import PathLike
from pathlib import Path


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


FULL = (errno.ENOSPC, errno.EDQUOT)
FULL_WORDS = ("no space left", "disk is full", "database or disk is full", "free disk space")
READ_ONLY_WORDS = ("read-only file system", "readonly database", "read-only database")


def write_failure(
    exc: BaseException, path: str | PathLike | None = None, kept: str = "nothing was kept"
) -> str:
    """What a person reads when writing an output (at ``path``) failed: the disk is full, the
    drive is read-only, or what the library said; then ``kept``, what is left. GDAL and OGR
    often say only "I/O error" or nothing: then the free space of ``path``'s drive tells."""
    said = " ".join(str(exc).split())
    code = getattr(exc, "errno", None)
    full = f"could not be written: the disk is full (free some space, then run again); {kept}"
    if code in FULL or any(w in said.lower() for w in FULL_WORDS):
        return full
    if code == errno.EROFS or any(w in said.lower() for w in READ_ONLY_WORDS) or on_read_only_volume(path):
        return f"could not be written: the drive is read-only; {kept}"
    if code == errno.EFBIG or "file too large" in said.lower():
        return f"could not be written: the file grew past what this drive or system allows; {kept}"
    if almost_full(path):  # a read-only drive may have no room either: that is said above
        return full
    return f"could not be written ({said or type(exc).__name__}); {kept}"


def is_write_failure(exc: BaseException) -> bool:
    """An error that says writing failed (full disk, read-only drive, an I/O error on write)."""
    said = str(exc).lower()
    words = (*FULL_WORDS, *READ_ONLY_WORDS, "file too large", "error writing", "write error", "writeencoded")
    return getattr(exc, "errno", None) in (*FULL, errno.EFBIG, errno.EROFS) or any(w in said for w in words)


def on_read_only_volume(path: str | PathLike | None) -> bool:
    """Is ``path``'s folder on a read-only drive (a DVD, a write-protected stick, a share)?"""
    statvfs = getattr(os, "statvfs", None)  # not on Windows: there, a write says so itself
    if path is None:
        return False
    try:
        return statvfs is not None and bool(statvfs(Path(path).parent).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def almost_full(path: str | PathLike | None) -> bool:
    """Has the drive of ``path`` less than 1 MiB free (too little for a GeoPackage journal)?"""
    if path is None:
        return False
    try:
        return shutil.disk_usage(Path(path).parent).free < 1024 * 1024
    except OSError:
        return False
