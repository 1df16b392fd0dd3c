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

from .base import RtsAlgorithm, file_of_layer


class _ImageryAlgorithm(RtsAlgorithm):
    group_name = "Imagery"

    def add_common_parameters(self) -> None:
        self.addParameter(
            QgsProcessingParameterString(
                "BANDS", "RGB bands (auto, or R,G,B band numbers)", defaultValue="auto"
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
            QgsProcessingParameterNumber.Integer,
            optional=year_optional,
            minValue=1970,
            maxValue=2100,
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
            QgsProcessingParameterString("SENSOR", "Sensor", defaultValue="PlanetScope", optional=True)
        )

    def run_prepare(self, sources, parameters, context, feedback) -> dict:
        from ..core.imagery import prepare_and_register

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
            sensor=self.parameterAsString(parameters, "SENSOR", context),
            bands=self.parameterAsString(parameters, "BANDS", context),
            percentiles=self.parameterAsString(parameters, "PERCENTILES", context) or None,
            feedback=self.core_feedback(feedback),
        )
        feedback.pushInfo(
            f"Bands R,G,B = {result.bands.red},{result.bands.green},{result.bands.blue} ({result.bands.reason}); "
            f"stretch {result.stretch.low} .. {result.stretch.high} from {result.stretch.sampled_pixels} pixels"
        )
        if project_path:
            feedback.pushInfo(f"Registered {output} as {parameters['YEAR']} in {project_path}")
        return {"OUTPUT": output}


class PrepareImageryAlgorithm(_ImageryAlgorithm):
    algorithm_id = "prepare_imagery"
    display_name = "Prepare imagery"
    help_text = (
        "Turns a PlanetScope scene (4-band BGRN, 16-bit), a Sentinel-2 or Landsat chip (choose the bands), "
        "or an 8-bit RGB image into the 8-bit RGB GeoTIFF the model uses: a linear stretch between "
        "percentiles of the valid pixels, computed once for the whole image, values 1-255 with 0 "
        "for nodata, tiled and compressed with overviews. Optionally registers the result as a year "
        "of the mapping project's time-lapse."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Scene"))
        self.add_common_parameters()
        self.add_registry_parameters(year_optional=True)
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Prepared 8-bit RGB"))

    def run_core(self, parameters, context, feedback):
        layer = self.parameterAsRasterLayer(parameters, "INPUT", context)
        return self.run_prepare(file_of_layer(layer), parameters, context, feedback)


class BuildYearlyMosaicAlgorithm(_ImageryAlgorithm):
    algorithm_id = "build_yearly_mosaic"
    display_name = "Build yearly mosaics"
    help_text = (
        "Mosaics the scenes of one year (overlapping, different extents; a scene in another CRS is "
        "reprojected) in the order given — the first scene is drawn on top, so list the least cloudy "
        "first — then applies one stretch over the whole mosaic and writes 8-bit RGB. Registers the "
        "result as that year of the mapping project when a project is given."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                "SCENES", "Scenes of one year, highest priority first", QgsProcessing.TypeRaster
            )
        )
        self.add_common_parameters()
        self.add_registry_parameters(year_optional=True)
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Yearly mosaic (8-bit RGB)"))

    def run_core(self, parameters, context, feedback):
        layers = self.parameterAsLayerList(parameters, "SCENES", context)
        if not layers:
            raise QgsProcessingException("no scenes given")
        return self.run_prepare([file_of_layer(layer) for layer in layers], parameters, context, feedback)
