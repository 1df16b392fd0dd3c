"""The list of algorithms the provider offers (one module per workflow step)."""

from __future__ import annotations

from qgis.core import QgsProcessingAlgorithm


def all_algorithms() -> list[QgsProcessingAlgorithm]:
    from .distribution import (
        ClassOverlayAlgorithm,
        DensityGridAlgorithm,
        DistributionReportAlgorithm,
        RtsTerrainAlgorithm,
        StreamsAlgorithm,
        TerrainRastersAlgorithm,
    )
    from .environment_check import EnvironmentCheckAlgorithm
    from .field import ExportFieldPackageAlgorithm, MergeFieldPackageAlgorithm
    from .imagery import BuildYearlyMosaicAlgorithm, PrepareImageryAlgorithm
    from .model_engine import (
        EvaluateAlgorithm,
        ExportOnnxAlgorithm,
        InferAlgorithm,
        MakeChipsAlgorithm,
        TrainModelAlgorithm,
    )
    from .review import ExportTimelapseAlgorithm, PolygonAgreementAlgorithm

    return [
        EnvironmentCheckAlgorithm(),
        PrepareImageryAlgorithm(),
        BuildYearlyMosaicAlgorithm(),
        MakeChipsAlgorithm(),
        TrainModelAlgorithm(),
        InferAlgorithm(),
        EvaluateAlgorithm(),
        ExportOnnxAlgorithm(),
        ExportTimelapseAlgorithm(),
        PolygonAgreementAlgorithm(),
        ExportFieldPackageAlgorithm(),
        MergeFieldPackageAlgorithm(),
        TerrainRastersAlgorithm(),
        StreamsAlgorithm(),
        RtsTerrainAlgorithm(),
        ClassOverlayAlgorithm(),
        DensityGridAlgorithm(),
        DistributionReportAlgorithm(),
    ]
