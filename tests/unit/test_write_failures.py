"""Writing fails half way (a full disk, a file-size limit): one line naming the output, exit
status 2, nothing left at the output's name. Simulated without root by a file-size limit on the
process (RLIMIT_FSIZE: a write past it fails as on a full disk); `make faults` does the same on
a real full tmpfs and a read-only one."""

from __future__ import annotations

import resource
import signal
import sys

import numpy as np
import pytest

from tests.data.fixtures import planetscope_like, write_raster
from tests.waiting import run_watched


def cli_limited(*args: str, limit: int):
    """The CLI in a process that cannot write a file past ``limit`` bytes (inputs are only read)."""

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return run_watched([sys.executable, "-m", "rts_mapper_plugin", *args], preexec_fn=limited)


def one_error_line(done) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip() and " % (" not in line]
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-2000:]
    return lines[0]


def test_prepare_that_cannot_write_blames_the_output_not_the_input(tmp_path):
    scene = write_raster(tmp_path / "scene.tif", planetscope_like(rows=400, cols=400, seed=1), nodata=0)
    out = tmp_path / "out" / "prepared.tif"
    line = one_error_line(cli_limited("prepare", str(scene), "--out", str(out), limit=40_000))
    assert str(out) in line and "could not be written" in line and "truncated or corrupt" not in line
    assert not list(out.parent.glob("prepared*")), "nothing half-written"


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".shp"])
def test_candidates_that_cannot_be_written_leave_nothing(tmp_path, suffix):
    pytest.importorskip("torch")
    from rts_mapper_plugin.core.model.model_file import ModelCard, create_model, save_model

    model = save_model(
        create_model("mobilenet_v2"),
        ModelCard(encoder="mobilenet_v2", tile_size=64, overlap=8),
        tmp_path / "m.safetensors",
    )
    rgb = np.random.default_rng(3).integers(1, 256, (3, 600, 600), dtype=np.uint8)
    image = write_raster(tmp_path / "rgb.tif", rgb)
    out = tmp_path / "out" / f"candidates{suffix}"
    done = cli_limited(
        "infer",
        "--model",
        str(model),
        "--image",
        str(image),
        "--out",
        str(out),
        "--threshold",
        "0.01",
        "--device",
        "cpu",
        limit=3_000,
    )
    line = one_error_line(done)
    assert "candidates" in line and "could not be written" in line
    assert not list(out.parent.glob("candidates*")), "nothing half-written"


@pytest.fixture(scope="module")
def region_chips(tmp_path_factory):
    """A prepared image, its RTS outlines and chips cut from them (for the chips and train CLI)."""
    from rts_mapper_plugin.core.imagery.prepare import prepare_image
    from rts_mapper_plugin.core.model.chips import make_chips
    from tests.data.fixtures import small_region

    folder = tmp_path_factory.mktemp("write_failures")
    region = small_region(folder / "region", size=400, seed=8)
    image = prepare_image(region.scenes[2019], folder / "2019.tif").path
    chips = make_chips(image, region.truth_uri("rts"), None, folder / "chips", size=128, buffer_m=60)
    return image, region.truth_uri("rts"), chips.folder


def test_chips_that_cannot_be_written_blame_the_chips_folder_and_leave_nothing(tmp_path, region_chips):
    image, positives, _ = region_chips
    out = tmp_path / "out" / "chips"
    out.parent.mkdir()
    args = ("chips", "--image", str(image), "--positives", positives, "--out", str(out), "--size", "128")
    line = one_error_line(cli_limited(*args, limit=3_000))
    assert str(out) in line and "could not be written" in line and "truncated or corrupt" not in line
    assert not list(out.parent.iterdir()), "no chips folder, no chips.partial"


TRAIN = ("--encoder", "mobilenet_v2", "--epochs", "1", "--batch-size", "4", "--crop-size", "64")
TRAIN += ("--tile-size", "128", "--device", "cpu")


def test_training_that_cannot_save_says_so_in_one_line_and_keeps_nothing(tmp_path, region_chips):
    pytest.importorskip("torch")
    out = tmp_path / "out" / "m.safetensors"
    done = cli_limited("train", "--chips", str(region_chips[2]), "--out", str(out), *TRAIN, limit=1_000_000)
    line = one_error_line(done)
    assert str(out) in line and "could not be written" in line and "no model was kept" in line
    assert not list(out.parent.iterdir()), "no model, no .partial, no checkpoint"


def test_training_whose_checkpoint_cannot_be_saved_says_which_model_is_kept(tmp_path, region_chips):
    """The model (18 MB) fits under the limit, its checkpoint with the optimiser (53 MB) does not."""
    pytest.importorskip("torch")
    from rts_mapper_plugin.core.model.model_file import load_model

    out = tmp_path / "m.safetensors"
    done = cli_limited("train", "--chips", str(region_chips[2]), "--out", str(out), *TRAIN, limit=30_000_000)
    line = one_error_line(done)
    assert "m.checkpoint.safetensors" in line and f"the best model so far (epoch 1) is kept at {out}" in line
    assert load_model(out)[1].encoder == "mobilenet_v2", "the model said to be kept is whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"], "no partial checkpoint"


def test_a_killed_prepares_scratch_folder_is_removed_by_the_next_run(tmp_path):
    from rts_mapper_plugin.core.imagery.prepare import prepare_image

    scene = write_raster(tmp_path / "scene.tif", planetscope_like(rows=300, cols=300, seed=2), nodata=0)
    out = tmp_path / "out" / "prepared.tif"
    left = out.with_name("prepared.tif.scratch")  # what a run killed outright leaves
    (left / "warped").mkdir(parents=True)
    (left / "warped" / "scene.vrt").write_text("half")
    prepare_image(scene, out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["prepared.tif"]
