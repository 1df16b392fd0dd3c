"""Build (once) a small demo mapping project for the desktop screenshots, outside QGIS.

A synthetic region, its five prepared years registered in a project GeoPackage, and a model
trained on another synthetic region (so the screenshots show detection on unseen ground).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
WILLOW = ROOT.parent / "shared" / "data" / "real" / "willow_river" / "Willow_River_Thaw_Slumps.shp"


def build(folder: Path, size: int = 1400) -> dict:
    done = folder / "demo_project.json"
    if done.exists():
        return json.loads(done.read_text())
    from rts_mapper_plugin.core.imagery.prepare import prepare_image
    from rts_mapper_plugin.core.model.chips import make_chips
    from rts_mapper_plugin.core.model.training import TrainConfig, train_model
    from rts_mapper_plugin.example.demo import prepare_region_project
    from rts_mapper_plugin.example.synthetic import RegionConfig, generate_region

    shapes = str(WILLOW) if WILLOW.exists() else None
    region = generate_region(
        folder / "region", RegionConfig(size=size, seed=0, rts_per_km2=3.0, shapes_path=shapes)
    )
    project = prepare_region_project(region, folder / "project").path
    other = generate_region(
        folder / "training_region",
        RegionConfig(size=1200, seed=11, rts_per_km2=5.0, bare_per_km2=1.2, shapes_path=shapes),
    )
    image = prepare_image(other.scenes[2019], folder / "training_region" / "2019.tif").path
    chips = make_chips(
        image,
        other.truth_uri("rts"),
        other.truth_uri("lookalikes"),
        folder / "chips",
        size=256,
        buffer_m=150,
        val_fraction=0.15,
    )
    model = train_model(
        chips,
        folder / "project" / "models" / "demo-resnet18.safetensors",
        TrainConfig(encoder="resnet18", epochs=14, crop_size=192, learning_rate=1e-3, tile_size=384),
    )
    info = {
        "project": str(project),
        "model": str(model.model_path),
        "region": str(region.folder),
        "truth": region.truth_uri("rts"),
    }
    done.write_text(json.dumps(info))
    return info


if __name__ == "__main__":
    print(json.dumps(build(Path(sys.argv[1]))))
