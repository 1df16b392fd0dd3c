"""Model files: the factory, safetensors + card, and refusing anything that would unpickle."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from rts_mapper_plugin.core.defaults import ENCODERS
from rts_mapper_plugin.core.errors import RtsMapperError
from rts_mapper_plugin.core.model.model_file import (
    ModelCard,
    create_model,
    load_encoder_weights,
    load_model,
    pick_device,
    read_card,
    save_model,
)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_factory_builds_every_offered_encoder(encoder):
    model = create_model(encoder).eval()
    with torch.inference_mode():
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 1, 64, 64)


def test_unknown_encoder():
    with pytest.raises(RtsMapperError, match="unknown encoder"):
        create_model("resnet9000")


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = create_model("resnet18").eval()
    card = ModelCard(encoder="resnet18", tile_size=384, overlap=48, threshold=0.6)
    path = save_model(model, card, tmp_path / "m.safetensors")
    loaded, loaded_card = load_model(path)
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(model(x), loaded(x))
    assert (loaded_card.tile_size, loaded_card.overlap, loaded_card.threshold) == (384, 48, 0.6)
    assert loaded_card.versions["torch"] == torch.__version__
    assert read_card(path).encoder == "resnet18"
    assert "DeepLabv3+ / resnet18" in read_card(path).summary()
    assert not list(tmp_path.glob("*.partial"))


def test_card_says_how_the_encoder_started(tmp_path):
    model = create_model("resnet18")
    donor = create_model("resnet18")
    state = {f"{k}": v for k, v in donor.encoder.state_dict().items()}
    state["fc.weight"] = torch.zeros(1000, 512)  # an ImageNet classifier head, ignored
    weights = tmp_path / "resnet18-imagenet.pth"
    torch.save(state, weights)
    note = load_encoder_weights(model, weights)
    assert "ImageNet weights from resnet18-imagenet.pth" in note
    assert torch.equal(model.encoder.conv1.weight, donor.encoder.conv1.weight)
    assert ModelCard().encoder_init.startswith("random")


def test_wrong_encoder_weights_are_refused(tmp_path):
    weights = tmp_path / "mobilenet.pth"
    torch.save(create_model("mobilenet_v2").encoder.state_dict(), weights)
    with pytest.raises(RtsMapperError, match="does not hold weights for this encoder"):
        load_encoder_weights(create_model("resnet18"), weights)


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, (f"touch {_Payload.marker}",))


def test_pickles_are_never_unpickled(tmp_path):
    _Payload.marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"conv1.weight": _Payload()}))
    with pytest.raises(RtsMapperError, match="pickled objects are refused"):
        load_encoder_weights(create_model("resnet18"), evil)
    with pytest.raises(RtsMapperError, match="not an RTS Mapper model file"):
        load_model(evil)
    assert not Path(_Payload.marker).exists()


def test_corrupt_and_mismatched_model_files(tmp_path):
    good = save_model(create_model("resnet18"), ModelCard(encoder="resnet18"), tmp_path / "good.safetensors")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(RtsMapperError, match="corrupt"):
        load_model(truncated)
    for name, content in (
        ("zeros", b"\x00" * 64),
        ("echo_x", b"x\n"),  # `echo x > bad.safetensors`: no header at all, not a truncated one
        ("empty", b""),
        ("text", b"these are not weights, just a long enough line of text\n" * 3),
    ):
        garbage = tmp_path / f"{name}.safetensors"
        garbage.write_bytes(content)
        with pytest.raises(RtsMapperError, match="is not an RTS Mapper model file") as caught:
            read_card(garbage)
        assert "truncated" not in str(caught.value)
        with pytest.raises(RtsMapperError, match="not an RTS Mapper model file"):
            load_model(garbage)
    cut_in_header = tmp_path / "cut_in_header.safetensors"
    cut_in_header.write_bytes(good.read_bytes()[:200])
    with pytest.raises(RtsMapperError, match="truncated"):
        read_card(cut_in_header)
    from safetensors.torch import save_file

    bare = tmp_path / "bare.safetensors"
    save_file({"x": torch.zeros(2)}, str(bare))
    with pytest.raises(RtsMapperError, match="without an RTS Mapper model card"):
        load_model(bare)
    # a card that claims another encoder than the weights
    header_length = int.from_bytes(good.read_bytes()[:8], "little")
    header = json.loads(good.read_bytes()[8 : 8 + header_length])
    card = json.loads(header["__metadata__"]["rts_mapper_card"])
    card["encoder"] = "resnet34"
    header["__metadata__"]["rts_mapper_card"] = json.dumps(card)
    new_header = json.dumps(header).encode()
    new_header += b" " * (-len(new_header) % 8)
    mismatched = tmp_path / "mismatched.safetensors"
    mismatched.write_bytes(
        len(new_header).to_bytes(8, "little") + new_header + good.read_bytes()[8 + header_length :]
    )
    with pytest.raises(RtsMapperError, match="card that does not match its weights"):
        load_model(mismatched)


def test_devices():
    assert pick_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(RtsMapperError, match="no CUDA device"):
            pick_device("cuda")
    with pytest.raises(RtsMapperError, match="unknown device"):
        pick_device("tpu")
