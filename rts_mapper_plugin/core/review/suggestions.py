"""Suggestions from the year stack, for the reviewer to confirm: when the scar appeared (the
initiation period) and whether it grew year by year (the headwall retreating upslope).

For each registered year: the share of the candidate's outline whose colour stands out from its
own surroundings that year (a ring 10-40 m outside the outline: the undisturbed tundra around
it, whatever the season, sensor or light of that image). A pixel stands out when it lies more
than :data:`STANDS_OUT` robust deviations (median and MAD of the ring, per band) from the ring's
colour. The scar appears in the first year whose share reaches half of the largest share; it
grew when the share rises by :data:`GREW_BY` from then to the last year. Nothing is suggested
where no year stands out (a look-alike that is just a bare patch of the same colour as its
surroundings, or an empty image).

These are hints shown beside the criteria: they are never written into a decision without the
reviewer's key press.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from shapely.geometry.base import BaseGeometry

from ..project.store import YearLayer, initiation_periods
from ..raster_io import open_raster

RING_M = (10.0, 40.0)  # the background ring: from this far outside the outline to this far
STANDS_OUT = 2.0  # robust deviations from the ring's colour (chosen on seeds 201-202; measured on others)
MIN_SHARE = 0.2  # a scar covers at least this share of the outline in its strongest year
GREW_BY = 0.1  # the share rising this much from the first scar year to the last: it grew


@dataclass
class Suggestion:
    shares: dict[int, float] = field(default_factory=dict)  # year -> share of the outline that stands out
    initiation_period: str | None = None
    first_year: int | None = None
    grew: bool | None = None  # None: cannot tell (no scar, or seen in the last year only)
    failed: str = ""  # why the years could not be read

    def text(self) -> str:
        """One line for the dock: the evidence and what it suggests."""
        if self.failed:
            return f"the years could not be read ({self.failed})"
        if not self.shares:
            return "no registered year covers this place"
        evidence = ", ".join(f"{year} {share:.0%}" for year, share in self.shares.items())
        if self.initiation_period is None:
            return f"no year stands out from its surroundings ({evidence}): no suggestion"
        grew = {True: "; it grew (headwall retreat?)", False: "; it did not grow", None: ""}[self.grew]
        return f"initiation {self.initiation_period} (outline standing out: {evidence}){grew}"


def standing_out(rgb: np.ndarray, inside: np.ndarray, ring: np.ndarray, valid: np.ndarray) -> float:
    """Share of the ``inside`` pixels whose colour lies far from the ``ring``'s (robust z)."""
    inside, ring = inside & valid, ring & valid
    if inside.sum() < 4 or ring.sum() < 8:
        return 0.0
    pixels = rgb.reshape(rgb.shape[0], -1).astype(np.float64)
    background = pixels[:, ring.ravel()]
    centre = np.median(background, axis=1)
    spread = 1.4826 * np.median(np.abs(background - centre[:, None]), axis=1) + 1.0
    z = np.sqrt((((pixels[:, inside.ravel()] - centre[:, None]) / spread[:, None]) ** 2).mean(axis=0))
    return float((z > STANDS_OUT).mean())


def year_shares(years: list[YearLayer], geometry: BaseGeometry) -> dict[int, float]:
    """year -> share of ``geometry`` (in the rasters' CRS) standing out that year."""
    from rasterio.features import geometry_mask
    from rasterio.windows import from_bounds

    geometry = geometry.simplify(1.0)  # a metre off the outline changes no pixel's side; buffers go 5x faster
    outer = geometry.buffer(RING_M[1], quad_segs=4)
    ring_geometry = outer.difference(geometry.buffer(RING_M[0], quad_segs=4))
    bounds = outer.buffer(5, quad_segs=1).bounds
    masks: dict = {}  # the years usually share one grid: the masks are drawn once
    shares = {}
    for year in sorted(years, key=lambda y: y.year):
        with open_raster(year.raster_path) as dataset:
            if dataset.transform.is_identity:  # not georeferenced: it cannot show this place
                continue
            window = from_bounds(*bounds, transform=dataset.transform).round_offsets().round_lengths()
            bands = [1, 2, 3] if dataset.count >= 3 else [1]
            rgb = dataset.read(bands, window=window, boundless=True, fill_value=0)
            transform = dataset.window_transform(window)
        shape = rgb.shape[1:]
        if 0 in shape:
            continue
        key = (tuple(transform), shape)
        if key not in masks:
            masks[key] = (
                ~geometry_mask([geometry], shape, transform),
                ~geometry_mask([ring_geometry], shape, transform),
            )
        inside, ring = masks[key]
        shares[year.year] = round(standing_out(rgb, inside, ring, rgb.any(axis=0)), 3)
    return shares


def suggest(years: list[YearLayer], geometry: BaseGeometry) -> Suggestion:
    """What the year stack suggests for a candidate outlined by ``geometry``."""
    shares = year_shares(years, geometry)
    suggestion = Suggestion(shares)
    if not shares or max(shares.values()) < MIN_SHARE:
        return suggestion
    ordered = sorted(shares)
    peak = max(shares.values())
    first = next(y for y in ordered if shares[y] >= 0.5 * peak)
    periods = initiation_periods(ordered)
    suggestion.first_year = first
    suggestion.initiation_period = periods[ordered.index(first)]
    if first != ordered[-1]:
        suggestion.grew = shares[ordered[-1]] - shares[first] >= GREW_BY
    return suggestion
