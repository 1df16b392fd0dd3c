"""Helpers shared by the benchmarks: inputs cached on disk, peak memory of a child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(os.environ.get("RTS_BENCH_DIR", ROOT / "bench_output"))


def _high_water_mib(pid: int) -> float | None:
    """VmHWM of a live process: its peak resident memory since it exec'd (MiB)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_measured(args: list[str], env: dict | None = None, poll_s: float = 0.05) -> dict:
    """Run ``python args...`` in a child; return wall seconds, its peak RSS (MiB) and its output.

    The peak is the child's VmHWM, read while it runs: ``ru_maxrss`` from wait4 would not do,
    because on Linux it carries over the parent's resident size across fork and exec.
    """
    import tempfile

    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=err,
            text=True,
        )
        peak = 0.0
        while process.poll() is None:
            peak = max(peak, _high_water_mib(process.pid) or 0.0)
            time.sleep(poll_s)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({process.returncode}):\n{stderr[-3000:]}")
    return {"seconds": time.perf_counter() - started, "peak_mib": peak, "stdout": stdout}


def worker_figures(module: str, *args: str) -> dict:
    """Run ``python -m MODULE worker ARGS...`` in a child; its last output line (JSON) plus its
    peak memory (MiB) and wall seconds."""
    run = run_measured(["-m", module, "worker", *args])
    figures = json.loads(run["stdout"].strip().splitlines()[-1])
    figures["peak_mib"] = round(run["peak_mib"], 1)
    figures["wall_seconds"] = round(run["seconds"], 1)
    return figures


def record(name: str, result: dict) -> None:
    """Print a result and append it to bench_output/results.jsonl."""
    OUT.mkdir(parents=True, exist_ok=True)
    line = {"benchmark": name, "at": time.strftime("%Y-%m-%d %H:%M:%S"), **result}
    with open(OUT / "results.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")
    print(json.dumps(line, indent=2))


def machine() -> dict:
    import platform

    return {"cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine()}
