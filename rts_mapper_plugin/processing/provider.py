"""The "RTS Mapper" Processing provider."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from ..__about__ import __icon_path__, __version__


class RtsMapperProvider(QgsProcessingProvider):
    """Groups every RTS Mapper algorithm under one toolbox entry (id ``rts_mapper``).

    Algorithm modules import numpy, rasterio, shapely and torch only inside their run methods,
    so the provider loads (and the environment check runs) even when those are missing.
    """

    def id(self) -> str:
        return "rts_mapper"

    def name(self) -> str:
        return "RTS Mapper"

    def longName(self) -> str:  # noqa: N802
        return f"RTS Mapper {__version__}"

    def icon(self) -> QIcon:
        return QIcon(str(__icon_path__))

    def versionInfo(self) -> str:  # noqa: N802
        return __version__

    def loadAlgorithms(self) -> None:  # noqa: N802
        from .algorithms import all_algorithms

        for algorithm in all_algorithms():
            self.addAlgorithm(algorithm)
