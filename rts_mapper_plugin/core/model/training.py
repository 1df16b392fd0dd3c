"""Training DeepLabv3+ on training chips, with a recipe meant for real imagery.

Random crops (most of them on a slump) at a random scale, with flips, 90-degree rotations and
the colour changes that real scenes bring (brightness, contrast, gamma, saturation, hue, a
per-band gain, blur, sensor noise); Dice + BCE loss (suited to a small foreground) that ignores
nodata; a cosine learning rate after a short warm-up; bfloat16 autocast where the processor runs
it natively (twice as fast on this CPU, see docs/benchmarks.md). Each epoch scores the
validation chips the way a mapping is scored: polygon F1 at IoU 0.5 over a grid of thresholds and
minimum areas; the epoch with the best F1 is kept and its operating point (threshold, minimum
area) is written into the card, so inference uses the calibrated values. Early stopping on that
F1; the best model saved as soon as it improves (so a cancel keeps it); a resumable checkpoint
after each epoch; progress and cancel per batch; CUDA when present. Each epoch is seeded from
(seed, epoch), so a resumed run repeats an unbroken one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import defaults
from ..errors import Cancelled, RtsMapperError
from ..progress import Feedback
from ..raster_io import check_writable
from .chips import IGNORE, Chip, ChipSet, load_chip_set
from .evaluation import count_components
from .model_file import (
    ModelCard,
    configure_threads,
    create_model,
    load_model,
    pick_device,
    read_card,
    require_torch,
    save_model,
    save_safetensors,
)
from .train_config import PRECISIONS, TrainConfig
from .weights import load_start_weights

EpochCallback = Callable[[dict], None]
# The operating points tried on the validation chips each epoch (threshold x minimum area).
THRESHOLD_GRID = tuple(round(0.1 + 0.05 * i, 2) for i in range(15))  # 0.10 .. 0.80
MIN_AREA_GRID_M2 = (100.0, 250.0, defaults.MIN_AREA_M2, 1000.0)


@dataclass
class TrainResult:
    model_path: Path
    card: ModelCard
    history: list[dict]
    best_epoch: int
    best_val_iou: float | None  # pixel IoU at the best epoch; None when there were no validation chips
    epochs_run: int
    stopped_early: bool
    seconds: float
    device: str
    notes: list[str] = field(default_factory=list)
    best_val_f1: float | None = None  # polygon F1 at IoU 0.5 at the calibrated operating point


@dataclass
class TrainingEstimate:
    """The expected duration of a run, from timed steps of the real loop on this machine."""

    seconds_per_step: float
    steps_per_epoch: int
    validation_seconds: float
    epochs: int
    device: str
    precision: str

    @property
    def seconds_per_epoch(self) -> float:
        return self.seconds_per_step * self.steps_per_epoch + self.validation_seconds

    @property
    def total_seconds(self) -> float:
        return self.seconds_per_epoch * self.epochs

    def describe(self) -> str:
        """ "30 epochs ≈ 1 h 25 min on this CPU (1.05 s per step, 200 steps per epoch)"."""
        where = "this CPU" if self.device == "cpu" else f"this GPU ({self.device})"
        return (
            f"{self.epochs} epochs ≈ {format_duration(self.total_seconds)} on {where} "
            f"({self.seconds_per_step:.2f} s per step, {self.steps_per_epoch} steps per epoch, "
            f"{self.precision}; early stopping may end it sooner)"
        )


def format_duration(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class ChipData:
    """Reads chips on demand (a small cache keeps the most used ones)."""

    def __init__(self, chip_set: ChipSet, chips: list[Chip]) -> None:
        self.folder = chip_set.folder
        self.chips = chips
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._positives: dict[int, np.ndarray] = {}

    def positives(self, index: int) -> np.ndarray:
        """(n, 2) row/col of the chip's slump pixels (found once: crops are centred on them)."""
        if index not in self._positives:
            self._positives[index] = np.argwhere(self.load(index)[1] == 1)
        return self._positives[index]

    def __len__(self) -> int:
        return len(self.chips)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if index not in self._cache:
            import rasterio

            chip = self.chips[index]
            with (
                rasterio.open(self.folder / chip.image) as image,
                rasterio.open(self.folder / chip.label) as label,
            ):
                pair = (image.read(), label.read(1))
            if len(self._cache) > 2048:
                self._cache.pop(next(iter(self._cache)))
            self._cache[index] = pair
        return self._cache[index]


def normalise(rgb_uint8: np.ndarray, card: ModelCard) -> np.ndarray:
    """(…, 3, h, w) uint8 -> float32 normalised as the card says."""
    norm = card.normalisation
    mean = np.asarray(norm["mean"], dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(norm["std"], dtype=np.float32).reshape(3, 1, 1)
    return (rgb_uint8.astype(np.float32) * np.float32(norm["scale"]) - mean) / std


def _crop(
    image, label, size, rng, positive_share, scale_range=(1.0, 1.0), positive=None
) -> tuple[np.ndarray, np.ndarray]:
    """A ``size`` crop (most centred near a slump pixel) of the chip zoomed by a random factor."""
    low, high = scale_range
    zoom = float(np.exp(rng.uniform(np.log(low), np.log(high)))) if high > low else 1.0
    source = max(8, round(size / zoom))
    _, height, width = image.shape
    if height < source or width < source:  # pad small chips with nodata
        pad_h, pad_w = max(0, source - height), max(0, source - width)
        image = np.pad(image, ((0, 0), (0, pad_h), (0, pad_w)))
        label = np.pad(label, ((0, pad_h), (0, pad_w)), constant_values=IGNORE)
        _, height, width = image.shape
    if positive is None:
        positive = np.argwhere(label == 1)
    if len(positive) and rng.random() < positive_share:
        row, col = positive[rng.integers(len(positive))]
        margin = max(1, source // 8)
        top = int(np.clip(row - rng.integers(margin, source - margin + 1), 0, height - source))
        left = int(np.clip(col - rng.integers(margin, source - margin + 1), 0, width - source))
    else:
        top = int(rng.integers(0, height - source + 1))
        left = int(rng.integers(0, width - source + 1))
    image = image[:, top : top + source, left : left + source]
    label = label[top : top + source, left : left + source]
    if source != size:
        image, label = _resize(image, label, size)
    return image, label


def _resize(image: np.ndarray, label: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear for the image (torch: a few ms), nearest for the label and the nodata mask."""
    import torch

    source = image.shape[1]
    zoomed = torch.nn.functional.interpolate(
        torch.from_numpy(image[None].astype(np.float32)),
        size=(size, size),
        mode="bilinear",
        align_corners=False,
    )[0].numpy()
    nearest = np.minimum(((np.arange(size) + 0.5) * source / size).astype(np.intp), source - 1)
    resized_label = label[np.ix_(nearest, nearest)]
    valid = image.any(axis=0)[np.ix_(nearest, nearest)]
    zoomed[:, ~valid] = 0
    return np.clip(np.rint(zoomed), 0, 255).astype(np.uint8), resized_label


# YIQ: a hue change is a rotation of (I, Q)
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float32)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ).astype(np.float32)


def _augment(image: np.ndarray, label: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """Geometry (flips, 90-degree rotations: slumps face every way) and the radiometry of real
    scenes: another sensor, season, sun or haze (gamma, saturation, hue, per-band gain, contrast,
    brightness), a softer image (blur) and sensor noise. Nodata stays 0. Cheap next to a
    training step: a lookup table for gamma, one 3x3 matrix for every colour change."""
    from scipy import ndimage

    k = int(rng.integers(4))
    image, label = np.rot90(image, k, axes=(1, 2)), np.rot90(label, k)
    if rng.random() < 0.5:
        image, label = image[:, :, ::-1], label[:, ::-1]
    valid = image.any(axis=0) & (label != IGNORE)
    gamma = float(np.exp(rng.uniform(np.log(0.7), np.log(1.4))))
    lut = (255.0 * (np.arange(256, dtype=np.float32) / 255.0) ** gamma).astype(np.float32)
    values = lut[image]
    saturation, hue = rng.uniform(0.7, 1.3), rng.uniform(-0.15, 0.15)
    rotation = np.array(
        [
            [1.0, 0.0, 0.0],
            [0.0, math.cos(hue) * saturation, -math.sin(hue) * saturation],
            [0.0, math.sin(hue) * saturation, math.cos(hue) * saturation],
        ],
        dtype=np.float32,
    )
    gain = np.diag(rng.uniform(0.9, 1.1, size=3)).astype(np.float32)
    colour = gain @ _YIQ_TO_RGB @ rotation @ _RGB_TO_YIQ
    height, width = values.shape[1:]
    flat = (colour @ values.reshape(3, -1)).reshape(3, height, width)
    count = int(valid.sum())
    mean = (
        (flat.reshape(3, -1) @ valid.ravel().astype(np.float32) / count).reshape(3, 1, 1)
        if count
        else np.float32(127.5)
    )
    contrast = np.float32(rng.uniform(0.75, 1.25))
    values = flat * contrast + (mean * (1 - contrast) + np.float32(rng.uniform(-20, 20)))
    if rng.random() < 0.25:
        sigma = rng.uniform(0.4, 1.2)
        values = np.stack([ndimage.gaussian_filter(band, sigma) for band in values])
    if rng.random() < 0.3:
        values += rng.standard_normal(values.shape, dtype=np.float32) * np.float32(rng.uniform(1.5, 6.0))
    np.clip(values, 1, 255, out=values)
    values[:, ~valid] = 0
    return values, np.ascontiguousarray(label)


def _batch(data: ChipData, picks, config: TrainConfig, card: ModelCard, rng):
    images, labels = [], []
    for index in picks:
        image, label = data.load(index)
        image, label = _crop(
            image,
            label,
            config.crop_size,
            rng,
            config.positive_crop_share,
            tuple(config.scale_range),
            data.positives(index),
        )
        image, label = _augment(image, label, rng)
        images.append(normalise(image, card))
        labels.append(label)
    return np.stack(images), np.stack(labels)


def dice_bce_loss(logits, target, torch):
    """BCE + soft Dice over valid pixels (label 255 ignored)."""
    valid = (target != IGNORE).float()
    truth = (target == 1).float()
    logits = logits[:, 0].float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, truth, weight=valid, reduction="sum")
    bce = bce / valid.sum().clamp(min=1)
    probability = torch.sigmoid(logits) * valid
    intersection = (probability * truth).sum()
    dice = 1 - (2 * intersection + 1) / (probability.sum() + (truth * valid).sum() + 1)
    return bce + dice


def resolve_precision(choice: str, device: str) -> str:
    """ "auto" -> "bfloat16" where the device computes it natively, else "float32"."""
    torch, _ = require_torch()
    choice = (choice or "auto").lower()
    if choice not in PRECISIONS:
        raise RtsMapperError(f"unknown precision {choice!r} ({', '.join(PRECISIONS)})")
    if choice != "auto":
        return choice
    if device.startswith("cuda"):
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    try:  # AVX512-BF16 / AMX; elsewhere bfloat16 is emulated and slower than float32
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        native = False
    return "bfloat16" if native else "float32"


def autocast(torch, device: str, precision: str):
    if precision != "bfloat16":
        return contextlib.nullcontext()
    return torch.autocast("cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16)


@dataclass
class ValidationScore:
    """One epoch on the validation chips."""

    iou: float  # pixel IoU at the configured threshold
    loss: float
    f1: float  # polygon F1 at IoU 0.5 at the best operating point below
    precision: float
    recall: float
    threshold: float
    min_area_m2: float
    truths: int

    @property
    def score(self) -> float:
        """What model selection maximises: F1, then pixel IoU among equal F1s."""
        return self.f1 + 1e-3 * self.iou


def evaluate_chips(
    model,
    data: ChipData,
    card: ModelCard,
    device: str,
    threshold: float,
    feedback: Feedback | None = None,
    precision: str = "float32",
    pixel_area_m2: float | None = None,
) -> ValidationScore:
    """Score whole validation chips: pixel IoU and loss at ``threshold``, and polygon F1 at IoU
    0.5 for every operating point of THRESHOLD_GRID x MIN_AREA_GRID_M2 (the best one kept)."""
    torch, _ = require_torch()
    tp = fp = fn = 0
    losses = []
    thresholds = np.asarray(THRESHOLD_GRID, dtype=np.float32)
    area = pixel_area_m2 or card.pixel_size_m**2
    min_pixels = np.asarray([max(1, math.ceil(a / area)) for a in MIN_AREA_GRID_M2])
    found = np.zeros((len(thresholds), len(min_pixels)), dtype=np.int64)
    predicted_count = np.zeros_like(found)
    truths = 0
    model.eval()
    with torch.inference_mode(), autocast(torch, device, precision):
        for index in range(len(data)):
            if feedback:
                feedback.check()
            image, label = data.load(index)
            tensor = torch.from_numpy(normalise(image, card)[None]).to(device)
            target = torch.from_numpy(label[None].astype(np.int64)).to(device)
            logits = model(tensor).float()
            losses.append(dice_bce_loss(logits, target, torch).item())
            probability = torch.sigmoid(logits[0, 0]).cpu().numpy()
            valid = (label != IGNORE) & image.any(axis=0)
            truth = label == 1
            predicted = probability >= threshold
            tp += int((predicted & truth & valid).sum())
            fp += int((predicted & ~truth & valid).sum())
            fn += int((~predicted & truth & valid).sum())
            counts = count_components(probability, truth, valid, thresholds, min_pixels)
            found += counts.true_positives
            predicted_count += counts.predictions
            truths += counts.truths
    iou = tp / (tp + fp + fn) if (tp + fp + fn) else 1.0
    f1 = np.where(predicted_count + truths > 0, 2 * found / np.maximum(1, predicted_count + truths), 0.0)
    # the best operating point; among equal F1s the one nearest the defaults (0.5, the card's area)
    order = np.lexsort(
        (
            np.abs(np.asarray(MIN_AREA_GRID_M2)[None, :] - defaults.MIN_AREA_M2)
            .repeat(len(thresholds), 0)
            .ravel(),
            np.abs(thresholds[:, None] - 0.5).repeat(len(min_pixels), 1).ravel(),
            -np.round(f1, 6).ravel(),
        )
    )
    i, j = np.unravel_index(order[0], f1.shape)
    return ValidationScore(
        iou=float(iou),
        loss=float(np.mean(losses)) if losses else float("nan"),
        f1=float(f1[i, j]),
        precision=float(found[i, j] / predicted_count[i, j]) if predicted_count[i, j] else 0.0,
        recall=float(found[i, j] / truths) if truths else 0.0,
        threshold=float(THRESHOLD_GRID[i]),
        min_area_m2=float(MIN_AREA_GRID_M2[j]),
        truths=int(truths),
    )


def checkpoint_path(model_path: str | os.PathLike) -> Path:
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".checkpoint.safetensors")


def _save_checkpoint(path: Path, model, optimizer, state: dict, kept: str) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    optimizer_state = optimizer.state_dict()
    for param_id, values in optimizer_state["state"].items():
        for name, value in values.items():
            tensors[f"optim.{param_id}.{name}"] = value.detach().cpu().contiguous()
    metadata = {"state": json.dumps(state), "param_groups": json.dumps(optimizer_state["param_groups"])}
    save_safetensors(tensors, path, metadata, kept)


def _load_checkpoint(path: Path, model, optimizer, device: str) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt", device="cpu") as handle:
        metadata = handle.metadata()
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, param_id, name = key.split(".", 2)
            state.setdefault(int(param_id), {})[name] = value.to(device)
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(metadata["param_groups"])})
    return json.loads(metadata["state"])


def _build(config: TrainConfig, notes: list[str]):
    """(model, encoder_init note) as the config says: fine-tuned, ImageNet or random."""
    if config.init_model:
        model, init_card = load_model(config.init_model)
        if init_card.encoder != config.encoder:
            notes.append(f"encoder {init_card.encoder} taken from the model fine-tuned ({config.init_model})")
            config.encoder = init_card.encoder
        return model, f"fine-tuned from {Path(config.init_model).name} ({init_card.encoder_init})"
    model = create_model(config.encoder)
    if config.imagenet_weights:
        return model, load_start_weights(model, config.encoder, config.imagenet_weights)
    return model, "random (no ImageNet weights given)"


class _Trainer:
    """One optimisation step: a batch in, the loss out (the model in the precision and memory
    layout that measured fastest for this device)."""

    def __init__(self, model, optimizer, config: TrainConfig, card: ModelCard, device: str, precision: str):
        self.torch, _ = require_torch()
        self.model, self.optimizer, self.config, self.card = model, optimizer, config, card
        self.device, self.precision = device, precision
        # channels-last only where it measured faster: float32 on the CPU (1.2x for resnet34);
        # in bfloat16 it makes no measurable difference (docs/benchmarks.md)
        channels_last = device == "cpu" and precision == "float32"
        self.memory_format = self.torch.channels_last if channels_last else self.torch.contiguous_format
        self.model.to(memory_format=self.memory_format)

    def step(self, batch: tuple[np.ndarray, np.ndarray], lr: float) -> float:
        torch = self.torch
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        images, labels = batch
        tensor = torch.from_numpy(images).to(self.device).contiguous(memory_format=self.memory_format)
        target = torch.from_numpy(labels.astype(np.int64)).to(self.device)
        with autocast(torch, self.device, self.precision):
            logits = self.model(tensor)
        loss = dice_bce_loss(logits, target, torch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.item())


def _batches(data: ChipData, picks: np.ndarray, config: TrainConfig, card: ModelCard, rng):
    """The batches of ``picks`` in order, each made in a helper thread while the model trains on
    the one before (the crops and colour changes overlap the step instead of adding to it). The
    one thread draws from ``rng`` in order, so a run stays deterministic."""
    from concurrent.futures import ThreadPoolExecutor

    size = config.batch_size
    count = len(picks) // size

    def make(step: int):
        return _batch(data, picks[step * size : (step + 1) * size], config, card, rng)

    with ThreadPoolExecutor(1, thread_name_prefix="rts-batches") as pool:
        future = pool.submit(make, 0)
        for step in range(count):
            batch = future.result()
            if step + 1 < count:
                future = pool.submit(make, step + 1)
            yield batch


def _learning_rate(config: TrainConfig, step: int, total: int) -> float:
    warmup = max(1, int(config.warmup_share * total))
    if step < warmup:
        return config.learning_rate * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return config.learning_rate * 0.5 * (1 + math.cos(math.pi * progress))


def _steps_per_epoch(train_chips: int, config: TrainConfig) -> int:
    return max(1, math.ceil(train_chips * config.crops_per_chip / config.batch_size))


def _validation_seconds(model, chip_set: ChipSet, card, device, threshold, precision) -> float:
    """The time of one epoch's validation, from one chip timed (then the model trains on)."""
    if not chip_set.val:
        return 0.0
    started = time.perf_counter()
    evaluate_chips(model, ChipData(chip_set, chip_set.val[:1]), card, device, threshold, precision=precision)
    model.train()
    return (time.perf_counter() - started) * len(chip_set.val)


def train_model(
    chips: str | os.PathLike | ChipSet,
    out_model: str | os.PathLike,
    config: TrainConfig | None = None,
    feedback: Feedback | None = None,
    on_epoch: EpochCallback | None = None,
    resume: bool = False,
    on_estimate: Callable[[TrainingEstimate], None] | None = None,
) -> TrainResult:
    """Train (or fine-tune) and save the best model to ``out_model``; see the module docstring.

    ``on_estimate`` is called once, after the first timed steps of the run, with the projected
    duration.

    Raises:
        RtsMapperError: no training chips, unreadable weights, an init model of another encoder.
        Cancelled: the user stopped; the best model so far stays at ``out_model``.
    """
    torch, _ = require_torch()
    config = config or TrainConfig()
    feedback = feedback or Feedback()
    started = time.perf_counter()
    chip_set = chips if isinstance(chips, ChipSet) else load_chip_set(chips)
    train_data, val_data = ChipData(chip_set, chip_set.train), ChipData(chip_set, chip_set.val)
    if not len(train_data):
        raise RtsMapperError("there are no training chips", chip_set.folder)
    out_model = check_writable(out_model)  # a read-only drive fails now, not after an hour
    device = pick_device(config.device)
    precision = resolve_precision(config.precision, device)
    configure_threads()
    torch.manual_seed(config.seed)
    notes: list[str] = []
    model, encoder_init = _build(config, notes)
    model.to(device)
    pixel_size = _pixel_size(chip_set)
    card = ModelCard(
        encoder=config.encoder,
        tile_size=config.tile_size,
        # below half a tile, as inference needs: a 128-pixel tile with the default 64 overlap made
        # a model that inference refused
        overlap=min(config.overlap, config.tile_size // 4),
        threshold=config.threshold,
        min_area_m2=config.min_area_m2,
        encoder_init=encoder_init,
        pixel_size_m=pixel_size,
    )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    trainer = _Trainer(model, optimizer, config, card, device, precision)
    steps_per_epoch = _steps_per_epoch(len(train_data), config)
    total_steps = steps_per_epoch * config.epochs
    history: list[dict] = []
    # -inf: without validation chips the score is -train_loss, which can be below -1
    best_score, best_epoch, first_epoch, bad_epochs = -math.inf, 0, 1, 0
    checkpoint = checkpoint_path(out_model)
    if resume:
        if not checkpoint.is_file():
            raise RtsMapperError("there is no checkpoint to resume from", checkpoint)
        state = _load_checkpoint(checkpoint, model, optimizer, device)
        history, best_score, best_epoch = state["history"], state["best_score"], state["best_epoch"]
        first_epoch, bad_epochs = state["epoch"] + 1, state["bad_epochs"]
        notes.append(f"resumed after epoch {state['epoch']}")

    summary = {
        **chip_set.summary(),
        "config": {k: v for k, v in asdict(config).items() if k != "device"},
        "precision": precision,
    }
    best = None  # the best epoch's ValidationScore
    stopped_early = False
    epoch = first_epoch - 1
    estimate_due = on_estimate is not None
    try:
        for epoch in range(first_epoch, config.epochs + 1):
            epoch_started = time.perf_counter()
            rng = np.random.default_rng([config.seed, epoch])
            torch.manual_seed(config.seed * 100_003 + epoch)
            model.train()
            losses = []
            picks = rng.permutation(
                np.resize(np.arange(len(train_data)), steps_per_epoch * config.batch_size)
            )
            timed_from = None
            for step, batch in enumerate(_batches(train_data, picks, config, card, rng)):
                if step == 1:
                    timed_from = time.perf_counter()  # the first step warms up (allocations, kernels)
                lr = _learning_rate(config, (epoch - 1) * steps_per_epoch + step, total_steps)
                losses.append(trainer.step(batch, lr))
                feedback.step(((epoch - 1) * steps_per_epoch + step + 1) / total_steps)
                if estimate_due and step == min(3, steps_per_epoch - 1) and timed_from is not None:
                    estimate_due = False
                    per_step = (time.perf_counter() - timed_from) / step
                    on_estimate(
                        TrainingEstimate(
                            seconds_per_step=per_step,
                            steps_per_epoch=steps_per_epoch,
                            validation_seconds=_validation_seconds(
                                model, chip_set, card, device, config.threshold, precision
                            ),
                            epochs=config.epochs - epoch + 1,
                            device=device,
                            precision=precision,
                        )
                    )
            train_seconds = time.perf_counter() - epoch_started
            timed_steps = steps_per_epoch - 1
            per_step = (time.perf_counter() - timed_from) / timed_steps if timed_from else train_seconds
            validation = None
            if len(val_data):
                validation = evaluate_chips(
                    model, val_data, card, device, config.threshold, feedback, precision, pixel_size**2
                )
            entry = {
                "epoch": epoch,
                "train_loss": round(float(np.mean(losses)), 5),
                "val_loss": None if validation is None else round(validation.loss, 5),
                "val_iou": None if validation is None else round(validation.iou, 5),
                "val_f1": None if validation is None else round(validation.f1, 4),
                "val_precision": None if validation is None else round(validation.precision, 4),
                "val_recall": None if validation is None else round(validation.recall, 4),
                "val_threshold": None if validation is None else validation.threshold,
                "val_min_area_m2": None if validation is None else validation.min_area_m2,
                "lr": lr,
                "seconds": round(time.perf_counter() - epoch_started, 2),
                "train_seconds": round(train_seconds, 2),
                "seconds_per_step": round(per_step, 4),
            }
            history.append(entry)
            score = validation.score if validation is not None else -entry["train_loss"]
            improved = score > best_score + config.min_delta
            if improved:
                kept = _kept(out_model, best_epoch)  # if this save fails (a full disk)
                best_score, best_epoch, bad_epochs, best = score, epoch, 0, validation
                if validation is not None:  # the operating point found on the validation chips
                    card.threshold, card.min_area_m2 = validation.threshold, validation.min_area_m2
                _finalise_card(card, summary, history, best_epoch, best, notes)
                save_model(model, card, out_model, kept)
            else:
                bad_epochs += 1
            _save_checkpoint(
                checkpoint,
                model,
                optimizer,
                {
                    "epoch": epoch,
                    "history": history,
                    "best_score": best_score,
                    "best_epoch": best_epoch,
                    "bad_epochs": bad_epochs,
                },
                _kept(out_model, best_epoch),
            )
            if on_epoch:
                remaining = (config.epochs - epoch) * entry["seconds"]
                on_epoch(
                    {**entry, "best_epoch": best_epoch, "improved": improved, "eta_s": round(remaining, 1)}
                )
            if bad_epochs >= config.patience:
                stopped_early = True
                notes.append(f"early stop: no better validation F1 for {config.patience} epochs")
                break
    except Cancelled as exc:
        if out_model.exists():
            notes.append(f"cancelled by the user during epoch {epoch}")
            _rewrite_card(out_model, history, notes)
            raise Cancelled(
                f"cancelled during epoch {epoch}; the best model so far (epoch {best_epoch}) is kept at {out_model}"
            ) from exc
        raise
    if out_model.exists():
        _rewrite_card(out_model, history, notes)
    final_card = read_card(out_model)
    best_entry = next((h for h in history if h["epoch"] == best_epoch), {})
    return TrainResult(
        model_path=out_model,
        card=final_card,
        history=history,
        best_epoch=best_epoch,
        best_val_iou=best_entry.get("val_iou") if len(val_data) else None,
        best_val_f1=best_entry.get("val_f1") if len(val_data) else None,
        epochs_run=len(history),
        stopped_early=stopped_early,
        seconds=time.perf_counter() - started,
        device=device,
        notes=notes,
    )


def _pixel_size(chip_set: ChipSet) -> float:
    import rasterio

    with rasterio.open(chip_set.folder / chip_set.chips[0].image) as dataset:
        return float(abs(dataset.transform.a))


def _finalise_card(card, summary, history, best_epoch, best: ValidationScore | None, notes) -> None:
    card.training = {
        **summary,
        "best_epoch": best_epoch,
        "best_val_iou": None if best is None else round(best.iou, 5),
        "best_val_f1": None if best is None else round(best.f1, 4),
        "calibration": None
        if best is None
        else {
            "threshold": best.threshold,
            "min_area_m2": best.min_area_m2,
            "f1": round(best.f1, 4),
            "precision": round(best.precision, 4),
            "recall": round(best.recall, 4),
            "validation_rts": best.truths,
            "iou_threshold": 0.5,
            "grid": {"thresholds": list(THRESHOLD_GRID), "min_area_m2": list(MIN_AREA_GRID_M2)},
        },
        "epochs_run": len(history),
        "notes": list(notes),
    }
    card.history = list(history)


def _kept(out_model: Path, best_epoch: int) -> str:
    """What a failed save during training leaves behind, in words."""
    if not out_model.exists():
        return "no model was kept"
    if best_epoch == 0:  # a file from before this run
        return f"{out_model} is unchanged"
    return f"the best model so far (epoch {best_epoch}) is kept at {out_model}"


def _rewrite_card(path: Path, history, notes) -> None:
    """Keep the best weights, bring the card's history up to date (the run went on after them)."""
    model, card = load_model(path)
    card.training = {**card.training, "epochs_run": len(history), "notes": list(notes)}
    card.history = list(history)
    save_model(model, card, path, f"the model is kept at {path}, its card without the last epochs' history")
