"""Decisions, the review queue, progress, agreement and time-lapse export, on real GeoPackages."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from shapely.geometry import LineString, box

from rts_mapper_plugin.__main__ import main
from rts_mapper_plugin.core.errors import RtsMapperError
from rts_mapper_plugin.core.review.agreement import (
    cohen_kappa,
    decision_agreement,
    fleiss_kappa,
    polygon_agreement,
)
from rts_mapper_plugin.core.review.decisions import (
    Decision,
    decides_finally,
    decisions_of,
    my_decisions,
    next_undecided,
    queue_for,
    record_decision,
    resume_index,
    review_progress,
    review_queue,
    reviewed_boundaries,
    status_from,
)
from rts_mapper_plugin.core.review.timelapse import export_timelapses
from rts_mapper_plugin.core.vectors import FeatureSet
from tests.data.fixtures import copy_project, review_project

PEEL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real" / "peel"


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory):
    return review_project(tmp_path_factory.mktemp("review"))


@pytest.fixture
def project(reviewed, tmp_path):
    """A fresh copy of the review project for each test (decisions do not leak between tests)."""
    source, region, run_id = reviewed
    return copy_project(source, tmp_path / "copy"), region, run_id


def candidate_ids(project) -> list[int]:
    return [a["fid"] for a in project.features("candidates").attributes]


def test_a_decision_lands_with_every_field_and_sets_the_status(project):
    project, _, _ = project
    fid = candidate_ids(project)[0]
    status = record_decision(
        project,
        Decision(
            fid,
            "alice",
            "accepted",
            probability=80,
            initiation_period="2018-2019",
            criteria={"headwall_highest": True, "upslope_retreat": True},
            note="clear headwall",
            seconds_spent=4.2,
        ),
    )
    assert status == "accepted"
    with sqlite3.connect(project.path) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM reviews").fetchone()
        assert (row["reviewer"], row["decision"], row["probability"], row["initiation_period"]) == (
            "alice",
            "accepted",
            80,
            "2018-2019",
        )
        assert (row["headwall_highest"], row["colour_contrast"], row["upslope_retreat"]) == (1, 0, 1)
        assert row["note"] == "clear headwall" and row["seconds_spent"] == 4.2 and row["decided_at"]
        assert row["geom"] is not None, "the reviewed boundary is kept with the decision"
        assert conn.execute("SELECT status FROM candidates WHERE fid = ?", (fid,)).fetchone()[0] == "accepted"
        assert conn.execute("SELECT COUNT(*) FROM review_log").fetchone()[0] == 1


def test_same_reviewer_replaces_other_reviewer_is_kept_and_disagreement_is_a_conflict(project):
    project, _, _ = project
    fid = candidate_ids(project)[0]
    record_decision(project, Decision(fid, "alice", "rejected"))
    record_decision(project, Decision(fid, "alice", "accepted"))
    assert [(r["reviewer"], r["decision"]) for r in decisions_of(project)] == [("alice", "accepted")]
    assert record_decision(project, Decision(fid, "bob", "accepted")) == "accepted"
    assert record_decision(project, Decision(fid, "carol", "rejected")) == "conflict"
    assert len(decisions_of(project)) == 3, "no decision of another reviewer is overwritten"
    assert record_decision(project, Decision(fid, "alice", "rejected", is_final=True)) == "rejected"
    assert len(decisions_of(project)) == 4
    with sqlite3.connect(project.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM review_log").fetchone()[0] == 5, (
            "the log keeps every change"
        )


def test_bad_decisions_are_refused_and_leave_nothing(project):
    project, _, _ = project
    fid = candidate_ids(project)[0]
    for bad in (
        Decision(fid, "alice", "maybe"),
        Decision(fid, "  ", "accepted"),
        Decision(fid, "alice", "accepted", probability=120),
        Decision(fid, "alice", "accepted", initiation_period="1990-1991"),
        Decision(10_000, "alice", "accepted"),
    ):
        with pytest.raises(RtsMapperError):
            record_decision(project, bad)
    assert decisions_of(project) == []


def test_an_edited_boundary_is_stored_with_the_decision(project):
    project, _, _ = project
    fid = candidate_ids(project)[0]
    edited = box(0, 0, 10, 10)
    record_decision(project, Decision(fid, "alice", "accepted", geometry=edited, edited=True))
    stored = reviewed_boundaries(project)[fid]["alice"]
    assert stored.area == pytest.approx(100.0) and decisions_of(project)[0]["edited"] == 1


def test_queue_orders_filters_and_resumes(project):
    project, _region, run_id = project
    queue = review_queue(project, run_id)
    assert [i.fid for i in queue] == sorted(i.fid for i in queue)
    by_area = review_queue(project, run_id, order="area")
    assert [i.area_m2 for i in by_area] == sorted((i.area_m2 for i in by_area), reverse=True)
    by_probability = review_queue(project, run_id, order="probability")
    assert by_probability[0].mean_prob == 0.8 and by_probability[-1].mean_prob == 0.6
    road = FeatureSet(
        [LineString([(queue[0].geometry.centroid.x, 0), (queue[0].geometry.centroid.x, 1e8)])],
        [{}],
        project.crs,
    )
    by_road = review_queue(project, run_id, order="road", roads=road)
    assert by_road[0].road_distance_m == 0.0 and by_road[0].fid == queue[0].fid
    near = review_queue(project, run_id, roads=road, near_road_m=1.0)
    assert [i.fid for i in near] == [queue[0].fid]
    with pytest.raises(RtsMapperError, match="road layer"):
        review_queue(project, run_id, order="road")

    for item in queue[:3]:
        record_decision(project, Decision(item.fid, "alice", "rejected", seconds_spent=3.0))
    decided = set(my_decisions(project, "alice"))
    assert resume_index(queue, decided) == 3
    assert [i.fid for i in review_queue(project, run_id, statuses=("pending",))] == [i.fid for i in queue[3:]]
    progress = review_progress(project, [i.fid for i in queue], "alice")
    assert progress.reviewed_by_me == 3 and progress.per_status["rejected"] == 3
    assert progress.rate_per_hour == pytest.approx(3 / (9 / 3600))
    assert "3 / " in progress.summary()


def test_what_a_reviewer_steps_through(project):
    """The Review dock's "Show" choices, as rules of the review (not of a combo box)."""
    project, _region, run_id = project
    everything = review_queue(project, run_id)
    record_decision(project, Decision(everything[1].fid, "alice", "accepted"))
    record_decision(project, Decision(everything[1].fid, "bob", "rejected"))  # a conflict
    record_decision(project, Decision(everything[2].fid, "bob", "rejected"))

    queue, start = queue_for(project, "alice", "all", run_id)
    assert [i.fid for i in queue] == [i.fid for i in everything] and start == 0
    mine, start = queue_for(project, " alice ", "mine", run_id)
    assert everything[1].fid not in {i.fid for i in mine} and everything[2].fid in {i.fid for i in mine}
    conflicts, _ = queue_for(project, "carol", "conflict", run_id)
    assert [i.fid for i in conflicts] == [everything[1].fid]
    pending, _ = queue_for(project, "carol", "pending", run_id)
    assert {everything[1].fid, everything[2].fid}.isdisjoint(i.fid for i in pending)
    with pytest.raises(RtsMapperError, match="show one of"):
        queue_for(project, "alice", "everything", run_id)
    assert decides_finally("conflict") and not any(decides_finally(s) for s in ("all", "pending", "mine"))

    decided = {everything[0].fid, everything[1].fid}
    assert next_undecided(everything, 0, decided) == 2
    assert next_undecided(everything, len(everything) - 1, decided) == 2, "wraps round"
    assert next_undecided(everything[:2], 0, decided) is None


def test_status_from_rows():
    assert status_from([]) == "pending"
    assert status_from([("accepted", False), ("accepted", False)]) == "accepted"
    assert status_from([("accepted", False), ("unsure", False)]) == "conflict"
    assert status_from([("accepted", False), ("unsure", False), ("unsure", True)]) == "unsure"


# -- agreement, checked against hand computations --
def test_cohen_kappa_by_hand():
    # 10 items: observed agreement 7/10; rater a: 6 yes 4 no, rater b: 5 yes 5 no
    a = ["y"] * 6 + ["n"] * 4
    b = ["y", "y", "y", "y", "n", "n", "y", "n", "n", "n"]
    # agreements: items 1-4 (y,y), 8-10 (n,n) = 7; p_e = .6*.5 + .4*.5 = .5 -> kappa = .4
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(["y", "y"], ["y", "y"]) == 1.0


def test_fleiss_kappa_textbook_example():
    # Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories -> 0.210
    table = np.array(
        [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ]
    )
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=0.001)


def test_decision_agreement_by_hand(project):
    project, _, _ = project
    ids = candidate_ids(project)[:4]
    votes = {
        "alice": ["accepted", "accepted", "rejected", "rejected"],
        "bob": ["accepted", "rejected", "rejected", "rejected"],
        "carol": ["accepted", "accepted", "rejected", "unsure"],
    }
    for reviewer, decisions in votes.items():
        for fid, decision in zip(ids, decisions):
            record_decision(project, Decision(fid, reviewer, decision))
    result = decision_agreement(decisions_of(project), reviewed_boundaries(project))
    assert result.candidates_compared == 4 and result.unanimous == 2
    assert result.conflicts == sorted(ids[1:2] + ids[3:4])
    assert result.per_candidate[ids[1]] == pytest.approx(1 / 3)
    # alice vs bob: agree on 3/4; alice 2A 2R, bob 1A 3R -> p_e = (2*1 + 2*3)/16 = .5 -> kappa .5
    assert result.cohen_kappa["alice|bob"] == pytest.approx(0.5)
    assert result.fleiss_kappa == pytest.approx(
        fleiss_kappa(np.array([[3, 0, 0], [2, 1, 0], [0, 3, 0], [0, 2, 1]]))
    )
    assert result.mean_boundary_iou == pytest.approx(1.0), "nobody edited: identical boundaries"


def test_polygon_agreement_by_hand():
    a = [box(0, 0, 10, 10), box(100, 100, 110, 110)]
    b = [box(0, 0, 10, 8), box(300, 300, 310, 310)]
    result = polygon_agreement({"a": a, "b": b}, iou_threshold=0.5, cell_m=1.0)
    # one match (IoU 0.8) out of two polygons each: F1 = 0.5
    assert result["pairs"]["a|b"] == {"f1": 0.5, "mean_iou_of_matches": 0.8}
    assert result["polygons_matched_by_all_other_layers"] == 2
    assert result["polygons_matched_by_no_other_layer"] == 2


@pytest.mark.skipif(not PEEL.exists(), reason="../shared/data/real/peel is not present")
def test_agreement_cli_on_the_twelve_real_peel_digitizations(capsys):
    layers = sorted(str(p) for p in (PEEL / "digitized").glob("expert*.shp"))
    assert main(["agreement", *layers, "--area", str(PEEL / "Peel_AOI_2500.geojson")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["layers"]) == 12 and len(report["pairs"]) == 66
    assert report["ignored_slivers"] == {"expert05": 1}, "expert 05's near-zero sliver is set aside"
    # the figures reported in docs/agreement.md
    assert report["mean_pairwise_f1"] == pytest.approx(0.598, abs=0.001)
    assert report["cell_fleiss_kappa"] == pytest.approx(0.719, abs=0.001)


def test_agreement_cli_bad_input(capsys, tmp_path):
    assert main(["agreement", str(tmp_path / "missing.shp"), str(tmp_path / "other.shp")]) == 2
    assert "missing.shp" in capsys.readouterr().err


def test_timelapse_strip_and_gif(project, tmp_path):
    project, _, _ = project
    fid = candidate_ids(project)[0]
    files = export_timelapses(project, tmp_path / "tl", candidate_ids=[fid], size_px=96)
    strip, gif = (Path(f) for f in files)
    image = Image.open(strip)
    assert image.size == (5 * 96 + 4 * 4, 96), "five years side by side"
    pixels = np.asarray(image)
    assert ((pixels == [255, 221, 0]).all(axis=-1)).sum() > 50, "the outline is drawn"
    animation = Image.open(gif)
    assert animation.n_frames == 5
    with pytest.raises(RtsMapperError, match="no such candidates"):
        export_timelapses(project, tmp_path / "tl", candidate_ids=[99_999])
    # nothing accepted yet: nothing to export; after accepting one, its files appear
    assert export_timelapses(project, tmp_path / "accepted") == []
    record_decision(project, Decision(fid, "alice", "accepted"))
    assert (
        main(["timelapse", "--project", str(project.path), "--out", str(tmp_path / "cli"), "--format", "png"])
        == 0
    )
    assert (tmp_path / "cli" / f"candidate_{fid}.png").exists()


def test_a_note_changed_after_the_decision_changes_only_the_note(project):
    project, _, _ = project
    from rts_mapper_plugin.core.review.decisions import update_note

    fid = project.features("candidates").attributes[0]["fid"]
    assert not update_note(project, fid, "ana", "too early"), "no decision yet: nothing to update"
    record_decision(
        project, Decision(fid, "ana", "accepted", probability=80, criteria={"upslope_retreat": True})
    )
    assert update_note(project, fid, "ana", "retreats 20 m a year")
    (row,) = decisions_of(project, [fid])
    assert (row["note"], row["decision"], row["probability"], row["upslope_retreat"]) == (
        "retreats 20 m a year",
        "accepted",
        80,
        1,
    )
    with sqlite3.connect(project.path) as conn:
        notes = [r[0] for r in conn.execute("SELECT note FROM review_log WHERE candidate_id = ?", (fid,))]
    assert notes == [None, "retreats 20 m a year"], "the change is in the audit log"


def test_each_reviewers_place_is_kept_in_the_project(project):
    project, _, _ = project
    from rts_mapper_plugin.core.review.decisions import ReviewSession, review_session, save_review_session

    assert review_session(project, "ana") is None
    save_review_session(project, "ana", ReviewSession("run-1", "pending", "area"))
    save_review_session(project, "bob", ReviewSession(None, "mine", "road"))
    save_review_session(project, " ana ", ReviewSession("run-2", "pending", "area"))
    assert review_session(project, "ana") == ReviewSession("run-2", "pending", "area")
    assert review_session(project, "bob") == ReviewSession(None, "mine", "road")


def test_the_project_lists_its_candidate_sets_and_models(project, tmp_path):
    import shutil

    project, _, _ = project

    from rts_mapper_plugin.core.model.model_file import ModelCard, create_model, save_model
    from rts_mapper_plugin.core.project.contents import candidate_sets, contents, project_models

    (first,) = candidate_sets(project)
    total = len(project.features("candidates"))
    assert (first.total, first.pending) == (total, total)
    assert first.label == f"Candidates 2019, iteration 1: {total} ({total} pending)"
    fid = project.features("candidates").attributes[0]["fid"]
    record_decision(project, Decision(fid, "ana", "rejected"))
    assert candidate_sets(project)[0].pending == total - 1
    assert project_models(project) == []
    folder = project.path.parent / "models"
    save_model(create_model("resnet18"), ModelCard(encoder="resnet18"), folder / "m.safetensors")
    (folder / "junk.safetensors").write_text("x\n")
    entries = {e.path.name: e for e in project_models(project)}
    assert (
        entries["m.safetensors"].encoder == "resnet18" and entries["m.safetensors"].label == "models folder"
    )
    assert entries["junk.safetensors"].summary == "not readable as a model"
    summary = contents(project).summary()
    assert summary == f"5 years · 1 candidate set ({total - 1} pending) · 2 models · 0 iterations"
    shutil.rmtree(folder)
