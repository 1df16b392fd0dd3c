"""Quality on real slumps: the CLI's own `chips` -> `train` -> `infer` -> `evaluate` on a published
dataset of real RTS image chips, scored as the paper scores a mapping (polygon F1 at IoU 0.5).

The dataset: the Cyber2A teaching copy of Yang et al. (2023, Remote Sensing of Environment 288,
113495), "Mapping retrogressive thaw slumps using deep neural networks": RGB image chips of
Arctic slumps with COCO polygon annotations, split into ``train`` and ``valtest``
(github.com/cyber2a/Cyber2A-RTS-ToyModel, folder ``data``). It is not redistributed here; point
``--data`` (or RTS_REAL_CHIPS) at its ``data`` folder.

The chips carry no georeferencing, so each split is packed into one mosaic GeoTIFF (images side
by side, 3 m pixels, an arbitrary UTM zone, values 0 moved to 1 so that 0 stays nodata) with the
polygons moved along; then the plugin's command line runs on them with its defaults (except
``--epochs``), exactly as a user would::

    python -m benchmarks.real_chips --data /path/to/data --epochs 8 [--subset nitze]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .common import OUT, ROOT, machine, record

PIXEL_M = 3.0
CRS = "EPSG:32608"
MOSAIC_WIDTH = 6000


def build_mosaic(data: Path, split: str, out: Path, subset: str | None) -> tuple[Path, Path, int]:
    """(mosaic.tif, polygons.gpkg, image count) for one split of the COCO annotations."""
    import rasterio
    from PIL import Image
    from rasterio.transform import from_origin
    from shapely.geometry import Polygon

    from rts_mapper_plugin.core.vectors import FeatureSet, write_features

    coco = json.loads((data / f"coco_rts_{split}.json").read_text())
    images = [i for i in coco["images"] if subset is None or f"_{subset}_" in i["file_name"]]
    by_image: dict[int, list] = {}
    for annotation in coco["annotations"]:
        by_image.setdefault(annotation["image_id"], []).append(annotation)
    # shelf packing, in file-name order
    images.sort(key=lambda i: i["file_name"])
    placements, x, y, shelf = [], 0, 0, 0
    for info in images:
        if x + info["width"] > MOSAIC_WIDTH:
            x, y, shelf = 0, y + shelf, 0
        placements.append((info, x, y))
        x, shelf = x + info["width"], max(shelf, info["height"])
    height = y + shelf
    mosaic = np.zeros((3, height, MOSAIC_WIDTH), np.uint8)
    geometries, attributes = [], []
    origin_x, origin_y = 500_000.0, 7_500_000.0
    for info, left, top in placements:
        rgb = np.asarray(Image.open(data / "images" / info["file_name"]).convert("RGB"))
        mosaic[:, top : top + rgb.shape[0], left : left + rgb.shape[1]] = np.maximum(rgb, 1).transpose(
            2, 0, 1
        )
        for annotation in by_image.get(info["id"], []):
            for ring in annotation["segmentation"]:
                xy = np.asarray(ring, dtype=float).reshape(-1, 2)
                if len(xy) < 3:
                    continue
                points = [
                    (origin_x + (left + px) * PIXEL_M, origin_y - (top + py) * PIXEL_M) for px, py in xy
                ]
                polygon = Polygon(points).buffer(0)
                if not polygon.is_empty:
                    geometries.append(polygon)
                    attributes.append({"image": info["file_name"]})
    out.mkdir(parents=True, exist_ok=True)
    tif = out / f"{split}.tif"
    profile = {
        "driver": "GTiff",
        "width": MOSAIC_WIDTH,
        "height": height,
        "count": 3,
        "dtype": "uint8",
        "crs": CRS,
        "transform": from_origin(origin_x, origin_y, PIXEL_M, PIXEL_M),
        "nodata": 0,
        "tiled": True,
        "compress": "deflate",
    }
    with rasterio.open(tif, "w", **profile) as dataset:
        dataset.write(mosaic)
    gpkg = out / f"{split}_rts.gpkg"
    write_features(gpkg, FeatureSet(geometries, attributes, CRS), layer="rts")
    return tif, gpkg, len(images)


def cli(*args: str) -> str:
    """Run a command of the plugin's CLI, echoing its output as it comes; return the output."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "rts_mapper_plugin", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    for line in process.stdout:
        lines.append(line)
        if args[0] == "train":
            print(f"  {line.rstrip()}", flush=True)
    error = process.stderr.read()
    if process.wait():
        raise RuntimeError(f"{args[0]} failed:\n{error[-3000:]}")
    output = "".join(lines)
    print(f"[{time.perf_counter() - started:.0f} s] {args[0]}: {output.strip().splitlines()[-1]}", flush=True)
    return output


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("RTS_REAL_CHIPS"))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--subset", default=None, help="only images whose name holds _SUBSET_ (e.g. nitze)")
    parser.add_argument("--out", default=str(OUT / "real_chips"))
    parser.add_argument("--tta", type=int, default=1)
    args, extra = parser.parse_known_args(argv or [])
    if not args.data or not (Path(args.data) / "coco_rts_train.json").is_file():
        print("real_chips: give --data (or RTS_REAL_CHIPS) = the Cyber2A RTS dataset's data folder; skipped")
        return {}
    data, out = Path(args.data), Path(args.out)
    train_tif, train_rts, train_images = build_mosaic(data, "train", out, args.subset)
    val_tif, val_rts, val_images = build_mosaic(data, "valtest", out, None)
    chips_log = cli(
        "chips", "--image", str(train_tif), "--positives", str(train_rts), "--out", str(out / "chips")
    )
    train_log = cli(
        "train",
        "--chips",
        str(out / "chips"),
        "--out",
        str(out / "model.safetensors"),
        "--epochs",
        str(args.epochs),
        *extra,
    )
    cli(
        "infer", "--model", str(out / "model.safetensors"), "--image", str(val_tif), "--out", str(out / "candidates.gpkg"),
        "--tta", str(args.tta),
    )  # fmt: skip
    scores = {}
    for iou in ("0.5", "0.1"):
        scores[iou] = json.loads(
            cli("evaluate", "--pred", str(out / "candidates.gpkg"), "--truth", str(val_rts), "--iou", iou)
        )
    # the same model over the chips it trained on: a low score here means the model has not yet
    # fitted its training data (too few steps), a high one beside a low held-out score that it
    # does not generalise to other sites
    cli(
        "infer", "--model", str(out / "model.safetensors"), "--image", str(train_tif),
        "--out", str(out / "train_candidates.gpkg"),
    )  # fmt: skip
    seen = json.loads(
        cli("evaluate", "--pred", str(out / "train_candidates.gpkg"), "--truth", str(train_rts))
    )
    result = {
        "machine": machine(),
        "epochs": args.epochs,
        "subset": args.subset,
        "train_images": train_images,
        "val_images": val_images,
        "chips": chips_log.strip().splitlines()[-1],
        "training": [line for line in train_log.splitlines() if line.startswith(("epoch", "expected"))],
        "tta": args.tta,
        "f1_at_0.5": scores["0.5"]["f1"],
        "evaluation": scores,
        "f1_at_0.5_on_training_chips": seen["f1"],
    }
    record("real_chips", result)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
