"""Suggestions from the year stack: the initiation period of the synthetic truth slumps found
from their outlines alone, growth seen on slumps and never on look-alikes, and no suggestion
where no year stands out."""

from __future__ import annotations

import numpy as np

from rts_mapper_plugin.core.project.store import initiation_periods
from rts_mapper_plugin.core.review.suggestions import Suggestion, standing_out, suggest
from rts_mapper_plugin.core.vectors import read_features
from tests.data.fixtures import review_project


def test_the_truth_slumps_initiation_is_suggested_from_the_years(tmp_path):
    project, region, _run = review_project(tmp_path / "p", size=500, seed=9)
    years = project.years()
    periods = initiation_periods([y.year for y in years])
    main_year = region.config.main_year
    truth = read_features(region.truth_uri("rts")).to_crs(project.crs)
    offs, grew = [], []
    for geometry, attributes in zip(truth.geometries, truth.attributes):
        if attributes.get("year", main_year) != main_year:
            continue
        suggestion = suggest(years, geometry)
        if suggestion.initiation_period is not None:
            offs.append(
                abs(
                    periods.index(suggestion.initiation_period)
                    - periods.index(attributes["initiation_period"])
                )
            )
            grew.append(suggestion.grew)
    assert len(offs) >= 8
    assert sum(o == 0 for o in offs) >= 0.8 * len(offs) and max(offs) <= 1, offs
    assert sum(g is True for g in grew) >= len(grew) / 3, grew
    for geometry in read_features(region.truth_uri("lookalikes")).to_crs(project.crs).geometries:
        assert suggest(years, geometry).grew is not True, "a bare patch never grows"


def test_nothing_standing_out_suggests_nothing():
    rng = np.random.default_rng(0)
    rgb = rng.normal(100, 5, (3, 40, 40))
    inside = np.zeros((40, 40), bool)
    inside[15:25, 15:25] = True
    ring = ~inside
    valid = np.ones_like(inside)
    assert standing_out(rgb, inside, ring, valid) < 0.1
    rgb[:, 15:25, 15:25] += 60  # a scar: brighter than its surroundings
    assert standing_out(rgb, inside, ring, valid) > 0.9
    assert "no year stands out" in Suggestion({2019: 0.05}).text()
    assert Suggestion().text() == "no registered year covers this place"
