"""Training chips: labels from every RTS a chip touches, nodata ignored, no leakage between splits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from shapely.geometry import box

from rts_mapper_plugin.core.errors import RtsMapperError
from rts_mapper_plugin.core.imagery.prepare import prepare_image
from rts_mapper_plugin.core.model.chips import IGNORE, load_chip_set, make_chips
from rts_mapper_plugin.core.vectors import FeatureSet, read_features, write_features
from tests.conftest import assert_valid_geopackage, default_styles
from tests.data.fixtures import small_region, write_raster


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chips_region")
    region = small_region(folder / "region", size=600, seed=5)
    image = prepare_image(region.scenes[2019], folder / "2019.tif").path
    return region, image, folder


@pytest.fixture(scope="module")
def chip_set(prepared):
    region, image, folder = prepared
    return make_chips(
        image,
        region.truth_uri("rts"),
        region.truth_uri("lookalikes"),
        folder / "chips",
        size=192,
        buffer_m=90,
    )


def read(path):
    with rasterio.open(path) as dataset:
        return dataset.read(), dataset.transform, dataset.crs


def test_one_chip_per_polygon_with_index_and_footprints(chip_set, prepared):
    region = prepared[0]
    truth, lookalikes = read_features(region.truth_uri("rts")), read_features(region.truth_uri("lookalikes"))
    assert chip_set.positives == len(truth) and chip_set.negatives == len(lookalikes)
    assert len(chip_set.chips) + chip_set.skipped_nodata + chip_set.skipped_outside == len(truth) + len(
        lookalikes
    )
    index = json.loads((chip_set.folder / "index.json").read_text())
    assert index["summary"]["chips"] == len(chip_set.chips)
    assert len(read_features(chip_set.folder / "chips.gpkg")) == len(chip_set.chips)
    assert_valid_geopackage(chip_set.folder / "chips.gpkg")
    assert 'attr="split"' in default_styles(chip_set.folder / "chips.gpkg")["chips"]
    again = load_chip_set(chip_set.folder)
    assert [c.chip_id for c in again.chips] == [c.chip_id for c in chip_set.chips]


def test_labels_come_from_every_rts_the_chip_touches(chip_set, prepared):
    region, _image, _ = prepared
    truth = read_features(region.truth_uri("rts")).geometries
    from rasterio.features import rasterize

    for chip in chip_set.chips:
        label, transform, _ = read(chip_set.folder / chip.label)
        label = label[0]
        expected = rasterize(
            [(g, 1) for g in truth], out_shape=label.shape, transform=transform, dtype="uint8"
        )
        known = label != IGNORE
        np.testing.assert_array_equal(label[known], expected[known])
        if chip.source == "positive":
            assert (label == 1).any(), "a positive chip contains its slump"


def test_negative_chips_are_background_unless_a_slump_is_near(chip_set, prepared):
    region = prepared[0]
    truth = read_features(region.truth_uri("rts")).geometries
    for chip in (c for c in chip_set.chips if c.source == "negative"):
        label = read(chip_set.folder / chip.label)[0][0]
        touches_rts = any(box(*chip.bounds).intersects(g) for g in truth)
        assert (label == 1).any() == touches_rts


def test_chip_pixels_are_the_image_pixels(chip_set, prepared):
    image = prepared[1]
    chip = chip_set.chips[0]
    pixels, transform, crs = read(chip_set.folder / chip.image)
    with rasterio.open(image) as dataset:
        col, row = ~dataset.transform * (transform.c, transform.f)
        window = ((round(row), round(row) + pixels.shape[1]), (round(col), round(col) + pixels.shape[2]))
        source = dataset.read(window=window, boundless=True, fill_value=0)
        assert crs == dataset.crs
    np.testing.assert_array_equal(pixels, source)
    assert pixels.shape[1] % 32 == 0 and pixels.shape[2] >= 192


def test_no_chip_is_in_both_splits(chip_set):
    train = [box(*c.bounds) for c in chip_set.train]
    val = [box(*c.bounds) for c in chip_set.val]
    assert val, "the region is large enough for a validation split"
    assert not any(t.intersection(v).area > 0 for t in train for v in val)


def test_mostly_nodata_chips_are_skipped(tmp_path):
    image = np.full((3, 200, 200), 120, np.uint8)
    image[:, :, 100:] = 0  # the east half has no data
    path = write_raster(tmp_path / "half.tif", image, origin=(490_000, 3_860_000), pixel=3)
    west = box(490_090, 3_859_700, 490_120, 3_859_730)
    east = box(490_530, 3_859_700, 490_560, 3_859_730)
    positives = FeatureSet([west, east], [{}, {}], rasterio.crs.CRS.from_epsg(32646))
    chips = make_chips(path, positives, None, tmp_path / "chips", size=64, buffer_m=30)
    assert chips.skipped_nodata == 1 and len(chips.chips) == 1


def test_polygons_in_another_crs_are_reprojected(tmp_path, prepared):
    region, image, _ = prepared
    truth = read_features(region.truth_uri("rts"))
    in_wgs84 = tmp_path / "truth_4326.geojson"
    write_features(in_wgs84, truth.to_crs(rasterio.crs.CRS.from_epsg(4326)), "rts")
    chips = make_chips(image, in_wgs84, None, tmp_path / "chips", size=192, buffer_m=90)
    label = read(chips.folder / chips.chips[0].label)[0][0]
    assert (label == 1).sum() > 20


def test_errors(tmp_path, prepared):
    region, image, _ = prepared
    empty = FeatureSet([], [], rasterio.crs.CRS.from_epsg(32646))
    with pytest.raises(RtsMapperError, match="no positive"):
        make_chips(image, empty, None, tmp_path / "c")
    single = write_raster(tmp_path / "single.tif", np.ones((1, 50, 50), np.uint8))
    with pytest.raises(RtsMapperError, match="8-bit RGB"):
        make_chips(single, region.truth_uri("rts"), None, tmp_path / "c")
    with pytest.raises(RtsMapperError, match="no such file"):
        make_chips(image, tmp_path / "missing.gpkg", None, tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_a_small_region_still_has_training_chips(tmp_path):
    """On a small region every chip can overlap the spatial validation end: training then takes
    them all (validation stays empty) rather than ending with nothing to train on."""
    from tests.data.fixtures import review_project

    project, region, _ = review_project(tmp_path / "p", size=400, seed=5)
    image = project.years()[-2].raster_path
    chips = make_chips(
        image,
        region.truth_uri("rts"),
        region.truth_uri("lookalikes"),
        tmp_path / "chips",
        size=256,
        buffer_m=120,
    )
    summary = chips.summary()
    assert summary["train_chips"] > 0, summary
    assert summary["train_chips"] + summary["val_chips"] + summary["excluded_chips"] == summary["chips"]


def test_an_image_without_crs_is_read_with_the_crs_its_layer_was_given(prepared, tmp_path):
    region, image, _ = prepared
    with rasterio.open(image) as dataset:
        bare = write_raster(
            tmp_path / "bare.tif", dataset.read(), crs=None, origin=(dataset.bounds.left, dataset.bounds.top)
        )
        crs = dataset.crs.to_wkt()
    with pytest.raises(RtsMapperError, match="has no coordinate reference system"):
        make_chips(bare, region.truth_uri("rts"), None, tmp_path / "refused", size=192, buffer_m=90)
    chips = make_chips(
        bare,
        region.truth_uri("rts"),
        None,
        tmp_path / "chips",
        size=192,
        buffer_m=90,
        image_crs={str(bare): crs},
    )
    assert len(chips.chips) == len(read_features(region.truth_uri("rts")))
    with rasterio.open(chips.folder / chips.chips[0].image) as chip:
        assert chip.crs == rasterio.crs.CRS.from_wkt(crs)
    with rasterio.open(bare) as dataset:
        assert dataset.crs is None, "the file itself is untouched"
