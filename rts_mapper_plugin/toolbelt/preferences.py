"""The plugin's settings: one typed dataclass of defaults, saved through QgsSettings.

Fields marked ``per_project`` are also written into the open QGIS project (project entries), so
that reopening a project brings back its own last-used model, threshold, candidate layer...;
QgsSettings keeps the last value used anywhere as the default for new projects.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from qgis.core import QgsProject, QgsSettings

from ..core import defaults

SETTINGS_GROUP = "rts_mapper"


def per_project(default: Any) -> Any:
    return field(default=default, metadata={"per_project": True})


@dataclass
class PlgSettings:
    """Every remembered choice, with its default. Add a field here, nowhere else."""

    # Who is reviewing: stored with each decision.
    reviewer_name: str = ""
    # The mapping project (GeoPackage) that holds candidates, reviews and the inventory.
    project_gpkg: str = per_project("")
    model_path: str = per_project("")
    device: str = per_project(defaults.DEVICES[0])
    backend: str = per_project(defaults.BACKEND)
    cluster: str = per_project("")  # the Dask cluster large jobs run on ("": this process)
    threshold: float = per_project(defaults.THRESHOLD)
    min_area_m2: float = per_project(defaults.MIN_AREA_M2)
    encoder: str = per_project(defaults.ENCODER)
    epochs: int = per_project(defaults.EPOCHS)
    batch_size: int = per_project(defaults.BATCH_SIZE)
    imagenet_weights: str = per_project("")
    review_order: str = per_project("id")
    road_layer_id: str = per_project("")
    near_road_m: float = per_project(defaults.NEAR_ROAD_M)
    # Review dock shortcuts that differ from the defaults: JSON {action: key sequence}.
    review_shortcuts: str = ""

    @classmethod
    def load(cls, project: QgsProject | None = None) -> PlgSettings:
        """Read every field: project entry first (per-project fields), then QgsSettings."""
        project = project or QgsProject.instance()
        settings = QgsSettings()
        values = {}
        for f in fields(cls):
            default = f.default if f.default is not MISSING else None
            value = settings.value(f"{SETTINGS_GROUP}/{f.name}", default)
            if f.metadata.get("per_project"):
                stored, ok = project.readEntry(SETTINGS_GROUP, f.name, "")
                if ok and stored != "":
                    value = stored
            values[f.name] = _coerce(value, default)
        return cls(**values)

    def save(self, project: QgsProject | None = None) -> None:
        """Write every field to QgsSettings, and per-project fields to the project too."""
        project = project or QgsProject.instance()
        settings = QgsSettings()
        for f in fields(self):
            value = getattr(self, f.name)
            settings.setValue(f"{SETTINGS_GROUP}/{f.name}", value)
            if f.metadata.get("per_project"):
                project.writeEntry(SETTINGS_GROUP, f.name, str(value))

    def update(self, project: QgsProject | None = None, **changes: Any) -> PlgSettings:
        """Set some fields and save at once; returns self."""
        for name, value in changes.items():
            if name not in {f.name for f in fields(self)}:
                raise AttributeError(f"unknown setting {name!r}")
            setattr(self, name, value)
        self.save(project)
        return self


def _coerce(value: Any, default: Any) -> Any:
    """QgsSettings and project entries hand back strings on some platforms: restore the type."""
    kind = type(default)
    if kind is bool:
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
    if kind in (int, float):
        try:
            return kind(value)
        except (TypeError, ValueError):
            return default
    return "" if value is None else str(value)
