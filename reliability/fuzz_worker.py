"""Runs fuzz cases through the command line's ``main`` in this one process (a fresh interpreter per
case would spend minutes importing), and prints one JSON line per case:

    {"case": N, "rc": exit status, "stderr": what a person would read, "escaped": the exception
     that got out of main (a traceback a person would see), "seconds": ..., "rss_mb": peak}

stderr is taken at the file descriptor, so GDAL's own messages are counted too. Cases come as
JSON lines on stdin; the parent restarts this worker when it dies (a crash) or stalls (a hang).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path


def run_case(argv: list[str]) -> dict:
    from rts_mapper_plugin.__main__ import main

    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile(mode="w+b") as captured:
        saved_out, saved_err = os.dup(1), os.dup(2)
        os.dup2(captured.fileno(), 1)  # results printed by commands are not the worker's protocol
        os.dup2(captured.fileno(), 2)
        text_err, escaped = io.StringIO(), None
        started = time.perf_counter()
        try:
            with contextlib.redirect_stderr(text_err), contextlib.redirect_stdout(io.StringIO()):
                try:
                    rc = main(argv)
                except SystemExit as exc:  # argparse
                    rc = exc.code if isinstance(exc.code, int) else 2
                except BaseException as exc:  # what would reach the user as a traceback
                    rc = None
                    where = traceback.extract_tb(exc.__traceback__)[-3:]
                    frames = " < ".join(
                        f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(where)
                    )
                    message = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                    escaped = f"{message[:300]} at {frames}"
        finally:
            sys.stdout.flush()
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
            os.close(saved_out)
            os.close(saved_err)
        captured.seek(0)
        raw = captured.read().decode("utf-8", "replace")
    # what went to the terminal's stderr: Python's (the CLI's messages) and C libraries' (GDAL)
    c_lines = [line for line in raw.splitlines() if line.startswith(("ERROR", "Warning", "WARNING"))]
    stderr = text_err.getvalue() + "".join(f"{line}\n" for line in c_lines)
    return {
        "rc": rc,
        "stderr": stderr[-1500:],
        "escaped": escaped,
        "seconds": round(time.perf_counter() - started, 3),
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


def main() -> int:
    limit = int(os.environ.get("RTS_FUZZ_MEMORY_GB", "12")) * 1024**3
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # an allocation past this is a MemoryError
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        case = json.loads(line)
        result = run_case(case["argv"])
        print(json.dumps({"case": case["case"], **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
