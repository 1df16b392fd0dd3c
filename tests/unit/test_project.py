"""The mapping project GeoPackage: a valid GeoPackage, the schema, the year registry."""

from __future__ import annotations

import sqlite3

import pytest
from osgeo import ogr
from shapely.geometry import MultiPolygon, Polygon, box

from rts_mapper_plugin.core import gpkg
from rts_mapper_plugin.core.errors import RtsMapperError
from rts_mapper_plugin.core.project.store import SCHEMA, MappingProject, initiation_periods
from tests.data.fixtures import planetscope_like, write_raster


@pytest.fixture
def project(tmp_path) -> MappingProject:
    return MappingProject.create(tmp_path / "project.gpkg", "EPSG:32646")


def test_gdal_reads_every_table(project):
    dataset = ogr.Open(str(project.path))
    names = {dataset.GetLayerByIndex(i).GetName() for i in range(dataset.GetLayerCount())}
    assert set(SCHEMA) <= names
    candidates = dataset.GetLayerByName("candidates")
    assert ogr.GeometryTypeToName(candidates.GetGeomType()) == "Multi Polygon"
    assert candidates.GetSpatialRef().GetAuthorityCode(None) == "32646"


def test_geometry_round_trip_and_rtree(project):
    square = MultiPolygon([box(490_000, 3_860_000, 490_030, 3_860_030)])
    with project.connection() as conn, gpkg.transaction(conn):
        (fid,) = gpkg.insert_rows(
            conn, "candidates", ["geom", "run_id"], [(gpkg.encode_geometry(square, project.srs_id), "run")]
        )
        gpkg.refresh_extent(conn, "candidates")
    with project.connection() as conn:
        blob = conn.execute("SELECT geom FROM candidates WHERE fid = ?", (fid,)).fetchone()[0]
        assert gpkg.decode_geometry(blob).equals(square)
        row = conn.execute("SELECT minx, maxy FROM rtree_candidates_geom WHERE id = ?", (fid,)).fetchone()
        assert tuple(row) == (490_000, 3_860_030)
        with gpkg.transaction(conn):  # the triggers keep the index in step with edits
            moved = MultiPolygon([box(491_000, 3_861_000, 491_010, 3_861_010)])
            conn.execute(
                "UPDATE candidates SET geom = ? WHERE fid = ?", (gpkg.encode_geometry(moved, 32646), fid)
            )
        assert (
            conn.execute("SELECT minx FROM rtree_candidates_geom WHERE id = ?", (fid,)).fetchone()[0]
            == 491_000
        )
    # and GDAL agrees
    dataset = ogr.Open(str(project.path))  # keep the dataset alive while its layer is used
    layer = dataset.GetLayerByName("candidates")
    layer.SetSpatialFilterRect(490_990, 3_860_990, 491_020, 3_861_020)
    assert layer.GetFeatureCount() == 1


def test_geometry_with_hole_and_empty():
    with_hole = Polygon([(0, 0), (10, 0), (10, 10), (0, 10)], [[(2, 2), (4, 2), (4, 4), (2, 4)]])
    assert gpkg.decode_geometry(gpkg.encode_geometry(with_hole, 1)).equals(with_hole)
    empty = gpkg.encode_geometry(MultiPolygon(), 1)
    assert gpkg.decode_geometry(empty).is_empty
    assert gpkg.encode_geometry(None, 1) is None


def test_transaction_rolls_back_on_error(project):
    with pytest.raises(ZeroDivisionError), project.connection() as conn, gpkg.transaction(conn):
        gpkg.insert_rows(conn, "candidates", ["run_id"], [("lost",)])
        raise ZeroDivisionError
    with project.connection() as conn:
        assert conn.execute("SELECT COUNT(*) FROM candidates").fetchone()[0] == 0


def test_constraints_guard_the_data(project):
    with project.connection() as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO candidates (run_id, status) VALUES ('r', 'maybe')")


def test_year_registry(project, tmp_path):
    years = {}
    for year in (2018, 2016, 2017):
        years[year] = write_raster(tmp_path / "imagery" / f"{year}.tif", planetscope_like()[:3])
        project.register_year(year, years[year], sensor="PlanetScope", date_start=f"{year}-07-01")
    listed = project.years()
    assert [y.year for y in listed] == [2016, 2017, 2018]
    assert listed[0].raster_path == years[2016].resolve()
    with project.connection() as conn:
        stored = conn.execute("SELECT raster_path FROM years WHERE year = 2016").fetchone()[0]
    assert stored == "imagery/2016.tif", "paths inside the project folder are stored relative"
    replacement = write_raster(tmp_path / "imagery" / "2016b.tif", planetscope_like()[:3])
    project.register_year(2016, replacement)
    assert [y.raster_path.name for y in project.years()] == ["2016b.tif", "2017.tif", "2018.tif"]
    with pytest.raises(RtsMapperError, match="no such raster"):
        project.register_year(2019, tmp_path / "nope.tif")


def test_project_folder_can_move(project, tmp_path):
    raster = write_raster(tmp_path / "imagery" / "2019.tif", planetscope_like()[:3])
    project.register_year(2019, raster)
    moved = tmp_path.parent / (tmp_path.name + "_moved")
    tmp_path.rename(moved)
    (year,) = MappingProject.open(moved / "project.gpkg").years()
    assert year.raster_path == (moved / "imagery" / "2019.tif").resolve() and year.raster_path.exists()


def test_open_errors(tmp_path):
    with pytest.raises(RtsMapperError, match="no such mapping project"):
        MappingProject.open(tmp_path / "missing.gpkg")
    (tmp_path / "text.gpkg").write_text("not sqlite at all, just text" * 100)
    with pytest.raises(RtsMapperError, match="cannot be read as a GeoPackage"):
        MappingProject.open(tmp_path / "text.gpkg")
    plain = tmp_path / "plain.gpkg"
    sqlite3.connect(plain).execute("CREATE TABLE x (a)").connection.commit()
    with pytest.raises(RtsMapperError, match="not an RTS Mapper project"):
        MappingProject.open(plain)


def test_create_existing_with_other_crs_is_refused(project):
    with pytest.raises(RtsMapperError, match="already exists"):
        MappingProject.create(project.path, "EPSG:4326")
    assert MappingProject.create(project.path, "EPSG:32646").path == project.path


def test_initiation_periods():
    assert initiation_periods([2018, 2016, 2017]) == ["before 2016", "2016-2017", "2017-2018"]
    assert initiation_periods([]) == []
