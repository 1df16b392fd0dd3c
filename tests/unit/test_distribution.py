"""Distribution analysis: terrain on analytic surfaces, PISR against known values, streams,
density counted by hand, and the whole report on a synthetic region with bad input."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import LineString, box

from rts_mapper_plugin.core.analysis.distribution import (
    AnalysisConfig,
    analyze,
    class_overlay,
    density_grid,
    load_dem,
    rts_terrain,
    terrain_layers,
)
from rts_mapper_plugin.core.analysis.hydrology import (
    fill_depressions,
    flow_accumulation,
    routed_receivers,
    stream_mask,
)
from rts_mapper_plugin.core.analysis.terrain import MONTH_DAYS, SECTORS, aspect_sector, pisr, slope_aspect
from rts_mapper_plugin.core.errors import RtsMapperError
from rts_mapper_plugin.core.vectors import FeatureSet, write_features
from tests.conftest import assert_valid_geopackage, default_styles
from tests.data.fixtures import small_region

CELL = 30.0


def plane(gradient: float, towards_deg: float, n: int = 41) -> np.ndarray:
    """A plane rising by ``gradient`` (m/m) towards the azimuth ``towards_deg`` (rows run south)."""
    rows, cols = np.indices((n, n)).astype(float)
    east, north = cols * CELL, -rows * CELL
    angle = math.radians(towards_deg)
    return gradient * (east * math.sin(angle) + north * math.cos(angle))


@pytest.mark.parametrize("towards", [0, 45, 90, 135, 180, 225, 270, 315, 30])
def test_slope_and_aspect_of_planes(towards):
    slope, aspect = slope_aspect(plane(0.25, towards), CELL, CELL)
    assert slope[20, 20] == pytest.approx(math.degrees(math.atan(0.25)), abs=1e-4)
    # the ground rises towards `towards`, so it faces the opposite way
    assert aspect[20, 20] == pytest.approx((towards + 180) % 360, abs=1e-3)
    assert np.allclose(slope[1:-1, 1:-1], slope[20, 20], atol=1e-4), "the same everywhere inside"


def test_slope_and_aspect_of_a_cone_and_flat_ground():
    rows, cols = np.indices((81, 81)).astype(float)
    dx, dy = (cols - 40) * CELL, (40 - rows) * CELL  # east, north of the apex
    cone = 1000.0 - np.hypot(dx, dy)  # 45 degree flanks
    slope, aspect = slope_aspect(cone, CELL, CELL)
    for r, c in ((10, 40), (70, 40), (40, 70), (40, 10), (15, 65)):
        assert slope[r, c] == pytest.approx(45.0, abs=0.6)
        expected = math.degrees(math.atan2(dx[r, c], dy[r, c])) % 360  # faces away from the apex
        assert abs((aspect[r, c] - expected + 180) % 360 - 180) < 1.0
    assert SECTORS[aspect_sector(aspect[10, 40])] == "N" and SECTORS[aspect_sector(aspect[70, 40])] == "S"
    flat_slope, flat_aspect = slope_aspect(np.full((5, 5), 4600.0), CELL, CELL)
    assert np.all(flat_slope == 0) and np.all(np.isnan(flat_aspect)) and aspect_sector(np.nan) == -1


def extraterrestrial_year(latitude: float) -> float:
    """Annual extraterrestrial radiation on flat ground (kWh/m²), Duffie and Beckman eq. 1.10.3,
    on the same 12 representative days the model uses."""
    phi = math.radians(latitude)
    total = 0.0
    for start, length in zip(np.cumsum((0, *MONTH_DAYS[:-1])), MONTH_DAYS):
        n = int(start) + 15
        delta = math.radians(23.45) * math.sin(2 * math.pi * (284 + n) / 365)
        g_on = 1367 * (1 + 0.033 * math.cos(2 * math.pi * n / 365))
        omega_s = math.acos(-math.tan(phi) * math.tan(delta))
        daily = (
            24
            / math.pi
            * g_on
            * (
                math.cos(phi) * math.cos(delta) * math.sin(omega_s)
                + omega_s * math.sin(phi) * math.sin(delta)
            )
        )
        total += length * daily / 1000
    return total


@pytest.mark.parametrize("latitude", [0.0, 35.0, 60.0])
def test_pisr_on_flat_ground_without_atmosphere_matches_the_analytic_integral(latitude):
    flat = np.zeros((8, 8))
    value = pisr(flat, CELL, CELL, latitude, transmittance=1.0, diffuse=False, shading=False)
    assert value[4, 4] == pytest.approx(extraterrestrial_year(latitude), rel=0.005)


def test_pisr_orders_south_flat_north_and_shades_behind_a_wall():
    lat = 35.0
    south = pisr(plane(0.3, 0), CELL, CELL, lat)[20, 20]  # rises northwards: faces south
    north = pisr(plane(0.3, 180), CELL, CELL, lat)[20, 20]
    flat = pisr(np.zeros((41, 41)), CELL, CELL, lat)[20, 20]
    assert south > flat > north
    assert 1500 < flat < 2600, "clear-sky annual PISR at 35 N is about 2000 kWh/m²"
    # a 300 m wall just south of a cell shades it in winter
    walled = np.zeros((41, 41))
    walled[22:25, :] = 300.0
    shaded = pisr(walled, CELL, CELL, lat)
    assert shaded[20, 20] < 0.8 * flat and shaded[5, 20] == pytest.approx(flat, rel=0.02)
    open_sky = pisr(walled, CELL, CELL, lat, shading=False)
    assert open_sky[20, 20] == pytest.approx(flat, rel=0.02), "without shading the wall does not matter"


def test_depressions_are_filled_and_routed_out_and_a_valley_becomes_a_stream():
    rows, cols = np.indices((60, 80)).astype(float)
    tilted = 100 - 0.1 * cols
    tilted[30, 40] -= 5  # a pit
    tilted[10:14, 10:14] -= 3  # a flat-bottomed pond
    filled = fill_depressions(tilted)
    assert filled[30, 40] == pytest.approx(tilted[30, 41]), "filled to its lowest pass"
    assert np.all(filled[10:14, 10:14] == pytest.approx(tilted[10:14, 14].min())) and np.all(filled >= tilted)
    receiver, _ = routed_receivers(tilted, CELL, CELL)
    accumulation = flow_accumulation(receiver, tilted.shape)
    outlets = receiver < 0
    assert outlets.reshape(tilted.shape)[1:-1, 1:-1].sum() == 0, "no inner cell is a sink"
    assert accumulation.ravel()[outlets].sum() == tilted.size, "every cell reaches an outlet: no cycle"
    valley = np.abs(cols - 40) * 3.0 + (60 - rows) * 0.5  # V valley draining south
    streams, _receiver, area = stream_mask(valley, CELL, CELL, threshold_km2=0.1)
    assert streams[50:58, 40].all() and not streams[:, :20].any()
    assert area[59, 40] == pytest.approx(np.nanmax(area), rel=0.05)


def test_a_random_landscape_with_nodata_drains_completely():
    from scipy import ndimage

    rng = np.random.default_rng(1)
    dem = ndimage.gaussian_filter(rng.standard_normal((300, 300)), 10) * 100 + 4600  # many closed basins
    dem[50:70, 50:90] = np.nan
    receiver, filled = routed_receivers(dem, CELL, CELL)
    valid = np.isfinite(dem).ravel()
    accumulation = flow_accumulation(receiver, dem.shape).ravel()
    assert accumulation[valid & (receiver < 0)].sum() == valid.sum()
    assert not (~valid[receiver[receiver >= 0]]).any(), "nothing flows into nodata cells"
    assert np.all(filled[np.isfinite(dem)] >= dem[np.isfinite(dem)])


def test_density_grid_counts_by_hand():
    # 10 km cells over (0, 0)-(25 km, 12 km): 3 x 2 cells
    polygons = [box(1000, 1000, 1100, 1100), box(2000, 2000, 2200, 2100), box(15000, 1000, 15100, 1100)]
    polygons.append(box(21000, 11000, 21300, 11300))
    attributes = [{"initiation_period": p} for p in ("before 2016", "2016-2017", "before 2016", "2016-2017")]
    grid = density_grid(
        FeatureSet(polygons, attributes, "EPSG:32646"), 10, (0, 0, 25000, 12000), ["before 2016", "2016-2017"]
    )
    assert len(grid) == 6
    by_cell = {(round(g.bounds[0]), round(g.bounds[1])): a for g, a in zip(grid.geometries, grid.attributes)}
    assert by_cell[(0, 0)]["rts_count"] == 2 and by_cell[(0, 0)]["rts_area_ha"] == pytest.approx(3.0)
    assert by_cell[(0, 0)]["n_before_2016"] == 1 and by_cell[(0, 0)]["n_2016_2017"] == 1
    assert by_cell[(20000, 10000)]["n_2016_2017"] == 1 and by_cell[(20000, 10000)]["n_before_2016"] == 0
    assert by_cell[(10000, 0)]["rts_count"] == 1 and by_cell[(20000, 10000)]["rts_count"] == 1
    assert by_cell[(20000, 10000)]["per_100km2"] == pytest.approx(1.0)
    assert sum(a["rts_count"] for a in grid.attributes) == 4


def synthetic_dem(tmp_path, crs="EPSG:32646", nodata_block=False):
    z = 4600 + plane(0.1, 0, 60)[:60, :60]
    if nodata_block:
        z[:10, :10] = -9999
    path = tmp_path / "dem.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=60,
        height=60,
        count=1,
        dtype="float32",
        crs=crs,
        transform=from_origin(500000, 3800000, CELL, CELL),
        nodata=-9999,
    ) as out:
        out.write(z.astype("float32"), 1)
    return path


def test_rts_terrain_flags_rts_off_the_dem_or_on_nodata_and_keeps_them(tmp_path):
    dem = load_dem(synthetic_dem(tmp_path, nodata_block=True))
    assert np.isnan(dem.elevation[0, 0])
    polygons = [
        box(500900, 3799100, 501000, 3799200),  # inside
        box(500030, 3799930, 500100, 3799990),  # on the nodata block
        box(501750, 3799000, 501900, 3799100),  # half off the east edge (DEM ends at 501800)
        box(600000, 3700000, 600100, 3700100),  # far away
    ]
    inventory = FeatureSet(polygons, [{"rts_id": i + 1} for i in range(4)], "EPSG:32646")
    layers = terrain_layers(
        dem, streams=FeatureSet([LineString([(500000, 3798500), (501800, 3798500)])], [{}], "EPSG:32646")
    )
    enriched = rts_terrain(inventory, dem, layers, adjacent_m=200)
    coverage = [a["dem_coverage"] for a in enriched.attributes]
    assert coverage == ["full", "none", "partial", "none"] and len(enriched) == 4
    inside = enriched.attributes[0]
    assert inside["slope_c"] == pytest.approx(math.degrees(math.atan(0.1)), abs=0.01)
    assert (
        inside["aspect_sec"] == "S"
        and inside["elevation_min"] <= inside["elevation_c"] <= inside["elevation_max"]
    )
    # the stream runs 600 m south of the polygon: cell centres 570-600 m apart
    assert 540 <= inside["stream_m"] <= 620 and inside["near_stream"] == 0
    assert enriched.attributes[3]["elevation_c"] is None and enriched.attributes[3]["slope_mean"] is None


def test_a_geographic_dem_is_reprojected_and_said_so(tmp_path):
    path = tmp_path / "dem4326.tif"
    z = (4600 + np.indices((50, 50))[1] * 2.0).astype("float32")
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=50,
        height=50,
        count=1,
        dtype="float32",
        crs="EPSG:4326",
        transform=from_origin(92.9, 34.9, 0.0003, 0.0003),
    ) as out:
        out.write(z, 1)
    dem = load_dem(path, "EPSG:32646")
    assert dem.crs.to_epsg() == 32646 and "reprojected" in dem.notes[0]
    assert 25 < dem.xres < 35, "about 30 m"


def test_analyze_the_synthetic_region_writes_every_figure_and_the_report(tmp_path):
    region = small_region(tmp_path / "region", size=500, seed=3)
    result = analyze(
        AnalysisConfig(
            inventory=region.truth_uri("rts"),
            dem=str(region.dem),
            out=str(tmp_path / "analysis"),
            vegetation=str(region.vegetation),
            soil=str(region.soil),
            cell_sizes_km=(10, 25),
            stream_threshold_km2=0.1,  # the region is 1.5 km across
        )
    )
    names = sorted(p.stem for p in result.figures)
    assert {"area_histogram", "terrain_frequencies", "aspect_rose", "vegetation_rings", "soil_rings"} <= set(
        names
    )
    assert any(n.startswith("density_") for n in names) and len(result.summary["density"]) == 3, (
        "adaptive grid added"
    )
    for png in result.figures:
        assert png.stat().st_size > 10_000 and png.with_suffix(".svg").stat().st_size > 10_000
    html = result.report.read_text()
    assert html.count("data:image/png;base64,") == len(result.figures) and "Kumar" in html
    summary = result.summary
    assert summary["coverage"]["full"] == summary["rts_count"], "the region's DEM covers every slump"
    vegetation = summary["overlays"]["vegetation"]
    assert set(vegetation["landscape_shares"]) <= {
        "swamp meadow",
        "alpine meadow",
        "alpine steppe",
        "arid desert meadow",
    }
    assert sum(vegetation["landscape_shares"].values()) == pytest.approx(1.0, abs=0.01)
    assert sum(summary["distributions"]["aspect"]["rts_count"]) <= summary["rts_count"]
    assert (tmp_path / "analysis" / "pisr.tif").is_file() and "streams" in result.layers
    assert_valid_geopackage(tmp_path / "analysis" / "rts_distribution.gpkg")
    assert_valid_geopackage(region.truth)  # the built-in example's layers too
    styles = default_styles(tmp_path / "analysis" / "rts_distribution.gpkg")
    assert set(styles) == set(result.layers) - {"slope", "aspect", "pisr"}, "every layer styled"
    assert 'type="graduatedSymbol"' in styles["density_10km"] and 'label="no RTS"' in styles["density_10km"]


def test_empty_inventory_and_missing_dem_are_clear_errors(tmp_path):
    empty = tmp_path / "empty.gpkg"
    write_features(empty, FeatureSet([], [], "EPSG:32646"), "rts")
    dem = synthetic_dem(tmp_path)
    with pytest.raises(RtsMapperError, match="inventory is empty"):
        analyze(AnalysisConfig(inventory=str(empty), dem=str(dem), out=str(tmp_path / "a")))
    one = tmp_path / "one.gpkg"
    write_features(one, FeatureSet([box(500900, 3799100, 501000, 3799200)], [{}], "EPSG:32646"), "rts")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rts_mapper_plugin",
            "analyze",
            "--inventory",
            str(one),
            "--dem",
            str(tmp_path / "no.tif"),
            "--out",
            str(tmp_path / "b"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "no.tif" in result.stderr and "no such file" in result.stderr


def test_class_overlay_from_polygons(tmp_path):
    classes = FeatureSet(
        [box(0, 0, 100, 100), box(100, 0, 300, 100)], [{"veg": "meadow"}, {"veg": "steppe"}], "EPSG:32646"
    )
    write_features(tmp_path / "veg.gpkg", classes, "veg")
    inventory = FeatureSet(
        [box(10, 10, 20, 20), box(150, 10, 160, 20), box(500, 500, 510, 510)], [{}, {}, {}], "EPSG:32646"
    )
    overlay = class_overlay("vegetation", inventory, f"{tmp_path / 'veg.gpkg'}|layername=veg", "veg")
    assert overlay.per_rts == ["meadow", "steppe", None]
    assert overlay.landscape_shares == {
        "meadow": pytest.approx(1 / 3, abs=1e-3),
        "steppe": pytest.approx(2 / 3, abs=1e-3),
    }
    assert overlay.rts_shares["not covered"] == pytest.approx(1 / 3, abs=1e-3)
    with pytest.raises(RtsMapperError, match="field"):
        class_overlay("vegetation", inventory, f"{tmp_path / 'veg.gpkg'}|layername=veg", None)
