"""Encoder start weights: a local file, or ImageNet through smp's own Hub cache, never the network
in tests; offline, one line that says what to fetch, where to put it, and the local-file way."""

from __future__ import annotations

import re

import pytest
import torch
from huggingface_hub import constants
from safetensors.torch import save_file

from rts_mapper_plugin.core.errors import RtsMapperError
from rts_mapper_plugin.core.imagery.prepare import prepare_image
from rts_mapper_plugin.core.model import weights as weights_module
from rts_mapper_plugin.core.model.chips import make_chips
from rts_mapper_plugin.core.model.model_file import create_model, read_card
from rts_mapper_plugin.core.model.training import TrainConfig, train_model
from rts_mapper_plugin.core.model.weights import (
    CLI_ALTERNATIVE,
    DOCK_ALTERNATIVE,
    WeightsUnavailableError,
    fetch_imagenet_weights,
    imagenet_source,
    load_start_weights,
)
from tests.conftest import run_python
from tests.data.fixtures import small_region


def no_network(*_args, **_kwargs):
    raise AssertionError("the network was used")


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache, and a downloader that fails the test if it is called."""
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(weights_module, "_download", no_network)
    return cache


def put_in_cache(encoder: str, cache_dir=None):
    """A valid encoder state dict saved where smp's download would have left it."""
    state = {k: v.contiguous() for k, v in create_model(encoder).encoder.state_dict().items()}
    path = imagenet_source(encoder).cache_path(cache_dir)
    path.parent.mkdir(parents=True)
    save_file(state, str(path))
    return state, path


@pytest.fixture(scope="module")
def chips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    region = small_region(folder / "region", size=400, seed=8)
    image = prepare_image(region.scenes[2019], folder / "2019.tif").path
    return make_chips(image, region.truth_uri("rts"), None, folder / "chips", size=128, buffer_m=60)


def one_epoch(weights: str) -> TrainConfig:
    return TrainConfig(
        encoder="resnet18", epochs=1, batch_size=4, crop_size=64, crops_per_chip=1, imagenet_weights=weights
    )


def test_the_source_is_smps_own():
    source = imagenet_source("resnet34")
    assert source.repo_id == "smp-hub/resnet34.imagenet" and len(source.revision) == 40
    assert (
        source.url
        == f"https://huggingface.co/smp-hub/resnet34.imagenet/resolve/{source.revision}/model.safetensors"
    )
    with pytest.raises(RtsMapperError, match="no ImageNet weights for encoder 'resnet9000'"):
        imagenet_source("resnet9000")


def test_a_local_file_trains_and_the_card_names_it(chips, tmp_path, hub_cache):
    donor = create_model("resnet18").encoder
    local = tmp_path / "resnet18-imagenet.pth"
    torch.save(donor.state_dict(), local)
    result = train_model(chips, tmp_path / "m.safetensors", one_epoch(str(local)))
    assert read_card(result.model_path).encoder_init.startswith("ImageNet weights from resnet18-imagenet.pth")


def test_imagenet_from_a_filled_cache_uses_no_network(chips, tmp_path, hub_cache):
    state, cached = put_in_cache("resnet18")
    fetched = fetch_imagenet_weights("resnet18")
    assert fetched.path == cached and not fetched.downloaded
    model = create_model("resnet18")
    note = load_start_weights(model, "resnet18", "ImageNet")
    assert torch.equal(model.encoder.conv1.weight, state["conv1.weight"])
    source = imagenet_source("resnet18")
    assert note == f"ImageNet weights (resnet18, imagenet) from {source.url} via cache {cached}"
    result = train_model(chips, tmp_path / "m.safetensors", one_epoch("imagenet"))
    assert read_card(result.model_path).encoder_init == note, "the card records the origin"


def test_imagenet_downloads_into_the_cache_once(hub_cache, monkeypatch):
    calls = []

    def download(source, cache_dir):
        calls.append(source.repo_id)
        return str(put_in_cache(source.encoder, cache_dir)[1])

    monkeypatch.setattr(weights_module, "_download", download)
    first = fetch_imagenet_weights("resnet18")
    second = fetch_imagenet_weights("resnet18")
    assert calls == ["smp-hub/resnet18.imagenet"] and first.downloaded and not second.downloaded
    assert first.path == second.path and first.path.is_relative_to(hub_cache)


def offline(*_args, **_kwargs):
    raise OSError("Network is unreachable")


def test_offline_says_in_one_line_what_to_fetch_and_the_way_round(hub_cache, monkeypatch):
    monkeypatch.setattr(weights_module, "_download", offline)
    source = imagenet_source("resnet34")
    with pytest.raises(WeightsUnavailableError) as caught:
        load_start_weights(create_model("resnet18"), "resnet34", "imagenet")
    message = str(caught.value)
    assert "\n" not in message
    assert source.url in message and str(source.cache_path(hub_cache)) in message
    assert message.endswith(CLI_ALTERNATIVE)
    with pytest.raises(WeightsUnavailableError, match=f"{re.escape(DOCK_ALTERNATIVE)}$"):
        fetch_imagenet_weights("resnet34", alternative=DOCK_ALTERNATIVE)


# The CLI in a clean interpreter with every connection refused (the real download code runs).
BLOCK_NETWORK = """
import socket, sys
def refuse(*args, **kwargs):
    raise OSError("network blocked by the test")
socket.socket.connect = refuse
socket.getaddrinfo = refuse
socket.create_connection = refuse
from rts_mapper_plugin.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def test_cli_train_weights_imagenet_offline_exits_2_with_one_line(tmp_path):
    cache = tmp_path / "hub"
    done = run_python(
        [
            "-c",
            BLOCK_NETWORK,
            "train",
            "--chips",
            str(tmp_path / "chips"),
            "--out",
            str(tmp_path / "m.safetensors"),
            "--encoder",
            "resnet18",
            "--weights",
            "imagenet",
        ],
        env={"HF_HUB_CACHE": str(cache), "HF_HUB_DISABLE_PROGRESS_BARS": "1"},
    )
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ImageNet weights for resnet18"), done.stderr
    source = imagenet_source("resnet18")
    assert source.url in lines[0] and str(source.cache_path(cache)) in lines[0]
    assert lines[0].endswith(CLI_ALTERNATIVE)
    assert not (tmp_path / "m.safetensors").exists()
