"""Review dock: step through candidates with time-lapse views and decide by keyboard."""

from __future__ import annotations

from .dock_base import RtsDock


class ReviewDock(RtsDock):
    title = "RTS Mapper: Review"
    object_name = "RtsMapperReviewDock"

    def __init__(self, iface, parent=None) -> None:
        super().__init__(iface, parent)
        self.add_banner(
            "Coming next: step through candidates with every registered year side by side, "
            "accept / reject / unsure by keyboard, every decision saved at once (issue 6). "
            "Works without torch."
        )
        self.body_layout.addStretch(1)
