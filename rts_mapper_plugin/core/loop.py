"""The iterative loop of the paper: promote what reviewers accepted, retrain, infer, review only
what is new, and keep Table 1 (one row per iteration) in the project.

``promote_accepted`` moves accepted candidates, with their reviewed (possibly edited)
boundaries, into ``training_positives``; ``add_negatives`` adds the rejected candidates a
reviewer picked as representative false positives. ``known_polygons`` is what a new inference
sets aside: the confirmed RTSs and every candidate already reviewed.
"""

from __future__ import annotations

import csv
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from . import gpkg
from .project import MappingProject
from .vectors import FeatureSet, as_multipolygon


@dataclass
class IterationRecord:
    """One row of the paper's Table 1."""

    iteration: int
    model_path: str = ""
    positives: int = 0
    negatives: int = 0
    inferred: int = 0
    set_aside_known: int = 0
    newly_found: int = 0
    total_rts: int = 0
    reviewers: str = ""
    review_hours: float = 0.0
    train_seconds: float = 0.0
    infer_seconds: float = 0.0
    started_at: str = ""
    finished_at: str = ""
    simulated: bool = False
    notes: str = ""


TABLE1_COLUMNS = (
    ("iteration", "Iteration"),
    ("positives", "Training RTSs"),
    ("negatives", "Training non-RTSs"),
    ("inferred", "Candidates inferred"),
    ("set_aside_known", "Set aside as known"),
    ("newly_found", "Newly found RTSs"),
    ("total_rts", "Total RTSs"),
    ("reviewers", "Reviewers"),
    ("review_hours", "Review hours"),
    ("notes", "Notes"),
)


def _accepted_boundaries(conn) -> dict[int, tuple[bytes, str | None, str]]:
    """candidate id -> (reviewed boundary blob, initiation period, reviewers) of accepted candidates.

    The final decision's boundary wins; else the latest accepting review's.
    """
    rows = conn.execute(
        "SELECT r.candidate_id, r.geom, r.initiation_period, r.reviewer, r.is_final, r.decision "
        "FROM reviews r JOIN candidates c ON c.fid = r.candidate_id WHERE c.status = 'accepted' "
        "ORDER BY r.candidate_id, r.is_final, r.decided_at"
    ).fetchall()
    chosen: dict[int, tuple[bytes, str | None, str]] = {}
    reviewers: dict[int, set[str]] = {}
    for row in rows:
        reviewers.setdefault(row["candidate_id"], set()).add(row["reviewer"])
        if row["decision"] == "accepted":
            chosen[row["candidate_id"]] = (row["geom"], row["initiation_period"], "")
    return {
        fid: (blob, period, ", ".join(sorted(reviewers[fid]))) for fid, (blob, period, _) in chosen.items()
    }


def promote_accepted(project: MappingProject, iteration: int) -> int:
    """Add every accepted, not yet promoted candidate to the positives; returns how many."""
    with project.connection() as conn, gpkg.transaction(conn):
        done = {
            r[0]
            for r in conn.execute(
                "SELECT candidate_id FROM training_positives WHERE candidate_id IS NOT NULL"
            )
        }
        rows = [
            (blob, iteration, "review", fid, period, gpkg.utc_now())
            for fid, (blob, period, _) in _accepted_boundaries(conn).items()
            if fid not in done
        ]
        gpkg.insert_rows(
            conn,
            "training_positives",
            ("geom", "iteration_added", "source", "candidate_id", "initiation_period", "added_at"),
            rows,
        )
        if rows:
            gpkg.refresh_extent(conn, "training_positives")
            gpkg.touch(conn, "training_positives")
    return len(rows)


def add_positives(project: MappingProject, features: FeatureSet, iteration: int, source: str) -> int:
    """Add known RTS polygons (e.g. the initial training set) to the positives."""
    features = features.to_crs(project.crs)
    attributes = features.attributes or [{}] * len(features)
    rows = [
        (
            gpkg.encode_geometry(as_multipolygon(g), project.srs_id),
            iteration,
            source,
            attributes[i].get("initiation_period"),
            gpkg.utc_now(),
        )
        for i, g in enumerate(features.geometries)
        if g is not None and not g.is_empty
    ]
    with project.connection() as conn, gpkg.transaction(conn):
        gpkg.insert_rows(
            conn,
            "training_positives",
            ("geom", "iteration_added", "source", "initiation_period", "added_at"),
            rows,
        )
        gpkg.refresh_extent(conn, "training_positives")
    return len(rows)


def add_negatives(project: MappingProject, candidate_ids: list[int], iteration: int) -> int:
    """Add the chosen (rejected) candidates to the negatives; returns how many were new."""
    with project.connection() as conn, gpkg.transaction(conn):
        done = {r[0] for r in conn.execute("SELECT candidate_id FROM training_negatives")}
        rows = []
        for fid in candidate_ids:
            if fid in done:
                continue
            row = conn.execute("SELECT geom, status FROM candidates WHERE fid = ?", (fid,)).fetchone()
            if row is None or row["status"] != "rejected":
                continue
            rows.append((row["geom"], iteration, "review", fid, gpkg.utc_now()))
        gpkg.insert_rows(
            conn,
            "training_negatives",
            ("geom", "iteration_added", "source", "candidate_id", "added_at"),
            rows,
        )
        if rows:
            gpkg.refresh_extent(conn, "training_negatives")
    return len(rows)


def known_polygons(project: MappingProject) -> FeatureSet:
    """What a new inference sets aside: confirmed RTSs and every candidate already reviewed."""
    positives = project.features("training_positives")
    reviewed = project.features("candidates", "status != 'pending'")
    return FeatureSet(positives.geometries + reviewed.geometries, [], project.crs)


def count(project: MappingProject, table: str) -> int:
    with project.connection() as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {gpkg.quoted(table)}").fetchone()[0]  # noqa: S608


def review_summary(project: MappingProject, run_id: str) -> tuple[str, float]:
    """Reviewers (comma-separated) and hours spent reviewing one run's candidates."""
    with project.connection() as conn:
        rows = conn.execute(
            "SELECT r.reviewer, r.seconds_spent FROM reviews r JOIN candidates c ON c.fid = r.candidate_id "
            "WHERE c.run_id = ?",
            (run_id,),
        ).fetchall()
    reviewers = ", ".join(sorted({r["reviewer"] for r in rows}))
    return reviewers, round(sum(r["seconds_spent"] or 0 for r in rows) / 3600, 3)


def record_iteration(project: MappingProject, record: IterationRecord) -> None:
    values = asdict(record)
    values["simulated"] = int(record.simulated)
    names = list(values)
    with project.connection() as conn, gpkg.transaction(conn):
        conn.execute("DELETE FROM iterations WHERE iteration = ?", (record.iteration,))
        conn.execute(
            f"INSERT INTO iterations ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",  # noqa: S608
            [values[n] for n in names],
        )


def iterations(project: MappingProject) -> list[IterationRecord]:
    wanted = [f.name for f in fields(IterationRecord)]
    with project.connection() as conn:
        rows = conn.execute(f"SELECT {', '.join(wanted)} FROM iterations ORDER BY iteration").fetchall()  # noqa: S608
    return [IterationRecord(**{k: row[k] for k in wanted}) for row in rows]


def table1_rows(project: MappingProject) -> list[dict]:
    return [{label: getattr(r, key) for key, label in TABLE1_COLUMNS} for r in iterations(project)]


def table1_markdown(project: MappingProject) -> str:
    rows = table1_rows(project)
    labels = [label for _, label in TABLE1_COLUMNS]
    lines = ["| " + " | ".join(labels) + " |", "|" + "---|" * len(labels)]
    for row in rows:
        lines.append("| " + " | ".join(str(row[label]) for label in labels) + " |")
    if any(r.simulated for r in iterations(project)):
        lines.append("")
        lines.append("SIMULATION: decisions were made by a simulated reviewer from the synthetic truth.")
    return "\n".join(lines) + "\n"


def write_table1(project: MappingProject, csv_path: str | os.PathLike, md_path: str | os.PathLike) -> None:
    rows = table1_rows(project)
    Path(csv_path).parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, [label for _, label in TABLE1_COLUMNS])
        writer.writeheader()
        writer.writerows(rows)
    Path(md_path).write_text(table1_markdown(project), encoding="utf-8")
