"""`make test`: every test set runs, even when an earlier one fails, and one summary ends it.

Usage: python tests/run_sets.py [PYTEST ARGS...]   (extra arguments go to every set)
Exit status 1 when any set failed (or ended without pytest's summary line).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETS = (
    ("core (no QGIS plugin for pytest)", ["-p", "no:pytest_qgis", "tests/unit"]),
    ("QGIS (real QgsApplication, docks, dialogs)", ["tests/qgis"]),
)
SUMMARY = re.compile(r"^=*\s*(\d+ (passed|failed|errors?|skipped|deselected).*? in [\d.]+s)")


def main(extra: list[str]) -> int:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONDONTWRITEBYTECODE": "1"}
    results = []
    started = time.monotonic()
    for name, args in SETS:
        print(f"\n##### {name}: pytest {' '.join(args + extra)}", flush=True)
        begun = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "pytest", *args, *extra],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        summary = ""
        for line in process.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            match = SUMMARY.match(line.strip())
            if match:
                summary = match.group(1)
        code = process.wait()
        results.append((name, code, summary or "ended without a summary", time.monotonic() - begun))
    print("\n##### Summary")
    for name, code, summary, seconds in results:
        print(f"{'ok    ' if code == 0 else 'FAILED'} {name}: {summary} ({seconds / 60:.1f} min)")
    failed = [name for name, code, _, _ in results if code != 0]
    print(
        f"{'All sets passed' if not failed else 'Failed: ' + ', '.join(failed)} in {(time.monotonic() - started) / 60:.1f} min"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
