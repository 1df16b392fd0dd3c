"""Processing algorithm: report QGIS, Python packages, CUDA, and what is missing."""

from __future__ import annotations

import json

from qgis.core import Qgis, QgsProcessingOutputBoolean, QgsProcessingOutputString

from ..core.environment import environment_report
from ..toolbelt.i18n import QT_TR_NOOP
from .base import RtsAlgorithm


class EnvironmentCheckAlgorithm(RtsAlgorithm):
    algorithm_id = "environment_check"
    display_name = QT_TR_NOOP("Environment check")
    group_name = "Setup"
    help_text = (
        "Reports the versions of QGIS, Python, numpy, rasterio, shapely, GDAL, torch, "
        "segmentation-models-pytorch, whether CUDA is available, and which packages are "
        "missing with the command that installs them. Reviewing works without torch; "
        "training and inference need it."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addOutput(QgsProcessingOutputString("REPORT", "Report (JSON)"))
        self.addOutput(QgsProcessingOutputString("MISSING", "Missing packages"))
        self.addOutput(QgsProcessingOutputBoolean("DEEP_LEARNING_READY", "Training and inference available"))
        self.addOutput(QgsProcessingOutputBoolean("CUDA_AVAILABLE", "CUDA available"))

    def run_core(self, parameters, context, feedback):
        report = environment_report()
        feedback.pushInfo(f"QGIS {Qgis.QGIS_VERSION}")
        for line in report.lines():
            (feedback.reportError if line.startswith("Missing") else feedback.pushInfo)(line)
        as_dict = {"qgis": Qgis.QGIS_VERSION, **report.as_dict()}
        return {
            "REPORT": json.dumps(as_dict),
            "MISSING": ", ".join(report.missing),
            "DEEP_LEARNING_READY": report.deep_learning_ready,
            "CUDA_AVAILABLE": report.cuda_available,
        }
