"""The ARTS standard's rules, pinned: field formats, the seed and UID recipe, and the relationship
cases of ARTS's formatting code and its "RTS Relationship Guidelines"."""

from __future__ import annotations

import json
import os
import uuid
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import box

from rts_mapper_plugin.__main__ import main
from rts_mapper_plugin.core.analysis import arts
from rts_mapper_plugin.core.analysis.inventory import InventoryMetadata, arts_contribution
from rts_mapper_plugin.core.errors import RtsMapperError
from rts_mapper_plugin.core.project.loop import add_negatives, add_positives
from rts_mapper_plugin.core.project.store import MappingProject, RunRecord
from rts_mapper_plugin.core.review.decisions import Decision, record_decision
from rts_mapper_plugin.core.vectors import FeatureSet
from tests.waiting import run_watched


def record(**changes) -> dict:
    base = {
        "CentroidLat": 69.123456,
        "CentroidLon": -133.98765,
        "RegionName": "Peel Plateau",
        "CreatorLab": "A. Analyst, Lab",
        "BaseMapDate": "2019-07-15,2019-08-15",
        "BaseMapSource": "PlanetScope",
        "BaseMapResolution": 3.0,
        "TrainClass": "Positive",
        "LabelType": "Polygon",
    }
    return {**base, **changes}


def test_base_map_dates_as_arts_writes_them():
    assert arts.base_map_date("2019-07-15", "2019-08-15") == "2019-07-15,2019-08-15", "a comma, not a slash"
    assert arts.base_map_date("2019-07-15", "2019-07-15") == "2019-07-15,2019-07-15", "ARTS's code reads two"
    assert arts.base_map_date("2019-07-15") == "2019-07-15,2019-07-15"
    assert arts.as_range("2019-07-15") == "2019-07-15,2019-07-15" and arts.as_range("2019") == "2019"
    assert arts.base_map_date(year=2020) == "2020-01-01,2020-12-31"
    assert arts.date_range("2019-07-15,2019-08-15") == (date(2019, 7, 15), date(2019, 8, 15))
    for bad in ("2019-07-15/2019-08-15", "2019", "15.07.2019", "", "2019-7-5", "2019-07-15,,"):
        with pytest.raises(ValueError, match="YYYY-MM-DD"):
            arts.date_range(bad)


def test_the_seed_and_uid_recipe():
    # 5 decimals, integral resolution without ".0", the fields with nothing between them
    expected_seed = (
        "69.12346-133.98765Peel PlateauA. Analyst, Lab2019-07-15,2019-08-15PlanetScope3PositivePolygon"
    )
    assert arts.seed(record()) == expected_seed
    assert arts.uid(record()) == str(uuid.uuid5(uuid.NAMESPACE_DNS, expected_seed))
    assert arts.seed(record(BaseMapResolution=0.5)).endswith("PlanetScope0.5PositivePolygon")
    assert arts.uid(record(TrainClass="Negative")) != arts.uid(record())
    parts = arts.uid(record()).split("-")
    assert [len(p) for p in parts] == [8, 4, 4, 4, 12]


def test_coordinates_round_as_numpy_rounds():
    """ARTS rounds with numpy (scale, round half to even, unscale), not Python's round()."""
    values = np.random.default_rng(0).uniform(-180, 180, 20_000)
    for value in values:
        assert arts.rounded(value) == float(np.round(value, 5))
    assert arts.rounded(1.000005) == float(np.round(1.000005, 5))


def test_problems_are_what_arts_refuses():
    assert arts.problems(record()) == []
    assert arts.problems(record(RegionName="")) == ["RegionName is missing"]
    assert any("YYYY-MM-DD" in p for p in arts.problems(record(BaseMapDate="2019-07-15/2019-08-15")))
    assert any("TrainClass" in p for p in arts.problems(record(TrainClass="positive")))
    assert any("WGS 84" in p for p in arts.problems(record(CentroidLat=691234.0)))


def feature(geometry, uid, train_class="Positive", dates="2019-07-15,2019-08-15", initiated=None):
    return arts.Feature(
        geometry, {"UID": uid, "TrainClass": train_class, "BaseMapDate": dates}, initiated=initiated
    )


def relations(features, main, column):
    arts.relationships(features, main, today=date(2026, 12, 6))
    return [f.record[column] for f in features]


def test_intersections_leave_out_features_that_only_touch():
    new = [feature(box(0, 0, 10, 10), "n1")]
    main = [feature(box(10, 0, 20, 10), "touching"), feature(box(5, 5, 15, 15), "overlapping")]
    arts.relationships(new, main, today=date(2026, 12, 6))
    assert new[0].record["Intersections"] == "overlapping"
    assert new[0].record["ContributionDate"] == "2026-12-06"


def test_a_repeat_keeps_the_uid_of_the_main_data_set():
    new = [feature(box(0, 0, 10, 10), "new-uid", dates="2022-07-01,2022-08-01")]
    main = [feature(box(1, 1, 11, 11), "old-uid", dates="2018-07-01,2018-08-01")]
    assert relations(new, main, "RepeatRTS") == ["old-uid"]
    assert new[0].record["UID"] == "old-uid", "same slump, same UID"


def test_a_repeat_within_the_contribution_keeps_the_earliest_uid():
    early = feature(box(0, 0, 10, 10), "early", dates="2017-07-01")
    late = feature(box(1, 0, 11, 10), "late", dates="2021-07-01")
    arts.relationships([late, early], [], today=date(2026, 12, 6))
    assert late.record["RepeatRTS"] == "early" and late.record["UID"] == "early"
    assert early.record["UID"] == "early"


def test_accidental_overlap_merge_split_and_stabilized_scar():
    # barely overlapping outlines of two slumps
    assert relations(
        [feature(box(0, 0, 10, 10), "a")], [feature(box(9.5, 0, 20, 10), "b")], "AccidentalOverlap"
    ) == ["b"]
    # two old slumps grown into one
    merged = [feature(box(0, 0, 20, 10), "big")]
    assert relations(
        merged, [feature(box(1, 1, 9, 9), "w"), feature(box(11, 1, 19, 9), "e")], "MergedRTS"
    ) == ["w,e"]
    # one old slump now two
    split = [feature(box(0, 0, 9, 10), "w"), feature(box(11, 0, 20, 10), "e")]
    assert relations(split, [feature(box(0, 0, 20, 10), "old")], "SplitRTS") == ["old", "old"]
    # the reviewers dated the slump 2019-2020; an RTS mapped there on 2015 imagery is an older scar
    scar = [feature(box(0, 0, 10, 10), "young", dates="2021-07-01", initiated=2020)]
    assert relations(scar, [feature(box(1, 1, 9, 9), "old", dates="2015-07-01")], "StabilizedRTS") == ["old"]


def test_negatives_are_classified_as_arts_classifies_them():
    negative = feature(box(0, 0, 10, 10), "neg", "Negative", dates="2019-07-01,2019-08-01")
    main = [
        feature(box(1, 1, 5, 5), "other-neg", "Negative"),
        feature(box(5, 5, 9, 9), "rts-then", "Positive", dates="2018-07-01"),
        feature(box(2, 6, 4, 9), "rts-later", "Positive", dates="2022-07-01"),
    ]
    arts.relationships([negative], main, today=date(2026, 12, 6))
    assert negative.record["RepeatNegative"] == "other-neg"
    assert negative.record["FalseNegative"] == "rts-then", "the RTS was there when the negative was drawn"
    assert negative.record["NewRTS"] == "rts-later", "the RTS formed after"


def test_every_overlap_is_classified_once():
    """ARTS's completeness check: every UID in Intersections / SelfIntersections sits in one column."""
    rng = np.random.default_rng(1)
    new = [feature(box(x, y, x + 8, y + 8), f"n{i}") for i, (x, y) in enumerate(rng.uniform(0, 40, (25, 2)))]
    main = [
        feature(box(x, y, x + 8, y + 8), f"m{i}", "Negative" if i % 4 == 0 else "Positive")
        for i, (x, y) in enumerate(rng.uniform(0, 40, (25, 2)))
    ]
    arts.relationships(new, main, today=date(2026, 12, 6))
    for f in new:
        found = f.relations["Intersections"] + f.relations["SelfIntersections"]
        placed = [
            u
            for name in arts.RELATIONSHIP_COLUMNS
            if name not in ("Intersections", "SelfIntersections")
            for u in f.relations[name]
        ]
        assert sorted(found) == sorted(placed)


def test_a_project_as_an_arts_contribution(tmp_path):
    project = MappingProject.create(tmp_path / "p.gpkg", "EPSG:32608")
    slump = box(500_000, 7_650_000, 500_200, 7_650_100)
    add_positives(project, FeatureSet([slump], [{"initiation_period": "2017-2018"}], project.crs), 1, "test")
    run = RunRecord(run_id="r1", iteration=1)

    class Candidate:
        def __init__(self, geometry):
            self.geometry = geometry

        def attributes(self):
            return {"area_m2": self.geometry.area, "mean_prob": 0.6, "status": "pending", "iteration": 1}

    far, on_slump = box(503_000, 7_650_000, 503_100, 7_650_100), box(500_050, 7_650_020, 500_150, 7_650_080)
    fids = project.add_run(run, [Candidate(far), Candidate(on_slump)])
    for fid in fids:
        record_decision(project, Decision(fid, "ana", "rejected"))
    assert add_negatives(project, fids, 1) == 2
    metadata = InventoryMetadata("Peel", "Lab", "2019-07-15,2019-08-15")
    contribution = arts_contribution(project, metadata)
    classes = [a["TrainClass"] for a in contribution.attributes]
    assert classes == ["Positive", "Negative"], "the negative on the slump is left out"
    positive = contribution.attributes[0]
    assert arts.problems(positive) == []
    assert positive["UID"] == arts.uid(positive) and positive["Area"] == pytest.approx(20_000.0)
    assert contribution.crs.to_epsg() == 4326

    with pytest.raises(RtsMapperError, match="RegionName is missing"):
        arts_contribution(project, InventoryMetadata("", "Lab", "2019-07-15"))

    out = tmp_path / "contribution.geojson"
    assert (
        main(
            [
                "arts",
                str(project.path),
                str(out),
                "--region",
                "Peel",
                "--creator",
                "Lab",
                "--base-map-date",
                "2019-07-15,2019-08-15",
            ]
        )
        == 0
    )
    written = json.loads(out.read_text())["features"]
    assert [f["properties"]["TrainClass"] for f in written] == ["Positive", "Negative"]
    assert written[0]["properties"]["UID"] == positive["UID"]
    assert isinstance(written[0]["properties"]["BaseMapResolution"], float)


def test_a_main_data_set_of_single_dates_reads_as_text(tmp_path):
    # OGR reads a GeoJSON column of single dates as a Date field ("2018/07/01"): read as written
    from rts_mapper_plugin.core.analysis.inventory import read_arts
    from rts_mapper_plugin.core.vectors import write_features

    path = tmp_path / "main.geojson"
    uid = str(uuid.uuid4())
    write_features(
        path,
        FeatureSet([box(0, 60, 0.01, 60.01)], [record(UID=uid, BaseMapDate="2018-07-01")], "EPSG:4326"),
        "main",
    )
    (feature,) = read_arts(path)
    assert feature.record["BaseMapDate"] == "2018-07-01" and feature.record["UID"] == uid
    assert arts.date_range(feature.record["BaseMapDate"]) == (date(2018, 7, 1), date(2018, 7, 1))


ARTS_REPO, ARTS_PYTHON = os.environ.get("ARTS_REPO"), os.environ.get("ARTS_PYTHON")


@pytest.mark.skipif(
    not (ARTS_REPO and ARTS_PYTHON),
    reason="ARTS's own code: set ARTS_REPO (a checkout of github.com/whrc/ARTS) and ARTS_PYTHON "
    "(a Python with geopandas); see scripts/check_arts.py",
)
def test_arts_own_code_accepts_the_contribution(tmp_path):
    project = MappingProject.create(tmp_path / "p.gpkg", "EPSG:32608")
    slumps = [box(500_000 + 400 * i, 7_650_000, 500_150 + 400 * i, 7_650_090 + 20 * i) for i in range(5)]
    periods = [{"initiation_period": p} for p in ("2017-2018", "before 2016", "2019-2020", "", "2018-2019")]
    add_positives(project, FeatureSet(slumps, periods, project.crs), 1, "test")
    main_file, contribution = tmp_path / "main.geojson", tmp_path / "new.geojson"
    for out, creator, dates in (
        (main_file, "Old lab", "2018-07-01"),
        (contribution, "Lab", "2021-07-15,2021-08-15"),
    ):
        args = ["arts", str(project.path), str(out), "--region", "Peel", "--creator", creator]
        assert (
            main(
                [
                    *args,
                    "--base-map-date",
                    dates,
                    *(["--main", str(main_file)] if out == contribution else []),
                ]
            )
            == 0
        )
    check = Path(__file__).parents[2] / "scripts" / "check_arts.py"
    result = run_watched([ARTS_PYTHON, str(check), ARTS_REPO, str(contribution), str(main_file)])
    assert result.returncode == 0 and "REFUSED" not in result.stdout, result.stdout + result.stderr
    assert "ARTS accepts the contribution" in result.stdout
