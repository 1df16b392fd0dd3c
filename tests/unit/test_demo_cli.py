"""`python -m rts_mapper_plugin demo` end to end on a small region, in its own process."""

from __future__ import annotations

import csv
import json
import os
import sys
import zipfile
from pathlib import Path

from tests.waiting import run_watched

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_end_to_end_and_says_it_is_a_simulation(tmp_path):
    out = tmp_path / "demo"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = run_watched(
        [
            sys.executable,
            "-m",
            "rts_mapper_plugin",
            "demo",
            "--out",
            str(out),
            "--size",
            "1000",
            "--max-iterations",
            "3",
        ],
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "| Iteration | Training RTSs |" in done.stdout and "SIMULATION" in done.stdout
    with open(out / "table1.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows, "Table 1 has rows"
    assert int(rows[-1]["Newly found RTSs"]) == 0 or len(rows) == 3, "converged or stopped at the limit"
    assert all("SIMULATION" in r["Notes"] for r in rows)
    summary = json.loads((out / "inventory" / "rts_inventory_summary.json").read_text())
    assert summary["count"] == int(rows[-1]["Total RTSs"]) > 0 and "SIMULATION" in summary["simulation"]
    for ext in ("gpkg", "geojson", "shp"):
        assert (out / "inventory" / f"rts_inventory.{ext}").exists()
    assert list((out / "timelapse").glob("candidate_*.png"))
    with zipfile.ZipFile(out / "rts_mapper_demo.qgz") as qgz:
        project = next(qgz.read(n).decode() for n in qgz.namelist() if n.endswith(".qgs"))
    for name in ("RTS inventory", "Time-lapse", "Candidates", "Roads and railway"):
        assert name in project
    # every layer of the demo project opens with a CRS (no "Layer has no coordinate reference
    # system set!" for the training sets)
    import re

    for layer in re.findall(r"<maplayer[^>]*>.*?</maplayer>", project, re.S):
        name = re.search(r"<layername>(.*?)</layername>", layer).group(1)
        assert re.search(r"<authid>EPSG:\d+</authid>", layer), f"{name} has no CRS in the .qgz"
    assert "Training RTSs (positives)" in project
