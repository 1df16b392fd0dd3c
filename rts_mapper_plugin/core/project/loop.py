"""The iterative loop of the paper: promote what reviewers accepted, retrain, infer, review only
what is new, and keep Table 1 (one row per iteration) in the project.

An iteration has two halves. :func:`start_iteration` trains (fine-tuning from the previous
iteration's model) on the project's positives and negatives, infers over the region setting
aside what is known, and records the first half of its Table 1 row. Reviewers then decide the
new candidates. :func:`close_iteration` promotes the accepted ones, with their reviewed (possibly
edited) boundaries, into ``training_positives``, adds the rejected candidates a reviewer picked
as representative false positives to ``training_negatives``, and completes the row.
What a new inference sets aside (the confirmed RTSs and every candidate already reviewed) is
``workflow.known_polygons``; the loop calls the workflow's steps, never the other way round.
"""

from __future__ import annotations

import csv
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from .. import gpkg
from ..defaults import MIN_AREA_M2
from ..errors import RtsMapperError
from ..model.inference import InferConfig
from ..model.training import TrainConfig, train_model
from ..progress import Feedback
from ..vectors import FeatureSet, as_multipolygon
from .store import MappingProject, record_values


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
    # read, not stored: what the completeness check of the iteration's run says is left
    unmapped: str = field(default="", metadata={"stored": False})


STORED = tuple(f.name for f in fields(IterationRecord) if f.metadata.get("stored", True))

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
    ("unmapped", "Still unmapped (95 % CI)"),
    ("notes", "Notes"),
)


def _accepted_boundaries(write) -> dict[int, tuple[bytes, str | None]]:
    """candidate id -> (reviewed boundary blob, initiation period) of accepted candidates.

    The final decision's boundary wins; else the latest accepting review's.
    """
    rows = write.read(
        "SELECT r.candidate_id, r.geom, r.initiation_period, r.is_final, r.decision "
        "FROM reviews r JOIN candidates c ON c.fid = r.candidate_id WHERE c.status = 'accepted' "
        "ORDER BY r.candidate_id, r.is_final, r.decided_at"
    )
    return {
        row["candidate_id"]: (row["geom"], row["initiation_period"])
        for row in rows
        if row["decision"] == "accepted"
    }


def promote_accepted(project: MappingProject, iteration: int) -> int:
    """Add every accepted, not yet promoted candidate to the positives; returns how many."""
    with project.writing() as write:
        done = {
            r[0]
            for r in write.read("SELECT candidate_id FROM training_positives WHERE candidate_id IS NOT NULL")
        }
        return write.add_training(
            "training_positives",
            [
                {
                    "geom": blob,
                    "iteration_added": iteration,
                    "source": "review",
                    "candidate_id": fid,
                    "initiation_period": period,
                    "added_at": gpkg.utc_now(),
                }
                for fid, (blob, period) in _accepted_boundaries(write).items()
                if fid not in done
            ],
        )


def add_positives(project: MappingProject, features: FeatureSet, iteration: int, source: str) -> int:
    """Add known RTS polygons (e.g. the initial training set) to the positives."""
    features = features.to_crs(project.crs)
    attributes = features.attributes or [{}] * len(features)
    srs_id = project.srs_id
    rows = [
        {
            "geom": gpkg.encode_geometry(as_multipolygon(g), srs_id),
            "iteration_added": iteration,
            "source": source,
            "initiation_period": attributes[i].get("initiation_period"),
            "added_at": gpkg.utc_now(),
        }
        for i, g in enumerate(features.geometries)
        if g is not None and not g.is_empty
    ]
    with project.writing() as write:
        return write.add_training("training_positives", rows)


def add_negatives(project: MappingProject, candidate_ids: list[int], iteration: int) -> int:
    """Add the chosen (rejected) candidates to the negatives; returns how many were new."""
    with project.writing() as write:
        done = {r[0] for r in write.read("SELECT candidate_id FROM training_negatives")}
        rows = []
        for fid in candidate_ids:
            if fid in done:
                continue
            found = write.read("SELECT geom, status FROM candidates WHERE fid = ?", (fid,))
            if not found or found[0]["status"] != "rejected":
                continue
            rows.append(
                {
                    "geom": found[0]["geom"],
                    "iteration_added": iteration,
                    "source": "review",
                    "candidate_id": fid,
                    "added_at": gpkg.utc_now(),
                }
            )
        return write.add_training("training_negatives", rows)


def count(project: MappingProject, table: str) -> int:
    with project.connection() as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {gpkg.quoted(table)}").fetchone()[0]  # noqa: S608


def review_summary(project: MappingProject, iteration: int) -> tuple[str, float]:
    """Reviewers (comma-separated) and hours spent reviewing one iteration's candidates."""
    with project.connection() as conn:
        rows = conn.execute(
            "SELECT r.reviewer, r.seconds_spent FROM reviews r JOIN candidates c ON c.fid = r.candidate_id "
            "JOIN runs ON runs.run_id = c.run_id WHERE runs.iteration = ?",
            (iteration,),
        ).fetchall()
    reviewers = ", ".join(sorted({r["reviewer"] for r in rows}))
    return reviewers, round(sum(r["seconds_spent"] or 0 for r in rows) / 3600, 3)


def record_iteration(project: MappingProject, record: IterationRecord) -> None:
    values = {k: v for k, v in asdict(record).items() if k in STORED}
    values["simulated"] = int(record.simulated)
    with project.writing() as write:
        write.put_iteration(values)


def iteration_record(project: MappingProject, iteration: int) -> IterationRecord | None:
    return next((r for r in iterations(project) if r.iteration == iteration), None)


def iterations(project: MappingProject) -> list[IterationRecord]:
    with project.connection() as conn:
        # sql-safe: the column names are the IterationRecord dataclass's own field names
        rows = conn.execute(f"SELECT {', '.join(STORED)} FROM iterations ORDER BY iteration").fetchall()  # noqa: S608
    records = [IterationRecord(**record_values(row)) for row in rows]
    _read_unmapped(project, records)
    return records


def _read_unmapped(project: MappingProject, records: list[IterationRecord]) -> None:
    """Each iteration's completeness estimate (core.review.completeness), where one was made."""
    from ..review.completeness import estimate

    runs = {}
    for run in project.runs():
        runs.setdefault(run.iteration, []).append(run.run_id)
    for record in records:
        for run_id in runs.get(record.iteration, []):
            result = estimate(project, run_id)
            if result is not None:
                record.unmapped = f"{result.count:.0f} ({result.count_low:.0f}-{result.count_high:.0f})"


# Table 1 columns known only once an iteration is closed (its candidates reviewed).
KNOWN_WHEN_CLOSED = ("newly_found", "total_rts", "reviewers", "review_hours")


def table1_cells(record: IterationRecord) -> list:
    """A Table 1 row as a table shows it: an iteration still in review reads "in review" where
    its newly found RTSs will be, and leaves the other columns known only at closing blank."""
    cells = []
    for key, _label in TABLE1_COLUMNS:
        value = getattr(record, key)
        if not record.finished_at and key in KNOWN_WHEN_CLOSED:
            value = "in review" if key == "newly_found" else ""
        cells.append(value)
    return cells


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


def fine_tuning(**changes) -> TrainConfig:
    """The iterations' training recipe: short runs on small chips that fine-tune the previous
    iteration's model (CPU-friendly); ``changes`` override single settings. ``init_model`` None:
    fine-tune from the last iteration's model, if any; the encoder counts for a first model only."""
    recipe = {"epochs": 6, "learning_rate": 5e-4, "crop_size": 192, "tile_size": 384}
    return TrainConfig(**{**recipe, **changes})


@dataclass
class IterationSettings:
    """How :func:`start_iteration` trains and infers: one TrainConfig and one InferConfig,
    carried unchanged from the Iterations dock (or the demo) to the core."""

    image: str  # the prepared image chips are cut from and inference runs over
    image_crs: str | None = None  # the CRS to assume when the image file has none (its layer's)
    year: int | None = None
    train: TrainConfig = field(default_factory=fine_tuning)
    infer: InferConfig = field(default_factory=lambda: InferConfig(min_area_m2=MIN_AREA_M2))
    chip_size: int = 256
    buffer_m: float = 150.0
    val_fraction: float = 0.15
    notes: str = ""


def previous_model(project: MappingProject) -> Path | None:
    """The model of the last iteration that has one (the next iteration fine-tunes from it)."""
    for record in reversed(iterations(project)):
        if record.model_path and project.resolve_path(record.model_path).is_file():
            return project.resolve_path(record.model_path)
    for run in reversed(project.runs()):
        if run.model_path and project.resolve_path(run.model_path).is_file():
            return project.resolve_path(run.model_path)
    return None


def starting_model(project: MappingProject, first_model: str | None) -> str | None:
    """The next iteration's ``TrainConfig.init_model``: None once an iteration has a model
    (:func:`start_iteration` then fine-tunes that one, whatever was chosen as the first model),
    else the first model chosen, which must exist (None: train a new model)."""
    if previous_model(project) is not None:
        return None
    if first_model and not Path(first_model).is_file():
        raise RtsMapperError("no such model file", first_model)
    return first_model or None


def open_iterations(project: MappingProject) -> list[int]:
    """Iterations whose candidates are out for review (inferred, not yet closed), oldest first.
    Usually one; several when inference ran more than once from the Inference dock."""
    closed = {r.iteration for r in iterations(project) if r.finished_at}
    inferred = sorted({r.iteration for r in project.runs() if r.iteration is not None})
    return [i for i in inferred if i not in closed]


def pending_count(project: MappingProject, iterations_: list[int]) -> int:
    """Candidates of these iterations nobody has decided yet."""
    with project.connection() as conn:
        return sum(
            conn.execute(
                "SELECT COUNT(*) FROM candidates c JOIN runs ON runs.run_id = c.run_id "
                "WHERE runs.iteration = ? AND c.status = 'pending'",
                (iteration,),
            ).fetchone()[0]
            for iteration in iterations_
        )


def train_iteration(
    project: MappingProject, iteration: int, settings: IterationSettings, feedback: Feedback | None = None
) -> tuple[Path, float]:
    """Cut chips from the project's positives and negatives and train the iteration's model
    (fine-tuned from the previous one); returns (model file, seconds)."""
    import time

    from ..model.chips import make_chips

    feedback = feedback or Feedback()
    positives = project.features("training_positives")
    if not len(positives):
        raise RtsMapperError("the project has no training positives yet: add known RTSs first", project.path)
    negatives = project.features("training_negatives")
    folder = project.path.resolve().parent
    started = time.monotonic()
    chips = make_chips(
        settings.image,
        positives,
        negatives if len(negatives) else None,
        folder / "work" / f"chips_{iteration}",
        size=settings.chip_size,
        buffer_m=settings.buffer_m,
        val_fraction=settings.val_fraction,
        feedback=feedback.scaled(0.0, 0.05),
        image_crs={settings.image: settings.image_crs} if settings.image_crs else None,
    )
    init = settings.train.init_model or previous_model(project)
    result = train_model(
        chips,
        folder / "models" / f"iteration_{iteration}.safetensors",
        replace(settings.train, init_model=str(init) if init else None),
        feedback=feedback.scaled(0.05, 1.0),
    )
    return result.model_path, time.monotonic() - started


def start_iteration(
    project: MappingProject,
    settings: IterationSettings,
    feedback: Feedback | None = None,
    train=train_iteration,
) -> IterationRecord:
    """Train, infer over ``settings.image`` setting aside everything known or reviewed, and record
    the first half of the iteration's Table 1 row (all of it when no candidate is left to review:
    the loop has converged). Nothing is recorded if it fails or is cancelled.

    ``train(project, iteration, settings, feedback)`` returns (model, seconds); tests pass a stub.
    """

    from .workflow import infer_into_project

    feedback = feedback or Feedback()
    waiting = open_iterations(project)
    if waiting:
        raise RtsMapperError(
            f"iteration {', '.join(map(str, waiting))} is still under review: close it before starting the next"
        )
    iteration = project.next_iteration()
    started = gpkg.utc_now()
    positives, negatives = count(project, "training_positives"), count(project, "training_negatives")
    model, train_seconds = train(project, iteration, settings, feedback.scaled(0.0, 0.8))
    run = infer_into_project(
        project.path,
        model,
        settings.image,
        settings.infer,
        iteration=iteration,
        year=settings.year,
        feedback=feedback.scaled(0.8, 1.0),
        image_crs=settings.image_crs,
    )
    record = IterationRecord(
        iteration=iteration,
        model_path=project.store_path(model),
        positives=positives,
        negatives=negatives,
        inferred=run.candidates,
        set_aside_known=run.set_aside_known,
        train_seconds=round(train_seconds, 1),
        infer_seconds=run.seconds,
        started_at=started,
        notes=settings.notes,
    )
    record_iteration(project, record)
    if run.candidates == 0:  # nothing to review: the iteration is over, and the loop has converged
        record = close_iteration(project, iteration)
    return record


def close_iteration(
    project: MappingProject,
    iteration: int,
    negatives: list[int] = (),
    simulated: bool = False,
    notes: str | None = None,
) -> IterationRecord:
    """Promote the iteration's accepted candidates, add the chosen rejected ones (those of this
    iteration among ``negatives``) as negatives and complete its Table 1 row (an iteration
    inferred from the Inference dock gets its row here)."""

    runs = [r for r in project.runs() if r.iteration == iteration]
    if not runs:
        raise RtsMapperError(f"iteration {iteration} has no inference run to close")
    promote_accepted(project, iteration)
    own = {a["fid"] for a in project.features("candidates", "iteration = ?", (iteration,)).attributes}
    add_negatives(project, [fid for fid in negatives if fid in own], iteration)
    record = iteration_record(project, iteration)
    if record is None:
        with project.connection() as conn:
            positives, negatives_before = (
                conn.execute(
                    # sql-safe: table is one of the two literal names this generator runs over
                    f"SELECT COUNT(*) FROM {table} WHERE iteration_added < ?",  # noqa: S608
                    (iteration,),
                ).fetchone()[0]
                for table in ("training_positives", "training_negatives")
            )
        record = IterationRecord(
            iteration=iteration,
            model_path=runs[-1].model_path,
            positives=positives,
            negatives=negatives_before,
            inferred=sum(r.candidates for r in runs),
            set_aside_known=sum(r.set_aside_known for r in runs),
            infer_seconds=round(sum(r.seconds for r in runs), 2),
            started_at=runs[0].started_at,
        )
    with project.connection() as conn:
        record.newly_found = conn.execute(
            "SELECT COUNT(*) FROM training_positives WHERE iteration_added = ? AND source = 'review'",
            (iteration,),
        ).fetchone()[0]
    record.total_rts = count(project, "training_positives")
    record.reviewers, record.review_hours = review_summary(project, iteration)
    record.finished_at = gpkg.utc_now()
    record.simulated = simulated or record.simulated
    if notes is not None:
        record.notes = notes
    record_iteration(project, record)
    return record


def rejected_candidates(project: MappingProject, iterations_: list[int]) -> FeatureSet:
    """These iterations' rejected candidates, most convincing first (highest mean probability):
    the ones a reviewer picks from as representative false positives."""
    marks = ", ".join("?" for _ in iterations_)
    rejected = project.features(
        "candidates",
        # only "?" placeholders are formatted in; the values go as parameters
        f"status = 'rejected' AND run_id IN (SELECT run_id FROM runs WHERE iteration IN ({marks}))",  # noqa: S608
        tuple(iterations_),
    )
    order = sorted(range(len(rejected)), key=lambda i: -(rejected.attributes[i]["mean_prob"] or 0.0))
    return FeatureSet(
        [rejected.geometries[i] for i in order], [rejected.attributes[i] for i in order], rejected.crs
    )
