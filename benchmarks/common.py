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


def run_measured(args: list[str], env: dict | None = None) -> dict:
    """Run ``python args...`` in a child; return wall seconds, peak RSS (MiB) and output."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # wait4 gives this child's own resource usage (ru_maxrss in KiB on Linux)
    _, status, usage = os.wait4(process.pid, 0)
    stdout, stderr = process.stdout.read(), process.stderr.read()
    process.stdout.close()
    process.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({code}):\n{stderr[-3000:]}")
    return {"seconds": time.perf_counter() - started, "peak_mib": usage.ru_maxrss / 1024, "stdout": stdout}


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
