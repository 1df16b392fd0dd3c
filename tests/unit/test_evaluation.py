"""Polygon-level precision / recall / F1 checked against hand computation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from shapely.geometry import box

from rts_mapper_plugin.core.model.evaluation import evaluate_polygons, iou
from rts_mapper_plugin.core.vectors import FeatureSet, write_features
from tests.conftest import run_python


def test_iou():
    assert iou(box(0, 0, 10, 10), box(5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou(box(0, 0, 1, 1), box(2, 2, 3, 3)) == 0


def test_hand_computed_case():
    truths = [box(0, 0, 10, 10), box(20, 0, 30, 10), box(40, 0, 50, 10)]
    predictions = [
        box(0, 0, 10, 8),  # IoU 0.8 with truth 1: a true positive
        box(20, 0, 30, 4),  # IoU 0.4 with truth 2: not enough
        box(60, 0, 70, 10),  # nothing there: a false positive
        box(41, 0, 50, 10),  # IoU 0.9 with truth 3
    ]
    result = evaluate_polygons(predictions, truths, 0.5)
    assert (result.true_positives, result.found_truths) == (2, 2)
    assert result.precision == pytest.approx(2 / 4) and result.recall == pytest.approx(2 / 3)
    assert result.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert result.mean_iou_of_matches == pytest.approx((0.8 + 0.9) / 2)
    stricter = evaluate_polygons(predictions, truths, 0.85)
    assert stricter.true_positives == 1


def test_empty_sides():
    assert evaluate_polygons([], [box(0, 0, 1, 1)]).recall == 0
    assert evaluate_polygons([box(0, 0, 1, 1)], []).precision == 0


def test_cli_prints_json(tmp_path):
    from rasterio.crs import CRS

    crs = CRS.from_epsg(32646)
    write_features(tmp_path / "truth.gpkg", FeatureSet([box(0, 0, 10, 10)], [{}], crs), "truth")
    write_features(tmp_path / "pred.gpkg", FeatureSet([box(0, 0, 10, 9)], [{}], crs), "pred")
    done = run_python(
        [
            "-m",
            "rts_mapper_plugin",
            "evaluate",
            "--pred",
            str(tmp_path / "pred.gpkg"),
            "--truth",
            str(tmp_path / "truth.gpkg"),
        ]
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["f1"] == 1.0
    done = run_python(
        [
            "-m",
            "rts_mapper_plugin",
            "evaluate",
            "--pred",
            str(tmp_path / "nope.gpkg"),
            "--truth",
            str(tmp_path / "truth.gpkg"),
        ]
    )
    assert (
        done.returncode == 2
        and done.stderr.startswith("error: ")
        and "nope.gpkg: no such file" in done.stderr
    )


def test_component_counts_over_operating_points():
    """Pixel components matched at IoU 0.5 like polygons, for each threshold x minimum size."""
    from rts_mapper_plugin.core.model.evaluation import count_components

    truth = np.zeros((60, 60), bool)
    truth[5:15, 5:15] = True  # 100 px, predicted well
    truth[30:50, 30:50] = True  # 400 px, predicted at half its size only when the threshold is high
    probability = np.zeros((60, 60), np.float32)
    probability[5:15, 5:15] = 0.9
    probability[30:50, 30:50] = 0.4
    probability[30:50, 30:40] = 0.8
    probability[55:58, 55:58] = 0.9  # a 9 px false positive
    valid = np.ones_like(truth)
    counts = count_components(probability, truth, valid, np.array([0.3, 0.6]), np.array([1, 20]))
    assert counts.truths == 2
    # threshold 0.3: both slumps whole + the speck; 0.6: the big one at half (IoU 0.5, still a match)
    assert counts.true_positives.tolist() == [[2, 2], [2, 2]]
    assert counts.predictions.tolist() == [[3, 2], [3, 2]]
    valid[30:50, 30:40] = False  # nodata over half the big one: its prediction shrinks with it
    counts = count_components(probability, truth, valid, np.array([0.6]), np.array([1]))
    assert counts.true_positives.tolist() == [[1]] and counts.predictions.tolist() == [[2]]
