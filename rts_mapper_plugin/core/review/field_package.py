"""A field package: candidates to review on a laptop or in QField, and their decisions merged back.

*Export* writes a folder that travels on its own: ``field.gpkg`` with the candidates as a layer
``review`` (the candidate's id, probability, area, the reviewer's desk decision for reference,
and the empty review form: decision, probability, initiation period, the four criteria, note),
the year images clipped to the candidates (``imagery/YEAR.tif``), and ``package.json`` (where it
came from, for whom, the outlines as exported). A field app edits the ``review`` layer as any
GeoPackage: plain OGR or SQLite edits are what QField makes.

*Merge* reads the filled-in rows back into the mapping project, keyed by candidate and reviewer:
a decision the desk does not have yet is recorded (with the boundary if it was redrawn); one the
desk already has the same is left; one that differs from the same reviewer's desk decision is a
conflict, listed and never written over. Each merge is one transaction per decision, as the
Review dock's.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RtsMapperError
from ..project.store import DECISIONS, MappingProject
from ..raster_io import atomic_folder
from ..vectors import FeatureSet, read_features, write_features
from .decisions import CRITERIA_NAMES, Decision, decisions_of, record_decision, reviewed_boundaries

LAYER = "review"
INFO = "package.json"
FORMAT = "rts_mapper_field_package/1"
# the form's fields and their types (what QField shows as widgets; value maps set by the face)
FORM: dict[str, type] = {
    "decision": str,
    "probability": int,
    "initiation_period": str,
    **dict.fromkeys(CRITERIA_NAMES, int),
    "note": str,
}
CONTEXT: dict[str, type] = {
    "candidate_id": int,
    "reviewer": str,
    "mean_prob": float,
    "area_m2": float,
    "desk_decision": str,
}


@dataclass
class FieldPackage:
    folder: Path
    candidates: int
    years: list[int]


def export_field_package(
    project: MappingProject,
    out_folder: str | os.PathLike,
    candidate_ids: list[int],
    reviewer: str,
    buffer_m: float = 150.0,
) -> FieldPackage:
    """Write the field package for ``candidate_ids`` (say, the near-road ones) for ``reviewer``."""
    reviewer = reviewer.strip()
    if not reviewer:
        raise RtsMapperError("a field package is made for a reviewer: give a name")
    wanted = sorted(set(candidate_ids))
    if not wanted:
        raise RtsMapperError("no candidates to put in the field package")
    placeholders = ", ".join("?" * len(wanted))
    # sql-safe: only "?" placeholders are joined; the ids go in as parameters
    candidates = project.features("candidates", f"fid IN ({placeholders})", tuple(wanted))
    missing = set(wanted) - {a["fid"] for a in candidates.attributes}
    if missing:
        raise RtsMapperError(f"the project has no candidate {min(missing)}", project.path)
    desk = {
        d["candidate_id"]: d["decision"] for d in decisions_of(project, wanted) if d["reviewer"] == reviewer
    }
    rows = [
        {
            "candidate_id": a["fid"],
            "reviewer": reviewer,
            "mean_prob": a["mean_prob"],
            "area_m2": a["area_m2"],
            "desk_decision": desk.get(a["fid"], ""),
            **dict.fromkeys(FORM),
        }
        for a in candidates.attributes
    ]
    areas = _areas(candidates.geometries, buffer_m)
    with atomic_folder(out_folder) as staging:
        write_features(
            staging / "field.gpkg",
            FeatureSet(candidates.geometries, rows, project.crs),
            LAYER,
            field_types={**CONTEXT, **FORM},
        )
        years = []
        for year in project.years():
            if year.raster_path.is_file():
                clipped = staging / "imagery" / f"{year.year}.tif"
                _clip(year.raster_path, areas, clipped)
                if clipped.is_file():  # a year that does not reach the candidates has no image
                    years.append(year.year)
        info = {
            "format": FORMAT,
            "project": str(project.path),
            "reviewer": reviewer,
            "candidates": wanted,
            "years": years,
            "outlines": {str(a["fid"]): g.wkt for a, g in zip(candidates.attributes, candidates.geometries)},
        }
        (staging / INFO).write_text(json.dumps(info, indent=1), encoding="utf-8")
    return FieldPackage(Path(out_folder), len(wanted), years)


def _areas(geometries, buffer_m: float) -> list[tuple[float, float, float, float]]:
    """The bounds of each group of candidates (their buffers merged where they touch)."""
    from shapely.ops import unary_union

    merged = unary_union([g.buffer(buffer_m) for g in geometries if g is not None])
    return [part.bounds for part in getattr(merged, "geoms", [merged])]


def _clip(source: Path, areas, out: Path) -> None:
    """``source`` around each area only: one image on the source's grid spanning them all, whose
    tiles away from every candidate are never written (sparse: no bytes, read as nodata). Near-road
    candidates strung along 100 km of road take megabytes, not the whole region's gigabytes."""
    import rasterio
    from rasterio import windows

    from ..raster_io import GTIFF_PROFILE, reading

    out.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(source) as dataset, reading(source, writing=out):
        whole = windows.Window(0, 0, dataset.width, dataset.height)
        parts = [
            window.intersection(whole)
            for window in (
                windows.from_bounds(*bounds, transform=dataset.transform).round_offsets().round_lengths()
                for bounds in areas
            )
            if windows.intersect(window, whole)
        ]
        if not parts:
            return
        span = windows.union(*parts)
        profile = {
            **GTIFF_PROFILE,
            "width": int(span.width),
            "height": int(span.height),
            "count": dataset.count,
            "dtype": dataset.dtypes[0],
            "crs": dataset.crs,
            "transform": dataset.window_transform(span),
            "nodata": dataset.nodata if dataset.nodata is not None else 0,
            "sparse_ok": True,
        }
        profile.pop("bigtiff", None)
        with rasterio.open(out, "w", **profile) as clipped:
            for part in parts:
                at = windows.Window(
                    part.col_off - span.col_off, part.row_off - span.row_off, part.width, part.height
                )
                clipped.write(dataset.read(window=part), window=at)


@dataclass
class MergeResult:
    recorded: list[int] = field(default_factory=list)  # candidate ids newly decided
    unchanged: list[int] = field(default_factory=list)  # the desk already had the same
    conflicts: list[dict] = field(default_factory=list)  # the same reviewer decided otherwise at the desk
    undecided: int = 0  # rows left empty in the field

    def summary(self) -> str:
        return (
            f"{_count(len(self.recorded), 'decision')} recorded, {len(self.unchanged)} already at the desk, "
            f"{_count(len(self.conflicts), 'conflict')} kept apart, {self.undecided} left undecided"
        )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def merge_field_package(project: MappingProject, folder: str | os.PathLike) -> MergeResult:
    """Bring the decisions made in the field into ``project``; see the module docstring."""
    folder = Path(folder)
    info_path = folder / INFO
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RtsMapperError("is not a field package (no readable package.json)", folder) from exc
    if info.get("format") != FORMAT:
        raise RtsMapperError(f"is a field package of another format ({info.get('format')!r})", folder)
    rows = read_features(f"{folder / 'field.gpkg'}|layername={LAYER}")
    result = MergeResult()
    # the desk's decisions and outlines, read once (a package holds one row per candidate)
    at_desk = {(d["candidate_id"], d["reviewer"]): d for d in decisions_of(project) if not d["is_final"]}
    boundaries = reviewed_boundaries(project)
    for geometry, row in zip(rows.to_crs(project.crs).geometries, rows.attributes):
        decision = (row.get("decision") or "").strip().lower()
        if not decision:
            result.undecided += 1
            continue
        if decision not in DECISIONS:
            raise RtsMapperError(
                f"candidate {row.get('candidate_id')}: decision {decision!r} is not one of {', '.join(DECISIONS)}",
                folder,
            )
        candidate_id, reviewer = int(row["candidate_id"]), str(row.get("reviewer") or info["reviewer"])
        exported = info["outlines"].get(str(candidate_id))
        edited = geometry is not None and exported is not None and not _same_outline(geometry, exported)
        field_values = _values(row, decision)
        desk = at_desk.get((candidate_id, reviewer))
        if desk is not None:
            boundary = boundaries.get(candidate_id, {}).get(reviewer)
            same_outline = geometry is None or boundary is None or _same_outline(geometry, boundary.wkt)
            if _values(desk, desk["decision"]) == field_values and same_outline:
                result.unchanged.append(candidate_id)
            else:
                result.conflicts.append(
                    {
                        "candidate_id": candidate_id,
                        "reviewer": reviewer,
                        "desk": desk["decision"],
                        "field": decision,
                    }
                )
            continue
        record_decision(
            project,
            Decision(
                candidate_id=candidate_id,
                reviewer=reviewer,
                decision=decision,
                probability=field_values["probability"],
                initiation_period=field_values["initiation_period"],
                criteria={name: bool(field_values[name]) for name in CRITERIA_NAMES},
                note=field_values["note"] or "",
                geometry=geometry if edited else None,
                edited=edited,
            ),
        )
        result.recorded.append(candidate_id)
    return result


def _values(row: dict, decision: str) -> dict:
    """A decision's form values, normalised to compare field and desk."""
    probability = row.get("probability")
    return {
        "decision": decision,
        "probability": None if probability in (None, "") else int(probability),
        "initiation_period": (row.get("initiation_period") or None),
        **{name: int(bool(row.get(name) or 0)) for name in CRITERIA_NAMES},
        "note": (row.get("note") or None),
    }


def _same_outline(geometry, wkt: str) -> bool:
    from shapely import wkt as shapely_wkt

    before = shapely_wkt.loads(wkt)
    return geometry.symmetric_difference(before).area <= 1e-6 * max(before.area, 1.0)
