"""`make faults` in miniature: the harness itself runs, and what it finds (decisions lost to a
kill, outputs left broken, a traceback from a fuzzed file, SQLITE_BUSY between two reviewers)
fails this test. The full run's figures are in docs/reliability.md."""

from __future__ import annotations

import json
import sys

import pytest

from tests.waiting import run_watched


@pytest.mark.slow
def test_the_fault_harness_finds_nothing_in_a_quick_run(tmp_path):
    work = tmp_path / "faults"
    done = run_watched([sys.executable, "-m", "reliability", "--quick", "--work", str(work)])
    figures = json.loads((work / "figures.json").read_text())
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert figures["review_kills"]["lost"] == 0 and figures["two_reviewers"]["lost"] == 0
    assert all(job.get("broken") == 0 for job in figures["job_kills"].values())
    assert not figures["fuzz_problems"]
