"""QgsTask wrappers that run core jobs in QGIS's task manager (see :mod:`.base`)."""
