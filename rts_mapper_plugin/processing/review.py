"""Review outputs as Processing algorithms: time-lapse strips / GIFs, and agreement figures."""

from __future__ import annotations

import json

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorLayer,
)

from ..toolbelt.i18n import QT_TR_NOOP
from .base import RtsAlgorithm, vector_uri

STATUS_CHOICES = ("accepted", "accepted or unsure", "every candidate")
STATUS_VALUES = (("accepted",), ("accepted", "unsure"), None)


class ExportTimelapseAlgorithm(RtsAlgorithm):
    algorithm_id = "export_timelapse"
    display_name = QT_TR_NOOP("Export time-lapse strips and GIFs")
    group_name = "Review"
    help_text = (
        "For each chosen candidate of a mapping project: the same place in every registered year, the "
        "outline drawn and the year written on each, as a PNG strip (side by side) and an animated GIF. "
        "Choose candidates by status, or list their ids."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(
            QgsProcessingParameterFile("PROJECT", "Mapping project (GeoPackage)", extension="gpkg")
        )
        self.addParameter(
            QgsProcessingParameterEnum("STATUS", "Candidates", list(STATUS_CHOICES), defaultValue=0)
        )
        self.addParameter(
            QgsProcessingParameterString("IDS", "Or these candidate ids (comma-separated)", optional=True)
        )
        self.addParameter(QgsProcessingParameterBoolean("STRIP", "PNG strip", defaultValue=True))
        self.addParameter(QgsProcessingParameterBoolean("GIF", "Animated GIF", defaultValue=True))
        self.addParameter(
            QgsProcessingParameterNumber(
                "SIZE", "Pixels per year", defaultValue=192, minValue=32, maxValue=2048
            )
        )
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Output folder"))
        self.addOutput(QgsProcessingOutputNumber("FILES", "Files written"))

    def run_core(self, parameters, context, feedback):
        from ..core.project.store import MappingProject
        from ..core.review.timelapse import export_timelapses

        ids_text = self.parameterAsString(parameters, "IDS", context).strip()
        ids = [int(i) for i in ids_text.replace(" ", "").split(",") if i] if ids_text else None
        out = self.parameterAsString(parameters, "OUTPUT", context)
        written = export_timelapses(
            MappingProject.open(self.parameterAsFile(parameters, "PROJECT", context)),
            out,
            candidate_ids=ids,
            statuses=STATUS_VALUES[self.parameterAsEnum(parameters, "STATUS", context)],
            strip=self.parameterAsBool(parameters, "STRIP", context),
            gif=self.parameterAsBool(parameters, "GIF", context),
            size_px=self.parameterAsInt(parameters, "SIZE", context),
            feedback=self.core_feedback(feedback),
        )
        feedback.pushInfo(f"{len(written)} files written to {out}")
        return {"OUTPUT": out, "FILES": len(written)}


class PolygonAgreementAlgorithm(RtsAlgorithm):
    algorithm_id = "polygon_agreement"
    display_name = QT_TR_NOOP("Agreement between digitisations")
    group_name = "Review"
    help_text = (
        "Agreement between polygon layers digitised independently over the same area: F1 of polygon "
        "matching at an IoU threshold for every pair of layers, the mean IoU of the matches, and a "
        "cell-level Fleiss' kappa of RTS / not RTS over the mapped area."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                "LAYERS", "Digitised layers", QgsProcessing.SourceType.TypeVectorPolygon
            )
        )
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                "AREA", "Mapped area (optional)", [QgsProcessing.SourceType.TypeVectorPolygon], optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "IOU",
                "IoU threshold",
                QgsProcessingParameterNumber.Type.Double,
                0.5,
                minValue=0.01,
                maxValue=0.99,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "CELL", "Cell size (m)", QgsProcessingParameterNumber.Type.Double, 2.0, minValue=0.1
            )
        )
        self.addOutput(QgsProcessingOutputNumber("MEAN_F1", "Mean pairwise F1"))
        self.addOutput(QgsProcessingOutputNumber("FLEISS_KAPPA", "Cell-level Fleiss' kappa"))
        self.addOutput(QgsProcessingOutputString("JSON", "All figures (JSON)"))

    def run_core(self, parameters, context, feedback):
        from ..core.review.agreement import agreement_files

        layers = self.parameterAsLayerList(parameters, "LAYERS", context)
        area = self.parameterAsVectorLayer(parameters, "AREA", context)
        report = agreement_files(
            [vector_uri(layer) for layer in layers],
            self.parameterAsDouble(parameters, "IOU", context),
            area=vector_uri(area) if area is not None else None,
            cell_m=self.parameterAsDouble(parameters, "CELL", context),
        )
        feedback.pushInfo(json.dumps({k: v for k, v in report.items() if k != "pairs"}))
        return {
            "MEAN_F1": report["mean_pairwise_f1"],
            "FLEISS_KAPPA": report["cell_fleiss_kappa"],
            "JSON": json.dumps(report),
        }
