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


def _gpkg_with(path, *wkts):
    """A GeoPackage written by OGR as given: no repair on the way in."""
    from osgeo import ogr, osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32646)
    source = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = source.CreateLayer("pred", srs, ogr.wkbPolygon)
    for wkt in wkts:
        feature = ogr.Feature(layer.GetLayerDefn())
        if "nan" in wkt:  # WKT cannot say NaN: build the ring point by point
            ring = ogr.Geometry(ogr.wkbLinearRing)
            for pair in wkt[wkt.index("((") + 2 : wkt.index("))")].split(","):
                ring.AddPoint_2D(*(float(v) for v in pair.split()))
            geometry = ogr.Geometry(ogr.wkbPolygon)
            geometry.AddGeometry(ring)
        else:
            geometry = ogr.CreateGeometryFromWkt(wkt)
        feature.SetGeometry(geometry)
        layer.CreateFeature(feature)
    source = None
    return path


def test_a_self_intersecting_polygon_is_repaired_not_a_traceback(tmp_path):
    """The fuzzer's find: a flipped byte made a ring cross itself and `evaluate` died in GEOS.
    Repaired on reading (GEOS make_valid, the polygonal parts kept), it is evaluated; coordinates
    that are not numbers are one line naming the file and the feature."""
    from rasterio.crs import CRS

    write_features(
        tmp_path / "truth.gpkg", FeatureSet([box(0, 0, 10, 10)], [{}], CRS.from_epsg(32646)), "truth"
    )
    bowtie = _gpkg_with(
        tmp_path / "bowtie.gpkg",
        "POLYGON ((0 0, 10 10, 10 0, 0 10, 0 0))",
        "POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0))",
    )
    done = run_python(
        [
            "-m",
            "rts_mapper_plugin",
            "evaluate",
            "--pred",
            str(bowtie),
            "--truth",
            str(tmp_path / "truth.gpkg"),
        ]
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["true_positives"] == 1 and "Traceback" not in done.stderr

    nan = _gpkg_with(tmp_path / "nan.gpkg", "POLYGON ((0 0, 10 0, 10 nan, 0 10, 0 0))")
    done = run_python(
        ["-m", "rts_mapper_plugin", "evaluate", "--pred", str(nan), "--truth", str(tmp_path / "truth.gpkg")]
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "nan.gpkg: feature 1 has coordinates that are not numbers" in done.stderr
