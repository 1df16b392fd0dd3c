"""The model engine's promise, through the command line as a user runs it: chips and train on one
synthetic region, infer on another the model never saw, F1 >= 0.8 at IoU 0.5 against its truth."""

from __future__ import annotations

import json

import pytest

from rts_mapper_plugin.core.imagery.prepare import prepare_image
from rts_mapper_plugin.example.synthetic import RegionConfig, generate_region
from tests.conftest import assert_valid_geopackage, run_python
from tests.data.fixtures import WILLOW

# Trains and infers for real: minutes alone, more on a busy machine; stopped only when the CLI
# prints nothing for a long time (a hang), never for being slow (speed is `make bench`'s).
pytestmark = [pytest.mark.slow]


def cli(*args: str) -> str:
    done = run_python(["-m", "rts_mapper_plugin", *args])
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_train_on_one_region_detect_on_another(tmp_path):
    images, truths = {}, {}
    for name, seed, size in (("train", 11, 1200), ("test", 12, 900)):
        config = RegionConfig(
            size=size,
            seed=seed,
            rts_per_km2=5.0,
            bare_per_km2=1.2,
            ponds_per_km2=0.6,
            pits_per_km2=0.4,
            shapes_path=str(WILLOW) if WILLOW.exists() else None,
        )
        region = generate_region(tmp_path / name, config)
        images[name] = prepare_image(region.scenes[2019], tmp_path / name / "2019.tif").path
        truths[name] = region
    train = truths["train"]
    cli(
        "chips",
        "--image",
        str(images["train"]),
        "--positives",
        train.truth_uri("rts"),
        "--negatives",
        train.truth_uri("lookalikes"),
        "--out",
        str(tmp_path / "chips"),
        "--size",
        "256",
        "--buffer",
        "150",
        "--val-fraction",
        "0.15",
    )
    cli(
        "train",
        "--chips",
        str(tmp_path / "chips"),
        "--out",
        str(tmp_path / "model.safetensors"),
        "--encoder",
        "resnet18",
        "--epochs",
        "14",
        "--crop-size",
        "192",
        "--lr",
        "1e-3",
        "--tile-size",
        "384",
    )
    out = cli(
        "infer",
        "--model",
        str(tmp_path / "model.safetensors"),
        "--image",
        str(images["test"]),
        "--out",
        str(tmp_path / "candidates.gpkg"),
        "--prob",
        str(tmp_path / "prob.tif"),
    )
    assert "candidates" in out
    assert_valid_geopackage(tmp_path / "candidates.gpkg")
    figures = json.loads(
        cli(
            "evaluate",
            "--pred",
            str(tmp_path / "candidates.gpkg"),
            "--truth",
            truths["test"].truth_uri("rts"),
        )
    )
    print(figures)
    assert figures["f1"] >= 0.8, figures
