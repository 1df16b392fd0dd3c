"""ONNX Runtime vs torch for inference on this CPU, side by side in one run: the same model file,
the same image, the same tiles, each backend in its own child process (time, peak memory), run
alternately (torch, onnxruntime, torch, onnxruntime...) so that a machine busy with something
else slows both alike; the best run of each counts. Also: what each backend costs to install.

    python -m benchmarks backends

Models: resnet18 and resnet34 DeepLabv3+ (weights random: speed does not depend on them),
512-pixel tiles, overlap 64, one tile per pass (the CPU default); the image: a 2048² prepared
synthetic region. Each child runs ``predict_raster`` twice and reports the second run, so the
one-time costs (tracing and freezing for torch) stay out; the ONNX export (cached, once per
model file) is made before the children start.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .common import OUT, machine, record, worker_figures

ROUNDS = 3
SIZE = 2048
ENCODERS = ("resnet18", "resnet34")


def inputs() -> dict:
    cache = OUT / "cache" / "backends"
    done = cache / "ready.json"
    if done.exists():
        return json.loads(done.read_text())
    from rts_mapper_plugin.core.imagery.prepare import prepare_image
    from rts_mapper_plugin.core.model.model_file import ModelCard, create_model, save_model
    from rts_mapper_plugin.example.synthetic import RegionConfig, generate_region

    region = generate_region(cache / "region", RegionConfig(size=SIZE, seed=5))
    image = prepare_image(region.scenes[2019], cache / "2019.tif").path
    models = {}
    for encoder in ENCODERS:
        card = ModelCard(encoder=encoder, tile_size=512, overlap=64)
        models[encoder] = str(save_model(create_model(encoder), card, cache / f"{encoder}.safetensors"))
    info = {"image": str(image), "models": models}
    done.write_text(json.dumps(info))
    return info


def worker(model: str, image: str, backend: str) -> dict:
    from rts_mapper_plugin.core.model.inference import InferConfig, predict_raster

    config = InferConfig(device="cpu", backend=backend)
    prob = OUT / f"backends_{backend}.tif"
    predict_raster(model, image, prob, config)  # warm: tracing / the cached export, first passes
    result = predict_raster(model, image, prob, config)
    return {
        "seconds": result.seconds,
        "forward_seconds": result.forward_seconds,
        "tiles": result.tiles - result.skipped_tiles,
        "candidates": len(result.candidates),
        "notes": result.notes,
    }


def _folder_mib(paths) -> float:
    return sum(f.stat().st_size for p in paths if p.exists() for f in p.rglob("*") if f.is_file()) / 2**20


def install_sizes() -> dict:
    """MiB on disk of what each backend brings (this environment's site-packages)."""
    import sysconfig

    site = Path(sysconfig.get_paths()["purelib"])
    names = ("torch", "torchvision", "triton", "segmentation_models_pytorch", "timm")
    torch_stack = {site / n for n in names} | set(site.glob("nvidia*"))  # the CUDA libraries
    return {
        "torch stack (torch, torchvision, CUDA libraries, triton, smp, timm)": round(
            _folder_mib(torch_stack)
        ),
        "onnxruntime": round(_folder_mib([site / "onnxruntime"])),
    }


def main() -> dict:
    import numpy as np
    import rasterio

    from rts_mapper_plugin.core.model.onnx_export import cached_export

    info = inputs()
    for model in info["models"].values():
        cached_export(model)  # once, here: no worker's time or memory includes the export
    results: dict = {"machine": machine(), "image_px": SIZE, "rounds": ROUNDS}
    for encoder, model in info["models"].items():
        runs: dict[str, list[dict]] = {"torch": [], "onnxruntime": []}
        for _ in range(ROUNDS):
            for backend in runs:
                runs[backend].append(worker_figures("benchmarks.backends", model, info["image"], backend))
        best = {b: min(r, key=lambda f: f["seconds"]) for b, r in runs.items()}
        with (
            rasterio.open(OUT / "backends_torch.tif") as a,
            rasterio.open(OUT / "backends_onnxruntime.tif") as b,
        ):
            differ = int(np.abs(a.read(1).astype(int) - b.read(1).astype(int)).max())
        results[encoder] = {
            backend: {
                "seconds": round(f["seconds"], 2),
                "ms_per_tile": round(1000 * f["forward_seconds"] / max(1, f["tiles"]), 1),
                "peak_mib": f["peak_mib"],
                "all_seconds": [round(r["seconds"], 2) for r in runs[backend]],
            }
            for backend, f in best.items()
        }
        results[encoder]["torch_over_onnxruntime"] = round(
            best["torch"]["seconds"] / best["onnxruntime"]["seconds"], 2
        )
        results[encoder]["same_candidates"] = best["torch"]["candidates"] == best["onnxruntime"]["candidates"]
        results[encoder]["probability_max_diff_percent"] = differ
    results["install_mib"] = install_sizes()
    record("backends", results)
    return results


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "worker":
    started = time.perf_counter()
    print(json.dumps(worker(sys.argv[2], sys.argv[3], sys.argv[4])))
