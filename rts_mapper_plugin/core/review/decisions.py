"""Reviewing candidates: the queue a reviewer steps through, and decisions that are never lost.

Each decision is written in its own transaction the moment it is made: the reviewer's row in
``reviews`` (one per candidate, reviewer and final flag: a second decision by the same person
replaces the first, another person's decision is kept beside it), a line in the append-only
``review_log``, and the candidate's ``status``. A status is the reviewers' shared decision, or
``conflict`` when they disagree, or the final decision once someone has resolved a conflict.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

from .. import gpkg
from ..errors import RtsMapperError
from ..project.store import CRITERIA, DECISIONS, MappingProject, initiation_periods
from ..vectors import FeatureSet, as_multipolygon
from .ranking import LEARNING_ORDERS

ORDERS = ("id", "probability", "area", "road", *LEARNING_ORDERS)
# What a reviewer steps through: every candidate, the pending ones, those this reviewer has not
# decided, or the conflicts (where a decision is the final one that settles them).
SHOWS = ("all", "pending", "mine", "conflict")
CRITERIA_NAMES = tuple(name for name, _ in CRITERIA)


@dataclass
class Decision:
    """One reviewer's judgement of one candidate (see the paper's four criteria)."""

    candidate_id: int
    reviewer: str
    decision: str
    probability: int | None = None
    initiation_period: str | None = None
    criteria: dict[str, bool] = field(default_factory=dict)
    note: str = ""
    seconds_spent: float | None = None
    geometry: BaseGeometry | None = None  # the reviewed boundary; None: the candidate's own
    edited: bool = False
    is_final: bool = False
    outline_before: BaseGeometry | None = None  # the candidate's outline before an edit (for undo)


def status_from(decisions: list[tuple[str, bool]]) -> str:
    """A candidate's status from its (decision, is_final) rows."""
    finals = [d for d, final in decisions if final]
    if finals:
        return finals[-1]
    distinct = {d for d, _ in decisions}
    if not distinct:
        return "pending"
    return distinct.pop() if len(distinct) == 1 else "conflict"


def _validate(decision: Decision, write) -> None:
    if decision.decision not in DECISIONS:
        raise RtsMapperError(f"a decision is one of {', '.join(DECISIONS)}, not {decision.decision!r}")
    if not decision.reviewer.strip():
        raise RtsMapperError("say who you are: a decision needs a reviewer name")
    if decision.probability is not None and not 0 <= decision.probability <= 100:
        raise RtsMapperError(f"a probability is 0-100 %, not {decision.probability}")
    unknown = set(decision.criteria) - set(CRITERIA_NAMES)
    if unknown:
        raise RtsMapperError(f"unknown criteria: {', '.join(sorted(unknown))}")
    if decision.initiation_period:
        periods = initiation_periods([r[0] for r in write.read("SELECT year FROM years")])
        if periods and decision.initiation_period not in periods:
            raise RtsMapperError(
                f"initiation period {decision.initiation_period!r} is not one of {', '.join(periods)}"
            )


def _log_line(values: dict, criteria: dict[str, bool], when: str, action: str) -> dict:
    """The review_log line of a review row's values: what the row is after ``action``."""
    return {
        "action": action,
        "seconds_spent": values["seconds_spent"],
        "boundary": values["geom"],
        "candidate_id": values["candidate_id"],
        "reviewer": values["reviewer"],
        "decision": values["decision"],
        "probability": values["probability"],
        "initiation_period": values["initiation_period"],
        "criteria": json.dumps(criteria),
        "note": values["note"],
        "edited": values["edited"],
        "is_final": values["is_final"],
        "logged_at": when,
    }


def record_decision(project: MappingProject, decision: Decision) -> str:
    """Write ``decision`` at once, in one transaction; returns the candidate's new status."""
    now = gpkg.utc_now()
    criteria = {name: bool(decision.criteria.get(name, False)) for name in CRITERIA_NAMES}
    with project.writing() as write:
        _validate(decision, write)
        rows = write.read("SELECT geom FROM candidates WHERE fid = ?", (decision.candidate_id,))
        if not rows:
            raise RtsMapperError(f"there is no candidate {decision.candidate_id}", project.path)
        if decision.geometry is not None:
            blob = gpkg.encode_geometry(as_multipolygon(decision.geometry), project.srs_id)
        else:
            blob = rows[0]["geom"]
        values = {
            "geom": blob,
            "candidate_id": decision.candidate_id,
            "reviewer": decision.reviewer.strip(),
            "decision": decision.decision,
            "probability": decision.probability,
            "initiation_period": decision.initiation_period or None,
            **{name: int(value) for name, value in criteria.items()},
            "note": decision.note or None,
            "decided_at": now,
            "seconds_spent": decision.seconds_spent,
            "is_final": int(decision.is_final),
            "edited": int(decision.edited),
        }
        write.put_review(values)
        line = _log_line(values, criteria, now, "decision")
        if decision.edited and decision.outline_before is not None:
            line["outline_before"] = gpkg.encode_geometry(
                as_multipolygon(decision.outline_before), project.srs_id
            )
        write.log_review(line)
        status = refresh_status(write, decision.candidate_id)
    return status


def refresh_status(write, candidate_id: int) -> str:
    """Set a candidate's status from its decisions as they are now (inside ``write``)."""
    decided = write.read(
        "SELECT decision, is_final FROM reviews WHERE candidate_id = ? ORDER BY decided_at", (candidate_id,)
    )
    status = status_from([(r["decision"], bool(r["is_final"])) for r in decided])
    write.set_status(candidate_id, status)
    return status


def update_note(
    project: MappingProject, candidate_id: int, reviewer: str, note: str, is_final: bool = False
) -> bool:
    """Change the note of a decision already made, nothing else (its boundary, criteria and time
    stay); logged like a decision. False when ``reviewer`` has not decided ``candidate_id`` yet
    (the note then waits in the form for the decision)."""
    with project.writing() as write:
        rows = write.read(
            "SELECT * FROM reviews WHERE candidate_id = ? AND reviewer = ? AND is_final = ?",
            (candidate_id, reviewer.strip(), int(is_final)),
        )
        if not rows:
            return False
        row = rows[0]
        write.set_review_note(row["fid"], note or None)
        values = {**dict(row), "note": note or None}
        write.log_review(
            _log_line(values, {name: bool(row[name]) for name in CRITERIA_NAMES}, gpkg.utc_now(), "note")
        )
    return True


@dataclass(frozen=True)
class ReviewSession:
    """Where a reviewer was: kept in the project, so a crash or an unsaved .qgz loses nothing."""

    run_id: str | None  # None: every candidate set
    show: str = "all"
    order_by: str = "id"


def save_review_session(project: MappingProject, reviewer: str, session: ReviewSession) -> None:
    with project.writing() as write:
        write.save_review_session(reviewer.strip(), session.run_id, session.show, session.order_by)


def review_session(project: MappingProject, reviewer: str) -> ReviewSession | None:
    """The reviewer's last candidate set, filter and order in this project (None: never reviewed)."""
    with project.connection() as conn:
        row = conn.execute(
            "SELECT run_id, show, order_by FROM review_sessions WHERE reviewer = ?", (reviewer.strip(),)
        ).fetchone()
    if row is None:
        return None
    return ReviewSession(row["run_id"], row["show"] or "all", row["order_by"] or "id")


def decisions_of(project: MappingProject, candidate_ids: list[int] | None = None) -> list[dict]:
    """Every stored decision (rows of ``reviews`` without geometry), optionally for some candidates."""
    with project.connection() as conn:
        rows = conn.execute("SELECT * FROM reviews ORDER BY candidate_id, reviewer, is_final").fetchall()
    wanted = None if candidate_ids is None else set(candidate_ids)
    return [
        {k: row[k] for k in row.keys() if k != "geom"}  # noqa: SIM118
        for row in rows
        if wanted is None or row["candidate_id"] in wanted
    ]


def reviewed_boundaries(project: MappingProject) -> dict[int, dict[str, BaseGeometry]]:
    """candidate id -> {reviewer: boundary} for the non-final decisions."""
    with project.connection() as conn:
        rows = conn.execute("SELECT candidate_id, reviewer, geom FROM reviews WHERE is_final = 0").fetchall()
    result: dict[int, dict[str, BaseGeometry]] = {}
    for row in rows:
        result.setdefault(row["candidate_id"], {})[row["reviewer"]] = gpkg.decode_geometry(row["geom"])
    return result


# -- the queue a reviewer steps through --
@dataclass
class QueueItem:
    fid: int
    status: str
    area_m2: float
    mean_prob: float
    geometry: BaseGeometry
    road_distance_m: float | None = None
    max_prob: float | None = None
    perimeter_m: float | None = None
    expected: float | None = None  # the project's predicted chance of acceptance (yield, doubt)
    why: str = ""  # why it is where it is in the queue (yield, doubt)


def review_queue(
    project: MappingProject,
    run_id: str | None = None,
    order: str = "id",
    roads: FeatureSet | None = None,
    statuses: tuple[str, ...] | None = None,
    near_road_m: float | None = None,
) -> list[QueueItem]:
    """The candidates to step through, filtered and ordered.

    Args:
        run_id: one run's candidates (None: all).
        order: ``id``; ``probability`` or ``area`` (largest first); ``road`` (nearest first);
            ``yield`` (likeliest slump first) or ``doubt`` (least sure first), both learned from
            the project's decisions so far (:mod:`.ranking`), undecided candidates first.
        roads: a road / railway layer; needed for ``order="road"`` and ``near_road_m``.
        statuses: keep only these statuses (e.g. ``("pending",)``).
        near_road_m: keep only candidates within this distance of a road.
    """
    if order not in ORDERS:
        raise RtsMapperError(f"order by one of {', '.join(ORDERS)}, not {order!r}")
    if (order == "road" or near_road_m is not None) and roads is None:
        raise RtsMapperError("ordering or filtering by road distance needs a road layer")
    where, parameters = ("run_id = ?", (run_id,)) if run_id else ("", ())
    features = project.features("candidates", where, parameters)
    distances = road_distances(features.geometries, roads.to_crs(project.crs)) if roads is not None else None
    items = []
    for index, (geometry, attributes) in enumerate(zip(features.geometries, features.attributes)):
        if geometry is None or geometry.is_empty:
            continue
        item = QueueItem(
            fid=attributes["fid"],
            status=attributes["status"],
            area_m2=attributes["area_m2"] or geometry.area,
            mean_prob=attributes["mean_prob"] or 0.0,
            geometry=geometry,
            road_distance_m=None if distances is None else distances[index],
            max_prob=attributes["max_prob"],
            perimeter_m=attributes["perimeter_m"],
        )
        if statuses and item.status not in statuses:
            continue
        if near_road_m is not None and (item.road_distance_m is None or item.road_distance_m > near_road_m):
            continue
        items.append(item)
    if order in LEARNING_ORDERS:
        return rank_undecided_first(project, items, order)
    keys = {
        "id": lambda i: i.fid,
        "probability": lambda i: (-i.mean_prob, i.fid),
        "area": lambda i: (-i.area_m2, i.fid),
        "road": lambda i: (math.inf if i.road_distance_m is None else i.road_distance_m, i.fid),
    }
    return sorted(items, key=keys[order])


def rank_undecided_first(project: MappingProject, items: list[QueueItem], order: str) -> list[QueueItem]:
    """``items`` in a learning order: the candidates nobody has decided, ranked by what the
    project's decisions teach, then the decided ones (in the same order)."""
    from .ranking import learn, rank

    learned = learn(project)
    open_ = [i for i in items if i.status == "pending"]
    return rank(open_, order, learned) + rank([i for i in items if i.status != "pending"], order, learned)


def rerank_rest(project: MappingProject, queue: list[QueueItem], index: int, order: str) -> list[QueueItem]:
    """The queue with what comes after ``index`` ranked again (a decision has just taught the
    project something); what the reviewer has already passed stays where it was."""
    if order not in LEARNING_ORDERS:
        return queue
    return queue[: index + 1] + rank_undecided_first(project, queue[index + 1 :], order)


def road_distances(geometries: list[BaseGeometry], roads: FeatureSet) -> list[float | None]:
    """Distance (CRS units) from each geometry to the nearest road line; None without roads."""
    lines = [g for g in roads.geometries if g is not None and not g.is_empty]
    if not lines:
        return [None] * len(geometries)
    tree = STRtree(lines)
    result: list[float | None] = []
    for geometry in geometries:
        if geometry is None or geometry.is_empty:
            result.append(None)
            continue
        nearest = tree.nearest(geometry)
        result.append(float(geometry.distance(lines[int(nearest)])))
    return result


# -- progress --
@dataclass
class Progress:
    total: int
    reviewed_by_me: int
    per_status: dict[str, int]
    rate_per_hour: float | None  # this reviewer's decisions per hour of reviewing

    def summary(self) -> str:
        statuses = ", ".join(f"{n} {s}" for s, n in self.per_status.items() if n)
        rate = f"; {self.rate_per_hour:.0f} per hour" if self.rate_per_hour else ""
        return f"{self.reviewed_by_me} / {self.total} reviewed ({statuses}){rate}"


def review_progress(project: MappingProject, candidate_ids: list[int], reviewer: str) -> Progress:
    wanted = set(candidate_ids)
    with project.connection() as conn:
        statuses = conn.execute("SELECT fid, status FROM candidates").fetchall()
        mine = conn.execute(
            "SELECT candidate_id, seconds_spent, decided_at FROM reviews WHERE reviewer = ? AND is_final = 0",
            (reviewer,),
        ).fetchall()
    counts = Counter(r["status"] for r in statuses if r["fid"] in wanted)
    mine = [r for r in mine if r["candidate_id"] in wanted]
    seconds = sum(r["seconds_spent"] or 0.0 for r in mine)
    if seconds <= 0 and len(mine) > 1:  # no timings recorded: use the span of the decisions
        stamps = sorted(datetime.fromisoformat(r["decided_at"].replace("Z", "+00:00")) for r in mine)
        seconds = (stamps[-1] - stamps[0]).total_seconds()
    rate = len(mine) / (seconds / 3600) if seconds > 0 else None
    ordered = {s: counts.get(s, 0) for s in ("pending", *DECISIONS, "conflict")}
    return Progress(len(wanted), len(mine), ordered, rate)


def my_decisions(project: MappingProject, reviewer: str) -> dict[int, dict]:
    """candidate id -> this reviewer's (non-final) decision row."""
    return {
        row["candidate_id"]: row
        for row in decisions_of(project)
        if row["reviewer"] == reviewer and not row["is_final"]
    }


def decides_finally(show: str) -> bool:
    """A decision made while stepping through the conflicts settles them: it is the final one."""
    return show == "conflict"


def queue_for(
    project: MappingProject,
    reviewer: str,
    show: str = "all",
    run_id: str | None = None,
    order: str = "id",
    roads: FeatureSet | None = None,
    near_road_m: float | None = None,
) -> tuple[list[QueueItem], int]:
    """What ``reviewer`` steps through with ``show`` (one of :data:`SHOWS`), and where to start:
    the first candidate this reviewer has not decided."""
    if show not in SHOWS:
        raise RtsMapperError(f"show one of {', '.join(SHOWS)}, not {show!r}")
    queue = review_queue(
        project,
        run_id,
        order=order,
        roads=roads,
        statuses={"pending": ("pending",), "conflict": ("conflict",)}.get(show),
        near_road_m=near_road_m,
    )
    decided = set(my_decisions(project, reviewer.strip()))
    if show == "mine":
        queue = [item for item in queue if item.fid not in decided]
    return queue, resume_index(queue, decided)


def next_undecided(queue: list[QueueItem], index: int, decided: set[int]) -> int | None:
    """The next position after ``index`` (wrapping round) whose candidate is not in ``decided``."""
    for offset in range(1, len(queue) + 1):
        position = (index + offset) % len(queue)
        if queue[position].fid not in decided:
            return position
    return None


def resume_index(queue: list[QueueItem], decided: set[int]) -> int:
    """Where a reviewer picks up: the first candidate in the queue not yet decided (else 0)."""
    for index, item in enumerate(queue):
        if item.fid not in decided:
            return index
    return 0
