"""Where an encoder's starting weights come from: ImageNet through segmentation-models-pytorch's
own source and cache, or a local file.

segmentation-models-pytorch (0.5 and later) publishes each encoder's ImageNet weights on the
Hugging Face Hub (``smp-hub/<encoder>.imagenet`` at a pinned revision, file
``model.safetensors``) and fetches them with ``huggingface_hub.hf_hub_download`` into the Hub
cache (``$HF_HUB_CACHE``, by default ``~/.cache/huggingface/hub``). RTS Mapper asks for the same
file, at the same revision, in the same cache: weights that smp or an earlier run has already
downloaded are reused with no network; otherwise they are downloaded once. Offline, the error
says in one line which URL to fetch, where to put the file, and how to use a local file instead.
The weights are safetensors: nothing is ever unpickled.

torch, segmentation-models-pytorch and huggingface_hub are imported inside functions, so that
importing this module (and the plugin) works without them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import RtsMapperError
from .model_file import load_encoder_weights, require_torch

LOGGER = logging.getLogger(__name__)

IMAGENET = "imagenet"  # the weights choice that means "segmentation-models-pytorch's ImageNet weights"
# The last words of the offline message: what the user can do instead, on each face.
CLI_ALTERNATIVE = "or pass --weights /path/to/file"
DOCK_ALTERNATIVE = "or choose the file (ImageNet weights: From file…)"


class WeightsUnavailableError(RtsMapperError):
    """ImageNet weights that are neither in the cache nor downloadable (offline, Hub unreachable)."""


@dataclass(frozen=True)
class ImagenetSource:
    """Where segmentation-models-pytorch gets an encoder's ImageNet weights."""

    encoder: str
    repo_id: str
    revision: str  # a commit hash: a cached copy is used without asking the Hub
    filename: str = "model.safetensors"

    @property
    def url(self) -> str:
        from huggingface_hub import hf_hub_url

        return hf_hub_url(self.repo_id, self.filename, revision=self.revision)

    def cache_path(self, cache_dir: str | os.PathLike | None = None) -> Path:
        """Where the Hub cache keeps the file (a file put there by hand is found too)."""
        from huggingface_hub.file_download import repo_folder_name

        folder = repo_folder_name(repo_id=self.repo_id, repo_type="model")
        return Path(cache_dir or hub_cache_dir()) / folder / "snapshots" / self.revision / self.filename


@dataclass(frozen=True)
class FetchedWeights:
    source: ImagenetSource
    path: Path
    downloaded: bool  # False: found in the cache, no network used


def is_imagenet(weights: str | os.PathLike | None) -> bool:
    """Whether a weights choice asks for the ImageNet weights (a path to a file named
    ``imagenet`` is written ``./imagenet``)."""
    return isinstance(weights, str) and weights.strip().lower() == IMAGENET


def hub_cache_dir() -> Path:
    """The Hugging Face Hub cache that segmentation-models-pytorch downloads into."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def imagenet_source(encoder: str, alternative: str = CLI_ALTERNATIVE) -> ImagenetSource:
    """The Hub repository and revision of ``encoder``'s ImageNet weights in the installed smp."""
    require_torch()
    from segmentation_models_pytorch.encoders import encoders

    if encoder not in encoders:
        raise RtsMapperError(
            f"segmentation-models-pytorch has no ImageNet weights for encoder {encoder!r}: {alternative}"
        )
    settings = encoders[encoder].get("pretrained_settings", {}).get(IMAGENET) or {}
    if "repo_id" not in settings or "revision" not in settings:
        raise RtsMapperError(
            f"this segmentation-models-pytorch offers no ImageNet weights for {encoder} on the "
            f"Hugging Face Hub (RTS Mapper needs 0.5 or later): {alternative}"
        )
    return ImagenetSource(encoder, settings["repo_id"], settings["revision"])


def fetch_imagenet_weights(encoder: str, alternative: str = CLI_ALTERNATIVE) -> FetchedWeights:
    """The local path of ``encoder``'s ImageNet weights: from the cache, or downloaded into it.

    Args:
        encoder: a segmentation-models-pytorch encoder name.
        alternative: the end of the offline message, naming the face's way to a local file.

    Raises:
        WeightsUnavailableError: not cached and the download failed; one line with the URL to
            fetch, the path to save it as, and ``alternative``.
    """
    from huggingface_hub import try_to_load_from_cache

    source = imagenet_source(encoder, alternative)
    cache_dir = hub_cache_dir()
    cached = try_to_load_from_cache(
        source.repo_id, source.filename, cache_dir=str(cache_dir), revision=source.revision
    )
    if isinstance(cached, str):  # found on disk; never asks the Hub
        return FetchedWeights(source, Path(cached), downloaded=False)
    LOGGER.info("downloading the ImageNet weights of %s from %s into %s", encoder, source.url, cache_dir)
    try:
        path = _download(source, cache_dir)
    except Exception as exc:  # offline, proxy, Hub down, disk full: the same way out for all
        raise WeightsUnavailableError(
            f"ImageNet weights for {encoder} are not in the cache and could not be downloaded "
            f"({type(exc).__name__}): fetch {source.url} and save it as "
            f"{source.cache_path(cache_dir)}, {alternative}"
        ) from exc
    return FetchedWeights(source, Path(path), downloaded=True)


def _download(source: ImagenetSource, cache_dir: Path) -> str:
    """segmentation-models-pytorch's own download (tests replace this to stay off the network)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_download

    # one try first: offline, hf_hub_download would retry for ~25 s, warning at each retry
    get_hf_file_metadata(source.url, timeout=10)
    return hf_hub_download(
        source.repo_id, filename=source.filename, revision=source.revision, cache_dir=str(cache_dir)
    )


def load_start_weights(model, encoder: str, weights: str | os.PathLike) -> str:
    """Load ``weights`` (``imagenet``, or a local weights file) into the model's encoder.

    Returns the card's ``encoder_init``: where the weights came from (the URL and the cached
    file, or the local file's name).
    """
    if not is_imagenet(weights):
        return load_encoder_weights(model, weights)
    fetched = fetch_imagenet_weights(encoder)
    load_encoder_weights(model, fetched.path)
    how = "downloaded to" if fetched.downloaded else "via cache"
    return f"ImageNet weights ({encoder}, {IMAGENET}) from {fetched.source.url} {how} {fetched.path}"
