"""The ARTS data standard (Yang et al. 2025, Scientific Data; github.com/whrc/ARTS): the fields of a
contribution, their formats, the UID recipe, and the relationships of a contribution to the ARTS
main data set.

Written from ARTS's README, ``Metadata_Format_Summary.csv``, its formatting tutorial and the rules
its ``dataformatting`` module applies (read, not copied):

* BaseMapDate is ``YYYY-MM-DD``, or two such dates separated by a comma for a range.
* The UID is ``uuid5(NAMESPACE_DNS, seed)``; the seed is the nine required fields written one
  after another with nothing between them, the centroid rounded to 5 decimals (as numpy rounds)
  and an integral resolution written without a decimal point ("3", not "3.0").
* Intersections are the main data set's features that overlap a new one (touching edges only do
  not count); SelfIntersections the same among the new features.
* A negative (background) feature that overlaps a positive one is a repeat negative (negative on
  negative), a false negative (the RTS was there by the time of the negative's imagery) or a
  new RTS (it formed later), compared by the years of the base-map dates.
* A repeated delineation of an RTS already in the main data set keeps that RTS's UID.

What ARTS leaves to a person (is an overlapping positive the same slump, a stabilized scar, a
merge, a split or an accident of delineation?) is decided here from the geometry and, for scars,
from the reviewers' initiation period: see :func:`relationships`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

REQUIRED = (
    "CentroidLat",
    "CentroidLon",
    "RegionName",
    "CreatorLab",
    "BaseMapDate",
    "BaseMapSource",
    "BaseMapResolution",
    "TrainClass",
    "LabelType",
)
GENERATED = (
    "MergedRTS",
    "SplitRTS",
    "NewRTS",
    "StabilizedRTS",
    "UnknownRelationship",
    "ContributionDate",
    "UID",
)
OPTIONAL = ("BaseMapID", "Area", "Notes")
# The columns the ARTS tutorial fills while checking overlaps (beside the generated ones).
RELATIONSHIP_COLUMNS = (
    "Intersections",
    "SelfIntersections",
    "RepeatRTS",
    "RepeatNegative",
    "MergedRTS",
    "SplitRTS",
    "NewRTS",
    "StabilizedRTS",
    "AccidentalOverlap",
    "FalseNegative",
    "UnknownRelationship",
)
TRAIN_CLASSES = ("Positive", "Negative")
# Two positives that share less than this share of the smaller one are separate slumps whose
# outlines happen to overlap ("AccidentalOverlap").
ACCIDENTAL_SHARE = 0.1


def base_map_date(start: str = "", end: str = "", year: int | None = None) -> str:
    """BaseMapDate: the first and last day separated by a comma; when only the year is known,
    that whole year.

    One day is written as a range too ("2019-07-15,2019-07-15"). ARTS's README allows a single
    date, but its own relationship code (``classify_negatives``) reads the second date of every
    feature in the main data set and fails on a single one, so a range keeps every later
    contribution that overlaps ours checkable.
    """
    start, end = (start or "").strip(), (end or "").strip()
    if start or end:
        return f"{start or end},{end or start}"
    if year is None:
        raise ValueError("a base map date needs a date or at least a year")
    return f"{year}-01-01,{year}-12-31"


def as_range(value: str) -> str:
    """A BaseMapDate as :func:`base_map_date` writes it: one valid day becomes that day twice;
    anything else stays as given (:func:`problems` reports what is wrong with it)."""
    try:
        first, last = date_range(value)
    except ValueError:
        return value
    return f"{first.isoformat()},{last.isoformat()}"


def date_range(value: str) -> tuple[date, date]:
    """The first and last day of a BaseMapDate (one day: the same day twice)."""
    parts = [p.strip() for p in value.split(",")]
    if not 1 <= len(parts) <= 2 or not all(parts):
        raise ValueError(f"BaseMapDate is YYYY-MM-DD or two of them separated by a comma, not {value!r}")
    try:
        days = [date.fromisoformat(p) for p in parts]
    except ValueError as exc:
        raise ValueError(
            f"BaseMapDate is YYYY-MM-DD or two of them separated by a comma, not {value!r}"
        ) from exc
    if any(len(p) != 10 for p in parts):
        raise ValueError(f"BaseMapDate is YYYY-MM-DD or two of them separated by a comma, not {value!r}")
    return days[0], days[-1]


def rounded(degrees: float) -> float:
    """A centroid coordinate as ARTS stores it: 5 decimals, rounded the way numpy rounds."""
    return float(np.round(np.float64(degrees), 5))


def resolution_text(metres: float) -> str:
    """BaseMapResolution as it enters the seed: "3" for 3.0, "0.5" for 0.5."""
    value = float(metres)
    return str(int(value)) if value == int(value) else str(value)


def seed(record: dict) -> str:
    """The string ARTS makes a UID from: the required fields one after another."""
    parts = [
        str(rounded(record["CentroidLat"])),
        str(rounded(record["CentroidLon"])),
        record["RegionName"],
        record["CreatorLab"],
        record["BaseMapDate"],
        record["BaseMapSource"],
        resolution_text(record["BaseMapResolution"]),
        record["TrainClass"],
        record["LabelType"],
    ]
    return "".join(str(p) for p in parts)


def uid(record: dict) -> str:
    """The ARTS UID of a record (uuid5 in the DNS namespace of its seed)."""
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, seed(record)))


def problems(record: dict) -> list[str]:
    """What ARTS's formatting checks would refuse in a record (empty: none)."""
    found = []
    for name in REQUIRED:
        value = record.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            found.append(f"{name} is missing")
    if found:
        return found
    for name, low, high in (("CentroidLat", -90, 90), ("CentroidLon", -180, 180)):
        if not isinstance(record[name], float) or not low <= record[name] <= high:
            found.append(f"{name} must be decimal degrees in WGS 84 ({low} to {high})")
    if not isinstance(record["BaseMapResolution"], float):
        found.append("BaseMapResolution must be a number (metres)")
    try:
        date_range(record["BaseMapDate"])
    except ValueError as exc:
        found.append(str(exc))
    if record["TrainClass"] not in TRAIN_CLASSES:
        found.append(f"TrainClass is Positive or Negative, not {record['TrainClass']!r}")
    return found


@dataclass
class Feature:
    """One ARTS feature: its polygon (any CRS shared by all features compared) and its fields."""

    geometry: BaseGeometry
    record: dict
    # for a positive of this contribution: the year its slump began (from the reviewers'
    # initiation period), when known
    initiated: int | None = None
    relations: dict[str, list[str]] = field(default_factory=dict)


def _overlapping(feature: Feature, others: list[Feature], tree: STRtree) -> list[Feature]:
    """The features that overlap ``feature`` (intersect without only touching), in their order."""
    hits = sorted(int(i) for i in tree.query(feature.geometry, predicate="intersects"))
    return [
        others[i]
        for i in hits
        if others[i] is not feature and not feature.geometry.touches(others[i].geometry)
    ]


def _years(feature: Feature) -> tuple[int, int]:
    first, last = date_range(feature.record["BaseMapDate"])
    return first.year, last.year


def _shared(a: BaseGeometry, b: BaseGeometry) -> float:
    """The overlap as a share of the smaller of the two."""
    smaller = min(a.area, b.area)
    return a.intersection(b).area / smaller if smaller > 0 else 0.0


def relationships(new: list[Feature], main: list[Feature], today: date | None = None) -> list[Feature]:
    """Fill every new feature's relationship columns (:data:`RELATIONSHIP_COLUMNS`) and
    ContributionDate, and give a repeated delineation the UID of the RTS it repeats.

    Negatives are classified as ARTS's formatting code does. For two overlapping positives
    (which ARTS asks a person to classify), in this order:

    * AccidentalOverlap: they share less than :data:`ACCIDENTAL_SHARE` of the smaller one;
    * StabilizedRTS: the other one's imagery ends before the year the new slump began (the
      reviewers' initiation period): it is an older, stabilized scar the new one formed on;
    * MergedRTS: several features of the other set overlap the new one;
    * SplitRTS: the other one overlaps several of the new features;
    * RepeatRTS: otherwise, the same slump delineated at another time, by another lab or
      from other imagery.

    Every overlapping UID lands in exactly one column, so ARTS's completeness check passes.
    """
    today = today or date.today()
    main_tree = STRtree([f.geometry for f in main]) if main else None
    new_tree = STRtree([f.geometry for f in new]) if new else None
    overlaps: dict[int, tuple[list[Feature], list[Feature]]] = {}
    for feature in new:
        in_main = _overlapping(feature, main, main_tree) if main_tree is not None else []
        in_new = _overlapping(feature, new, new_tree) if new_tree is not None else []
        overlaps[id(feature)] = (in_main, in_new)
    # how many new features each feature overlaps (to tell a split)
    overlapped_by: dict[int, int] = {}
    for in_main, in_new in overlaps.values():
        for other in [*in_main, *in_new]:
            overlapped_by[id(other)] = overlapped_by.get(id(other), 0) + 1

    for feature in new:
        in_main, in_new = overlaps[id(feature)]
        relations = {name: [] for name in RELATIONSHIP_COLUMNS}
        relations["Intersections"] = [o.record["UID"] for o in in_main]
        relations["SelfIntersections"] = [o.record["UID"] for o in in_new]
        first, last = _years(feature)
        positive = feature.record["TrainClass"] == "Positive"
        positives_overlapping = [
            o
            for o in [*in_main, *in_new]
            if o.record["TrainClass"] == "Positive"
            and _shared(feature.geometry, o.geometry) >= ACCIDENTAL_SHARE
        ]
        for other in [*in_main, *in_new]:
            other_first, other_last = _years(other)
            key = other.record["UID"]
            if not positive:
                if other.record["TrainClass"] == "Negative":
                    relations["RepeatNegative"].append(key)
                elif other_first <= last:
                    relations["FalseNegative"].append(key)
                else:
                    relations["NewRTS"].append(key)
            elif other.record["TrainClass"] == "Negative":
                relations["FalseNegative" if other_last >= first else "NewRTS"].append(key)
            elif _shared(feature.geometry, other.geometry) < ACCIDENTAL_SHARE:
                relations["AccidentalOverlap"].append(key)
            elif feature.initiated is not None and other_last < feature.initiated:
                relations["StabilizedRTS"].append(key)
            elif len(positives_overlapping) > 1:
                relations["MergedRTS"].append(key)
            elif overlapped_by.get(id(other), 0) > 1:
                relations["SplitRTS"].append(key)
            else:
                relations["RepeatRTS"].append(key)
        feature.relations = relations
    _inherit_uids(new)
    for feature in new:
        feature.record.update({name: ",".join(uids) for name, uids in feature.relations.items()})
        feature.record["ContributionDate"] = today.isoformat()
    return new


def _inherit_uids(new: list[Feature]) -> None:
    """A repeat keeps the UID it repeats: the main data set's, else the earliest (by base-map
    date) of the repeats within this contribution."""
    by_uid = {f.record["UID"]: f for f in new}
    chosen: dict[int, str] = {}
    for feature in new:
        repeats = feature.relations["RepeatRTS"]
        if not repeats:
            continue
        in_main = [u for u in repeats if u in feature.relations["Intersections"]]
        if in_main:
            chosen[id(feature)] = in_main[0]
            continue
        group = [feature, *(by_uid[u] for u in repeats if u in by_uid)]
        chosen[id(feature)] = min(group, key=lambda f: date_range(f.record["BaseMapDate"])[0]).record["UID"]
    for feature in new:
        if id(feature) in chosen:
            feature.record["UID"] = chosen[id(feature)]
