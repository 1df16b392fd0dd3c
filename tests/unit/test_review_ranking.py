"""Review that learns: the yield and doubt orders rank what is left by what the project's own
decisions teach, say why each candidate is where it is, and fall back to the model's probability
until there is enough to learn from."""

from __future__ import annotations

import numpy as np
import pytest

from rts_mapper_plugin.core.review.decisions import Decision, record_decision, rerank_rest, review_queue
from rts_mapper_plugin.core.review.ranking import MIN_PER_CLASS, features, fit
from tests.data.fixtures import copy_project, review_project


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return review_project(tmp_path_factory.mktemp("ranking"), size=400, seed=4)


@pytest.fixture
def project(prepared, tmp_path):
    project = copy_project(prepared[0], tmp_path / "desk")
    with project.connection() as conn:  # the model says the same of every candidate, and every
        # outline is as compact as the next (4πA/P² = 0.5): only the area tells them apart
        rows = conn.execute("SELECT fid, area_m2 FROM candidates").fetchall()
        for fid, area in rows:
            perimeter = (4 * np.pi * area / 0.5) ** 0.5
            conn.execute(
                "UPDATE candidates SET mean_prob = 0.7, max_prob = 0.8, perimeter_m = ? WHERE fid = ?",
                (perimeter, fid),
            )
        conn.commit()
    return project


def by_area(project) -> list[int]:
    features_ = project.features("candidates")
    return [a["fid"] for a in sorted(features_.attributes, key=lambda a: (-a["area_m2"], a["fid"]))]


def test_the_yield_order_learns_what_reviewers_accept(project):
    ranked = by_area(project)
    assert len(ranked) >= 2 * MIN_PER_CLASS + 4
    before = review_queue(project, order="yield")
    assert "the model's mean probability" in before[0].why and "3 of each are needed" in before[0].why
    for fid in ranked[:MIN_PER_CLASS]:  # the reviewer accepts the large ones, rejects the small
        record_decision(project, Decision(fid, "ana", "accepted"))
    for fid in ranked[-MIN_PER_CLASS:]:
        record_decision(project, Decision(fid, "ana", "rejected"))
    queue = review_queue(project, order="yield")
    open_ = [i.fid for i in queue if i.status == "pending"]
    assert open_ == ranked[MIN_PER_CLASS:-MIN_PER_CLASS], "the larger, the likelier: as she decided"
    assert queue[0].why.startswith("#1 by expected yield:") and "learned from 6 decisions" in queue[0].why
    assert queue[0].expected > queue[len(open_) - 1].expected
    assert [i.status for i in queue[len(open_) :]] == ["accepted"] * 3 + ["rejected"] * 3, "decided last"
    doubt = [i for i in review_queue(project, order="doubt") if i.status == "pending"]
    gaps = [abs(i.expected - 0.5) for i in doubt]
    assert gaps == sorted(gaps) and doubt[0].why.startswith("#1 by doubt:")


def test_what_is_left_is_ranked_again_after_a_decision(project):
    ranked = by_area(project)
    queue = review_queue(project, order="yield")
    # she accepts the smallest ones and rejects the largest: the opposite of what area suggested
    for fid in ranked[-MIN_PER_CLASS:]:
        record_decision(project, Decision(fid, "ana", "accepted"))
    for fid in ranked[:MIN_PER_CLASS]:
        record_decision(project, Decision(fid, "ana", "rejected"))
    again = rerank_rest(project, queue, 0, "yield")
    assert again[0] is queue[0], "what she has passed stays"
    rest = [i.fid for i in again[1:] if i.fid not in ranked[:MIN_PER_CLASS] + ranked[-MIN_PER_CLASS:]]
    assert rest == [f for f in reversed(ranked) if f in rest], "now the smaller, the likelier"
    assert rerank_rest(project, queue, 0, "id") is queue, "other orders never move"


def test_the_fit_is_a_logistic_model_that_stays_calm_with_few_decisions():
    rng = np.random.default_rng(0)
    rows = features(
        rng.uniform(0.5, 1, 400),
        rng.uniform(0.6, 1, 400),
        rng.uniform(100, 5000, 400),
        rng.uniform(40, 400, 400),
    )
    truth = 1 / (1 + np.exp(-(8 * (rows[:, 0] - 0.75))))
    labels = rng.random(400) < truth
    learned = fit(rows, labels)
    assert learned.trained and np.corrcoef(learned.predict(rows), truth)[0, 1] > 0.95
    separable = fit(rows[:6], np.array([1, 1, 1, 0, 0, 0]))  # perfectly separable: ridge keeps it finite
    assert separable.trained and np.all(np.isfinite(separable.predict(rows)))
    assert not fit(rows[:5], np.array([1, 1, 1, 0, 0])).trained
