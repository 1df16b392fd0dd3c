"""The year registry drives QGIS: a Time-lapse group whose layers the Temporal Controller steps."""

from __future__ import annotations

import numpy as np
import pytest
from qgis.core import (
    QgsMapRendererSequentialJob,
    QgsMapSettings,
    QgsProject,
    QgsRasterLayerTemporalProperties,
    QgsTemporalNavigationObject,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor

from rts_mapper_plugin.core import gpkg
from rts_mapper_plugin.core.project.store import MappingProject
from rts_mapper_plugin.qgis_layers.timelapse import GROUP_NAME, load_time_lapse, year_layers
from tests.data.fixtures import write_raster

YEARS = (2016, 2017, 2018, 2019, 2020)
COLOURS = {
    2016: (200, 30, 30),
    2017: (30, 200, 30),
    2018: (30, 30, 200),
    2019: (200, 200, 30),
    2020: (30, 200, 200),
}


@pytest.fixture
def registered(tmp_path, qgis_new_project):
    project = MappingProject.create(tmp_path / "project.gpkg", "EPSG:32646")
    for year in YEARS:
        array = np.empty((3, 40, 40), dtype=np.uint8)
        for band, value in enumerate(COLOURS[year]):
            array[band] = value
        path = write_raster(tmp_path / "imagery" / f"{year}.tif", array, nodata=0)
        project.register_year(year, path, sensor="PlanetScope")
    return project


def render_colour(layers, extent, temporal_range) -> tuple[int, int, int]:
    settings = QgsMapSettings()
    settings.setLayers(layers)
    settings.setExtent(extent)
    settings.setOutputSize(QSize(20, 20))
    settings.setDestinationCrs(layers[0].crs())
    settings.setIsTemporal(True)
    settings.setTemporalRange(temporal_range)
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    colour = QColor(job.renderedImage().pixel(10, 10))
    return colour.red(), colour.green(), colour.blue()


def test_group_with_one_temporal_layer_per_year(registered):
    navigation = QgsTemporalNavigationObject()
    group = load_time_lapse(registered, QgsProject.instance(), navigation)
    assert group.name() == GROUP_NAME
    names = [node.layer().name() for node in group.findLayers()]
    assert names == ["2020", "2019", "2018", "2017", "2016"]
    layers = year_layers()
    assert list(layers) == list(YEARS)
    for year, layer in layers.items():
        properties = layer.temporalProperties()
        assert properties.isActive()
        assert properties.mode() == QgsRasterLayerTemporalProperties.ModeFixedTemporalRange
        assert properties.fixedTemporalRange().begin().date().year() == year
    assert navigation.totalFrameCount() == len(YEARS)


def test_temporal_controller_steps_through_the_years(registered):
    navigation = QgsTemporalNavigationObject()
    load_time_lapse(registered, QgsProject.instance(), navigation)
    layers = list(year_layers().values())
    extent = layers[0].extent()
    seen = []
    for frame in range(navigation.totalFrameCount()):
        navigation.setCurrentFrameNumber(frame)
        seen.append(render_colour(layers, extent, navigation.dateTimeRangeForFrameNumber(frame)))
    for colour, year in zip(seen, YEARS):
        assert np.allclose(colour, COLOURS[year], atol=3), f"frame of {year} shows {colour}"


def test_reloading_follows_the_registry(registered, tmp_path):
    load_time_lapse(registered, QgsProject.instance())
    kept = year_layers()[2017]
    kept.setName("2017")
    registered.unregister_year(2016)
    replacement = write_raster(tmp_path / "imagery" / "2018b.tif", np.full((3, 40, 40), 90, np.uint8))
    registered.register_year(2018, replacement)
    load_time_lapse(registered, QgsProject.instance())
    layers = year_layers()
    assert list(layers) == [2017, 2018, 2019, 2020]
    assert layers[2017] is kept, "unchanged years keep their layer (and style)"
    assert layers[2018].source() == str(replacement.resolve())


def test_project_geopackage_is_editable_in_qgis(registered):
    """A candidate edited with QGIS's own editing (through OGR) reads back through the core."""
    from shapely.geometry import MultiPolygon, box

    with registered.connection() as conn, gpkg.transaction(conn):
        (fid,) = gpkg.insert_rows(
            conn,
            "candidates",
            ["geom", "run_id", "area_m2"],
            [
                (
                    gpkg.encode_geometry(MultiPolygon([box(490_000, 3_859_900, 490_030, 3_859_930)]), 32646),
                    "r",
                    900.0,
                )
            ],
        )
    layer = QgsVectorLayer(f"{registered.path}|layername=candidates", "candidates", "ogr")
    assert layer.isValid() and layer.featureCount() == 1
    assert layer.crs().authid() == "EPSG:32646"
    from qgis.core import QgsGeometry

    assert layer.startEditing()
    new_geometry = QgsGeometry.fromWkt(
        "MultiPolygon(((490000 3859900, 490060 3859900, 490060 3859960, 490000 3859900)))"
    )
    assert layer.changeGeometry(fid, new_geometry)
    assert layer.changeAttributeValue(fid, layer.fields().indexOf("status"), "accepted")
    assert layer.commitChanges(), layer.commitErrors()
    with registered.connection() as conn:
        row = conn.execute("SELECT geom, status FROM candidates WHERE fid = ?", (fid,)).fetchone()
        assert row["status"] == "accepted"
        assert gpkg.decode_geometry(row["geom"]).area == pytest.approx(1800)
        assert (
            conn.execute("SELECT maxx FROM rtree_candidates_geom WHERE id = ?", (fid,)).fetchone()[0]
            == 490_060
        )


def test_every_layer_of_a_new_project_opens_with_its_crs(tmp_path, qgis_new_project):
    """Candidate layers of two runs, then the training sets: each keeps the project's CRS (a
    GeoPackage in rollback-journal mode left the later ones without one in QGIS 3.22)."""
    import sqlite3

    from shapely.geometry import box

    from rts_mapper_plugin.core.project.loop import add_positives
    from rts_mapper_plugin.core.project.store import RunRecord
    from rts_mapper_plugin.core.vectors import FeatureSet
    from rts_mapper_plugin.qgis_layers.layers import candidates_layer, project_layer_uri

    class Candidate:
        def __init__(self, geometry):
            self.geometry = geometry

        def attributes(self):
            return {"area_m2": self.geometry.area, "status": "pending", "mean_prob": 0.7}

    mapping = MappingProject.create(tmp_path / "p.gpkg", "EPSG:32646")
    with sqlite3.connect(mapping.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    square = box(490_000, 3_860_000, 490_100, 3_860_100)
    for iteration in (1, 2):
        mapping.add_run(RunRecord(run_id=f"run{iteration}", iteration=iteration), [Candidate(square)])
    add_positives(mapping, FeatureSet([square], [{}], mapping.crs), 0, "known")
    keep = [candidates_layer(mapping.path, f"run{i}", f"run {i}") for i in (1, 2)]
    for table in ("training_positives", "training_negatives", "reviews"):
        keep.append(QgsVectorLayer(project_layer_uri(mapping.path, table), table, "ogr"))
    for layer in keep:
        assert layer.isValid() and layer.crs().authid() == "EPSG:32646", layer.name()


def test_the_years_load_beneath_the_candidates_already_on_the_map(tmp_path, qgis_new_project):
    """After a restart the candidates may come back before the years (Load ▾ › Time-lapse): the
    years go to the bottom of the layer tree, or they would hide every candidate."""
    from rts_mapper_plugin.qgis_layers.layers import RUNS_GROUP, runs_group

    runs_group(QgsProject.instance())
    image = write_raster(tmp_path / "2019.tif", np.full((3, 20, 20), 120, np.uint8))
    mapping = MappingProject.create(tmp_path / "p.gpkg", "EPSG:32646")
    mapping.register_year(2019, image)
    load_time_lapse(mapping, QgsProject.instance())
    names = [node.name() for node in QgsProject.instance().layerTreeRoot().children()]
    assert names.index(RUNS_GROUP) < names.index(GROUP_NAME), names
