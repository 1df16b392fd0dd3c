"""A person's day in the real QGIS desktop, driven through its windows: `make test-desktop`.

RTS Mapper is installed from its zip into a fresh profile (scripts/desktop.py) and used the
way an analyst does, with clicks and key presses on the real widgets (QTest events on the real
windows, menus opened from the menu bar, file dialogs typed into):

  session 1  open the project's .qgz (Project › Open), open the Review dock from the toolbar,
             review 20 candidates by keyboard, one with a note; then QGIS is killed (SIGKILL);
  session 2  a fresh QGIS with an empty project: the Review dock offers the same set, restored,
             and resumes after the 20 decisions; inference is started and cancelled, then run to
             the end; a boundary is edited with the vertex tool; one epoch is trained from the
             Training dock's defaults; the next iteration starts from the Iterations dock; the
             .qgz is reopened for its DEM, vegetation and soil layers; the inventory is exported;
             the distribution report runs from the menu and shows its figures.

Between and after the sessions the walk opens the GeoPackage itself to check that nothing was
lost, and reads QGIS's logs: no traceback, no "Task failed", no ambiguous shortcut, no crash.
Screenshots go to --shots (docs/img); the report (JSON) to --report.

    python scripts/desktop_walk.py --zip dist/rts_mapper_plugin-0.1.0.zip
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

from desktop import SCENES, Desktop

ROOT = Path(__file__).resolve().parent.parent
DECISIONS = 20
REVIEWER = "field-analyst"
LOG_PROBLEMS = re.compile(r"Traceback|Task failed|Ambiguous shortcut|Segmentation fault|Fatal Python error")


def build_day(cache: Path) -> Path:
    """The project as it stands at the start of the day (built once, then copied): five prepared
    years, the slumps known in the western third as training positives, a model, its first
    inference's candidates waiting for review, and a .qgz that shows it all with the DEM,
    vegetation, soil and roads."""
    day = cache / "day"
    if (day / "day.qgz").exists():
        return day
    sys.path.insert(0, str(SCENES))
    sys.path.insert(0, str(ROOT))
    from demo_project import build

    from rts_mapper_plugin.core.project.loop import add_positives
    from rts_mapper_plugin.core.project.store import MappingProject
    from rts_mapper_plugin.core.project.workflow import infer_into_project
    from rts_mapper_plugin.core.vectors import FeatureSet, read_features
    from rts_mapper_plugin.qgis_layers.project_file import write_qgis_project

    demo = build(cache / "demo")
    partial = cache / "day.partial"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(Path(demo["project"]).parent, partial / "project")
    shutil.copytree(demo["region"], partial / "region")
    project = MappingProject.open(partial / "project" / "rts_project.gpkg")
    truth = read_features(str(partial / "region" / "truth.gpkg") + "|layername=rts").to_crs(project.crs)
    xs = [g.centroid.x for g in truth.geometries]
    west = min(xs) + (max(xs) - min(xs)) / 3
    known = [i for i, x in enumerate(xs) if x < west]
    add_positives(
        project,
        FeatureSet([truth.geometries[i] for i in known], [truth.attributes[i] for i in known], truth.crs),
        0,
        "known slumps of the western subregion",
    )
    model = partial / "project" / "models" / Path(demo["model"]).name
    infer_into_project(
        project.path, model, partial / "project" / "imagery" / "2019.tif", iteration=1, year=2019
    )
    region = partial / "region"
    write_qgis_project(
        project.path,
        partial / "day.qgz",
        {"Roads and railway": str(region / "roads.gpkg")},
        extra_rasters={
            "DEM (30 m)": str(region / "dem.tif"),
            "Vegetation": str(region / "vegetation.tif"),
            "Soil texture": str(region / "soil.tif"),
        },
    )
    partial.rename(day)
    return day


def stored_reviews(gpkg: Path) -> list[dict]:
    with sqlite3.connect(gpkg) as conn:
        conn.row_factory = sqlite3.Row
        return [
            dict(r)
            for r in conn.execute("SELECT * FROM reviews WHERE reviewer = ? ORDER BY fid", (REVIEWER,))
        ]


def log_problems(session: Path) -> list[str]:
    found = []
    for name in ("qgis.log", "faulthandler.log", "message_log.txt"):
        path = session / name
        if path.exists():
            found += [
                f"{name}: {line.strip()}"
                for line in path.read_text(errors="replace").splitlines()
                if LOG_PROBLEMS.search(line)
            ]
    if (session / "faulthandler.log").exists() and (session / "faulthandler.log").read_text().strip():
        found.append("faulthandler.log is not empty: QGIS crashed")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zip", type=Path, required=True)
    parser.add_argument("--shots", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--cache", type=Path, default=ROOT / "bench_output" / "desktop_walk")
    parser.add_argument("--report", type=Path, default=ROOT / "dist" / "desktop_walk.json")
    parser.add_argument("--timeout", type=float, default=1500, help="seconds per session")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, project)")
    args = parser.parse_args(argv)

    print("building the day's starting project (once, cached)...", flush=True)
    day = build_day(args.cache)
    work = Path(tempfile.mkdtemp(prefix="rts_walk_"))
    shutil.copytree(day, work / "day")
    gpkg = work / "day" / "project" / "rts_project.gpkg"
    common = {"shots": str(args.shots.resolve()), "root": str(ROOT), "reviewer": REVIEWER}
    report: dict = {"work": str(work)}
    problems: list[str] = []
    desktop = Desktop(args.zip, work)
    try:
        # -- session 1: review by keyboard, then QGIS dies --
        ready = desktop.start(
            "walk_review", {**common, "qgz": str(work / "day" / "day.qgz"), "decisions": DECISIONS}
        )
        first = desktop.wait(ready, args.timeout)
        report["session1"] = first
        if first.get("error"):
            raise RuntimeError(f"session 1: {first['error']}")
        desktop.kill()
        kept = stored_reviews(gpkg)
        report["after_kill"] = {"decisions": len(kept), "notes": [r["note"] for r in kept if r["note"]]}
        if len(kept) != DECISIONS:
            problems.append(f"after the kill the project holds {len(kept)} decisions, not {DECISIONS}")
        if not any(r["note"] for r in kept):
            problems.append("the note typed in session 1 is not in the project")
        problems += [f"session 1 {p}" for p in log_problems(ready.parent)]
        shared = first.get("shared_key_s", {})
        if not (shared.get("criterion_toggled") and shared.get("snapping_unchanged")):
            problems.append(f"S, which QGIS binds too, did not work as the dock's key: {shared}")

        # -- session 2: a fresh QGIS, an empty project, the rest of the day --
        ready = desktop.start(
            "walk_day",
            {
                **common,
                "qgz": str(work / "day" / "day.qgz"),
                "project": str(gpkg),
                "decided": [r["candidate_id"] for r in kept],
                "run_id": first.get("run_id"),
                "inventory": str(work / "exports" / "rts_inventory.gpkg"),
            },
        )
        second = desktop.wait(ready, args.timeout)
        report["session2"] = second
        if second.get("error"):
            problems.append(f"session 2: {second['error']}")
        problems += second.get("problems", [])
        desktop.quit()
        problems += [f"session 2 {p}" for p in log_problems(ready.parent)]
    except RuntimeError as exc:
        problems.append(str(exc))
    finally:
        desktop.close()
    report["problems"] = problems
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    print(json.dumps(report, indent=1, default=str))
    if not args.keep and not problems:
        shutil.rmtree(work, ignore_errors=True)
    if problems:
        print("\nTHE WALK FOUND PROBLEMS:\n" + "\n".join(f"- {p}" for p in problems), file=sys.stderr)
        return 1
    print(f"\nthe walk went through: screenshots in {args.shots}, report in {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
