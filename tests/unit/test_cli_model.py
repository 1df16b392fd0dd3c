"""The model commands on bad input: one line naming the file, exit status 2, nothing left behind."""

from __future__ import annotations

import numpy as np
import pytest

from rts_mapper_plugin.core.model.model_file import ModelCard, create_model, save_model
from tests.conftest import run_python
from tests.data.fixtures import write_raster


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    return save_model(
        create_model("mobilenet_v2"),
        ModelCard(encoder="mobilenet_v2", tile_size=128, overlap=32),
        folder / "m.safetensors",
    )


def fails_cleanly(args: list[str], message: str) -> None:
    done = run_python(["-m", "rts_mapper_plugin", *args])
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_infer_on_an_unprepared_image_points_to_prepare(tmp_path, model_file):
    image = write_raster(tmp_path / "ps.tif", np.ones((4, 64, 64), np.uint16))
    fails_cleanly(
        ["infer", "--model", str(model_file), "--image", str(image), "--out", str(tmp_path / "c.gpkg")],
        "ps.tif: has 4 band(s) of uint16; the model takes the 8-bit RGB made by `prepare`",
    )
    assert not (tmp_path / "c.gpkg").exists()


def test_infer_with_a_corrupt_model(tmp_path, model_file):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(model_file.read_bytes()[:5000])
    image = write_raster(tmp_path / "rgb.tif", np.full((3, 64, 64), 100, np.uint8))
    fails_cleanly(
        ["infer", "--model", str(broken), "--image", str(image), "--out", str(tmp_path / "c.gpkg")],
        "broken.safetensors: is corrupt",
    )


def test_infer_extent_outside_and_unwritable_output(tmp_path, model_file):
    image = write_raster(tmp_path / "rgb.tif", np.full((3, 64, 64), 100, np.uint8))
    fails_cleanly(
        [
            "infer",
            "--model",
            str(model_file),
            "--image",
            str(image),
            "--out",
            str(tmp_path / "c.gpkg"),
            "--prob",
            str(tmp_path / "p.tif"),
            "--extent",
            "0,0,10,10",
        ],
        "outside the image",
    )
    assert not list(tmp_path.glob("p.tif*")) and not list(tmp_path.glob("c*.gpkg"))
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    fails_cleanly(
        ["infer", "--model", str(model_file), "--image", str(image), "--out", str(a_file / "c.gpkg")],
        "cannot create the output folder",
    )


def test_infer_writes_candidates_and_probability(tmp_path, model_file):
    image = write_raster(tmp_path / "rgb.tif", np.full((3, 200, 250), 100, np.uint8))
    done = run_python(
        [
            "-m",
            "rts_mapper_plugin",
            "infer",
            "--model",
            str(model_file),
            "--image",
            str(image),
            "--out",
            str(tmp_path / "c.gpkg"),
            "--prob",
            str(tmp_path / "p.tif"),
            "--year",
            "2019",
        ]
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "c.gpkg").exists() and (tmp_path / "p.tif").exists()
    assert "candidates" in done.stdout and "km²/min" in done.stdout


def test_train_and_chips_bad_input(tmp_path):
    fails_cleanly(
        ["train", "--chips", str(tmp_path), "--out", str(tmp_path / "m.safetensors")], "not a chip folder"
    )
    image = write_raster(tmp_path / "rgb.tif", np.full((3, 64, 64), 100, np.uint8))
    fails_cleanly(
        [
            "chips",
            "--image",
            str(image),
            "--positives",
            str(tmp_path / "none.gpkg"),
            "--out",
            str(tmp_path / "c"),
        ],
        "none.gpkg: no such file",
    )
    fails_cleanly(["model-info", str(image)], "rgb.tif: is not an RTS Mapper model file")


def test_a_reader_that_stops_early_is_not_an_error(model_file):
    """`model-info M | head -1`: the reader has gone before the card is printed; no traceback."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone: every write fails with EPIPE
    try:
        done = subprocess.run(
            [sys.executable, "-m", "rts_mapper_plugin", "model-info", str(model_file)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
