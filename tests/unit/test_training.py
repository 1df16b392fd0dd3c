"""Training: it learns, it is deterministic, it resumes, and a cancel keeps the best model."""

from __future__ import annotations

import pytest
import torch

from rts_mapper_plugin.core.errors import Cancelled, RtsMapperError
from rts_mapper_plugin.core.imagery.prepare import prepare_image
from rts_mapper_plugin.core.model.chips import make_chips
from rts_mapper_plugin.core.model.model_file import load_model, read_card
from rts_mapper_plugin.core.model.training import TrainConfig, checkpoint_path, train_model
from rts_mapper_plugin.core.progress import Feedback
from tests.data.fixtures import small_region


@pytest.fixture(scope="module")
def chips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    region = small_region(folder / "region", size=400, seed=8)
    image = prepare_image(region.scenes[2019], folder / "2019.tif").path
    return make_chips(
        image,
        region.truth_uri("rts"),
        region.truth_uri("lookalikes"),
        folder / "chips",
        size=128,
        buffer_m=60,
    )


def tiny(**changes) -> TrainConfig:
    settings = {
        "encoder": "resnet18",
        "epochs": 3,
        "batch_size": 4,
        "crop_size": 64,
        "crops_per_chip": 1,
        "learning_rate": 2e-3,
        "seed": 3,
    }
    settings.update(changes)
    return TrainConfig(**settings)


def weights(path):
    model, _ = load_model(path)
    return model.state_dict()


def test_trains_saves_best_model_with_card_and_checkpoint(chips, tmp_path):
    epochs = []
    result = train_model(chips, tmp_path / "m.safetensors", tiny(), on_epoch=epochs.append)
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"], "it learns"
    card = read_card(result.model_path)
    assert card.encoder == "resnet18" and card.training["positives"] == chips.positives
    assert len(card.history) == 3 and card.training["best_epoch"] == result.best_epoch
    assert card.encoder_init.startswith("random")
    assert checkpoint_path(result.model_path).exists()


def test_deterministic_with_a_seed(chips, tmp_path):
    a = train_model(chips, tmp_path / "a.safetensors", tiny(epochs=2))
    b = train_model(chips, tmp_path / "b.safetensors", tiny(epochs=2))
    wa, wb = weights(a.model_path), weights(b.model_path)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    c = train_model(chips, tmp_path / "c.safetensors", tiny(epochs=2, seed=4))
    wc = weights(c.model_path)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def cancel_after(steps: int) -> Feedback:
    calls = {"n": 0}

    def cancelled() -> bool:
        calls["n"] += 1
        return calls["n"] > steps

    return Feedback(is_cancelled=cancelled)


def test_cancel_keeps_the_best_model_and_resume_matches_an_unbroken_run(chips, tmp_path):
    unbroken = train_model(chips, tmp_path / "unbroken.safetensors", tiny(patience=99))
    path = tmp_path / "broken.safetensors"
    # cancel part-way through the third epoch (feedback is checked per batch and in validation)
    per_epoch = -(-len(chips.train) * 1 // 4) + len(chips.val)
    with pytest.raises(Cancelled, match="best model so far"):
        train_model(chips, path, tiny(patience=99), feedback=cancel_after(2 * per_epoch + 1))
    assert path.exists(), "the best model so far is kept"
    assert any("cancelled" in note for note in read_card(path).training["notes"])
    resumed = train_model(chips, path, tiny(patience=99), resume=True)
    assert resumed.epochs_run == 3
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in unbroken.history]
    a, b = weights(unbroken.model_path), weights(resumed.model_path)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_early_stopping(chips, tmp_path):
    # lr 0 still lets BatchNorm statistics drift, so tiny IoU changes do not count as progress
    config = tiny(epochs=10, learning_rate=0.0, patience=2, min_delta=0.05)
    result = train_model(chips, tmp_path / "m.safetensors", config)
    assert result.stopped_early and result.epochs_run == 3


def test_fine_tunes_from_a_previous_model(chips, tmp_path):
    first = train_model(chips, tmp_path / "first.safetensors", tiny(epochs=1))
    second = train_model(
        chips,
        tmp_path / "second.safetensors",
        tiny(epochs=1, encoder="resnet34", init_model=str(first.model_path)),
    )
    card = read_card(second.model_path)
    assert card.encoder == "resnet18", "the encoder follows the model being fine-tuned"
    assert card.encoder_init.startswith("fine-tuned from first.safetensors")


def test_resume_without_checkpoint_and_empty_chips(chips, tmp_path):
    with pytest.raises(RtsMapperError, match="no checkpoint"):
        train_model(chips, tmp_path / "new.safetensors", tiny(), resume=True)
    with pytest.raises(RtsMapperError, match="not a chip folder"):
        train_model(tmp_path, tmp_path / "x.safetensors", tiny())


def test_without_validation_chips_the_first_epoch_is_saved(chips, tmp_path):
    # with no validation chips the score is -train_loss; Dice + BCE starts above 1, so a best
    # score starting at -1 never improved and no model was written (the tiny-region demo failed)
    import dataclasses

    no_val = dataclasses.replace(chips, chips=[dataclasses.replace(c, split="train") for c in chips.chips])
    result = train_model(no_val, tmp_path / "m.safetensors", tiny(epochs=1))
    assert result.history[0]["train_loss"] > 1.0, "the case this guards: a loss above 1"
    assert result.best_val_iou is None and result.model_path.is_file()


def test_model_selection_on_polygon_f1_writes_the_operating_point_into_the_card(chips, tmp_path):
    from rts_mapper_plugin.core.model.training import MIN_AREA_GRID_M2, THRESHOLD_GRID

    estimates = []
    result = train_model(chips, tmp_path / "m.safetensors", tiny(epochs=2), on_estimate=estimates.append)
    for entry in result.history:
        assert 0 <= entry["val_f1"] <= 1 and 0 <= entry["val_iou"] <= 1
        assert entry["val_threshold"] in THRESHOLD_GRID and entry["val_min_area_m2"] in MIN_AREA_GRID_M2
        assert entry["seconds_per_step"] > 0 and entry["train_seconds"] <= entry["seconds"]
    best = next(h for h in result.history if h["epoch"] == result.best_epoch)
    assert best["val_f1"] == max(h["val_f1"] for h in result.history), "the best F1 is kept"
    card = read_card(result.model_path)
    assert (card.threshold, card.min_area_m2) == (best["val_threshold"], best["val_min_area_m2"])
    calibration = card.training["calibration"]
    assert calibration["f1"] == best["val_f1"] and calibration["iou_threshold"] == 0.5
    assert result.best_val_f1 == best["val_f1"]
    assert len(estimates) == 1 and estimates[0].seconds_per_step > 0
    assert "2 epochs ≈" in estimates[0].describe()


def test_augmentation_keeps_nodata_labels_and_range():
    import numpy as np

    from rts_mapper_plugin.core.model.chips import IGNORE
    from rts_mapper_plugin.core.model.training import _augment, _crop

    rng = np.random.default_rng(0)
    image = rng.integers(1, 256, (3, 120, 120), dtype=np.uint8)
    image[:, :, :30] = 0  # nodata strip
    label = np.zeros((120, 120), np.uint8)
    label[40:80, 50:90] = 1
    label[:, :30] = IGNORE
    for _ in range(20):
        crop, crop_label = _crop(image, label, 64, rng, 1.0, (0.7, 1.4))
        assert crop.shape == (3, 64, 64) and crop_label.shape == (64, 64)
        out, out_label = _augment(crop, crop_label, rng)
        invalid = ~crop.any(axis=0) | (crop_label == IGNORE)
        zero = out.max(axis=0) == 0
        assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 255
        assert set(np.unique(out_label)) <= {0, 1, IGNORE}
        # nodata is rotated and flipped with its label and stays 0; valid pixels never become 0
        assert zero.sum() == invalid.sum() and zero[out_label == IGNORE].all()
        assert (out_label == 1).sum() == (crop_label == 1).sum()


def test_bfloat16_only_where_native():
    from rts_mapper_plugin.core.model.training import resolve_precision

    assert resolve_precision("float32", "cpu") == "float32"
    assert resolve_precision("auto", "cpu") in ("bfloat16", "float32")
    with pytest.raises(RtsMapperError, match="precision"):
        resolve_precision("fp8", "cpu")
