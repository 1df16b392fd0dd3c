"""The RTS inventory: every confirmed slump with its figures, ready to publish.

Fields: id, area (ha), perimeter (m), centroid longitude / latitude (WGS 84), probability,
initiation period, iteration found, reviewers, near-road flag and distance (centroid within
``near_road_m`` of a road or railway, 500 m as in the paper). The ARTS metadata standard's
fields (Yang et al. 2023, github.com/whrc/ARTS) come too, so the inventory can be contributed
to that community dataset: CentroidLat, CentroidLon, RegionName, CreatorLab, BaseMapDate,
BaseMapSource, BaseMapResolution, TrainClass, LabelType, UID, Area (m²), Notes, in the formats
ARTS's own checks accept and with the UID ARTS's own recipe gives (see :mod:`.arts`).
:func:`arts_contribution` adds the representative non-RTSs reviewers chose (TrainClass
"Negative") and the relationships to an ARTS main data set, ready to contribute.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from rasterio.crs import CRS

from ...__about__ import style_qml
from .. import defaults
from ..errors import RtsMapperError
from ..project.store import MappingProject, YearLayer, initiation_periods
from ..vectors import FeatureSet, write_features
from . import arts

WGS84 = CRS.from_epsg(4326)


@dataclass
class InventoryMetadata:
    """What the ARTS standard asks about the mapping effort as a whole."""

    region_name: str = ""
    creator_lab: str = ""
    base_map_date: str = ""  # ARTS's BaseMapDate, e.g. "2019-07-15,2019-08-15"
    base_map_source: str = defaults.BASE_MAP_SOURCE
    base_map_resolution_m: float = defaults.BASE_MAP_RESOLUTION_M
    label_type: str = "Polygon"
    notes: str = ""


def base_map_fields(years: Sequence[YearLayer]) -> dict[str, str]:
    """BaseMapDate and BaseMapSource for :class:`InventoryMetadata`, from the year registry.

    The base map is the latest registered year's mosaic. Its date range was read from the
    scenes' own metadata when the year was prepared (see :func:`~.imagery.prepare_and_register`),
    written as ARTS wants it: "START,END" (the same day twice for scenes of one day), the whole
    year as a range when no date is known. The source is that year's sensor, left out (the
    default stays) when unknown.
    """
    if not years:
        return {}
    latest = max(years, key=lambda layer: layer.year)
    fields = {"base_map_date": arts.base_map_date(latest.date_start, latest.date_end, latest.year)}
    if latest.sensor:
        fields["base_map_source"] = latest.sensor
    return fields


def metadata_for(project: MappingProject, region_name: str, creator_lab: str, **given) -> InventoryMetadata:
    """The metadata of a project's inventory or ARTS contribution: BaseMapDate and BaseMapSource
    from its year registry (:func:`base_map_fields`) unless ``given`` (empty values count as not
    given), the other fields of :class:`InventoryMetadata` from ``given`` or their defaults."""
    fields = {**base_map_fields(project.years()), **{k: v for k, v in given.items() if v not in ("", None)}}
    return InventoryMetadata(region_name=region_name.strip(), creator_lab=creator_lab.strip(), **fields)


def build_inventory(
    project: MappingProject,
    roads: FeatureSet | None = None,
    near_road_m: float = defaults.NEAR_ROAD_M,
    metadata: InventoryMetadata | None = None,
) -> FeatureSet:
    """The confirmed RTSs (the project's positives found by review, plus any initial ones) as
    one FeatureSet in the project's CRS, with the inventory and ARTS fields."""
    metadata = metadata or InventoryMetadata()
    positives = project.features("training_positives")
    with project.connection() as conn:
        probability = {
            r["candidate_id"]: r["p"]
            for r in conn.execute(
                "SELECT candidate_id, AVG(probability) AS p FROM reviews WHERE decision = 'accepted' GROUP BY candidate_id"
            )
        }
        model_probability = {
            r["fid"]: r["mean_prob"] for r in conn.execute("SELECT fid, mean_prob FROM candidates")
        }
        reviewers = {}
        for r in conn.execute("SELECT candidate_id, reviewer FROM reviews"):
            reviewers.setdefault(r["candidate_id"], set()).add(r["reviewer"])
    geometries = list(positives.geometries)
    centroids = [g.centroid for g in geometries]
    lons, lats = (
        _to_wgs84(project.crs, [c.x for c in centroids], [c.y for c in centroids]) if centroids else ([], [])
    )
    distances = (
        _road_distances(centroids, roads.to_crs(project.crs))
        if roads is not None
        else [None] * len(centroids)
    )
    attributes = []
    for index, (geometry, source) in enumerate(zip(geometries, positives.attributes)):
        candidate = source.get("candidate_id")
        area_ha = geometry.area / 1e4
        reviewed_p = probability.get(candidate)
        p = reviewed_p / 100 if reviewed_p is not None else model_probability.get(candidate)
        distance = distances[index]
        lat, lon = float(lats[index]), float(lons[index])
        record = arts_record(lat, lon, metadata, "Positive", geometry.area)
        attributes.append(
            {
                "rts_id": index + 1,
                "area_ha": round(area_ha, 4),
                "perimeter_m": round(geometry.length, 1),
                "centroid_lon": round(lon, 6),
                "centroid_lat": round(lat, 6),
                "probability": None if p is None else round(float(p), 3),
                "initiation_period": source.get("initiation_period") or "",
                "iteration_found": source.get("iteration_added"),
                "reviewers": ", ".join(sorted(reviewers.get(candidate, ()))) or source.get("source") or "",
                "near_road": None if distance is None else int(distance <= near_road_m),
                "road_distance_m": None if distance is None else round(distance, 1),
                **record,  # the ARTS standard's fields
            }
        )
    return FeatureSet(geometries, attributes, project.crs)


def arts_record(
    lat: float, lon: float, metadata: InventoryMetadata, train_class: str, area_m2: float
) -> dict:
    """The ARTS fields of one feature, its UID made by ARTS's recipe."""
    record = {
        "CentroidLat": arts.rounded(lat),
        "CentroidLon": arts.rounded(lon),
        "RegionName": metadata.region_name,
        "CreatorLab": metadata.creator_lab,
        "BaseMapDate": arts.as_range(metadata.base_map_date),
        "BaseMapSource": metadata.base_map_source,
        "BaseMapResolution": float(metadata.base_map_resolution_m),
        "TrainClass": train_class,
        "LabelType": metadata.label_type,
    }
    return {**record, "UID": arts.uid(record), "Area": round(area_m2, 1), "Notes": metadata.notes}


def _initiated(period: str | None) -> int | None:
    """The year a slump began by, from its initiation period ("2016-2017" -> 2017)."""
    if not period or "-" not in period:
        return None
    tail = period.rsplit("-", 1)[1]
    return int(tail) if tail.isdigit() else None


def read_arts(path: str | os.PathLike) -> list[arts.Feature]:
    """The features of an ARTS data set file (e.g. the main data set's GeoJSON), in WGS 84."""
    from ..vectors import read_features

    features = read_features(str(path))
    missing = [
        name for name in ("UID", "TrainClass", "BaseMapDate") if name not in (features.attributes or [{}])[0]
    ]
    if len(features) and missing:
        raise RtsMapperError(f"not an ARTS data set: no {', '.join(missing)} field", path)
    features = features.to_crs(WGS84)
    return [
        arts.Feature(g, dict(a))
        for g, a in zip(features.geometries, features.attributes)
        if g is not None and not g.is_empty
    ]


def arts_contribution(
    project: MappingProject,
    metadata: InventoryMetadata,
    main: str | os.PathLike | None = None,
    negatives: bool = True,
) -> FeatureSet:
    """The project as an ARTS contribution, in WGS 84: every confirmed RTS (TrainClass
    "Positive", with its reviewed boundary) and, with ``negatives``, the rejected candidates
    reviewers chose as representative non-RTSs ("Negative"); with ``main`` (the ARTS main data
    set file) the relationships ARTS asks for, found as :func:`.arts.relationships` says.

    A negative that overlaps a confirmed RTS of the contribution is left out: ARTS would drop
    it as a false negative anyway."""
    inventory = build_inventory(project, metadata=metadata)
    wanted = [*arts.REQUIRED, "UID", "Area", "Notes"]
    features = [
        arts.Feature(g, {k: a[k] for k in wanted}, initiated=_initiated(a["initiation_period"]))
        for g, a in zip(inventory.to_crs(WGS84).geometries, inventory.attributes)
    ]
    if negatives:
        chosen = project.features("training_negatives").to_crs(WGS84)
        positives = [f.geometry for f in features]
        areas = project.features("training_negatives").geometries
        for geometry, area_source in zip(chosen.geometries, areas):
            if geometry is None or geometry.is_empty:
                continue
            if any(geometry.intersects(p) and not geometry.touches(p) for p in positives):
                continue
            centroid = area_source.centroid
            (lon,), (lat,) = _to_wgs84(project.crs, [centroid.x], [centroid.y])
            record = arts_record(lat, lon, metadata, "Negative", area_source.area)
            features.append(arts.Feature(geometry, {k: record[k] for k in wanted}))
    unfit = {p for f in features for p in arts.problems(f.record)}
    if unfit:
        raise RtsMapperError("the ARTS fields are incomplete: " + "; ".join(sorted(unfit)))
    arts.relationships(features, read_arts(main) if main is not None else [])
    return FeatureSet([f.geometry for f in features], [f.record for f in features], WGS84)


def _to_wgs84(crs, xs, ys):
    from rasterio.warp import transform

    return transform(crs, WGS84, xs, ys)


def _road_distances(points, roads: FeatureSet) -> list[float | None]:
    lines = [g for g in roads.geometries if g is not None and not g.is_empty]
    if not lines:
        return [None] * len(points)
    network = shapely.unary_union(lines)
    return [float(p.distance(network)) for p in points]


def inventory_summary(inventory: FeatureSet, years: list[int] | None = None) -> dict:
    """Counts and area statistics, initiation-period counts, and the near-road list."""
    areas = np.array([a["area_ha"] for a in inventory.attributes], dtype=float)
    periods = initiation_periods(years or [])
    counts = dict.fromkeys(periods, 0)
    for a in inventory.attributes:
        key = a["initiation_period"] or "unknown"
        counts[key] = counts.get(key, 0) + 1
    near = [
        {"rts_id": a["rts_id"], "road_distance_m": a["road_distance_m"], "area_ha": a["area_ha"]}
        for a in inventory.attributes
        if a["near_road"]
    ]
    return {
        "count": len(areas),
        "total_area_ha": round(float(areas.sum()), 3),
        "largest_ha": round(float(areas.max()), 3) if len(areas) else None,
        "smallest_ha": round(float(areas.min()), 3) if len(areas) else None,
        "mean_ha": round(float(areas.mean()), 3) if len(areas) else None,
        "share_under_10_ha": round(float((areas < 10).mean()), 3) if len(areas) else None,
        "initiation_periods": counts,
        "near_road": sorted(near, key=lambda n: n["road_distance_m"]),
    }


# Shapefile field names have at most 10 characters: the longer ones get these short forms.
SHAPEFILE_NAMES = {
    "perimeter_m": "perim_m",
    "centroid_lon": "cent_lon",
    "centroid_lat": "cent_lat",
    "probability": "prob",
    "initiation_period": "init_per",
    "iteration_found": "iter_found",
    "road_distance_m": "road_dist",
    "CentroidLat": "CentLat",
    "CentroidLon": "CentLon",
    "BaseMapDate": "BMapDate",
    "BaseMapSource": "BMapSource",
    "BaseMapResolution": "BMapRes",
}


def export_inventory(inventory: FeatureSet, out: str | os.PathLike, summary: dict | None = None) -> Path:
    """Write the inventory (GeoPackage, GeoJSON or Shapefile by extension) and its summary beside it.

    A Shapefile takes the short field names of :data:`SHAPEFILE_NAMES` (the format allows 10
    characters); GeoPackage and GeoJSON keep the full inventory and ARTS names.
    """
    out = Path(out)
    if out.suffix.lower() not in (".gpkg", ".geojson", ".json", ".shp"):
        raise RtsMapperError("export the inventory as .gpkg, .geojson or .shp", out)
    if not len(inventory):
        raise RtsMapperError("the inventory is empty: no RTS has been confirmed yet", out)
    features = inventory
    if out.suffix.lower() in (".geojson", ".json"):
        features = inventory.to_crs(WGS84)  # RFC 7946: GeoJSON is WGS 84
    if out.suffix.lower() == ".shp":
        renamed = [{SHAPEFILE_NAMES.get(k, k): v for k, v in a.items()} for a in inventory.attributes]
        features = FeatureSet(inventory.geometries, renamed, inventory.crs)
    write_features(out, features, "rts_inventory", overwrite_file=True, qml=style_qml("inventory"))
    if summary is not None:
        out.with_name(out.stem + "_summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return out


def export_arts(contribution: FeatureSet, out: str | os.PathLike) -> Path:
    """Write an ARTS contribution as GeoJSON (what ARTS's formatting tutorial reads)."""
    out = Path(out)
    if out.suffix.lower() not in (".geojson", ".json"):
        raise RtsMapperError("an ARTS contribution is written as .geojson", out)
    if not len(contribution):
        raise RtsMapperError("nothing to contribute: no RTS has been confirmed yet", out)
    write_features(out, contribution.to_crs(WGS84), "arts_contribution", overwrite_file=True)
    return out
