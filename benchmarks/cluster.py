"""Inference on a Dask cluster vs one process, on the same region in one run.

A 2000 x 2000 px synthetic region (36 km² at 3 m), the tests' small trained resnet18, PyTorch on
the CPU. Three ways, each timed from call to candidates: one process (``predict_raster``, the
whole machine's threads); a LocalCluster of one worker process and of two (one thread each),
blocks of 2 strips; then the same region's scenes prepared (one process, and local clusters of
one and two workers). Reported: seconds, throughput and its ratio to one process, the cluster's
start-up, each worker's peak memory, the identity of the outputs, and the time 1.06 million km²
(the Tibetan Plateau's permafrost) would take on N such workers, from the measured cost of a
block (the assumptions are printed with it).

    python -m benchmarks cluster          # about 5 min here
"""

from __future__ import annotations

import shutil
import time

from .common import OUT, machine, record

SIZE = 2000
STRIPS_PER_BLOCK = 2
PREPARE_WINDOW = 256
PLATEAU_KM2 = 1.06e6


def _region():
    """The region's 2019 scenes and their prepared image."""
    from rts_mapper_plugin.core.imagery.prepare import prepare_image
    from tests.data.fixtures import small_region

    cache = OUT / "cache" / f"cluster_{SIZE}"
    image = cache / "2019.tif"
    if not image.exists():
        shutil.rmtree(cache, ignore_errors=True)
    region = small_region(cache / "region", size=SIZE, seed=11)
    if not image.exists():
        prepare_image(region.scenes[2019], image)
    return region.scenes[2019], image


def _prepare_rows(scenes, work) -> dict:
    """Preparing the year's scenes in one process vs on local clusters of 1 and 2 workers
    (windows of 256 px, so pieces of 1024 rows: 2 pieces)."""
    import numpy as np
    import rasterio

    from rts_mapper_plugin.core.cluster import session
    from rts_mapper_plugin.core.imagery.prepare import prepare_image

    started = time.perf_counter()
    single = prepare_image(scenes, work / "prepared_single.tif", window_size=PREPARE_WINDOW)
    rows = {"one process": {"seconds": round(time.perf_counter() - started, 1)}}
    with rasterio.open(single.path) as dataset:
        reference = dataset.read()
    for workers in (1, 2):
        started = time.perf_counter()
        out = work / f"prepared_cluster{workers}.tif"
        with session(f"local:{workers}") as client:
            up = time.perf_counter() - started
            prepare_image(scenes, out, window_size=PREPARE_WINDOW, client=client)
            seconds = time.perf_counter() - started
            peaks = client.run(_peak_mib)
        with rasterio.open(out) as dataset:
            same = bool(np.array_equal(dataset.read(), reference))
        rows[f"local cluster, {workers} worker(s)"] = {
            "seconds": round(seconds, 1),
            "start_up_s": round(up, 1),
            "worker_peak_mib": sorted(round(v) for v in peaks.values()),
            "same_image": same,
        }
    base = rows["one process"]["seconds"]
    for row in rows.values():
        row["throughput_vs_one_process"] = round(base / row["seconds"], 2)
    return rows


def _peak_mib() -> float:
    """This process's own peak resident memory (VmHWM: ru_maxrss would carry the peak of the
    process a worker was started from across its exec)."""
    from pathlib import Path

    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    import numpy as np
    import rasterio

    from rts_mapper_plugin.core.cluster import session
    from rts_mapper_plugin.core.model.distributed import predict_on_cluster
    from rts_mapper_plugin.core.model.inference import InferConfig, predict_raster
    from tests.data.fixtures import trained_model

    model, (scenes, image) = trained_model(), _region()
    config = InferConfig(device="cpu", backend="torch")
    work = OUT / "cluster"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.perf_counter()
    single = predict_raster(model, image, work / "single.tif", config)
    rows = {
        "one process": {"seconds": round(time.perf_counter() - started, 1), "peak_mib": round(_peak_mib())}
    }
    with rasterio.open(work / "single.tif") as dataset:
        reference = dataset.read(1)
    for workers in (1, 2):
        started = time.perf_counter()
        with session(f"local:{workers}") as client:
            up = time.perf_counter() - started
            result = predict_on_cluster(
                model,
                image,
                work / f"cluster{workers}.tif",
                config,
                client=client,
                strips_per_block=STRIPS_PER_BLOCK,
            )
            seconds = time.perf_counter() - started
            peaks = client.run(_peak_mib)
        with rasterio.open(work / f"cluster{workers}.tif") as dataset:
            same = bool(np.array_equal(dataset.read(1), reference))
        rows[f"local cluster, {workers} worker(s)"] = {
            "seconds": round(seconds, 1),
            "start_up_s": round(up, 1),
            "worker_peak_mib": sorted(round(v) for v in peaks.values()),
            "same_raster": same,
            "same_candidates": len(result.candidates) == len(single.candidates)
            and all(
                a.geometry.equals_exact(b.geometry, 0) for a, b in zip(result.candidates, single.candidates)
            ),
            "block_forward_s": round(result.forward_seconds, 1),
        }
    base = rows["one process"]["seconds"]
    for row in rows.values():
        row["km2_per_min"] = round(single.area_km2 / (row["seconds"] / 60), 2)
        row["throughput_vs_one_process"] = round(base / row["seconds"], 2)
    two = rows["local cluster, 2 worker(s)"]
    # the cost of the work itself, per worker: block seconds (model + reading + blending) per km²
    worker_seconds_per_km2 = (two["seconds"] - two["start_up_s"]) * 2 / single.area_km2
    projection = {
        f"{n} workers like these": round(PLATEAU_KM2 * worker_seconds_per_km2 / n / 3600, 1)
        for n in (1, 16, 128)
    }
    for name, figures in rows.items():
        print(f"{name}: {figures}")
    prepare_rows = _prepare_rows(scenes, work)
    for name, figures in prepare_rows.items():
        print(f"prepare, {name}: {figures}")
    print(f"1.06 M km², hours: {projection} (worker-seconds per km² {worker_seconds_per_km2:.2f})")
    record(
        "cluster",
        {
            "machine": machine(),
            "region_km2": round(single.area_km2, 1),
            "candidates": len(single.candidates),
            "rows": rows,
            "prepare_rows": prepare_rows,
            "worker_seconds_per_km2": round(worker_seconds_per_km2, 3),
            "plateau_hours": projection,
        },
    )
