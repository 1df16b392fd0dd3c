"""The mapping project's GeoPackage as the community's tools see it: GDAL's validator, the styles
QGIS finds in it, the column types, and the upgrade of a project an earlier version wrote."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from shapely.geometry import Polygon, box

from rts_mapper_plugin.core import gpkg
from rts_mapper_plugin.core.errors import RtsMapperError
from rts_mapper_plugin.core.project.loop import (
    IterationRecord,
    add_negatives,
    add_positives,
    record_iteration,
)
from rts_mapper_plugin.core.project.store import (
    LAYER_STYLES,
    SCHEMA,
    SCHEMA_VERSION,
    MappingProject,
    RunRecord,
)
from rts_mapper_plugin.core.review.decisions import (
    Decision,
    ReviewSession,
    record_decision,
    save_review_session,
)
from rts_mapper_plugin.core.vectors import FeatureSet
from tests.conftest import assert_valid_geopackage, default_styles
from tests.data.fixtures import write_raster

SCHEMA1 = Path(__file__).parents[1] / "data" / "projects" / "schema1"  # written by 437940d (schema 1)
DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class Candidate:
    def __init__(self, geometry) -> None:
        self.geometry = geometry

    def attributes(self) -> dict:
        return {
            "area_m2": self.geometry.area,
            "mean_prob": 0.7,
            "status": "pending",
            "year": 2020,
            "iteration": 1,
        }


def declared(path, table) -> dict[str, str]:
    conn = gpkg.connect(path)
    try:
        return gpkg.declared_types(conn, table)
    finally:
        conn.close()


def rows(path, sql) -> list[tuple]:
    conn = sqlite3.connect(str(path))
    try:
        return [tuple(r) for r in conn.execute(sql).fetchall()]
    finally:
        conn.close()


def test_a_project_in_use_passes_gdals_validator_with_styles_and_types(tmp_path):
    import numpy as np

    project = MappingProject.create(tmp_path / "p.gpkg", "EPSG:32646")
    image = write_raster(tmp_path / "2020.tif", np.zeros((3, 8, 8), np.uint8))
    project.register_year(2020, image)  # no acquisition dates known: NULL, not ""
    add_positives(
        project, FeatureSet([box(0, 0, 100, 100)], [{"initiation_period": ""}], project.crs), 1, "seed"
    )
    run = RunRecord(run_id="r1", iteration=1, year=2020, started_at="2026-01-01T10:00:00")  # local, no zone
    fids = project.add_run(run, [Candidate(box(200, 200, 300, 300)), Candidate(box(400, 0, 480, 60))])
    hill = Polygon([(205, 205, 4510.0), (305, 205, 4512.0), (305, 290, 4515.0), (205, 290, 4511.0)])
    record_decision(
        project,
        Decision(fids[0], "ana", "accepted", criteria={"upslope_retreat": True}, geometry=hill, edited=True),
    )
    record_decision(project, Decision(fids[1], "ana", "rejected"))
    save_review_session(project, "ana", ReviewSession(run_id="r1", show="pending"))
    add_negatives(project, [fids[1]], 1)
    record_iteration(project, IterationRecord(iteration=1, inferred=2))  # still in review: no finish time

    assert_valid_geopackage(project.path)
    assert set(default_styles(project.path)) == set(LAYER_STYLES), "QGIS finds each layer's style in the file"
    assert 'attr="status"' in default_styles(project.path)["candidates"]
    (geometry,) = project.features("reviews", "candidate_id = ?", (fids[0],)).geometries
    assert not geometry.has_z, "a 3-D boundary is stored 2-D, as the geometry column declares (z = 0)"
    types = declared(project.path, "reviews")
    assert types["decided_at"] == "DATETIME" and types["is_final"] == types["upslope_retreat"] == "BOOLEAN"
    assert declared(project.path, "years")["date_start"] == "DATE"
    (started,) = rows(project.path, "SELECT started_at FROM runs")[0]
    assert DATETIME.match(started), started
    assert rows(project.path, "SELECT date_start, finished_at FROM years, iterations") == [(None, None)]
    assert project.runs()[0].finished_at == "", "read back as the record's empty text"


def test_an_older_project_is_upgraded_keeping_every_row(tmp_path):
    folder = shutil.copytree(SCHEMA1, tmp_path / "old")
    path = folder / "rts_project.gpkg"
    existing = {name for (name,) in rows(path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    tables = [t for t in SCHEMA if t != "rts_mapper_meta" and t in existing]  # newer ones start empty
    before = {t: rows(path, f"SELECT * FROM {t} ORDER BY fid") for t in tables}
    assert declared(path, "reviews")["decided_at"] == "TEXT" and "layer_styles" not in str(
        rows(path, "SELECT name FROM sqlite_master")
    )

    project = MappingProject.open(path)

    for table, (_geometry, columns, _description) in SCHEMA.items():
        assert {n: t for n, t in declared(path, table).items() if n not in ("fid", "geom")} == {
            n: kind.split()[0] for n, kind in columns
        }, table
    after = {t: rows(path, f"SELECT * FROM {t} ORDER BY fid") for t in tables}
    for table in tables:
        assert len(after[table]) == len(before[table]) > 0, table
        skip = {
            i + (1 if SCHEMA[table][0] is None else 2)  # fid (and geom) come first
            for i, (_name, kind) in enumerate(SCHEMA[table][1])
            if kind.split()[0] in ("DATE", "DATETIME")  # rewritten as DATETIME, checked below
        }
        width = len(before[table][0])  # columns added since come last, empty
        kept = [[v for i, v in enumerate(r[:width]) if i not in skip] for r in after[table]]
        assert kept == [[v for i, v in enumerate(r) if i not in skip] for r in before[table]], table
        assert all(v is None for r in after[table] for v in r[width:]), table
    # every time is now a GeoPackage DATETIME; the local times of the loop were converted to UTC
    for table, column in (("runs", "started_at"), ("reviews", "decided_at"), ("iterations", "started_at")):
        for (value,) in rows(path, f"SELECT {column} FROM {table}"):
            assert DATETIME.match(value), (table, value)
    assert rows(path, "SELECT date_start, date_end FROM years ORDER BY year") == [
        ("2019-07-03", "2019-08-26"),
        (None, None),
    ]
    assert rows(path, "PRAGMA foreign_key_check") == []
    assert rows(path, "SELECT value FROM rts_mapper_meta WHERE key = 'schema_version'") == [
        (str(SCHEMA_VERSION),)
    ]
    assert set(default_styles(path)) == set(LAYER_STYLES)
    assert_valid_geopackage(path)

    # the R-tree and its triggers still follow the rows, and the reviews still read
    with project.connection() as conn:
        hits = conn.execute(
            "SELECT id FROM rtree_candidates_geom WHERE minx <= 500250 AND maxx >= 500250 "
            "AND miny <= 3800250 AND maxy >= 3800250"
        ).fetchall()
    assert [h[0] for h in hits] == [1]
    fids = project.add_run(
        RunRecord(run_id="r2", iteration=2), [Candidate(box(500_500, 3_800_500, 500_600, 3_800_600))]
    )
    assert fids == [4], "fids go on after the old ones"
    with project.connection() as conn:
        assert conn.execute("SELECT minx FROM rtree_candidates_geom WHERE id = 4").fetchone()[0] == 500_500
    record_decision(project, Decision(4, "ana", "accepted"))
    assert rows(path, "SELECT COUNT(*) FROM reviews WHERE candidate_id = 1") == [(2,)]
    MappingProject.open(path)  # a second open changes nothing
    assert rows(path, "SELECT COUNT(*) FROM layer_styles") == [(len(LAYER_STYLES),)]


def test_an_upgrade_that_fails_leaves_the_project_as_it_was(tmp_path, monkeypatch):
    folder = shutil.copytree(SCHEMA1, tmp_path / "old")
    path = folder / "rts_project.gpkg"
    calls = []

    def fails_on_the_third(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 3:
            raise sqlite3.OperationalError("disk I/O error")
        return real(*args, **kwargs)

    real = gpkg.retype_table
    monkeypatch.setattr(gpkg, "retype_table", fails_on_the_third)
    with pytest.raises(RtsMapperError, match=r"nothing was changed \(disk I/O error\)"):
        MappingProject.open(path)
    assert declared(path, "reviews")["decided_at"] == "TEXT" and len(calls) == 3
    assert rows(path, "SELECT value FROM rts_mapper_meta WHERE key = 'schema_version'") == [("1",)]
    assert rows(path, "SELECT COUNT(*) FROM reviews") == [(4,)]
    monkeypatch.undo()
    MappingProject.open(path)
    assert declared(path, "reviews")["decided_at"] == "DATETIME"


def test_a_users_own_default_style_is_kept(tmp_path):
    project = MappingProject.create(tmp_path / "p.gpkg", "EPSG:32646")
    with project.connection() as conn, gpkg.transaction(conn):
        gpkg.save_default_style(conn, "candidates", "<qgis>mine</qgis>", "my style")
    MappingProject.open(project.path)
    assert default_styles(project.path)["candidates"] == "<qgis>mine</qgis>"
    assert rows(project.path, "SELECT COUNT(*) FROM layer_styles WHERE f_table_name = 'candidates'") == [(2,)]


def test_a_read_only_project_still_opens(tmp_path, monkeypatch):
    from rts_mapper_plugin.core.project import store

    project = MappingProject.create(tmp_path / "p.gpkg", "EPSG:32646")
    with project.connection() as conn, gpkg.transaction(conn):
        conn.execute("DELETE FROM layer_styles")  # as a project made before styles were stored

    def read_only(*_args):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(store, "_store_styles", read_only)
    assert MappingProject.open(project.path).crs == project.crs, "opens, unstyled"
    monkeypatch.undo()
    MappingProject.open(project.path)
    assert set(default_styles(project.path)) == set(LAYER_STYLES), "styled once it can be written"


def test_times_read_back_as_iso_text_with_their_zone():
    from osgeo import ogr

    from rts_mapper_plugin.core.vectors import _value

    source = ogr.GetDriverByName("Memory").CreateDataSource("m")  # kept alive while its layer is used
    layer = source.CreateLayer("l")
    layer.CreateField(ogr.FieldDefn("t", ogr.OFTDateTime))
    layer.CreateField(ogr.FieldDefn("d", ogr.OFTDate))
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetField("d", 2018, 7, 1, 0, 0, 0, 0)
    assert _value(feature, 1, layer.GetLayerDefn().GetFieldDefn(1)) == "2018-07-01"  # OGR: "2018/07/01"
    for zone, suffix in ((100, "Z"), (104, "+01:00"), (96, "-01:00"), (0, "")):
        feature.SetField("t", 2020, 7, 1, 10, 0, 5.25, zone)
        assert _value(feature, 0, layer.GetLayerDefn().GetFieldDefn(0)) == "2020-07-01T10:00:05.250" + suffix
