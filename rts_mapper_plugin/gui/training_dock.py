"""Training dock: fine-tune DeepLabv3+ from positive and negative polygons."""

from __future__ import annotations

from ..core.environment import deep_learning_missing
from .dock_base import RtsDock


class TrainingDock(RtsDock):
    title = "RTS Mapper: Training"
    object_name = "RtsMapperTrainingDock"

    def __init__(self, iface, parent=None) -> None:
        super().__init__(iface, parent)
        missing = deep_learning_missing()
        if missing:
            self.add_missing_packages_banner(missing, "Training")
        self.add_banner(
            "Coming next: pick positives, negatives and images, train in a background task "
            "with a live loss and validation-IoU curve (issue 5)."
        )
        self.body_layout.addStretch(1)
