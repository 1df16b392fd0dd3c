"""Inference on a Dask cluster: blocks of strips on two local worker processes give the single
run's probability raster pixel for pixel and its candidates outline for outline; a rerun after a
killed client computes only the missing blocks; a worker killed mid-block is survived."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from rts_mapper_plugin.core.cluster import KILL_AT_BLOCK_ENV, session
from rts_mapper_plugin.core.errors import Cancelled
from rts_mapper_plugin.core.model.blocks import plan_blocks
from rts_mapper_plugin.core.model.distributed import predict_on_cluster
from rts_mapper_plugin.core.model.inference import InferConfig, predict_raster
from rts_mapper_plugin.core.progress import Feedback
from tests.conftest import HIDE_DEEP_LEARNING, assert_cloud_optimized, run_python
from tests.data.fixtures import trained_model

pytest.importorskip("distributed")
CONFIG = InferConfig(device="cpu", threshold=0.5, min_area_m2=100.0)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The image the model was trained beside, and the single run over it."""
    model = trained_model()
    folder = tmp_path_factory.mktemp("single")
    image = model.parent / "2019.tif"
    result = predict_raster(model, image, folder / "prob.tif", CONFIG)
    assert len(result.candidates) >= 3
    return model, image, result


@pytest.fixture(scope="module")
def client():
    with session("local:2") as client:  # connected once for the module, shut down after
        yield client


def pixels(path) -> np.ndarray:
    with rasterio.open(path) as dataset:
        return dataset.read(1)


def same_candidates(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.geometry.equals_exact(y.geometry, 0.0), "outline for outline"
        assert x.attributes() == y.attributes()


def test_blocks_cover_the_rows_once_on_the_single_runs_grid():
    blocks = plan_blocks(700, 256, 32, strips_per_block=1)
    assert [(b.own_start, b.own_end) for b in blocks] == [(0, 224), (224, 444), (444, 700)]
    assert [b.strips for b in blocks] == [(0,), (0, 224), (224, 444)]


def test_two_workers_give_the_single_runs_raster_and_candidates(single, client, tmp_path):
    model, image, whole = single
    result = predict_on_cluster(
        model, image, tmp_path / "prob.tif", CONFIG, client=client, strips_per_block=1
    )
    assert np.array_equal(pixels(tmp_path / "prob.tif"), pixels(whole.prob_path)), "pixel for pixel"
    assert_cloud_optimized(tmp_path / "prob.tif")  # GDAL's own COG validator, as the single run's
    same_candidates(result.candidates, whole.candidates)
    assert result.tiles == whole.tiles and result.area_km2 == pytest.approx(whole.area_km2)
    assert "on 2 worker(s)" in result.device or "on 1 worker(s)" in result.device
    assert not (tmp_path / "prob.tif.blocks").exists(), "the blocks go once the run is whole"


def test_a_rerun_after_a_killed_client_computes_only_what_is_missing(single, client, tmp_path):
    model, image, whole = single
    done = []

    class StopAfterTwo(Feedback):
        def step(self, fraction):
            done.append(fraction)

        def check(self):
            if len(done) >= 2:
                raise Cancelled()

    with pytest.raises(Cancelled):
        predict_on_cluster(
            model,
            image,
            tmp_path / "prob.tif",
            CONFIG,
            client=client,
            strips_per_block=1,
            feedback=StopAfterTwo(),
        )
    assert not (tmp_path / "prob.tif").exists(), "nothing presented as complete"
    manifest = json.loads((tmp_path / "prob.tif.blocks" / "manifest.json").read_text())
    kept = list(manifest["blocks"])  # finished and recorded (a block done after the kill is redone)
    assert len(kept) >= 2
    result = predict_on_cluster(
        model, image, tmp_path / "prob.tif", CONFIG, client=client, strips_per_block=1
    )
    total = len(plan_blocks(rasterio.open(image).height, whole.card.tile_size, whole.card.overlap, 1))
    assert any(
        f"blocks computed on the cluster now ({len(kept)} finished before)" in n for n in result.notes
    ), result.notes
    assert any(f"{total - len(kept)} of {total} blocks" in n for n in result.notes)
    assert np.array_equal(pixels(tmp_path / "prob.tif"), pixels(whole.prob_path))
    same_candidates(result.candidates, whole.candidates)


def test_a_worker_killed_mid_block_is_survived(single, tmp_path, monkeypatch):
    model, image, whole = single
    marker = tmp_path / "killed"
    monkeypatch.setenv(KILL_AT_BLOCK_ENV, f"1:{marker}")  # the workers inherit it
    result = predict_on_cluster(
        model, image, tmp_path / "prob.tif", CONFIG, cluster="local:2", strips_per_block=1
    )
    assert marker.exists(), "a worker process died in block 1"
    assert np.array_equal(pixels(tmp_path / "prob.tif"), pixels(whole.prob_path))
    same_candidates(result.candidates, whole.candidates)


def test_the_command_line_runs_on_a_local_cluster(single, tmp_path, capsys):
    from rts_mapper_plugin.__main__ import main
    from rts_mapper_plugin.core.vectors import read_features

    model, image, whole = single
    args = ["infer", "--model", str(model), "--image", str(image), "--out", str(tmp_path / "c.gpkg")]
    args += ["--threshold", "0.5", "--min-area", "100", "--device", "cpu", "--cluster", "local:1"]
    assert main(args) == 0
    said = capsys.readouterr().out
    assert f"{len(whole.candidates)} candidates" in said and "blocks computed on the cluster now" in said
    assert len(read_features(str(tmp_path / "c.gpkg"))) == len(whole.candidates)
    assert not list(tmp_path.glob("c.gpkg.probability.tif*")), "no scratch raster left"


def test_the_client_needs_neither_torch_nor_the_weights(single, tmp_path):
    """QGIS on a laptop pointing at a cluster: the client checks the model's card and the
    configuration, only the workers load the weights. The client here is a Python in which torch
    cannot be imported; its local cluster's workers (fresh processes) have it."""
    model, image, whole = single
    code = HIDE_DEEP_LEARNING + (
        "import sys\n"
        "from rts_mapper_plugin.core.model.distributed import predict_on_cluster\n"
        "from rts_mapper_plugin.core.model.inference import InferConfig\n"
        f"config = InferConfig(device='cpu', threshold={CONFIG.threshold}, min_area_m2={CONFIG.min_area_m2})\n"
        f"result = predict_on_cluster({str(model)!r}, {str(image)!r}, {str(tmp_path / 'prob.tif')!r}, "
        "config, cluster='local:1')\n"
        "print(len(result.candidates), 'torch' in sys.modules)\n"
    )
    done = run_python(["-c", code])
    assert done.returncode == 0, done.stderr[-3000:]
    count, torch_in_client = done.stdout.split()[-2:]
    assert int(count) == len(whole.candidates) and torch_in_client == "False"
    assert np.array_equal(pixels(tmp_path / "prob.tif"), pixels(whole.prob_path)), "pixel for pixel"


def test_a_project_run_cancelled_on_the_cluster_goes_on_from_its_blocks(single, tmp_path):
    """The docks' path (infer_into_project): each run has a new probability raster of its own,
    so the blocks are kept under a name made of the run's inputs; the same run again, after a
    cancel, computes only the rest, records the single run's candidates and leaves no blocks."""
    from rts_mapper_plugin.core.project.store import MappingProject
    from rts_mapper_plugin.core.project.workflow import infer_into_project

    model, image, whole = single
    project = MappingProject.create(tmp_path / "project.gpkg", whole.crs).path
    steps = []
    stop_after_a_block = Feedback(progress=steps.append, is_cancelled=lambda: len(steps) >= 1)
    with pytest.raises(Cancelled):
        infer_into_project(project, model, image, CONFIG, cluster="local:2", feedback=stop_after_a_block)
    (kept,) = (tmp_path / "probability").glob("cluster-*.blocks")
    assert json.loads((kept / "manifest.json").read_text())["blocks"], "a finished block kept"
    assert MappingProject.open(project).runs() == [], "nothing recorded"
    assert not list((tmp_path / "probability").glob("*.tif")), "no raster presented"
    run = infer_into_project(project, model, image, CONFIG, cluster="local:2")
    assert run.candidates == len(whole.candidates)
    assert not kept.exists(), "the rerun took the kept blocks up, and they go once the run is whole"
