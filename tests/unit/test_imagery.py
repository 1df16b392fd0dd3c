"""Imagery preparation: band choice, the one-per-mosaic stretch, nodata, georeferencing, mosaics."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.enums import ColorInterp

from rts_mapper_plugin.core.errors import Cancelled, RtsMapperError
from rts_mapper_plugin.core.imagery.prepare import choose_rgb_bands, prepare_image
from rts_mapper_plugin.core.progress import Feedback
from tests.conftest import REAL_DATA, assert_cloud_optimized, requires_real_data, run_python
from tests.data.fixtures import planetscope_like, write_raster

S2 = REAL_DATA / "peel" / "S2_20210821T210019_20210821T210020_T08WMA.tif"
L8 = REAL_DATA / "peel" / "L8_LC08_139232_20210721.tif"


def expected_stretch(rgb: np.ndarray, valid: np.ndarray, low_pct=2.0, high_pct=98.0) -> np.ndarray:
    """The stretch written out in numpy: per band, percentiles of valid pixels -> 1..255, 0 nodata."""
    out = np.zeros(rgb.shape, dtype=np.uint8)
    for band in range(3):
        values = rgb[band][valid].astype(np.float64)
        low, high = np.percentile(values, low_pct), np.percentile(values, high_pct)
        scaled = np.clip(
            np.rint(1 + (rgb[band].astype(np.float32) - np.float32(low)) * np.float32(254 / (high - low))),
            1,
            255,
        )
        out[band] = np.where(valid, scaled, 0)
    return out


def read_all(path):
    with rasterio.open(path) as dataset:
        return dataset.read(), dataset.profile, dataset


# -- band choice --


@pytest.mark.parametrize(
    ("count", "descriptions", "interp", "expected"),
    [
        (4, None, None, (3, 2, 1)),
        (3, None, None, (1, 2, 3)),
        (4, ("blue", "green", "red", "nir"), None, (3, 2, 1)),
        (5, ("nir", "Red", "Green", "Blue", "x"), None, (2, 3, 4)),
        (7, ("B2", "B3", "B4", "B5", "B6", "B7", "B8"), None, (3, 2, 1)),
        (4, None, (ColorInterp.blue, ColorInterp.red, ColorInterp.green, ColorInterp.undefined), (2, 3, 1)),
    ],
)
def test_band_choice(tmp_path, count, descriptions, interp, expected):
    array = np.ones((count, 8, 8), dtype=np.uint16)
    path = write_raster(tmp_path / "x.tif", array, descriptions=descriptions, colorinterp=interp)
    with rasterio.open(path) as dataset:
        assert choose_rgb_bands(dataset, path).indexes == expected


def test_band_override_and_errors(tmp_path):
    path = write_raster(tmp_path / "seven.tif", np.ones((7, 8, 8), dtype=np.uint16))
    with rasterio.open(path) as dataset:
        with pytest.raises(RtsMapperError, match="--bands"):
            choose_rgb_bands(dataset, path)
        assert choose_rgb_bands(dataset, path, (3, 2, 1)).reason == "given explicitly"
        with pytest.raises(RtsMapperError, match="band 9"):
            choose_rgb_bands(dataset, path, (9, 2, 1))


# -- the stretch --


def test_planetscope_stretch_matches_numpy_and_keeps_nodata(tmp_path):
    array = planetscope_like(rows=150, cols=210)
    source = write_raster(tmp_path / "ps.tif", array)
    out = tmp_path / "ps_rgb.tif"
    result = prepare_image(source, out)
    assert result.bands.indexes == (3, 2, 1)
    written, profile, _ = read_all(out)
    valid = np.all(array[[2, 1, 0]] != 0, axis=0)
    np.testing.assert_array_equal(written, expected_stretch(array[[2, 1, 0]], valid))
    assert (written[:, ~valid] == 0).all(), "nodata stays nodata"
    assert (written[:, valid] >= 1).all(), "0 is reserved for nodata"
    assert profile["dtype"] == "uint8" and profile["count"] == 3 and profile["nodata"] == 0


def test_georeferencing_identical_and_output_tiled_compressed_with_overviews(tmp_path):
    source = write_raster(
        tmp_path / "ps.tif", planetscope_like(rows=700, cols=600), origin=(491_111.5, 3_861_234.0)
    )
    out = prepare_image(source, tmp_path / "out.tif").path
    with rasterio.open(source) as a, rasterio.open(out) as b:
        assert (a.crs, a.transform, a.width, a.height) == (b.crs, b.transform, b.width, b.height)
        assert b.profile["tiled"] and b.profile["compress"] == "deflate"
        assert b.overviews(1) == [2, 4]
        assert b.descriptions == ("red", "green", "blue")
        assert tuple(b.colorinterp) == (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
        assert b.nodata == 0 and "RTS_MAPPER_STRETCH" in b.tags()
        assert b.read(1, out_shape=(175, 150)).any(), "the overviews hold the image"
    assert_cloud_optimized(out)


def test_windows_do_not_change_the_result(tmp_path):
    """One stretch per image: streaming in small windows gives the same pixels as in large ones."""
    source = write_raster(tmp_path / "ps.tif", planetscope_like(rows=530, cols=610, seed=3))
    small = prepare_image(source, tmp_path / "small.tif", window_size=256).path
    large = prepare_image(source, tmp_path / "large.tif", window_size=2048).path
    np.testing.assert_array_equal(read_all(small)[0], read_all(large)[0])


def test_large_image_sampled_stretch_is_close_to_exact(tmp_path):
    """Above the sample budget the limits come from an even grid of windows: close to exact."""
    array = planetscope_like(rows=1200, cols=1100, seed=5, nodata_corner=False)
    source = write_raster(tmp_path / "ps.tif", array, tiled=True)
    from rts_mapper_plugin.core.imagery.prepare import compute_stretch

    with rasterio.open(source) as dataset:
        bands = choose_rgb_bands(dataset, source)
        sampled = compute_stretch(dataset, source, bands, budget_pixels=300_000)
    exact_low = np.percentile(array[[2, 1, 0]].reshape(3, -1), 2, axis=1)
    assert sampled.sampled_pixels < 0.5 * array.shape[1] * array.shape[2]
    np.testing.assert_allclose(sampled.low, exact_low, rtol=0.03)


@requires_real_data("peel", "S2_20210821T210019_20210821T210020_T08WMA.tif")
def test_real_sentinel2_uint16(tmp_path):
    out = prepare_image(S2, tmp_path / "s2.tif", bands="3,2,1").path
    with rasterio.open(S2) as dataset:
        source = dataset.read([3, 2, 1])
        transform, crs = dataset.transform, dataset.crs
    written, profile, _ = read_all(out)
    valid = np.all(source != 0, axis=0)
    np.testing.assert_array_equal(written, expected_stretch(source, valid))
    assert profile["transform"] == transform and profile["crs"] == crs


@requires_real_data("peel", "L8_LC08_139232_20210721.tif")
def test_real_landsat_float32_with_inf_nodata(tmp_path):
    out = prepare_image(L8, tmp_path / "l8.tif", bands="3,2,1", percentiles="1,99").path
    with rasterio.open(L8) as dataset:
        source = dataset.read([3, 2, 1])
    written, _, _ = read_all(out)
    valid = np.all(np.isfinite(source), axis=0)
    np.testing.assert_array_equal(written, expected_stretch(source, valid, 1, 99))


def test_float_nan_nodata(tmp_path):
    array = np.random.default_rng(2).uniform(0.05, 0.3, (3, 40, 50)).astype(np.float32)
    array[:, 10:20, 10:20] = np.nan
    out = prepare_image(write_raster(tmp_path / "f.tif", array, nodata=np.nan), tmp_path / "o.tif").path
    written = read_all(out)[0]
    assert (written[:, 10:20, 10:20] == 0).all() and (written[:, 25:, 25:] > 0).all()


def test_eight_bit_rgb_is_kept(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, (3, 30, 40)).astype(np.uint8)
    out = prepare_image(write_raster(tmp_path / "rgb.tif", array, nodata=None), tmp_path / "o.tif").path
    written = read_all(out)[0]
    np.testing.assert_array_equal(written, np.clip(np.rint(1 + array * (254 / 255)), 1, 255).astype(np.uint8))


# -- mosaics --


def test_mosaic_priority_and_extents(tmp_path):
    """First scene on top in the overlap; each scene alone where only it covers; nodata elsewhere."""
    a = np.full((4, 40, 60), 1000, dtype=np.uint16)
    b = np.full((4, 40, 60), 3000, dtype=np.uint16)
    a[:, :, :5] = 2000  # a bit of variety so the percentiles differ from the constant
    scene_a = write_raster(tmp_path / "a.tif", a, origin=(490_000, 3_860_000))
    scene_b = write_raster(tmp_path / "b.tif", b, origin=(490_090, 3_859_970))  # 30 px right, 10 px down
    out = prepare_image([scene_a, scene_b], tmp_path / "mosaic.tif").path
    written, profile, _ = read_all(out)
    assert written.shape == (3, 50, 90)
    assert profile["transform"].c == 490_000 and profile["transform"].f == 3_860_000
    value_a, value_b = written[0, 20, 40], written[0, 45, 70]
    assert value_a != value_b
    assert written[0, 20, 45] == value_a, "the overlap shows the first scene"
    assert written[0, 45, 40] == value_b, "where only the second covers, it shows"
    assert (written[:, 45, 5] == 0).all(), "covered by neither: nodata"
    reversed_out = prepare_image([scene_b, scene_a], tmp_path / "reversed.tif").path
    assert read_all(reversed_out)[0][0, 20, 45] == read_all(reversed_out)[0][0, 45, 70], (
        "priority follows order"
    )


def test_mosaic_reprojects_a_scene_in_another_crs(tmp_path):
    from rasterio.warp import transform as warp

    a = np.full((4, 60, 60), 1000, dtype=np.uint16)
    a[:, :, :3] = 1500
    scene_a = write_raster(tmp_path / "a.tif", a, origin=(490_000, 3_860_000), pixel=3)
    # the same place in UTM 45N
    (x45,), (y45,) = warp("EPSG:32646", "EPSG:32645", [490_090], [3_859_910])
    b = np.full((4, 40, 40), 4000, dtype=np.uint16)
    scene_b = write_raster(tmp_path / "b.tif", b, crs="EPSG:32645", origin=(x45, y45), pixel=3)
    out = prepare_image([scene_a, scene_b], tmp_path / "mosaic.tif").path
    with rasterio.open(out) as dataset:
        assert dataset.crs.to_epsg() == 32646
        assert dataset.res == (3.0, 3.0)
        assert dataset.height >= 70 and dataset.width >= 70, "the mosaic covers both scenes"
        only_b = dataset.read(1, window=((63, 68), (35, 45)))  # below scene A: the warped scene B
        assert (only_b == 255).all() and dataset.read(1)[10, 10] < 100
        assert dataset.read(1)[65, 5] == 0, "covered by neither"


def test_mosaic_of_different_band_counts_is_refused(tmp_path):
    a = write_raster(tmp_path / "a.tif", planetscope_like())
    b = write_raster(tmp_path / "b.tif", planetscope_like()[:3])
    with pytest.raises(RtsMapperError, match=r"b\.tif: has 3 bands but a\.tif has 4"):
        prepare_image([a, b], tmp_path / "m.tif")
    assert not list(tmp_path.glob("m.tif*"))


# -- bad input: one line naming the file, nothing left behind --


def truncated_geotiff(tmp_path):
    path = write_raster(
        tmp_path / "full.tif", planetscope_like(rows=600, cols=600, nodata_corner=False), tiled=True
    )
    data = path.read_bytes()
    broken = tmp_path / "truncated.tif"
    broken.write_bytes(data[: len(data) // 2])
    return broken


BAD_INPUTS = {
    "one band": (lambda p: write_raster(p / "one.tif", np.ones((1, 8, 8), np.uint16)), "has 1 band"),
    "two bands": (lambda p: write_raster(p / "two.tif", np.ones((2, 8, 8), np.uint16)), "has 2 bands"),
    "not a raster": (lambda p: (p / "notes.tif").write_text("hello") and p / "notes.tif", "not a raster"),
    "missing": (lambda p: p / "missing.tif", "no such file"),
    "truncated": (truncated_geotiff, "truncated or corrupt"),
    "no crs": (
        lambda p: write_raster(p / "nocrs.tif", planetscope_like(), crs=None),
        "no coordinate reference",
    ),
    "all nodata": (
        lambda p: write_raster(p / "empty.tif", np.zeros((4, 30, 30), np.uint16)),
        "no valid pixels",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_clear_error_and_leaves_nothing(tmp_path, case):
    make, message = BAD_INPUTS[case]
    source = make(tmp_path)
    out = tmp_path / "out" / "prepared.tif"
    with pytest.raises(RtsMapperError, match=message) as raised:
        prepare_image(source, out)
    assert source.name in str(raised.value)
    assert "\n" not in str(raised.value)
    leftovers = list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else []
    assert leftovers == []


@pytest.mark.parametrize("case", ["one band", "not a raster", "truncated", "no crs", "all nodata"])
def test_cli_bad_input_exit_2_one_line(tmp_path, case):
    make, message = BAD_INPUTS[case]
    source = make(tmp_path)
    out = tmp_path / "prepared.tif"
    done = run_python(["-m", "rts_mapper_plugin", "prepare", str(source), "--out", str(out)])
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists() and not list(tmp_path.glob("prepared.tif*"))


def test_unwritable_output(tmp_path):
    source = write_raster(tmp_path / "ps.tif", planetscope_like())
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    with pytest.raises(RtsMapperError, match="cannot create the output folder"):
        prepare_image(source, a_file / "o.tif")


def test_cancel_leaves_nothing(tmp_path):
    source = write_raster(tmp_path / "ps.tif", planetscope_like(rows=900, cols=900, nodata_corner=False))
    calls = {"n": 0}

    def cancel_after_a_few() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(Cancelled):
        prepare_image(
            source, tmp_path / "out.tif", feedback=Feedback(is_cancelled=cancel_after_a_few), window_size=256
        )
    assert not list(tmp_path.glob("out.tif*"))


def test_cli_prepare_and_register(tmp_path):
    source = write_raster(tmp_path / "ps.tif", planetscope_like())
    project = tmp_path / "project.gpkg"
    done = run_python(
        [
            "-m",
            "rts_mapper_plugin",
            "prepare",
            str(source),
            "--out",
            str(tmp_path / "2019.tif"),
            "--year",
            "2019",
            "--project",
            str(project),
            "--dates",
            "2019-07-01,2019-08-31",
        ]
    )
    assert done.returncode == 0, done.stderr
    assert "registered as 2019" in done.stdout
    progress = [line for line in done.stderr.splitlines() if line.startswith("prepare:")]
    assert progress[-1].startswith("prepare: 100 %") and "left" in progress[0], "plain lines when not a TTY"
    from rts_mapper_plugin.core.project.store import MappingProject

    (year,) = MappingProject.open(project).years()
    assert year.year == 2019 and year.raster_path == (tmp_path / "2019.tif").resolve()
    assert (year.date_start, year.date_end) == ("2019-07-01", "2019-08-31")


def test_inside_qgis_the_gdal_block_cache_is_left_to_the_host(monkeypatch):
    """The plugin shares GDAL with QGIS: resizing the cache from a task crashed the desktop."""
    from rts_mapper_plugin.core import host, raster_io

    assert raster_io.gdal_env().options["GDAL_CACHEMAX"] == 128, "the CLI bounds the cache"
    monkeypatch.setitem(host._state, "gdal_cache_is_hosts", True)
    assert "GDAL_CACHEMAX" not in raster_io.gdal_env().options
