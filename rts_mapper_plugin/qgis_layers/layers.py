"""Putting the project's results on the map: candidate and probability layers, styled."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsDefaultValue,
    QgsExpression,
    QgsLayerTreeGroup,
    QgsProject,
    QgsRasterLayer,
    QgsVectorLayer,
)

from ..toolbelt.resources import style_path
from .sources import shows_table

RUNS_GROUP = "RTS Mapper runs"
RUN_PROPERTY = "rts_mapper/run_id"


def layer_crs_wkt(layer) -> str:
    """A layer's CRS as WKT for a task (which reads the file, and uses this CRS when the file has
    none), or an error that says where to set it."""
    from ..core.errors import RtsMapperError

    if not layer.crs().isValid():
        raise RtsMapperError(
            f"{layer.name()}: the layer has no coordinate reference system: set it in Layer "
            "Properties › Source (or Layer › Set CRS of Layer), then run again"
        )
    return layer.crs().toWkt()


def project_layer_uri(project_gpkg: str | Path, table: str) -> str:
    return f"{project_gpkg}|layername={table}"


# Fields derived from the geometry, recomputed by QGIS whenever anything edits it (the vertex
# tool, the Review dock, the field calculator): planar in the project's projected CRS, as the core
# measures them; ellipsoidal ($area) if a project was made in a geographic CRS.
MEASURES = {
    "area_m2": ("area($geometry)", "$area"),
    "perimeter_m": ("perimeter($geometry)", "$perimeter"),
}


def keep_measures_in_step(layer: QgsVectorLayer) -> None:
    """Make ``area_m2`` / ``perimeter_m`` follow every geometry edit, and read-only in forms."""
    form = layer.editFormConfig()
    for field, (planar, ellipsoidal) in MEASURES.items():
        index = layer.fields().indexOf(field)
        if index < 0:
            continue
        expression = ellipsoidal if layer.crs().isGeographic() else planar
        layer.setDefaultValueDefinition(index, QgsDefaultValue(expression, True))  # True: on update
        form.setReadOnly(index, True)
    layer.setEditFormConfig(form)


def project_layer(project_gpkg: str | Path, table: str, name: str) -> QgsVectorLayer:
    """A table of the mapping project as a layer, always in the project's CRS: QGIS 3.22 can
    read a GeoPackage's CRS as empty while it switches the file's journal mode under other open
    layers, and a .qgz saved then says "no coordinate reference system"."""
    from qgis.core import QgsCoordinateReferenceSystem

    from ..core.project.store import MappingProject

    layer = QgsVectorLayer(project_layer_uri(project_gpkg, table), name, "ogr")
    if not layer.isValid():
        raise ValueError(f"{project_gpkg}: QGIS cannot open the {table} table")
    if not layer.crs().isValid():
        layer.setCrs(QgsCoordinateReferenceSystem.fromWkt(MappingProject.open(project_gpkg).crs.to_wkt()))
    return layer


def candidates_layer(project_gpkg: str | Path, run_id: str | None, name: str) -> QgsVectorLayer:
    """The project's candidates (of one run), editable, styled by status, no labels."""
    layer = project_layer(project_gpkg, "candidates", name)
    layer.loadNamedStyle(str(style_path("candidates")))  # first: a style replaces custom properties
    keep_measures_in_step(layer)
    if run_id is not None:
        layer.setSubsetString(f'"run_id" = {QgsExpression.quotedValue(run_id)}')
        layer.setCustomProperty(RUN_PROPERTY, run_id)
    return layer


def probability_layer(path: str | Path, name: str) -> QgsRasterLayer:
    layer = QgsRasterLayer(str(path), name, "gdal")
    if not layer.isValid():
        raise ValueError(f"{path}: QGIS cannot open the probability raster")
    layer.loadNamedStyle(str(style_path("probability")))
    return layer


def runs_group(qgs_project: QgsProject) -> QgsLayerTreeGroup:
    root = qgs_project.layerTreeRoot()
    return root.findGroup(RUNS_GROUP) or root.insertGroup(0, RUNS_GROUP)


def add_run_layers(
    project, run, qgs_project: QgsProject | None = None
) -> tuple[QgsVectorLayer, QgsRasterLayer | None]:
    """Add one run's candidates (on top) and probability (beneath) to the "RTS Mapper runs" group."""
    qgs_project = qgs_project or QgsProject.instance()
    label = f"iteration {run.iteration}" if run.iteration is not None else run.run_id
    year = f" {run.year}" if run.year else ""
    candidates = candidates_layer(project.path, run.run_id, f"Candidates{year}, {label} ({run.candidates})")
    group = runs_group(qgs_project)
    qgs_project.addMapLayer(candidates, False)
    group.insertLayer(0, candidates)
    probability = None
    if run.prob_path and project.resolve_path(run.prob_path).exists():
        probability = probability_layer(project.resolve_path(run.prob_path), f"Probability{year}, {label}")
        qgs_project.addMapLayer(probability, False)
        group.insertLayer(1, probability)
    return candidates, probability


TRAINING_STYLES = {"training_positives": "training_positives", "training_negatives": "training_negatives"}


def training_layer(project_gpkg: str | Path, table: str, name: str) -> QgsVectorLayer:
    """A training set of the project (positives or negatives), styled."""
    layer = project_layer(project_gpkg, table, name)
    layer.loadNamedStyle(str(style_path(TRAINING_STYLES[table])))
    return layer


def training_layer_loaded(
    project_gpkg: str | Path, table: str, qgs_project: QgsProject | None = None
) -> bool:
    qgs_project = qgs_project or QgsProject.instance()
    wanted = Path(project_gpkg).resolve()
    return any(
        isinstance(layer, QgsVectorLayer) and shows_table(layer, wanted, table)
        for layer in qgs_project.mapLayers().values()
    )


def add_training_layer(
    project_gpkg: str | Path, table: str, name: str, qgs_project: QgsProject | None = None
) -> QgsVectorLayer:
    qgs_project = qgs_project or QgsProject.instance()
    layer = training_layer(project_gpkg, table, name)
    qgs_project.addMapLayer(layer, False)
    runs_group(qgs_project).addLayer(layer)
    return layer


def layer_features(layer):
    """A layer's (or a Processing feature source's) geometries as a core FeatureSet in its CRS
    (any provider: file, memory, database), so the core never needs to know where a QGIS layer
    lives."""
    import shapely

    from ..core.vectors import FeatureSet

    geometries = [
        shapely.from_wkb(bytes(feature.geometry().asWkb()))
        for feature in layer.getFeatures()
        if feature.hasGeometry()
    ]
    crs = layer.crs() if isinstance(layer, QgsVectorLayer) else layer.sourceCrs()
    return FeatureSet(geometries, [{} for _ in geometries], crs.toWkt() or None)


def inventory_layer(path: str | Path, name: str = "RTS inventory") -> QgsVectorLayer:
    layer = QgsVectorLayer(str(path), name, "ogr")
    if not layer.isValid():
        raise ValueError(f"{path}: QGIS cannot open the exported inventory")
    layer.loadNamedStyle(str(style_path("inventory")))
    return layer


def distribution_defaults(qgs_project: QgsProject | None = None) -> dict:
    """Parameters of the distribution report guessed from the layers loaded: the inventory, and
    rasters or layers whose names say DEM / elevation, vegetation, soil, stream."""
    qgs_project = qgs_project or QgsProject.instance()
    found: dict[str, str] = {}
    for layer in qgs_project.mapLayers().values():
        name = layer.name().lower()
        is_raster = isinstance(layer, QgsRasterLayer)
        if "inventory" in name and not is_raster:
            found.setdefault("INVENTORY", layer.id())
        elif is_raster and ("dem" in name.split() or "elevation" in name):
            found.setdefault("DEM", layer.id())
        elif "vegetation" in name or "soil" in name:  # a class raster, or class polygons
            key = "VEGETATION" if "vegetation" in name else "SOIL"
            found.setdefault(key if is_raster else f"{key}_POLYGONS", layer.id())
        elif "stream" in name and not is_raster:
            found.setdefault("STREAMS", layer.id())
    return found


def field_export_defaults(
    active_layer, reviewer: str, road_layer_id: str, qgs_project: QgsProject | None = None
) -> dict:
    """Parameters of the field package export from what the person has in front of them: the
    active layer if it shows candidates (else the first candidates layer loaded), its selection
    if it has one, the road layer and the reviewer's name the Review dock remembers."""
    from qgis.core import QgsProcessingFeatureSourceDefinition

    from .sources import layer_table

    qgs_project = qgs_project or QgsProject.instance()
    candidates = [
        layer
        for layer in [active_layer, *qgs_project.mapLayers().values()]
        if isinstance(layer, QgsVectorLayer) and layer_table(layer) == "candidates"
    ]
    found: dict = {"REVIEWER": reviewer} if reviewer else {}
    if candidates:
        layer = candidates[0]
        selected = layer.selectedFeatureCount() > 0
        found["CANDIDATES"] = QgsProcessingFeatureSourceDefinition(layer.id(), selected)
    if qgs_project.mapLayer(road_layer_id) is not None:
        found["ROADS"] = road_layer_id
    return found


def add_distribution_layers(gpkg: str | Path, qgs_project: QgsProject | None = None) -> list[QgsVectorLayer]:
    """The report's layers in a "Distribution" group: RTSs with terrain, streams, and the density
    grids as choropleths (all but the finest grid switched off), each in the style stored with
    it in the GeoPackage."""
    qgs_project = qgs_project or QgsProject.instance()
    root = qgs_project.layerTreeRoot()
    group = root.findGroup("Distribution") or root.insertGroup(0, "Distribution")
    group.removeAllChildren()
    from ..core.vectors import layer_names

    names = layer_names(gpkg)
    grids = sorted(
        (n for n in names if n.startswith("density_")), key=lambda n: float(n[8:-2].replace("_", "."))
    )
    added = []
    for name in ["rts_terrain", "streams", *grids]:
        if name not in names:
            continue
        title = {"rts_terrain": "RTSs with terrain", "streams": "Streams"}.get(name)
        if title is None:
            title = f"RTS density, {name[8:-2].replace('_', '.')} km cells"
        layer = QgsVectorLayer(f"{gpkg}|layername={name}", title, "ogr")
        if not layer.isValid():
            continue
        qgs_project.addMapLayer(layer, False)
        node = group.addLayer(layer)
        node.setItemVisibilityChecked(not name.startswith("density_") or name == grids[0])  # finest grid on
        added.append(layer)
    return added
