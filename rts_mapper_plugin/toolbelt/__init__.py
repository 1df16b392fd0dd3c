"""Small helpers shared by the QGIS faces: settings, logging, icons."""
