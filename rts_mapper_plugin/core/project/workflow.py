"""Project-level steps of the workflow: each one reads and writes the mapping project.

These are what the QGIS tasks and the iterative loop call; they combine the engine (inference,
training) with the project's GeoPackage so that a step is recorded whole or not at all.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .. import gpkg
from ..progress import Feedback
from ..vectors import FeatureSet
from .store import MappingProject, RunRecord, new_run_id

if TYPE_CHECKING:  # rasterio and torch load with the step, not with the module
    from ..model.inference import InferConfig


def known_polygons(project: MappingProject) -> FeatureSet:
    """What a new inference sets aside: confirmed RTSs and every candidate already reviewed."""
    positives = project.features("training_positives")
    reviewed = project.features("candidates", "status != 'pending'")
    return FeatureSet(positives.geometries + reviewed.geometries, [], project.crs)


def infer_into_project(
    project_path: str | os.PathLike,
    model_path: str | os.PathLike,
    image_path: str | os.PathLike,
    config: InferConfig | None = None,
    extent: tuple[float, float, float, float] | None = None,
    iteration: int | None = None,
    year: int | None = None,
    set_aside_confirmed: bool = True,
    feedback: Feedback | None = None,
    image_crs: str | None = None,
    cluster: str | None = None,
    announce=None,
) -> RunRecord:
    """Run inference and record the run, its probability raster and its candidates in the project.

    The probability raster goes to ``<project folder>/probability/<run id>.tif``. Candidates touching
    a confirmed RTS (the project's training positives) or a candidate already reviewed are set
    aside and counted. On any failure or cancel nothing is recorded and no raster is left.
    ``cluster``: run on a Dask cluster (``local:N`` or a scheduler address; ``announce`` gets its
    dashboard link); the blocks it finishes are kept in ``probability/cluster-<inputs>.blocks``
    until the run is whole, so running the same model over the same image with the same settings
    again, after a cancel or a crash, goes on from them. ``image_crs``: the CRS to assume when the
    image file has none (the one its QGIS layer was given).
    """
    from rasterio.crs import CRS

    from ..model.inference import predict_raster

    project = MappingProject.open(project_path)
    iteration = project.next_iteration() if iteration is None else iteration
    run_id = new_run_id(iteration)
    prob_path = project.path.resolve().parent / "probability" / f"{run_id}.tif"
    started = gpkg.utc_now()
    known = known_polygons(project) if set_aside_confirmed else None
    if cluster:  # the same outputs, computed block by block on a Dask cluster
        from ..model.distributed import predict_on_cluster

        result = predict_on_cluster(
            model_path,
            image_path,
            prob_path,
            config,
            cluster,
            known=known,
            feedback=feedback,
            extent=extent,
            image_crs=image_crs,
            announce=announce,
            blocks_folder=prob_path.parent
            / f"cluster-{_inputs_digest(model_path, image_path, extent, config, image_crs)}.blocks",
        )
    else:
        result = predict_raster(
            model_path,
            image_path,
            prob_path,
            config,
            extent=extent,
            known=known,
            feedback=feedback,
            image_crs=image_crs,
        )
    try:
        image_crs = CRS.from_user_input(result.crs)
        candidates = result.candidates
        if image_crs != project.crs and candidates:
            moved = FeatureSet([c.geometry for c in candidates], [{}] * len(candidates), image_crs).to_crs(
                project.crs
            )
            for candidate, geometry in zip(candidates, moved.geometries):
                candidate.geometry = geometry
        for candidate in candidates:
            candidate.year, candidate.iteration = year, iteration
        run = RunRecord(
            run_id=run_id,
            iteration=iteration,
            year=year,
            image_path=project.store_path(image_path),
            model_path=project.store_path(model_path),
            prob_path=project.store_path(prob_path),
            threshold=result.threshold,
            min_area_m2=result.min_area_m2,
            set_aside_known=result.set_aside_known,
            area_km2=round(result.area_km2, 4),
            seconds=round(result.seconds, 2),
            device=result.device,
            started_at=started,
            finished_at=gpkg.utc_now(),
        )
        if feedback is not None:
            feedback.check()  # a cancel that came during the last tiles still counts
        project.add_run(run, candidates)
    except BaseException:
        Path(prob_path).unlink(missing_ok=True)
        raise
    return run


def _inputs_digest(*inputs) -> str:
    """A short name for what a run is made of (files by their absolute paths; what changed in
    them is the blocks' manifest's to see)."""
    import hashlib
    import json
    from dataclasses import asdict, is_dataclass

    def plain(value):
        if is_dataclass(value):
            return asdict(value)
        if isinstance(value, (str, os.PathLike)) and Path(value).exists():
            return str(Path(value).resolve())
        return value

    text = json.dumps([plain(v) for v in inputs], default=str, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
