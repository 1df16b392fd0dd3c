"""RTS Mapper: a QGIS plugin for mapping retrogressive thaw slumps.

QGIS calls :func:`classFactory`; everything else is imported lazily so that importing the
package (from the CLI, from ``qgis_process``, from tests) stays cheap and never needs a GUI.
"""


def classFactory(iface):  # noqa: N802 (QGIS calls it by this name)
    """Return the plugin instance QGIS asked for; ``iface`` is None under qgis_process."""
    from .plugin import RtsMapperPlugin

    return RtsMapperPlugin(iface)
