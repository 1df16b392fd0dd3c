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


def test_images_travel_around_the_candidates(project, tmp_path):
    """Two candidates far apart, packed with a small margin: each year's image holds the source's
    own pixels around both, on the source's grid."""
    import numpy as np
    from rasterio.windows import from_bounds

    features = project.features("candidates")
    centres = {a["fid"]: g.centroid for a, g in zip(features.attributes, features.geometries)}
    first, second = max(
        ((a, b) for a in centres for b in centres if a < b),
        key=lambda p: centres[p[0]].distance(centres[p[1]]),
    )
    assert centres[first].distance(centres[second]) > 400
    package = export_field_package(project, tmp_path / "pkg", [first, second], "Field team", buffer_m=15)
    source = project.years()[-1].raster_path
    clipped_path = tmp_path / "pkg" / "imagery" / f"{package.years[-1]}.tif"
    with rasterio.open(source) as full, rasterio.open(clipped_path) as clipped:
        assert clipped.res == full.res and clipped.crs == full.crs and clipped.nodata == full.nodata
        for fid in (first, second):  # the source's own pixels around each candidate
            bounds = centres[fid].buffer(5).bounds
            got = clipped.read(window=from_bounds(*bounds, transform=clipped.transform).round_offsets())
            want = full.read(window=from_bounds(*bounds, transform=full.transform).round_offsets())
            assert got.shape == want.shape and np.array_equal(got, want)
            assert (want != 0).any()


def test_tiles_away_from_every_candidate_hold_no_bytes(tmp_path):
    """Two places 5 km apart in a 6 km image: the clip spans both, but only their tiles are
    written; the tiles between hold no bytes and read as nodata."""
    import numpy as np
    from osgeo import gdal
    from rasterio.transform import from_origin
    from rasterio.windows import from_bounds

    from rts_mapper_plugin.core.review.field_package import _clip

    source = tmp_path / "year.tif"
    image = np.random.default_rng(0).integers(1, 255, (3, 2000, 2000), dtype=np.uint8)
    profile = {"driver": "GTiff", "width": 2000, "height": 2000, "count": 3, "dtype": "uint8", "nodata": 0}
    with rasterio.open(source, "w", crs="EPSG:32646", transform=from_origin(0, 6000, 3, 3), **profile) as out:
        out.write(image)
    areas = [(100, 100, 400, 400), (5500, 5500, 5800, 5800)]  # 300 m squares, opposite corners
    _clip(source, areas, tmp_path / "clip.tif")
    with rasterio.open(tmp_path / "clip.tif") as clipped:
        assert (clipped.width, clipped.height) == (1900, 1900) and clipped.nodata == 0
        for bounds in ((150, 150, 350, 350), (5550, 5550, 5750, 5750)):  # inside each place
            with rasterio.open(source) as full:
                want = full.read(window=from_bounds(*bounds, transform=full.transform))
            got = clipped.read(window=from_bounds(*bounds, transform=clipped.transform))
            assert np.array_equal(got, want), "the source's pixels, on its grid"
        assert not clipped.read(1, window=((900, 1000), (900, 1000))).any(), "between: nodata"
    dataset = gdal.Open(str(tmp_path / "clip.tif"))  # held: its band dies with it
    band = dataset.GetRasterBand(1)
    offsets = [
        int(band.GetMetadataItem(f"BLOCK_OFFSET_{x}_{y}", "TIFF") or 0) for x in range(8) for y in range(8)
    ]
    assert sum(1 for o in offsets if o) <= 8 and offsets.count(0) >= 56, "only the corners' tiles are written"
    assert (tmp_path / "clip.tif").stat().st_size < 0.1 * source.stat().st_size


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
