"""Tiled inference: no seams, slumps across window borders in one piece, bounded and safe."""

from __future__ import annotations

import os

import numpy as np
import pytest
import rasterio
import torch
from shapely.geometry import box

from rts_mapper_plugin.core.errors import Cancelled, RtsMapperError
from rts_mapper_plugin.core.model.candidates import CandidateBuilder, fill_holes, set_aside_known
from rts_mapper_plugin.core.model.inference import InferConfig, blend_weights, predict_raster, tile_origins
from rts_mapper_plugin.core.model.model_file import ModelCard, save_model
from rts_mapper_plugin.core.progress import Feedback
from rts_mapper_plugin.core.vectors import FeatureSet
from tests.conftest import assert_cloud_optimized
from tests.data.fixtures import red_threshold_model, trained_model, write_raster

ORIGIN = (490_000.0, 3_860_000.0)


def scene_with_rectangles(
    tmp_path, rectangles, shape=(700, 900), name="scene.tif", crs="EPSG:32646", pixel=3.0, origin=ORIGIN
):
    """An 8-bit RGB scene: dull background, bright-red rectangles (row0, row1, col0, col1)."""
    image = np.full((3, *shape), 90, np.uint8)
    for r0, r1, c0, c1 in rectangles:
        image[0, r0:r1, c0:c1] = 250
    return write_raster(tmp_path / name, image, crs=crs, origin=origin, pixel=pixel, nodata=0)


def predict(path, tmp_path, **kwargs):
    card = ModelCard(encoder="resnet18", tile_size=kwargs.pop("tile", 256), overlap=kwargs.pop("overlap", 32))
    settings = {k: kwargs.pop(k) for k in ("tta", "threshold", "min_area_m2") if k in kwargs}
    return predict_raster(
        None,
        path,
        kwargs.pop("prob", tmp_path / "prob.tif"),
        InferConfig(**settings),
        model=red_threshold_model(),
        card=card,
        **kwargs,
    )


def test_tile_grid_and_weights():
    assert tile_origins(1000, 256, 224) == [0, 224, 448, 672, 744]
    assert tile_origins(100, 256, 224) == [0]
    weights = blend_weights(256, 32)
    assert weights.min() > 0 and weights[128, 128] == 1.0
    assert weights[0, 128] < 0.01 and np.allclose(weights, weights.T)


def test_a_slump_across_window_borders_comes_out_whole(tmp_path):
    # tiles of 256 with stride 224: rows 200-300 and columns 400-520 cross tile and strip borders
    path = scene_with_rectangles(tmp_path, [(200, 300, 400, 520), (600, 640, 20, 60)])
    result = predict(path, tmp_path)
    areas = sorted(round(c.area_m2) for c in result.candidates)
    assert areas == [40 * 40 * 9, 100 * 120 * 9]
    big = max(result.candidates, key=lambda c: c.area_m2)
    expected = box(ORIGIN[0] + 400 * 3, ORIGIN[1] - 300 * 3, ORIGIN[0] + 520 * 3, ORIGIN[1] - 200 * 3)
    assert big.geometry.symmetric_difference(expected).area < 1e-6
    assert big.perimeter_m == pytest.approx(2 * (300 + 360))
    assert big.mean_prob > 0.99 and big.max_prob > 0.99 and big.status == "pending"


def test_diagonal_neighbours_across_a_chunk_border_are_one_candidate():
    from rasterio.transform import from_origin

    builder = CandidateBuilder(from_origin(*ORIGIN, 3, 3), rasterio.crs.CRS.from_epsg(32646), 0.5)
    top = np.zeros((10, 20), np.float32)
    top[5:10, 2:8] = 0.9  # ends on the chunk's last row at columns 2-7
    bottom = np.zeros((10, 20), np.float32)
    bottom[0:6, 8:14] = 0.8  # starts on the next row at columns 8-13: touches diagonally only
    builder.add_rows(0, top, np.ones_like(top, bool))
    builder.add_rows(10, bottom, np.ones_like(bottom, bool))
    (candidate,) = builder.finish(min_area_m2=0)
    assert candidate.area_m2 == pytest.approx((30 + 36) * 9)
    assert candidate.mean_prob == pytest.approx((30 * 0.9 + 36 * 0.8) / 66)


def test_no_seams_tiled_equals_one_piece(tmp_path):
    model_path = trained_model()
    source = model_path.parent / "2019.tif"
    with rasterio.open(source) as dataset:
        window = ((100, 580), (100, 580))
        crop = dataset.read(window=window)
        transform = dataset.window_transform(window)
    path = write_raster(tmp_path / "crop.tif", crop, origin=(transform.c, transform.f), nodata=0)
    whole = predict_raster(model_path, path, tmp_path / "whole.tif", InferConfig(tile_size=480, overlap=0))
    tiled = predict_raster(model_path, path, tmp_path / "tiled.tif", InferConfig(tile_size=192, overlap=64))
    with rasterio.open(tmp_path / "whole.tif") as a, rasterio.open(tmp_path / "tiled.tif") as b:
        one_piece, pieces = a.read(1).astype(float), b.read(1).astype(float)
    assert whole.tiles == 1 and tiled.tiles == 16
    difference = np.abs(one_piece - pieces)
    assert difference.mean() < 4, "tiled and one-piece agree within a few percent on average"

    def seam_ratio(probability: np.ndarray, tile_ends: list[int]) -> float:
        """Mean step across the columns where tiles end, over the mean step anywhere."""
        steps = np.abs(np.diff(probability, axis=1))
        return steps[:, [c - 1 for c in tile_ends]].mean() / steps.mean()

    assert seam_ratio(pieces, [192, 320, 448]) < 1.5  # tiles at 0, 128, 256, 288 (192 px wide)
    # the check has teeth: without overlap and blending the tile borders do show
    predict_raster(model_path, path, tmp_path / "raw.tif", InferConfig(tile_size=192, overlap=0))
    with rasterio.open(tmp_path / "raw.tif") as dataset:
        assert seam_ratio(dataset.read(1).astype(float), [192, 384]) > 3


def test_nodata_tiles_are_skipped_and_stay_nodata(tmp_path):
    image = np.full((3, 600, 800), 90, np.uint8)
    image[:, :, 400:] = 0
    path = write_raster(tmp_path / "half.tif", image, nodata=0)
    result = predict(path, tmp_path)
    assert result.skipped_tiles > 0 and result.tiles > result.skipped_tiles
    with rasterio.open(result.prob_path) as dataset:
        probability = dataset.read(1)
        assert (probability[:, 420:] == 255).all() and (probability[:, :380] <= 100).all()
    assert result.area_km2 == pytest.approx(600 * 400 * 9 / 1e6)


def test_output_keeps_georeferencing_and_is_tiled_compressed(tmp_path):
    path = scene_with_rectangles(tmp_path, [(10, 60, 10, 60)], shape=(300, 520))
    result = predict(path, tmp_path)
    with rasterio.open(path) as source, rasterio.open(result.prob_path) as output:
        assert (output.transform, output.crs, output.width, output.height) == (
            source.transform,
            source.crs,
            source.width,
            source.height,
        )
        assert output.profile["tiled"] and output.profile["compress"] == "deflate" and output.nodata == 255
        assert output.overviews(1) == [2, 4], "overviews until the image fits one 256-pixel tile"
    assert_cloud_optimized(result.prob_path)


def test_extent(tmp_path):
    path = scene_with_rectangles(tmp_path, [(200, 300, 400, 520), (600, 640, 20, 60)])
    extent = (ORIGIN[0] + 300 * 3, ORIGIN[1] - 400 * 3, ORIGIN[0] + 700 * 3, ORIGIN[1] - 100 * 3)
    result = predict(path, tmp_path, extent=extent)
    assert len(result.candidates) == 1
    with rasterio.open(result.prob_path) as dataset:
        assert (dataset.width, dataset.height) == (400, 300)
        assert dataset.transform.c == extent[0] and dataset.transform.f == extent[3]
    with pytest.raises(RtsMapperError, match="outside the image"):
        predict(path, tmp_path, extent=(0, 0, 10, 10))


def test_known_rts_are_set_aside(tmp_path):
    path = scene_with_rectangles(tmp_path, [(200, 300, 400, 520), (600, 640, 20, 60)])
    known = FeatureSet(
        [box(ORIGIN[0] + 410 * 3, ORIGIN[1] - 250 * 3, ORIGIN[0] + 420 * 3, ORIGIN[1] - 240 * 3)],
        [{}],
        rasterio.crs.CRS.from_epsg(32646),
    )
    result = predict(path, tmp_path, known=known)
    assert result.set_aside_known == 1 and len(result.candidates) == 1


def test_geographic_crs_areas_are_in_square_metres(tmp_path):
    # 0.00003 degrees is about 3.3 m east-west at 35 N and 3.3 m north-south
    path = scene_with_rectangles(
        tmp_path,
        [(100, 200, 100, 200)],
        shape=(300, 300),
        crs="EPSG:4326",
        pixel=0.00003,
        origin=(92.9, 35.0),
    )
    (candidate,) = predict(path, tmp_path).candidates
    expected = (100 * 0.00003 * 111_320 * np.cos(np.radians(34.9955))) * (100 * 0.00003 * 110_950)
    assert candidate.area_m2 == pytest.approx(expected, rel=0.02)


def test_min_area_holes_and_simplification():
    square = box(0, 0, 100, 100).difference(box(40, 40, 45, 45))
    assert fill_holes(square, 100).area == pytest.approx(10_000)
    assert fill_holes(square, 10).area == pytest.approx(10_000 - 25)
    candidates = []
    kept, set_aside = set_aside_known(candidates, None, rasterio.crs.CRS.from_epsg(32646))
    assert kept == [] and set_aside == 0


def test_min_area_filter(tmp_path):
    path = scene_with_rectangles(tmp_path, [(10, 17, 10, 17), (100, 130, 100, 130)], shape=(300, 300))
    areas = [round(c.area_m2) for c in predict(path, tmp_path).candidates]
    assert areas == [8100], "49 px x 9 m² = 441 m² is under the 0.05 ha minimum"


def test_cancel_leaves_nothing(tmp_path):
    path = scene_with_rectangles(tmp_path, [(200, 300, 400, 520)])
    calls = {"n": 0}

    def cancel() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    with pytest.raises(Cancelled):
        predict(path, tmp_path, feedback=Feedback(is_cancelled=cancel))
    assert not list(tmp_path.glob("prob.tif*"))


def test_bad_inputs(tmp_path):
    sixteen_bit = write_raster(tmp_path / "ps.tif", np.ones((4, 64, 64), np.uint16))
    with pytest.raises(RtsMapperError, match="8-bit RGB made by `prepare`"):
        predict(sixteen_bit, tmp_path)
    fine = scene_with_rectangles(tmp_path, [], shape=(64, 64))
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with pytest.raises(RtsMapperError, match="cannot create the output folder"):
        predict(fine, tmp_path, prob=a_file / "prob.tif")
    with pytest.raises(RtsMapperError, match="no such model file"):
        predict_raster(tmp_path / "missing.safetensors", fine)


class _OutOfMemoryAboveOne(torch.nn.Module):
    """Fails like a GPU does when a batch holds more than one tile."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = red_threshold_model()

    def forward(self, x):
        if x.shape[0] > 1:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.inner(x)


def test_out_of_memory_shrinks_the_batch(tmp_path):
    path = scene_with_rectangles(tmp_path, [(200, 300, 400, 520)])
    card = ModelCard(encoder="resnet18", tile_size=256, overlap=32)
    result = predict_raster(
        None, path, None, InferConfig(batch_size=4), model=_OutOfMemoryAboveOne(), card=card
    )
    assert result.batch_size == 1 and len(result.candidates) == 1
    assert any("batch size reduced" in note for note in result.notes)


def test_real_model_file(tmp_path):
    from rts_mapper_plugin.core.model.model_file import create_model

    model_path = save_model(
        create_model("mobilenet_v2"),
        ModelCard(encoder="mobilenet_v2", tile_size=128, overlap=32),
        tmp_path / "m.safetensors",
    )
    path = scene_with_rectangles(tmp_path, [(10, 60, 10, 60)], shape=(200, 300))
    result = predict_raster(model_path, path, tmp_path / "p.tif", InferConfig(device="cpu"))
    assert result.tiles == 6 and result.forward_seconds > 0 and result.card.encoder == "mobilenet_v2"


def test_a_second_run_with_the_same_model_does_not_trace_it_again(tmp_path, monkeypatch):
    """TorchScript keeps every traced graph (~40-65 MB a trace, measured): runs with the same
    model file reuse the traced model, so a QGIS session's memory does not grow run after run.
    A changed file (a retrained model) is traced afresh."""
    from rts_mapper_plugin.core.model.model_file import create_model

    traces = []
    real_trace = torch.jit.trace
    monkeypatch.setattr(torch.jit, "trace", lambda *a, **k: traces.append(1) or real_trace(*a, **k))
    card = ModelCard(encoder="mobilenet_v2", tile_size=128, overlap=32)
    model_path = save_model(create_model("mobilenet_v2"), card, tmp_path / "m.safetensors")
    path = scene_with_rectangles(tmp_path, [(10, 60, 10, 60)], shape=(200, 300))
    by_torch = InferConfig(device="cpu", backend="torch")
    first = predict_raster(model_path, path, tmp_path / "a.tif", by_torch)
    second = predict_raster(model_path, path, tmp_path / "b.tif", by_torch)
    assert len(traces) == 1
    with rasterio.open(tmp_path / "a.tif") as a, rasterio.open(tmp_path / "b.tif") as b:
        assert np.array_equal(a.read(), b.read()) and len(first.candidates) == len(second.candidates)

    os.utime(model_path, ns=(0, 1))  # the file changed (as a retrained model's does)
    predict_raster(model_path, path, None, by_torch)
    assert len(traces) == 2


def test_internal_mask_is_honoured(tmp_path):
    """Pixels masked by an internal mask (not a nodata value) are nodata, even if their values are not 0."""
    path = scene_with_rectangles(tmp_path, [(20, 80, 20, 80)], shape=(300, 300))
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "r+") as dataset:
        dataset.nodata = None
        mask = np.full((300, 300), 255, np.uint8)
        mask[:, 150:] = 0
        dataset.write_mask(mask)
    result = predict(path, tmp_path)
    with rasterio.open(result.prob_path) as dataset:
        probability = dataset.read(1)
    assert (probability[:, 160:] == 255).all() and (probability[:, :140] <= 100).all()
    assert len(result.candidates) == 1


def test_test_time_ensemble_undoes_every_view():
    """Each view's inverse is applied to its output: with all 8 views the prediction of a rotated
    or flipped tile is the same transform of the prediction (the ensemble is D4-invariant)."""
    from rts_mapper_plugin.core.model.inference import _Predictor
    from rts_mapper_plugin.core.model.model_file import create_model

    torch.manual_seed(0)
    model = create_model("resnet18").eval()
    card = ModelCard(encoder="resnet18", tile_size=64)
    tile = np.random.default_rng(0).integers(1, 255, (1, 3, 64, 64), dtype=np.uint8)
    ensemble = _Predictor(model, "cpu", 1, torch, 64, card, tta=8)
    plain = _Predictor(model, "cpu", 1, torch, 64, card, tta=1)
    once = ensemble(tile)[0]
    for turned, undo in (
        (np.rot90(tile, 1, axes=(2, 3)), lambda p: np.rot90(p, -1)),
        (tile[:, :, :, ::-1], lambda p: p[:, ::-1]),
        (np.swapaxes(tile, 2, 3), lambda p: p.T),
    ):
        again = undo(ensemble(np.ascontiguousarray(turned))[0])
        np.testing.assert_allclose(again, once, atol=1e-4)
    assert np.abs(plain(tile)[0] - once).max() > 1e-4, "a random model is not invariant by itself"


def test_test_time_ensemble_through_predict_raster(tmp_path):
    path = scene_with_rectangles(tmp_path, [(200, 300, 400, 520)])
    result = predict(path, tmp_path, tta=4)
    assert len(result.candidates) == 1 and any("4 views" in note for note in result.notes)
    with pytest.raises(RtsMapperError, match="views"):
        predict(path, tmp_path, tta=3)


def test_minimum_area_comes_from_the_card_unless_given(tmp_path):
    # two rectangles: 30 x 30 px (8100 m²) and 12 x 12 px (1296 m²) at 3 m
    path = scene_with_rectangles(tmp_path, [(100, 130, 100, 130), (400, 412, 400, 412)])
    card = ModelCard(encoder="resnet18", tile_size=256, overlap=32, min_area_m2=2000.0)

    def run(**settings):
        return predict_raster(
            None, path, None, InferConfig(**settings), model=red_threshold_model(), card=card
        )

    assert len(run().candidates) == 1, "the card's calibrated 2000 m² drops the small one"
    assert len(run(min_area_m2=500.0).candidates) == 2, "an explicit minimum wins"
