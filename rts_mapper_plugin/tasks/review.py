"""The Review dock's year views, cut from the registered rasters in the background, and what
the year stack suggests for the candidate (core.review.suggestions), read in the same pass."""

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
    """A task whose result is (the candidate's labelled frames, one per year, as
    core.review.timelapse.Frame; its suggestion); the GUI turns the frames into pixmaps."""

    def job(_feedback):
        from ..core.review.suggestions import suggest
        from ..core.review.timelapse import labelled_frames

        years = list(request.years)
        return labelled_frames(years, request.geometry, request.size_px), suggest(years, request.geometry)

    return CoreTask(f"RTS Mapper: year views of candidate {request.candidate_id}", job)
