"""`make faults`: python -m reliability [--quick] [--out docs/reliability.md] [--work DIR]

Runs every fault kind against real processes and the fuzzer over every input kind, then writes
the table of figures (and the raw figures as JSON beside the work folder). ``--quick`` runs a few
of each (a smoke test for the harness itself); the figures in docs come from a full run.
Disk-full and read-only checks mount small tmpfs volumes and need root; without it they are
reported as skipped.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from . import faults, fuzz

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Counts:
    fuzz_per_kind: int
    review_kills: int
    two_reviewer_seconds: float
    job_kills: int
    image_size: int  # pixels a side of the image the killed inference runs over


FULL = Counts(fuzz_per_kind=500, review_kills=200, two_reviewer_seconds=120, job_kills=10, image_size=768)
QUICK = Counts(fuzz_per_kind=25, review_kills=10, two_reviewer_seconds=10, job_kills=2, image_size=256)


def say(text: str) -> None:
    print(f"[{datetime.now(timezone.utc):%H:%M:%S}] {text}", flush=True)


def job_definitions(seeds: dict, work: Path, image_size: int) -> dict:
    """Every job that writes an output, on small real inputs (seconds each)."""
    import numpy as np
    import rasterio

    sys.path.insert(0, str(ROOT))
    from rts_mapper_plugin.core.model.chips import load_chip_set
    from rts_mapper_plugin.core.model.model_file import load_model
    from rts_mapper_plugin.core.project.loop import iteration_record
    from rts_mapper_plugin.core.project.store import MappingProject
    from rts_mapper_plugin.core.vectors import read_features
    from tests.data.fixtures import planetscope_like, write_raster

    out = work / "jobs"
    out.mkdir(parents=True, exist_ok=True)
    scene = write_raster(out / "scene_big.tif", planetscope_like(rows=1500, cols=1500, seed=9), nodata=0)
    rng = np.random.default_rng(2)
    image = write_raster(
        out / "rgb_big.tif", rng.integers(1, 256, (3, image_size, image_size), dtype=np.uint8)
    )
    project_folder = Path(seeds["project"]).parent
    year_image = next(project_folder.glob("2019.tif"), None) or next(project_folder.glob("*.tif"))
    region = project_folder / "region"
    truth = f"{next(region.rglob('truth.gpkg'))}|layername=rts"
    lookalikes = f"{next(region.rglob('truth.gpkg'))}|layername=lookalikes"

    def raster(path: Path) -> None:
        with rasterio.open(path) as dataset:
            dataset.read()

    def remove(*paths: Path):
        def reset() -> None:
            for path in paths:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)

        return reset

    def chips_command(folder: Path) -> list[str]:
        positives, negatives = ("--positives", truth), ("--negatives", lookalikes)
        return faults.cli(
            "chips",
            "--image",
            str(year_image),
            *positives,
            *negatives,
            "--out",
            str(folder),
            "--size",
            "128",
            "--buffer",
            "60",
        )

    chips_done = out / "chips_for_training"
    done = faults.subprocess.run(
        chips_command(chips_done),
        cwd=ROOT,
        env=faults.ENV,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr

    # a project with decisions, to close its iteration and export its inventory
    decided = out / "decided.gpkg"
    shutil.copy(seeds["project"], decided)
    faults.subprocess.run(
        faults.python("-m", "reliability.reviewer", str(decided), "field", "--once"),  # however slow
        cwd=ROOT,
        env=faults.ENV,
        capture_output=True,
        text=True,
    )
    closing = out / "closing.gpkg"
    closed = out / "closed.gpkg"
    shutil.copy(decided, closed)
    assert (
        faults.subprocess.run(
            faults.python("-m", "reliability.close", str(closed)), cwd=ROOT, env=faults.ENV
        ).returncode
        == 0
    )

    def iteration_state() -> str:
        if not faults.integrity_ok(closing):
            return "broken"
        try:
            record = iteration_record(MappingProject.open(closing), 1)
        except Exception:
            return "broken"
        return "complete" if record is not None and record.finished_at else "absent"

    def state(path: Path, check):
        return lambda: faults.state_of(path, check)

    return {
        "prepare imagery": (
            faults.cli("prepare", str(scene), "--out", str(out / "prepared.tif")),
            state(out / "prepared.tif", raster),
            remove(out / "prepared.tif"),
        ),
        "inference (candidates + probability)": (
            faults.cli(
                "infer",
                "--model",
                str(seeds["model"]),
                "--image",
                str(image),
                "--out",
                str(out / "c.gpkg"),
                "--prob",
                str(out / "p.tif"),
                "--device",
                "cpu",
            ),
            lambda: _both(
                faults.state_of(out / "c.gpkg", read_features), faults.state_of(out / "p.tif", raster)
            ),
            remove(out / "c.gpkg", out / "p.tif"),
        ),
        "training chips": (
            chips_command(out / "chips"),
            state(out / "chips", load_chip_set),
            remove(out / "chips"),
        ),
        "training": (
            faults.cli(
                "train",
                "--chips",
                str(chips_done),
                "--out",
                str(out / "m.safetensors"),
                "--encoder",
                "mobilenet_v2",
                "--epochs",
                "2",
                "--batch-size",
                "4",
                "--crop-size",
                "96",
                "--tile-size",
                "128",
                "--device",
                "cpu",
            ),
            state(out / "m.safetensors", lambda p: load_model(p)),
            remove(out / "m.safetensors"),
        ),
        "iteration close": (
            faults.python("-m", "reliability.close", str(closing)),
            iteration_state,
            lambda: shutil.copy(decided, closing),
        ),
        "inventory export (ARTS GeoJSON)": (
            faults.cli(
                "arts", str(closed), str(out / "arts.geojson"), "--region", "Faults", "--creator", "Harness"
            ),
            state(out / "arts.geojson", lambda p: json.loads(p.read_text())["features"]),
            remove(out / "arts.geojson"),
        ),
    }


def _both(candidates: str, probability: str) -> str:
    """Inference leaves two files: broken if either is; complete only when the candidates are
    (the probability raster is finished first, so it may stand alone, complete)."""
    if "broken" in (candidates, probability):
        return "broken"
    return candidates


def write_jobs(seeds: dict, jobs: Path) -> dict:
    """Jobs writing into a folder that is full or read-only: (command for an output, file name,
    None or the check that a project written into is unchanged). ``jobs``: the folder where
    ``job_definitions`` made its inputs (chips to train from, a decided and a closed project)."""
    chips = jobs / "chips_for_training"
    truth = next((Path(seeds["project"]).parent / "region").rglob("truth.gpkg"))
    return {
        "prepare": (
            lambda o: faults.cli("prepare", str(seeds["scene"]), "--out", str(o)),
            "prepared.tif",
            None,
        ),
        "inference": (
            lambda o: faults.cli(
                "infer",
                "--model",
                str(seeds["model"]),
                "--image",
                str(seeds["image"]),
                "--out",
                str(o),
                "--device",
                "cpu",
            ),
            "candidates.gpkg",
            None,
        ),
        "training chips": (
            lambda o: faults.cli(
                "chips",
                "--image",
                str(next(Path(seeds["project"]).parent.glob("*.tif"))),
                "--positives",
                f"{truth}|layername=rts",
                "--out",
                str(o),
                "--size",
                "128",
            ),
            "chips",
            None,
        ),
        "training": (
            lambda o: faults.cli(
                "train",
                *("--chips", str(chips), "--out", str(o), "--encoder", "mobilenet_v2", "--epochs", "1"),
                *("--batch-size", "4", "--crop-size", "96", "--tile-size", "128", "--device", "cpu"),
            ),
            "model.safetensors",
            None,
        ),
        "iteration close": (
            lambda o: faults.python("-m", "reliability.close", str(o)),
            "decided.gpkg",
            faults.Unchanged(jobs / "decided.gpkg"),
        ),
        "inventory export": (
            lambda o: faults.cli(
                "arts", str(jobs / "closed.gpkg"), str(o), "--region", "R", "--creator", "C"
            ),
            "arts.geojson",
            None,
        ),
        "ONNX export": (lambda o: faults.cli("export-onnx", str(seeds["model"]), str(o)), "model.onnx", None),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few of each: checks the harness")
    parser.add_argument("--out", default=None, help="write the table here (Markdown)")
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "rts_mapper_faults"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    counts = QUICK if args.quick else FULL
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    started = time.monotonic()
    figures: dict = {
        "counts": counts.__dict__,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }

    say("seeds: a small synthetic project, images, a model, vector files")
    seeds = fuzz.make_seeds(work / "seeds")

    say(f"review: {counts.review_kills} reviewers killed with SIGKILL at random moments")
    review_project = work / "review.gpkg"
    shutil.copy(seeds["project"], review_project)
    figures["review_kills"] = faults.review_kills(review_project, counts.review_kills, args.seed)

    say(f"two reviewers at once on one project for {counts.two_reviewer_seconds:.0f} s")
    shared = work / "shared.gpkg"
    shutil.copy(seeds["project"], shared)
    figures["two_reviewers"] = faults.two_reviewers(shared, counts.two_reviewer_seconds)

    say(f"jobs: each killed {counts.job_kills} times at a random point, then run again")
    figures["job_kills"] = faults.job_kills(
        job_definitions(seeds, work, counts.image_size), counts.job_kills, work / "jobs", args.seed
    )

    say("a full disk and a read-only folder under each writer, and under a reviewer")
    figures["write_faults"] = faults.write_faults(write_jobs(seeds, work / "jobs"), work)
    figures["project_write_faults"] = faults.project_write_faults(seeds["project"], work)

    say(f"fuzz: {counts.fuzz_per_kind} mutated files of each kind through the command line")
    cases = fuzz.make_cases(seeds, work / "fuzz", counts.fuzz_per_kind, args.seed)
    figures["fuzz"], problems = fuzz.run_cases(cases, progress=say)
    figures["fuzz_problems"] = [
        {k: p[k] for k in ("kind", "mutation", "argv", "verdict")} | {"result": p["result"]} for p in problems
    ]
    figures["seconds"] = round(time.monotonic() - started)
    (work / "figures.json").write_text(json.dumps(figures, indent=2, default=str))
    table = render(figures, args.quick)
    print(table)
    if args.out:
        write_into_doc(Path(args.out), table)
    return 0 if healthy(figures) else 1


def healthy(figures: dict) -> bool:
    kills = figures["review_kills"]
    jobs_ok = all(
        "error" not in f and f["broken"] == 0 and f["rerun_ok"] == f["kills"] and not f["litter_after_rerun"]
        for f in figures["job_kills"].values()
    )
    fuzz_ok = all(set(v) <= {"clear error", "ran (mutation harmless)"} for v in figures["fuzz"].values())
    two = figures["two_reviewers"]
    writes = figures["write_faults"]
    writes_ok = "skipped" in writes or all(_write_ok(r) for r in writes.values())
    project_ok = all(
        r["decisions_lost"] == 0 and r["project_opens"] and r["integrity_ok"]
        for k, r in figures["project_write_faults"].items()
        if k != "skipped"
    )
    return (
        writes_ok
        and project_ok
        and kills["lost"] == 0
        and kills["integrity_ok"] == kills["runs"]
        and jobs_ok
        and fuzz_ok
        and two["lost"] == 0
        and not two["errors"]
    )


def _write_ok(result: dict) -> bool:
    return (
        result["one_line_error_naming_file"]
        and not result["left_behind"]
        and not result["traceback"]
        and result.get("project_as_it_was", True)
    )


def render(figures: dict, quick: bool) -> str:
    lines = [
        f"Run: `make faults` ({'--quick' if quick else 'full'}), {figures['started']}, "
        f"{figures['seconds'] / 60:.1f} min on this machine (2 cores).",
        "",
        "| Fault | Injected | Acknowledged / stored | Outputs complete / absent / broken | Rerun completes | Result |",
        "|---|---|---|---|---|---|",
    ]
    kills = figures["review_kills"]
    lines.append(
        f"| Reviewer killed (SIGKILL, random moment) | {kills['runs']} | {kills['acknowledged']} / "
        f"{kills['acknowledged'] - kills['lost']} (lost {kills['lost']}) | integrity_check ok {kills['integrity_ok']}/{kills['runs']} | "
        f"opened and resumed {kills['opened']}/{kills['runs']} | {'ok' if kills['lost'] == 0 else 'FAIL'} |"
    )
    two = figures["two_reviewers"]
    lines.append(
        f"| Two reviewers, one GeoPackage, {two['seconds']:.0f} s | 2 processes | {two['acknowledged']} / "
        f"lost {two['lost']}; {two['candidates_decided_by_both']} candidates decided by both | integrity ok: {two['integrity_ok']} | "
        f"agreement computed: {'yes' if two['agreement_exit'] == 0 else 'no'} | "
        f"{'ok' if not two['errors'] and two['lost'] == 0 else 'FAIL: ' + '; '.join(two['errors'])[:80]} |"
    )
    for name, job in figures["job_kills"].items():
        if "error" in job:
            lines.append(f"| {name} killed | - | - | - | - | FAIL: {job['error'][:80]} |")
            continue
        good = job["broken"] == 0 and job["rerun_ok"] == job["kills"] and not job["litter_after_rerun"]
        litter = ", ".join(job["litter_after_rerun"]) or "nothing"
        lines.append(
            f"| {name} killed (run ≈ {job['seconds_per_run']} s) | {job['kills']} | - | {job['complete']} / {job['absent']} / "
            f"{job['broken']} | {job['rerun_ok']}/{job['kills']}, left behind: {litter} | {'ok' if good else 'FAIL'} |"
        )
    writes = figures["write_faults"]
    if "skipped" in writes:
        lines.append(f"| Disk full / read-only folder | skipped: {writes['skipped']} | | | | |")
    else:
        for name, result in writes.items():
            project = (
                f"; project as it was: {result['project_as_it_was']}" if "project_as_it_was" in result else ""
            )
            lines.append(
                f"| {name} | 1 | - | left behind: {', '.join(result['left_behind']) or 'nothing'}{project} | - | "
                f"{'ok' if _write_ok(result) else 'FAIL'}: `{result['error'][:90]}` |"
            )
    for condition, result in figures["project_write_faults"].items():
        if condition == "skipped":
            continue
        lines.append(
            f"| Reviewing on a project, {condition} | 1 | {result['decisions_acknowledged']} / lost {result['decisions_lost']} | "
            f"project opens: {result['project_opens']}, integrity ok: {result['integrity_ok']} | - | `{result['error_shown'][:90]}` |"
        )
    lines += [
        "",
        "| Fuzzed input | Files | Clear one-line error | Ran (mutation harmless) | Unclear message | Traceback | Crash | Hang | Memory |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, verdicts in figures["fuzz"].items():
        total = sum(verdicts.values())
        lines.append(
            f"| {kind} | {total} | {verdicts.get('clear error', 0)} | {verdicts.get('ran (mutation harmless)', 0)} | "
            f"{verdicts.get('unclear message', 0)} | {verdicts.get('traceback', 0)} | {verdicts.get('crash', 0)} | "
            f"{verdicts.get('hang', 0)} | {verdicts.get('memory', 0)} |"
        )
    pickles = sum(v.get("pickle loaded", 0) for v in figures["fuzz"].values())
    lines += ["", f"Pickles renamed .safetensors whose code would run if unpickled: ran {pickles} times."]
    return "\n".join(lines)


BEGIN, END = "<!-- faults:begin -->", "<!-- faults:end -->"


def write_into_doc(doc: Path, table: str) -> None:
    text = doc.read_text(encoding="utf-8") if doc.exists() else f"# Reliability\n\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    doc.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
