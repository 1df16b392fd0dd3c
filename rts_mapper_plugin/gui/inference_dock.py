"""Inference dock: run DeepLabv3+ over a year layer and put candidates on the map."""

from __future__ import annotations

from ..core.environment import deep_learning_missing
from .dock_base import RtsDock


class InferenceDock(RtsDock):
    title = "RTS Mapper: Inference"
    object_name = "RtsMapperInferenceDock"

    def __init__(self, iface, parent=None) -> None:
        super().__init__(iface, parent)
        missing = deep_learning_missing()
        if missing:
            self.add_missing_packages_banner(missing, "Inference")
        self.add_banner(
            "Coming next: choose a prepared year layer and a model file, run DeepLabv3+ in a "
            "background task, and get editable candidate polygons (issue 5)."
        )
        self.body_layout.addStretch(1)
