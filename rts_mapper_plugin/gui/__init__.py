"""Dock widgets and dialogs: read and write layers through QGIS, run long work through tasks."""
