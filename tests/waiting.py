"""Waiting in tests with no speed in the verdict: a wait fails only when nothing has moved for
STALL_S seconds (a hang), however slow the machine. A test on a busy laptop is slower, not red.

``wait_until`` polls a condition while Qt runs; ``progress`` (any value: a progress bar's, a
status text) resets the stall clock whenever it changes. ``run_watched`` runs a subprocess and
kills it only when it has printed nothing for STALL_S seconds (the CLI prints progress lines).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time

STALL_S = float(os.environ.get("RTS_TEST_STALL_S", "900"))


def wait_until(qtbot, condition, progress=None, stall_s: float = STALL_S, what: str = "") -> None:
    seen = progress() if progress else None
    last = time.monotonic()
    while not condition():
        qtbot.wait(50)
        now = progress() if progress else None
        if now != seen:
            seen, last = now, time.monotonic()
        elif time.monotonic() - last > stall_s:
            raise AssertionError(f"nothing moved for {stall_s:.0f} s while waiting for {what or condition}")


def dock_progress(dock):
    """What moves while a dock's task runs: its progress bar and status line."""
    bar, status = getattr(dock, "progress", None), getattr(dock, "status", None)
    return lambda: (bar.value() if bar else None, status.text() if status else None)


def run_watched(command: list[str], stall_s: float = STALL_S, **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run(command, capture_output=True, text=True, **kwargs), killed (and failed)
    only when neither stdout nor stderr has had a new line for ``stall_s`` seconds."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
    chunks: dict[str, list[str]] = {"out": [], "err": []}
    last = [time.monotonic()]

    def pump(stream, into: list[str]) -> None:
        for line in stream:
            into.append(line)
            last[0] = time.monotonic()

    pumps = [
        threading.Thread(target=pump, args=(process.stdout, chunks["out"]), daemon=True),
        threading.Thread(target=pump, args=(process.stderr, chunks["err"]), daemon=True),
    ]
    for thread in pumps:
        thread.start()
    while process.poll() is None:
        time.sleep(0.2)
        if time.monotonic() - last[0] > stall_s:
            process.kill()
            process.wait()
            raise AssertionError(
                f"{command[:4]}… printed nothing for {stall_s:.0f} s (hung); last output:\n"
                + "".join((chunks["out"] + chunks["err"])[-20:])
            )
    for thread in pumps:
        thread.join()
    return subprocess.CompletedProcess(
        command, process.returncode, "".join(chunks["out"]), "".join(chunks["err"])
    )
