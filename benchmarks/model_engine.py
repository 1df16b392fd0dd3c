"""Model engine benchmarks on this machine's CPU (or GPU when present).

* inference throughput (Mpix/s, km²/min at 3 m) for resnet34 and mobilenet_v2 on a 4096² synthetic
  PlanetScope region, and what the whole 54,000 km² corridor would take at that rate;
* overhead = end-to-end ``predict_raster`` time / the bare forward passes over the same tiles
  (same batches, same threads, tensors already in memory);
* peak memory of ``infer`` on a 4096² image and on a 16384² one (a VRT of the same image 4 x 4).

Training speed has its own benchmark (benchmarks/training_speed.py).

Each measurement runs in its own child process (``python -m benchmarks.model_engine worker ...``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .common import OUT, machine, record, run_measured, worker_figures
from .imagery_memory import make_mosaic_vrt

CORRIDOR_KM2 = 54_000
REGION_SIZE = 4096


def cached_region() -> dict:
    """A 4096² synthetic region, its prepared 2019 image, and small models trained on it (cached;
    built in a child process so that this one stays small)."""
    done = OUT / "cache" / "model_engine" / "ready.json"
    if not done.exists():
        run_measured(["-m", "benchmarks.model_engine", "worker", "build"])
    return json.loads(done.read_text())


def build_region() -> dict:
    cache = OUT / "cache" / "model_engine"
    done = cache / "ready.json"
    from rts_mapper_plugin.core.imagery.prepare import prepare_image
    from rts_mapper_plugin.core.model.chips import make_chips
    from rts_mapper_plugin.core.model.training import TrainConfig, train_model
    from rts_mapper_plugin.example.synthetic import RegionConfig, generate_region

    region = generate_region(cache / "region", RegionConfig(size=REGION_SIZE, seed=7))
    image = prepare_image(region.scenes[2019], cache / "2019.tif").path
    chips = make_chips(image, region.truth_uri("rts"), region.truth_uri("lookalikes"), cache / "chips")
    models = {}
    for encoder in ("resnet34", "mobilenet_v2"):
        config = TrainConfig(encoder=encoder, epochs=3, learning_rate=1e-3)
        models[encoder] = str(train_model(chips, cache / f"{encoder}.safetensors", config).model_path)
    info = {
        "image": str(image),
        "chips": str(cache / "chips"),
        "models": models,
        "truth": region.truth_uri("rts"),
    }
    done.write_text(json.dumps(info))
    return info


# -- workers (run in a child process) --


def worker_infer(model: str, image: str, bare: bool) -> dict:
    import numpy as np
    import rasterio
    import torch

    from rts_mapper_plugin.core.model.inference import (
        InferConfig,
        optimise_for_inference,
        predict_raster,
        tile_origins,
    )
    from rts_mapper_plugin.core.model.model_file import configure_threads, load_model
    from rts_mapper_plugin.core.model.training import normalise

    configure_threads()
    loaded, card = load_model(model)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    batch = 1 if device == "cpu" else 8
    # one-time costs, reported apart: tracing/folding and the first (warm-up) passes
    started = time.perf_counter()
    optimised = optimise_for_inference(loaded, device, card.tile_size)
    example = torch.zeros(batch, 3, card.tile_size, card.tile_size, device=device)
    with torch.inference_mode():
        for _ in range(3):
            optimised(example.contiguous(memory_format=torch.channels_last) if device == "cpu" else example)
    setup_seconds = time.perf_counter() - started
    result = predict_raster(
        model, image, OUT / "bench_prob.tif", InferConfig(batch_size=batch), model=optimised, card=card
    )
    (OUT / "bench_prob.tif").unlink(missing_ok=True)
    figures = {
        "seconds": result.seconds,
        "forward_seconds_inside": result.forward_seconds,
        "tiles": result.tiles,
        "skipped_tiles": result.skipped_tiles,
        "megapixels": result.megapixels,
        "area_km2": result.area_km2,
        "candidates": len(result.candidates),
        "device": result.device,
        "batch_size": batch,
        "setup_seconds": setup_seconds,
    }
    if bare:
        # the same tiles, already decoded and normalised in memory, through the same model
        with rasterio.open(image) as dataset:
            rgb = dataset.read()
        size, stride = card.tile_size, card.tile_size - card.overlap
        rows = tile_origins(rgb.shape[1], size, stride)
        cols = tile_origins(rgb.shape[2], size, stride)
        tiles = [rgb[:, r : r + size, c : c + size] for r in rows for c in cols]
        batches = [normalise(np.stack(tiles[i : i + batch]), card) for i in range(0, len(tiles), batch)]
        started = time.perf_counter()
        with torch.inference_mode():
            for array in batches:
                tensor = torch.from_numpy(array).to(device)
                if device == "cpu":
                    tensor = tensor.contiguous(memory_format=torch.channels_last)
                torch.sigmoid(optimised(tensor))
        figures["bare_forward_seconds"] = time.perf_counter() - started
    return figures


def _child(*args: str) -> dict:
    return worker_figures("benchmarks.model_engine", *args)


def main() -> dict:
    info = cached_region()
    results: dict = {"machine": machine(), "image_px": REGION_SIZE}
    for encoder, model in info["models"].items():
        figures = _child("infer", model, info["image"], "bare")
        mpix = figures["megapixels"] / figures["seconds"]
        km2_min = figures["megapixels"] * 9 / (figures["seconds"] / 60)  # 3 m pixels: 9 m² each
        results[encoder] = {
            "mpix_per_s": round(mpix, 2),
            "km2_per_min": round(km2_min, 1),
            "seconds": round(figures["seconds"], 1),
            "bare_forward_seconds": round(figures["bare_forward_seconds"], 1),
            "overhead_ratio": round(figures["seconds"] / figures["bare_forward_seconds"], 3),
            "setup_seconds": round(figures["setup_seconds"], 1),
            "batch_size": figures["batch_size"],
            "tiles": figures["tiles"],
            "candidates": figures["candidates"],
            "peak_mib_4096": figures["peak_mib"],
            "corridor_54000_km2_hours": round(CORRIDOR_KM2 / km2_min / 60, 1),
            "device": figures["device"],
        }
    vrt = make_mosaic_vrt(Path(info["image"]), OUT / "cache" / "model_engine" / "2019_x16.vrt")
    big = _child("infer", info["models"]["mobilenet_v2"], str(vrt), "no-bare")
    small_peak = results["mobilenet_v2"]["peak_mib_4096"]
    results["memory"] = {
        "encoder": "mobilenet_v2",
        "peak_mib_4096": small_peak,
        "peak_mib_16384": big["peak_mib"],
        "ratio_16k_over_4k": round(big["peak_mib"] / small_peak, 3),
        "seconds_16384": round(big["seconds"], 1),
    }
    record("model_engine", results)
    return results


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "worker":
    kind = sys.argv[2]
    if kind == "build":
        output = build_region()
    else:
        output = worker_infer(sys.argv[3], sys.argv[4], sys.argv[5] == "bare")
    print(json.dumps(output))
