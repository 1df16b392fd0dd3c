"""Undo and the audit log: a reviewer takes back decisions, notes and boundary edits one by one,
each undo saved at once and itself a line of the append-only log; a candidate's history reads
back every step; another reviewer's work is never taken back."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from shapely.geometry import box

from rts_mapper_plugin.core import gpkg
from rts_mapper_plugin.core.project.store import MappingProject
from rts_mapper_plugin.core.review.decisions import Decision, decisions_of, record_decision, update_note
from rts_mapper_plugin.core.review.history import candidate_history, undo_last
from tests.conftest import assert_valid_geopackage
from tests.data.fixtures import copy_project, review_project

SCHEMA1 = Path(__file__).parents[1] / "data" / "projects" / "schema1"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return review_project(tmp_path_factory.mktemp("undo"), size=300)


@pytest.fixture
def project(prepared, tmp_path):
    return copy_project(prepared[0], tmp_path / "desk")


def first_ids(project, n=2) -> list[int]:
    return [a["fid"] for a in project.features("candidates").attributes][:n]


def mine(project, reviewer="ana") -> dict[int, dict]:
    return {d["candidate_id"]: d for d in decisions_of(project) if d["reviewer"] == reviewer}


def status(project, fid) -> str:
    with project.connection() as conn:
        return conn.execute("SELECT status FROM candidates WHERE fid = ?", (fid,)).fetchone()[0]


def outline(project, fid):
    with project.connection() as conn:
        return gpkg.decode_geometry(
            conn.execute("SELECT geom FROM candidates WHERE fid = ?", (fid,)).fetchone()[0]
        )


def test_undo_takes_back_decisions_one_by_one(project):
    a, b = first_ids(project)
    record_decision(
        project, Decision(a, "ana", "accepted", probability=80, criteria={"headwall_highest": True})
    )
    record_decision(project, Decision(b, "ana", "rejected"))
    record_decision(project, Decision(a, "ana", "unsure", note="second look"))  # she changed her mind
    record_decision(project, Decision(a, "bo", "accepted"))  # someone else's: never undone by ana

    undone = undo_last(project, "ana")
    assert (undone.candidate_id, undone.took_back, undone.now) == (a, "unsure", "accepted")
    row = mine(project)[a]
    assert (row["decision"], row["probability"], row["headwall_highest"], row["note"]) == (
        "accepted",
        80,
        1,
        None,
    )
    assert status(project, a) == "accepted", "ana and bo agree again"

    undone = undo_last(project, "ana")
    assert (undone.candidate_id, undone.now, undone.status) == (b, None, "pending")
    assert b not in mine(project), "undecided again"

    assert undo_last(project, "ana").candidate_id == a
    assert mine(project) == {} and status(project, a) == "accepted", "bo's decision stays"
    assert undo_last(project, "ana") is None, "nothing left to undo"
    assert mine(project, "bo")[a]["decision"] == "accepted"

    # every step is in the log, in order, the undone ones marked
    lines = [line.text().split(" ", 2)[2] for line in candidate_history(project, a)]
    assert lines == [
        "ana: accepted [undone]",
        "ana: unsure [undone]",
        "bo: accepted",
        "ana: undo → accepted",
        "ana: undo → undecided",
    ]


def test_an_undo_is_saved_the_moment_it_is_made(project):
    (a,) = first_ids(project, 1)
    record_decision(project, Decision(a, "ana", "accepted"))
    undo_last(project, "ana")
    again = MappingProject.open(project.path)  # another connection, as after a crash
    assert mine(again) == {} and status(again, a) == "pending"


def test_a_boundary_edit_is_undone_with_its_decision(project):
    (a,) = first_ids(project, 1)
    before = outline(project, a)
    edited = before.buffer(8.0)
    with project.writing() as write:  # what the dock's layer commit does to the outline
        write.set_candidate_outline(a, gpkg.encode_geometry(edited, project.srs_id))
    record_decision(
        project, Decision(a, "ana", "accepted", geometry=edited, edited=True, outline_before=before)
    )
    assert outline(project, a).equals(edited)
    undone = undo_last(project, "ana")
    assert undone.took_back == "accepted, boundary edited" and undone.outline_restored
    assert outline(project, a).equals(before) and mine(project) == {}
    assert_valid_geopackage(project.path)  # the log's geometry columns (BLOB) and all


def test_an_undo_leaves_an_outline_someone_edited_since(project):
    (a,) = first_ids(project, 1)
    before = outline(project, a)
    mine_edit, theirs = before.buffer(5.0), before.buffer(-2.0)
    with project.writing() as write:
        write.set_candidate_outline(a, gpkg.encode_geometry(mine_edit, project.srs_id))
    record_decision(
        project, Decision(a, "ana", "accepted", geometry=mine_edit, edited=True, outline_before=before)
    )
    with project.writing() as write:
        write.set_candidate_outline(a, gpkg.encode_geometry(theirs, project.srs_id))
    record_decision(
        project, Decision(a, "bo", "accepted", geometry=theirs, edited=True, outline_before=mine_edit)
    )
    assert not undo_last(project, "ana").outline_restored
    assert outline(project, a).equals(theirs), "bo's edit is bo's to undo"
    assert undo_last(project, "bo").outline_restored and outline(project, a).equals(mine_edit)


def test_a_note_is_undone_alone(project):
    (a,) = first_ids(project, 1)
    record_decision(project, Decision(a, "ana", "rejected", note="pond"))
    update_note(project, a, "ana", "a drained pond")
    undone = undo_last(project, "ana")
    assert (undone.took_back, undone.now) == ("a note", "rejected")
    assert mine(project)[a]["note"] == "pond"


def test_projects_from_before_undo_are_upgraded_and_their_old_decisions_undo(tmp_path):
    folder = shutil.copytree(SCHEMA1, tmp_path / "old")
    project = MappingProject.open(folder / "rts_project.gpkg")
    decided = {(d["candidate_id"], d["reviewer"]) for d in decisions_of(project)}
    reviewer = sorted(decided)[0][1]
    before = len([k for k in decided if k[1] == reviewer])
    undone = undo_last(project, reviewer)
    assert undone is not None, "old log lines read as decisions"
    left = {(d["candidate_id"], d["reviewer"]) for d in decisions_of(project) if d["reviewer"] == reviewer}
    assert len(left) <= before
    record_decision(project, Decision(1, "new", "accepted", geometry=box(0, 0, 1, 1)))
    assert candidate_history(project, 1)[-1].reviewer == "new"
