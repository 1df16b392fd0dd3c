"""How right the Review dock's suggestions are: the initiation period and growth the year stack
suggests (core.review.suggestions), against the synthetic truth.

Seeded regions (five registered years each, real RTS shapes where the shared data is present),
every truth slump of the main year judged on its own outline: the suggested initiation period
exact, off by one period, further off, or none suggested; and "it grew" on the slumps (all of
which retreat in the generator, 3-14 m a year) and on the look-alikes (bare patches that never
grow). The thresholds were chosen on seeds 201-202; these seeds are others.

    python -m benchmarks suggestions          # about a minute
"""

from __future__ import annotations

import shutil
import time
from collections import Counter

from .common import OUT, machine, record

SEEDS = tuple(range(301, 307))
SIZE = 600


def main() -> None:
    from rts_mapper_plugin.core.project.store import initiation_periods
    from rts_mapper_plugin.core.review.suggestions import suggest
    from rts_mapper_plugin.core.vectors import read_features
    from tests.data.fixtures import review_project

    work = OUT / "suggestions"
    shutil.rmtree(work, ignore_errors=True)
    period, grew = Counter(), Counter()
    seconds = []
    for seed in SEEDS:
        project, region, _run = review_project(work / str(seed), size=SIZE, seed=seed)
        years = project.years()
        periods = initiation_periods([y.year for y in years])
        main_year = region.config.main_year
        truth = read_features(region.truth_uri("rts")).to_crs(project.crs)
        for geometry, attributes in zip(truth.geometries, truth.attributes):
            if attributes.get("year", main_year) != main_year:
                continue
            started = time.perf_counter()
            suggestion = suggest(years, geometry)
            seconds.append(time.perf_counter() - started)
            if suggestion.initiation_period is None:
                period["none"] += 1
            else:
                off = abs(
                    periods.index(suggestion.initiation_period)
                    - periods.index(attributes["initiation_period"])
                )
                period[{0: "exact", 1: "off by one"}.get(off, "further")] += 1
            grew[f"slump: {suggestion.grew}"] += 1
        for geometry in read_features(region.truth_uri("lookalikes")).to_crs(project.crs).geometries:
            grew[f"look-alike: {suggest(years, geometry).grew}"] += 1
    slumps = sum(period.values())
    print(f"{slumps} slumps: " + ", ".join(f"{k} {v} ({v / slumps:.0%})" for k, v in period.most_common()))
    print("grew: " + ", ".join(f"{k} {v}" for k, v in sorted(grew.items())))
    record(
        "suggestions",
        {
            "machine": machine(),
            "seeds": list(SEEDS),
            "size_px": SIZE,
            "slumps": slumps,
            "initiation_period": dict(period),
            "grew": dict(grew),
            "ms_per_candidate": round(1000 * sum(seconds) / max(len(seconds), 1), 1),
        },
    )
