"""Fine-tuning DeepLabv3+ on training chips.

Random crops (most of them centred on a slump pixel) with flips, 90-degree rotations and
brightness/contrast jitter; Dice + BCE loss (suited to a small foreground) that ignores nodata;
validation IoU each epoch; early stopping; the best model saved as soon as it improves (so a
cancel keeps it); a resumable checkpoint after each epoch; progress and cancel per batch; CUDA
when present. Each epoch is seeded from (seed, epoch), so a resumed run repeats an unbroken one.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .chips import IGNORE, Chip, ChipSet, load_chip_set
from .errors import Cancelled, RtsMapperError
from .model import (
    ModelCard,
    configure_threads,
    create_model,
    load_model,
    pick_device,
    read_card,
    require_torch,
    save_model,
)
from .progress import Feedback
from .weights import load_start_weights

EpochCallback = Callable[[dict], None]


@dataclass
class TrainConfig:
    """Training settings; the defaults suit fine-tuning on a few hundred chips."""

    encoder: str = "resnet34"
    epochs: int = 30
    batch_size: int = 8
    crop_size: int = 256
    learning_rate: float = 5e-4
    weight_decay: float = 1e-4
    patience: int = 8
    min_delta: float = 0.0  # a validation IoU must beat the best by more than this to count
    crops_per_chip: int = 2
    positive_crop_share: float = 0.5
    seed: int = 0
    device: str = "auto"
    imagenet_weights: str | None = None
    init_model: str | None = None  # fine-tune from a previous model file (the iterative loop)
    tile_size: int = 512
    overlap: int = 64
    threshold: float = 0.5


@dataclass
class TrainResult:
    model_path: Path
    card: ModelCard
    history: list[dict]
    best_epoch: int
    best_val_iou: float | None  # None when there were no validation chips
    epochs_run: int
    stopped_early: bool
    seconds: float
    device: str
    notes: list[str] = field(default_factory=list)


class ChipData:
    """Reads chips on demand (a small cache keeps the most used ones)."""

    def __init__(self, chip_set: ChipSet, chips: list[Chip]) -> None:
        self.folder = chip_set.folder
        self.chips = chips
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

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


def _crop(image, label, size, rng, positive_share) -> tuple[np.ndarray, np.ndarray]:
    _, height, width = image.shape
    if height < size or width < size:  # pad small chips with nodata
        pad_h, pad_w = max(0, size - height), max(0, size - width)
        image = np.pad(image, ((0, 0), (0, pad_h), (0, pad_w)))
        label = np.pad(label, ((0, pad_h), (0, pad_w)), constant_values=IGNORE)
        _, height, width = image.shape
    positive = np.argwhere(label == 1)
    if len(positive) and rng.random() < positive_share:
        row, col = positive[rng.integers(len(positive))]
        top = int(np.clip(row - rng.integers(size // 8, size - size // 8), 0, height - size))
        left = int(np.clip(col - rng.integers(size // 8, size - size // 8), 0, width - size))
    else:
        top, left = int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))
    return image[:, top : top + size, left : left + size], label[top : top + size, left : left + size]


def _augment(image: np.ndarray, label: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """Flips, 90-degree rotations (slumps face every way), brightness and contrast jitter."""
    k = int(rng.integers(4))
    image, label = np.rot90(image, k, axes=(1, 2)), np.rot90(label, k)
    if rng.random() < 0.5:
        image, label = image[:, :, ::-1], label[:, ::-1]
    valid = label != IGNORE
    image = image.astype(np.float32)
    contrast, brightness = rng.uniform(0.8, 1.2), rng.uniform(-20, 20)
    mean = image[:, valid].mean(axis=1).reshape(3, 1, 1) if valid.any() else 127.0
    image = np.clip((image - mean) * contrast + mean + brightness, 1, 255)
    image[:, ~valid] = 0
    return image, np.ascontiguousarray(label)


def _batch(data: ChipData, picks, config: TrainConfig, card: ModelCard, rng):
    images, labels = [], []
    for index in picks:
        image, label = data.load(index)
        image, label = _crop(image, label, config.crop_size, rng, config.positive_crop_share)
        image, label = _augment(image, label, rng)
        images.append(normalise(image, card))
        labels.append(label)
    return np.stack(images), np.stack(labels)


def dice_bce_loss(logits, target, torch):
    """BCE + soft Dice over valid pixels (label 255 ignored)."""
    valid = (target != IGNORE).float()
    truth = (target == 1).float()
    logits = logits[:, 0]
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, truth, weight=valid, reduction="sum")
    bce = bce / valid.sum().clamp(min=1)
    probability = torch.sigmoid(logits) * valid
    intersection = (probability * truth).sum()
    dice = 1 - (2 * intersection + 1) / (probability.sum() + (truth * valid).sum() + 1)
    return bce + dice


def evaluate_chips(
    model, data: ChipData, card: ModelCard, device: str, threshold: float, feedback: Feedback | None = None
):
    """(pixel IoU of the RTS class, mean loss) over whole validation chips."""
    torch, _ = require_torch()
    tp = fp = fn = 0
    losses = []
    model.eval()
    with torch.inference_mode():
        for index in range(len(data)):
            if feedback:
                feedback.check()
            image, label = data.load(index)
            tensor = torch.from_numpy(normalise(image, card)[None]).to(device)
            target = torch.from_numpy(label[None].astype(np.int64)).to(device)
            logits = model(tensor)
            losses.append(dice_bce_loss(logits, target, torch).item())
            predicted = (torch.sigmoid(logits[0, 0]) >= threshold).cpu().numpy()
            valid = label != IGNORE
            truth = label == 1
            tp += int((predicted & truth & valid).sum())
            fp += int((predicted & ~truth & valid).sum())
            fn += int((~predicted & truth & valid).sum())
    iou = tp / (tp + fp + fn) if (tp + fp + fn) else 1.0
    return iou, float(np.mean(losses)) if losses else float("nan")


def checkpoint_path(model_path: str | os.PathLike) -> Path:
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".checkpoint.safetensors")


def _save_checkpoint(path: Path, model, optimizer, state: dict) -> None:
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    optimizer_state = optimizer.state_dict()
    for param_id, values in optimizer_state["state"].items():
        for name, value in values.items():
            tensors[f"optim.{param_id}.{name}"] = value.detach().cpu().contiguous()
    metadata = {"state": json.dumps(state), "param_groups": json.dumps(optimizer_state["param_groups"])}
    partial = path.with_name(path.name + ".partial")
    save_file(tensors, str(partial), metadata=metadata)
    os.replace(partial, path)


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


def train_model(
    chips: str | os.PathLike | ChipSet,
    out_model: str | os.PathLike,
    config: TrainConfig | None = None,
    feedback: Feedback | None = None,
    on_epoch: EpochCallback | None = None,
    resume: bool = False,
) -> TrainResult:
    """Train (or fine-tune) and save the best model to ``out_model``; see the module docstring.

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
    out_model = Path(out_model)
    out_model.parent.mkdir(parents=True, exist_ok=True)
    device = pick_device(config.device)
    configure_threads()
    torch.manual_seed(config.seed)
    notes: list[str] = []

    if config.init_model:
        model, init_card = load_model(config.init_model)
        if init_card.encoder != config.encoder:
            notes.append(f"encoder {init_card.encoder} taken from the model fine-tuned ({config.init_model})")
            config.encoder = init_card.encoder
        encoder_init = f"fine-tuned from {Path(config.init_model).name} ({init_card.encoder_init})"
    else:
        model = create_model(config.encoder)
        encoder_init = "random (no ImageNet weights given)"
        if config.imagenet_weights:
            encoder_init = load_start_weights(model, config.encoder, config.imagenet_weights)
    model.to(device)
    if device == "cpu":
        model.to(memory_format=torch.channels_last)
    card = ModelCard(
        encoder=config.encoder,
        tile_size=config.tile_size,
        overlap=config.overlap,
        threshold=config.threshold,
        encoder_init=encoder_init,
        pixel_size_m=_pixel_size(chip_set),
    )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    steps_per_epoch = max(1, math.ceil(len(train_data) * config.crops_per_chip / config.batch_size))
    scheduler_steps = steps_per_epoch * config.epochs
    history: list[dict] = []
    # -inf, not -1: without validation chips the score is -train_loss, which can be below -1
    best_iou, best_epoch, first_epoch, bad_epochs = -math.inf, 0, 1, 0
    checkpoint = checkpoint_path(out_model)
    if resume:
        if not checkpoint.is_file():
            raise RtsMapperError("there is no checkpoint to resume from", checkpoint)
        state = _load_checkpoint(checkpoint, model, optimizer, device)
        history, best_iou, best_epoch = state["history"], state["best_iou"], state["best_epoch"]
        first_epoch, bad_epochs = state["epoch"] + 1, state["bad_epochs"]
        notes.append(f"resumed after epoch {state['epoch']}")

    summary = {**chip_set.summary(), "config": {k: v for k, v in asdict(config).items() if k != "device"}}
    best_state = None
    stopped_early = False
    epoch = first_epoch - 1
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
            for step in range(steps_per_epoch):
                lr = (
                    config.learning_rate
                    * 0.5
                    * (1 + math.cos(math.pi * ((epoch - 1) * steps_per_epoch + step) / scheduler_steps))
                )
                for group in optimizer.param_groups:
                    group["lr"] = lr
                images, labels = _batch(
                    train_data,
                    picks[step * config.batch_size : (step + 1) * config.batch_size],
                    config,
                    card,
                    rng,
                )
                tensor = torch.from_numpy(images).to(device)
                if device == "cpu":
                    tensor = tensor.contiguous(memory_format=torch.channels_last)
                target = torch.from_numpy(labels.astype(np.int64)).to(device)
                loss = dice_bce_loss(model(tensor), target, torch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
                feedback.step(((epoch - 1) * steps_per_epoch + step + 1) / (config.epochs * steps_per_epoch))
            val_iou = val_loss = None
            if len(val_data):
                val_iou, val_loss = evaluate_chips(model, val_data, card, device, config.threshold, feedback)
            entry = {
                "epoch": epoch,
                "train_loss": round(float(np.mean(losses)), 5),
                "val_loss": None if val_loss is None else round(val_loss, 5),
                "val_iou": None if val_iou is None else round(val_iou, 5),
                "lr": lr,
                "seconds": round(time.perf_counter() - epoch_started, 2),
            }
            history.append(entry)
            score = val_iou if val_iou is not None else -entry["train_loss"]
            improved = score > best_iou + config.min_delta
            if improved:
                best_iou, best_epoch, bad_epochs = score, epoch, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                _finalise_card(card, summary, history, best_epoch, best_iou, len(val_data) > 0, notes)
                save_model(model, card, out_model)
            else:
                bad_epochs += 1
            _save_checkpoint(
                checkpoint,
                model,
                optimizer,
                {
                    "epoch": epoch,
                    "history": history,
                    "best_iou": best_iou,
                    "best_epoch": best_epoch,
                    "bad_epochs": bad_epochs,
                },
            )
            if on_epoch:
                remaining = (config.epochs - epoch) * entry["seconds"]
                on_epoch(
                    {**entry, "best_epoch": best_epoch, "improved": improved, "eta_s": round(remaining, 1)}
                )
            if bad_epochs >= config.patience:
                stopped_early = True
                notes.append(f"early stop: no better validation IoU for {config.patience} epochs")
                break
    except Cancelled as exc:
        if out_model.exists():
            notes.append(f"cancelled by the user during epoch {epoch}")
            _rewrite_card(out_model, summary, history, best_epoch, best_iou, len(val_data) > 0, notes)
            raise Cancelled(
                f"cancelled during epoch {epoch}; the best model so far (epoch {best_epoch}) is kept at {out_model}"
            ) from exc
        raise
    if best_state is not None or out_model.exists():
        _rewrite_card(out_model, summary, history, best_epoch, best_iou, len(val_data) > 0, notes)
    final_card = read_card(out_model)
    return TrainResult(
        model_path=out_model,
        card=final_card,
        history=history,
        best_epoch=best_epoch,
        best_val_iou=best_iou if len(val_data) else None,
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


def _finalise_card(card, summary, history, best_epoch, best_iou, validated, notes) -> None:
    card.training = {
        **summary,
        "best_epoch": best_epoch,
        "best_val_iou": best_iou if validated else None,
        "epochs_run": len(history),
        "notes": list(notes),
    }
    card.history = list(history)


def _rewrite_card(path: Path, summary, history, best_epoch, best_iou, validated, notes) -> None:
    """Keep the best weights, bring the card's history up to date (the run went on after them)."""
    model, card = load_model(path)
    _finalise_card(card, summary, history, best_epoch, best_iou, validated, notes)
    save_model(model, card, path)
