"""Screenshot the real QGIS desktop, under Xvfb, with RTS Mapper installed from its zip.

Makes a throw-away profile, unpacks the plugin zip into it, enables it, starts ``qgis`` on a
virtual screen with ``--code`` pointing at a scene script (which opens docks, loads data, runs
things), waits for the scene to say it is ready, and captures the whole screen with ImageMagick's
``import``. The venv's packages reach QGIS's Python through PYTHONPATH.

    python scripts/screenshot.py --zip dist/rts_mapper_plugin-0.1.0.zip --out docs/img/x.png \
        [--scene docks|inference|PATH.py] [--scene-arg KEY=VALUE ...] [--shots DIR]

Scenes that need data (``inference``) first build a demo mapping project outside QGIS
(scripts/scenes/demo_project.py, cached under --cache). A scene may save its own intermediate
screenshots into --shots.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENES = Path(__file__).resolve().parent / "scenes"
NEEDS_DEMO_PROJECT = {"inference", "review", "iteration", "training"}

QGIS_INI = """[PythonPlugins]
rts_mapper_plugin=true

[qgis]
checkVersion=false
showTips322=false
allowVersionCheck=false
newProjectDefault=false
projOpenAtLaunch=0
mainwindow\\geometry=@Rect(0 0 {width} {height})

[migration]
fileVersion=3
settings=true

[UI]
UITheme=default

[core]
NewsFeed\\httpsfeedqgisorg\\disabled=true
"""


def free_display() -> int:
    for number in range(99, 200):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            return number
    raise SystemExit("no free X display number")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zip", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scene", default="docks", help="a scene name in scripts/scenes or a path")
    parser.add_argument("--scene-arg", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--shots", type=Path, default=ROOT / "docs" / "img", help="where scenes save screenshots"
    )
    parser.add_argument("--cache", type=Path, default=ROOT / "bench_output" / "screenshot_demo")
    parser.add_argument("--size", default="1600x1000")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)
    for tool in ("Xvfb", "qgis", "import"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found: run `make setup` (installs xvfb, qgis, imagemagick)")
    width, height = (int(v) for v in args.size.split("x"))

    work = Path(tempfile.mkdtemp(prefix="rts_screenshot_"))
    profile = work / "profiles" / "default"
    plugins = profile / "python" / "plugins"
    plugins.mkdir(parents=True)
    zipfile.ZipFile(args.zip).extractall(plugins)
    ini = profile / "QGIS" / "QGIS3.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text(QGIS_INI.format(width=width, height=height - 30), encoding="utf-8")

    ready = work / "ready.json"
    scene_path = Path(args.scene) if args.scene.endswith(".py") else SCENES / f"{args.scene}.py"
    scene_args = dict(kv.split("=", 1) for kv in args.scene_arg)
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
    scene_args.update(ready=str(ready), root=str(ROOT), shots=str(args.shots.resolve()))
    (work / "scene_args.json").write_text(json.dumps(scene_args), encoding="utf-8")
    launcher = work / "launcher.py"
    launcher.write_text(
        "import faulthandler, json, runpy, sys\n"
        f"sys.path.insert(0, {str(SCENES)!r})\n"
        f"faulthandler.enable(open({str(work / 'faulthandler.log')!r}, 'w'), all_threads=True)\n"
        f"SCENE_ARGS = json.load(open({str(work / 'scene_args.json')!r}))\n"
        f"runpy.run_path({str(scene_path.resolve())!r}, init_globals={{'SCENE_ARGS': SCENE_ARGS}})\n",
        encoding="utf-8",
    )

    display = free_display()
    env = {
        **os.environ,
        "DISPLAY": f":{display}",
        "PYTHONPATH": os.pathsep.join([sysconfig.get_paths()["purelib"], os.environ.get("PYTHONPATH", "")]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "QT_QPA_PLATFORM": "xcb",
        "XDG_RUNTIME_DIR": str(work),
    }
    xvfb = subprocess.Popen(
        ["Xvfb", f":{display}", "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"]
    )
    qgis = None
    log = (work / "qgis.log").open("w")
    try:
        time.sleep(1.5)
        qgis = subprocess.Popen(
            [
                "qgis",
                "--profiles-path",
                str(work),
                "--profile",
                "default",
                "--nologo",
                "--noversioncheck",
                "--code",
                str(launcher),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + args.timeout
        while not ready.exists():
            if qgis.poll() is not None:
                raise SystemExit(
                    f"QGIS exited early ({qgis.returncode}); see {work / 'qgis.log'} and {work / 'faulthandler.log'}"
                )
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"the scene did not finish within {args.timeout:.0f} s; see {work / 'qgis.log'}"
                )
            time.sleep(0.5)
        report = json.loads(ready.read_text(encoding="utf-8") or "{}")
        time.sleep(float(report.get("settle_s", 2)))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["import", "-window", "root", str(args.out)], env=env, check=True)
        print(f"{args.out}: {json.dumps(report)}")
        if report.get("kill_after"):  # quit QGIS abruptly, then count what the project kept
            qgis.kill()
            qgis.wait(15)
            with sqlite3.connect(report["project"]) as conn:
                kept = conn.execute("SELECT COUNT(*) FROM reviews").fetchone()[0]
            print(f"QGIS killed (SIGKILL); reopened the project: {kept} decisions kept")
        if report.get("error"):
            print(f"scene reported an error: {report['error']}", file=sys.stderr)
            return 1
    finally:
        if qgis is not None and qgis.poll() is None:
            qgis.terminate()
            try:
                qgis.wait(15)
            except subprocess.TimeoutExpired:
                qgis.kill()
        xvfb.terminate()
        xvfb.wait(10)
        log.close()
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
