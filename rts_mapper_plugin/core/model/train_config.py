"""Training settings, apart from training itself: the command line and the docks read their
defaults without importing torch, shapely or the chip code."""

from __future__ import annotations

from dataclasses import dataclass

from .. import defaults

PRECISIONS = ("auto", "bfloat16", "float32")


@dataclass
class TrainConfig:
    """Training settings; the defaults suit training on a few hundred chips of real imagery."""

    encoder: str = defaults.ENCODER
    epochs: int = defaults.EPOCHS
    batch_size: int = defaults.BATCH_SIZE
    crop_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    warmup_share: float = 0.03  # of all steps, linear from 0 before the cosine
    patience: int = 8
    min_delta: float = 0.0  # a validation score must beat the best by more than this to count
    crops_per_chip: int = 4
    positive_crop_share: float = 0.6
    scale_range: tuple[float, float] = (0.7, 1.4)  # zoom of a crop: slumps of every size, other pixel sizes
    precision: str = "auto"  # bfloat16 autocast where the device runs it natively, else float32
    seed: int = 0
    device: str = defaults.DEVICE
    imagenet_weights: str | None = None
    init_model: str | None = None  # fine-tune from a previous model file (the iterative loop)
    tile_size: int = defaults.TILE_SIZE
    overlap: int = defaults.OVERLAP
    threshold: float = defaults.THRESHOLD  # used as is without validation chips; calibrated otherwise
    min_area_m2: float = defaults.MIN_AREA_M2
