"""Distribution analysis in QGIS: the step algorithms chained through processing.run, the whole
report, and the menu action's defaults picked from the project's layers."""

from __future__ import annotations

from pathlib import Path

import pytest
from qgis.core import QgsProject, QgsRasterLayer, QgsVectorLayer

from tests.data.fixtures import small_region
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    return small_region(tmp_path_factory.mktemp("distribution") / "region", size=500, seed=3)


def test_steps_chain_through_processing_run(plugin, region, tmp_path):
    from qgis import processing

    inventory = QgsVectorLayer(region.truth_uri("rts"), "RTS inventory", "ogr")
    dem = QgsRasterLayer(str(region.dem), "DEM", "gdal")
    assert inventory.isValid() and dem.isValid()
    terrain = processing.run(
        "rts_mapper:rts_terrain",
        {
            "INVENTORY": inventory,
            "DEM": dem,
            "THRESHOLD": 0.1,
            "ADJACENT": 100,
            "OUTPUT": str(tmp_path / "t.gpkg"),
        },
    )
    enriched = QgsVectorLayer(terrain["OUTPUT"], "terrain", "ogr")
    assert enriched.featureCount() == inventory.featureCount() > 0
    names = enriched.fields().names()
    assert {"elevation_c", "slope_mean", "aspect_sec", "pisr_c", "stream_m", "dem_coverage"} <= set(names)
    assert {f["dem_coverage"] for f in enriched.getFeatures()} == {"full"}

    grid = processing.run(
        "rts_mapper:density_grid",
        {"INVENTORY": enriched, "CELL_KM": 0.5, "EXTENT": dem, "OUTPUT": str(tmp_path / "g.gpkg")},
    )
    cells = QgsVectorLayer(grid["OUTPUT"], "grid", "ogr")
    assert cells.featureCount() >= 9
    assert sum(f["rts_count"] for f in cells.getFeatures()) == inventory.featureCount()

    rasters = processing.run(
        "rts_mapper:terrain_rasters",
        {
            "DEM": dem,
            "SLOPE": str(tmp_path / "s.tif"),
            "ASPECT": str(tmp_path / "a.tif"),
            "PISR": str(tmp_path / "p.tif"),
        },
    )
    pisr = QgsRasterLayer(rasters["PISR"], "pisr", "gdal")
    stats = pisr.dataProvider().bandStatistics(1)
    assert pisr.isValid() and 1500 < stats.mean < 2600


def test_report_algorithm_and_the_menu_defaults(plugin, region, tmp_path):
    from qgis import processing

    from rts_mapper_plugin.qgis_layers.layers import distribution_defaults

    project = QgsProject.instance()
    layers = {
        "RTS inventory (12)": QgsVectorLayer(region.truth_uri("rts"), "RTS inventory (12)", "ogr"),
        "DEM (30 m)": QgsRasterLayer(str(region.dem), "DEM (30 m)", "gdal"),
        "Vegetation": QgsRasterLayer(str(region.vegetation), "Vegetation", "gdal"),
        "Soil texture": QgsRasterLayer(str(region.soil), "Soil texture", "gdal"),
    }
    for layer in layers.values():
        project.addMapLayer(layer)
    defaults = distribution_defaults(project)
    assert defaults == {
        "INVENTORY": layers["RTS inventory (12)"].id(),
        "DEM": layers["DEM (30 m)"].id(),
        "VEGETATION": layers["Vegetation"].id(),
        "SOIL": layers["Soil texture"].id(),
    }
    assert "distribution_report" in plugin.actions
    result = processing.run(
        "rts_mapper:distribution_report", {**defaults, "OUTPUT": str(tmp_path / "report")}
    )
    html = Path(result["REPORT"]).read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") >= 7 and "Vegetation" in html
    terrain = QgsVectorLayer(f"{result['LAYERS']}|layername=rts_terrain", "t", "ogr")
    assert terrain.featureCount() == layers["RTS inventory (12)"].featureCount() > 0


def test_figures_dialog_shows_every_figure_in_the_papers_order(plugin, region, tmp_path, qtbot):
    from qgis import processing

    out = tmp_path / "report"
    processing.run(
        "rts_mapper:distribution_report",
        {
            "INVENTORY": QgsVectorLayer(region.truth_uri("rts"), "inv", "ogr"),
            "DEM": QgsRasterLayer(str(region.dem), "dem", "gdal"),
            "VEGETATION": QgsRasterLayer(str(region.vegetation), "veg", "gdal"),
            "OUTPUT": str(out),
        },
    )
    plugin.show_figures(str(out))
    dialog = plugin.dialogs["figures"]
    names = [dialog.list.item(i).text() for i in range(dialog.list.count())]
    assert names[:4] == ["area histogram", "terrain frequencies", "aspect rose", "vegetation rings"]
    assert names[-1].startswith("density") and "soil rings" not in names
    sizes = [float(n.split(", ")[1].split()[0]) for n in names if n.startswith("density")]
    assert sizes == sorted(sizes), "finest grid first"
    dialog.list.setCurrentRow(2)
    assert dialog.image.pixmap() is not None and dialog.image.pixmap().width() > 300


def test_density_grids_load_as_choropleths(plugin, region, tmp_path):
    from qgis import processing

    from rts_mapper_plugin.qgis_layers.layers import add_distribution_layers

    result = processing.run(
        "rts_mapper:distribution_report",
        {
            "INVENTORY": QgsVectorLayer(region.truth_uri("rts"), "inv", "ogr"),
            "DEM": QgsRasterLayer(str(region.dem), "dem", "gdal"),
            "CELLS": "0.5,1",
            "OUTPUT": str(tmp_path / "r"),
        },
    )
    layers = {layer.name(): layer for layer in add_distribution_layers(result["LAYERS"])}
    fine, coarse = "RTS density, 0.5 km cells", "RTS density, 1 km cells"
    assert {"RTSs with terrain", fine, coarse} <= set(layers)
    renderer = layers[fine].renderer()
    assert renderer.type() == "graduatedSymbol" and renderer.classAttribute() == "rts_count"
    assert len(renderer.ranges()) >= 2 and renderer.ranges()[0].label() == "no RTS"
    group = QgsProject.instance().layerTreeRoot().findGroup("Distribution")
    visible = [n.layer().name() for n in group.findLayers() if n.isVisible()]
    assert fine in visible and coarse not in visible


def test_menu_defaults_put_class_polygons_in_the_polygon_parameters(region, tmp_path, qgis_new_project):
    from rts_mapper_plugin.qgis_layers.layers import distribution_defaults
    from tests.data.fixtures import class_polygons

    project = QgsProject.instance()
    polygons = class_polygons(region.vegetation, tmp_path / "vegetation.gpkg")
    vegetation = QgsVectorLayer(f"{polygons}|layername=classes", "Vegetation map", "ogr")
    soil = QgsRasterLayer(str(region.soil), "Soil texture", "gdal")
    project.addMapLayers([vegetation, soil])
    defaults = distribution_defaults(project)
    assert defaults["VEGETATION_POLYGONS"] == vegetation.id() and "VEGETATION" not in defaults
    assert defaults["SOIL"] == soil.id() and "SOIL_POLYGONS" not in defaults


def test_the_menu_opens_the_report_dialog_with_raster_classes_and_shows_the_figures(
    plugin, region, qtbot, qgis_new_project
):
    """RTS Mapper › Distribution report… with raster vegetation and soil layers loaded: the dialog
    a person gets (it crashed QGIS once), filled in, Run clicked, the figures shown."""
    from qgis.PyQt.QtCore import QPoint
    from qgis.PyQt.QtWidgets import QDialogButtonBox

    from tests import person

    project = QgsProject.instance()
    project.addMapLayers(
        [
            QgsVectorLayer(region.truth_uri("rts"), "RTS inventory (12)", "ogr"),
            QgsRasterLayer(str(region.dem), "DEM (30 m)", "gdal"),
            QgsRasterLayer(str(region.vegetation), "Vegetation", "gdal"),
            QgsRasterLayer(str(region.soil), "Soil texture", "gdal"),
        ]
    )
    plugin.menu.popup(QPoint(10, 10))
    wait_until(qtbot, plugin.menu.isVisible)
    person.menu_entry(plugin.menu, "Distribution report…")
    dialog = plugin.dialogs["distribution_report"]
    assert dialog.isVisible()
    held = dialog.mainWidget().createProcessingParameters()
    names = {k: project.mapLayer(str(v)).name() for k, v in held.items() if project.mapLayer(str(v))}
    assert names == {
        "INVENTORY": "RTS inventory (12)",
        "DEM": "DEM (30 m)",
        "VEGETATION": "Vegetation",
        "SOIL": "Soil texture",
    }
    person.click(dialog.buttonBox().button(QDialogButtonBox.Ok))
    wait_until(qtbot, lambda: "figures" in plugin.dialogs and plugin.dialogs["figures"].isVisible())
    figures = plugin.dialogs["figures"]
    names = [figures.list.item(i).text() for i in range(figures.list.count())]
    assert "vegetation rings" in names and "soil rings" in names
    assert project.layerTreeRoot().findGroup("Distribution") is not None
