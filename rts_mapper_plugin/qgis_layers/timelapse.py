"""The year registry in QGIS: a "Time-lapse" group with one layer per registered year.

Each layer is named by its year and carries a fixed temporal range (that calendar year), so
QGIS's Temporal Controller, stepping one year per frame, shows one year at a time.
"""

from __future__ import annotations

from qgis.core import (
    QgsDateTimeRange,
    QgsInterval,
    QgsLayerTreeGroup,
    QgsProject,
    QgsRasterLayer,
    QgsRasterLayerTemporalProperties,
    QgsTemporalNavigationObject,
    QgsUnitTypes,
)
from qgis.PyQt.QtCore import QDate, QDateTime, QTime

from ..core.project.store import MappingProject, YearLayer

GROUP_NAME = "Time-lapse"
YEAR_PROPERTY = "rts_mapper/year"


def year_range(year: int) -> QgsDateTimeRange:
    """[1 January ``year``, 1 January ``year + 1``): one frame of a yearly time-lapse."""
    start = QDateTime(QDate(year, 1, 1), QTime(0, 0))
    end = QDateTime(QDate(year + 1, 1, 1), QTime(0, 0))
    return QgsDateTimeRange(start, end, True, False)


def make_year_layer(year_layer: YearLayer) -> QgsRasterLayer:
    layer = QgsRasterLayer(str(year_layer.raster_path), str(year_layer.year), "gdal")
    if not layer.isValid():
        raise ValueError(
            f"{year_layer.raster_path}: QGIS cannot open the raster registered for {year_layer.year}"
        )
    properties = layer.temporalProperties()
    properties.setMode(QgsRasterLayerTemporalProperties.ModeFixedTemporalRange)
    properties.setFixedTemporalRange(year_range(year_layer.year))
    properties.setIsActive(True)
    layer.setCustomProperty(YEAR_PROPERTY, year_layer.year)
    sensor = f"{year_layer.sensor} " if year_layer.sensor else ""
    dates = f" ({year_layer.date_start} to {year_layer.date_end})" if year_layer.date_start else ""
    layer.setAbstract(f"{sensor}{year_layer.year}{dates}, prepared by RTS Mapper")
    return layer


def load_time_lapse(
    project: MappingProject,
    qgs_project: QgsProject | None = None,
    navigation: QgsTemporalNavigationObject | None = None,
) -> QgsLayerTreeGroup:
    """(Re)build the "Time-lapse" group from the project's year registry.

    Layers of years no longer registered are removed; existing ones are kept (with their
    style). With ``navigation`` (the canvas's temporal controller), the controller is set to
    step one year per frame over the registered years.
    """
    qgs_project = qgs_project or QgsProject.instance()
    years = project.years()
    root = qgs_project.layerTreeRoot()
    # at the bottom: the years are the backdrop, candidates and results draw over them
    group = root.findGroup(GROUP_NAME) or root.addGroup(GROUP_NAME)
    existing = {}
    for node in group.findLayers():
        layer = node.layer()
        year = layer.customProperty(YEAR_PROPERTY) if layer else None
        if year is not None:
            existing[int(year)] = layer
    wanted = {y.year: y for y in years}
    for year, layer in list(existing.items()):
        if year not in wanted or layer.source() != str(wanted[year].raster_path):
            qgs_project.removeMapLayer(layer.id())
            del existing[year]
    for index, year_layer in enumerate(sorted(years, key=lambda y: -y.year)):  # newest on top
        if year_layer.year in existing:
            continue
        layer = make_year_layer(year_layer)
        qgs_project.addMapLayer(layer, False)
        group.insertLayer(index, layer)
    if years:
        span = QgsDateTimeRange(
            year_range(years[0].year).begin(), year_range(years[-1].year).end(), True, False
        )
        qgs_project.timeSettings().setTemporalRange(span)
        if navigation is not None:
            configure_navigation(navigation, years[0].year, years[-1].year)
    return group


def configure_navigation(navigation: QgsTemporalNavigationObject, first_year: int, last_year: int) -> None:
    """Step the temporal controller one year per frame, one frame per year from first to last."""
    # QGIS counts ceil(extent / frame duration) frames, measuring a year as 365.25 days: end the
    # extent on 31 December of the last year so that leap years do not add an empty frame
    start = year_range(first_year).begin()
    end = QDateTime(QDate(last_year, 12, 31), QTime(0, 0))
    navigation.setTemporalExtents(QgsDateTimeRange(start, end, True, True))
    navigation.setFrameDuration(QgsInterval(1, QgsUnitTypes.TemporalUnit.TemporalYears))
    navigation.setNavigationMode(QgsTemporalNavigationObject.NavigationMode.Animated)
    navigation.setCurrentFrameNumber(0)


def year_layers(qgs_project: QgsProject | None = None) -> dict[int, QgsRasterLayer]:
    """The layers of the Time-lapse group by year (what the review dock shows side by side)."""
    qgs_project = qgs_project or QgsProject.instance()
    group = qgs_project.layerTreeRoot().findGroup(GROUP_NAME)
    layers = {}
    if group is not None:
        for node in group.findLayers():
            layer = node.layer()
            if layer is not None and layer.customProperty(YEAR_PROPERTY) is not None:
                layers[int(layer.customProperty(YEAR_PROPERTY))] = layer
    return dict(sorted(layers.items()))
