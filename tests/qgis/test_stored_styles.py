"""What a colleague sees who opens the plugin's GeoPackages in QGIS without the plugin: the layers
come styled, from the styles stored in each file's ``layer_styles`` (no loadNamedStyle here)."""

from __future__ import annotations

from qgis.core import QgsVectorLayer
from shapely.geometry import box

from rts_mapper_plugin.core.analysis.distribution import density_style
from rts_mapper_plugin.core.project.store import MappingProject
from rts_mapper_plugin.core.vectors import FeatureSet, write_features


def opened(uri: str) -> QgsVectorLayer:
    layer = QgsVectorLayer(uri, "layer", "ogr")  # what Layer › Add Layer does
    assert layer.isValid(), uri
    return layer


def test_a_project_opened_without_the_plugin_shows_its_styles(tmp_path):
    path = MappingProject.create(tmp_path / "p.gpkg", "EPSG:32646").path
    for table, attribute in (("candidates", "status"), ("reviews", "decision")):
        layer = opened(f"{path}|layername={table}")  # kept: the renderer lives as long as its layer
        renderer = layer.renderer()
        assert renderer.type() == "categorizedSymbol" and renderer.classAttribute() == attribute, table
        labels = {c.value(): c.label() for c in renderer.categories()}
        assert labels["accepted"] == "Accepted (RTS)", table
    layer = opened(f"{path}|layername=training_positives")
    assert layer.renderer().symbol().symbolLayer(0).strokeColor().name() == "#1a9641", (
        "the plugin's green outline"
    )


def test_a_density_grid_opens_as_a_choropleth(tmp_path):
    cells = [box(x * 1000, 0, x * 1000 + 1000, 1000) for x in range(12)]
    grid = FeatureSet(cells, [{"rts_count": n} for n in (0, 0, 1, 1, 2, 3, 5, 8, 13, 0, 21, 2)], "EPSG:32646")
    path = write_features(
        tmp_path / "d.gpkg", grid, "density_1km", geometry_type="Polygon", qml=density_style(grid)
    )
    layer = opened(f"{path}|layername=density_1km")
    renderer = layer.renderer()
    assert renderer.type() == "graduatedSymbol" and renderer.classAttribute() == "rts_count"
    ranges = renderer.ranges()
    assert ranges[0].label() == "no RTS" and ranges[0].symbol().color().alpha() == 0, "empty cells clear"
    assert ranges[-1].upperValue() == 21 and len(ranges) >= 4
    lightness = [r.symbol().color().lightness() for r in ranges[1:]]
    assert lightness == sorted(lightness, reverse=True), "more slumps, darker red"
