"""Distribution analysis as Processing algorithms, one per step so they chain in a graphical
model (terrain rasters, streams, per-RTS terrain, class overlay, density grid), and the whole
report in one algorithm."""

from __future__ import annotations

import json
from pathlib import Path

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputFile,
    QgsProcessingOutputHtml,
    QgsProcessingOutputString,
    QgsProcessingParameterField,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMapLayer,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
    QgsProcessingParameterVectorLayer,
)

from ..__about__ import style_qml
from ..toolbelt.i18n import QT_TR_NOOP
from .base import RtsAlgorithm, file_of_layer, vector_uri

GROUP = "Distribution analysis"
PISR_HELP = (
    "PISR follows Kumar et al. (1997), as Xia et al. (2022) did: clear-sky direct, diffuse and "
    "reflected radiation over a year (the 15th of each month, hourly), with topographic shading."
)


def _dem(algorithm, parameters, context, target_crs=None):
    from ..core.analysis.distribution import load_dem

    layer = algorithm.parameterAsRasterLayer(parameters, "DEM", context)
    return load_dem(file_of_layer(layer), target_crs)


def _inventory(algorithm, parameters, context):
    from ..core.errors import RtsMapperError
    from ..core.vectors import read_features

    inventory = read_features(
        vector_uri(algorithm.parameterAsVectorLayer(parameters, "INVENTORY", context)), polygons_only=True
    )
    if not len(inventory):
        raise RtsMapperError("the inventory is empty: there is nothing to analyse")
    return inventory


def _vector_out(algorithm, parameters, context, name: str) -> str:
    path = algorithm.parameterAsOutputLayer(parameters, name, context)
    if not path.lower().endswith((".gpkg", ".geojson", ".shp")):
        path = str(Path(path).with_suffix(".gpkg"))
    return path


def add_class_parameters(algorithm, name: str, label: str) -> None:
    """A class layer given as a raster (``name``) or as polygons (``name_POLYGONS``) with a class
    field (``name_FIELD``). Two layer parameters, not one map-layer parameter: QGIS 3.22's
    algorithm dialog crashes (SIGSEGV in QgsProcessingFieldWidgetWrapper) when the parent of a
    field parameter holds a raster."""
    algorithm.addParameter(QgsProcessingParameterRasterLayer(name, f"{label} (raster)", optional=True))
    algorithm.addParameter(
        QgsProcessingParameterVectorLayer(
            f"{name}_POLYGONS",
            f"{label} (polygons)",
            [QgsProcessing.SourceType.TypeVectorPolygon],
            optional=True,
        )
    )
    algorithm.addParameter(
        QgsProcessingParameterField(
            f"{name}_FIELD",
            f"{label}: class field of the polygons",
            parentLayerParameterName=f"{name}_POLYGONS",
            optional=True,
        )
    )


def class_layer_problem(algorithm, parameters, context, name: str, label: str, required: bool) -> str:
    """What is wrong with a class layer's parameters ("" when nothing is): the dialog says it
    before the run starts."""
    raster = algorithm.parameterAsRasterLayer(parameters, name, context)
    polygons = algorithm.parameterAsVectorLayer(parameters, f"{name}_POLYGONS", context)
    if raster is not None and polygons is not None:
        return f"{label}: give a raster or polygons, not both"
    if polygons is not None and not algorithm.parameterAsString(parameters, f"{name}_FIELD", context):
        return f"{label}: choose the field that holds each polygon's class"
    if required and raster is None and polygons is None:
        return f"{label}: choose a raster, or polygons and their class field"
    return ""


def class_source(algorithm, parameters, context, name: str, label: str) -> tuple[str | None, str | None]:
    """(what the core reads, the class field) of a class layer from :func:`add_class_parameters`."""
    from ..core.errors import RtsMapperError

    problem = class_layer_problem(algorithm, parameters, context, name, label, required=False)
    if problem:
        raise RtsMapperError(problem)
    raster = algorithm.parameterAsRasterLayer(parameters, name, context)
    if raster is not None:
        return file_of_layer(raster), None
    polygons = algorithm.parameterAsVectorLayer(parameters, f"{name}_POLYGONS", context)
    if polygons is not None:
        return vector_uri(polygons), algorithm.parameterAsString(parameters, f"{name}_FIELD", context)
    return None, None


class TerrainRastersAlgorithm(RtsAlgorithm):
    algorithm_id = "terrain_rasters"
    display_name = QT_TR_NOOP("Slope, aspect and PISR from a DEM")
    group_name = GROUP
    help_text = (
        "Slope (degrees) and aspect (degrees clockwise from north, nodata on flat ground) by Horn's "
        "method, and annual potential incoming solar radiation (kWh/m²). " + PISR_HELP + " A DEM in "
        "geographic coordinates is reprojected to its UTM zone first."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer("DEM", "DEM"))
        self.addParameter(
            QgsProcessingParameterNumber(
                "TRANSMITTANCE",
                "Clear-sky transmittance",
                QgsProcessingParameterNumber.Type.Double,
                0.7,
                False,
                0.3,
                1.0,
            )
        )
        self.addParameter(QgsProcessingParameterRasterDestination("SLOPE", "Slope"))
        self.addParameter(QgsProcessingParameterRasterDestination("ASPECT", "Aspect"))
        self.addParameter(QgsProcessingParameterRasterDestination("PISR", "PISR"))

    def run_core(self, parameters, context, feedback):
        from ..core.analysis.distribution import write_grid
        from ..core.analysis.terrain import pisr_tiled, slope_aspect

        dem = _dem(self, parameters, context)
        for note in dem.notes:
            feedback.pushInfo(note)
        slope, aspect = slope_aspect(dem.elevation, dem.xres, dem.yres)
        radiation = pisr_tiled(
            dem.elevation,
            dem.xres,
            dem.yres,
            dem.latitude_of_row,
            transmittance=self.parameterAsDouble(parameters, "TRANSMITTANCE", context),
            feedback=self.core_feedback(feedback),
        )
        outputs = {}
        for name, grid in (("SLOPE", slope), ("ASPECT", aspect), ("PISR", radiation)):
            outputs[name] = str(write_grid(self.parameterAsOutputLayer(parameters, name, context), grid, dem))
        return outputs


class StreamsAlgorithm(RtsAlgorithm):
    algorithm_id = "streams_from_dem"
    display_name = QT_TR_NOOP("Stream network from a DEM")
    group_name = GROUP
    help_text = (
        "Routes flow to the steepest of eight neighbours (D8), every depression routed out over its lowest "
        "pass (a priority flood over catchments), "
        "accumulates it, and keeps as streams the cells through which at least the threshold area "
        "drains. Also writes the distance (m) from every cell to the nearest stream."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer("DEM", "DEM"))
        self.addParameter(
            QgsProcessingParameterNumber(
                "THRESHOLD",
                "Contributing area of a stream (km²)",
                QgsProcessingParameterNumber.Type.Double,
                1.0,
                False,
                0.001,
            )
        )
        self.addParameter(
            QgsProcessingParameterVectorDestination(
                "OUTPUT", "Streams", QgsProcessing.SourceType.TypeVectorLine
            )
        )
        self.addParameter(QgsProcessingParameterRasterDestination("DISTANCE", "Distance to streams"))

    def run_core(self, parameters, context, feedback):
        from ..core.analysis.distribution import write_grid
        from ..core.analysis.hydrology import distance_to, stream_lines, stream_mask
        from ..core.vectors import FeatureSet, write_features

        dem = _dem(self, parameters, context)
        threshold = self.parameterAsDouble(parameters, "THRESHOLD", context)
        mask, direction, _area = stream_mask(
            dem.elevation, dem.xres, dem.yres, threshold, self.core_feedback(feedback)
        )
        lines = stream_lines(mask, direction, dem.transform)
        out = _vector_out(self, parameters, context, "OUTPUT")
        write_features(
            out,
            FeatureSet(lines, [{"threshold_km2": threshold}] * len(lines), dem.crs),
            "streams",
            geometry_type="MultiLineString",
            overwrite_file=True,
            qml=style_qml("streams"),
        )
        distance = distance_to(mask, dem.xres, dem.yres)
        path = write_grid(self.parameterAsOutputLayer(parameters, "DISTANCE", context), distance, dem)
        feedback.pushInfo(f"{len(lines)} stream lines, {int(mask.sum())} stream cells")
        return {"OUTPUT": out, "DISTANCE": str(path)}


class RtsTerrainAlgorithm(RtsAlgorithm):
    algorithm_id = "rts_terrain"
    display_name = QT_TR_NOOP("Terrain, PISR and streams per RTS")
    group_name = GROUP
    help_text = (
        "For each RTS polygon: elevation, slope, aspect (degrees and sector) and PISR at the centroid and "
        "as zonal mean / min / max over the cells the polygon touches; distance to the nearest stream "
        "(a given line layer, or derived from the DEM) and whether it is adjacent to one; and "
        "dem_coverage (full, partial, none): RTSs the DEM does not cover are kept and flagged. " + PISR_HELP
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                "INVENTORY", "RTS polygons", [QgsProcessing.SourceType.TypeVectorPolygon]
            )
        )
        self.addParameter(QgsProcessingParameterRasterLayer("DEM", "DEM"))
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                "STREAMS",
                "Streams (optional: else from the DEM)",
                [QgsProcessing.SourceType.TypeVectorLine],
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "THRESHOLD",
                "Contributing area of a derived stream (km²)",
                QgsProcessingParameterNumber.Type.Double,
                1.0,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "ADJACENT",
                "Adjacent to a stream within (m)",
                QgsProcessingParameterNumber.Type.Double,
                100.0,
                False,
                0.0,
            )
        )
        self.addParameter(
            QgsProcessingParameterVectorDestination(
                "OUTPUT", "RTSs with terrain", QgsProcessing.SourceType.TypeVectorPolygon
            )
        )

    def run_core(self, parameters, context, feedback):
        from ..core.analysis.distribution import rts_terrain, terrain_layers
        from ..core.vectors import read_features, write_features

        inventory = _inventory(self, parameters, context)
        dem = _dem(self, parameters, context, inventory.crs)
        for note in dem.notes:
            feedback.pushInfo(note)
        streams_layer = self.parameterAsVectorLayer(parameters, "STREAMS", context)
        streams = read_features(vector_uri(streams_layer)) if streams_layer is not None else None
        layers = terrain_layers(
            dem,
            streams,
            self.parameterAsDouble(parameters, "THRESHOLD", context),
            feedback=self.core_feedback(feedback),
        )
        enriched = rts_terrain(
            inventory, dem, layers, self.parameterAsDouble(parameters, "ADJACENT", context)
        )
        flagged = [a for a in enriched.attributes if a["dem_coverage"] != "full"]
        if flagged:
            feedback.reportError(
                f"{len(flagged)} RTS(s) not fully covered by the DEM: kept, see dem_coverage"
            )
        out = _vector_out(self, parameters, context, "OUTPUT")
        write_features(out, enriched, "rts_terrain", overwrite_file=True, qml=style_qml("inventory"))
        return {"OUTPUT": out}


class ClassOverlayAlgorithm(RtsAlgorithm):
    algorithm_id = "class_overlay"
    display_name = QT_TR_NOOP("Class overlay (vegetation, soil)")
    group_name = GROUP
    help_text = (
        "Gives each RTS the class (at its centroid) of a class raster (names from CLASS_<n> band tags when "
        "present) or of a polygon layer (its class field: give one or the other), and reports the class shares of the RTSs "
        "versus the landscape (the whole class layer)."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                "INVENTORY", "RTS polygons", [QgsProcessing.SourceType.TypeVectorPolygon]
            )
        )
        add_class_parameters(self, "CLASSES", "Class layer")
        self.addParameter(
            QgsProcessingParameterString("NAME", "Name of the new field", defaultValue="vegetation")
        )
        self.addParameter(
            QgsProcessingParameterVectorDestination(
                "OUTPUT", "RTSs with class", QgsProcessing.SourceType.TypeVectorPolygon
            )
        )
        self.addOutput(QgsProcessingOutputString("SHARES", "Class shares (JSON)"))

    def checkParameterValues(self, parameters, context):  # noqa: N802
        problem = class_layer_problem(self, parameters, context, "CLASSES", "Class layer", required=True)
        return (False, problem) if problem else super().checkParameterValues(parameters, context)

    def run_core(self, parameters, context, feedback):
        from ..core.analysis.distribution import class_overlay
        from ..core.errors import RtsMapperError
        from ..core.vectors import FeatureSet, write_features

        source, field = class_source(self, parameters, context, "CLASSES", "Class layer")
        if source is None:
            raise RtsMapperError(
                class_layer_problem(self, parameters, context, "CLASSES", "Class layer", True)
            )
        inventory = _inventory(self, parameters, context)
        name = self.parameterAsString(parameters, "NAME", context) or "class"
        overlay = class_overlay(name, inventory, source, field)
        attributes = [{**a, name: v} for a, v in zip(inventory.attributes, overlay.per_rts)]
        out = _vector_out(self, parameters, context, "OUTPUT")
        write_features(
            out,
            FeatureSet(inventory.geometries, attributes, inventory.crs),
            "rts_classes",
            overwrite_file=True,
            qml=style_qml("inventory"),
        )
        shares = {"rts_shares": overlay.rts_shares, "landscape_shares": overlay.landscape_shares}
        feedback.pushInfo(json.dumps(shares, indent=1))
        return {"OUTPUT": out, "SHARES": json.dumps(shares)}


class DensityGridAlgorithm(RtsAlgorithm):
    algorithm_id = "density_grid"
    display_name = QT_TR_NOOP("RTS density grid")
    group_name = GROUP
    help_text = (
        "Square cells (aligned to multiples of the size) over the RTSs' extent, or over an extent layer: "
        "the number of RTSs (by centroid), their area (ha), RTSs per 100 km², and counts per initiation "
        "period. Styled as a choropleth when loaded by the plugin."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                "INVENTORY", "RTS polygons", [QgsProcessing.SourceType.TypeVectorPolygon]
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "CELL_KM", "Cell size (km)", QgsProcessingParameterNumber.Type.Double, 10.0, False, 0.01
            )
        )
        self.addParameter(
            QgsProcessingParameterMapLayer("EXTENT", "Cover the extent of (optional)", optional=True)
        )
        self.addParameter(
            QgsProcessingParameterVectorDestination(
                "OUTPUT", "Density grid", QgsProcessing.SourceType.TypeVectorPolygon
            )
        )

    def run_core(self, parameters, context, feedback):
        import shapely
        from qgis.core import QgsCoordinateReferenceSystem, QgsCoordinateTransform

        from ..core.analysis.distribution import density_grid, density_style
        from ..core.vectors import write_features

        inventory = _inventory(self, parameters, context)
        bounds = shapely.union_all(inventory.geometries).bounds
        extent_layer = self.parameterAsLayer(parameters, "EXTENT", context)
        if extent_layer is not None:
            transform = QgsCoordinateTransform(
                extent_layer.crs(),
                QgsCoordinateReferenceSystem.fromWkt(inventory.crs.to_wkt()),
                context.project(),
            )
            box = transform.transformBoundingBox(extent_layer.extent())
            bounds = (box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum())
        periods = sorted(
            {a.get("initiation_period") for a in inventory.attributes if a.get("initiation_period")}
        )
        grid = density_grid(
            inventory, self.parameterAsDouble(parameters, "CELL_KM", context), bounds, periods
        )
        out = _vector_out(self, parameters, context, "OUTPUT")
        write_features(
            out, grid, "density", geometry_type="Polygon", overwrite_file=True, qml=density_style(grid)
        )
        return {"OUTPUT": out}


CLASS_LAYERS = (("VEGETATION", "Vegetation classes"), ("SOIL", "Soil texture classes"))


class DistributionReportAlgorithm(RtsAlgorithm):
    algorithm_id = "distribution_report"
    display_name = QT_TR_NOOP("Distribution report (all steps, figures, HTML)")
    group_name = GROUP
    help_text = (
        "Every step at once: terrain and PISR per RTS and over the landscape, streams, vegetation and soil "
        "overlays, density grids, the figures (area histogram; elevation, slope, PISR and stream-distance "
        "frequency of RTSs versus the landscape; aspect rose; vegetation and soil rings; density maps) as "
        "PNG and SVG, and a self-contained HTML report. " + PISR_HELP
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                "INVENTORY", "RTS inventory", [QgsProcessing.SourceType.TypeVectorPolygon]
            )
        )
        self.addParameter(QgsProcessingParameterRasterLayer("DEM", "DEM"))
        for name, label in CLASS_LAYERS:
            add_class_parameters(self, name, label)
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                "STREAMS", "Streams (optional)", [QgsProcessing.SourceType.TypeVectorLine], optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "ADJACENT", "Adjacent to a stream within (m)", QgsProcessingParameterNumber.Type.Double, 100.0
            )
        )
        self.addParameter(
            QgsProcessingParameterString("CELLS", "Density cell sizes (km)", defaultValue="10,25")
        )
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Output folder"))
        self.addOutput(QgsProcessingOutputHtml("REPORT", "Report"))
        self.addOutput(QgsProcessingOutputFile("LAYERS", "Layers (GeoPackage)"))

    def checkParameterValues(self, parameters, context):  # noqa: N802
        for name, label in CLASS_LAYERS:
            problem = class_layer_problem(self, parameters, context, name, label, required=False)
            if problem:
                return False, problem
        return super().checkParameterValues(parameters, context)

    def run_core(self, parameters, context, feedback):
        from ..core.analysis.distribution import AnalysisConfig, analyze

        (vegetation, vegetation_field), (soil, soil_field) = (
            class_source(self, parameters, context, name, label) for name, label in CLASS_LAYERS
        )
        streams = self.parameterAsVectorLayer(parameters, "STREAMS", context)
        result = analyze(
            AnalysisConfig(
                inventory=vector_uri(self.parameterAsVectorLayer(parameters, "INVENTORY", context)),
                dem=file_of_layer(self.parameterAsRasterLayer(parameters, "DEM", context)),
                out=self.parameterAsString(parameters, "OUTPUT", context),
                vegetation=vegetation,
                vegetation_field=vegetation_field,
                soil=soil,
                soil_field=soil_field,
                streams=vector_uri(streams) if streams is not None else None,
                adjacent_m=self.parameterAsDouble(parameters, "ADJACENT", context),
                cell_sizes_km=tuple(
                    float(v) for v in self.parameterAsString(parameters, "CELLS", context).split(",")
                ),
            ),
            self.core_feedback(feedback),
        )
        for warning in result.warnings:
            feedback.pushWarning(warning)
        return {
            "OUTPUT": str(result.out),
            "REPORT": str(result.report),
            "LAYERS": str(result.out / "rts_distribution.gpkg"),
        }
