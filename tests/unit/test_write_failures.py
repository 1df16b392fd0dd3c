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
