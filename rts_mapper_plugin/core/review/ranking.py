"""Review that learns: the queue ordered by what this project's own decisions teach.

A small logistic model, refitted from the candidates decided so far (accepted = 1, rejected = 0;
unsure, conflicts and pending ones left out), predicts for every other candidate how likely a
reviewer is to accept it, from what the model and the outline say: the candidate's mean and
maximum probability, its area (log) and its compactness (4πA/P²). Two orders use it:

* ``yield``: the likeliest slumps first: the most slumps found per hour of review;
* ``doubt``: the candidates the project is least sure of first (prediction nearest 0.5): the
  decisions that teach the next training round the most.

Until both classes have :data:`MIN_PER_CLASS` decisions, the prediction is the segmentation
model's own mean probability, and each item's ``why`` says so. The fit is plain Newton steps on
a handful of features: milliseconds for thousands of candidates, so the dock re-ranks what is
left after every decision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..project.store import MappingProject

LEARNING_ORDERS = ("yield", "doubt")
MIN_PER_CLASS = 3  # decisions of each kind before the project's own model is trusted
L2 = 1.0  # ridge on the standardised weights: few decisions must not give wild weights


def features(mean_prob, max_prob, area_m2, perimeter_m) -> np.ndarray:
    """One row per candidate: mean and max probability, log area, compactness."""
    mean_prob = np.asarray(mean_prob, dtype=float)
    max_prob = np.asarray(max_prob, dtype=float)
    area = np.maximum(np.asarray(area_m2, dtype=float), 1.0)
    perimeter = np.maximum(np.asarray(perimeter_m, dtype=float), 1e-6)
    compactness = np.clip(4 * math.pi * area / perimeter**2, 0.0, 1.0)
    return np.column_stack([mean_prob, max_prob, np.log(area), compactness])


@dataclass
class Learned:
    """What the project's decisions teach: a logistic model, or None before enough decisions."""

    accepted: int
    rejected: int
    weights: np.ndarray | None = None
    centre: np.ndarray | None = None
    scale: np.ndarray | None = None

    @property
    def trained(self) -> bool:
        return self.weights is not None

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """P(accepted) for each row of :func:`features` (the model's mean probability before
        the project's own model is trained)."""
        if not self.trained:
            return rows[:, 0].copy()
        z = np.column_stack([np.ones(len(rows)), (rows - self.centre) / self.scale]) @ self.weights
        return 1.0 / (1.0 + np.exp(-z))

    def source(self) -> str:
        if self.trained:
            return f"learned from {self.accepted + self.rejected} decisions ({self.accepted} accepted, {self.rejected} rejected)"
        return (
            f"the model's mean probability: {self.accepted} accepted and {self.rejected} rejected so far, "
            f"{MIN_PER_CLASS} of each are needed to learn from"
        )


def fit(rows: np.ndarray, labels: np.ndarray) -> Learned:
    """Ridge-logistic regression by Newton's method on standardised features."""
    labels = np.asarray(labels, dtype=float)
    accepted, rejected = int(labels.sum()), int(len(labels) - labels.sum())
    learned = Learned(accepted, rejected)
    if accepted < MIN_PER_CLASS or rejected < MIN_PER_CLASS:
        return learned
    centre = rows.mean(axis=0)
    scale = rows.std(axis=0)
    scale[scale < 1e-9] = 1.0
    x = np.column_stack([np.ones(len(rows)), (rows - centre) / scale])
    w = np.zeros(x.shape[1])
    ridge = np.diag([0.0] + [L2] * (x.shape[1] - 1))  # the intercept goes free
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        gradient = x.T @ (p - labels) + ridge @ w
        hessian = (x.T * (p * (1 - p))) @ x + ridge + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    learned.weights, learned.centre, learned.scale = w, centre, scale
    return learned


def learn(project: MappingProject) -> Learned:
    """The model this project's decided candidates teach (every run's)."""
    with project.connection() as conn:
        rows = conn.execute(
            "SELECT mean_prob, max_prob, area_m2, perimeter_m, status FROM candidates "
            "WHERE status IN ('accepted', 'rejected')"
        ).fetchall()
    if not rows:
        return Learned(0, 0)
    table = features(*zip(*[(r[0] or 0.0, r[1] or r[0] or 0.0, r[2] or 1.0, r[3] or 1.0) for r in rows]))
    return fit(table, np.array([r[4] == "accepted" for r in rows]))


def item_features(items) -> np.ndarray:
    return features(
        [i.mean_prob for i in items],
        [i.max_prob or i.mean_prob for i in items],
        [i.area_m2 for i in items],
        [i.perimeter_m or i.geometry.length for i in items],
    )


def rank(items: list, order: str, learned: Learned) -> list:
    """``items`` (QueueItems) in ``order`` (one of :data:`LEARNING_ORDERS`), each with its
    predicted chance of acceptance and why it is where it is."""
    if not items:
        return []
    chance = learned.predict(item_features(items))
    key = -chance if order == "yield" else np.abs(chance - 0.5)
    ranked = [items[i] for i in np.lexsort(([i.fid for i in items], key))]
    source = learned.source()
    by_fid = {item.fid: float(c) for item, c in zip(items, chance)}
    for place, item in enumerate(ranked, 1):
        p = by_fid[item.fid]
        item.expected = p
        what = "expected yield" if order == "yield" else "doubt"
        item.why = f"#{place} by {what}: {p:.0%} likely to be accepted, {source}"
    return ranked
