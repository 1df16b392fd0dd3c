"""Write a QGIS project file that opens a mapping project's results, every layer styled.

Used by the demo (CLI, outside the QGIS desktop): a headless QgsApplication is started when
none is running.
"""

from __future__ import annotations

import os
from pathlib import Path


def started_qgis():
    """A headless QgsApplication when none runs (the command line); None inside QGIS. The caller
    calls ``exitQgis()`` on what it got when done."""
    from qgis.core import QgsApplication

    if QgsApplication.instance() is not None:
        return None
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QgsApplication([], False)
    app.initQgis()
    return app


def write_qgis_project(
    mapping_gpkg: str | Path,
    out: str | Path,
    extra_vectors: dict[str, str] | None = None,
    hidden: tuple[str, ...] = (),
    extra_rasters: dict[str, str] | None = None,
) -> Path:
    """Time-lapse group, each run's candidates and probability, training sets, the inventory and
    ``extra_vectors`` (name -> URI, e.g. the roads) into ``out`` (.qgz). The inventory, the
    candidates and the extra layers show; the training sets (which repeat the inventory) are
    there but switched off, and so is any layer in ``hidden`` and every one of ``extra_rasters``
    (name -> path: the DEM, class rasters, for the distribution report)."""
    from qgis.core import QgsProject, QgsRasterLayer, QgsReferencedRectangle, QgsVectorLayer

    from ..core.project.store import MappingProject
    from ..toolbelt.resources import style_path
    from .layers import add_run_layers, training_layer
    from .timelapse import load_time_lapse

    app = started_qgis()
    mapping = MappingProject.open(mapping_gpkg)
    project = QgsProject()
    project.setCrs(project.crs().fromWkt(mapping.crs.to_wkt()))
    # the docks select this mapping project when the file is opened (the layers say it too)
    project.writeEntry("rts_mapper", "project_gpkg", str(Path(mapping_gpkg).resolve()))
    load_time_lapse(mapping, project)
    for run in mapping.runs():
        add_run_layers(mapping, run, project)
    root = project.layerTreeRoot()
    results = root.insertGroup(0, "Results")
    layers = []
    for name, uri, style in (
        (
            "RTS inventory",
            str(Path(out).parent / "inventory" / "rts_inventory.gpkg") + "|layername=rts_inventory",
            "inventory",
        ),
        *[(n, u, None) for n, u in (extra_vectors or {}).items()],
    ):
        layer = QgsVectorLayer(uri, name, "ogr")
        if layer.isValid():
            if style:
                layer.loadNamedStyle(str(style_path(style)))
            layers.append(layer)
    for table, name in (
        ("training_positives", "Training RTSs (positives)"),
        ("training_negatives", "Training non-RTSs (negatives)"),
    ):
        layers.append(training_layer(mapping.path, table, name))
    for layer in layers:
        project.addMapLayer(layer, False)
        node = results.addLayer(layer)
        node.setItemVisibilityChecked(layer.name() not in hidden and not layer.name().startswith("Training"))
    for name, path in (extra_rasters or {}).items():
        raster = QgsRasterLayer(str(path), name, "gdal")
        if raster.isValid():
            project.addMapLayer(raster, False)
            results.addLayer(raster).setItemVisibilityChecked(False)
    years = [layer for layer in project.mapLayers().values() if isinstance(layer, QgsRasterLayer)]
    if years:  # open on the region, not at QGIS's default 1:1 view
        project.viewSettings().setDefaultViewExtent(QgsReferencedRectangle(years[0].extent(), years[0].crs()))
    out = Path(out)
    if not project.write(str(out)):
        raise OSError(f"{out}: QGIS could not write the project ({project.error()})")
    del project
    if app is not None:
        app.exitQgis()
    return out
