"""The RTS inventory: every confirmed slump with its figures, ready to publish.

Fields: id, area (ha), perimeter (m), centroid longitude / latitude (WGS 84), probability,
initiation period, iteration found, reviewers, near-road flag and distance (centroid within
``near_road_m`` of a road or railway, 500 m as in the paper). The ARTS metadata standard's
fields (Yang et al. 2023, github.com/whrc/ARTS) come too, so the inventory can be contributed
to that community dataset: CentroidLat, CentroidLon, RegionName, CreatorLab, BaseMapDate,
BaseMapSource, BaseMapResolution, TrainClass, LabelType, UID, Area (ha), Notes. UID is a
uuid5 of the required fields, so the same polygon always gets the same UID.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from rasterio.crs import CRS

from .. import defaults
from ..errors import RtsMapperError
from ..project.store import MappingProject, YearLayer, initiation_periods
from ..vectors import FeatureSet, write_features

ARTS_NAMESPACE = uuid.UUID("a3b7a1f8-6f0e-5d1b-9d1e-2a7c4f0b5e11")  # RTS Mapper's namespace for UIDs
WGS84 = CRS.from_epsg(4326)


@dataclass
class InventoryMetadata:
    """What the ARTS standard asks about the mapping effort as a whole."""

    region_name: str = ""
    creator_lab: str = ""
    base_map_date: str = ""  # e.g. "2019-07-15/2019-08-15"
    base_map_source: str = "PlanetScope"
    base_map_resolution_m: float = 3.0
    label_type: str = "Polygon"
    notes: str = ""


def base_map_fields(years: Sequence[YearLayer]) -> dict[str, str]:
    """BaseMapDate and BaseMapSource for :class:`InventoryMetadata`, from the year registry.

    The base map is the latest registered year's mosaic. Its date range was read from the
    scenes' own metadata when the year was prepared (see :func:`~.imagery.prepare_and_register`):
    "START/END", one date when the scenes are of one day, the year when no date is known. The
    source is that year's sensor, left out (the default stays) when unknown.
    """
    if not years:
        return {}
    latest = max(years, key=lambda layer: layer.year)
    start, end = latest.date_start, latest.date_end
    fields = {"base_map_date": (f"{start}/{end}" if end and end != start else start) or str(latest.year)}
    if latest.sensor:
        fields["base_map_source"] = latest.sensor
    return fields


def arts_uid(
    centroid_lat: float,
    centroid_lon: float,
    region: str,
    creator: str,
    date: str,
    source: str,
    resolution: float,
    train_class: str,
    label_type: str,
) -> str:
    key = "|".join(
        [
            f"{centroid_lat:.6f}",
            f"{centroid_lon:.6f}",
            region,
            creator,
            date,
            source,
            f"{resolution:g}",
            train_class,
            label_type,
        ]
    )
    return str(uuid.uuid5(ARTS_NAMESPACE, key))


def build_inventory(
    project: MappingProject,
    roads: FeatureSet | None = None,
    near_road_m: float = defaults.NEAR_ROAD_M,
    metadata: InventoryMetadata | None = None,
) -> FeatureSet:
    """The confirmed RTSs (the project's positives found by review, plus any initial ones) as
    one FeatureSet in the project's CRS, with the inventory and ARTS fields."""
    from rasterio.warp import transform

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
        transform(project.crs, WGS84, [c.x for c in centroids], [c.y for c in centroids])
        if centroids
        else ([], [])
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
                # ARTS metadata standard
                "CentroidLat": round(lat, 6),
                "CentroidLon": round(lon, 6),
                "RegionName": metadata.region_name,
                "CreatorLab": metadata.creator_lab,
                "BaseMapDate": metadata.base_map_date,
                "BaseMapSource": metadata.base_map_source,
                "BaseMapResolution": metadata.base_map_resolution_m,
                "TrainClass": "Positive",
                "LabelType": metadata.label_type,
                "UID": arts_uid(
                    lat,
                    lon,
                    metadata.region_name,
                    metadata.creator_lab,
                    metadata.base_map_date,
                    metadata.base_map_source,
                    metadata.base_map_resolution_m,
                    "Positive",
                    metadata.label_type,
                ),
                "Area": round(area_ha, 4),
                "Notes": metadata.notes,
            }
        )
    return FeatureSet(geometries, attributes, project.crs)


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
    write_features(out, features, "rts_inventory", overwrite_file=True)
    if summary is not None:
        out.with_name(out.stem + "_summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return out
