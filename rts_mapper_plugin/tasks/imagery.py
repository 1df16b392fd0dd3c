"""Imagery preparation as a background task."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.defaults import BANDS
from .base import CoreTask


@dataclass(frozen=True)
class PrepareImageryRequest:
    """Plain paths and parameters: what the worker thread gets (never a layer)."""

    sources: tuple[str, ...]
    out: str
    year: int | None = None
    project_gpkg: str | None = None
    sensor: str = ""  # "": from the scenes' metadata
    bands: str = BANDS
    percentiles: str | None = None
    cluster: str | None = None  # a Dask cluster: local:N or a scheduler address (None: this process)


def prepare_imagery_task(request: PrepareImageryRequest) -> CoreTask:
    """A task that prepares (and registers) one year; its result is a PreparedImage. On a
    cluster, its dashboard link goes to ``task.events`` as {"kind": "dashboard", "link": ...}."""

    def job(feedback):
        from ..core.imagery.prepare import prepare_and_register

        return prepare_and_register(
            list(request.sources),
            request.out,
            year=request.year if request.project_gpkg else None,
            project_path=request.project_gpkg,
            sensor=request.sensor or None,
            bands=request.bands,
            percentiles=request.percentiles,
            feedback=feedback,
            cluster=request.cluster,
            announce=lambda link: task.events.put({"kind": "dashboard", "link": link}),
        )

    label = f" {request.year}" if request.year else ""
    task = CoreTask(f"RTS Mapper: prepare imagery{label}", job)
    return task
