"""QGIS-layer helpers shared by every face that runs in QGIS (docks, Processing, the CLI's .qgz
writer): layers of a mapping project's GeoPackage, the time-lapse group, a layer's file. They use
qgis.core only, never qgis.gui or widgets, so they work headless and under qgis_process."""
