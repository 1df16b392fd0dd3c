"""The field package's round trip: export candidates for a reviewer, edit the field GeoPackage as
QField does (plain OGR edits: attributes and a redrawn outline), merge back, count. Desk and field
decisions of the same reviewer that differ are listed as conflicts, never written over."""

from __future__ import annotations

import json

import pytest
import rasterio
from osgeo import ogr

from rts_mapper_plugin.core.errors import RtsMapperError
from rts_mapper_plugin.core.review.decisions import Decision, decisions_of, record_decision
from rts_mapper_plugin.core.review.field_package import export_field_package, merge_field_package
from tests.conftest import assert_valid_geopackage, run_python
from tests.data.fixtures import copy_project, review_project


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return review_project(tmp_path_factory.mktemp("field"), size=300)


@pytest.fixture
def project(prepared, tmp_path):
    return copy_project(prepared[0], tmp_path / "desk")


def candidate_ids(project) -> list[int]:
    return [a["fid"] for a in project.features("candidates").attributes]


def edit_in_the_field(package, changes: dict[int, dict], redraw: int | None = None) -> None:
    """What QField writes: attribute values on the review layer's rows, one outline moved."""
    dataset = ogr.Open(str(package / "field.gpkg"), 1)
    layer = dataset.GetLayerByName("review")
    for feature in layer:
        values = changes.get(feature.GetField("candidate_id"))
        if values:
            for name, value in values.items():
                feature.SetField(name, value)
        if redraw is not None and feature.GetField("candidate_id") == redraw:
            geometry = feature.GetGeometryRef().Clone()
            geometry = geometry.Buffer(6.0)  # the reviewer moves the boundary outwards
            feature.SetGeometry(ogr.ForceToMultiPolygon(geometry))
        if values or (redraw is not None and feature.GetField("candidate_id") == redraw):
            layer.SetFeature(feature)
    dataset = None


def test_export_edit_merge_loses_no_decision(project, tmp_path):
    ids = candidate_ids(project)[:5]
    package = export_field_package(project, tmp_path / "pkg", ids, "Field team")
    assert package.candidates == 5 and package.years == [y.year for y in project.years()]
    one = export_field_package(project, tmp_path / "one", ids[:1], "Field team")
    for year in one.years:  # the images travel, clipped to the candidates (+ 150 m)
        with (
            rasterio.open(tmp_path / "one" / "imagery" / f"{year}.tif") as clipped,
            rasterio.open(project.years()[0].raster_path) as full,
        ):
            assert clipped.count == 3 and clipped.width * clipped.height < full.width * full.height
    info = json.loads((tmp_path / "pkg" / "package.json").read_text())
    assert info["reviewer"] == "Field team" and info["candidates"] == ids
    assert_valid_geopackage(tmp_path / "pkg" / "field.gpkg")  # GDAL's validator, as QField's GDAL reads it
    decided = {
        ids[0]: {
            "decision": "accepted",
            "probability": 90,
            "initiation_period": "2016-2017",
            "upslope_retreat": 1,
        },
        ids[1]: {"decision": "rejected", "note": "a drained pond, seen from the road"},
        ids[2]: {"decision": "unsure"},
    }
    edit_in_the_field(tmp_path / "pkg", decided, redraw=ids[0])
    result = merge_field_package(project, tmp_path / "pkg")
    assert sorted(result.recorded) == sorted(decided) and result.undecided == 2 and not result.conflicts
    stored = {d["candidate_id"]: d for d in decisions_of(project) if d["reviewer"] == "Field team"}
    assert {k: v["decision"] for k, v in stored.items()} == {k: v["decision"] for k, v in decided.items()}
    assert stored[ids[0]]["probability"] == 90 and stored[ids[0]]["initiation_period"] == "2016-2017"
    assert stored[ids[0]]["upslope_retreat"] == 1 and stored[ids[0]]["edited"] == 1, "the redrawn outline"
    assert stored[ids[1]]["note"] == "a drained pond, seen from the road" and stored[ids[1]]["edited"] == 0
    again = merge_field_package(project, tmp_path / "pkg")  # merging twice changes nothing
    assert sorted(again.unchanged) == sorted(decided) and not again.conflicts and not again.recorded
    assert len(decisions_of(project)) == 3


def test_the_same_reviewer_deciding_otherwise_in_the_field_is_a_conflict_not_an_overwrite(project, tmp_path):
    ids = candidate_ids(project)[:2]
    record_decision(project, Decision(candidate_id=ids[0], reviewer="Field team", decision="accepted"))
    record_decision(project, Decision(candidate_id=ids[1], reviewer="Desk analyst", decision="accepted"))
    export_field_package(project, tmp_path / "pkg", ids, "Field team")
    dataset = ogr.Open(str(tmp_path / "pkg" / "field.gpkg"))
    desk = {f.GetField("candidate_id"): f.GetField("desk_decision") for f in dataset.GetLayerByName("review")}
    dataset = None
    assert desk == {ids[0]: "accepted", ids[1]: ""}, "the reviewer's own desk decision, for reference"
    edit_in_the_field(tmp_path / "pkg", {ids[0]: {"decision": "rejected"}, ids[1]: {"decision": "rejected"}})
    result = merge_field_package(project, tmp_path / "pkg")
    assert result.conflicts == [
        {"candidate_id": ids[0], "reviewer": "Field team", "desk": "accepted", "field": "rejected"}
    ]
    assert result.recorded == [ids[1]], "another reviewer's decision is no conflict"
    kept = {(d["candidate_id"], d["reviewer"]): d["decision"] for d in decisions_of(project)}
    assert kept[(ids[0], "Field team")] == "accepted", "the desk decision is not written over"
    assert kept[(ids[1], "Field team")] == "rejected" and kept[(ids[1], "Desk analyst")] == "accepted"


def test_bad_packages_and_requests_are_one_line(project, tmp_path):
    with pytest.raises(RtsMapperError, match="give a name"):
        export_field_package(project, tmp_path / "a", candidate_ids(project)[:1], " ")
    with pytest.raises(RtsMapperError, match="has no candidate 99999"):
        export_field_package(project, tmp_path / "b", [99999], "Field team")
    with pytest.raises(RtsMapperError, match=r"no readable package\.json"):
        merge_field_package(project, tmp_path)
    export_field_package(project, tmp_path / "pkg", candidate_ids(project)[:1], "Field team")
    edit_in_the_field(tmp_path / "pkg", {candidate_ids(project)[0]: {"decision": "maybe"}})
    with pytest.raises(RtsMapperError, match="'maybe' is not one of accepted, rejected, unsure"):
        merge_field_package(project, tmp_path / "pkg")
    assert not decisions_of(project)


def test_the_command_line_exports_the_near_road_candidates_and_merges_them(prepared, project, tmp_path):
    from rts_mapper_plugin.__main__ import main
    from rts_mapper_plugin.core.review.decisions import review_queue
    from rts_mapper_plugin.core.vectors import read_features

    roads = str(prepared[1].folder / "roads.gpkg")
    distances = sorted(i.road_distance_m for i in review_queue(project, roads=read_features(roads)))
    within = distances[len(distances) // 2]  # half of them are "near the road"
    near = {i.fid for i in review_queue(project, roads=read_features(roads), near_road_m=within)}
    assert 0 < len(near) < len(distances)
    out = tmp_path / "near_road"
    args = ["field-export", str(project.path), "--out", str(out), "--reviewer", "Field team"]
    done = run_python(["-m", "rts_mapper_plugin", *args, "--roads", roads, "--within", str(within)])
    assert done.returncode == 0, done.stderr  # in its own process: it also starts QGIS for field.qgz
    assert (out / "field.qgz").is_file() and "the QGIS / QField project" in done.stdout
    info = json.loads((out / "package.json").read_text())
    assert set(info["candidates"]) == near
    edit_in_the_field(out, {info["candidates"][0]: {"decision": "accepted"}})
    assert main(["field-merge", str(project.path), str(out)]) == 0
    assert [d["candidate_id"] for d in decisions_of(project)] == [info["candidates"][0]]
