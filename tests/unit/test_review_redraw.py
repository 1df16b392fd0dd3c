"""An outline redrawn from the run's probability raster: larger at a lower threshold, smaller at
a higher one, holes filled, only what overlaps the candidate, nothing where nothing reaches."""

from __future__ import annotations

import pytest

from rts_mapper_plugin.core.errors import RtsMapperError
from rts_mapper_plugin.core.project.store import MappingProject
from rts_mapper_plugin.core.review.redraw import outline_at, probability_of
from tests.data.fixtures import review_project


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return review_project(tmp_path_factory.mktemp("redraw"), size=300, seed=3, with_probability=True)


def test_the_threshold_grows_and_shrinks_the_outline(prepared):
    project, _region, _run = prepared
    candidates = project.features("candidates")
    fid, geometry = candidates.attributes[0]["fid"], candidates.geometries[0]
    raster = probability_of(project, fid)
    low, mid, high = (outline_at(raster, geometry, t) for t in (0.2, 0.5, 0.75))
    assert low.area > mid.area > high.area > 0
    assert mid.symmetric_difference(geometry).area < 0.35 * geometry.area, "near the candidate at 50 %"
    assert all(len(getattr(o, "geoms", [o])[0].interiors) == 0 for o in (low, mid, high)), "holes filled"
    others = [g for g in candidates.geometries[1:] if g.distance(geometry) > 60]
    assert all(not low.intersects(g) for g in others), "only what overlaps this candidate"
    assert outline_at(raster, geometry, 0.99) is None, "nothing reaches 99 %"


def test_a_run_without_its_raster_says_so(prepared, tmp_path):
    project, _region, _run = prepared
    fid = project.features("candidates").attributes[0]["fid"]
    moved = MappingProject.open(project.path)
    raster = probability_of(moved, fid)
    raster.rename(raster.with_suffix(".gone"))
    try:
        with pytest.raises(RtsMapperError, match="probability raster is gone"):
            probability_of(moved, fid)
    finally:
        raster.with_suffix(".gone").rename(raster)
    bare, _, _ = review_project(tmp_path / "bare", size=300, seed=3)
    with pytest.raises(RtsMapperError, match="kept no probability raster"):
        probability_of(bare, bare.features("candidates").attributes[0]["fid"])
