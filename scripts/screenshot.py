"""Screenshot the real QGIS desktop, under Xvfb, with RTS Mapper installed from its zip.

Starts QGIS in a throw-away profile (scripts/desktop.py) with ``--code`` pointing at a scene
script (which opens docks, loads data, runs things), waits for the scene to say it is ready, and
captures the whole screen with ImageMagick's ``import``. The venv's packages reach QGIS's Python
through PYTHONPATH.

    python scripts/screenshot.py --zip dist/rts_mapper_plugin-0.1.0.zip --out docs/img/x.png \
        [--scene docks|inference|PATH.py] [--scene-arg KEY=VALUE ...] [--shots DIR]

Scenes that need data (``inference``) first build a demo mapping project outside QGIS
(scripts/scenes/demo_project.py, cached under --cache). A scene may save its own intermediate
screenshots into --shots.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from desktop import SCENES, Desktop

ROOT = Path(__file__).resolve().parent.parent
NEEDS_DEMO_PROJECT = {"inference", "review", "iteration", "training", "cluster"}


def _value(text: str):
    try:
        return json.loads(text) if text[:1] in "[{" else text
    except json.JSONDecodeError:
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--zip", type=Path, help="the plugin to install; without it, a QGIS without the plugin"
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scene", default="docks", help="a scene name in scripts/scenes or a path")
    parser.add_argument(
        "--scene-arg", action="append", default=[], metavar="KEY=VALUE", help="VALUE may be JSON (a list...)"
    )
    parser.add_argument(
        "--shots", type=Path, default=ROOT / "docs" / "img", help="where scenes save screenshots"
    )
    parser.add_argument("--cache", type=Path, default=ROOT / "bench_output" / "screenshot_demo")
    parser.add_argument("--size", default="1600x1000")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument(
        "--qgis-python-only",
        action="store_true",
        help="without the venv's packages: QGIS's own Python, as on a field laptop",
    )
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="rts_screenshot_"))
    scene_args = {key: _value(value) for key, value in (kv.split("=", 1) for kv in args.scene_arg)}
    if args.scene in NEEDS_DEMO_PROJECT:
        sys.path.insert(0, str(SCENES))
        from demo_project import build

        print(f"building the demo project in {args.cache} (once)...", flush=True)
        demo = build(args.cache)
        # the scene writes into the project: give it a fresh copy, keep the cache pristine
        cached = Path(demo["project"]).parent
        shutil.copytree(cached, work / "project")
        scene_args.update(
            {key: value.replace(str(cached), str(work / "project")) for key, value in demo.items()}
        )
    scene_args.update(root=str(ROOT), shots=str(args.shots.resolve()))
    desktop = Desktop(args.zip, work, args.size, venv_packages=not args.qgis_python_only)
    try:
        ready = desktop.start(args.scene, scene_args)
        try:
            report = desktop.wait(ready, args.timeout)
        except RuntimeError as exc:
            raise SystemExit(str(exc)) from None
        time.sleep(float(report.get("settle_s", 2)))
        desktop.screenshot(args.out)
        print(f"{args.out}: {json.dumps(report)}")
        if report.get("kill_after"):  # quit QGIS abruptly, then count what the project kept
            desktop.kill()
            with sqlite3.connect(report["project"]) as conn:
                kept = conn.execute("SELECT COUNT(*) FROM reviews").fetchone()[0]
            print(f"QGIS killed (SIGKILL); reopened the project: {kept} decisions kept")
        if report.get("error"):
            print(f"scene reported an error: {report['error']}", file=sys.stderr)
            return 1
    finally:
        desktop.close()
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
