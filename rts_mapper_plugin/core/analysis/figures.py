"""The distribution figures (after Xia et al. 2022, Figures 6 and 7) and the HTML report.

Matplotlib's object API with the Agg canvas only (no pyplot), so drawing never touches the Qt
event loop of a running QGIS and works from a worker thread.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

RTS_COLOUR = "#b2182b"
LAND_COLOUR = "#7f7f7f"


def _figure(width: float = 6.4, height: float = 4.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / f"{name}.png"
    figure.savefig(png, dpi=150, bbox_inches="tight")
    figure.savefig(folder / f"{name}.svg", bbox_inches="tight")
    return png


def area_histogram(summary: dict, folder: Path) -> Path:
    areas = np.asarray(summary["distributions"]["area_ha"]["values"], dtype=float)
    figure = _figure()
    axes = figure.add_subplot()
    low, high = max(areas.min() * 0.9, 0.01), max(areas.max() * 1.1, 0.1)
    bins = np.geomspace(low, high, 16)
    axes.hist(areas, bins=bins, color=RTS_COLOUR, edgecolor="white")
    axes.set_xscale("log")
    axes.set_xlabel("RTS area (ha, log scale)")
    axes.set_ylabel("Number of RTSs")
    axes.axvline(10, color="black", linestyle="--", linewidth=0.8)
    axes.set_title(
        f"{len(areas)} RTSs, {areas.sum():.1f} ha in all; {100 * (areas < 10).mean():.0f} % under 10 ha "
        f"(median {np.median(areas):.2f} ha)",
        fontsize=9,
    )
    return _save(figure, folder, "area_histogram")


def terrain_frequencies(summary: dict, folder: Path) -> Path:
    """RTS frequency (bars) versus landscape frequency (line) for elevation, slope, PISR, and the
    distance to streams."""
    panels = (
        ("elevation", "Elevation (m)"),
        ("slope", "Slope (°)"),
        ("pisr", "PISR (kWh/m² per year)"),
        ("stream_m", "Distance to the nearest stream (m)"),
    )
    figure = _figure(9.6, 6.8)
    for index, (key, label) in enumerate(panels, start=1):
        axes = figure.add_subplot(2, 2, index)
        data = summary["distributions"][key]
        bins = np.asarray(data["bins"])
        centres, widths = (bins[:-1] + bins[1:]) / 2, np.diff(bins)
        axes.bar(centres, data["rts_pct"], width=widths * 0.9, color=RTS_COLOUR, label="RTSs")
        axes.plot(
            centres, data["landscape_pct"], color=LAND_COLOUR, marker="o", markersize=3, label="landscape"
        )
        axes.set_xlabel(label)
        axes.set_ylabel("Frequency (%)")
        if data["rts_mean"] is not None:
            axes.set_title(
                f"mean: RTSs {data['rts_mean']:g}, landscape {data['landscape_mean']:g}", fontsize=8
            )
        if index == 1:
            axes.legend(fontsize=8, frameon=False)
    figure.tight_layout()
    return _save(figure, folder, "terrain_frequencies")


def aspect_rose(summary: dict, folder: Path) -> Path:
    data = summary["distributions"]["aspect"]
    figure = _figure(5.0, 5.0)
    axes = figure.add_subplot(projection="polar")
    axes.set_theta_zero_location("N")
    axes.set_theta_direction(-1)
    angles = np.radians(np.arange(8) * 45.0)
    axes.bar(angles, data["rts_pct"], width=np.radians(40), color=RTS_COLOUR, alpha=0.85, label="RTSs")
    closed = np.append(angles, angles[0])
    axes.plot(
        closed,
        np.append(data["landscape_pct"], data["landscape_pct"][0]),
        color=LAND_COLOUR,
        label="landscape",
    )
    axes.set_xticks(angles)
    axes.set_xticklabels(data["sectors"])
    axes.set_title("Aspect: share of RTSs (bars) and of the landscape (line), %", fontsize=9)
    axes.legend(loc="lower right", bbox_to_anchor=(1.15, -0.1), fontsize=8, frameon=False)
    return _save(figure, folder, "aspect_rose")


def class_rings(name: str, overlay: dict, folder: Path) -> Path:
    """Outer ring: the RTSs' classes; inner ring: the landscape's (as the paper's Figure 7)."""
    from matplotlib import colormaps

    classes = sorted(set(overlay["rts_shares"]) | set(overlay["landscape_shares"]))
    palette = colormaps["tab10"]
    colours = [palette(i % 10) for i in range(len(classes))]
    figure = _figure(6.4, 4.6)
    axes = figure.add_subplot()
    for radius, shares, _label in (
        (1.0, overlay["rts_shares"], "RTSs"),
        (0.68, overlay["landscape_shares"], "landscape"),
    ):
        values = [shares.get(c, 0.0) for c in classes]
        wedges, _ = axes.pie(
            values,
            radius=radius,
            colors=colours,
            startangle=90,
            counterclock=False,
            wedgeprops={"width": 0.3, "edgecolor": "white"},
        )
        for wedge, value in zip(wedges, values):
            if value >= 0.04:
                angle = np.radians((wedge.theta1 + wedge.theta2) / 2)
                r = radius - 0.15
                axes.text(
                    r * np.cos(angle),
                    r * np.sin(angle),
                    f"{100 * value:.0f}%",
                    ha="center",
                    va="center",
                    fontsize=7,
                )
    axes.text(0, 0, "outer: RTSs\ninner: landscape", ha="center", va="center", fontsize=8)
    axes.legend(classes, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    axes.set_title(f"{name.capitalize()}: RTSs versus landscape", fontsize=10)
    axes.set_aspect("equal")
    return _save(figure, folder, f"{name}_rings")


def density_map(size_km: float, grid, inventory, folder: Path, streams=None) -> Path:
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Polygon as Patch

    figure = _figure(6.0, 5.2)
    axes = figure.add_subplot()
    counts = np.array([a["rts_count"] for a in grid.attributes], dtype=float)
    patches = [Patch(np.asarray(g.exterior.coords)) for g in grid.geometries]
    collection = PatchCollection(patches, cmap="YlOrRd", edgecolor="#555555", linewidth=0.4)
    collection.set_array(counts)
    axes.add_collection(collection)
    if streams:
        for line in streams:
            for part in getattr(line, "geoms", [line]):
                x, y = part.xy
                axes.plot(x, y, color="#2c7fb8", linewidth=0.4)
    xs = [g.centroid.x for g in inventory.geometries]
    ys = [g.centroid.y for g in inventory.geometries]
    axes.scatter(xs, ys, s=4, color="black", label="RTS")
    minx = min(g.bounds[0] for g in grid.geometries)
    miny = min(g.bounds[1] for g in grid.geometries)
    maxx = max(g.bounds[2] for g in grid.geometries)
    maxy = max(g.bounds[3] for g in grid.geometries)
    axes.set_xlim(minx, maxx)
    axes.set_ylim(miny, maxy)
    axes.set_aspect("equal")
    axes.ticklabel_format(style="plain", useOffset=False)
    axes.tick_params(labelsize=7)
    colourbar = figure.colorbar(collection, ax=axes, shrink=0.8)
    colourbar.set_label("RTSs per cell")
    axes.set_title(f"RTS density, {size_km:g} km cells (max {int(counts.max())} per cell)", fontsize=9)
    return _save(figure, folder, f"density_{size_km:g}km".replace(".", "_"))


def all_figures(summary: dict, inventory, grids: dict, layers, dem, folder: Path) -> list[Path]:
    del dem  # the figures use the summary and the layers
    paths = [
        area_histogram(summary, folder),
        terrain_frequencies(summary, folder),
        aspect_rose(summary, folder),
    ]
    for name, overlay in summary["overlays"].items():
        paths.append(class_rings(name, overlay, folder))
    for size, grid in grids.items():
        paths.append(density_map(size, grid, inventory, folder, layers.stream_lines))
    return paths


def write_report(path: Path, summary: dict, figures: list[Path]) -> Path:
    """One self-contained HTML file: the summary statistics, notes and every figure inline."""

    def row(label, value) -> str:
        return f"<tr><th>{html.escape(str(label))}</th><td>{html.escape(str(value))}</td></tr>"

    d = summary["distributions"]
    rows = [
        row("RTSs", summary["rts_count"]),
        row("Total area", f"{summary['total_area_ha']} ha"),
        row("Under 10 ha", f"{100 * summary['share_under_10_ha']:.0f} %"),
        row(
            "Mean elevation (RTSs / landscape)",
            f"{d['elevation']['rts_mean']} / {d['elevation']['landscape_mean']} m",
        ),
        row("Mean slope (RTSs / landscape)", f"{d['slope']['rts_mean']} / {d['slope']['landscape_mean']} °"),
        row(
            "Mean PISR (RTSs / landscape)", f"{d['pisr']['rts_mean']} / {d['pisr']['landscape_mean']} kWh/m²"
        ),
        row(f"Within {summary['adjacent_m']:g} m of a stream", summary["near_stream"]),
        row(
            "DEM",
            f"{summary['dem']['crs']}, {summary['dem']['resolution_m']} m, {summary['dem']['cells']} cells",
        ),
        row("DEM coverage of RTSs", ", ".join(f"{k} {v}" for k, v in summary["coverage"].items())),
        row("PISR", summary["pisr_method"]),
        row("Streams", summary["streams"]),
    ]
    aspect = d["aspect"]
    aspect_rows = "".join(
        f"<tr><th>{s}</th><td>{r}</td><td>{land}</td></tr>"
        for s, r, land in zip(aspect["sectors"], aspect["rts_pct"], aspect["landscape_pct"])
    )
    overlay_tables = ""
    for name, overlay in summary["overlays"].items():
        classes = sorted(set(overlay["rts_shares"]) | set(overlay["landscape_shares"]))
        body = "".join(
            f"<tr><th>{html.escape(c)}</th><td>{100 * overlay['rts_shares'].get(c, 0):.1f}</td>"
            f"<td>{100 * overlay['landscape_shares'].get(c, 0):.1f}</td></tr>"
            for c in classes
        )
        overlay_tables += (
            f"<h3>{html.escape(name.capitalize())}</h3><table><tr><th>class</th><th>RTSs %</th>"
            f"<th>landscape %</th></tr>{body}</table>"
        )
    density_rows = "".join(
        f"<tr><th>{html.escape(k)} km</th><td>{v['cells']}</td><td>{v['max_count']}</td><td>{v['max_per_100km2']}</td></tr>"
        for k, v in summary["density"].items()
    )
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in summary["warnings"])
    images = "".join(
        f'<figure><img alt="{html.escape(p.stem)}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}"><figcaption>{html.escape(p.stem.replace("_", " "))}'
        "</figcaption></figure>"
        for p in figures
    )
    document = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(summary["title"])}</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; font-size: 0.9em; }}
figure {{ display: inline-block; margin: 0.5em; vertical-align: top; }}
img {{ max-width: 520px; border: 1px solid #eee; }}
.warn {{ background: #fff4e0; border: 1px solid #8a5300; padding: 0.5em 1em; }}
</style></head><body>
<h1>{html.escape(summary["title"])}</h1>
{f'<div class="warn"><b>Notes</b><ul>{warnings}</ul></div>' if warnings else ""}
<h2>Summary</h2><table>{"".join(rows)}</table>
<h2>Aspect</h2><table><tr><th>sector</th><th>RTSs %</th><th>landscape %</th></tr>{aspect_rows}</table>
{f"<h2>Vegetation and soil</h2>{overlay_tables}" if overlay_tables else ""}
<h2>Density grids</h2><table><tr><th>cell</th><th>cells</th><th>most RTSs in a cell</th><th>RTSs per 100 km² (max)</th></tr>{density_rows}</table>
<h2>Figures</h2>{images}
<p><small>Made by RTS Mapper. Per-RTS values are in rts_distribution.gpkg (layer rts_terrain); the
landscape is every valid DEM cell of the study area (a random sample of at most 2 million).</small></p>
</body></html>
"""
    path.write_text(document, encoding="utf-8")
    return path
