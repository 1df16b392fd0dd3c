"""Real inputs as delivered: PlanetScope 4/8-band scenes with their sidecars, UDM2 masks, Planet
basemap quads, Sentinel-2 L2A with its SCL, and each malformed variant (one clear error)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import rasterio

from rts_mapper_plugin.core.analysis.inventory import base_map_fields
from rts_mapper_plugin.core.errors import RtsMapperError
from rts_mapper_plugin.core.imagery.prepare import prepare_and_register, prepare_image
from rts_mapper_plugin.core.project.store import MappingProject
from tests.conftest import run_python
from tests.data.products import (
    SCL_CLASSES,
    basemap_quad,
    planetscope_scene,
    sentinel2_safe,
    udm2_array,
    write_tif,
)
from tests.unit.test_imagery import expected_stretch


def written(path):
    with rasterio.open(path) as dataset:
        return dataset.read()


def assert_nothing_left(folder, name="out.tif"):
    assert not list(folder.glob(name + "*")), "no output left behind"


# -- PlanetScope: which bands are red, green, blue --


def test_superdove_8band_rgb_from_the_metadata_sidecars(tmp_path):
    """No band names in the GeoTIFF: Planet's 8-band order, identified by the JSON and XML."""
    delivery = planetscope_scene(tmp_path / "order", bands=8, with_udm2=False)
    result = prepare_image(delivery.scene, tmp_path / "out.tif")
    assert result.bands.indexes == (6, 4, 2), "red, green, blue of coastal_blue..nir"
    assert "8-band SuperDove" in result.bands.reason
    assert "_metadata.json (instrument PSB.SD)" in result.bands.reason
    assert "_AnalyticMS_8b_metadata.xml (8 bands" in result.bands.reason
    rgb = delivery.pixels[[5, 3, 1]]
    np.testing.assert_array_equal(written(result.path), expected_stretch(rgb, np.all(rgb > 0, axis=0)))
    assert result.sensor == "PlanetScope SuperDove (PSB.SD)"


def test_four_band_rgb_from_the_xml_alone(tmp_path):
    delivery = planetscope_scene(tmp_path, bands=4, with_json=False, with_udm2=False)
    result = prepare_image(delivery.scene, tmp_path / "out.tif")
    assert result.bands.indexes == (3, 2, 1)
    assert "4-band band order (blue, green, red, nir)" in result.bands.reason
    assert "_3B_AnalyticMS_metadata.xml (4 bands, instrument PS2)" in result.bands.reason


def test_eight_band_from_the_json_alone(tmp_path):
    delivery = planetscope_scene(tmp_path, bands=8, with_xml=False, with_udm2=False)
    assert prepare_image(delivery.scene, tmp_path / "out.tif").bands.indexes == (6, 4, 2)


def test_band_descriptions_win_over_position_and_sidecars(tmp_path):
    """A GeoTIFF that names its bands needs no sidecar; green_i and coastal_blue are not green/blue."""
    delivery = planetscope_scene(tmp_path, bands=8, with_json=False, with_xml=False, descriptions=True)
    result = prepare_image(delivery.scene, tmp_path / "out.tif")
    assert result.bands.indexes == (6, 4, 2)
    assert result.bands.reason.startswith("GeoTIFF band descriptions (coastal_blue, blue, green_i")


@pytest.mark.parametrize("bands", [4, 8])
def test_planet_scene_without_names_or_metadata_is_refused(tmp_path, bands):
    delivery = planetscope_scene(tmp_path, bands=bands, with_json=False, with_xml=False, with_udm2=False)
    with pytest.raises(RtsMapperError) as raised:
        prepare_image(delivery.scene, tmp_path / "out.tif")
    message = str(raised.value)
    assert message.startswith(str(delivery.scene)) and "\n" not in message
    assert "not named" in message and "_metadata.json" in message and "--bands R,G,B" in message
    assert_nothing_left(tmp_path)
    # the user says which bands: then it goes through
    assert (
        prepare_image(delivery.scene, tmp_path / "out.tif", bands="3,2,1").bands.reason == "given explicitly"
    )


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("8 bands, PS2 instrument", "says instrument PS2, which makes no 8-band product"),
        ("xml band count differs", "has 8 bands but its metadata"),
        ("json without a date", "_metadata.json: has no properties.acquired"),
        ("json of another scene", "_metadata.json: describes scene 20220705_000000_00_0000"),
        ("broken xml", "_metadata.xml: is not valid XML"),
        ("udm2 given as the scene", "is a Planet usable data mask, not a scene"),
    ],
)
def test_malformed_planet_deliveries(tmp_path, case, message):
    if case == "8 bands, PS2 instrument":
        delivery = planetscope_scene(tmp_path, bands=8, instrument="PS2", with_xml=False)
    else:
        delivery = planetscope_scene(
            tmp_path, bands=8, acquired=None if case == "json without a date" else "2022-07-05T18:35:26Z"
        )
    scene = delivery.scene
    if case == "xml band count differs":
        xml = delivery.sidecars["xml"]
        xml.write_text(
            xml.read_text().replace("<ps:numBands>8</ps:numBands>", "<ps:numBands>4</ps:numBands>")
        )
    elif case == "json of another scene":
        feature = json.loads(delivery.sidecars["json"].read_text())
        feature["id"] = "20220705_000000_00_0000"
        delivery.sidecars["json"].write_text(json.dumps(feature))
    elif case == "broken xml":
        delivery.sidecars["xml"].write_text("<ps:EarthObservation><unclosed>")
    elif case == "udm2 given as the scene":
        scene = delivery.sidecars["udm2"]
    with pytest.raises(RtsMapperError, match=message) as raised:
        prepare_image(scene, tmp_path / "out.tif")
    assert "\n" not in str(raised.value)
    assert_nothing_left(tmp_path)


# -- UDM2: clouds, shadows, haze and snow out, before the stretch --


def test_udm2_found_by_name_masks_before_the_stretch(tmp_path):
    """Every unusable class becomes nodata, and the (bright) clouds do not lift the stretch."""
    delivery = planetscope_scene(tmp_path, bands=8)
    result = prepare_image(delivery.scene, tmp_path / "out.tif")
    image = written(result.path)
    usable = ~delivery.unusable
    assert (image[:, delivery.unusable] == 0).all(), "cloud, shadow, haze, snow, blackfill: nodata"
    assert (image[:, usable] > 0).all()
    rgb = delivery.pixels[[5, 3, 1]]
    np.testing.assert_array_equal(image, expected_stretch(rgb, usable))
    assert result.stretch.sampled_pixels == usable.sum()
    assert any("udm2.tif (UDM2, found by Planet's naming)" in note for note in result.notes)


def test_udm2_each_class_is_masked(tmp_path):
    for name in ("snow", "shadow", "haze_light", "haze_heavy", "cloud", "blackfill"):
        folder = tmp_path / name
        region = {name: (slice(8, 24), slice(8, 24))}
        delivery = planetscope_scene(folder, bands=4, udm2_regions=region)
        image = written(prepare_image(delivery.scene, folder / "out.tif").path)
        assert (image[:, 8:24, 8:24] == 0).all(), name
        assert (image[:, 30:, 30:] > 0).all(), name


def test_clipped_delivery_and_udm1_missing_data_bits(tmp_path):
    """``_clip`` files pair with ``_clip`` sidecars; udm1 bit 2+ (missing band data) is unusable."""
    delivery = planetscope_scene(tmp_path, bands=4, clip=True, udm2_regions={})
    udm = udm2_array(regions={})
    udm[7, 5:9, 5:9] = 0b100  # missing or suspect data in band 1
    udm[7, 20:24, 20:24] = 0b10  # the legacy coarse cloud bit alone: UDM2's classes decide
    write_tif(delivery.sidecars["udm2"], udm, nodata=None)
    assert delivery.scene.name.endswith("_AnalyticMS_SR_clip.tif")
    image = written(prepare_image(delivery.scene, tmp_path / "out.tif").path)
    assert (image[:, 5:9, 5:9] == 0).all()
    assert (image[:, 20:24, 20:24] > 0).all()


def test_explicit_mask_and_no_mask(tmp_path):
    delivery = planetscope_scene(tmp_path / "order", bands=4)
    elsewhere = tmp_path / "masks" / "mask_for_that_scene.tif"
    elsewhere.parent.mkdir()
    shutil.move(delivery.sidecars["udm2"], elsewhere)
    unmasked = prepare_image(delivery.scene, tmp_path / "unmasked.tif")
    assert any("no UDM2 beside it" in note for note in unmasked.notes)
    assert (written(unmasked.path)[:, delivery.unusable & (delivery.pixels[0] > 0)] > 0).all()
    masked = prepare_image(delivery.scene, tmp_path / "masked.tif", masks=[elsewhere])
    assert (written(masked.path)[:, delivery.unusable] == 0).all()
    shutil.move(elsewhere, delivery.sidecars["udm2"])
    off = prepare_image(delivery.scene, tmp_path / "off.tif", masks=["none"])
    assert not any("UDM2" in note for note in off.notes)


def test_udm2_on_another_grid_is_refused(tmp_path):
    delivery = planetscope_scene(tmp_path, bands=4)
    write_tif(delivery.sidecars["udm2"], udm2_array(rows=60, cols=64), nodata=None)
    with pytest.raises(
        RtsMapperError, match=r"udm2\.tif: is 64 x 60 px on another grid than its scene"
    ) as raised:
        prepare_image(delivery.scene, tmp_path / "out.tif")
    assert "\n" not in str(raised.value)
    write_tif(delivery.sidecars["udm2"], udm2_array()[:4], nodata=None)
    with pytest.raises(RtsMapperError, match=r"udm2\.tif: has 4 bands; a Planet UDM2 has 8"):
        prepare_image(delivery.scene, tmp_path / "out.tif")
    assert_nothing_left(tmp_path)


def test_overlapping_scenes_take_each_pixel_from_a_clear_scene(tmp_path):
    """Scene A (first) is cloudy in its corner; B covers it clear: the mosaic shows B there, A
    elsewhere; where both are cloudy it is nodata. Small windows give the same pixels."""
    cloud = (slice(0, 16), slice(0, 16))
    a = planetscope_scene(
        tmp_path / "a", "20220705_183526_48_2416", bands=4, udm2_regions={"cloud": cloud}, seed=1
    )
    both = {"cloud": (slice(0, 8), slice(0, 8))}
    b = planetscope_scene(
        tmp_path / "b",
        "20220814_180102_11_241c",
        bands=4,
        udm2_regions=both,
        acquired="2022-08-14T18:01:02Z",
        seed=2,
    )
    result = prepare_image([a.scene, b.scene], tmp_path / "mosaic.tif", window_size=16)
    image = written(result.path)
    usable_a, usable_b = ~a.unusable, ~b.unusable
    composite = np.where(usable_a, a.pixels[[2, 1, 0]], b.pixels[[2, 1, 0]])
    np.testing.assert_array_equal(image, expected_stretch(composite, usable_a | usable_b))
    assert (image[:, 0:8, 0:8] == 0).all(), "cloudy in both"
    assert (image[:, 8:16, 0:16] > 0).all(), "A's cloud filled from B"
    large = prepare_image([a.scene, b.scene], tmp_path / "large.tif", window_size=1024)
    np.testing.assert_array_equal(image, written(large.path))
    assert (result.date_start, result.date_end) == ("2022-07-05", "2022-08-14")


def test_four_and_eight_band_scenes_share_a_mosaic(tmp_path):
    """Band layouts may differ within a year when each scene's bands are known by name/metadata."""
    a = planetscope_scene(tmp_path / "a", "20220705_183526_48_2416", bands=8, udm2_regions={})
    b = planetscope_scene(
        tmp_path / "b", "20220706_031500_1027", bands=4, udm2_regions={}, origin=(491_097.0, 3_861_003.0)
    )
    result = prepare_image([a.scene, b.scene], tmp_path / "mosaic.tif")
    assert [s.bands.indexes for s in result.scenes] == [(6, 4, 2), (3, 2, 1)]
    assert result.width == 96


# -- acquisition dates into the year registry and the inventory's BaseMapDate --


def test_year_dates_and_sensor_come_from_the_metadata(tmp_path):
    a = planetscope_scene(tmp_path / "a", "20190703_041512_0f4e", bands=4, acquired="2019-07-03T04:15:12Z")
    b = planetscope_scene(tmp_path / "b", "20190826_040011_1003", bands=4, acquired="2019-08-26T04:00:11Z")
    project = tmp_path / "project.gpkg"
    prepare_and_register([b.scene, a.scene], tmp_path / "2019.tif", year=2019, project_path=project)
    (year,) = MappingProject.open(project).years()
    assert (year.date_start, year.date_end) == ("2019-07-03", "2019-08-26"), "min..max acquisition"
    assert year.sensor == "PlanetScope Dove Classic (PS2)"
    assert base_map_fields([year]) == {
        "base_map_date": "2019-07-03,2019-08-26",  # ARTS: a comma between the dates
        "base_map_source": "PlanetScope Dove Classic (PS2)",
    }
    # dates typed by hand still win
    prepare_and_register(
        [a.scene], tmp_path / "2019.tif", year=2019, project_path=project, dates=("2019-07-01", "2019-07-31")
    )
    assert base_map_fields(MappingProject.open(project).years())["base_map_date"] == "2019-07-01,2019-07-31"


def test_dates_from_the_xml_and_from_the_file_name(tmp_path):
    from_xml = planetscope_scene(
        tmp_path / "x", "20200712_035501_1040", bands=4, with_json=False, acquired="2020-07-12T03:55:01+00:00"
    )
    assert prepare_image(from_xml.scene, tmp_path / "x.tif").date_start == "2020-07-12"
    from_name = planetscope_scene(
        tmp_path / "n", "20200713_035501_1040", bands=4, with_json=False, with_xml=False, descriptions=True
    )
    result = prepare_image(from_name.scene, tmp_path / "n.tif")
    assert result.date_start == "2020-07-13"
    assert any("from the file name" in note for note in result.notes)


def test_base_map_fields_of_the_latest_year():
    from pathlib import Path

    from rts_mapper_plugin.core.project.store import YearLayer

    years = [
        YearLayer(2018, Path("a.tif"), "PS", "2018-07-01", "2018-08-01"),
        YearLayer(2019, Path("b.tif"), "", "2019-07-04", "2019-07-04"),
    ]
    assert base_map_fields(years) == {"base_map_date": "2019-07-04,2019-07-04"}, (
        "one day; no sensor: the default stays"
    )
    assert base_map_fields([YearLayer(2020, Path("c.tif"))]) == {"base_map_date": "2020-01-01,2020-12-31"}, (
        "no date known: the whole year, as ARTS dates"
    )
    assert base_map_fields([]) == {}


# -- Planet basemap quads --


def test_basemap_quads_used_as_delivered(tmp_path):
    """8-bit visual RGBA: values copied (a valid 0 becomes 1), alpha 0 -> nodata, no stretch even
    with percentiles; a mosaic folder is read as its quads; its name gives the period."""
    mosaic = tmp_path / "global_monthly_2021_08_mosaic"
    left = basemap_quad(mosaic, "L15-0123E-1234N.tif", seed=1)
    right = basemap_quad(
        mosaic, "L15-0124E-1234N.tif", origin=(10_018_754.0 + 64 * 4.777314267823516, 4_163_881.0), seed=2
    )
    result = prepare_image(mosaic, tmp_path / "out.tif", percentiles="2,98")
    image = written(result.path)
    assert image.shape == (3, 64, 128)
    expected = np.concatenate([left.pixels[:3], right.pixels[:3]], axis=2)
    alpha = np.concatenate([left.pixels[3], right.pixels[3]], axis=1)
    np.testing.assert_array_equal(image[:, alpha > 0], np.maximum(expected[:, alpha > 0], 1))
    assert (image[:, alpha == 0] == 0).all()
    assert any("percentiles ignored" in note for note in result.notes)
    assert (result.date_start, result.date_end) == ("2021-08-01", "2021-08-31")
    assert [s.source.name for s in result.scenes] == ["L15-0123E-1234N.tif", "L15-0124E-1234N.tif"]


def test_basemaps_api_quad_name_and_quarterly_period(tmp_path):
    quad = basemap_quad(tmp_path / "global_quarterly_2022q3_mosaic", "1465-1146_quad.tif")
    result = prepare_image(quad.scene, tmp_path / "out.tif")
    assert result.scenes[0].product == "Planet basemap quad"
    assert (result.date_start, result.date_end) == ("2022-07-01", "2022-09-30")


def test_basemap_quad_and_analytic_scene_do_not_mix(tmp_path):
    quad = basemap_quad(tmp_path / "m_mosaic", "L15-0123E-1234N.tif")
    scene = planetscope_scene(tmp_path / "ps", bands=4)
    with pytest.raises(RtsMapperError, match="display-ready 8-bit basemap"):
        prepare_image([quad.scene, scene.scene], tmp_path / "out.tif")
    assert_nothing_left(tmp_path)


# -- Sentinel-2 L2A --


@pytest.mark.parametrize("extension", ["jp2", "tif"])
def test_sentinel2_safe_with_scl(tmp_path, extension):
    """B04/B03/B02 from separate 10 m files; SCL (20 m, nearest to 10 m) classes 0, 1, 3, 8, 9,
    10, 11 -> nodata; date from MTD_MSIL2A.xml; sensor from the SAFE name."""
    delivery = sentinel2_safe(tmp_path, extension=extension)
    result = prepare_image(delivery.scene, tmp_path / "out.tif")
    image = written(result.path)
    usable = ~delivery.unusable
    np.testing.assert_array_equal(image, expected_stretch(delivery.pixels, usable))
    for value, (rows, cols) in SCL_CLASSES.items():
        ten_m = (slice(rows.start * 2, rows.stop * 2), slice(cols.start * 2, cols.stop * 2))
        assert (image[:, ten_m[0], ten_m[1]] == 0).all(), f"SCL class {value}"
    assert result.bands.reason == "Sentinel-2 L2A B04, B03, B02 (separate 10 m files)"
    assert (result.date_start, result.sensor) == ("2021-08-21", "Sentinel-2B")
    with rasterio.open(result.path) as dataset:
        assert dataset.res == (10.0, 10.0) and dataset.crs.to_epsg() == 32608


def test_sentinel2_band_file_and_mtd_as_input(tmp_path):
    delivery = sentinel2_safe(tmp_path, with_mtd=False)
    from_band = prepare_image(delivery.sidecars["b04"], tmp_path / "band.tif")
    assert from_band.date_start == "2021-08-21" and from_band.scenes[0].mask is not None
    assert any("(the name S2B_MSIL2A_20210821T210019" in note for note in from_band.notes)
    sentinel2_safe(tmp_path / "with", with_mtd=True)
    from_mtd = prepare_image(tmp_path / "with" / delivery.scene.name / "MTD_MSIL2A.xml", tmp_path / "mtd.tif")
    np.testing.assert_array_equal(written(from_band.path), written(from_mtd.path))


def test_sentinel2_stacked_file_with_scl_band(tmp_path):
    rng = np.random.default_rng(4)
    stack = np.clip(rng.normal(900, 200, (5, 64, 64)), 1, 9000).astype(np.uint16)
    stack[4] = 4
    stack[4, :10, :10] = 9  # cloud high probability
    path = write_tif(
        tmp_path / "S2_20210821T210019_20210821T210020_T08WMA.tif",
        stack,
        crs="EPSG:32608",
        pixel=10.0,
        descriptions=("B02", "B03", "B04", "B08", "SCL"),
    )
    result = prepare_image(path, tmp_path / "out.tif")
    assert result.bands.indexes == (3, 2, 1) and result.date_start == "2021-08-21"
    image = written(result.path)
    assert (image[:, :10, :10] == 0).all() and (image[:, 10:, 10:] > 0).all()


@pytest.mark.parametrize(
    ("scl_origin", "scl_crs"),
    [((500_980.0, 7_300_020.0), "EPSG:32608"), ((499_980.0, 7_300_020.0), "EPSG:32609")],
    ids=["shifted", "other crs"],
)
def test_scl_of_the_wrong_grid_is_refused(tmp_path, scl_origin, scl_crs):
    delivery = sentinel2_safe(tmp_path, scl_origin=scl_origin, scl_crs=scl_crs)
    with pytest.raises(RtsMapperError, match=r"SCL_20m\.jp2: covers another area or grid") as raised:
        prepare_image(delivery.scene, tmp_path / "out.tif")
    assert "\n" not in str(raised.value)
    assert_nothing_left(tmp_path)


# -- mixed CRSs within one year --


def test_mixed_crs_reprojected_to_the_first_and_said(tmp_path):
    """B (UTM 45N, right of A) is warped onto A's grid, and so is its UDM2: B's cloud stays out."""
    from rasterio.warp import transform as warp

    a = planetscope_scene(tmp_path / "a", bands=4, udm2_regions={})
    (x45,), (y45,) = warp("EPSG:32646", "EPSG:32645", [491_001.0 + 240.0], [3_861_003.0])
    b = planetscope_scene(
        tmp_path / "b", "20220706_031500_1027", bands=4, crs="EPSG:32645", origin=(x45, y45)
    )
    result = prepare_image([a.scene, b.scene], tmp_path / "out.tif")
    assert result.crs == "EPSG:32646"
    (note,) = [n for n in result.notes if "reprojected" in n]
    assert note.startswith(b.scene.name) and "EPSG:32645" in note and "WarpedVRT" in note
    with rasterio.open(result.path) as dataset:
        image = dataset.read()

        def at(col, row):  # B's pixel (col, row) in the mosaic
            (x,), (y,) = warp("EPSG:32645", "EPSG:32646", [x45 + 3 * col + 1.5], [y45 - 3 * row - 1.5])
            r, c = dataset.index(x, y)
            return image[:, r, c]

        assert (at(8, 8) == 0).all(), "B's cloud (its UDM2, warped too)"
        assert (at(50, 35) > 0).all(), "B's clear land"
        assert (image[:, 30, 30] > 0).all(), "A"


# -- the command line: sidecars found by name, --mask, one-line errors --


def test_cli_prepare_planet_delivery_registers_dates(tmp_path):
    delivery = planetscope_scene(tmp_path / "order", bands=8)
    project = tmp_path / "p.gpkg"
    done = run_python(
        [
            "-m",
            "rts_mapper_plugin",
            "prepare",
            str(delivery.scene),
            "--out",
            str(tmp_path / "2022.tif"),
            "--year",
            "2022",
            "--project",
            str(project),
        ]
    )
    assert done.returncode == 0, done.stderr
    assert "8-band SuperDove" in done.stdout and "udm2.tif (UDM2, found by Planet's naming)" in done.stdout
    (year,) = MappingProject.open(project).years()
    assert (year.date_start, year.date_end, year.sensor) == (
        "2022-07-05",
        "2022-07-05",
        "PlanetScope SuperDove (PSB.SD)",
    )
    moved = tmp_path / "elsewhere_udm2.tif"
    shutil.move(delivery.sidecars["udm2"], moved)
    done = run_python(
        [
            "-m",
            "rts_mapper_plugin",
            "prepare",
            str(delivery.scene),
            "--out",
            str(tmp_path / "m.tif"),
            "--mask",
            str(moved),
        ]
    )
    assert done.returncode == 0, done.stderr
    assert (written(tmp_path / "m.tif")[:, delivery.unusable] == 0).all()


@pytest.mark.parametrize(
    "case", ["planet without metadata", "json without date", "udm2 grid", "scl grid", "masks count"]
)
def test_cli_malformed_delivery_exit_2_one_line(tmp_path, case):
    extra: list[str] = []
    if case == "planet without metadata":
        source, message = planetscope_scene(tmp_path, with_json=False, with_xml=False).scene, "--bands R,G,B"
    elif case == "json without date":
        source, message = planetscope_scene(tmp_path, acquired=None).scene, "has no properties.acquired"
    elif case == "udm2 grid":
        delivery = planetscope_scene(tmp_path, bands=4)
        write_tif(delivery.sidecars["udm2"], udm2_array(rows=64, cols=40), nodata=None)
        source, message = delivery.scene, "on another grid than its scene"
    elif case == "scl grid":
        source, message = (
            sentinel2_safe(tmp_path, scl_origin=(500_980.0, 7_300_020.0)).scene,
            "covers another area or grid",
        )
    else:
        source, message = planetscope_scene(tmp_path, bands=4).scene, "2 masks for 1 scenes"
        extra = ["--mask", "auto", "--mask", "auto"]
    out = tmp_path / "prepared.tif"
    done = run_python(["-m", "rts_mapper_plugin", "prepare", str(source), "--out", str(out), *extra])
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr
    assert not list(tmp_path.glob("prepared.tif*"))
