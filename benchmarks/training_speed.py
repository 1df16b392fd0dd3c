"""Training speed on this machine, side by side in one run.

For each variant (encoder x precision x memory layout) a child process times

* the bare step: forward + loss + backward + AdamW step over batches made in advance (the same
  crops, already augmented and normalised, tensors in memory): the least a step can cost;
* the real loop (``train_model``, two epochs over 100 chips and 10 validation chips, batches
  made by its helper thread) for the variants the recipe can choose: the loop's seconds per
  step in the second epoch (its history; the chips are in memory by then, as in any run of more
  than one epoch; the warm-up step left out as in the bare figure) and the ratio loop / bare.

Chips: 480 px, cut by ``make_chips`` from a 4096² synthetic PlanetScope region (cached). The
seconds per epoch for 400 chips are projected from the measured step time (400 chips x 4 crops
/ batch 8 = 200 steps) plus the measured validation time per chip x 80 validation chips.
"""

from __future__ import annotations

import json
import sys
import time

from .common import OUT, machine, record, run_measured, worker_figures

CACHE = OUT / "cache" / "training_speed"
BARE_STEPS = 6
# (encoder, precision, memory layout); the loop runs only for contiguous layouts (what it uses)
VARIANTS = (
    ("resnet34", "float32", "contiguous"),
    ("resnet34", "float32", "channels_last"),
    ("resnet34", "bfloat16", "contiguous"),
    ("resnet18", "float32", "contiguous"),
    ("resnet18", "float32", "channels_last"),
    ("resnet18", "bfloat16", "contiguous"),
    ("resnet18", "bfloat16", "channels_last"),
)
LOOP_VARIANTS = (("resnet34", "bfloat16"), ("resnet18", "bfloat16"), ("resnet18", "float32"))
# the loop trains float32 channels-last on the CPU, bfloat16 contiguous: its bare reference
LOOP_LAYOUT = {"float32": "channels_last", "bfloat16": "contiguous"}
PROJECTED_CHIPS, PROJECTED_VAL_CHIPS = 400, 80
LOOP_TRAIN_CHIPS, LOOP_VAL_CHIPS = 100, 10


def chips_folder() -> str:
    done = CACHE / "ready.json"
    if not done.exists():
        run_measured(["-m", "benchmarks.training_speed", "worker", "build"])
    return json.loads(done.read_text())["chips"]


def build() -> dict:
    from rts_mapper_plugin.core.imagery.prepare import prepare_image
    from rts_mapper_plugin.core.model.chips import make_chips
    from rts_mapper_plugin.example.synthetic import RegionConfig, generate_region

    region = generate_region(CACHE / "region", RegionConfig(size=4096, seed=7))
    image = prepare_image(region.scenes[2019], CACHE / "2019.tif").path
    make_chips(image, region.truth_uri("rts"), region.truth_uri("lookalikes"), CACHE / "chips", size=480)
    info = {"chips": str(CACHE / "chips")}
    (CACHE / "ready.json").write_text(json.dumps(info))
    return info


def worker_bare(chips: str, encoder: str, precision: str, layout: str) -> dict:
    import numpy as np
    import torch

    from rts_mapper_plugin.core.model.chips import load_chip_set
    from rts_mapper_plugin.core.model.model_file import ModelCard, configure_threads, create_model
    from rts_mapper_plugin.core.model.training import ChipData, TrainConfig, _batch, autocast, dice_bce_loss

    configure_threads()
    chip_set = load_chip_set(chips)
    config = TrainConfig(encoder=encoder)
    data, card = ChipData(chip_set, chip_set.train), ModelCard(encoder=encoder)
    rng = np.random.default_rng(0)
    batches = [
        _batch(data, rng.integers(0, len(data), config.batch_size), config, card, rng)
        for _ in range(BARE_STEPS + 1)
    ]
    torch.manual_seed(0)
    model = create_model(encoder).train()
    memory_format = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    tensors = [
        (torch.from_numpy(x).contiguous(memory_format=memory_format), torch.from_numpy(y.astype(np.int64)))
        for x, y in batches
    ]
    times = []
    for x, y in tensors:
        started = time.perf_counter()
        with autocast(torch, "cpu", precision):
            logits = model(x)
        loss = dice_bce_loss(logits, y, torch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return {"bare_seconds_per_step": sum(times[1:]) / BARE_STEPS}  # the first warms up


def worker_loop(chips: str, encoder: str, precision: str) -> dict:
    from rts_mapper_plugin.core.model.chips import load_chip_set
    from rts_mapper_plugin.core.model.training import TrainConfig, train_model

    chip_set = load_chip_set(chips)
    # an epoch of LOOP_TRAIN_CHIPS chips (x 4 crops / batch 8 steps) and LOOP_VAL_CHIPS validation chips
    chip_set.chips = chip_set.train[:LOOP_TRAIN_CHIPS] + chip_set.val[:LOOP_VAL_CHIPS]
    config = TrainConfig(encoder=encoder, epochs=2, precision=precision)
    result = train_model(chip_set, OUT / f"bench_train_{encoder}_{precision}.safetensors", config)
    entry = result.history[1]  # the second epoch: chips read once are in memory, as in a real run
    val_seconds = entry["seconds"] - entry["train_seconds"]
    return {
        "loop_seconds_per_step": entry["seconds_per_step"],
        "steps": -(-len(chip_set.train) * config.crops_per_chip // config.batch_size),
        "train_chips": len(chip_set.train),
        "val_chips": len(chip_set.val),
        "validation_seconds_per_chip": val_seconds / max(1, len(chip_set.val)),
        "epoch_seconds": entry["seconds"],
        "first_epoch_seconds_per_step": result.history[0]["seconds_per_step"],
    }


def _child(*args: str) -> dict:
    return worker_figures("benchmarks.training_speed", *args)


def main() -> dict:
    chips = chips_folder()
    results: dict = {"machine": machine(), "bare": {}, "loop": {}}
    for encoder, precision, layout in VARIANTS:
        figures = _child("bare", chips, encoder, precision, layout)
        results["bare"][f"{encoder}/{precision}/{layout}"] = {k: round(v, 3) for k, v in figures.items()}
    reference = results["bare"]["resnet34/float32/contiguous"]["bare_seconds_per_step"]
    for figures in results["bare"].values():
        figures["speedup_vs_resnet34_float32"] = round(reference / figures["bare_seconds_per_step"], 2)
    for encoder, precision in LOOP_VARIANTS:
        figures = _child("loop", chips, encoder, precision)
        bare = results["bare"][f"{encoder}/{precision}/{LOOP_LAYOUT[precision]}"]["bare_seconds_per_step"]
        steps = -(-PROJECTED_CHIPS * 4 // 8)
        figures["loop_over_bare"] = round(figures["loop_seconds_per_step"] / bare, 3)
        figures["projected_epoch_seconds_400_chips"] = round(
            figures["loop_seconds_per_step"] * steps
            + figures["validation_seconds_per_chip"] * PROJECTED_VAL_CHIPS,
            1,
        )
        results["loop"][f"{encoder}/{precision}"] = {
            k: (round(v, 3) if isinstance(v, float) else v) for k, v in figures.items()
        }
    record("training_speed", results)
    return results


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "worker":
    kind = sys.argv[2]
    if kind == "build":
        output = build()
    elif kind == "bare":
        output = worker_bare(*sys.argv[3:7])
    else:
        output = worker_loop(*sys.argv[3:6])
    print(json.dumps(output))
elif __name__ == "__main__":
    main()
