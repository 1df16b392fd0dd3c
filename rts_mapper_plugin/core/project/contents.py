"""What a mapping project holds, read from its GeoPackage, for the faces to list and reload.

The GeoPackage is the source of truth: a dock lists its candidate sets, years, models and
iterations from here, never only from the layers a QGIS project happens to have loaded, so that
work stays reachable when a .qgz was never saved (or QGIS died before it was).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import RtsMapperError
from .store import MappingProject, RunRecord


@dataclass(frozen=True)
class CandidateSet:
    """One inference run's candidates, with how far their review has come."""

    run: RunRecord
    total: int
    pending: int

    @property
    def label(self) -> str:
        year = f" {self.run.year}" if self.run.year else ""
        what = f"iteration {self.run.iteration}" if self.run.iteration is not None else self.run.run_id
        return f"Candidates{year}, {what}: {self.total} ({self.pending} pending)"


@dataclass(frozen=True)
class ModelEntry:
    """A model file the project knows: trained for an iteration, used by a run, or kept in its
    ``models`` folder."""

    path: Path
    label: str  # what made it: "iteration 2", "run it01-…", "models folder"
    summary: str  # from its card: encoder, epochs, validation IoU
    encoder: str = ""


def candidate_sets(project: MappingProject) -> list[CandidateSet]:
    """Every run's candidates, oldest first, with their totals and pending counts."""
    with project.connection() as conn:
        counts = {
            row["run_id"]: (row["total"], row["pending"])
            for row in conn.execute(
                "SELECT run_id, COUNT(*) AS total, SUM(status = 'pending') AS pending "
                "FROM candidates GROUP BY run_id"
            )
        }
    return [
        CandidateSet(run, *(int(v or 0) for v in counts.get(run.run_id, (0, 0)))) for run in project.runs()
    ]


def project_models(project: MappingProject) -> list[ModelEntry]:
    """The models of the project, newest first: iterations' models, runs' models, then any other
    ``.safetensors`` file in the project's ``models`` folder. Files gone missing are left out."""
    from ..model.model_file import read_card
    from .loop import iterations

    found: dict[Path, str] = {}
    for record in reversed(iterations(project)):
        if record.model_path:
            found.setdefault(
                project.resolve_path(record.model_path).resolve(), f"iteration {record.iteration}"
            )
    for run in reversed(project.runs()):
        if run.model_path:
            label = (
                f"used by iteration {run.iteration}" if run.iteration is not None else f"used by {run.run_id}"
            )
            found.setdefault(project.resolve_path(run.model_path).resolve(), label)
    folder = project.path.resolve().parent / "models"
    if folder.is_dir():
        for path in sorted(folder.glob("*.safetensors"), key=lambda p: p.stat().st_mtime, reverse=True):
            found.setdefault(path.resolve(), "models folder")
    entries = []
    for path, label in found.items():
        if not path.is_file():
            continue
        try:
            card = read_card(path)
        except RtsMapperError:
            entries.append(ModelEntry(path, label, "not readable as a model"))
            continue
        entries.append(ModelEntry(path, label, card.brief(), card.encoder))
    return entries


@dataclass(frozen=True)
class Contents:
    """How much the project holds, for the one line every dock shows under its project."""

    years: int
    candidate_sets: list[CandidateSet]
    models: int
    iterations: int

    @property
    def pending(self) -> int:
        return sum(s.pending for s in self.candidate_sets)

    def summary(self) -> str:
        """One line: "5 years · 3 candidate sets (17 pending) · 2 models · 2 iterations"."""

        def n(count: int, word: str) -> str:
            return f"{count} {word}{'' if count == 1 else 's'}"

        sets = n(len(self.candidate_sets), "candidate set")
        if self.pending:
            sets += f" ({self.pending} pending)"
        return " · ".join(
            [n(self.years, "year"), sets, n(self.models, "model"), n(self.iterations, "iteration")]
        )


def contents(project: MappingProject) -> Contents:
    from .loop import iterations

    return Contents(
        years=len(project.years()),
        candidate_sets=candidate_sets(project),
        models=len(project_models(project)),
        iterations=len(iterations(project)),
    )
