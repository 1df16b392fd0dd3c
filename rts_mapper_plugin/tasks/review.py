"""The Review dock's year views, cut from the registered rasters in the background, and what the
year stack suggests for the candidate (core.review.suggestions), read once its views are up."""

from __future__ import annotations

from dataclasses import dataclass

from .base import CoreTask


@dataclass(frozen=True)
class YearViewsRequest:
    """One candidate's views: plain values, never a layer."""

    candidate_id: int
    years: tuple  # core.project.store.YearLayer (paths and years)
    geometry: object  # a shapely geometry in the project's CRS
    size_px: int


def year_views_task(request: YearViewsRequest) -> CoreTask:
    """A task whose result is the candidate's labelled frames (core.review.timelapse.Frame),
    one per year; the GUI turns them into pixmaps when it succeeds."""

    def job(_feedback):
        from ..core.review.timelapse import labelled_frames

        return labelled_frames(list(request.years), request.geometry, request.size_px)

    return CoreTask(f"RTS Mapper: year views of candidate {request.candidate_id}", job)


def suggestion_task(request: YearViewsRequest) -> CoreTask:
    """A task whose result is what the year stack suggests for the candidate."""

    def job(_feedback):
        from ..core.review.suggestions import suggest

        return suggest(list(request.years), request.geometry)

    return CoreTask(f"RTS Mapper: suggestion for candidate {request.candidate_id}", job)
