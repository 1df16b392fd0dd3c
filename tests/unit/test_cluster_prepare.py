"""Imagery preparation on a Dask cluster: pieces of window rows on two local worker processes give
the single run's image pixel for pixel (overviews and tags too), on a cloudy two-CRS PlanetScope
mosaic and on the real Peel Sentinel-2 chip; a rerun after a killed client prepares only the
missing pieces; a worker killed mid-piece is survived; GPU workers of a local cluster get one GPU
each; a cluster run reads images from a URL (GDAL's /vsicurl/) as well as from a path."""

from __future__ import annotations

import http.server
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import rasterio

from rts_mapper_plugin.core.cluster import KILL_AT_BLOCK_ENV, process_threads, session, worker_gpus
from rts_mapper_plugin.core.errors import Cancelled
from rts_mapper_plugin.core.imagery.pieces import plan_pieces
from rts_mapper_plugin.core.imagery.prepare import prepare_image
from rts_mapper_plugin.core.progress import Feedback
from tests.conftest import REAL_DATA, assert_cloud_optimized, requires_real_data
from tests.data.products import planetscope_scene

pytest.importorskip("distributed")
WINDOW = 16  # 16-pixel windows: a 96-row mosaic is two pieces of 4 window rows


@pytest.fixture(scope="module")
def client():
    with session("local:2") as client:  # connected once for the module, shut down after
        yield client


@pytest.fixture(scope="module")
def mosaic(tmp_path_factory):
    """Scene A, cloudy in a corner (its UDM2), and scene B in another UTM zone (warped onto A's
    grid, with its own UDM2), prepared once in this process."""
    from rasterio.warp import transform as warp

    folder = tmp_path_factory.mktemp("mosaic")
    a = planetscope_scene(folder / "a", bands=4, udm2_regions={"cloud": (slice(0, 16), slice(0, 16))})
    (x45,), (y45,) = warp("EPSG:32646", "EPSG:32645", [491_001.0 + 120.0], [3_861_003.0 - 60.0])
    b = planetscope_scene(folder / "b", "20220706_031500_1027", bands=4, crs="EPSG:32645", origin=(x45, y45))
    sources = [a.scene, b.scene]
    single = prepare_image(sources, folder / "single.tif", window_size=WINDOW)
    assert any("reprojected" in n for n in single.notes), "B is warped onto A's grid"
    return sources, single


def everything(path) -> tuple[np.ndarray, list[np.ndarray], dict]:
    """Pixels, every overview level, and the tags."""
    with rasterio.open(path) as dataset:
        levels = dataset.overviews(1)
        overviews = [dataset.read(out_shape=(3, dataset.height // f, dataset.width // f)) for f in levels]
        return dataset.read(), overviews, dataset.tags()


def assert_same_image(a, b) -> None:
    pixels_a, overviews_a, tags_a = everything(a)
    pixels_b, overviews_b, tags_b = everything(b)
    assert np.array_equal(pixels_a, pixels_b), "pixel for pixel"
    assert len(overviews_a) == len(overviews_b)
    for x, y in zip(overviews_a, overviews_b):
        assert np.array_equal(x, y), "overviews"
    assert tags_a == tags_b


def test_pieces_cover_the_rows_once_on_the_single_runs_windows():
    assert plan_pieces(96, 16, 4) == [(0, 64), (64, 96)]
    assert plan_pieces(100, 1024, 4) == [(0, 100)]


def test_two_workers_give_the_single_runs_image(mosaic, client, tmp_path):
    sources, single = mosaic
    result = prepare_image(sources, tmp_path / "cluster.tif", window_size=WINDOW, client=client)
    assert_same_image(tmp_path / "cluster.tif", single.path)
    assert_cloud_optimized(tmp_path / "cluster.tif")  # GDAL's own COG validator
    assert (result.width, result.height, result.stretch) == (single.width, single.height, single.stretch)
    assert "2 of 2 pieces prepared on the cluster now (0 finished before)" in result.notes
    assert not (tmp_path / "cluster.tif.blocks").exists(), "the pieces go once the image is whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster.tif"], "no scratch left"


@requires_real_data("peel", "S2_20210821T210019_20210821T210020_T08WMA.tif")
def test_the_real_sentinel2_chip_on_the_cluster(client, tmp_path):
    scene = REAL_DATA / "peel" / "S2_20210821T210019_20210821T210020_T08WMA.tif"
    single = prepare_image(scene, tmp_path / "single.tif", bands="3,2,1", window_size=32)
    result = prepare_image(scene, tmp_path / "cluster.tif", bands="3,2,1", window_size=32, client=client)
    assert "2 of 2 pieces prepared on the cluster now (0 finished before)" in result.notes
    assert_same_image(tmp_path / "cluster.tif", single.path)


def test_a_rerun_after_a_killed_client_prepares_only_what_is_missing(mosaic, client, tmp_path):
    sources, single = mosaic
    steps = []
    # 2 steps before the cluster runs, then one per piece: the client is stopped after one piece
    stop_after_one_piece = Feedback(progress=steps.append, is_cancelled=lambda: len(steps) >= 3)
    out = tmp_path / "cluster.tif"
    with pytest.raises(Cancelled):
        prepare_image(sources, out, window_size=WINDOW, client=client, feedback=stop_after_one_piece)
    assert not out.exists(), "nothing presented as complete"
    manifest = json.loads((tmp_path / "cluster.tif.blocks" / "manifest.json").read_text())
    assert len(manifest["blocks"]) == 1
    result = prepare_image(sources, out, window_size=WINDOW, client=client)
    assert "1 of 2 pieces prepared on the cluster now (1 finished before)" in result.notes
    assert_same_image(out, single.path)


def test_a_worker_killed_mid_piece_is_survived(mosaic, tmp_path, monkeypatch):
    sources, single = mosaic
    marker = tmp_path / "killed"
    monkeypatch.setenv(KILL_AT_BLOCK_ENV, f"1:{marker}")  # the workers inherit it
    prepare_image(sources, tmp_path / "cluster.tif", window_size=WINDOW, cluster="local:2")
    assert marker.exists(), "a worker process died in piece 1"
    assert_same_image(tmp_path / "cluster.tif", single.path)


def test_the_command_line_prepares_on_a_local_cluster(mosaic, tmp_path, capsys):
    from rts_mapper_plugin.__main__ import main

    sources, single = mosaic
    out = tmp_path / "cli.tif"
    assert main(["prepare", "--out", str(out), "--cluster", "local:1", *map(str, sources)]) == 0
    said = capsys.readouterr()
    assert "pieces prepared on the cluster now" in said.out
    assert "of 1 blocks done" in said.err and "km²/min on the cluster" in said.err, "live throughput"
    with rasterio.open(out) as a, rasterio.open(single.path) as b:
        assert np.array_equal(a.read(), b.read())


def test_local_workers_share_the_cores_and_get_one_gpu_each(monkeypatch):
    """No GPU here: the pinning is checked on the worker processes' own environment, with the
    machine said to have GPUs 4 and 6 (CUDA_VISIBLE_DEVICES, as a shared GPU server gives them);
    each worker's model gets its share of the cores (two processes each using every core fight
    over them)."""
    assert worker_gpus(3, ["0", "1"]) == ["0", "1", "0"]
    assert worker_gpus(2, []) == [None, None]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    with session("local:2") as client:
        seen = client.run(lambda: os.environ.get("CUDA_VISIBLE_DEVICES"))
        threads = client.run(process_threads)
    assert sorted(seen.values()) == ["4", "6"], seen
    assert set(threads.values()) == {max(1, (os.cpu_count() or 1) // 2)}, threads


class RangeRequestHandler(http.server.SimpleHTTPRequestHandler):
    """A static file server that answers byte ranges, as a cloud store does (GDAL's /vsicurl/
    reads a COG by ranges)."""

    def log_message(self, *args) -> None:
        pass

    def send_head(self):
        wanted, path = self.headers.get("Range", ""), Path(self.translate_path(self.path))
        if not wanted.startswith("bytes=") or not path.is_file():
            return super().send_head()
        data = path.read_bytes()
        first, _, last = wanted[len("bytes=") :].partition("-")
        first, last = int(first), min(int(last or len(data) - 1), len(data) - 1)
        self.send_response(206)
        self.send_header("Content-Type", "image/tiff")
        self.send_header("Content-Range", f"bytes {first}-{last}/{len(data)}")
        self.send_header("Content-Length", str(last - first + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return io.BytesIO(data[first : last + 1])


def test_images_from_a_url_gdal_opens(mosaic, client, tmp_path):
    """Workers read a cloud-optimised GeoTIFF over HTTP (/vsicurl/, served here on localhost):
    the same probability raster and candidates as from the file."""
    import functools
    import threading

    from rts_mapper_plugin.core.model.distributed import predict_on_cluster
    from rts_mapper_plugin.core.model.inference import InferConfig, predict_raster
    from tests.data.fixtures import trained_model

    model = trained_model()
    image = model.parent / "2019.tif"
    handler = functools.partial(RangeRequestHandler, directory=str(image.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"/vsicurl/http://127.0.0.1:{server.server_address[1]}/{image.name}"
    config = InferConfig(device="cpu", threshold=0.5, min_area_m2=100.0)
    try:
        local = predict_raster(model, image, tmp_path / "file.tif", config)
        remote = predict_on_cluster(
            model, url, tmp_path / "url.tif", config, client=client, strips_per_block=2
        )
    finally:
        server.shutdown()
    with rasterio.open(tmp_path / "file.tif") as a, rasterio.open(tmp_path / "url.tif") as b:
        assert np.array_equal(a.read(1), b.read(1))
    assert len(remote.candidates) == len(local.candidates) >= 1


def test_no_scheduler_at_the_address_is_one_line_and_nothing_written(mosaic, tmp_path, capsys):
    """``--scheduler`` (the contract's name for ``--cluster``) at an address nobody answers."""
    from rts_mapper_plugin.__main__ import main

    sources, _ = mosaic
    out = tmp_path / "out.tif"
    args = ["prepare", "--out", str(out), "--scheduler", "tcp://127.0.0.1:1", *map(str, sources)]
    assert main(args) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: no Dask scheduler answers at tcp://127.0.0.1:1"), error
    assert list(tmp_path.iterdir()) == [], "nothing written, no pieces folder, no scratch"
