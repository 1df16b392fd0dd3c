"""Reading and writing users' vector files (GeoPackage, Shapefile, GeoJSON...) through OGR.

The mapping project's own GeoPackage goes through :mod:`.project`; this module is for
everything users bring (training polygons, road layers, digitisations) and everything the
plugin exports (inventory, synthetic truth). Geometries travel as shapely objects.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from osgeo import ogr, osr
from rasterio.crs import CRS
from rasterio.warp import transform_geom
from shapely.errors import GEOSException, ShapelyError
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from .errors import RtsMapperError, write_failure

ogr.UseExceptions()
osr.UseExceptions()

_DRIVERS = {".gpkg": "GPKG", ".shp": "ESRI Shapefile", ".geojson": "GeoJSON", ".json": "GeoJSON"}
_FIELD_TYPES = {int: ogr.OFTInteger64, float: ogr.OFTReal, str: ogr.OFTString, bool: ogr.OFTInteger}


@dataclass
class FeatureSet:
    """Geometries with their attributes and CRS, as read from (or written to) a vector file."""

    geometries: list[BaseGeometry]
    attributes: list[dict[str, Any]] = field(default_factory=list)
    crs: CRS | None = None

    def __post_init__(self) -> None:
        if self.crs is not None and not isinstance(self.crs, CRS):
            self.crs = CRS.from_user_input(self.crs)  # WKT, "EPSG:xxxx", a pyproj CRS...

    def __len__(self) -> int:
        return len(self.geometries)

    def to_crs(self, crs: CRS) -> FeatureSet:
        """The same features reprojected to ``crs`` (a no-op when it is already the same)."""
        if self.crs is None or crs is None or CRS.from_user_input(crs) == self.crs:
            return self
        moved = [
            shape(transform_geom(self.crs, crs, mapping(g))) if g is not None else None
            for g in self.geometries
        ]
        return FeatureSet(moved, self.attributes, CRS.from_user_input(crs))


def split_layer_uri(uri: str | os.PathLike) -> tuple[Path, str | None]:
    """``file.gpkg|layername=foo`` (QGIS style) or ``file.gpkg`` -> (path, layer or None)."""
    text = str(uri)
    if "|layername=" in text:
        path, layer = text.split("|layername=", 1)
        return Path(path), layer.split("|", 1)[0]
    return Path(text.split("|", 1)[0]), None


def _names(dataset) -> list[str]:
    return [dataset.GetLayerByIndex(i).GetName() for i in range(dataset.GetLayerCount())]


def layer_names(path: str | os.PathLike) -> list[str]:
    """The layers of a vector file (a GeoPackage holds several)."""
    dataset = ogr.Open(str(path))
    if dataset is None:
        raise RtsMapperError("is not a vector file OGR can read", path)
    return _names(dataset)


def read_features(
    uri: str | os.PathLike, layer: str | None = None, polygons_only: bool = False
) -> FeatureSet:
    """Read every feature of a vector layer (``path`` or ``path|layername=x``).

    Raises:
        RtsMapperError: missing file, unreadable, unknown layer, or (with ``polygons_only``)
            geometries that are not polygons.
    """
    path, uri_layer = split_layer_uri(uri)
    layer = layer or uri_layer
    if not path.exists():
        raise RtsMapperError("no such file", path)
    try:
        dataset = ogr.Open(str(path))
    except RuntimeError as exc:
        raise RtsMapperError(f"is not a vector file OGR can read ({exc})", path) from exc
    if dataset is None:
        raise RtsMapperError("is not a vector file OGR can read", path)
    if layer is not None:
        ogr_layer = dataset.GetLayerByName(layer)
        if ogr_layer is None:
            raise RtsMapperError(f"has no layer {layer!r} (it has: {', '.join(_names(dataset))})", path)
    else:
        ogr_layer = dataset.GetLayerByIndex(0)
        if ogr_layer is None:
            raise RtsMapperError("contains no layer", path)
    spatial_ref = ogr_layer.GetSpatialRef()
    crs = CRS.from_wkt(spatial_ref.ExportToWkt()) if spatial_ref is not None else None
    definition = ogr_layer.GetLayerDefn()
    fields = [definition.GetFieldDefn(i) for i in range(definition.GetFieldCount())]
    geometries, attributes = [], []
    try:
        for feature in ogr_layer:
            _read_feature(feature, fields, path, polygons_only, geometries, attributes)
    except (RuntimeError, SystemError) as exc:  # OGR: a damaged file (truncated .dbf, bad GeoJSON)
        said = str(exc).strip().rstrip(".")
        raise RtsMapperError(
            f"is damaged: feature {len(geometries) + 1} cannot be read ({said or 'no reason given by OGR'})",
            path,
        ) from exc
    return FeatureSet(geometries, attributes, crs)


def _read_feature(
    feature, fields, path: Path, polygons_only: bool, geometries: list, attributes: list
) -> None:
    ogr_geometry = feature.GetGeometryRef()
    geometry = None
    if ogr_geometry is not None:
        try:
            geometry = shapely.from_wkb(bytes(ogr_geometry.ExportToIsoWkb()))
        except ShapelyError as exc:
            raise RtsMapperError(
                f"feature {feature.GetFID()} has a geometry that cannot be read ({exc})", path
            ) from exc
        geometry = _repaired(shapely.force_2d(geometry), path, feature.GetFID())
    if polygons_only and geometry is not None and geometry.geom_type not in POLYGONAL:
        raise RtsMapperError(f"holds {geometry.geom_type} features; polygons are needed", path)
    geometries.append(geometry)
    attributes.append(
        {"fid": feature.GetFID(), **{f.GetName(): _value(feature, i, f) for i, f in enumerate(fields)}}
    )


POLYGONAL = ("Polygon", "MultiPolygon")


def _repaired(geometry, path: Path, fid: int):
    """A valid geometry: an invalid one (a self-intersecting ring, as hand edits and flipped bytes
    leave) made valid by GEOS, keeping a polygon's polygonal parts; coordinates that are not
    numbers are an error naming the feature."""
    if geometry.is_empty or geometry.is_valid:
        return geometry
    if not np.isfinite(shapely.get_coordinates(geometry)).all():
        raise RtsMapperError(f"feature {fid} has coordinates that are not numbers (NaN or infinite)", path)
    try:
        fixed = shapely.make_valid(geometry)
    except GEOSException as exc:
        raise RtsMapperError(f"feature {fid} has a geometry that cannot be repaired ({exc})", path) from exc
    if geometry.geom_type in POLYGONAL and fixed.geom_type not in POLYGONAL:
        parts = [part for part in shapely.get_parts(fixed) if part.geom_type in POLYGONAL]
        fixed = shapely.union_all(parts) if parts else shapely.Polygon()
    return fixed


def _value(feature, index: int, field):
    """A field's value; dates and times as ISO 8601 text (OGR's own is "2018/07/01 10:00:00")."""
    kind = field.GetType()
    if kind not in (ogr.OFTDate, ogr.OFTDateTime) or not feature.IsFieldSetAndNotNull(index):
        return feature.GetField(index)
    year, month, day, hour, minute, second, zone = feature.GetFieldAsDateTime(index)
    if kind == ogr.OFTDate:
        return f"{year:04d}-{month:02d}-{day:02d}"
    text = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:06.3f}"
    if zone == 100:  # OGR's UTC flag; 0 unknown and 1 local time carry no zone
        return text + "Z"
    if zone > 1:  # 100 + 15-minute steps east of UTC (below 100: west)
        offset = (zone - 100) * 15
        return text + f"{'+' if offset >= 0 else '-'}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
    return text


def write_features(
    path: str | os.PathLike,
    features: FeatureSet,
    layer: str,
    geometry_type: str = "MultiPolygon",
    field_types: dict[str, type] | None = None,
    overwrite_file: bool = False,
    qml: str | None = None,
) -> Path:
    """Write ``features`` as ``layer`` of ``path`` (driver from the extension).

    A GeoPackage gets the layer added (replacing a layer of the same name); other formats are
    single-layer and replaced whole. Field types come from ``field_types`` or the first value.
    Geometries are written 2-D. ``qml`` is the layer's style (e.g. :func:`~..__about__.style_qml`),
    which QGIS then shows wherever the file is opened: stored as the layer's default in a
    GeoPackage's ``layer_styles``, beside other formats as ``NAME.qml``.
    """
    try:
        return _write_features(path, features, layer, geometry_type, field_types, overwrite_file, qml)
    except (RuntimeError, OSError) as exc:  # OGR's and the system's: a full disk, a read-only drive
        raise RtsMapperError(write_failure(exc, path), path) from exc


def _write_features(
    path: str | os.PathLike,
    features: FeatureSet,
    layer: str,
    geometry_type: str,
    field_types: dict[str, type] | None,
    overwrite_file: bool,
    qml: str | None,
) -> Path:
    path = Path(path)
    driver_name = _DRIVERS.get(path.suffix.lower())
    if driver_name is None:
        raise RtsMapperError(f"unsupported vector format {path.suffix!r} (use .gpkg, .geojson or .shp)", path)
    driver = ogr.GetDriverByName(driver_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and (overwrite_file or driver_name != "GPKG"):
        driver.DeleteDataSource(str(path))
    dataset = ogr.Open(str(path), 1) if path.exists() else driver.CreateDataSource(str(path))
    if dataset.GetLayerByName(layer) is not None:
        dataset.DeleteLayer(layer)
    spatial_ref = None
    if features.crs is not None:
        spatial_ref = osr.SpatialReference()
        spatial_ref.ImportFromWkt(features.crs.to_wkt())
        spatial_ref.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ogr_type = {
        "MultiPolygon": ogr.wkbMultiPolygon,
        "Polygon": ogr.wkbPolygon,
        "LineString": ogr.wkbLineString,
        "MultiLineString": ogr.wkbMultiLineString,
        "Point": ogr.wkbPoint,
    }[geometry_type]
    options = ["SPATIAL_INDEX=YES"] if driver_name == "GPKG" else []
    if driver_name == "GeoJSON":
        options.append("RFC7946=NO")
    ogr_layer = dataset.CreateLayer(layer, spatial_ref, ogr_type, options=options)
    columns = _columns(features.attributes, field_types or {})
    for name, kind in columns.items():
        field_defn = ogr.FieldDefn(name, _FIELD_TYPES.get(kind, ogr.OFTString))
        if kind is bool:
            field_defn.SetSubType(ogr.OFSTBoolean)
        ogr_layer.CreateField(field_defn)
    transactions = bool(dataset.TestCapability(ogr.ODsCTransactions))
    if transactions:  # one transaction for the whole layer: fast, and all or nothing
        dataset.StartTransaction()
    definition = ogr_layer.GetLayerDefn()
    for geometry, attributes in zip(features.geometries, features.attributes or [{}] * len(features)):
        feature = ogr.Feature(definition)
        for index, name in enumerate(columns):  # by index: a shapefile shortens names to 10 letters
            value = attributes.get(name)
            if value is not None:
                feature.SetField(index, value)
        if geometry is not None:
            geometry = _coerce(shapely.force_2d(geometry), geometry_type)
            feature.SetGeometry(ogr.CreateGeometryFromWkb(shapely.to_wkb(geometry)))
        ogr_layer.CreateFeature(feature)
    if transactions:
        dataset.CommitTransaction()
    dataset = None
    written = _feature_count(path, layer if driver_name == "GPKG" else None)
    if written != len(features):  # OGR's GeoJSON writer fails quietly on a full disk (an empty file)
        if driver_name != "GPKG" or overwrite_file:
            driver.DeleteDataSource(str(path))
        raise RtsMapperError(
            write_failure(OSError(f"{written} of {len(features)} features reached the file"), path), path
        )
    if qml is not None:
        _store_style(path, driver_name, layer, qml)
    return path


def _feature_count(path: Path, layer: str | None) -> int:
    """Features in the written file, read back (0 when it cannot be read)."""
    try:
        dataset = ogr.Open(str(path))
        found = dataset.GetLayerByName(layer) if layer else dataset.GetLayerByIndex(0)
        return found.GetFeatureCount() if found is not None else 0
    except (RuntimeError, AttributeError):
        return 0


def _store_style(path: Path, driver_name: str, layer: str, qml: str) -> None:
    from . import gpkg

    if driver_name != "GPKG":
        path.with_suffix(".qml").write_text(qml, encoding="utf-8")
        return
    conn = gpkg.connect(path)
    try:
        with gpkg.transaction(conn):
            gpkg.save_default_style(conn, layer, qml, f"RTS Mapper {layer}")
    finally:
        conn.close()


def _columns(attributes: Sequence[dict[str, Any]], declared: dict[str, type]) -> dict[str, type]:
    columns: dict[str, type] = {}
    for row in attributes:
        for name, value in row.items():
            if name == "fid" or name in columns:
                continue
            if name in declared:
                columns[name] = declared[name]
            elif value is not None:
                columns[name] = type(value) if type(value) in _FIELD_TYPES else str
    for name, kind in declared.items():
        columns.setdefault(name, kind)
    return columns


def _coerce(geometry: BaseGeometry, geometry_type: str) -> BaseGeometry:
    from shapely.geometry import MultiLineString, MultiPolygon

    if geometry_type == "MultiPolygon" and geometry.geom_type == "Polygon":
        return MultiPolygon([geometry])
    if geometry_type == "MultiLineString" and geometry.geom_type == "LineString":
        return MultiLineString([geometry])
    return geometry


def as_multipolygon(geometry: BaseGeometry):
    """Polygon -> MultiPolygon; collections keep only their polygon parts."""
    from shapely.geometry import MultiPolygon

    if geometry is None or geometry.is_empty:
        return MultiPolygon()
    if geometry.geom_type == "MultiPolygon":
        return geometry
    if geometry.geom_type == "Polygon":
        return MultiPolygon([geometry])
    parts = [g for g in getattr(geometry, "geoms", []) if g.geom_type in ("Polygon", "MultiPolygon")]
    polygons = []
    for part in parts:
        polygons.extend(part.geoms if part.geom_type == "MultiPolygon" else [part])
    return MultiPolygon(polygons)
