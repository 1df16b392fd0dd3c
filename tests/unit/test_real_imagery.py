"""Real imagery through the whole command line: the Peel Plateau Sentinel-2 chip (real 16-bit
reflectance, real slumps) -> prepare -> chips from the experts' polygons -> a tiny training run ->
infer -> evaluate against an independent reference (the Willow River outlines inside the AOI).

A smoke test of the path on the real thing, not a quality test: two epochs on one 251 x 251 px
image cannot map slumps (quality on real slumps is measured by ``python -m benchmarks.real_chips``,
figures in docs/benchmarks.md). What it holds: every step accepts real files, the outputs are
complete and valid, the card carries a calibrated operating point, and the scores are computed.
"""

from __future__ import annotations

import json

import rasterio

from rts_mapper_plugin.core.model.model_file import read_card
from rts_mapper_plugin.core.vectors import FeatureSet, read_features, write_features
from tests.conftest import REAL_DATA, requires_real_data, run_python

PEEL = REAL_DATA / "peel"
WILLOW = REAL_DATA / "willow_river" / "Willow_River_Thaw_Slumps.shp"


def cli(*args: str) -> str:
    done = run_python(["-m", "rts_mapper_plugin", *args])
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@requires_real_data("peel", "S2_20210821T210019_20210821T210020_T08WMA.tif")
@requires_real_data("willow_river", "Willow_River_Thaw_Slumps.shp")
def test_real_sentinel2_through_prepare_chips_train_infer_evaluate(tmp_path):
    from shapely.geometry import shape
    from shapely.ops import unary_union

    scene = PEEL / "S2_20210821T210019_20210821T210020_T08WMA.tif"
    # Google Earth Engine exports carry no band names: bands 3,2,1 are B4, B3, B2 (red, green, blue)
    cli("prepare", "--out", str(tmp_path / "peel.tif"), "--bands", "3,2,1", str(scene))
    with rasterio.open(tmp_path / "peel.tif") as prepared:
        assert prepared.count == 3 and prepared.dtypes[0] == "uint8" and prepared.crs.to_epsg() == 32608
        assert prepared.read(1).max() > 200, "the 16-bit reflectance was stretched to 8 bits"

    experts = [
        read_features(PEEL / "digitized" / f"expert{n:02d}.shp", polygons_only=True) for n in (1, 2, 3)
    ]
    positives = FeatureSet(
        [g for e in experts for g in e.geometries],
        [{} for e in experts for _ in e.geometries],
        experts[0].crs,
    )
    write_features(tmp_path / "experts.gpkg", positives, layer="rts")
    chips = cli(
        "chips", "--image", str(tmp_path / "peel.tif"), "--positives", str(tmp_path / "experts.gpkg"),
        "--out", str(tmp_path / "chips"), "--size", "64", "--buffer", "100",
    )  # fmt: skip
    assert "chips (" in chips
    trained = cli(
        "train", "--chips", str(tmp_path / "chips"), "--out", str(tmp_path / "m.safetensors"),
        "--epochs", "2", "--encoder", "resnet18", "--batch-size", "4", "--crop-size", "64",
        "--tile-size", "128", "--overlap", "32",
    )  # fmt: skip
    assert "expected: 2 epochs ≈" in trained and "validation F1" in trained
    card = read_card(tmp_path / "m.safetensors")
    assert card.pixel_size_m == 10.0 and card.training["calibration"] is not None
    cli(
        "infer", "--model", str(tmp_path / "m.safetensors"), "--image", str(tmp_path / "peel.tif"),
        "--out", str(tmp_path / "candidates.gpkg"), "--prob", str(tmp_path / "prob.tif"), "--tta", "2",
    )  # fmt: skip
    with rasterio.open(tmp_path / "prob.tif") as probability:
        assert probability.shape == (251, 251) and probability.crs.to_epsg() == 32608

    # the independent reference: the Willow River outlines that fall inside the experts' AOI
    aoi = unary_union(
        [shape(f["geometry"]) for f in json.loads((PEEL / "Peel_AOI_2500.geojson").read_text())["features"]]
    )
    willow = read_features(WILLOW, polygons_only=True).to_crs(experts[0].crs)
    inside = [g for g in willow.geometries if g.intersects(aoi)]
    assert len(inside) == 10
    write_features(
        tmp_path / "reference.gpkg", FeatureSet(inside, [{}] * len(inside), willow.crs), layer="rts"
    )
    scores = json.loads(
        cli(
            "evaluate",
            "--pred",
            str(tmp_path / "candidates.gpkg"),
            "--truth",
            str(tmp_path / "reference.gpkg"),
        )
    )
    assert scores["truths"] == 10 and 0.0 <= scores["f1"] <= 1.0
