"""What file (and GeoPackage table) a QGIS layer reads: one reading of ``path|layername=x``."""

from __future__ import annotations

from pathlib import Path


def layer_file(layer) -> str:
    """The file behind a layer's source (``/a/b.gpkg`` of ``/a/b.gpkg|layername=x``)."""
    return layer.source().split("|", 1)[0]


def layer_table(layer) -> str | None:
    """The GeoPackage table a vector layer shows (its ``layername``), or None."""
    parts = dict(p.split("=", 1) for p in layer.source().split("|")[1:] if "=" in p)
    return parts.get("layername")


def shows_table(layer, gpkg: str | Path, table: str) -> bool:
    """Whether ``layer`` shows ``table`` of the GeoPackage ``gpkg`` (paths compared resolved)."""
    return layer_table(layer) == table and Path(layer_file(layer)).resolve() == Path(gpkg).resolve()
