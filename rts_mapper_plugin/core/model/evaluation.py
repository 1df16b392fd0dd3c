"""Polygon-level accuracy (Huang et al. 2020): precision, recall and F1 at an IoU threshold.

A predicted polygon is a true positive when its IoU with some truth polygon exceeds the
threshold; a truth polygon is found when some prediction's IoU with it exceeds the threshold.
Precision = true-positive predictions / predictions; recall = found truths / truths. At a
threshold of 0.5 or more this is a one-to-one matching (two disjoint polygons cannot both
overlap more than half of a third).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np
from shapely.strtree import STRtree

from ..errors import RtsMapperError
from ..vectors import FeatureSet, read_features
from .candidates import EIGHT_CONNECTED


@dataclass
class Evaluation:
    predictions: int
    truths: int
    true_positives: int
    found_truths: int
    precision: float
    recall: float
    f1: float
    iou_threshold: float
    mean_iou_of_matches: float

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def iou(a, b) -> float:
    union = a.union(b).area
    return a.intersection(b).area / union if union > 0 else 0.0


def best_ious(left: list, right: list) -> tuple[np.ndarray, np.ndarray]:
    """For each polygon of ``left`` its best IoU with ``right``, and the reverse."""
    best_left = np.zeros(len(left))
    best_right = np.zeros(len(right))
    if not left or not right:
        return best_left, best_right
    tree = STRtree(right)
    for i, polygon in enumerate(left):
        for j in tree.query(polygon, predicate="intersects"):
            value = iou(polygon, right[int(j)])
            best_left[i] = max(best_left[i], value)
            best_right[int(j)] = max(best_right[int(j)], value)
    return best_left, best_right


def evaluate_polygons(predictions: list, truths: list, iou_threshold: float = 0.5) -> Evaluation:
    predictions = [g for g in predictions if g is not None and not g.is_empty]
    truths = [g for g in truths if g is not None and not g.is_empty]
    best_pred, best_truth = best_ious(predictions, truths)
    true_positives = int((best_pred > iou_threshold).sum())
    found = int((best_truth > iou_threshold).sum())
    precision = true_positives / len(predictions) if predictions else 0.0
    recall = found / len(truths) if truths else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    matched = best_pred[best_pred > iou_threshold]
    return Evaluation(
        predictions=len(predictions),
        truths=len(truths),
        true_positives=true_positives,
        found_truths=found,
        precision=precision,
        recall=recall,
        f1=f1,
        iou_threshold=iou_threshold,
        mean_iou_of_matches=float(matched.mean()) if len(matched) else 0.0,
    )


def evaluate_files(
    predictions: str | os.PathLike | FeatureSet,
    truth: str | os.PathLike | FeatureSet,
    iou_threshold: float = 0.5,
) -> Evaluation:
    """Evaluate two polygon layers (the prediction reprojected to the truth's CRS)."""
    if not 0 < iou_threshold < 1:
        raise RtsMapperError(f"the IoU threshold must be between 0 and 1, not {iou_threshold}")
    pred = (
        predictions if isinstance(predictions, FeatureSet) else read_features(predictions, polygons_only=True)
    )
    true = truth if isinstance(truth, FeatureSet) else read_features(truth, polygons_only=True)
    if true.crs is not None and pred.crs is not None:
        pred = pred.to_crs(true.crs)
    return evaluate_polygons(pred.geometries, true.geometries, iou_threshold)


@dataclass
class ComponentCounts:
    """Object counts of one probability chip against its truth, for a grid of threshold x
    minimum size: ``true_positives[i, j]``, ``predictions[i, j]`` (threshold i, size j)."""

    true_positives: np.ndarray
    predictions: np.ndarray
    truths: int


def count_components(
    probability: np.ndarray,
    truth: np.ndarray,
    valid: np.ndarray,
    thresholds: np.ndarray,
    min_pixels: np.ndarray,
    iou_threshold: float = 0.5,
) -> ComponentCounts:
    """Raster version of :func:`evaluate_polygons` for validation chips, at many operating points.

    8-connected components of ``probability >= threshold`` (valid pixels only) are matched with
    the 8-connected components of ``truth`` by pixel IoU; a prediction smaller than the minimum
    size is dropped (as the candidate builder drops it). Cheap enough to run every epoch.
    """
    from scipy import ndimage

    truth_labels, n_truth = ndimage.label(truth & valid, structure=EIGHT_CONNECTED)
    truth_size = np.bincount(truth_labels.ravel(), minlength=n_truth + 1)
    tp = np.zeros((len(thresholds), len(min_pixels)), dtype=np.int64)
    predicted = np.zeros_like(tp)
    for i, threshold in enumerate(thresholds):
        labels, n_pred = ndimage.label((probability >= threshold) & valid, structure=EIGHT_CONNECTED)
        if not n_pred:
            continue
        size = np.bincount(labels.ravel(), minlength=n_pred + 1)
        best = np.zeros(n_pred + 1)
        if n_truth:
            both = (labels > 0) & (truth_labels > 0)
            pairs = labels[both].astype(np.int64) * (n_truth + 1) + truth_labels[both]
            inter = np.bincount(pairs, minlength=(n_pred + 1) * (n_truth + 1)).reshape(
                n_pred + 1, n_truth + 1
            )
            union = size[:, None] + truth_size[None, :] - inter
            with np.errstate(invalid="ignore", divide="ignore"):
                best = np.nan_to_num(inter / union)[:, 1:].max(axis=1)
        matched = best[1:] >= iou_threshold
        for j, smallest in enumerate(min_pixels):
            kept = size[1:] >= smallest
            predicted[i, j] = int(kept.sum())
            tp[i, j] = int((kept & matched).sum())
    return ComponentCounts(tp, predicted, int(n_truth))
