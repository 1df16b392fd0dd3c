"""The completeness estimate: a stratified random sample of the places a run did not flag, the
reviewer's answers saved at once, and the stratified estimator of the unmapped total with its
95 % interval (exact when every plot is looked at; never collapsing to [0, 0] on a sample that
saw nothing)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from shapely.geometry import box

from rts_mapper_plugin.core.errors import RtsMapperError
from rts_mapper_plugin.core.review.completeness import (
    Z95,
    answer_plot,
    draw_sample,
    estimate,
    plots_of,
    population,
)
from tests.conftest import assert_valid_geopackage
from tests.data.fixtures import copy_project, review_project


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return review_project(tmp_path_factory.mktemp("completeness"), size=400, seed=6, with_probability=True)


@pytest.fixture
def project(prepared, tmp_path):
    return copy_project(prepared[0], tmp_path / "desk")


def run_of(project) -> str:
    return project.runs()[0].run_id


def slump_at(plot, share=0.2):
    """A find centred in ``plot`` covering ``share`` of it."""
    c = plot.geometry.centroid
    half = math.sqrt(share * plot.geometry.area) / 2
    return box(c.x - half, c.y - half, c.x + half, c.y + half)


def test_the_population_is_the_unflagged_plots_stratified_by_probability(project):
    cells = population(project, run_of(project))
    candidates = project.features("candidates").geometries
    assert cells and not any(c["geometry"].intersects(g) for c in cells for g in candidates)
    strata = {c["stratum"] for c in cells}
    assert strata <= {"p 0%-5%", "p 5%-20%", "p 20%-50%"} and len(strata) >= 2, strata


def test_every_plot_looked_at_gives_the_exact_total(project):
    run_id = run_of(project)
    plots = draw_sample(project, run_id, 10_000, seed=1)  # a census
    assert len(plots) == len(population(project, run_id))
    rng = np.random.default_rng(0)
    truth = 0
    for plot in plots:
        finds = [slump_at(plot)] if rng.random() < 0.1 else []
        truth += len(finds)
        answer_plot(project, plot.fid, "ana", finds)
    result = estimate(project, run_id)
    assert result.count == pytest.approx(truth) and result.count_low == result.count_high == pytest.approx(
        truth
    )


def test_the_stratified_estimator_and_its_interval(project):
    run_id = run_of(project)
    plots = draw_sample(project, run_id, 6, seed=2)
    assert estimate(project, run_id) is None, "nothing answered yet"
    by_stratum = {}
    for plot in plots:
        by_stratum.setdefault(plot.stratum, []).append(plot)
    counts = {}
    for k, (stratum, members) in enumerate(sorted(by_stratum.items())):
        for i, plot in enumerate(members):
            n = (i % 3 == 0) * (k + 1)  # some finds, differing by stratum
            if k == 0:
                n = 0  # the first stratum sees nothing
            answer_plot(
                project,
                plot.fid,
                "ana",
                [slump_at(plot, 0.05 * (j + 1)) for j in range(n)],
            )
            counts.setdefault(stratum, []).append(n)
    cells = {c["stratum"]: 0 for c in population(project, run_id)}
    for c in population(project, run_id):
        cells[c["stratum"]] += 1
    total = variance = 0.0
    for stratum, ys in counts.items():
        ys = np.array(ys, float)
        big_n, n = cells[stratum], len(ys)
        s2 = ys.var(ddof=1) if ys.any() else 1.0 / n
        total += big_n * ys.mean()
        variance += big_n**2 * (1 - n / big_n) * s2 / n
    result = estimate(project, run_id)
    assert result.count == pytest.approx(total)
    assert result.count_high == pytest.approx(total + Z95 * math.sqrt(variance))
    assert result.count_low == pytest.approx(
        max(sum(sum(v) for v in counts.values()), total - Z95 * math.sqrt(variance))
    )
    assert result.count_high > 0, "a stratum that saw nothing still leaves room for some"
    assert "still unmapped where the model flagged nothing" in result.text()


def test_answers_are_saved_and_a_sample_is_not_replaced_by_accident(project):
    run_id = run_of(project)
    plot = draw_sample(project, run_id, 3, seed=3)[0]
    outside = box(0, 0, 10, 10)
    assert answer_plot(project, plot.fid, "ana", [slump_at(plot), outside]) == 1, (
        "counted where its centre is"
    )
    again = next(p for p in plots_of(project, run_id) if p.fid == plot.fid)
    assert (again.found, again.reviewer) == (1, "ana") and again.found_area_m2 == pytest.approx(
        0.2 * plot.geometry.area
    )
    with project.connection() as conn:
        assert (
            conn.execute("SELECT COUNT(*) FROM completeness_finds WHERE plot_id = ?", (plot.fid,)).fetchone()[
                0
            ]
            == 2
        )
    with pytest.raises(RtsMapperError, match=r"already has a sample of .* plots \(1 answered\)"):
        draw_sample(project, run_id, 3, seed=4)
    fresh = draw_sample(project, run_id, 3, seed=4, replace=True)
    assert all(p.found is None for p in fresh)
    with pytest.raises(RtsMapperError, match="say who you are"):
        answer_plot(project, fresh[0].fid, " ", [])
    answer_plot(project, fresh[0].fid, "ana", [slump_at(fresh[0])])
    assert_valid_geopackage(project.path)  # GDAL's validator, with the sample's tables filled


def test_table_1_says_what_is_still_unmapped(project):
    from rts_mapper_plugin.core.project.loop import (
        IterationRecord,
        iterations,
        record_iteration,
        table1_markdown,
    )

    run_id = run_of(project)
    record_iteration(project, IterationRecord(iteration=1, inferred=5))
    assert iterations(project)[0].unmapped == "", "no check made yet"
    plots = draw_sample(project, run_id, 3, seed=5)
    for plot in plots:
        answer_plot(project, plot.fid, "ana", [slump_at(plot)] if plot.fid == plots[0].fid else [])
    result = estimate(project, run_id)
    expected = f"{result.count:.0f} ({result.count_low:.0f}-{result.count_high:.0f})"
    assert iterations(project)[0].unmapped == expected
    table = table1_markdown(project)
    assert "Still unmapped (95 % CI)" in table and expected in table
