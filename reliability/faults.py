"""Faults injected into real processes: SIGKILL at random moments (reviewers, and every job that
writes an output), two reviewers on one project at once, a full disk and a read-only folder.

Each check returns a dict of figures; :mod:`reliability.__main__` writes them to
docs/reliability.md. Outputs are judged from the outside, as a person finds them after the crash:
at its final name a file is either absent or complete and readable (a ``.partial`` name is marked
partial, never presented as complete), and the job run again completes.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MOUNT, UMOUNT = shutil.which("mount") or "/bin/mount", shutil.which("umount") or "/bin/umount"
ENV = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONDONTWRITEBYTECODE": "1"}


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def cli(*args: str) -> list[str]:
    return python("-m", "rts_mapper_plugin", *args)


def _read(path: Path, sql: str) -> list:
    """Rows of a query, read-only (a project on a read-only volume included); closed after."""
    writable = os.access(path.parent, os.W_OK) and not _read_only_volume(path)
    uri = f"file:{path}?mode=ro" if writable else f"file:{path}?immutable=1"
    conn = sqlite3.connect(uri, uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _read_only_volume(path: Path) -> bool:
    return bool(os.statvfs(path.parent).f_flag & os.ST_RDONLY)


def integrity_ok(path: Path) -> bool:
    try:
        return _read(path, "PRAGMA integrity_check")[0][0] == "ok"
    except sqlite3.Error:
        return False


def stored_decisions(path: Path) -> set[tuple[str, int, str]]:
    rows = _read(path, "SELECT reviewer, candidate_id, decision FROM reviews")
    return {(r, int(c), d) for r, c, d in rows}


def content_digest(path: Path) -> str:
    """A digest of every row of every table: equal digests, equal projects."""
    import hashlib

    digest = hashlib.sha256()
    tables = _read(path, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    for (table,) in tables:
        # sql-safe: table names read from the file's own catalogue, quoted
        rows = _read(path, 'SELECT * FROM "{}"'.format(table.replace('"', '""')))  # noqa: S608
        digest.update(repr((table, sorted(map(repr, rows)))).encode())
    return digest.hexdigest()


class Unchanged:
    """Is a project, after a job failed on it, as it was (``seed``): integrity ok, same rows?"""

    def __init__(self, seed: Path) -> None:
        self.seed = seed
        self.digest = content_digest(seed)

    def __call__(self, path: Path) -> bool:
        return integrity_ok(path) and content_digest(path) == self.digest


# -- review: kill -9 a reviewer at a random moment, again and again --------------------------


def review_kills(project: Path, runs: int, seed: int = 1) -> dict:
    """``runs`` reviewer processes on one project, each SIGKILLed at a random moment; every
    decision a reviewer acknowledged must be stored, and the project must open and take the next
    reviewer every time."""
    rng = random.Random(seed)
    acknowledged, lost, opened, integrity = 0, 0, 0, 0
    for run in range(runs):
        reviewer = f"kill-{run:03d}"
        process = subprocess.Popen(
            python("-m", "reliability.reviewer", str(project), reviewer, "--seed", str(run)),
            cwd=ROOT,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout.readline().strip() == "ready", process.stderr.read()
        opened += 1  # it opened the project left by the previous kill and is deciding
        time.sleep(rng.uniform(0.0, 0.4))
        process.send_signal(signal.SIGKILL)
        out, _ = process.communicate()
        last, in_flight = {}, None  # a reviewer's later decision on a candidate replaces the earlier
        for line in out.splitlines():
            word, _, rest = line.partition(" ")
            if word == "deciding":
                in_flight = rest
            elif word == "acked":
                fid, choice = rest.split()
                last[int(fid)] = choice
                acknowledged += 1
                in_flight = None
        stored = {c: d for r, c, d in stored_decisions(project) if r == reviewer}
        flying = tuple(in_flight.split()) if in_flight else None
        # the decision under way when killed may be stored (committed, not yet acknowledged) or not
        lost += sum(
            stored.get(fid) != choice and (str(fid), stored.get(fid)) != flying
            for fid, choice in last.items()
        )
        integrity += integrity_ok(project)
    return {
        "runs": runs,
        "acknowledged": acknowledged,
        "lost": lost,
        "opened": opened,
        "integrity_ok": integrity,
    }


def two_reviewers(project: Path, seconds: float) -> dict:
    """Two reviewer processes deciding on one project GeoPackage at the same time."""
    processes = {
        name: subprocess.Popen(
            python(
                "-m", "reliability.reviewer", str(project), name, "--seconds", str(seconds), "--seed", str(i)
            ),
            cwd=ROOT,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, name in enumerate(("alice", "bob"))
    }
    acknowledged, last, errors = 0, {}, []
    for name, process in processes.items():
        out, err = process.communicate()
        for line in out.splitlines():
            if line.startswith("acked"):
                _, fid, choice = line.split()
                acknowledged += 1
                last[name, int(fid)] = choice  # a reviewer's later decision replaces the earlier
            elif line.startswith("error"):
                errors.append(line)
        if process.returncode:
            errors.append(
                err.strip().splitlines()[-1] if err.strip() else f"{name} exit {process.returncode}"
            )
    stored = {(r, f): d for r, f, d in stored_decisions(project) if r in processes}
    lost = [key for key, choice in last.items() if stored.get(key) != choice]
    agreement = subprocess.run(
        cli("review-agreement", "--project", str(project)), env=ENV, capture_output=True, text=True
    )
    return {
        "seconds": seconds,
        "acknowledged": acknowledged,
        "candidates_decided_by_both": len(
            {f for r, f in last if r == "alice"} & {f for r, f in last if r == "bob"}
        ),
        "lost": len(lost),
        "busy_errors_shown": sum("locked" in e or "busy" in e.lower() for e in errors),
        "errors": errors,
        "agreement_exit": agreement.returncode,
        "agreement": agreement.stdout.strip()[:400],
        "integrity_ok": integrity_ok(project),
    }


# -- jobs: kill -9 at a random point of each job that writes an output ------------------------


def state_of(path: Path, check) -> str:
    """ "absent", "complete" (exists and passes ``check``) or "broken" (exists and fails it)."""
    if not path.exists():
        return "absent"
    try:
        check(path)
    except Exception:
        return "broken"
    return "complete"


LITTER = re.compile(r"(\.partial|\.scratch)(\.\w+)?$|^rts_mosaic_|^\.tmp")  # left by a killed run


def litter(folder: Path) -> list[str]:
    """What killed runs left in ``folder`` that no run will take back (partial files, scratch)."""
    return sorted(p.name for p in folder.iterdir() if LITTER.search(p.name))


def job_kills(jobs: dict, kills: int, folder: Path, seed: int = 2) -> dict:
    """For each job: one clean run (its duration T), then ``kills`` runs killed at a random
    moment in (0, T), each followed by a look at what it left and a rerun that must complete
    and take back what the killed run left in ``folder`` (its outputs' folder).
    ``jobs``: name -> (command, state() -> absent/complete/broken, reset() before each run)."""
    rng = random.Random(seed)
    figures = {}
    for name, (command, state, reset) in jobs.items():
        reset()
        before = set(litter(folder))  # another job's, already counted there
        started = time.monotonic()
        done = subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True)
        duration = time.monotonic() - started
        if done.returncode != 0 or state() != "complete":
            figures[name] = {"error": f"the clean run failed: {done.stderr.strip()[-300:]}"}
            continue
        counts = {"absent": 0, "complete": 0, "broken": 0, "rerun_ok": 0, "litter_after_rerun": []}
        for _ in range(kills):
            reset()
            process = subprocess.Popen(
                command, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            time.sleep(rng.uniform(0.05, 0.95) * duration)
            process.send_signal(signal.SIGKILL)
            process.wait()
            counts[state()] += 1
            rerun = subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True)
            counts["rerun_ok"] += rerun.returncode == 0 and state() == "complete"
            counts["litter_after_rerun"] = sorted(
                set(counts["litter_after_rerun"]) | set(litter(folder)) - before
            )
        figures[name] = {"kills": kills, "seconds_per_run": round(duration, 1), **counts}
    return figures


# -- a full disk and a read-only folder -----------------------------------------------------------


class SmallVolume:
    """A tmpfs of ``size`` mounted at ``path`` (needs root); ``read_only()`` remounts it so."""

    def __init__(self, path: Path, size: str) -> None:
        self.path, self.size = path, size

    def __enter__(self):
        self.path.mkdir(parents=True, exist_ok=True)
        subprocess.run([MOUNT, "-t", "tmpfs", "-o", f"size={self.size}", "tmpfs", str(self.path)], check=True)
        return self

    def read_only(self) -> None:
        subprocess.run([MOUNT, "-o", "remount,ro", str(self.path)], check=True)

    def __exit__(self, *exc):
        subprocess.run([UMOUNT, str(self.path)], check=False)
        return False


def fill(path: Path, leave: int = 0) -> None:
    """Fill the volume of ``path`` to the last byte, or to ``leave`` bytes before it."""
    with open(path, "wb", buffering=0) as handle:
        for size in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while handle.write(b"\0" * size):
                    pass
    if leave:
        os.truncate(path, max(0, path.stat().st_size - leave))


def can_mount() -> bool:
    return os.geteuid() == 0 and Path(MOUNT).exists()


PROGRESS = re.compile(r"^[\w-]+: +\d+ % \(")  # the CLI's progress lines when not on a terminal


def one_line_error(done: subprocess.CompletedProcess, names: str) -> bool:
    lines = [line for line in done.stderr.strip().splitlines() if line.strip() and not PROGRESS.match(line)]
    return done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and names in lines[0]


def write_faults(jobs: dict, work: Path) -> dict:
    """Each job writing into a full volume, then into a read-only one: a one-line error naming
    the file, nothing left at the output's name. ``jobs``: name -> (command builder taking the
    output path, output file name, project check or None). A job with a project check writes into
    a project GeoPackage (its output path): a copy of it goes on the volume first, which is then
    filled to 36 KiB before the end (room for SQLite to open it, none for the job's writes), and
    afterwards the check says whether the project is as it was (integrity ok, nothing half-done)."""
    figures = {}
    if not can_mount():
        return {"skipped": "needs root to mount a small tmpfs"}
    for condition in ("disk full", "read-only"):
        for name, (build, file_name, project_check) in jobs.items():
            volume_path = work / f"volume_{name.replace(' ', '_')}"
            seed = project_check.seed if project_check else None
            size = f"{seed.stat().st_size // 1024 + 860}k" if seed else "64k"
            with SmallVolume(volume_path, size) as volume:
                out = volume_path / file_name
                if seed:
                    shutil.copy(seed, out)
                if condition == "disk full":
                    fill(volume_path / "filler", leave=36 * 1024 if seed else 0)
                else:
                    volume.read_only()
                done = subprocess.run(build(out), cwd=ROOT, env=ENV, capture_output=True, text=True)
                left = sorted(p.name for p in volume_path.iterdir() if p.name not in ("filler", file_name))
                if not seed and out.exists():
                    left.append(file_name)
                figures[f"{name}, {condition}"] = {
                    "exit": done.returncode,
                    "one_line_error_naming_file": one_line_error(done, file_name),
                    "error": done.stderr.strip().splitlines()[-1][:160] if done.stderr.strip() else "",
                    "left_behind": left,
                    "traceback": "Traceback" in done.stderr,
                    **({"project_as_it_was": project_check(out)} if seed else {}),
                }
    return figures


def project_write_faults(project: Path, work: Path) -> dict:
    """Reviewing on a project whose volume fills up, and on a read-only copy: one clear error,
    no decision half-stored, the project still opens (read-only: it opens for reading)."""
    if not can_mount():
        return {"skipped": "needs root to mount a small tmpfs"}
    figures = {}
    size = project.stat().st_size
    for condition in ("disk full", "read-only"):
        volume_path = work / f"project_{condition.replace(' ', '_')}"
        with SmallVolume(volume_path, f"{(size // 1024) + 160}k") as volume:
            copy = volume_path / project.name
            shutil.copy(project, copy)
            if condition == "read-only":
                volume.read_only()
            done = subprocess.run(
                python("-m", "reliability.reviewer", str(copy), f"full-{condition[:4]}", "--seconds", "60"),
                cwd=ROOT,
                env=ENV,
                capture_output=True,
                text=True,
            )
            acked = {line.split()[1] for line in done.stdout.splitlines() if line.startswith("acked")}
            errors = [line for line in done.stdout.splitlines() if line.startswith("error")]
            opens = subprocess.run(
                python(
                    "-c",
                    f"from rts_mapper_plugin.core.project.store import MappingProject as M; M.open({str(copy)!r}); print('opens')",
                ),
                cwd=ROOT,
                env=ENV,
                capture_output=True,
                text=True,
            )
            stored = {str(c) for r, c, _ in stored_decisions(copy) if r == f"full-{condition[:4]}"}
            figures[condition] = {
                "decisions_acknowledged": len(acked),
                "decisions_lost": len(acked - stored),
                "error_shown": errors[0][:200]
                if errors
                else (done.stderr.strip().splitlines() or [""])[-1][:200],
                "exit": done.returncode,
                "project_opens": "opens" in opens.stdout,
                "integrity_ok": integrity_ok(copy) if condition != "read-only" else True,
            }
    return figures


def dump(figures: dict) -> str:
    return json.dumps(figures, indent=2, default=str)
