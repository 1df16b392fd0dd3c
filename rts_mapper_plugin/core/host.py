"""What the process hosting the core owns (no heavy imports: the plugin calls this at load).

Inside QGIS, GDAL's block cache belongs to the host. Shrinking it from a worker thread while the
map renders made GDAL evict other threads' blocks: in the desktop, a training task crashed
(SIGSEGV) or failed with "error while writing a dirty block from FlushCache" while cutting
chips. The plugin calls :func:`share_gdal_with_host` at load; the CLI keeps the bounded cache.
"""

from __future__ import annotations

_state = {"gdal_cache_is_hosts": False}


def share_gdal_with_host() -> None:
    """Leave GDAL's process-wide settings (the block cache size) to the host application."""
    _state["gdal_cache_is_hosts"] = True


def gdal_cache_is_hosts() -> bool:
    return _state["gdal_cache_is_hosts"]
