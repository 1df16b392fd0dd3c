"""Run the benchmarks: python -m benchmarks [NAME ...] (all when none is named)."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "backends": "benchmarks.backends",
    "cluster": "benchmarks.cluster",
    "imagery_memory": "benchmarks.imagery_memory",
    "model_engine": "benchmarks.model_engine",
    "real_chips": "benchmarks.real_chips",
    "review_latency": "benchmarks.review_latency",
    "review_learning": "benchmarks.review_learning",
    "suggestions": "benchmarks.suggestions",
    "terrain": "benchmarks.terrain",
    "training_speed": "benchmarks.training_speed",
}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    for name in names:
        print(f"== {name}", flush=True)
        importlib.import_module(BENCHMARKS[name]).main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
