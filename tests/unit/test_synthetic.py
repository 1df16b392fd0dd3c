"""The synthetic region: seeded, realistic in the ways the method depends on."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import rasterio
import rasterio.features
from shapely.geometry import Point

from rts_mapper_plugin.core.vectors import read_features
from tests.data.fixtures import WILLOW, small_region


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    return small_region(tmp_path_factory.mktemp("region"), size=500, seed=3)


def digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_seeded(region, tmp_path):
    again = small_region(tmp_path / "again", size=500, seed=3)
    for year in region.scenes:
        with rasterio.open(region.scenes[year][0]) as a, rasterio.open(again.scenes[year][0]) as b:
            np.testing.assert_array_equal(a.read(), b.read())
    other = small_region(tmp_path / "other", size=500, seed=4)
    with rasterio.open(region.scenes[2019][0]) as a, rasterio.open(other.scenes[2019][0]) as b:
        assert not np.array_equal(a.read(), b.read())


def test_scenes_are_planetscope_like(region):
    assert sorted(region.scenes) == [2016, 2017, 2018, 2019, 2020]
    for paths in region.scenes.values():
        assert len(paths) == 2
        for path in paths:
            with rasterio.open(path) as dataset:
                assert dataset.count == 4 and dataset.dtypes[0] == "uint16" and dataset.nodata == 0
                assert dataset.descriptions == ("blue", "green", "red", "nir")
                assert dataset.crs.to_epsg() == 32646 and dataset.res == (3.0, 3.0)
                data = dataset.read()
                assert data.max() <= 10000
    with rasterio.open(region.scenes[2017][1]) as dataset:  # the year whose scene misses a corner
        assert (dataset.read(1)[:20, -20:] == 0).all()


def test_slump_sizes_periods_and_faces(region):
    truth = read_features(region.truth_uri("rts"))
    assert len(truth) >= 8
    areas = np.array([g.area for g in truth.geometries]) / 1e4
    assert areas.min() >= 0.05 and areas.max() <= 25
    assert (areas < 10).mean() >= 0.9
    periods = {a["initiation_period"] for a in truth.attributes}
    assert periods <= {"before 2016", "2016-2017", "2017-2018", "2018-2019", "2019-2020"}
    assert region.summary["north_facing_share"] > 0.5


def test_slumps_appear_and_retreat_upslope(region):
    by_year = read_features(region.truth_uri("rts_by_year"))
    truth = read_features(region.truth_uri("rts"))
    first_year = {a["rts_id"]: a["first_year"] for a in truth.attributes}
    from scipy.ndimage import map_coordinates

    with rasterio.open(region.dem) as dem:
        elevation = dem.read(1)

        def height(point: Point) -> float:  # bilinear: retreats are shorter than a 30 m cell
            col, row = ~dem.transform * (point.x, point.y)
            return float(map_coordinates(elevation, [[row - 0.5], [col - 0.5]], order=1, mode="nearest")[0])

        outlines: dict[int, dict[int, object]] = {}
        for geometry, attributes in zip(by_year.geometries, by_year.attributes):
            outlines.setdefault(attributes["rts_id"], {})[attributes["year"]] = geometry
        rising = 0
        for rts_id, years in outlines.items():
            if rts_id in first_year:
                assert min(years) == first_year[rts_id], "no outline before the slump initiates"
            ordered = [years[y] for y in sorted(years)]
            for older, newer in zip(ordered, ordered[1:]):
                assert newer.area >= older.area * 0.999, "slumps grow"
            if len(ordered) >= 2 and ordered[-1].area > ordered[0].area * 1.05:
                grown = ordered[-1].difference(ordered[0])
                rising += height(grown.centroid) > height(ordered[0].centroid)
        assert rising >= 0.8 * sum(1 for y in outlines.values() if len(y) >= 2)


def test_headwall_is_in_shadow(region):
    """The band just inside the upslope edge is darker than the rest of the slump floor."""
    truth = read_features(region.truth_uri("rts"))
    darker = 0
    with rasterio.open(region.scenes[region.config.main_year][0]) as dataset:
        red = dataset.read(3).astype(float)
        for geometry in truth.geometries:
            rows, cols = np.nonzero(
                rasterio.features.rasterize([(geometry, 1)], out_shape=red.shape, transform=dataset.transform)
            )
            if rows.size < 60 or cols.max() >= red.shape[1] - 1:
                continue
            values = red[rows, cols]
            darker += np.percentile(values, 5) < 0.7 * np.median(values)
    assert darker >= 5


def test_lookalikes_roads_and_rasters(region):
    kinds = {a["kind"] for a in read_features(region.truth_uri("lookalikes")).attributes}
    assert kinds == {"drained_pond", "artificial_pit", "bare_patch"}
    roads = read_features(region.roads)
    assert sorted(a["kind"] for a in roads.attributes) == ["highway", "railway"]
    with rasterio.open(region.dem) as dem:
        assert dem.res == (30.0, 30.0) and dem.dtypes[0] == "float32"
        values = dem.read(1)
        assert 4300 < values.min() < values.max() < 5200
    with rasterio.open(region.vegetation) as vegetation:
        assert set(np.unique(vegetation.read(1))) <= {1, 2, 3, 4}


@pytest.mark.skipif(not WILLOW.exists(), reason="real Willow River outlines not available")
def test_real_outlines_used_as_shapes(region):
    assert region.summary["templates"] == "real outlines"


def test_any_size_by_parameter(tmp_path):
    tiny = small_region(tmp_path / "tiny", size=160, seed=9, years=(2019, 2020))
    with rasterio.open(tiny.scenes[2019][0]) as dataset:
        assert dataset.height == 160
    assert math.isclose(tiny.config.extent_km2, (160 * 3 / 1000) ** 2)
