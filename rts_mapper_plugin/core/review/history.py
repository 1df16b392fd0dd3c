"""A reviewer's undo, and a candidate's history, from the append-only ``review_log``.

Every decision, note and boundary edit is a line of the log holding what the reviewer's row
became (decision, form values, boundary) and, for an edit, the candidate's outline before it.
Undo takes back the reviewer's latest line still in effect: the row goes back to what the line
before it for the same candidate said (or goes, if there was none), an edited outline goes back
to what it was, the candidate's status follows, and the undo itself is a new line of the log
(``undoes`` = the line taken back). One transaction, saved the moment it is made; the log only
grows, so every step can be read back later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .. import gpkg
from ..errors import RtsMapperError
from ..project.store import MappingProject
from .decisions import CRITERIA_NAMES, refresh_status

STATE = ("decision", "probability", "initiation_period", "note", "edited", "is_final", "seconds_spent")


@dataclass(frozen=True)
class Undone:
    candidate_id: int
    reviewer: str
    took_back: str  # what the undone line did: "accepted", "a note", "accepted, boundary edited"
    now: str | None  # the reviewer's decision after the undo (None: undecided again)
    outline_restored: bool  # an edited outline went back to the candidate's earlier one
    status: str  # the candidate's status after the undo


@dataclass(frozen=True)
class HistoryLine:
    when: str
    reviewer: str
    action: str  # decision, note, undo
    decision: str | None
    edited: bool
    is_final: bool
    note: str | None
    undone: bool  # a later undo took this line back

    def text(self) -> str:
        final = " (final)" if self.is_final else ""
        if self.action == "undo":
            what = f"undo → {self.decision or 'undecided'}"
        elif self.action == "note":
            what = f"note: {self.note or '(removed)'}"
        else:
            what = f"{self.decision}{', boundary edited' if self.edited else ''}"
        return f"{self.when[:16].replace('T', ' ')} {self.reviewer}{final}: {what}{' [undone]' if self.undone else ''}"


def _in_effect(lines: list) -> list:
    """The lines no undo has taken back (undo lines themselves excluded), oldest first."""
    undone = {line["undoes"] for line in lines if line["action"] == "undo"}
    return [line for line in lines if line["action"] != "undo" and line["fid"] not in undone]


def undo_last(project: MappingProject, reviewer: str) -> Undone | None:
    """Take back ``reviewer``'s latest decision, note or boundary edit still in effect; None when
    there is nothing left to undo."""
    reviewer = reviewer.strip()
    if not reviewer:
        raise RtsMapperError("say who you are: an undo takes back your own decisions")
    with project.writing() as write:
        lines = write.read("SELECT * FROM review_log WHERE reviewer = ? ORDER BY fid", (reviewer,))
        effective = _in_effect([_normalised(line) for line in lines])
        if not effective:
            return None
        last = effective[-1]
        key = (last["candidate_id"], last["is_final"])
        before = [line for line in effective[:-1] if (line["candidate_id"], line["is_final"]) == key]
        row = write.read(
            "SELECT fid FROM reviews WHERE candidate_id = ? AND reviewer = ? AND is_final = ?",
            (last["candidate_id"], reviewer, int(last["is_final"])),
        )
        outline_restored = _restore_outline(write, last)
        now = gpkg.utc_now()
        if before:
            previous = before[-1]
            geometry = previous["boundary"]  # lines older than undo have none: the outline
            if geometry is None:
                geometry = write.read("SELECT geom FROM candidates WHERE fid = ?", (last["candidate_id"],))[
                    0
                ]["geom"]
            values = {
                "geom": geometry,
                "candidate_id": last["candidate_id"],
                "reviewer": reviewer,
                **{name: previous[name] for name in STATE},
                **{name: int(previous["criteria"].get(name, False)) for name in CRITERIA_NAMES},
                "decided_at": previous["logged_at"],
            }
            write.put_review(values)
            log_state = {**{name: previous[name] for name in STATE}, "boundary": geometry}
            criteria = previous["criteria"]
        else:
            if row:
                write.delete_review(row[0]["fid"])
            log_state = dict.fromkeys(STATE) | {"is_final": last["is_final"], "boundary": None}
            criteria = {}
        write.log_review(
            {
                "candidate_id": last["candidate_id"],
                "reviewer": reviewer,
                **log_state,
                "criteria": json.dumps(criteria),
                "logged_at": now,
                "action": "undo",
                "undoes": last["fid"],
            }
        )
        status = refresh_status(write, last["candidate_id"])
    took_back = "a note" if last["action"] == "note" else last["decision"]
    if last["action"] != "note" and last["edited"] and last["outline_before"] is not None:
        took_back += ", boundary edited"
    return Undone(
        last["candidate_id"],
        reviewer,
        took_back,
        log_state["decision"],
        outline_restored,
        status,
    )


def _restore_outline(write, line: dict) -> bool:
    """Put back the candidate's outline an undone edit replaced, unless someone changed it since
    (their edit stays: it is theirs to undo)."""
    if line["action"] == "note" or line["outline_before"] is None:
        return False
    current = write.read("SELECT geom FROM candidates WHERE fid = ?", (line["candidate_id"],))
    if not current or line["boundary"] is None:
        return False
    now, edited = (gpkg.decode_geometry(blob) for blob in (current[0]["geom"], line["boundary"]))
    if now is None or edited is None or not now.equals(edited):  # QGIS and we encode differently
        return False
    write.set_candidate_outline(line["candidate_id"], line["outline_before"])
    return True


def _normalised(line) -> dict:
    """A log line as a dict, lines older than undo read as decisions."""
    values = dict(line)
    values["action"] = values.get("action") or "decision"
    values["is_final"] = bool(values.get("is_final"))
    try:
        values["criteria"] = json.loads(values.get("criteria") or "{}")
    except ValueError:
        values["criteria"] = {}
    return values


def candidate_history(project: MappingProject, candidate_id: int) -> list[HistoryLine]:
    """Everything every reviewer did to a candidate, oldest first."""
    with project.connection() as conn:
        lines = [
            _normalised(line)
            for line in conn.execute(
                "SELECT * FROM review_log WHERE candidate_id = ? ORDER BY fid", (candidate_id,)
            )
        ]
    undone = {line["undoes"] for line in lines if line["action"] == "undo"}
    return [
        HistoryLine(
            when=line["logged_at"],
            reviewer=line["reviewer"],
            action=line["action"],
            decision=line["decision"],
            edited=bool(line["edited"]),
            is_final=line["is_final"],
            note=line["note"],
            undone=line["fid"] in undone,
        )
        for line in lines
    ]
