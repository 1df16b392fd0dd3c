"""The real QGIS desktop on a virtual screen, with RTS Mapper installed from its zip (or, with
no zip, a QGIS that has never seen the plugin).

A throw-away QGIS profile gets the plugin zip unpacked into it (what *Install from ZIP* does)
and enabled; Xvfb gives a screen and openbox a window manager (so dialogs take focus as on a
desktop); QGIS starts with ``--code`` pointing at a scene script that drives it. A scene reports
through a JSON file it writes when it is done. Used by scripts/screenshot.py (one scene, one
screenshot) and scripts/desktop_walk.py (a person's day over several QGIS sessions).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sysconfig
import time
import zipfile
from pathlib import Path

SCENES = Path(__file__).resolve().parent / "scenes"

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


class Desktop:
    """One virtual screen and one QGIS profile; QGIS sessions come and go on it."""

    def __init__(
        self, plugin_zip: Path | None, work: Path, size: str = "1600x1000", venv_packages: bool = True
    ) -> None:
        """``venv_packages=False``: QGIS's own Python only, as on a field laptop that has only
        what the plugin's installer puts in its profile."""
        for tool in ("Xvfb", "qgis", "import"):
            if not shutil.which(tool):
                raise SystemExit(f"{tool} not found: run `make setup` (installs xvfb, qgis, imagemagick)")
        self.work = work
        self.width, self.height = (int(v) for v in size.split("x"))
        profile = work / "profiles" / "default"
        plugins = profile / "python" / "plugins"
        plugins.mkdir(parents=True)
        settings = QGIS_INI.format(width=self.width, height=self.height - 30)
        if plugin_zip is not None:
            zipfile.ZipFile(plugin_zip).extractall(plugins)
        else:
            settings = settings.replace("rts_mapper_plugin=true", "")
        ini = profile / "QGIS" / "QGIS3.ini"
        ini.parent.mkdir(parents=True)
        ini.write_text(settings, encoding="utf-8")
        self.display = free_display()
        self.env = {
            **os.environ,
            "DISPLAY": f":{self.display}",
            "PYTHONPATH": os.pathsep.join(
                [sysconfig.get_paths()["purelib"], os.environ.get("PYTHONPATH", "")] if venv_packages else []
            ),
            "PYTHONDONTWRITEBYTECODE": "1",
            "QT_QPA_PLATFORM": "xcb",
            "XDG_RUNTIME_DIR": str(work),
        }
        self.xvfb = subprocess.Popen(
            ["Xvfb", f":{self.display}", "-screen", "0", f"{self.width}x{self.height}x24", "-nolisten", "tcp"]
        )
        time.sleep(1.5)
        self.window_manager = (
            subprocess.Popen(["openbox"], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if shutil.which("openbox")
            else None
        )
        self.qgis: subprocess.Popen | None = None
        self.sessions = 0

    def start(self, scene: str | Path, scene_args: dict) -> Path:
        """Start QGIS running ``scene`` (a name in scripts/scenes or a path); returns the file the
        scene writes its report to when it is done."""
        self.sessions += 1
        session = self.work / f"session{self.sessions}"
        session.mkdir()
        ready = session / "ready.json"
        scene_path = Path(scene) if str(scene).endswith(".py") else SCENES / f"{scene}.py"
        (session / "scene_args.json").write_text(
            json.dumps({**scene_args, "ready": str(ready)}), encoding="utf-8"
        )
        launcher = session / "launcher.py"
        launcher.write_text(
            "import faulthandler, json, runpy, sys\n"
            f"sys.path.insert(0, {str(SCENES)!r})\n"
            f"faulthandler.enable(open({str(session / 'faulthandler.log')!r}, 'w'), all_threads=True)\n"
            f"SCENE_ARGS = json.load(open({str(session / 'scene_args.json')!r}))\n"
            f"runpy.run_path({str(scene_path.resolve())!r}, init_globals={{'SCENE_ARGS': SCENE_ARGS}})\n",
            encoding="utf-8",
        )
        self.log = (session / "qgis.log").open("w")
        self.qgis = subprocess.Popen(
            [
                "qgis",
                "--profiles-path",
                str(self.work),
                "--profile",
                "default",
                "--nologo",
                "--noversioncheck",
                "--code",
                str(launcher),
            ],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        return ready

    def wait(self, ready: Path, timeout_s: float) -> dict:
        """The scene's report once it is written; an error if QGIS died or time ran out first."""
        deadline = time.monotonic() + timeout_s
        while not ready.exists() or not ready.read_text(encoding="utf-8").strip():
            if self.qgis.poll() is not None:
                raise RuntimeError(
                    f"QGIS exited early ({self.qgis.returncode}); see {ready.parent / 'qgis.log'} and "
                    f"{ready.parent / 'faulthandler.log'}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"the scene did not finish within {timeout_s:.0f} s; see {ready.parent}")
            time.sleep(0.5)
        time.sleep(0.3)
        return json.loads(ready.read_text(encoding="utf-8"))

    def screenshot(self, out: Path) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["import", "-window", "root", str(out)], env=self.env, check=True)

    def kill(self) -> int:
        """SIGKILL, as when QGIS crashes or the laptop's battery dies: nothing gets to clean up."""
        self.qgis.send_signal(signal.SIGKILL)
        code = self.qgis.wait(15)
        self.log.close()
        return code

    def quit(self) -> int | None:
        if self.qgis is None:
            return None
        if self.qgis.poll() is None:
            self.qgis.terminate()
            try:
                self.qgis.wait(20)
            except subprocess.TimeoutExpired:
                self.qgis.kill()
                self.qgis.wait(10)
        self.log.close()
        return self.qgis.returncode

    def close(self) -> None:
        self.quit()
        for process in (self.window_manager, self.xvfb):
            if process is not None:
                process.terminate()
                process.wait(10)
