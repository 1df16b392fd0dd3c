"""The iterative loop, Table 1 and the inventory, on real GeoPackages."""

from __future__ import annotations

import uuid

import pytest
from shapely.geometry import LineString, box

from rts_mapper_plugin.core.analysis.inventory import (
    InventoryMetadata,
    build_inventory,
    export_inventory,
    inventory_summary,
)
from rts_mapper_plugin.core.errors import RtsMapperError
from rts_mapper_plugin.core.model.evaluation import iou
from rts_mapper_plugin.core.model.inference import InferConfig
from rts_mapper_plugin.core.project.loop import (
    TABLE1_COLUMNS,
    IterationSettings,
    add_positives,
    iterations,
    table1_markdown,
    write_table1,
)
from rts_mapper_plugin.core.project.store import MappingProject
from rts_mapper_plugin.core.project.workflow import infer_into_project
from rts_mapper_plugin.core.review.decisions import decisions_of
from rts_mapper_plugin.core.vectors import FeatureSet, read_features
from rts_mapper_plugin.example.demo import SIMULATED_REVIEWER, DemoConfig, run_loop
from tests.conftest import assert_valid_geopackage, default_styles
from tests.data.fixtures import trained_model


@pytest.fixture
def seeded(tmp_path):
    """(model, image, truth, project): the cached trained model, the image it was trained on,
    that region's truth, and a fresh project whose training RTSs are two of the truth slumps."""
    model = trained_model()
    truth = read_features(f"{model.parent / 'region' / 'truth.gpkg'}|layername=rts")
    project = MappingProject.create(tmp_path / "p.gpkg", truth.crs)
    add_positives(project, FeatureSet(truth.geometries[:2], truth.attributes[:2], truth.crs), 0, "initial")
    return model, model.parent / "2019.tif", truth, project


def test_loop_converges_never_represents_a_reviewed_candidate_and_promotes_edited_boundaries(
    seeded, tmp_path
):
    model, image, truth, project = seeded
    records = run_loop(
        project,
        truth,
        lambda it: IterationSettings(image=str(image), infer=InferConfig(min_area_m2=300)),
        DemoConfig(),
        log=lambda _: None,
        train=lambda *_: (model, 0.0),
    )
    runs = project.runs()
    assert records[0].newly_found > 0 and records[0].inferred > 0
    assert records[-1].newly_found == 0, "the same model finds nothing new the second time: converged"
    assert len(records) == 2 and records[1].inferred == 0 and records[1].set_aside_known > 0

    # nothing reviewed in iteration 1 comes back in iteration 2
    first = project.features("candidates", "run_id = ?", (runs[0].run_id,)).geometries
    second = project.features("candidates", "run_id = ?", (runs[1].run_id,)).geometries
    assert not any(a.intersects(b) for a in first for b in second)

    # every promoted positive is the reviewed (edited) boundary, i.e. a truth outline
    positives = project.features("training_positives")
    promoted = [g for g, a in zip(positives.geometries, positives.attributes) if a["iteration_added"] == 1]
    assert len(promoted) == records[0].newly_found
    for geometry in promoted:
        assert max(iou(geometry, t) for t in truth.geometries) > 0.999
    assert {d["reviewer"] for d in decisions_of(project)} == {SIMULATED_REVIEWER}

    rows = iterations(project)
    assert [r.iteration for r in rows] == [1, 2] and all(r.simulated for r in rows)
    assert rows[1].total_rts == rows[0].total_rts == 2 + records[0].newly_found
    markdown = table1_markdown(project)
    assert "| Iteration | Training RTSs |" in markdown and "SIMULATION" in markdown
    write_table1(project, tmp_path / "t.csv", tmp_path / "t.md")
    assert (tmp_path / "t.csv").read_text().count("\n") == 3


def test_inventory_fields_near_road_and_arts_uid_by_hand(tmp_path):
    project = MappingProject.create(tmp_path / "p.gpkg", "EPSG:32646")
    # two squares: 100 m x 100 m (1 ha) and 400 m x 400 m (16 ha)
    small = box(500_000, 3_800_000, 500_100, 3_800_100)
    large = box(502_000, 3_800_000, 502_400, 3_800_400)
    add_positives(
        project,
        FeatureSet([small, large], [{"initiation_period": "2016-2017"}, {}], project.crs),
        1,
        "test",
    )
    road = FeatureSet([LineString([(500_050, 3_800_450), (500_050, 3_810_000)])], [{}], project.crs)
    metadata = InventoryMetadata(region_name="Test", creator_lab="Lab", base_map_date="2019-07-15")
    inventory = build_inventory(project, roads=road, near_road_m=500, metadata=metadata)
    first, second = inventory.attributes
    assert first["area_ha"] == pytest.approx(1.0) and second["area_ha"] == pytest.approx(16.0)
    assert first["perimeter_m"] == pytest.approx(400.0)
    # centroid (500050, 3800050): 400 m below the road's end -> near; the other is ~2.27 km away
    assert first["road_distance_m"] == pytest.approx(400.0) and first["near_road"] == 1
    assert second["road_distance_m"] == pytest.approx(
        ((502_200 - 500_050) ** 2 + (3_800_450 - 3_800_200) ** 2) ** 0.5, abs=0.06
    )
    assert second["near_road"] == 0
    # UTM 46N easting 500 000 is the central meridian, 93 E
    assert first["centroid_lon"] == pytest.approx(93.0005, abs=1e-3) and 34.3 < first["centroid_lat"] < 34.4
    assert first["CentroidLat"] == round(first["centroid_lat"], 5) and first["Area"] == pytest.approx(
        10_000.0
    )
    # ARTS's recipe: the required fields one after another, 5 decimals, "3" not "3.0", DNS namespace
    seed = (
        f"{first['CentroidLat']}{first['CentroidLon']}TestLab2019-07-15,2019-07-15PlanetScope3PositivePolygon"
    )
    assert first["UID"] == str(uuid.uuid5(uuid.NAMESPACE_DNS, seed))
    assert first["initiation_period"] == "2016-2017"

    summary = inventory_summary(inventory, [2016, 2017, 2018])
    assert summary["count"] == 2 and summary["total_area_ha"] == pytest.approx(17.0)
    assert summary["largest_ha"] == pytest.approx(16.0) and summary["share_under_10_ha"] == 0.5
    assert summary["initiation_periods"] == {"before 2016": 0, "2016-2017": 1, "2017-2018": 0, "unknown": 1}
    assert [n["rts_id"] for n in summary["near_road"]] == [1]

    for ext in ("gpkg", "geojson", "shp"):
        out = export_inventory(inventory, tmp_path / f"inv.{ext}", summary)
        back = read_features(out)
        assert len(back) == 2 and back.attributes[0]["UID"] == first["UID"]
        if ext == "gpkg":
            assert_valid_geopackage(out)
            assert "singleSymbol" in default_styles(out)["rts_inventory"], (
                "the inventory's style travels with it"
            )
        else:
            assert out.with_suffix(".qml").is_file(), "QGIS loads NAME.qml beside the file as its style"
        assert (tmp_path / "inv_summary.json").exists()
    with pytest.raises(RtsMapperError, match="empty"):
        export_inventory(FeatureSet([], [], project.crs), tmp_path / "empty.gpkg")


def test_next_iteration_steps_close_a_dock_run_and_guard_an_open_iteration(seeded):
    """What the plugin's "Next iteration" does, step by step, around a run from the Inference dock."""
    from rts_mapper_plugin.core.project.loop import (
        close_iteration,
        open_iterations,
        pending_count,
        previous_model,
        start_iteration,
        starting_model,
        table1_cells,
    )
    from rts_mapper_plugin.core.review.decisions import Decision, record_decision

    model, image, _, project = seeded
    assert starting_model(project, None) is None, "no model yet, none chosen: a new one is trained"
    assert starting_model(project, str(model)) == str(model), "the first model chosen"
    with pytest.raises(RtsMapperError, match="no such model file"):
        starting_model(project, str(model.parent / "gone.pt"))
    run = infer_into_project(
        project.path, model, image, InferConfig(min_area_m2=300)
    )  # the Inference dock's run
    assert run.iteration == 1 and open_iterations(project) == [1] and previous_model(project) == model
    candidates = project.features("candidates", "run_id = ?", (run.run_id,))
    fids = [a["fid"] for a in candidates.attributes]
    assert pending_count(project, [1]) == len(fids) >= 3
    edited = candidates.geometries[0].buffer(5)
    record_decision(
        project, Decision(fids[0], "ana", "accepted", geometry=edited, edited=True, seconds_spent=36)
    )
    record_decision(project, Decision(fids[1], "ana", "rejected", seconds_spent=36))
    record_decision(project, Decision(fids[2], "ben", "rejected", seconds_spent=36))
    with pytest.raises(RtsMapperError, match="iteration 1 is still under review"):
        start_iteration(project, IterationSettings(image=str(image)), train=lambda *_: (model, 0.0))

    record = close_iteration(project, 1, negatives=[fids[1], fids[0]])  # an accepted one is no negative
    assert (record.positives, record.negatives, record.newly_found, record.total_rts) == (2, 0, 1, 3)
    assert record.inferred == len(fids) and record.reviewers == "ana, ben" and record.review_hours == 0.03
    assert record.finished_at and open_iterations(project) == []
    assert starting_model(project, str(model.parent / "gone.pt")) is None, "later: the last model"
    negatives = project.features("training_negatives")
    assert [a["candidate_id"] for a in negatives.attributes] == [fids[1]]
    promoted = project.features("training_positives", "iteration_added = 1").geometries
    assert len(promoted) == 1 and promoted[0].symmetric_difference(edited).area < 1e-6, "the edited boundary"

    trained = []
    record2 = start_iteration(
        project,
        IterationSettings(image=str(image), infer=InferConfig(min_area_m2=300)),
        train=lambda p, it, s, fb: trained.append((it, s)) or (model, 1.5),
    )
    assert trained[0][0] == 2 and (record2.positives, record2.negatives) == (3, 1)
    assert record2.train_seconds == 1.5 and not record2.finished_at and open_iterations(project) == [2]
    in_review = dict(zip([k for k, _ in TABLE1_COLUMNS], table1_cells(record2)))
    assert (in_review["newly_found"], in_review["total_rts"], in_review["reviewers"]) == ("in review", "", "")
    assert table1_cells(record)[[k for k, _ in TABLE1_COLUMNS].index("newly_found")] == 1, "closed: known"
    second = project.features("candidates", "iteration = 2").geometries
    reviewed = project.features("candidates", "status != 'pending'").geometries
    assert not any(a.intersects(b) for a in second for b in reviewed), "reviewed candidates set aside"


def test_several_runs_from_the_inference_dock_are_all_closed_each_with_its_own_negatives(seeded):
    from rts_mapper_plugin.core.project.loop import close_iteration, open_iterations, start_iteration
    from rts_mapper_plugin.core.review.decisions import Decision, record_decision

    model, image, _, project = seeded
    first = infer_into_project(project.path, model, image, InferConfig(min_area_m2=300))
    second = infer_into_project(project.path, model, image, InferConfig(min_area_m2=300), iteration=2)
    assert open_iterations(project) == [1, 2]
    with pytest.raises(RtsMapperError, match="iteration 1, 2 is still under review"):
        start_iteration(project, IterationSettings(image=str(image)), train=lambda *_: (model, 0.0))
    picked = []
    for run in (first, second):
        fid = project.features("candidates", "run_id = ?", (run.run_id,)).attributes[0]["fid"]
        record_decision(project, Decision(fid, "ana", "rejected"))
        picked.append(fid)
    closed = [close_iteration(project, i, picked) for i in (1, 2)]
    assert open_iterations(project) == [] and [c.iteration for c in closed] == [1, 2]
    added = project.features("training_negatives").attributes
    assert {(a["candidate_id"], a["iteration_added"]) for a in added} == {(picked[0], 1), (picked[1], 2)}
