"""Inference and training as background tasks: plain requests in, core results out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..core.defaults import CHIP_BUFFER_M, CHIP_SIZE
from .base import CoreTask

if TYPE_CHECKING:  # shapely and rasterio load with the job, not with the dock
    from ..core.model.inference import InferConfig
    from ..core.model.training import TrainConfig
    from ..core.vectors import FeatureSet


@dataclass(frozen=True)
class InferenceRequest:
    """What the worker gets: paths and numbers, never a layer."""

    project_gpkg: str
    model_path: str
    image_path: str
    config: InferConfig  # core.inference.InferConfig, as the face filled it in
    extent: tuple[float, float, float, float] | None = None  # in the image's CRS
    iteration: int | None = None
    year: int | None = None
    image_crs: str | None = None  # WKT: the image layer's CRS, used when the file has none
    cluster: str | None = None  # a Dask cluster: local:N or a scheduler address (None: this process)


def inference_task(request: InferenceRequest) -> CoreTask:
    """Result: the RunRecord stored in the project (candidates included). On a cluster, its
    dashboard link goes to ``task.events`` as {"kind": "dashboard", "link": ...}."""

    def job(feedback):
        from ..core.project.workflow import infer_into_project

        return infer_into_project(
            request.project_gpkg,
            request.model_path,
            request.image_path,
            request.config,
            extent=request.extent,
            iteration=request.iteration,
            year=request.year,
            feedback=feedback,
            image_crs=request.image_crs,
            cluster=request.cluster,
            announce=lambda link: task.events.put({"kind": "dashboard", "link": link}),
        )

    task = CoreTask(f"RTS Mapper: inference on {request.image_path.rsplit('/', 1)[-1]}", job)
    return task


@dataclass(frozen=True)
class TrainingRequest:
    images: tuple[str, ...]
    positives: str | FeatureSet  # a vector URI (path or path|layername=x), or features
    negatives: str | FeatureSet | None
    chips_dir: str
    model_out: str
    config: TrainConfig = field(hash=False)  # core.training.TrainConfig, as the dock filled it in
    chip_size: int = CHIP_SIZE
    buffer_m: float = CHIP_BUFFER_M
    # (image, WKT of its layer's CRS), used for an image file that has no CRS of its own
    image_crs: tuple[tuple[str, str], ...] = ()


def training_task(request: TrainingRequest) -> CoreTask:
    """Cut chips, then train; per-epoch figures go to ``task.events`` for the live curve."""
    task: CoreTask

    def job(feedback):
        from ..core.model.chips import make_chips
        from ..core.model.training import train_model
        from ..core.model.weights import DOCK_ALTERNATIVE, fetch_imagenet_weights, is_imagenet

        config = request.config
        if is_imagenet(config.imagenet_weights) and not config.init_model:
            # before the chips are cut: offline fails at once, pointing to the dock's file choice
            fetch_imagenet_weights(config.encoder, alternative=DOCK_ALTERNATIVE)
        chips = make_chips(
            list(request.images),
            request.positives,
            request.negatives,
            request.chips_dir,
            size=request.chip_size,
            buffer_m=request.buffer_m,
            feedback=feedback.scaled(0.0, 0.05),
            image_crs=dict(request.image_crs),
        )
        task.events.put({"kind": "chips", **chips.summary()})
        return train_model(
            chips,
            request.model_out,
            config,
            feedback=feedback.scaled(0.05, 1.0),
            on_epoch=lambda entry: task.events.put({"kind": "epoch", **entry}),
            on_estimate=lambda estimate: task.events.put(
                {"kind": "estimate", "text": estimate.describe(), "total_s": estimate.total_seconds}
            ),
        )

    task = CoreTask(f"RTS Mapper: training {request.config.encoder}", job)
    return task


def onnx_export_task(model_path: str, out: str) -> CoreTask:
    """Write a model as ONNX for the Deepness plugin and onnxruntime (see core.model.onnx_export)."""

    def job(feedback):
        from ..core.model.onnx_export import export_onnx

        feedback.step(0.05)
        path = export_onnx(model_path, out)
        feedback.step(1.0)
        return path

    return CoreTask("RTS Mapper: export a model as ONNX", job)
