"""Processing algorithms: "Prepare imagery" and "Build yearly mosaics" (thin wrappers over core)."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterFile,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..core.defaults import BANDS, YEAR_RANGE
from ..toolbelt.i18n import QT_TR_NOOP
from .base import RtsAlgorithm, file_of_layer


class _ImageryAlgorithm(RtsAlgorithm):
    group_name = "Imagery"

    def add_common_parameters(self) -> None:
        self.addParameter(
            QgsProcessingParameterString(
                "BANDS", "RGB bands (auto, or R,G,B band numbers)", defaultValue=BANDS
            )
        )
        self.addParameter(
            QgsProcessingParameterString(
                "PERCENTILES",
                "Stretch percentiles LO,HI (empty: 2,98; 8-bit input kept as is)",
                optional=True,
            )
        )

    def add_registry_parameters(self, year_optional: bool) -> None:
        year = QgsProcessingParameterNumber(
            "YEAR",
            "Register the result as year",
            QgsProcessingParameterNumber.Type.Integer,
            optional=year_optional,
            minValue=YEAR_RANGE[0],
            maxValue=YEAR_RANGE[1],
        )
        self.addParameter(year)
        self.addParameter(
            QgsProcessingParameterFile(
                "PROJECT",
                "Mapping project (GeoPackage) to register the year in",
                extension="gpkg",
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterString("SENSOR", "Sensor (empty: from the scenes' metadata)", optional=True)
        )

    def run_prepare(self, sources, parameters, context, feedback, masks=None) -> dict:
        from ..core.imagery.prepare import prepare_and_register

        cluster, announce = self.cluster(parameters, context, feedback)
        output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        project_path = self.parameterAsFile(parameters, "PROJECT", context) or None
        has_year = parameters.get("YEAR") not in (None, "")
        if project_path and not has_year:
            raise QgsProcessingException("a year is needed to register the result in the mapping project")
        result = prepare_and_register(
            sources,
            output,
            year=self.parameterAsInt(parameters, "YEAR", context) if project_path else None,
            project_path=project_path,
            sensor=self.parameterAsString(parameters, "SENSOR", context).strip() or None,
            bands=self.parameterAsString(parameters, "BANDS", context),
            percentiles=self.parameterAsString(parameters, "PERCENTILES", context) or None,
            feedback=self.core_feedback(feedback),
            masks=masks,
            cluster=cluster,
            announce=announce,
        )
        feedback.pushInfo(
            f"Bands R,G,B = {result.bands.red},{result.bands.green},{result.bands.blue} ({result.bands.reason}); "
            f"stretch {result.stretch.low} .. {result.stretch.high} from {result.stretch.sampled_pixels} pixels"
        )
        for note in result.notes:
            feedback.pushInfo(note)
        if project_path:
            feedback.pushInfo(f"Registered {output} as {parameters['YEAR']} in {project_path}")
        return {"OUTPUT": output}


class PrepareImageryAlgorithm(_ImageryAlgorithm):
    algorithm_id = "prepare_imagery"
    display_name = QT_TR_NOOP("Prepare imagery")
    help_text = (
        "Turns a delivered scene into the 8-bit RGB GeoTIFF the model uses: a PlanetScope analytic scene "
        "(4- or 8-band; RGB from its band names or its _metadata.json / _metadata.xml, its _udm2.tif "
        "found beside it), a Sentinel-2 L2A band file (B04; B03, B02 and the SCL found in the SAFE "
        "layout), a Planet basemap quad (used as delivered), or any raster whose bands say which is RGB. "
        "Cloud, shadow, haze and snow pixels become nodata; then a linear stretch between percentiles "
        "of the usable pixels, values 1-255 with 0 for nodata, tiled and compressed with overviews. "
        "Optionally registers the result, with its acquisition dates, as a year of the mapping project."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Scene"))
        self.addParameter(
            QgsProcessingParameterFile(
                "MASK",
                "Usable-data mask (Planet UDM2 or Sentinel-2 SCL; empty: found beside the scene by name)",
                optional=True,
            )
        )
        self.add_common_parameters()
        self.add_registry_parameters(year_optional=True)
        self.add_cluster_parameter()
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Prepared 8-bit RGB"))

    def run_core(self, parameters, context, feedback):
        layer = self.parameterAsRasterLayer(parameters, "INPUT", context)
        mask = self.parameterAsFile(parameters, "MASK", context) or None
        return self.run_prepare(file_of_layer(layer), parameters, context, feedback, [mask])


class BuildYearlyMosaicAlgorithm(_ImageryAlgorithm):
    algorithm_id = "build_yearly_mosaic"
    display_name = QT_TR_NOOP("Build yearly mosaics")
    help_text = (
        "Mosaics the scenes of one year (overlapping, different extents; a scene in another CRS is "
        "reprojected to the first one's, and the log says so). Each pixel comes from the first scene, "
        "in the order given, that is usable there: cloud, shadow, haze and snow (from each scene's "
        "UDM2 or SCL, found beside it by name) are filled from the next scene, so list the least cloudy "
        "first. Then one stretch over the whole mosaic, 8-bit RGB. Registers the result, with the "
        "scenes' acquisition date range, as that year of the mapping project when a project is given."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                "SCENES", "Scenes of one year, highest priority first", QgsProcessing.SourceType.TypeRaster
            )
        )
        self.add_common_parameters()
        self.add_registry_parameters(year_optional=True)
        self.add_cluster_parameter()
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Yearly mosaic (8-bit RGB)"))

    def run_core(self, parameters, context, feedback):
        layers = self.parameterAsLayerList(parameters, "SCENES", context)
        if not layers:
            raise QgsProcessingException("no scenes given")
        return self.run_prepare([file_of_layer(layer) for layer in layers], parameters, context, feedback)
