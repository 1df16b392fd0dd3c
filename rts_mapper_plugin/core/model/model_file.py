"""DeepLabv3+ models and model files: safetensors weights with a JSON card in the header.

A model file is one ``.safetensors`` file: the weights, and under the header key
``rts_mapper_card`` a JSON *model card* (architecture, encoder, input bands and their order,
normalisation, tile size, overlap, threshold, classes, training summary and history, versions).
Loading never unpickles anything: safetensors holds raw tensors only, and local ImageNet encoder
weights in PyTorch format are read with ``torch.load(weights_only=True)``.

torch and segmentation-models-pytorch are imported inside functions, so that importing this
module (and the plugin) works without them.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import defaults
from ..cluster import process_threads
from ..errors import MissingDependencyError, RtsMapperError, write_failure

CARD_KEY = "rts_mapper_card"
CARD_VERSION = 1
ARCHITECTURE = "DeepLabV3Plus"
ONNX_SUFFIX = ".onnx"  # models for onnxruntime (core/model/onnx_model.py): inference only
MODEL_FILTER = "RTS Mapper model (*.safetensors)"  # file dialogs: models to train from
INFERENCE_MODEL_FILTER = f"RTS Mapper or ONNX model (*.safetensors *{ONNX_SUFFIX})"  # ... to infer with
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ModelCard:
    """Everything needed to use a model correctly, travelling inside the model file."""

    encoder: str = defaults.ENCODER
    architecture: str = ARCHITECTURE
    in_channels: int = 3
    bands: list[str] = field(default_factory=lambda: ["red", "green", "blue"])
    input_description: str = "8-bit RGB prepared by RTS Mapper (values 1-255, 0 = nodata)"
    normalisation: dict[str, Any] = field(
        default_factory=lambda: {"scale": 1 / 255, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    )
    pixel_size_m: float = 3.0
    tile_size: int = defaults.TILE_SIZE
    overlap: int = defaults.OVERLAP
    threshold: float = defaults.THRESHOLD
    min_area_m2: float = defaults.MIN_AREA_M2
    classes: list[str] = field(default_factory=lambda: ["background", "rts"])
    encoder_init: str = "random (no ImageNet weights given)"
    training: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    created_at: str = ""
    card_version: int = CARD_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, path: str | os.PathLike) -> ModelCard:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RtsMapperError(f"has an unreadable model card ({exc.msg})", path) from exc
        if not isinstance(data, dict):
            raise RtsMapperError("has an unreadable model card (not a JSON object)", path)
        known = set(cls.__dataclass_fields__)
        card = cls(**{k: v for k, v in data.items() if k in known})
        if card.architecture != ARCHITECTURE:
            raise RtsMapperError(f"is a {card.architecture} model; RTS Mapper runs {ARCHITECTURE}", path)
        card.check(path)
        return card

    def check(self, path: str | os.PathLike) -> None:
        """Every value inference and training use, of the right type and range: a damaged or
        hand-edited card is one clear error here, not a failure deep in a run."""

        def number(value, low: float, high: float) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high

        def whole(value, low: int, high: int) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high

        norm = self.normalisation if isinstance(self.normalisation, dict) else {}
        problems = {
            "encoder": isinstance(self.encoder, str) and bool(self.encoder),
            "in_channels": whole(self.in_channels, 1, 64),
            "bands": isinstance(self.bands, list) and len(self.bands) == self.in_channels,
            "tile_size": whole(self.tile_size, 32, 8192),
            "overlap": whole(self.overlap, 0, 4096)
            and whole(self.tile_size, 32, 8192)
            and self.overlap < self.tile_size // 2,
            "threshold": number(self.threshold, 0.0, 1.0),
            "min_area_m2": number(self.min_area_m2, 0.0, 1e12),
            "pixel_size_m": number(self.pixel_size_m, 1e-6, 1e6),
            "classes": isinstance(self.classes, list)
            and len(self.classes) >= 2
            and all(isinstance(c, str) for c in self.classes),
            "normalisation": number(norm.get("scale"), 1e-12, 1e6)
            and all(
                isinstance(norm.get(key), list)
                and len(norm[key]) == self.in_channels
                and all(number(v, -1e6 if key == "mean" else 1e-12, 1e6) for v in norm[key])
                for key in ("mean", "std")
            ),
        }
        bad = [name for name, good in problems.items() if not good]
        if bad:
            shown = ", ".join(f"{name} = {json.dumps(getattr(self, name), default=str)[:40]}" for name in bad)
            raise RtsMapperError(f"has a model card with values RTS Mapper cannot use ({shown})", path)

    def summary(self) -> str:
        """One paragraph for the inference dock: what this model is and what it was trained on."""
        trained = self.training
        name = f"DeepLabv3+ / {self.encoder}" if self.architecture == ARCHITECTURE else "a segmentation model"
        if self.versions.get("format") == "onnx":
            name = f"ONNX: {name}"
        parts = [name, f"tile {self.tile_size} px, overlap {self.overlap}"]
        if trained:
            iou, f1 = trained.get("best_val_iou"), trained.get("best_val_f1")
            if isinstance(f1, (int, float)):
                quality = (
                    f"validation F1 {f1:.2f} at IoU 0.5 (threshold {self.threshold:.2f}, "
                    f"minimum area {self.min_area_m2:.0f} m²), pixel IoU {iou:.3f}"
                )
            elif isinstance(iou, (int, float)):
                quality = f"best validation IoU {iou:.3f}"
            else:
                quality = "no validation chips"
            parts.append(
                f"trained on {trained.get('positives', '?')} RTS and {trained.get('negatives', '?')} non-RTS "
                f"polygons ({trained.get('train_chips', '?')} + {trained.get('val_chips', '?')} chips), "
                f"{quality} at epoch {trained.get('best_epoch', '?')}"
            )
        parts.append(f"encoder start: {self.encoder_init}")
        if self.created_at:
            parts.append(f"saved {self.created_at[:16].replace('T', ' ')} UTC")
        return "; ".join(parts)

    def brief(self) -> str:
        """A few words for a list of models: "resnet18, 14 epoch(s), F1 0.71" (IoU for models that
        predate polygon F1)."""
        trained = self.training or {}
        text = f"{self.encoder}, {trained.get('epochs_run', '?')} epoch(s)"
        f1, iou = trained.get("best_val_f1"), trained.get("best_val_iou")
        if isinstance(f1, (int, float)):
            return text + f", F1 {f1:.2f}"
        return text + (f", IoU {iou:.2f}" if isinstance(iou, (int, float)) else "")


def require_torch():
    """Import torch and segmentation-models-pytorch, or raise a clear MissingDependencyError."""
    from ..environment import import_module_safely

    try:
        torch = import_module_safely("torch")
        smp = import_module_safely("segmentation_models_pytorch")
    except ImportError as exc:
        from ..environment import deep_learning_missing, install_command

        missing = deep_learning_missing() or ["torch", "segmentation-models-pytorch"]
        raise MissingDependencyError(
            f"training and inference need {', '.join(missing)} ({exc}); install with: {install_command(missing)}"
        ) from exc
    return torch, smp


def versions() -> dict[str, str]:
    torch, smp = require_torch()
    from ...__about__ import __version__

    return {
        "rts_mapper": __version__,
        "torch": torch.__version__,
        "segmentation_models_pytorch": smp.__version__,
    }


def create_model(encoder: str = defaults.ENCODER, in_channels: int = 3, classes: int = 1):
    """A DeepLabv3+ with the named encoder, randomly initialised (nothing is downloaded)."""
    _, smp = require_torch()
    try:
        return smp.DeepLabV3Plus(
            encoder_name=encoder, encoder_weights=None, in_channels=in_channels, classes=classes
        )
    except (KeyError, ValueError) as exc:
        raise RtsMapperError(
            f"unknown encoder {encoder!r} (try one of: {', '.join(defaults.ENCODERS)})"
        ) from exc


def load_encoder_weights(model, path: str | os.PathLike) -> str:
    """Load local ImageNet weights (safetensors or a PyTorch state dict) into the encoder.

    Returns a note for the card. Classifier heads in the file (``fc.``, ``classifier.``) are
    ignored; the encoder's own layers must all be found, or it is the wrong file.
    """
    path = Path(path)
    if not path.is_file():
        raise RtsMapperError("no such encoder weights file", path)
    state = _read_state_dict(path)
    state = {k.removeprefix("encoder.").removeprefix("module."): v for k, v in state.items()}
    encoder_state = model.encoder.state_dict()
    usable = {
        k: v
        for k, v in state.items()
        if k in encoder_state and tuple(v.shape) == tuple(encoder_state[k].shape)
    }
    missing = [k for k in encoder_state if k not in usable and not k.endswith("num_batches_tracked")]
    if not usable or len(missing) > 0.05 * len(encoder_state):
        raise RtsMapperError(
            f"does not hold weights for this encoder ({len(usable)} of {len(encoder_state)} layers match)",
            path,
        )
    model.encoder.load_state_dict(usable, strict=False)
    return f"ImageNet weights from {path.name} ({len(usable)} layers)"


def _read_state_dict(path: Path) -> dict:
    torch, _ = require_torch()
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:
            raise RtsMapperError(f"is not a readable safetensors file ({exc})", path) from exc
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)  # never a full unpickle
    except Exception as exc:
        raise RtsMapperError(
            f"cannot be read as plain weights (safetensors, or a PyTorch state dict; pickled objects are refused): {exc}",
            path,
        ) from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise RtsMapperError("does not hold a state dict", path)
    return state


def save_model(model, card: ModelCard, path: str | os.PathLike, kept: str = "nothing was kept") -> Path:
    """Write weights + card to ``path`` atomically (see ``save_safetensors``)."""
    require_torch()
    path = Path(path)
    card.created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    card.versions = versions()
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    return save_safetensors(state, path, {CARD_KEY: card.to_json(), "format": "pt"}, kept)


def save_safetensors(tensors: dict, path: Path, metadata: dict, kept: str = "nothing was kept") -> Path:
    """Write ``tensors`` to ``path`` through a partial file renamed on success. A full disk or a
    read-only drive becomes one line naming ``path`` and saying what is ``kept``."""
    from safetensors import SafetensorError
    from safetensors.torch import save

    partial = path.with_name(path.name + ".partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # serialised here and written by us: safetensors' save_file writes a .tmpXXXX file of its
        # own beside the output, which a killed run leaves behind (make faults found them)
        data = save(tensors, metadata=metadata)
        with open(partial, "wb") as handle:
            handle.write(data)
        os.replace(partial, path)
    except (OSError, SafetensorError) as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise RtsMapperError(write_failure(exc, path, kept), path) from exc
    return path


def read_card(path: str | os.PathLike) -> ModelCard:
    """The card of a model file, without loading the weights (cheap; needs only safetensors). For
    ONNX models too: :func:`.onnx_model.read_model_card`."""
    path = Path(path)
    header = _read_header(path)
    metadata = header.get("__metadata__") or {}
    if CARD_KEY not in metadata:
        raise RtsMapperError("is a safetensors file without an RTS Mapper model card", path)
    return ModelCard.from_json(metadata[CARD_KEY], path)


def is_onnx(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() == ONNX_SUFFIX


def _read_header(path: Path) -> dict:
    """Parse the safetensors header by hand: 8-byte little-endian length, then JSON."""
    if not path.is_file():
        raise RtsMapperError("no such model file", path)
    not_a_model = "is not an RTS Mapper model file (safetensors weights with a card)"
    size = path.stat().st_size
    with open(path, "rb") as handle:
        length = int.from_bytes(handle.read(8), "little")
        start = handle.read(1)
        if size < 9 or start != b"{" or not 0 < length <= 100_000_000:
            raise RtsMapperError(not_a_model, path)  # no safetensors header at all
        if length > size - 8:
            raise RtsMapperError("is corrupt: truncated (shorter than its own header says)", path)
        try:
            header = json.loads(start + handle.read(length - 1))
        except (ValueError, UnicodeDecodeError) as exc:
            raise RtsMapperError(not_a_model, path) from exc
    if not isinstance(header, dict):
        raise RtsMapperError(not_a_model, path)
    return header


def load_model(path: str | os.PathLike, device: str | None = None):
    """(model in eval mode on ``device``, card). Corrupt files and mismatched cards are errors."""
    require_torch()
    from safetensors.torch import load_file

    path = Path(path)
    if is_onnx(path):
        raise RtsMapperError(
            "is an ONNX model: it runs inference, but training starts from an RTS Mapper model "
            "(.safetensors)",
            path,
        )
    card = read_card(path)
    model = create_model(
        card.encoder, card.in_channels, len(card.classes) - 1 if len(card.classes) > 2 else 1
    )
    try:
        state = load_file(str(path))
    except Exception as exc:
        raise RtsMapperError(f"is corrupt: the weights cannot be read ({exc})", path) from exc
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise RtsMapperError(f"has a card that does not match its weights ({first})", path) from exc
    model.eval()
    if device is not None:
        model.to(device)
    return model, card


def pick_device(choice: str = defaults.DEVICE) -> str:
    """ "auto" -> "cuda" when available, else "cpu"; "cuda" without a GPU is an error."""
    torch, _ = require_torch()
    choice = (choice or "auto").lower()
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise RtsMapperError("CUDA was asked for but no CUDA device is available (choose auto or cpu)")
    if choice not in defaults.DEVICES and not choice.startswith("cuda"):
        raise RtsMapperError(f"unknown device {choice!r} ({', '.join(defaults.DEVICES)})")
    return choice


def configure_threads() -> None:
    """Use every core for CPU inference and training (torch defaults to physical cores only), or
    this process's share of them (a local cluster's worker)."""
    torch, _ = require_torch()
    torch.set_num_threads(process_threads())
