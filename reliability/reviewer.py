"""A reviewer process for the fault harness: decides candidates of a mapping project through the
same core call the Review dock makes (core.review.decisions.record_decision), one transaction
per decision, and prints ``acked <candidate> <decision>`` only once that call has returned.

Usage: python -m reliability.reviewer PROJECT.gpkg REVIEWER [--seconds S] [--seed N] [--once]
Prints ``ready`` when the project is open; exits 0 after S seconds (or when every candidate has
its decision), 3 with an ``error:`` line when a decision could not be stored (what a person would
see in the message bar).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import time

from rts_mapper_plugin.core.errors import RtsMapperError
from rts_mapper_plugin.core.project.store import MappingProject
from rts_mapper_plugin.core.review.decisions import Decision, record_decision

DECISIONS = ("accepted", "rejected", "unsure")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("project")
    parser.add_argument("reviewer")
    parser.add_argument("--seconds", type=float, default=3600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--once", action="store_true", help="stop when every candidate has one decision")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    project = MappingProject.open(args.project)
    with project.connection() as conn:
        ids = [row[0] for row in conn.execute("SELECT fid FROM candidates ORDER BY fid")]
    rng.shuffle(ids)
    print("ready", flush=True)
    end = time.monotonic() + args.seconds
    for round_ in range(1 if args.once else 1_000_000):
        for fid in ids:
            if time.monotonic() > end:
                return 0
            choice = DECISIONS[(fid + round_ + args.seed) % len(DECISIONS)]
            print(f"deciding {fid} {choice}", flush=True)
            try:
                record_decision(project, Decision(candidate_id=fid, reviewer=args.reviewer, decision=choice))
            except (RtsMapperError, sqlite3.Error) as exc:
                print(f"error: {exc}", flush=True)
                return 3
            print(f"acked {fid} {choice}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
